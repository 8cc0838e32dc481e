"""Receive throughput of the node against DCMTK storescp, same series, same run.

    .venv/bin/python benchmarks/intake.py [--repeats 3] [--series DIR] [--copies N]

Both receivers listen on loopback; DCMTK storescu sends the same files to each
(TCP_NODELAY=1 for the DCMTK tools: without it Nagle's algorithm stalls every
PDU). The node fsyncs every instance and indexes it in SQLite; storescp only
writes files. Prints MB/s for each (median of repeats) and the ratio, plus a
pynetdicom SCP that discards what it receives: the ceiling of the framework.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SERIES = REPO.parent / "shared" / "data" / "tcia-pancreas-ct-cb-001"
ENV = {**os.environ, "TCP_NODELAY": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("receiver exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("receiver did not listen")


def make_copies(series: Path, copies: int, out: Path) -> list[Path]:
    """The series ``copies`` times over with fresh UIDs (a bigger study without other data)."""
    files = sorted(p for p in series.iterdir() if p.suffix == ".dcm")
    if copies <= 1:
        return files
    result = []
    for copy in range(copies):
        series_uid = generate_uid()
        for path in files:
            ds = pydicom.dcmread(path)
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            target = out / f"c{copy}-{path.name}"
            ds.save_as(target)
            result.append(target)
    return result


def send(port: int, files: list[Path], max_pdu: int) -> float:
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/storescu", "-aec", "ANY", "--max-pdu", str(max_pdu),
                             "127.0.0.1", str(port), *map(str, files)], env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return elapsed


def time_receiver(command: list[str], port: int, files: list[Path], max_pdu: int,
                  env: dict[str, str] | None = None) -> float:
    """Start a receiver listening on ``port``, time storescu sending ``files`` to it, stop it."""
    proc = subprocess.Popen(command, env=env or ENV, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        return send(port, files, max_pdu)
    finally:
        proc.terminate()
        proc.wait()


def run_storescp(files: list[Path], max_pdu: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        port = free_port()
        return time_receiver(["/usr/bin/storescp", "--max-pdu", str(max_pdu), "-od", out, str(port)],
                             port, files, max_pdu)


BARE_PYNETDICOM_SCP = """
import sys
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage
ae = AE()
ae.maximum_pdu_size = int(sys.argv[2])
ae.add_supported_context(CTImageStorage, ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])
ae.start_server(("127.0.0.1", int(sys.argv[1])),
                evt_handlers=[(evt.EVT_C_STORE, lambda event: (event.encoded_dataset(include_meta=True), 0)[1])])
"""


def run_bare_pynetdicom(files: list[Path], max_pdu: int) -> float:
    """pynetdicom receiving and discarding: the framework's own ceiling, without disk or index."""
    port = free_port()
    return time_receiver([sys.executable, "-c", BARE_PYNETDICOM_SCP, str(port), str(max_pdu)], port, files, max_pdu)


def run_node(files: list[Path], max_pdu: int) -> float:
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        env = {**ENV, "SCREENING_NODE_NODE_HOST": "127.0.0.1", "SCREENING_NODE_NODE_MAX_PDU": str(max_pdu),
               "SCREENING_NODE_LOGGING_LEVEL": "WARNING"}
        return time_receiver([sys.executable, "-m", "screening_node", "serve", "--no-analysis", "--data-dir", data,
                              "--port", str(port), "--stable-age", "3600"], port, files, max_pdu, env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=Path, default=DEFAULT_SERIES)
    parser.add_argument("--copies", type=int, default=1, help="send the series this many times with new UIDs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-pdu", type=int, nargs="+", default=[16384, 131072],
                        help="PDU sizes to compare (DCMTK allows 4096..131072; the SCU proposes it and the receivers offer it)")
    args = parser.parse_args()
    if not shutil.which("/usr/bin/storescp"):
        print("DCMTK is not installed: run scripts/setup.sh", file=sys.stderr)
        return 2
    if not args.series.exists():
        print(f"{args.series} is absent (../shared/data is not beside this checkout)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        files = make_copies(args.series, args.copies, Path(tmp))
        megabytes = sum(p.stat().st_size for p in files) / 1e6
        print(f"{len(files)} instances, {megabytes:.1f} MB, {args.repeats} repeats (median)")
        for max_pdu in args.max_pdu:
            scp_times = [run_storescp(files, max_pdu) for _ in range(args.repeats)]
            node_times = [run_node(files, max_pdu) for _ in range(args.repeats)]
            bare_times = [run_bare_pynetdicom(files, max_pdu) for _ in range(args.repeats)]
            scp, node = statistics.median(scp_times), statistics.median(node_times)
            bare = statistics.median(bare_times)
            print(f"max PDU {max_pdu:>8}: storescp {megabytes / scp:7.1f} MB/s ({scp:.2f} s)   "
                  f"node {megabytes / node:7.1f} MB/s ({node:.2f} s)   node/storescp = {scp / node:.2f}   "
                  f"[bare pynetdicom, no disk: {megabytes / bare:.1f} MB/s = {scp / bare:.2f} of storescp]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
