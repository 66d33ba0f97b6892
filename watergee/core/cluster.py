"""The one factory for Dask clusters: an embedded local cluster by default, or an existing
scheduler by address. Stages never see which."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from watergee.core.config import ClusterSettings
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


@contextlib.contextmanager
def open_client(settings: ClusterSettings, tasks: int | None = None) -> Iterator[Client]:
    """A Dask client for one run; a local cluster never starts more workers than tasks."""
    from distributed import Client, LocalCluster

    if settings.scheduler:
        try:
            client = Client(settings.scheduler, timeout=f"{settings.connect_timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {settings.scheduler} ({exc})"
            ) from None
        with client:
            yield client
        return

    workers = settings.workers or os.cpu_count() or 1
    if tasks:
        workers = max(1, min(workers, tasks))
    try:
        with _workers_ignore_sigint():
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=settings.threads_per_worker,
                processes=settings.processes,
                memory_limit=settings.memory_limit,
                dashboard_address=settings.dashboard or ":0",  # a free port: never a clash
                silence_logs=logging.ERROR,
            )
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot start a local Dask cluster ({exc})") from None
    with cluster, Client(cluster) as client:
        yield client
