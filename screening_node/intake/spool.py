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


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either nothing or the whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".incoming-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def spool_relpath(study_key: str, series_uid: str, sop_instance_uid: str) -> Path:
    """Where an instance lives, relative to the spool directory."""
    return Path(study_key) / name_for(series_uid, 16) / f"{name_for(sop_instance_uid)}.dcm"


def quarantine_relpath(reason_tag: str, digest: str) -> Path:
    """Where a kept-aside object lives, relative to the quarantine directory."""
    safe_tag = re.sub(r"[^a-z0-9_-]", "_", reason_tag.lower())[:32] or "object"
    return Path(safe_tag) / f"{digest[:32]}.dcm"
