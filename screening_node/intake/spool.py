"""Durable storage of received objects: temporary file, fsync, rename, fsync directory.

File names never come from UIDs: they are hashes, so a hostile or broken UID
can never escape the spool (no path traversal) and every name is valid on any
file system.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def is_valid_uid(uid: object) -> bool:
    """DICOM UI syntax: dot-separated numbers without leading zeros, at most 64 characters."""
    return isinstance(uid, str) and 0 < len(uid) <= 64 and bool(UID_RE.match(uid))


def name_for(uid: str, length: int = 24) -> str:
    """A file-system-safe, collision-resistant name derived from a UID."""
    return hashlib.sha256(uid.encode("utf-8", "replace")).hexdigest()[:length]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_durable_temp(folder: Path, data: bytes) -> Path:
    """Write ``data`` to a new hidden temporary file in ``folder`` and fsync it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".incoming-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        discard(Path(tmp_name))
        raise
    return Path(tmp_name)


def publish(tmp: Path, path: Path) -> None:
    """Atomically give a durable temporary file its final name, and make the rename durable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def discard(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either nothing or the whole file."""
    publish(write_durable_temp(path.parent, data), path)


def spool_relpath(study_key: str, series_uid: str, sop_instance_uid: str) -> Path:
    """Where an instance lives, relative to the spool directory."""
    return Path(study_key) / name_for(series_uid, 16) / f"{name_for(sop_instance_uid)}.dcm"


def quarantine_relpath(reason_tag: str, digest: str) -> Path:
    """Where a kept-aside object lives, relative to the quarantine directory."""
    safe_tag = re.sub(r"[^a-z0-9_-]", "_", reason_tag.lower())[:32] or "object"
    return Path(safe_tag) / f"{digest[:32]}.dcm"
