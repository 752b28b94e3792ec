"""A throwaway PostgreSQL cluster from Debian's ``postgresql`` package, for tests and benches.

``initdb`` + ``pg_ctl`` in a temporary directory, listening on 127.0.0.1 on a free port
(and a socket in that directory only). PostgreSQL refuses to run as root, so as root the
directory is given to the ``postgres`` user the package creates and the server runs as
that user (``runuser``). ``database()`` makes a fresh, empty database per test.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import psycopg


def bin_dir() -> Path | None:
    """The newest installed server's bin directory (None: ``postgresql`` not installed)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postgres:
    """One cluster, started on enter and removed on exit."""

    def __init__(self, *, fsync: bool = False) -> None:
        found = bin_dir()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
        self._bin = found
        self._fsync = fsync
        self._dir = Path(tempfile.mkdtemp(prefix="sop-pg-"))
        self._as: list[str] = []
        self.port = _free_port()
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def __enter__(self) -> Postgres:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self._dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        os.chmod(self._dir, 0o700)
        data = str(self._dir / "data")
        self._run(
            str(self._bin / "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1"
            f" -c fsync={'on' if self._fsync else 'off'}"
        )
        try:
            self._run(
                str(self._bin / "pg_ctl"), "-D", data, "-l", str(self._dir / "log"),
                "-w", "-t", "60", "-o", options, "start",
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._run(
                str(self._bin / "pg_ctl"),
                "-D",
                str(self._dir / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            )
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def socket_url(self, database: str) -> str:
        """``database`` through the cluster's Unix socket: the ``postgresql:///`` form."""
        return f"postgresql:///{database}?host={self._dir}&port={self.port}&user=postgres"

    def database(self) -> str:
        """A new empty database; its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
