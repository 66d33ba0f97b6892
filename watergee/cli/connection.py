"""How a command reaches its cluster: the common cluster options as settings, the connection
that opens the cluster when tiles have work, and the tasks of a slurm-runner allocation."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import typer


def cluster_values(workers: int | None, scheduler: str | None, cluster: str | None) -> dict:
    """The settings the common cluster options set."""
    values: dict[str, Any] = {}
    if workers is not None:
        values["cluster.workers"] = workers
    if scheduler is not None:
        values["cluster.scheduler"] = scheduler
    if cluster is not None:
        values["cluster.kind"] = cluster
    return values


def serves_allocation(settings: Any, out: Path) -> bool:
    """slurm-runner: the scheduler's and the workers' tasks serve here until the run ends."""
    from watergee.hpc.allocation import serve
    from watergee.hpc.clusters import cluster_folder, shared_folder

    return serve(settings.cluster, shared_folder(settings.cluster, cluster_folder(out)))


def connector(settings: Any, out: Path, name: str):
    """Opens the run's cluster for a number of tasks and says where it is (the dashboard link
    too) when it is not the embedded local one."""
    from watergee.hpc.clusters import cluster_folder, dashboard_link, open_client

    @contextlib.contextmanager
    def connect(tasks: int):
        with open_client(settings.cluster, tasks, cluster_folder(out), name) as client:
            if settings.cluster.kind != "local":
                typer.echo(
                    f"cluster {settings.cluster.kind}: scheduler {client.scheduler.address}, "
                    f"dashboard {dashboard_link(client, settings.cluster)}",
                    err=True,
                )
            yield client

    return connect
