"""``**Performer**: agent|person|code``: who performs an SOP's unbound lines.

Read from the metadata under the title (SOP-wide) and from a step's own metadata line
(under its heading). A value outside the three is an error (SOP060) that names the
line: guessing would turn a missing handler into someone's task, or the reverse.
"""

from __future__ import annotations

from engine.language.reading import ERROR, Reading
from engine.model import PERFORMERS

__all__ = ["PERFORMERS", "read_performer", "sop_performer"]

#: the metadata key, lower case
KEY = "performer"


def read_performer(r: Reading, value: str, line: int) -> str | None:
    """The performer a metadata value names, or None (with SOP060) when it names none."""
    word = " ".join(value.strip().strip("`*_").lower().split())
    if word in PERFORMERS:
        return word
    r.diag(
        "SOP060",
        ERROR,
        line,
        f"performer '{value.strip()}' is not one of {', '.join(PERFORMERS)}:"
        " write '**Performer**: agent' (or person, or code)",
    )
    return None


def sop_performer(r: Reading, metadata: dict[str, str], lines: dict[str, int]) -> str | None:
    """The SOP-wide performer from the metadata (``Performer`` in any case), if said."""
    for key, value in metadata.items():
        if key.lower() == KEY:
            return read_performer(r, value, lines.get(key, 1))
    return None
