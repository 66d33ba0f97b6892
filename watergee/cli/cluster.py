"""`watergee cluster`: see the job script before burning an allocation, and check that one
worker starts and sees GDAL, TensorFlow and the GPUs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watergee.cli.options import ClusterKind, Config, Sets, exits, fail

app = typer.Typer(help="The cluster: its job script, a check.", no_args_is_help=True)

Folder = Annotated[
    Path,
    typer.Option("--folder", "-f", help="Shared folder for worker logs and certificates."),
]


def _settings(config: Path | None, sets: list[str] | None, kind: str | None):
    from watergee.core.config import load_settings

    values = {"cluster.kind": kind} if kind else {}
    return load_settings(config, list(sets or []), values)


@app.command("script")
@exits
def script(
    config: Config = None,
    set_: Sets = None,
    folder: Folder = Path(".watergee/cluster"),
) -> None:
    """Print the job script Slurm worker jobs are submitted with (cluster.kind slurm)."""
    from watergee.hpc.clusters import shared_folder
    from watergee.hpc.slurm import job_script

    settings = _settings(config, set_, "slurm")
    typer.echo(job_script(settings.cluster, shared_folder(settings.cluster, folder)), nl=False)


@app.command("check")
@exits
def check(
    config: Config = None,
    set_: Sets = None,
    cluster: ClusterKind = None,
    folder: Folder = Path(".watergee/cluster"),
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the worker.")
    ] = 600.0,
) -> None:
    """Start one worker, print what it runs on (`watergee info --gpus` there), stop it."""
    from watergee.core.environment import describe_environment
    from watergee.hpc.clusters import dashboard_link, open_client

    settings = _settings(config, set_, cluster)
    with open_client(settings.cluster, tasks=1, folder=folder, run="check") as client:
        link = dashboard_link(client, settings.cluster)
        typer.echo(f"scheduler {client.scheduler.address}, dashboard {link}")
        future = client.submit(describe_environment, True, pure=False)
        try:
            lines = future.result(timeout=timeout)
        except TimeoutError:
            raise fail(f"no worker ran the check within {timeout:g} s") from None
        worker = next(iter(client.who_has(future).get(future.key, ())), "?")
    typer.echo(f"worker {worker}:")
    for key, value in lines:
        typer.echo(f"  {key:<16} {value}")
