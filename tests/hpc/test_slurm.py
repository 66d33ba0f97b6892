"""Stages on a real Slurm: worker jobs submitted through dask-jobqueue, per-run TLS, a worker
cancelled mid-run, workers replaced before their walltime, and GPU routing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from tests.conftest import linked_tiles
from tests.hpc.conftest import ROOT, WORKER_SETTINGS, watergee

pytestmark = pytest.mark.slurm


def _rasters(out: Path) -> dict[str, np.ndarray]:
    paths = sorted(out.glob("*/*.tif"))
    return {str(p.relative_to(out)): gdal.Open(str(p)).ReadAsArray() for p in paths}


def _assert_same_rasters(a: Path, b: Path) -> None:
    left, right = _rasters(a), _rasters(b)
    assert left and left.keys() == right.keys()
    for name, data in left.items():
        np.testing.assert_array_equal(data, right[name], err_msg=name)


def _resample_on_slurm(listing: Path, out: Path, *sets: str) -> list[str]:
    """The command line of resample on Slurm worker jobs, with `cluster.*` settings."""
    more = [arg for setting in sets for arg in ("--set", f"cluster.{setting}")]
    return ["resample", "-t", str(listing), "-o", str(out), "--cluster", "slurm",
            *WORKER_SETTINGS, *more]  # fmt: skip


def _records(out: Path, stage: str = "resample") -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob(f"*/.watergee/{stage}.json"))]


def test_a_stage_on_slurm_worker_jobs_equals_a_local_run(slurm, tmp_path):
    listing = linked_tiles(tmp_path / "in", 4, size10=256)
    local = watergee("resample", "-t", str(listing), "-o", str(tmp_path / "local"), "-w", "1")
    assert local.returncode == 0, local.stderr
    before = {job for job, _ in slurm.jobs("watergee-worker")}
    run = watergee(*_resample_on_slurm(listing, tmp_path / "slurm", "max_jobs=2"))
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
    again = watergee(*_resample_on_slurm(listing, tmp_path / "slurm"))
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
    args = _resample_on_slurm(listing, tmp_path / "slurm", "max_jobs=2", "min_jobs=2")
    process, lines = _run_until_first_tile(args)
    victim = slurm.queued("watergee-worker")[0]
    subprocess.run(["scancel", victim], check=True)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, "".join(lines) + err
    # a tile whose worker died after writing it (but before reporting) is found current
    # when its task is retried: skipped, not redone
    done, skipped = (int(out.split(f" {word}")[0].split()[-1]) for word in ("done", "skipped"))
    assert done + skipped == 6 and " 0 failed" in out, out
    assert all(r["status"] == "done" for r in _records(tmp_path / "slurm"))
    _assert_same_rasters(tmp_path / "local", tmp_path / "slurm")
    slurm.wait_idle()
    assert dict(slurm.jobs("watergee-worker"))[victim] == "CANCELLED"


def test_workers_leave_before_their_walltime_and_are_replaced(slurm, tmp_path):
    # tiles large enough that resampling them outlasts a worker's two seconds
    listing = linked_tiles(tmp_path / "in", 5, size10=1536)
    slurm.wait_idle()
    before = {job for job, _ in slurm.jobs("watergee-worker")}
    run = watergee(*_resample_on_slurm(listing, tmp_path / "out", "max_jobs=1", "lifetime=2s",
                                       "lifetime_stagger=0s"))  # fmt: skip
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
    settings = _settings("cluster.min_jobs=1", "cluster.max_jobs=1", "cluster.gpus=1")
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


def _sbatch(
    script: str, *args: str, env: dict[str, str], cwd: Path, slurm, script_args: tuple = ()
) -> set[str]:
    """Submit one of slurm/ as a user does (watergee on the PATH), wait for it, and return the
    final states of its jobs (one per array task)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    exports = ",".join(["ALL", *(f"{k}={v}" for k, v in env.items())])
    command = ["sbatch", "--parsable", f"--export={exports}", *args,
               str(ROOT / "slurm" / script), *script_args]  # fmt: skip
    submitted = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=cwd,
                               env={**os.environ, "PATH": path}, check=True)  # fmt: skip
    job = submitted.stdout.strip().split(";")[0]
    slurm.wait_idle(timeout=300)  # polls faster than sbatch --wait
    name = f"watergee-{script.removesuffix('.sbatch')}"
    return {state for _, state in slurm.jobs(name, since=int(job))}


