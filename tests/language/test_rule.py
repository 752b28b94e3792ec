"""`sop rule` names everything the parser reads, taken from the parser's own tables.

Nothing here is a copy of the grammar: each test reads the table the parser reads with
(or, for diagnostic codes, every code the language package's source can emit), so
adding a section, label, keyword, type, detail key, recovery phrase or code without it
reaching the rule fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.language.param_schema import DETAIL_KEYS, TYPES
from engine.language.recovery import VOCABULARY, interpret
from engine.language.sections import KNOWN_SECTIONS, METADATA_KEYS
from engine.language.steps import BLOCK_LABELS
from engine.model import KEYWORDS
from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rule(tmp_path_factory: pytest.TempPathFactory) -> str:
    proc = sop_cli("rule", cwd=tmp_path_factory.mktemp("rule"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


def test_every_section_the_parser_reads_is_in_the_rule(rule: str) -> None:
    headings = {h.lower() for h in re.findall(r"`## ([^`]+)`", rule)}
    assert set(KNOWN_SECTIONS) <= headings, set(KNOWN_SECTIONS) - headings


def test_every_metadata_key_the_engine_reads_is_in_the_rule(rule: str) -> None:
    """The table, and every key engine code looks up (``metadata.get("Key")``)."""
    keys = {key.lower() for key in re.findall(r"`\*\*([^*`]+)\*\*`", rule)}
    assert {key.lower() for key in METADATA_KEYS} <= keys
    used: set[str] = set()
    for path in (ROOT / "engine").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"metadata\.get\(\s*[\"']([^\"']+)[\"']", text))
    assert {"version", "status"} <= {key.lower() for key in used}
    assert {key.lower() for key in used} <= keys, used


def test_every_step_block_label_is_in_the_rule(rule: str) -> None:
    labels = {label.lower() for label in re.findall(r"`\*\*([^*`]+)\*\*:`", rule)}
    assert set(BLOCK_LABELS) <= labels, set(BLOCK_LABELS) - labels


def test_every_keyword_is_in_the_rule(rule: str) -> None:
    for keyword in KEYWORDS:
        assert f"`{keyword}`" in rule, keyword


def test_every_parameter_type_and_detail_key_is_in_the_rule(rule: str) -> None:
    for word in [*TYPES, *(key for keys in DETAIL_KEYS.values() for key in keys)]:
        assert f"`{word}`" in rule, word


def test_every_recovery_phrase_is_in_the_rule_and_understood_by_the_interpreter(
    rule: str,
) -> None:
    for phrase, _ in VOCABULARY:
        assert f"`{phrase}`" in rule, phrase
        assert interpret(phrase)["unknown_phrases"] == (), phrase


def test_every_diagnostic_code_the_language_package_emits_is_in_the_rule(rule: str) -> None:
    emitted: set[str] = set()
    for path in (ROOT / "engine" / "language").glob("*.py"):
        emitted |= set(re.findall(r"[\"'](SOP\d{3})[\"']", path.read_text(encoding="utf-8")))
    assert len(emitted) > 30
    listed = set(re.findall(r"^- (SOP\d{3}) \((?:error|warning|info)\): \S", rule, re.M))
    assert emitted <= listed, sorted(emitted - listed)
