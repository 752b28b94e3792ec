"""The Steps section: ``### N. Title`` steps, their labelled blocks (Purpose, Actions,
Constraints, Validation, Error Handling) and ``**For X**:`` branches on a parameter value."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from engine.language.actions import keyword_item, keyword_of, make_action
from engine.language.conditions import inline_condition
from engine.language.keywords import Keyword
from engine.language.markdown import Token
from engine.language.performer import read_performer
from engine.language.reading import ERROR, WARNING, Reading, StepDraft, first_text
from engine.language.tasks import nested_tasks, sentence_tasks
from engine.language.words import bold_label, enum_values, quoted, singular
from engine.model import Action, ActionKind, Branch, CodeBlock, ErrorRule, Level, Step, SubStep

__all__ = ["BLOCK_LABELS", "check_numbering", "freeze_step", "read_steps"]

#: a step's block labels (lower case) -> the block they open
BLOCK_LABELS = {
    "purpose": "purpose",
    "actions": "actions",
    "action": "actions",
    "constraints": "constraints",
    "constraint": "constraints",
    "validation": "validation",
    "validations": "validation",
    "checks": "validation",
    "error handling": "error_handling",
}
#: ``4.1 Title``, ``Step 4.1: Title``: a sub-step heading (a dotted number)
_SUBSTEP = re.compile(r"(?:[Ss]tep\s+)?(\d{1,9}(?:\.\d{1,9})+)\.?[):]?\s+(.*)")
#: parameter detail keys that list its values (a branch names one of them)
_ENUM_KEYS = frozenset({"values", "value", "allowed values", "enum", "options", "one of"})


def read_steps(r: Reading, toks: list[Token]) -> None:
    step: StepDraft | None = None
    block = ""
    branch: dict[str, Any] | None = None
    for tok in toks:
        kind = tok["type"]
        line = tok["_line"]
        if kind == "heading" and tok["attrs"]["level"] == 3:
            step = _new_step(r, r.plain(tok.get("text", "")), line)
            r.steps.append(step)
            block, branch = "", None
            continue
        if step is None:
            if kind == "list" and any(
                keyword_of(r, first_text(i), r.plain(first_text(i))) for i in tok["children"]
            ):
                r.diag(
                    "SOP011",
                    WARNING,
                    line,
                    "actions before the first step are "
                    "not part of any step: put them under a '### 1. Title' heading",
                )
            continue
        if kind == "heading" and tok["attrs"]["level"] >= 4:
            sub = _substep(r, step, r.plain(tok.get("text", "")), line)
            if sub is not None:
                step.substeps.append(sub)
                block, branch = "", None
                continue
        found = _step_label(tok)
        if found is not None:
            label, rest = found
            key = " ".join(label.lower().split())
            if key.startswith("for ") and len(key) > 4:
                block = "branch"
                branch = {
                    "label": r.plain(label[4:]),
                    "line": line,
                    "code": [],
                    "text": [r.plain(rest)] if rest else [],
                }
                step.branches.append(branch)
                continue
            if key == "performer":  # the step's own "**Performer**: agent" line
                step.performer = read_performer(r, rest, line)
                continue
            if key in BLOCK_LABELS:
                block, branch = BLOCK_LABELS[key], None
                if block == "purpose":
                    step.purpose.append(r.plain(rest))
                elif rest:
                    step.text.append(r.plain(rest))
                continue
        if kind == "paragraph":
            raw = tok.get("text", "").strip()
            text = r.plain(raw)
            if block == "purpose":
                step.purpose.append(text)
            elif block == "branch" and branch is not None:
                branch["text"].append(text)
            else:
                step.text.append(text)
            if block not in ("purpose", "validation"):
                step.actions.extend(
                    sentence_tasks(
                        r,
                        tok,
                        ActionKind.ACTION,
                        step.number,
                        _sentence_block(block),
                        branch["label"] if block == "branch" and branch is not None else None,
                    )
                )
        elif kind == "list":
            for item in tok["children"]:
                _step_item(r, step, block, branch, item)
        elif kind == "block_code":
            if block == "branch" and branch is not None:
                info = str(tok.get("attrs", {}).get("info", "") or "")
                branch["code"].append(CodeBlock(info, tok.get("raw", ""), line))
        elif kind == "heading":
            block, branch = "", None
            step.text.append(r.plain(tok.get("text", "")))


def _new_step(r: Reading, heading: str, line: int) -> StepDraft:
    text = heading
    if text.lower().startswith("step "):
        text = text[5:].lstrip()
    i = 0
    while i < len(text) and i < 9 and text[i].isdigit():
        i += 1
    if i == 0:
        number = (r.steps[-1].number + 1) if r.steps else 1
        r.diag(
            "SOP012",
            ERROR,
            line,
            f"step heading '### {heading}' has no number: write '### {number}. {heading}'",
        )
        return StepDraft(number, heading, line)
    number = int(text[:i])
    title = text[i:].lstrip(".):").strip() or heading
    return StepDraft(number, title, line)


def check_numbering(r: Reading) -> None:
    for expected, step in enumerate(r.steps, start=1):
        if step.number != expected:
            r.diag(
                "SOP013",
                ERROR,
                step.line,
                f"step numbered {step.number} where "
                f"{expected} was expected: number the steps 1..{len(r.steps)} in order",
            )
            return


def _step_item(
    r: Reading, step: StepDraft, block: str, branch: dict[str, Any] | None, item: Token
) -> None:
    raw = first_text(item)
    plain = r.plain(raw)
    line = item["_line"]
    label = branch["label"] if block == "branch" and branch is not None else None
    if block == "validation":
        found = keyword_of(r, raw, plain)
        if found is None:
            found = Keyword(Level.MUST, "", plain)
        step.checks.append(
            make_action(r, item, plain, found, ActionKind.CHECK, step.number, "validation", None)
        )
    elif block == "error_handling":
        if plain[:3].lower() == "if " and ":" in plain:
            condition, _, response = plain[3:].partition(":")
            step.rules.append(
                ErrorRule(condition.strip(), response.strip(), line, step.number, quoted(response))
            )
            return
        found = keyword_of(r, raw, plain)
        if found is None:
            r.diag(
                "SOP022",
                WARNING,
                line,
                "Error Handling item not understood: write "
                "'If <condition>: <response>' or start it with an RFC 2119 keyword",
            )
            return
        step.actions.append(
            make_action(
                r, item, plain, found, ActionKind.ACTION, step.number, "error_handling", None
            )
        )
    elif block == "purpose":
        step.purpose.append(plain)
    elif block in ("actions", "constraints", "branch"):
        act = keyword_item(
            r,
            item,
            ActionKind.ACTION,
            step.number,
            "constraints" if block == "constraints" else "actions",
            label,
            where=f"step {step.number}",
            plain=plain,
        )
        if act is not None:
            step.actions.append(act)
            step.actions.extend(nested_tasks(r, item, act))
        elif block == "branch" and branch is not None:
            branch["text"].append(plain)
    else:
        found = keyword_of(r, raw, plain)
        if found is not None:
            act = make_action(
                r, item, plain, found, ActionKind.ACTION, step.number, "actions", None
            )
            step.actions.append(act)
            step.actions.extend(nested_tasks(r, item, act))
        else:
            step.text.append(plain)


def _substep(r: Reading, step: StepDraft, heading: str, line: int) -> SubStep | None:
    """``#### 4.1 Title`` (or ``#### Step 4.1: Title``) under step 4, else None (a label)."""
    found = _SUBSTEP.match(heading)
    if found is None:
        return None
    number, title = found.group(1), found.group(2).strip() or heading
    if number.split(".", 1)[0] != str(step.number):
        r.diag(
            "SOP017",
            WARNING,
            line,
            f"sub-step '{number}' is under step {step.number}: "
            f"number it {step.number}.{len(step.substeps) + 1} or move it under its step",
        )
    return SubStep(number, title, line)


