"""``markdown.plain`` gives what mistune's own inline parse gives, for every text.

plain() hands a text to mistune's inline parser only when markup can start in it; these
tests prove that shortcut exact: for any text, plain() equals the text of mistune's
inline tokens (computed here from mistune's public API, white space folded).
"""

from __future__ import annotations

from typing import Any

import mistune
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.language.markdown import plain

MISTUNE = mistune.create_markdown(renderer=None, plugins=["table"])
FAST = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def _text(tokens: list[dict[str, Any]]) -> str:
    out = []
    for tok in tokens:
        if tok["type"] in ("softbreak", "linebreak"):
            out.append(" ")
        elif "children" in tok:
            out.append(_text(tok["children"]))
        else:
            out.append(str(tok.get("raw", tok.get("text", ""))))
    return "".join(out)


def mistune_plain(raw: str) -> str:
    raw = raw.strip()
    return " ".join(_text(MISTUNE.inline(raw, {"ref_links": {}})).split()) if raw else ""


@pytest.mark.parametrize(
    "raw",
    [
        "{project_dir}/rough-idea.md (the rough_idea)",
        "snake_case_name and a__b and 2_000",
        "_lead and trail_ and _both_ and a_ b",
        "__init__ and foo__",
        "**bold** and *em* and `code_span`",
        "[title](target_url) and ![img](x_y)",
        "<https://example.com/a_b> and <b>html</b>",
        "escaped \\_x\\_ and a \\* star",
        "a ~ tilde, a > quote, an & amp; an ! bang and ] bracket",
        "caf\u00e9_bar and bar_caf\u00e9",
    ],
)
def test_plain_is_mistunes_text(raw: str) -> None:
    assert plain(raw, {"ref_links": {}}) == mistune_plain(raw)


@FAST
@given(st.text(alphabet="ab1_ *`[]()<>!\\\n-~&\u00e9", max_size=24))
def test_plain_matches_mistune_on_any_text(raw: str) -> None:
    assert plain(raw, {"ref_links": {}}) == mistune_plain(raw)
