"""Where the default journal lives: one place per project, whatever the current folder.

``SOP_JOURNAL`` (and ``--journal``) name a file outright. Otherwise the journal is
``.sop/journal.db`` at the project root, the nearest folder from the current one up
that holds a ``pyproject.toml`` or a ``sops/`` folder, so ``sop run`` from ``sops/``
and from the root share one journal (and `sop resume` finds the run). Outside a
project it is ``sop-engine/journal.db`` in the user's data directory
(``$XDG_DATA_HOME``, default ``~/.local/share``), never a stray ``.sop/`` wherever
the command happened to run.

A ``postgresql://`` (or ``postgres://``) URL there selects the PostgreSQL backend
instead (``database_url``): the one place that tells a URL from a file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: The journal's path under a project root.
PROJECT_JOURNAL = Path(".sop") / "journal.db"


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder from ``start`` (the current one) up with pyproject.toml or sops/.

    ``os.path`` rather than ``pathlib``: the API looks this up on every run.
    """
    here = os.getcwd() if start is None else os.path.abspath(start)  # getcwd: no symlinks
    while True:
        if os.path.isfile(os.path.join(here, "pyproject.toml")) or os.path.isdir(
            os.path.join(here, "sops")
        ):
            return Path(here)
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def data_dir() -> Path:
    """The user's data directory (XDG): ``$XDG_DATA_HOME`` or ``~/.local/share``."""
    configured = os.environ.get("XDG_DATA_HOME")
    if configured and Path(configured).is_absolute():  # the XDG spec ignores relative ones
        return Path(configured)
    return Path.home() / ".local" / "share"


def chosen(given: str | Path | None = None, start: Path | None = None) -> str | Path:
    """The journal ``given`` names, else ``default_path``: a database URL stays the string it
    was written as (``Path`` would fold ``postgresql:///db`` into ``postgresql:/db``)."""
    if given is None or given == "":
        return default_path(start)
    return str(given) if database_url(given) is not None else Path(given)


def default_path(start: Path | None = None) -> str | Path:
    """``SOP_JOURNAL`` if set (a URL as written), else the project's journal, else the user's."""
    env = os.environ.get("SOP_JOURNAL")
    if env:
        return env if database_url(env) is not None else Path(env)
    root = project_root(start)
    if root is not None:
        return root / PROJECT_JOURNAL
    return data_dir() / "sop-engine" / "journal.db"


#: ``postgresql://...`` (``postgresql:///db``: the local socket)
_URL = re.compile(r"^(postgres(?:ql)?)://(.*)$", re.DOTALL)


def database_url(location: str | Path | None) -> str | None:
    """The PostgreSQL URL ``location`` names (None: a file, the SQLite journal)."""
    if not isinstance(location, str):  # a Path is always a file
        return None
    return location if _URL.match(location) else None


def shown(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"^(\w+://[^/:@]*):[^/@]*@", r"\1:***@", url)


def exists(location: str | Path) -> bool:
    """Whether a journal is there to read: a database URL always is (its tables are made
    at first open), a file when it exists (read-only commands never create one)."""
    return database_url(location) is not None or Path(location).is_file()