def _in_substeps(b: StepDraft, lines: list[Action]) -> list[Action]:
    """Each line under a sub-step heading names it (the step's own lines come first)."""
    if not b.substeps:
        return lines
    out: list[Action] = []
    for act in lines:
        under = [s for s in b.substeps if s.line < act.line]
        out.append(dataclasses.replace(act, substep=under[-1].number) if under else act)
    return out


def _sentence_block(block: str) -> str:
    """The block a prose keyword sentence joins (prose outside a label: actions)."""
    return block if block in ("constraints", "error_handling") else "actions"


def freeze_step(r: Reading, b: StepDraft) -> Step:
    branches = [_resolve_branch(r, b.number, br) for br in b.branches]
    actions = _in_substeps(b, _conditioned(r, b.actions, branches))
    purpose = " ".join(p for p in b.purpose if p)
    text = "\n\n".join(t for t in b.text if t)
    if not purpose and b.text:
        purpose = b.text[0]
    if not b.actions and not b.checks:
        r.diag(
            "SOP014",
            WARNING,
            b.line,
            f"step {b.number} has no actions: add '**Actions**:' with MUST/SHOULD/MAY items",
        )
    return Step(
        number=b.number,
        title=b.title,
        line=b.line,
        purpose=purpose,
        actions=tuple(actions),
        checks=tuple(_in_substeps(b, b.checks)),
        error_rules=tuple(b.rules),
        branches=tuple(branches),
        substeps=tuple(b.substeps),
        text=text,
        performer=b.performer,
    )


