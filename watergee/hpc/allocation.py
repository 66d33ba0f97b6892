"""One allocation, one run (cluster kind slurm-runner): for sites whose compute nodes cannot
submit jobs. The same watergee command runs as every task of one `srun -n N` (N >= 3): task 0
becomes the Dask scheduler, task 1 the driver that runs the stage, the others workers, meeting
through a scheduler file on a shared folder (dask-jobqueue's SLURMRunner)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watergee.core.config import ClusterSettings
from watergee.core.errors import ClusterError
from watergee.hpc.security import KEY, security_from, write_certificates
from watergee.hpc.slurm import worker_resources

if TYPE_CHECKING:
    from distributed import Client
    from distributed.security import Security

DRIVER_RANK = 1  # SLURMRunner's client task
SCHEDULER_FILE = "scheduler.json"


@dataclass(frozen=True)
class Rank:
    job: str
    rank: int
    tasks: int

    @property
    def is_driver(self) -> bool:
        return self.rank == DRIVER_RANK


def current_rank() -> Rank:
    """This task's place in the allocation, from the variables srun sets."""
    try:
        return Rank(
            os.environ["SLURM_JOB_ID"], int(os.environ["SLURM_PROCID"]),
            int(os.environ["SLURM_NTASKS"]),
        )  # fmt: skip
    except (KeyError, ValueError):
        raise ClusterError(
            "cluster kind slurm-runner runs as the tasks of `srun -n N` (N >= 3) inside an "
            "allocation: SLURM_JOB_ID, SLURM_PROCID or SLURM_NTASKS is not set"
        ) from None


def run_folder(folder: Path, rank: Rank) -> Path:
    return folder / f"slurm-runner-{rank.job}"


def _security(settings: ClusterSettings, folder: Path, rank: Rank) -> Security | None:
    if not settings.tls:
        return None
    certificates = folder / "certificates"
    if rank.rank == 0:
        return write_certificates(certificates)
    # written to a staging folder and renamed: the key's presence means both files are whole
    _wait_until(
        (certificates / KEY).is_file,
        settings.connect_timeout,
        f"{certificates}: the run's certificates did not appear",
    )
    return security_from(certificates)


def _wait_until(ready: Callable[[], bool], timeout: float, failure: str) -> None:
    """Until another task of the allocation has written what `ready` looks for; a ClusterError
    saying `failure` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise ClusterError(f"{failure} in {timeout:g} s")
        time.sleep(0.1)


def wait_for_scheduler(path: Path, timeout: float) -> None:
    """Until the scheduler's address can be read from its file. The scheduler writes the file
    in place and SLURMRunner reads it as soon as it exists: read half written, it stopped the
    driver's task with a JSON error and left the scheduler waiting for it."""

    def readable() -> bool:
        try:
            return bool(json.loads(path.read_text()).get("address"))
        except (OSError, ValueError, AttributeError):
            return False

    _wait_until(readable, timeout, f"{path}: the scheduler's address did not appear")


def _runner_options(settings: ClusterSettings, folder: Path, security: Any) -> dict[str, Any]:
    protocol = {"protocol": "tls://", "security": security} if security is not None else {}
    scheduler = {"dashboard_address": settings.dashboard or "127.0.0.1:0", **protocol}
    worker: dict[str, Any] = {
        "nthreads": settings.threads_per_worker,
        "resources": worker_resources(settings) or None,
        "local_directory": settings.local_directory,
        "security": security,
    }
    if settings.interface:
        scheduler["interface"] = worker["interface"] = settings.interface
    return {
        "scheduler_file": str(folder / SCHEDULER_FILE),
        "scheduler_options": scheduler,
        "worker_options": {k: v for k, v in worker.items() if v is not None},
    }


def serve(settings: ClusterSettings, folder: Path) -> bool:
    """Run this task's part when it is the scheduler or a worker, until the driver ends the
    run; True then. The driver's task returns False at once and opens its client next."""
    rank = current_rank()
    if rank.tasks < 3:
        raise ClusterError(
            f"cluster kind slurm-runner needs at least 3 tasks (scheduler, driver, a worker); "
            f"this step has {rank.tasks}"
        )
    if rank.is_driver:
        return False
    from dask_jobqueue.slurm import SLURMRunner

    here = run_folder(folder, rank)
    here.mkdir(parents=True, exist_ok=True)
    security = _security(settings, here, rank)
    if rank.rank != 0:
        wait_for_scheduler(here / SCHEDULER_FILE, settings.connect_timeout * 4)
    logging.getLogger("distributed").setLevel(logging.WARNING)  # the job log stays readable
    # SLURMRunner serves inside its constructor and stops its own task with SIGINT
    with contextlib.suppress(KeyboardInterrupt):
        SLURMRunner(**_runner_options(settings, here, security))
    return True


@contextlib.contextmanager
def runner_client(settings: ClusterSettings, folder: Path) -> Iterator[Client]:
    """The driver's client of the allocation's cluster, once every worker has joined; the
    scheduler (and with it the workers) stops when the block ends."""
    from dask_jobqueue.slurm import SLURMRunner
    from distributed import Client
    from distributed.core import rpc

    rank = current_rank()
    here = run_folder(folder, rank)
    here.mkdir(parents=True, exist_ok=True)
    security = _security(settings, here, rank)
    try:
        wait_for_scheduler(here / SCHEDULER_FILE, settings.connect_timeout * 4)
        with (
            SLURMRunner(**_runner_options(settings, here, security)) as runner,
            Client(runner, security=security) as client,
        ):
            if security is not None:  # the runner ends the scheduler over a plain rpc
                runner.scheduler_comm = rpc(
                    runner.scheduler_address,
                    connection_args=security.get_connection_args("client"),
                )
            try:
                client.wait_for_workers(runner.n_workers, timeout=settings.connect_timeout * 4)
            except TimeoutError as exc:
                raise ClusterError(f"the allocation's workers did not all join ({exc})") from None
            yield client
    finally:
        shutil.rmtree(here, ignore_errors=True)  # certificates and the scheduler file
