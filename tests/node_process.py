"""Run a real node as a subprocess and drive it like a PACS administrator would.

Used by the integration tests: start ``screening-node serve`` on a free
loopback port, send with DCMTK ``storescu``, read ``status --json``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from tests.conftest import dcmtk_tool

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "screening_node", *args], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"screening-node {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


class NodeProcess:
    """``screening-node serve`` in a subprocess, stopped with SIGTERM."""

    def __init__(self, data_dir: Path, *, stable_age: float = 1.5, extra: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.log_path = data_dir.parent / f"{data_dir.name}-node.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "screening_node", "serve", "--data-dir", str(data_dir), "--port", str(self.port),
             "--stable-age", str(stable_age), *extra],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "SCREENING_NODE_NODE_HOST": "127.0.0.1", "SCREENING_NODE_INTAKE_CHECK_INTERVAL_S": "0.2",
                 **(env or {})})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"node exited at start:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"node did not listen within 60 s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def status(self) -> list[dict[str, Any]]:
        return json.loads(cli("status", "--json", "--data-dir", str(self.data_dir)).stdout)

    def wait_for(self, predicate, timeout: float = 120.0) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = self.status()
            if predicate(rows):
                return rows
            time.sleep(0.5)
        raise AssertionError(f"timed out; last status: {json.dumps(rows, indent=1)}\nnode log:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def storescu(port: int, files: Sequence[Path], *, extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """Send with DCMTK's storescu (TCP_NODELAY set: without it Nagle's algorithm slows every PDU)."""
    return subprocess.run([dcmtk_tool("storescu"), *extra, "-aec", "SCREENING", "127.0.0.1", str(port),
                           *[str(f) for f in files]],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "TCP_NODELAY": "1"})
