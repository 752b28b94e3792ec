"""The seed SOP is the given procedure, byte for byte (never edited in this repository)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sops" / "payment-processing.sop.md"
SHARED = ROOT.parent / "shared" / "seeds" / "payment-processing.sop.md"
# sha256 of /work/shared/seeds/payment-processing.sop.md as given (the CI clone lacks ../shared)
SEED_SHA256 = "118979c5d925b30cc6d585255c391e444cb92c2b5c22d22b05b0a37925482eb9"


def test_seed_hash_is_pinned() -> None:
    assert hashlib.sha256(SEED.read_bytes()).hexdigest() == SEED_SHA256


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is not beside this checkout")
def test_seed_equals_the_shared_copy() -> None:
    assert SEED.read_bytes() == SHARED.read_bytes()
