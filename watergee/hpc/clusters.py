"""The one factory for Dask clusters, by `cluster.kind`: an embedded local cluster, a running
scheduler, Slurm worker jobs, or the tasks of one allocation. Stages never see which."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from watergee.core.config import ClusterSettings
from watergee.core.environment import usable_cpus
from watergee.core.errors import ClusterError

if TYPE_CHECKING:
    from distributed import Client


@contextlib.contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Worker processes started in this block ignore SIGINT (an ignored signal stays ignored
    in a child): Ctrl-C reaches the whole process group, and the driver alone decides how a
    run stops, instead of every worker printing a KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cluster_folder(out: Path) -> Path:
    """Where a run's worker logs, certificates and scheduler file go unless
    `cluster.shared_directory` says: under the output folder, which every worker sees."""
    return out / ".watergee" / "cluster"


def shared_folder(settings: ClusterSettings, default: Path) -> Path:
    """The run's shared folder: `cluster.shared_directory`, else `default`."""
    return Path(settings.shared_directory or default).expanduser().absolute()


@contextlib.contextmanager
def open_client(
    settings: ClusterSettings, tasks: int | None = None, folder: Path = Path("."), run: str = "run"
) -> Iterator[Client]:
    """A Dask client for one run; never more workers than tasks. `folder` is the run's
    shared folder unless `cluster.shared_directory` says (see `cluster_folder`); `run` names
    its files."""
    shared = shared_folder(settings, folder)
    if settings.kind == "scheduler":
        with _scheduler_client(settings) as client:
            yield client
    elif settings.kind == "slurm":
        from distributed import Client

        from watergee.hpc.slurm import slurm_cluster

        with (
            slurm_cluster(settings, shared, tasks, run) as (cluster, security),
            Client(cluster, security=security) as client,
        ):
            yield client
    elif settings.kind == "slurm-runner":
        from watergee.hpc.allocation import runner_client

        with runner_client(settings, shared) as client:
            yield client
    else:
        with _local_client(settings, tasks) as client:
            yield client


@contextlib.contextmanager
def _scheduler_client(settings: ClusterSettings) -> Iterator[Client]:
    from distributed import Client

    try:
        client = Client(settings.scheduler, timeout=f"{settings.connect_timeout}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {settings.scheduler} ({exc})"
        ) from None
    with client:
        yield client


@contextlib.contextmanager
def _local_client(settings: ClusterSettings, tasks: int | None) -> Iterator[Client]:
    import dask
    from distributed import Client, LocalCluster

    workers = settings.workers or usable_cpus()
    if tasks:
        workers = max(1, min(workers, tasks))
    config = {"distributed.scheduler.allowed-failures": settings.allowed_failures}
    try:
        with _workers_ignore_sigint(), dask.config.set(config):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=settings.threads_per_worker,
                processes=settings.processes,
                memory_limit=settings.memory_limit,
                dashboard_address=settings.dashboard or ":0",  # a free port: never a clash
                silence_logs=logging.ERROR,
                resources=settings.worker_resources or None,
            )
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot start a local Dask cluster ({exc})") from None
    with cluster, Client(cluster) as client:
        yield client


def dashboard_link(client: Client, settings: ClusterSettings) -> str:
    """Where the dashboard is: for Slurm kinds it listens on localhost of the node the run
    started on unless `cluster.dashboard` says otherwise (reach it with ssh -L)."""
    if settings.kind in ("slurm", "slurm-runner") and not settings.dashboard:
        port = client.scheduler_info().get("services", {}).get("dashboard")
        if port:
            tunnel = f"ssh -L {port}:localhost:{port}"
            return f"http://localhost:{port}/status (on this node only: {tunnel})"
    return client.dashboard_link
