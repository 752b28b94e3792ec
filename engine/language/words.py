"""Small readings of SOP prose shared by the parser and the parameter schema: bold
labels, quoted strings, backticks, ``Values:`` lists and plural nouns."""

from __future__ import annotations

__all__ = ["bold_label", "enum_values", "quoted", "singular", "strip_ticks"]

#: plurals that add "es" to a noun ending in a hiss (push/pushes, batch, box, address)
_ES_AFTER = ("sses", "shes", "ches", "xes", "zzes")
_VOWELS = frozenset("aeiou")


def singular(word: str) -> str:
    """The singular of a plural English noun, as SOP enum values are written.

    ``pushes`` -> ``push``, ``statuses`` -> ``status``, ``addresses`` -> ``address``,
    ``refunds`` -> ``refund``, ``charges`` -> ``charge``, ``entries`` -> ``entry``;
    a word that is not plural (``status``, ``class``) stays as written.
    """
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(_ES_AFTER):
        return word[:-2]
    # statuses, bonuses, viruses -> drop "es"; causes, pauses, houses -> drop "s"
    if word.endswith("uses") and len(word) > 5 and word[-5].lower() not in _VOWELS:
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def bold_label(text: str) -> tuple[str, str] | None:
    """``**Key**: rest`` or ``**Key:** rest`` -> (Key, rest); None when not a label."""
    if not (text.startswith("**") or text.startswith("__")):
        return None
    mark = text[:2]
    end = text.find(mark, 2)
    if end < 0:
        return None
    label = text[2:end].strip()
    rest = text[end + 2 :]
    if label.endswith(":"):
        label = label[:-1].rstrip()
    elif rest.startswith(":"):
        rest = rest[1:]
    else:
        return None
    if not label or "\n" in label:
        return None
    return label, rest.strip()


def quoted(text: str) -> str | None:
    """The first double-quoted string (straight or curly quotes)."""
    for left, right in (('"', '"'), ("\u201c", "\u201d")):
        start = text.find(left)
        if start >= 0:
            end = text.find(right, start + 1)
            if end > start + 1:
                return text[start + 1 : end]
    return None


def strip_ticks(text: str) -> str:
    return text.strip().strip("`").strip()


def enum_values(value: str) -> list[str]:
    """``Values: `a` | `b` `` -> ["a", "b"] (also comma separated)."""
    sep = "|" if "|" in value else ","
    return [v for v in (strip_ticks(p).strip("\"'") for p in value.split(sep)) if v]
