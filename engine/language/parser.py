"""SOP markdown -> :class:`engine.model.Sop`, every element with its 1-based source line.

The stages, one module each: bytes -> text (``decoding``), front matter
(``front_matter``), mistune's block tokens (``markdown``) stamped with their source
lines (``source_lines``), then one reader per section (``sections``, ``steps``,
``parameters_section``, ``examples_section``) adding to a ``reading.Reading``.

``parse`` never raises on bad input: what is wrong becomes a ``Diagnostic`` whose
message says how to fix it. Codes (stable; lint owns SOP1xx):

=======  ========  ==========================================================
SOP001   error     NUL bytes: binary, not markdown (nothing else is read)
SOP002   error     not valid UTF-8 (read with replacement characters)
SOP003   error     over MAX_BYTES (nothing else is read)
SOP004   error     empty file
SOP005   warning   no ``# Title`` (front matter ``title`` is used when given)
SOP006   error     front matter is not a YAML mapping
SOP007   warning   a second H1
SOP008   warning   a known section appears twice
SOP009   warning   a metadata key given twice
SOP010   error     no ``## Steps`` section, or no steps in it
SOP011   warning   keyword list items under Steps before the first step
SOP012   error     a step heading without a number
SOP013   error     steps not numbered 1..N in order
SOP014   warning   a step with no actions and no checks
SOP015   error     markdown nested too deeply to read
SOP016   error     a line over MAX_LINE characters (nothing else is read)
SOP017   warning   a ``#### N.M`` sub-step whose N is not its step's number
SOP020   warning   an Actions / Constraints / Security item without an RFC 2119 keyword
SOP021   warning   a lower-case "must" / "should" / "may" leading an item
SOP022   warning   an Error Handling item neither "If <condition>: <response>" nor keyword
SOP023   warning   a ``**For X**:`` branch that matches no parameter's enum value
SOP024   info      an item mixes keywords of different strength (the strongest sets its level)
SOP030   warning   a Parameters item not ``- **name** (type): description``
SOP031   error     a parameter declared twice
SOP032   warning   a parameter detail not ``Key: value``
SOP040   warning   Error Recovery without a table
SOP041   warning   an Error Recovery row without error type or procedure
SOP050   error     an example's Input / Expected Output block is not valid YAML
SOP051   error     an example's Input / Expected Output is not a mapping
SOP052   error     a YAML alias (``*name``) in an example or the front matter
SOP060   error     a ``**Performer**:`` that is not agent, person or code
SOP099   error     internal parser error (a bug; the fuzz tests assert it never happens)
=======  ========  ==========================================================
"""

from __future__ import annotations

import os

from engine.language.decoding import MAX_BYTES, MAX_LINE, decode, long_line
from engine.language.front_matter import read_front_matter
from engine.language.markdown import Token, block_tokens
from engine.language.performer import sop_performer
from engine.language.reading import ERROR, WARNING, Reading
from engine.language.sections import (
    KNOWN_SECTIONS,
    READERS,
    other_section,
    read_metadata,
    split_sections,
)
from engine.language.source_lines import Cursor, stamp
from engine.language.steps import check_numbering, freeze_step
from engine.language.yaml_text import yaml_alias_line
from engine.model import Diagnostic, Section, Sop

try:  # the built-in module: hashlib would load OpenSSL, ~5 ms of every CLI start
    from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - other Pythons
    from hashlib import sha256

__all__ = ["KNOWN_SECTIONS", "MAX_BYTES", "MAX_LINE", "parse", "yaml_alias_line"]


def parse(text: str | bytes, path: str | None = None) -> Sop:
    """Parse SOP markdown; never raises on bad input (see ``Sop.diagnostics``)."""
    r = Reading(path)
    try:
        return _read(r, text)
    except RecursionError:
        message = "markdown nested too deeply to read: flatten the nested lists or quotes"
        code = "SOP015"
    except Exception as exc:  # last line of defence; the fuzz tests assert it never fires
        message = f"internal parser error ({type(exc).__name__}: {exc}); please report this file"
        code = "SOP099"
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    return Sop(
        name=_name_from_path(path) or "untitled",
        title="",
        path=path,
        text=text if isinstance(text, str) else raw.decode("utf-8", "replace"),
        content_hash=sha256(raw).hexdigest(),
        diagnostics=(*r.diags, Diagnostic(code, ERROR, message, 1, 1, path)),
    )


