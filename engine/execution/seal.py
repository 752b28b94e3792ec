"""A keyed seal over a run's exact parameters.

The journal keeps parameters redacted. To prove on resume that the values a caller
supplies again are the ones the run started with, the journal records a digest of the
exact parameters. A plain hash of a value that redaction hid (a card number keeps its
first 6 and last 4 digits) could be brute-forced in about 10^5 guesses, so when
redaction altered anything the digest is an HMAC whose key lives outside the journal:
``SOP_JOURNAL_KEY``, else a random key kept in ``SOP_KEY_FILE`` (default
``$XDG_CONFIG_HOME/sop-engine/journal.key``, mode 0600, made on first use). Runs that
redaction left alone get a plain sha256: the journal holds those values anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import cache
from pathlib import Path

from engine.errors import SopError

_HMAC = "hmac-sha256"


def key_file() -> Path:
    explicit = os.environ.get("SOP_KEY_FILE")
    if explicit:
        return Path(explicit)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "sop-engine" / "journal.key"


@cache
def _file_key(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(fresh)
    return fresh


def _key() -> bytes:
    env = os.environ.get("SOP_JOURNAL_KEY")
    if env:
        return env.encode("utf-8")
    try:
        return _file_key(key_file())
    except OSError as exc:
        raise SopError(f"cannot read or create the journal key {key_file()}: {exc}") from exc


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"sop-engine key id\x1f" + key).hexdigest()[:12]


def seal(run_id: str, canonical_params: str, *, keyed: bool) -> str:
    """``sha256:HEX``, or ``hmac-sha256:KEYID:HEX`` when ``keyed``."""
    message = (run_id + "\x1f" + canonical_params).encode("utf-8")
    if not keyed:
        return "sha256:" + hashlib.sha256(message).hexdigest()
    key = _key()
    return f"{_HMAC}:{_key_id(key)}:" + hmac.new(key, message, hashlib.sha256).hexdigest()


def matches(recorded: str, run_id: str, canonical_params: str) -> bool:
    """Whether ``canonical_params`` are the ones ``recorded`` sealed; SopError when the key
    that sealed them is not this machine's."""
    keyed = recorded.startswith(_HMAC + ":")
    if keyed:
        wanted = recorded.split(":")[1]
        if _key_id(_key()) != wanted:
            raise SopError(
                f"run {run_id}: its parameters were sealed with journal key {wanted}, not this"
                f" machine's ({key_file()} / SOP_JOURNAL_KEY); resume it where that key is"
            )
    return hmac.compare_digest(seal(run_id, canonical_params, keyed=keyed), recorded)
