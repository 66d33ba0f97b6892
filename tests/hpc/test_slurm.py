"""Stages on a real Slurm: worker jobs submitted through dask-jobqueue, per-run TLS, a worker
cancelled mid-run, workers replaced before their walltime, and GPU routing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from tests.conftest import linked_tiles
from tests.hpc.conftest import WORKER_SETTINGS, watergee

pytestmark = pytest.mark.slurm


def _rasters(out: Path) -> dict[str, np.ndarray]:
    paths = sorted(out.glob("*/*.tif"))
    return {str(p.relative_to(out)): gdal.Open(str(p)).ReadAsArray() for p in paths}


def _assert_same_rasters(a: Path, b: Path) -> None:
    left, right = _rasters(a), _rasters(b)
    assert left and left.keys() == right.keys()
    for name, data in left.items():
        np.testing.assert_array_equal(data, right[name], err_msg=name)


def _records(out: Path, stage: str = "resample") -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob(f"*/.watergee/{stage}.json"))]


def test_a_stage_on_slurm_worker_jobs_equals_a_local_run(slurm, tmp_path):
    listing = linked_tiles(tmp_path / "in", 4, size10=256)
    local = watergee("resample", "-t", str(listing), "-o", str(tmp_path / "local"), "-w", "1")
    assert local.returncode == 0, local.stderr
    before = {job for job, _ in slurm.jobs("watergee-worker")}
    run = watergee(
        "resample",
        "-t",
        str(listing),
        "-o",
        str(tmp_path / "slurm"),
        "--cluster",
        "slurm",
        "--set",
        "cluster.max_jobs=2",
        *WORKER_SETTINGS,
    )
    assert run.returncode == 0, run.stderr
    assert "cluster slurm: scheduler tls://" in run.stderr  # encrypted by default
    _assert_same_rasters(tmp_path / "local", tmp_path / "slurm")
    assert all(r["status"] == "done" and r["worker"] for r in _records(tmp_path / "slurm"))
    slurm.wait_idle()
    jobs = {job for job, _ in slurm.jobs("watergee-worker")} - before
    assert 1 <= len(jobs) <= 2, jobs  # the workers were Slurm jobs, never more than asked
    cluster = tmp_path / "slurm" / ".watergee" / "cluster"
    assert list((cluster / "logs").glob("watergee-worker-*.err"))
    assert not list(cluster.glob("certificates-*")), "the run's certificates were left behind"
    # everything current: no cluster starts, no job is submitted
    again = watergee(
        "resample",
        "-t",
        str(listing),
        "-o",
        str(tmp_path / "slurm"),
        "--cluster",
        "slurm",
        *WORKER_SETTINGS,
    )
    assert again.returncode == 0 and "scheduler" not in again.stderr, again.stderr
    assert "4 skipped" in again.stdout


def _settings(*sets: str):
    from watergee.core.config import load_settings

    pairs = [s for s in WORKER_SETTINGS if s != "--set"]
    return load_settings(None, ["cluster.kind=slurm", *pairs, *sets])


def test_a_client_without_the_runs_certificate_is_refused(slurm, tmp_path):
    from distributed import Client
    from distributed.security import Security

    from watergee.hpc.clusters import open_client

    settings = _settings("cluster.min_jobs=1")
    folder = tmp_path / "cluster"
    certificates = folder / "certificates-tls"
    with open_client(settings.cluster, tasks=1, folder=folder, run="tls") as client:
        assert client.submit(sum, [1, 2]).result(timeout=60) == 3  # a worker job joined
        address = client.scheduler.address
        assert address.startswith("tls://")
        assert certificates.stat().st_mode & 0o777 == 0o700
        assert {p.stat().st_mode & 0o777 for p in certificates.iterdir()} == {0o600}
        with pytest.raises((OSError, TimeoutError)):  # another certificate: handshake refused
            Client(address, security=Security.temporary(), timeout="3s")
        with pytest.raises((OSError, TimeoutError)):  # no TLS at all
            Client(address.replace("tls://", "tcp://"), timeout="3s")
    assert not certificates.exists()


def _run_until_first_tile(args: list[str]) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "watergee.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in process.stderr:  # batch-log progress: one line per finished tile
        lines.append(line)
        if " done (" in line:
            break
    return process, lines


def test_a_worker_job_cancelled_mid_run_loses_no_tile(slurm, tmp_path):
    listing = linked_tiles(tmp_path / "in", 6, size10=768)
    local = watergee("resample", "-t", str(listing), "-o", str(tmp_path / "local"), "-w", "2")
    assert local.returncode == 0, local.stderr
    slurm.wait_idle()
    args = [
        "resample",
        "-t",
        str(listing),
        "-o",
        str(tmp_path / "slurm"),
        "--cluster",
        "slurm",
        "--set",
        "cluster.max_jobs=2",
        "--set",
        "cluster.min_jobs=2",
        *WORKER_SETTINGS,
    ]
    process, lines = _run_until_first_tile(args)
    victim = slurm.queued("watergee-worker")[0]
    subprocess.run(["scancel", victim], check=True)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, "".join(lines) + err
    assert "6 done" in out.splitlines()[-1], out
    _assert_same_rasters(tmp_path / "local", tmp_path / "slurm")
    slurm.wait_idle()
    assert dict(slurm.jobs("watergee-worker"))[victim] == "CANCELLED"


def test_workers_leave_before_their_walltime_and_are_replaced(slurm, tmp_path):
    listing = linked_tiles(tmp_path / "in", 5, size10=1024)
    slurm.wait_idle()
    before = {job for job, _ in slurm.jobs("watergee-worker")}
    run = watergee(
        "resample",
        "-t",
        str(listing),
        "-o",
        str(tmp_path / "out"),
        "--cluster",
        "slurm",
        *WORKER_SETTINGS,
        "--set",
        "cluster.max_jobs=1",
        "--set",
        "cluster.lifetime=2s",
        "--set",
        "cluster.lifetime_stagger=0s",
    )
    assert run.returncode == 0, run.stderr
    assert all(r["status"] == "done" for r in _records(tmp_path / "out"))
    slurm.wait_idle()
    jobs = {job for job, _ in slurm.jobs("watergee-worker")} - before
    assert len(jobs) >= 2, f"one worker job did all the work: {jobs}"
    assert {state for job, state in slurm.jobs("watergee-worker") if job in jobs} <= {
        "COMPLETED",
        "CANCELLED",
    }, "a worker job hit its walltime"


def test_a_stage_that_declares_a_gpu_runs_only_on_gpu_workers(slurm, tmp_path):
    from dataclasses import replace

    from watergee.core.registry import STAGES
    from watergee.core.runner import run_stage
    from watergee.hpc.clusters import open_client
    from watergee.sentinel2 import read_tiles

    listing = linked_tiles(tmp_path / "in", 4, size10=256)
    settings = _settings(
        "cluster.min_jobs=1", "cluster.max_jobs=1", "cluster.worker_resources={GPU: 1}"
    )
    folder = tmp_path / "cluster"
    with open_client(settings.cluster, tasks=1, folder=folder, run="gpu") as client:
        client.wait_for_workers(1, timeout=60)
        certificate = folder / "certificates-gpu"
        cpu_worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                client.scheduler.address,
                "--name",
                "cpu-worker",
                "--nthreads",
                "1",
                "--no-nanny",
                "--tls-ca-file",
                str(certificate / "cert.pem"),
                "--tls-cert",
                str(certificate / "cert.pem"),
                "--tls-key",
                str(certificate / "key.pem"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client.wait_for_workers(2, timeout=60)
            gpu_stage = replace(STAGES["resample"], resources={"GPU": 1})
            report = run_stage(gpu_stage, read_tiles(listing), settings, tmp_path / "out", client)
            assert report.count("done") == 4
            workers = {r["worker"] for r in _records(tmp_path / "out")}
            assert "cpu-worker" not in workers and len(workers) == 1, workers
        finally:
            cpu_worker.send_signal(signal.SIGTERM)
            cpu_worker.wait(30)
