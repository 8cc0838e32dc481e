"""A throw-away PostgreSQL server for tests (Debian's postgresql package, run as user postgres)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.node_process import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail("PostgreSQL is not installed: run scripts/setup.sh (installs the postgresql package)")
    return found[-1]


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a private cluster on a free loopback port; yields a SQLAlchemy URL."""
    root = Path(tempfile.mkdtemp(prefix="sn-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    subprocess.run(_as_postgres(_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"),
                   check=True, capture_output=True)
    server = subprocess.Popen(_as_postgres(_bin("postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
                                           "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            ready = subprocess.run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True)
            if ready.returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("PostgreSQL did not start")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(root, ignore_errors=True)
