"""``screening-node demo``: the whole product in one step, on embedded defaults.

Starts the node, makes a synthetic CT study with a known fracture, sends it
to the node with DCMTK ``storescu`` (C-STORE, as a scanner would), waits for
the analysis, and shows the findings and where the result objects are.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from screening_node.analysis.results import StudyResult
from screening_node.audit.models import Job, Series
from screening_node.cli.analyze import format_table
from screening_node.cli.common import add_state_options, settings_from_args
from screening_node.cli.serve import configure_logging

DEFAULT_FRACTURES = ("L1:2:wedge", "T8:1:biconcave")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="start the node, send it a phantom study, show the results",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_state_options(parser)
    parser.add_argument("--port", type=int, default=0, help="port of the node (default: any free port)")
    parser.add_argument("--seed", type=int, default=7, help="phantom seed")
    parser.add_argument("--fracture", action="append", metavar="LEVEL:GRADE:MORPHOLOGY",
                        help=f"fractures in the phantom (default: {' and '.join(DEFAULT_FRACTURES)})")
    parser.add_argument("--stable-age", type=float, default=3.0, metavar="SECONDS")
    parser.add_argument("--destination", action="append", metavar="AET@HOST:PORT",
                        help="also deliver the results to this PACS")
    parser.add_argument("--keep-serving", action="store_true", help="keep the node running after the demo")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the results")
    parser.set_defaults(func=run)


def _storescu() -> str | None:
    for candidate in ("/usr/bin/storescu", shutil.which("storescu")):
        if candidate and Path(candidate).exists() and ".venv" not in candidate and "pyenv" not in candidate:
            return candidate
    return None


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args, **{"node.port": args.port, "node.host": "127.0.0.1",
                                           "intake.stable_age_s": args.stable_age,
                                           "delivery.destinations": args.destination,
                                           "logging.level": "WARNING"})
    configure_logging(settings.logging.level)
    storescu = _storescu()
    if storescu is None:
        print("screening-node demo: DCMTK storescu is not installed (run scripts/setup.sh)", file=sys.stderr)
        return 2
    from screening_node.node import Node

    demo_dir = settings.data_dir / "demo" / f"phantom-seed{args.seed}"
    if not (demo_dir / "dicom").exists():
        fractures = args.fracture or list(DEFAULT_FRACTURES)
        command = [sys.executable, "-m", "screening_node", "phantom", "--out", str(demo_dir), "--seed", str(args.seed),
                   "--fov", "trunk", "--format", "dicom"]
        for fracture in fractures:
            command += ["--fracture", fracture]
        print(f"1/4 making a synthetic CT study (seed {args.seed}, fractures: {', '.join(fractures)}) ...", flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    files = sorted(p for p in (demo_dir / "dicom").iterdir() if p.is_file())
    node = Node(settings)
    node.start()
    try:
        print(f"2/4 node {settings.node.ae_title} listening on 127.0.0.1:{node.port}; data in {settings.data_dir}",
              flush=True)
        print(f"3/4 sending {len(files)} CT slices with DCMTK storescu ...", flush=True)
        sent = subprocess.run([storescu, "-aec", settings.node.ae_title, "127.0.0.1", str(node.port),
                               *map(str, files)], capture_output=True, text=True,
                              env={**os.environ, "TCP_NODELAY": "1"})
        if sent.returncode != 0:
            print(f"storescu failed:\n{sent.stderr}", file=sys.stderr)
            return 1
        print(f"4/4 waiting {settings.intake.stable_age_s:g} s for the series to be complete, then analysing ...",
              flush=True)
        job = _wait_for_job(node, files[0], args.timeout)
        if job is None:
            print("screening-node demo: no result within the timeout; see `screening-node status`", file=sys.stderr)
            return 1
        _show(job)
        if args.keep_serving:
            print("node keeps serving; Ctrl-C to stop", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
    return 0


def _wait_for_job(node, first_file: Path, timeout: float) -> Job | None:  # type: ignore[no-untyped-def]
    import pydicom

    series_uid = str(pydicom.dcmread(first_file, stop_before_pixels=True).SeriesInstanceUID)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with node.db.session() as session:
            series = session.scalars(select(Series).where(Series.series_uid == series_uid)).first()
            if series is not None and series.state == "skipped":
                print(f"series skipped: {series.routing_reason}")
                return None
            if series is not None:
                job = session.scalars(select(Job).where(Job.series_id == series.id, Job.state.in_(("done", "failed")))
                                      .order_by(Job.id.desc())).first()
                if job is not None:
                    return job
        time.sleep(0.5)
    return None


def _show(job: Job) -> None:
    print()
    print(f"analysis {job.outcome}" + (f": {job.reason}" if job.reason else ""))
    if not job.result_dir:
        return
    result_dir = Path(job.result_dir)
    results = result_dir / "results.json"
    if results.exists():
        print(format_table(StudyResult.read(results)))
    print()
    print(f"results folder : {result_dir}")
    for name, what in (("summary.png", "summary image"), ("seg.dcm", "DICOM SEG"), ("sr.dcm", "TID 1500 SR"),
                       ("summary.dcm", "summary Secondary Capture"), ("results.json", "results.json")):
        if (result_dir / name).exists():
            print(f"{what:15}: {result_dir / name}")
