"""Dask workers as Slurm jobs (dask-jobqueue's SLURMCluster), built from the cluster settings,
with per-run certificates, adaptive scaling and workers that leave before their walltime."""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watergee.core.config import ClusterSettings
from watergee.core.errors import ClusterError
from watergee.hpc.security import run_certificates, security_from

if TYPE_CHECKING:
    from dask_jobqueue import SLURMCluster
    from distributed.security import Security

#: Stands for the scheduler's address in a job script printed before any scheduler runs.
ADDRESS_PLACEHOLDER = "SCHEDULER-ADDRESS:PORT"


def worker_python(settings: ClusterSettings) -> str:
    """The command that starts Python on a worker: inside the image when one is set (`--nv`
    binds the host's NVIDIA driver; without a GPU it only warns)."""
    python = settings.python or (sys.executable if not settings.image else "python")
    if not settings.image:
        return python
    binds = [f"--bind {shlex.quote(','.join(settings.binds))}"] if settings.binds else []
    image = shlex.quote(settings.image)
    return " ".join([settings.apptainer, "exec", "--nv", *binds, image, python])


def worker_resources(settings: ClusterSettings) -> dict[str, float]:
    """The Dask resources each worker offers: GPU=N on GPU jobs, plus any declared ones."""
    resources = dict(settings.worker_resources)
    if settings.gpus:
        resources["GPU"] = float(settings.gpus)
    return resources


def job_options(settings: ClusterSettings, folder: Path, security: Security | None) -> dict:
    """SLURMCluster's keyword arguments for these settings; `folder` is the run's shared folder
    (worker logs)."""
    extra_args: list[str] = []
    resources = worker_resources(settings)
    if resources:
        extra_args += ["--resources", ",".join(f"{k}={v:g}" for k, v in resources.items())]
    if settings.lifetime:
        extra_args += ["--lifetime", settings.lifetime]
        extra_args += ["--lifetime-stagger", settings.lifetime_stagger]
    directives = []
    if settings.gres or settings.gpus:
        directives.append(f"--gres={settings.gres or f'gpu:{settings.gpus}'}")
    directives += settings.job_directives
    options: dict[str, Any] = {
        "cores": settings.job_cores,
        "processes": settings.job_processes,
        "memory": settings.job_memory,
        "walltime": settings.walltime,
        "queue": settings.partition,
        "account": settings.account,
        "interface": settings.interface,
        "local_directory": settings.local_directory,
        "job_script_prologue": list(settings.prologue),
        "job_extra_directives": directives,
        "worker_extra_args": extra_args,
        "python": worker_python(settings),
        "job_name": "watergee-worker",
        "log_directory": str(folder / "logs"),
        "security": security,
    }
    if security is not None:
        options["protocol"] = "tls://"
    return options


def job_script(settings: ClusterSettings, folder: Path) -> str:
    """The job script a worker would be submitted with, before any scheduler runs: the
    scheduler address is a placeholder, and the certificate paths are those of a run."""
    from dask_jobqueue.slurm import SLURMJob

    security = None
    if settings.tls:
        security = security_from(folder / "certificates-RUN")
    options = job_options(settings, folder, security)
    try:
        protocol = "tls://" if security is not None else "tcp://"
        job = SLURMJob(scheduler=protocol + ADDRESS_PLACEHOLDER, name="NAME", **options)
    except (TypeError, ValueError) as exc:
        raise ClusterError(f"cluster settings do not make a Slurm job: {exc}") from None
    return job.job_script()


def check_submission(settings: ClusterSettings, folder: Path, timeout: float = 60.0) -> None:
    """Ask Slurm whether it would accept a worker job (`sbatch --test-only`: nothing is
    submitted). A host without Slurm, an unreachable controller, an unknown partition or
    account fail here, once and named, instead of workers that never come."""
    script = folder / f"test-only-{os.getpid()}.sh"
    script.write_text(job_script(settings, folder))
    try:
        done = subprocess.run(
            ["sbatch", "--test-only", str(script)], capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        raise ClusterError("sbatch not found: this host is not a Slurm submit host") from None
    except OSError as exc:
        raise ClusterError(f"cannot run sbatch ({exc})") from None
    except subprocess.TimeoutExpired:
        raise ClusterError(f"sbatch --test-only gave no answer in {timeout:.0f} s") from None
    finally:
        script.unlink(missing_ok=True)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise ClusterError(
            f"Slurm would not accept a worker job ({lines[-1] if lines else done.returncode})"
        )


def job_count(settings: ClusterSettings, tasks: int | None) -> int:
    """Most worker jobs worth submitting: never more than the tasks need."""
    if not tasks:
        return settings.max_jobs
    return max(1, min(settings.max_jobs, math.ceil(tasks / settings.job_processes)))


@contextlib.contextmanager
def slurm_cluster(
    settings: ClusterSettings, folder: Path, tasks: int | None = None, run: str = "run"
) -> Iterator[tuple[SLURMCluster, Security | None]]:
    """A SLURMCluster whose scheduler runs in this process, scaled adaptively between
    `min_jobs` and the jobs the tasks need; its jobs are cancelled when the block ends."""
    import dask
    from dask_jobqueue import SLURMCluster

    folder.mkdir(parents=True, exist_ok=True)
    check_submission(settings, folder)
    certificates = (
        run_certificates(folder / f"certificates-{run}")
        if settings.tls
        else contextlib.nullcontext(None)
    )
    dashboard = settings.dashboard or "127.0.0.1:0"
    config = {"distributed.scheduler.allowed-failures": settings.allowed_failures}
    with certificates as security, dask.config.set(config):
        try:
            cluster = SLURMCluster(
                scheduler_options={"dashboard_address": dashboard},
                **job_options(settings, folder, security),
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"cannot start the Slurm cluster's scheduler ({exc})") from None
        with cluster:
            maximum = job_count(settings, tasks)
            cluster.adapt(minimum_jobs=min(settings.min_jobs, maximum), maximum_jobs=maximum)
            yield cluster, security
