"""Orthanc as the PACS in tests: Debian's /usr/sbin/Orthanc on loopback, driven over REST.

``Orthanc(tmp_dir)`` writes a config JSON (free DICOM and HTTP ports, storage
in ``tmp_dir``, AE title ORTHANC, no authentication, no called-AE check) and
``start()`` waits until ``GET /system`` answers. ``stop()`` and ``start()``
again keep the same ports and storage, so a test can take the PACS away and
bring it back. REST helpers list studies/series/instances and fetch an
instance's file or its tags. Use ``orthanc_server(tmp_dir)`` as a context
manager, or a module-scoped fixture built on it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

ORTHANC_BIN = "/usr/sbin/Orthanc"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Orthanc:
    """One Orthanc server process with its own ports, storage and log."""

    def __init__(self, work_dir: Path, *, ae_title: str = "ORTHANC", extra_config: dict[str, Any] | None = None):
        binary = shutil.which(ORTHANC_BIN) or shutil.which("Orthanc")
        if binary is None:
            pytest.fail("Orthanc is not installed: run scripts/setup.sh (installs the orthanc Debian package)")
        self.binary = binary
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        self.ae_title = ae_title
        self.dicom_port = _free_port()
        self.http_port = _free_port()
        self.config_path = work_dir / "orthanc.json"
        self.log_path = work_dir / "orthanc.log"
        config = {
            "Name": "screening-node-test", "StorageDirectory": str(work_dir / "storage"),
            "IndexDirectory": str(work_dir / "storage"), "DicomAet": ae_title, "DicomPort": self.dicom_port,
            "HttpPort": self.http_port, "DicomServerEnabled": True, "HttpServerEnabled": True,
            "DicomCheckCalledAet": False, "RemoteAccessAllowed": True, "AuthenticationEnabled": False,
            "DicomAlwaysAllowStore": True, "DicomModalities": {}, "Plugins": [], "SaveJobs": False,
            "StableAge": 1, "HttpsVerifyPeers": False, "ConcurrentJobs": 1,
        }
        config.update(extra_config or {})
        self.config_path.write_text(json.dumps(config, indent=1))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def destination(self) -> str:
        """This PACS in the node's ``AET@HOST:PORT`` form."""
        return f"{self.ae_title}@127.0.0.1:{self.dicom_port}"

    def start(self, timeout_s: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([self.binary, str(self.config_path)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"Orthanc exited at start ({self.proc.returncode}):\n{self.log()}")
            try:
                self.get("/system")
                with socket.create_connection(("127.0.0.1", self.dicom_port), timeout=0.5):
                    return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"Orthanc did not answer within {timeout_s} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    # --- REST -----------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def get(self, path: str) -> Any:
        return json.loads(self._request("GET", path))

    def studies(self) -> list[str]:
        return list(self.get("/studies"))

    def series(self) -> list[str]:
        return list(self.get("/series"))

    def instances(self) -> list[str]:
        return list(self.get("/instances"))

    def instance_tags(self, orthanc_id: str) -> dict[str, Any]:
        """Tags by keyword (Orthanc's simplified form)."""
        return dict(self.get(f"/instances/{orthanc_id}/simplified-tags"))

    def instance_file(self, orthanc_id: str) -> bytes:
        return self._request("GET", f"/instances/{orthanc_id}/file")

    def sop_instance_uids(self) -> list[str]:
        """SOP Instance UID of every stored instance (duplicates would show twice)."""
        return [self.instance_tags(i)["SOPInstanceUID"] for i in self.instances()]

    def clear(self) -> None:
        """Delete every study: a clean PACS for the next test of a module-scoped server."""
        for study in self.studies():
            self._request("DELETE", f"/studies/{study}")


@contextmanager
def orthanc_server(work_dir: Path, **kwargs: Any) -> Iterator[Orthanc]:
    """A started Orthanc, stopped on exit (also when the test fails)."""
    server = Orthanc(work_dir, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def write_sc_objects(folder: Path, count: int = 3, *, study_uid: str | None = None) -> list[Path]:
    """``count`` tiny Secondary Capture images (highdicom) of one study: objects to deliver in tests."""
    import highdicom as hd
    import numpy as np
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    paths = []
    for number in range(1, count + 1):
        pixels = np.full((8, 8), number * 10, dtype=np.uint8)
        image = hd.sc.SCImage(pixel_array=pixels, photometric_interpretation="MONOCHROME2", bits_allocated=8,
                              coordinate_system="PATIENT", study_instance_uid=study_uid,
                              series_instance_uid=series_uid, series_number=900, sop_instance_uid=generate_uid(),
                              instance_number=number, manufacturer="screening-node tests", patient_id="DLV-TEST",
                              patient_name="Delivery^Test", patient_orientation=("L", "P"))
        path = folder / f"sc{number:03d}.dcm"
        image.save_as(path)
        paths.append(path)
    return paths