def test_the_job_array_script_runs_a_stage_chunk_by_chunk_and_resubmits_failures(slurm, tmp_path):
    listing = linked_tiles(tmp_path / "in", 5, size10=256)
    broken = tmp_path / "in" / "T33UZA_20240101T100000"  # no band files: fails its task
    broken.mkdir()
    listing.write_text(listing.read_text() + f"{broken}\n")
    out = tmp_path / "work"
    env = {"STAGE": "resample", "TILES": str(listing), "OUT": str(out)}
    first = _sbatch("array.sbatch", "--array=1-3", env=env, cwd=tmp_path, slurm=slurm)
    assert first == {"COMPLETED", "FAILED"}  # the task holding the broken tile exited 1
    logs = sorted(tmp_path.glob("watergee-array-*.out"))
    assert len(logs) == 3 and all("2 tiles:" in p.read_text() for p in logs)
    assert sum(r["status"] == "done" for r in _records(out)) == 5

    retry = tmp_path / "retry.txt"
    pending = watergee("tiles", "pending", str(listing), "--stage", "resample", "--out", str(out),
                       "--write", str(retry))  # fmt: skip
    assert pending.returncode == 0 and "1 of 6 tiles pending" in pending.stderr, pending.stderr
    assert [line for line in retry.read_text().splitlines() if not line.startswith("#")] == [
        str(broken.resolve())
    ]
    for band in (tmp_path / "in" / "bands").iterdir():  # mend the tile, resubmit the list
        os.link(band, broken / f"{broken.name}_{band.name}")
    second = _sbatch("array.sbatch", "--array=1-1", env={**env, "TILES": str(retry)},
                     cwd=tmp_path, slurm=slurm)  # fmt: skip
    assert second == {"COMPLETED"}
    assert sum(r["status"] == "done" for r in _records(out)) == 6
    again = watergee("tiles", "pending", str(listing), "--stage", "resample", "--out", str(out))
    assert again.stdout == "" and "0 of 6 tiles pending" in again.stderr


def test_the_one_allocation_script_runs_scheduler_driver_and_workers_as_srun_tasks(slurm, tmp_path):
    listing = linked_tiles(tmp_path / "in", 4, size10=256)
    out = tmp_path / "work"
    env = {"STAGE": "resample", "TILES": str(listing), "OUT": str(out)}
    run = _sbatch("runner.sbatch", "--ntasks=4", env=env, cwd=tmp_path, slurm=slurm)
    log = next(tmp_path.glob("watergee-runner-*.out")).read_text()
    assert run == {"COMPLETED"}, log
    assert "cluster slurm-runner: scheduler tls://" in log
    assert "4 done" in log
    records = _records(out)
    assert len(records) == 4 and {r["worker"] for r in records} <= {"2", "3"}  # tasks 2, 3
    assert not list((out / ".watergee" / "cluster").iterdir())  # certificates gone

    # a driver that fails at once (an unreadable tile list) still ends the allocation
    bad = _sbatch("runner.sbatch", "--ntasks=3", env={**env, "TILES": str(tmp_path / "none.txt")},
                  cwd=tmp_path, slurm=slurm)  # fmt: skip
    assert bad == {"FAILED"}
    assert "none.txt: cannot read tile list" in "".join(
        p.read_text() for p in tmp_path.glob("watergee-runner-*.out")
    )


