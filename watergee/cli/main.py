"""The watergee command line: one command per registered stage, plus training, models,
settings and environment. Commands parse options and call library functions; the stage
functions and every heavy library load only when a command runs."""

from __future__ import annotations

import contextlib
import inspect
import keyword
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from watergee.cli import cluster, gee, model, run, sample, tiles
from watergee.cli.connection import cluster_values, connector, serves_allocation
from watergee.cli.options import (
    EXIT_SIGNAL,
    ClusterKind,
    Config,
    Force,
    OneLineErrors,
    Out,
    Scheduler,
    Sets,
    Tiles,
    Workers,
    configure_logging,
    exit_code,
    exits,
    fail,
    print_summary,
    progress_printer,
)
from watergee.core.registry import STAGES
from watergee.core.stage import Option, Stage

app = typer.Typer(
    name="watergee",
    help="Map surface water and land cover from Sentinel-2 and Landsat, tile by tile, on a "
    "local Dask cluster or an HPC scheduler. Every stage command maps over a tile list, "
    "skips tiles whose outputs are complete, and exits non-zero if any tile failed.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)


def _version(value: bool) -> None:
    if value:
        from watergee import __version__

        typer.echo(f"watergee {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="More log lines (-vv: debug)."),
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Errors and the summary only.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Map surface water and land cover from Sentinel-2 and Landsat, tile by tile."""
    configure_logging(verbose, quiet)


def run_stage_command(
    stage: Stage,
    tiles: Path,
    out: Path,
    config: Path | None,
    sets: list[str] | None,
    values: dict[str, Any],
    force: bool = False,
) -> None:
    """Resolve the settings, read the tile list, run the stage (on a cluster started only
    when some tile has work), report."""
    from watergee.core.config import load_settings
    from watergee.core.runner import (
        Interrupted,
        conclude_interrupted,
        prepare_output,
        run_stage,
        signals_raise,
    )
    from watergee.core.stage import setting_value
    from watergee.core.tiles import Tile
    from watergee.sentinel2 import read_tiles

    out = out.expanduser().absolute()  # remote workers have another working directory
    settings = load_settings(config, list(sets or []), values)
    connect = connector(settings, out, stage.name)
    with contextlib.ExitStack() as allocation:
        if settings.cluster.kind == "slurm-runner":
            if serves_allocation(settings, out):
                return  # this task was the allocation's scheduler or a worker
            # the driver's task: whatever happens next, leaving this block ends the allocation
            connect = allocation.enter_context(connect(0))
        if stage.unit == "tile":
            tile_list = read_tiles(tiles)
        else:  # one task for the whole list (or the --source file), named by a setting
            if stage.source is None:
                read_tiles(tiles)  # a bad list fails here, naming its line
            tile_list = [Tile(str(setting_value(settings, stage.unit)), tiles.resolve())]
        prepare_output(out)  # before a cluster starts: a bad --out fails at once
        progress, on_outcome = progress_printer(len(tile_list), stage.name)
        try:
            with signals_raise(), progress:
                report = run_stage(
                    stage, tile_list, settings, out, connect, force, on_outcome=on_outcome
                )
        except Interrupted as stop:  # while the records were read, before any tile ran
            typer.echo(f"interrupted by {stop}: no tile ran", err=True)
            raise typer.Exit(EXIT_SIGNAL.get(stop.signum, 128 + stop.signum)) from None
    if report.interrupted is not None:  # the workers are gone now: what they left goes too
        report = conclude_interrupted(report, tile_list, out)
    print_summary(report)
    code = exit_code(report)
    if code:
        raise typer.Exit(code)


def _param(option: Option) -> str:
    """The Python parameter name of an option (--min-size: min_size; --class: class_)."""
    name = option.name.replace("-", "_")
    return f"{name}_" if keyword.iskeyword(name) else name


def _option_parameter(option: Option, group: bool) -> inspect.Parameter:
    """A typed command parameter for a stage option."""
    flags = [f"--{option.name}", *([f"-{option.short}"] if option.short else [])]
    kind: Any = Literal[option.choices] if option.choices else option.kind
    required = option.required and not group
    annotation = Annotated[
        kind if required else kind | None,
        typer.Option(*flags, help=option.help, show_default=False),
    ]
    default = inspect.Parameter.empty if required else None
    return inspect.Parameter(
        _param(option), inspect.Parameter.KEYWORD_ONLY, default=default,
        annotation=annotation,
    )  # fmt: skip


_COMMON: list[tuple[str, Any, Any]] = [
    ("config", Config, None),
    ("set_", Sets, None),
    ("workers", Workers, None),
    ("scheduler", Scheduler, None),
    ("cluster", ClusterKind, None),
    ("force", Force, False),
]


def _option(stage: Stage, name: str) -> Option:
    return next(option for option in stage.options if option.name == name)


def stage_command(stage: Stage, group: bool = False):
    """The command of a registered stage. As a group's callback (`sample`, which also has
    `sample validate`) nothing is required by the parser and missing values are checked here."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = []
    if group:
        params.append(inspect.Parameter("ctx", keyword, annotation=typer.Context))
        for name, annotated in (("tiles", Tiles), ("out", Out)):  # optional here
            option, kind = annotated.__metadata__[0], annotated.__origin__
            optional = Annotated[kind | None, option]
            params.append(inspect.Parameter(name, keyword, default=None, annotation=optional))
    elif stage.source:  # one unit named by an option: no tile list
        params.append(inspect.Parameter("out", keyword, annotation=Out))
    else:
        params += [inspect.Parameter("tiles", keyword, annotation=Tiles),
                   inspect.Parameter("out", keyword, annotation=Out)]  # fmt: skip
    params += [_option_parameter(option, group) for option in stage.options]
    params += [inspect.Parameter(n, keyword, default=d, annotation=a) for n, a, d in _COMMON]

    @exits
    def command(**kwargs: Any) -> None:
        ctx = kwargs.pop("ctx", None)
        if ctx is not None and ctx.invoked_subcommand is not None:
            return
        if stage.source:
            kwargs["tiles"] = kwargs.get(_param(_option(stage, stage.source)))
        missing = [f"--{n}" for n in ("tiles", "out") if kwargs.get(n) is None]
        missing += [
            f"--{o.name}" for o in stage.options if o.required and kwargs.get(_param(o)) is None
        ]
        missing += [
            f"--{o.name} (or --{o.required_unless})"
            for o in stage.options
            if o.required_unless
            and kwargs.get(_param(o)) is None
            and not kwargs.get(_param(_option(stage, o.required_unless)))
        ]
        if missing:
            raise fail(
                f"{stage.name} needs {' and '.join(missing)} (see `watergee {stage.name} --help`)"
            )
        values = {
            option.setting: kwargs[_param(option)]
            for option in stage.options
            if kwargs.get(_param(option)) is not None
        }
        values.update(cluster_values(kwargs["workers"], kwargs["scheduler"], kwargs["cluster"]))
        run_stage_command(
            stage, kwargs["tiles"], kwargs["out"], kwargs["config"], kwargs["set_"], values,
            kwargs["force"],
        )  # fmt: skip

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = stage.name
    command.__doc__ = f"{stage.summary}\n\n{stage.help}" if stage.help else stage.summary
    return command


for _stage in STAGES.values():
    if not _stage.command:
        continue
    if _stage.name == "sample":
        sample.app.callback(invoke_without_command=True, help=_stage.summary)(
            stage_command(_stage, group=True)
        )
        app.add_typer(sample.app, name="sample")
    else:
        app.command(_stage.name, help=stage_command(_stage).__doc__)(stage_command(_stage))

app.command("run", help=run.pipeline.__doc__)(run.pipeline)
app.add_typer(model.app, name="model")
app.add_typer(tiles.app, name="tiles")
app.add_typer(cluster.app, name="cluster")
app.add_typer(gee.app, name="gee")


@app.command()
@exits
def train(
    samples: Annotated[Path, typer.Option("--samples", "-s", help="Sample set folder.")],
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Model kind: pixelcnn, dense-resnet, resnet, svm or rf."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    config: Config = None,
    set_: Sets = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the model already in --out.")
    ] = False,
) -> None:
    """Train a model from a sample set and write a self-describing model folder."""
    from watergee.core.config import load_settings
    from watergee.models.training import train as train_model

    kinds = ("pixelcnn", "dense-resnet", "resnet", "svm", "rf")
    if model not in kinds:
        raise fail(f"--model {model}: choose one of {', '.join(kinds)}")
    settings = load_settings(config, list(set_ or []))
    if not force and out.is_dir() and any(out.iterdir()):
        raise fail(f"{out}: folder is not empty, it may hold a model (--force replaces it)")
    metadata = train_model(samples, model, out, settings.train, report=typer.echo)
    validation = metadata.metrics.get("validation") or {}
    accuracy = validation.get("overall_accuracy")
    summary = ""
    if accuracy is not None:
        summary = f", validation OA {accuracy:.3f} ({metadata.metrics['validation_split']})"
    typer.echo(f"{out}: {metadata.kind} on {', '.join(metadata.channels)}{summary}")


@app.command("config")
@exits
def show_config(config: Config = None, set_: Sets = None) -> None:
    """Print the resolved settings as commented YAML (no options: the defaults)."""
    from watergee.core.config import annotated_yaml, load_settings

    settings = load_settings(config, list(set_ or []))
    typer.echo(annotated_yaml(settings), nl=False)


@app.command()
def info(
    gpus: Annotated[
        bool, typer.Option("--gpus", help="Also ask TensorFlow which GPUs it sees (slower).")
    ] = False,
) -> None:
    """Versions of watergee and its libraries, GDAL drivers, and (--gpus) the GPUs seen."""
    from watergee.core.environment import describe_environment

    for key, value in describe_environment(gpus):
        typer.echo(f"{key:<16} {value}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
