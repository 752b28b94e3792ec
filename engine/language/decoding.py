"""An SOP file's bytes -> text, refusing what is not an SOP before any markdown is read:
NUL bytes (SOP001), invalid UTF-8 (SOP002, read with replacement characters), over
MAX_BYTES (SOP003), a line over MAX_LINE (SOP016)."""

from __future__ import annotations

import codecs

from engine.language.reading import ERROR, Reading

__all__ = ["MAX_BYTES", "MAX_LINE", "decode", "long_line"]

#: Larger files are refused with SOP003 (the seed is 6 KB): a procedure this big
#: should be split, and a long-lived server must not stall on one.
MAX_BYTES = 500_000
#: Longer lines are refused with SOP016 (the longest shipped line is under 1,000):
#: mistune reads a link target without white space in time quadratic in its length,
#: so a file of such lines costs (file size x line length): 4,000 keeps 500 KB near 2 s.
MAX_LINE = 4_000


def decode(r: Reading, data: str | bytes) -> tuple[bytes, str | None]:
    """The raw bytes (what the content hash covers) and the text; None: refused, read no more."""
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogatepass")
        if "\x00" in data:
            line = data.count("\n", 0, data.index("\x00")) + 1
            r.n_lines = max(1, data.count("\n") + 1)
            r.diag(
                "SOP001",
                ERROR,
                line,
                "file contains NUL bytes (binary, not markdown): an SOP must be UTF-8 text",
            )
            return raw, None
        text = data[1:] if data.startswith("\ufeff") else data
    else:
        raw = bytes(data)
        r.n_lines = max(1, raw.count(b"\n") + 1)
        if b"\x00" in raw:
            line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
            r.diag(
                "SOP001",
                ERROR,
                line,
                "file contains NUL bytes (binary, not markdown): an SOP must be UTF-8 text",
            )
            return raw, None
        body = raw[3:] if raw.startswith(codecs.BOM_UTF8) else raw
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = body.count(b"\n", 0, exc.start) + 1
            r.diag(
                "SOP002",
                ERROR,
                line,
                f"not valid UTF-8 (byte 0x{body[exc.start]:02x} at "
                f"offset {exc.start}): save the file as UTF-8",
            )
            text = body.decode("utf-8", "replace")
    if len(raw) > MAX_BYTES:
        r.n_lines = max(1, text.count("\n") + 1)
        r.diag(
            "SOP003",
            ERROR,
            1,
            f"file is {len(raw):,} bytes, over the {MAX_BYTES:,}-byte "
            "limit for one SOP: split the procedure and link the parts under Related SOPs",
        )
        return raw, None
    return raw, text


def long_line(r: Reading, text: str, lines: list[str]) -> bool:
    """Whether a line is over MAX_LINE (SOP016): then nothing else is read."""
    if len(text) <= MAX_LINE:  # a shorter file has no line that long
        return False
    long = next((i for i, line in enumerate(lines) if len(line) > MAX_LINE), None)
    if long is None:
        return False
    r.diag(
        "SOP016",
        ERROR,
        long + 1,
        f"line is {len(lines[long]):,} characters long, over the {MAX_LINE:,}-"
        "character limit for one SOP line: break it up",
    )
    return True