PIPELINE = """
sample:
  classes: {0: 2, 1: 1}
  class_names: {1: water, 2: land}
  ignore: []
  quota: 200
  required: [1, 2]
train: {model: rf, rf_trees: 20}
pipeline:
  steps: [resample, combine, {sample: {labels: "DATA/truth"}}, train, classify]
"""


def test_the_pipeline_script_runs_every_step_on_one_cluster_and_the_gpu_script_agrees(
    slurm, tmp_path
):
    from watergee.demo import make_demo

    listing = make_demo(tmp_path / "data", size=240)
    config = tmp_path / "pipeline.yaml"
    config.write_text(PIPELINE.replace("DATA", str(tmp_path / "data")))
    out = tmp_path / "run"
    env = {"CONFIG": str(config), "TILES": str(listing), "OUT": str(out)}
    workers = ("--set", "cluster.max_jobs=2", *WORKER_SETTINGS, "--set", "cluster.job_memory=2GB")
    before = {job for job, _ in slurm.jobs("watergee-worker")}
    first = _sbatch("pipeline.sbatch", env=env, cwd=tmp_path, slurm=slurm, script_args=workers)
    log = next(tmp_path.glob("watergee-pipeline-*.out")).read_text()
    assert first == {"COMPLETED"}, log
    assert log.count("cluster slurm: scheduler tls://") == 1  # one cluster for every step
    assert "pipeline complete" in log
    assert {job for job, _ in slurm.jobs("watergee-worker")} - before  # workers were jobs
    classify = _records(out / "tiles", "classify-pixel")
    assert len(classify) == 2 and all(r["worker"].startswith("SLURMCluster") for r in classify)

    again = _sbatch("pipeline.sbatch", env=env, cwd=tmp_path, slurm=slurm, script_args=workers)
    second = max(tmp_path.glob("watergee-pipeline-*.out"), key=lambda p: int(p.stem[18:]))
    assert again == {"COMPLETED"} and "cluster slurm" not in second.read_text()

    gpu = {"TILES": str(listing), "OUT": str(tmp_path / "gpu"), "MODEL": str(out / "models/rf")}
    stacks = ("--work", str(out / "tiles"), "--set", "cluster.processes=false")
    state = _sbatch("gpu-classify.sbatch", "--cpus-per-task=2", "--mem=4G", env=gpu,
                    cwd=tmp_path, slurm=slurm, script_args=stacks)  # fmt: skip
    log = next(tmp_path.glob("watergee-gpu-classify-*.out")).read_text()
    assert state == {"COMPLETED"}, log
    assert "GPU given by Slurm: 0 (CUDA_VISIBLE_DEVICES=0)" in log  # --gres=gpu:1 was granted
    for tile in ("T33UUU_20230715T101031", "T33UUV_20230720T101559"):
        name = f"{tile}/{tile}_classes_pixel.tif"
        expected = gdal.Open(str(out / "tiles" / name)).ReadAsArray()
        np.testing.assert_array_equal(
            gdal.Open(str(tmp_path / "gpu" / name)).ReadAsArray(), expected
        )


def test_tasks_wait_for_the_whole_scheduler_file(tmp_path):
    """The scheduler writes its file in place: a task that read it half written failed with a
    JSON error and left the allocation waiting; now it waits until the address is there."""
    import threading
    import time

    from watergee.core.errors import ClusterError
    from watergee.hpc.allocation import wait_for_scheduler

    path = tmp_path / "scheduler.json"
    path.write_text('{"type": "Scheduler", "addr')  # half written

    def finish():
        time.sleep(0.5)
        path.write_text('{"type": "Scheduler", "address": "tls://10.0.0.1:8786"}')

    writer = threading.Thread(target=finish)
    started = time.monotonic()
    writer.start()
    wait_for_scheduler(path, timeout=10)
    writer.join()
    assert time.monotonic() - started >= 0.5
    path.write_text("")
    with pytest.raises(ClusterError, match=r"scheduler\.json: the scheduler's address did not"):
        wait_for_scheduler(path, timeout=0.3)