def _match_value(r: Reading, label: str) -> tuple[str, str] | None:
    """(parameter, value) whose ``Values:`` name ``label`` ("Charges" -> operation=charge)."""
    words = label.lower().split()
    candidates = {" ".join(words)}
    if words:
        candidates.add(words[0])
    candidates |= {singular(c) for c in list(candidates)}
    for param in r.params:
        attr = next((a for a in param.attributes if a.key.lower() in _ENUM_KEYS), None)
        if attr is None:
            continue
        for value in enum_values(attr.value):
            if value.lower() in candidates:
                return param.name, value
    return None


def _conditioned(r: Reading, actions: list[Action], branches: list[Branch]) -> list[Action]:
    """Actions that open with an inline condition, as lines of a branch of the step."""
    out: list[Action] = []
    for act in actions:
        found = None
        if act.branch is None and act.text[:1] in ("I", "W", "F"):
            found = inline_condition(act.text, r.params, lambda lb: _match_value(r, lb))
        if found is None:
            out.append(act)
            continue
        label, param, value = found
        if not any(b.label == label for b in branches):
            branches.append(Branch(label, act.line, act.step or 0, param, value))
        out.append(dataclasses.replace(act, branch=label))
    return out


def _resolve_branch(r: Reading, step: int, br: dict[str, Any]) -> Branch:
    label: str = br["label"]
    words = label.lower().split()
    code = tuple(br["code"])
    text = "\n\n".join(t for t in br["text"] if t)
    found = _match_value(r, label)
    if found is not None:
        return Branch(label, br["line"], step, found[0], found[1], code, text)
    r.diag(
        "SOP023",
        WARNING,
        br["line"],
        f"branch 'For {label}' matches no parameter value: "
        f"list '{singular(words[0]) if words else label}' in a parameter's 'Values:'",
    )
    return Branch(label, br["line"], step, None, None, code, text)


def _step_label(tok: Token) -> tuple[str, str] | None:
    """A block label opening Actions / Validation / ... / ``For X`` inside a step.

    ``**Actions**:`` (the house style), a plain ``Actions:`` line, or an ``#### Actions``
    heading; a branch needs the bold or heading form (prose often says "For example:").
    """
    kind = tok["type"]
    if kind == "heading" and tok["attrs"]["level"] >= 4:
        text = str(tok.get("text", "")).strip().strip("*_").rstrip(":").strip()
        return text, ""
    if kind != "paragraph":
        return None
    raw = str(tok.get("text", "")).strip()
    found = bold_label(raw)
    if found is not None:
        return found
    if "\n" not in raw and raw.endswith(":"):
        key = " ".join(raw[:-1].lower().split())
        if key in BLOCK_LABELS:
            return raw[:-1].strip(), ""
    return None