def _read(r: Reading, data: str | bytes) -> Sop:
    raw_bytes, text = decode(r, data)
    digest = sha256(raw_bytes).hexdigest()
    name = _name_from_path(r.path)
    if text is None:
        return _unread(r, name, "", digest)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    r.n_lines = max(1, len(lines))
    if not text.strip():
        r.diag(
            "SOP004",
            ERROR,
            1,
            "file is empty: start with '# Title', then '## Steps' with '### 1. Title' steps",
        )
        return _unread(r, name, text, digest)
    if long_line(r, text, lines):
        return _unread(r, name, text, digest)
    metadata: dict[str, str] = {}
    metadata_lines: dict[str, int] = {}
    md_text = read_front_matter(r, lines, text, metadata, metadata_lines)
    tokens, r.env = block_tokens(md_text)
    # the cursor walks what mistune saw: front matter lines blanked, same line count
    stamp(tokens, Cursor(md_text.split("\n")[: len(lines)] if md_text is not text else lines))
    return _build(r, tokens, lines, text, digest, name, metadata, metadata_lines)


def _unread(r: Reading, name: str | None, text: str, digest: str) -> Sop:
    """The model of a file refused before its markdown is read: diagnostics only."""
    return Sop(
        name=name or "untitled",
        title="",
        path=r.path,
        text=text,
        content_hash=digest,
        diagnostics=tuple(r.diags),
    )


def _build(
    r: Reading,
    tokens: list[Token],
    lines: list[str],
    text: str,
    digest: str,
    name: str | None,
    metadata: dict[str, str],
    metadata_lines: dict[str, int],
) -> Sop:
    title, title_line, preamble, sections = split_sections(r, tokens)
    if not title and (metadata.get("title") or metadata.get("Title")):
        title = metadata.get("title") or metadata.get("Title") or ""
    elif not title:
        r.diag("SOP005", WARNING, 1, "no '# Title' heading: start the file with '# <SOP title>'")
    read_metadata(r, preamble, metadata, metadata_lines)
    performer = sop_performer(r, metadata, metadata_lines)

    starts = [line for _, line, _ in sections] + [len(lines) + 1]
    out_sections: list[Section] = []
    seen: dict[str, int] = {}
    for index, (heading, line, toks) in enumerate(sections):
        raw = "\n".join(lines[line : starts[index + 1] - 1]).strip("\n")
        kind = KNOWN_SECTIONS.get(" ".join(heading.lower().split()))
        if kind is not None:
            if kind in seen:
                r.diag(
                    "SOP008",
                    WARNING,
                    line,
                    f"section '## {heading}' appears twice (first "
                    f"at line {seen[kind]}): merge them; the second is read as well",
                )
            seen.setdefault(kind, line)
        reader = READERS[kind] if kind is not None else other_section
        actions = reader(r, heading, line, toks)
        out_sections.append(Section(heading, line, raw, tuple(actions)))

    if not r.steps_line:
        r.diag(
            "SOP010",
            ERROR,
            title_line or 1,
            "no '## Steps' section: add '## Steps' "
            "with numbered '### 1. Title' steps holding MUST/SHOULD/MAY actions",
        )
    elif not r.steps:
        r.diag(
            "SOP010",
            ERROR,
            r.steps_line,
            "'## Steps' has no steps: add '### 1. Title' headings under it",
        )
    check_numbering(r)
    steps = tuple(freeze_step(r, s) for s in r.steps)
    if not name:
        name = _slug(title) or "untitled"
    r.diags.sort(key=lambda d: d.line)
    return Sop(
        name=name,
        title=title,
        path=r.path,
        text=text,
        content_hash=digest,
        metadata=metadata,
        metadata_lines=metadata_lines,
        sections=tuple(out_sections),
        overview="\n\n".join(p for p in r.overview if p),
        prerequisites=tuple(r.prerequisites),
        parameters=tuple(r.params),
        steps=steps,
        guards=tuple(r.guards),
        sop_wide=tuple(r.sop_wide),
        success_criteria=tuple(r.criteria),
        recovery=tuple(r.recovery),
        examples=tuple(r.examples),
        related=tuple(r.related),
        version_history=tuple(r.history),
        diagnostics=tuple(r.diags),
        performer=performer,
    )


def _name_from_path(path: str | None) -> str | None:
    if not path:
        return None
    base = os.path.basename(path)
    for suffix in (".sop.md", ".md"):
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base or None


def _slug(title: str) -> str:
    out: list[str] = []
    for ch in title.lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")
