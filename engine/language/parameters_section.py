"""The Parameters section: ``- **name** (type, required): description`` items with
``Key: value`` details (Values, Format, Default, ...); engine.language.params reads the
details into a JSON Schema."""

from __future__ import annotations

from engine.language.markdown import Token
from engine.language.reading import ERROR, WARNING, Reading, first_text
from engine.language.tasks import loose_actions
from engine.language.words import bold_label, strip_ticks
from engine.model import Action, ParamAttribute, Parameter

__all__ = ["read_parameters"]


def read_parameters(r: Reading, toks: list[Token]) -> list[Action]:
    required_default = False
    actions: list[Action] = []
    label = ""
    seen: dict[str, int] = {}
    for tok in toks:
        kind = tok["type"]
        if kind == "heading":
            head = r.plain(tok.get("text", "")).lower()
            required_default = head.startswith("required")
            label = ""
        elif kind == "paragraph":
            found = bold_label(tok.get("text", "").strip())
            label = found[0].lower() if found else ""
        elif kind == "list":
            if label.startswith("constraint"):
                actions.extend(loose_actions(r, [tok], "parameters"))
                continue
            for item in tok["children"]:
                param = _parameter(r, item, required_default)
                if param is None:
                    continue
                if param.name in seen:
                    r.diag(
                        "SOP031",
                        ERROR,
                        param.line,
                        f"parameter '{param.name}' declared "
                        f"twice (first at line {seen[param.name]}): keep one",
                    )
                    continue
                seen[param.name] = param.line
                r.params.append(param)
    return actions


def _parameter(r: Reading, item: Token, required_default: bool) -> Parameter | None:
    line = item["_line"]
    raw = " ".join(first_text(item).split())
    name, rest = _param_name(raw)
    if name is None:
        r.diag(
            "SOP030",
            WARNING,
            line,
            "parameter item not understood: write '- **name** (type): description'",
        )
        return None
    ptype: str | None = None
    required = required_default
    default: str | None = None
    if rest.startswith("("):
        close = rest.find(")")
        inside = rest[1:close] if close > 0 else rest[1:]
        rest = rest[close + 1 :] if close > 0 else ""
        lowered = inside.lower()
        at = lowered.find("default:")
        if at >= 0:
            default = inside[at + 8 :].strip().strip("`").strip()
            if len(default) >= 2 and default[0] == default[-1] and default[0] in "\"'":
                default = default[1:-1]
            inside = inside[:at]
        for part in inside.split(","):
            word = part.strip()
            if not word:
                continue
            if word.lower() == "required":
                required = True
            elif word.lower() == "optional":
                required = False
            elif ptype is None:
                ptype = strip_ticks(word)
    rest = rest.strip()
    for sep in (":", "-", "\u2013", "\u2014"):
        if rest.startswith(sep):
            rest = rest[len(sep) :].strip()
            break
    attributes: list[ParamAttribute] = []
    for child in item.get("children", ())[1:]:
        if child["type"] != "list":
            continue
        for sub in child["children"]:
            text = " ".join(first_text(sub).split())
            key, sep, value = text.partition(":")
            if not sep or not key.strip() or len(key) > 40:
                r.diag(
                    "SOP032",
                    WARNING,
                    sub["_line"],
                    f"parameter '{name}' detail not "
                    "understood: write 'Key: value' (Values, Format, Default, ...)",
                )
                continue
            attributes.append(ParamAttribute(key.strip().strip("*"), value.strip(), sub["_line"]))
    return Parameter(
        name=name,
        type=ptype,
        description=r.plain(rest),
        required=required,
        line=line,
        attributes=tuple(attributes),
        default=default,
    )


def _param_name(raw: str) -> tuple[str | None, str]:
    """``**name** (type): ...`` / ```name` (type): ...`` -> (name, rest after the name)."""
    for mark in ("**", "__", "`"):
        if raw.startswith(mark):
            end = raw.find(mark, len(mark))
            if end < 0:
                return None, raw
            name = strip_ticks(raw[len(mark) : end]).strip("*")
            rest = raw[end + len(mark) :].strip()
            if name and all(c.isalnum() or c in "_-." for c in name):
                return name, rest
            return None, raw
    head, paren, rest = raw.partition(" (")  # a bare ``name (type): ...``
    if paren and head and all(c.isalnum() or c in "_-." for c in head):
        return head, "(" + rest
    return None, raw
