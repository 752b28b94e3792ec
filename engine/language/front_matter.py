"""YAML front matter (``---`` lines at the top) -> metadata, its lines blanked so the
markdown's line numbers stay true."""

from __future__ import annotations

import yaml

from engine.language.reading import ERROR, Reading
from engine.language.yaml_text import ALIAS_MESSAGE, load_yaml, yaml_alias_line

__all__ = ["read_front_matter"]


def read_front_matter(
    r: Reading, lines: list[str], text: str, meta: dict[str, str], meta_lines: dict[str, int]
) -> str:
    """YAML front matter -> metadata; its lines are blanked so line numbers stay true."""
    if not lines or lines[0].strip() != "---":
        return text
    end = -1
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            end = i
            break
    if end < 0:
        return text
    first = next((ln for ln in lines[1:end] if ln.strip()), "")
    key, colon, _ = first.partition(":")
    if not colon or not key or not all(c.isalnum() or c in "_- " for c in key):
        return text  # a thematic break, not front matter ("key: value" lines)
    block = "\n".join(lines[1:end])
    try:
        alias = yaml_alias_line(block)
        if alias is not None:
            r.diag("SOP052", ERROR, 2 + alias, ALIAS_MESSAGE.format(where="front matter"))
            return text
        data = load_yaml(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = 2 + (mark.line if mark is not None else 0)
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        r.diag(
            "SOP006",
            ERROR,
            line,
            f"front matter is not valid YAML ({first}): "
            "write 'key: value' lines between the '---' lines",
        )
        data = None
    except Exception as exc:  # yaml may raise non-YAMLError on hostile input
        r.diag(
            "SOP006",
            ERROR,
            2,
            f"front matter could not be read ({type(exc).__name__}): "
            "write 'key: value' lines between the '---' lines",
        )
        data = None
    if not isinstance(data, dict):
        if data is not None:
            r.diag("SOP006", ERROR, 2, "front matter must be a mapping of 'key: value' lines")
        # not metadata after all (a thematic break?): the markdown is read as written
        return text
    if data:
        for key, value in data.items():
            k = str(key)
            meta[k] = "" if value is None else str(value)
            meta_lines[k] = 1
        for i in range(1, end):
            head = lines[i].split(":", 1)[0].strip()
            if head in meta and lines[i][:1] not in (" ", "\t"):
                meta_lines[head] = i + 1
    blank = "\n" * (end + 1)
    rest = "\n".join(lines[end + 1 :])
    return blank + rest
