"""The watergee command line: one command per stage, parsing options and calling the library.

Heavy modules (numpy, GDAL, dask, TensorFlow) are imported inside the commands so that
`watergee --help` answers at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from watergee.runner import Outcome, RunReport

app = typer.Typer(
    name="watergee",
    help="Map surface water and land cover from Sentinel-2 and Landsat, tile by tile, on a "
    "local Dask cluster or an HPC scheduler. Every stage command maps over a tile list, "
    "skips tiles whose outputs are complete, and exits non-zero if any tile failed.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_enable=False,
)

Tiles = Annotated[
    Path,
    typer.Option(
        "--tiles",
        "-t",
        help="Tile list: one .SAFE or band folder per line (relative to the list), # comments.",
    ),
]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder (one subfolder per tile).")]
Config = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings (see configs/).")
]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one setting, e.g. --set resample.method=cubic."),
]
Workers = Annotated[
    int | None, typer.Option("--workers", "-w", min=1, help="Local Dask worker processes.")
]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", help="Use a running Dask scheduler at this address instead."),
]
Work = Annotated[
    Path | None,
    typer.Option(
        help="Folder with the tiles' stacks (and segments) from earlier stages (default: --out)."
    ),
]
Force = Annotated[
    bool, typer.Option("--force", help="Redo tiles even when their outputs are current.")
]


def _version(value: bool) -> None:
    if value:
        from watergee import __version__

        typer.echo(f"watergee {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Map surface water and land cover from Sentinel-2 and Landsat, tile by tile."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"watergee: error: {message}", err=True)
    return typer.Exit(code)


def _progress_printer(total: int, label: str):
    """A progress bar on a terminal; one line per tile in batch logs (sbatch, CI)."""
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        task = progress.add_task(label, total=total)

        def advance(outcome: Outcome) -> None:
            progress.advance(task)

        return progress, advance

    import contextlib

    done = 0

    def report(outcome: Outcome) -> None:
        nonlocal done
        done += 1
        typer.echo(
            f"{label} [{done}/{total}] {outcome.tile} {outcome.status} ({outcome.seconds:.1f} s)",
            err=True,
        )

    return contextlib.nullcontext(), report


def _print_summary(report: RunReport, report_path: Path | None = None) -> None:
    total = len(report.outcomes)
    typer.echo(
        f"{report.stage}: {total} tile{'s' if total != 1 else ''}: "
        f"{report.count('done')} done, {report.count('skipped')} skipped, "
        f"{report.count('failed')} failed in {report.seconds:.1f} s"
    )
    if report.failures:
        typer.echo("failed:", err=True)
        for failure in report.failures:
            typer.echo(f"  {failure.tile}  {failure.stage}  {failure.error}", err=True)


def _run_stage_command(
    name: str,
    tiles: Path,
    out: Path,
    config: Path | None,
    sets: list[str] | None,
    workers: int | None,
    scheduler: str | None,
    force: bool,
    extra: list[str] | None = None,
) -> None:
    from watergee.cluster import open_client
    from watergee.config import load_settings
    from watergee.errors import WatergeeError
    from watergee.runner import prepare_output, run_stage
    from watergee.stages import STAGES
    from watergee.tiles import read_tile_list

    overrides = [*(extra or []), *(sets or [])]
    if workers is not None:
        overrides.append(f"cluster.workers={workers}")
    if scheduler is not None:
        overrides.append(f"cluster.scheduler={scheduler}")
    try:
        settings = load_settings(config, overrides)
        tile_list = read_tile_list(tiles)
        prepare_output(out)  # before a cluster starts: a bad --out fails at once
        progress, on_outcome = _progress_printer(len(tile_list), name)
        with open_client(settings.cluster, tasks=len(tile_list)) as client, progress:
            report = run_stage(
                STAGES[name], tile_list, settings, out, client, force, on_outcome=on_outcome
            )
    except WatergeeError as exc:
        raise _fail(str(exc)) from None
    _print_summary(report)
    if not report.ok:
        raise typer.Exit(1)


#: Stage commands and their help; the stage functions themselves load only when a command runs.
STAGE_COMMANDS: dict[str, str] = {
    "resample": "Resample the six 20 m bands (B05 B06 B07 B8A B11 B12) onto each tile's 10 m grid.",
    "combine": "Write each tile's 10-band 10 m stack: B02 B03 B04 B08 B05 B06 B07 B8A B11 B12.",
    "indices": "Compute NDWI, MNDWI, NDVI and the line band from each tile's 10-band stack.",
    "superpixel": "Segment each tile into SLIC superpixels: a segment-id raster and a GeoPackage "
    "of segment centroids with pixel counts and mean band values.",
}


def _add_stage_command(name: str, help_text: str) -> None:
    def command(
        tiles: Tiles,
        out: Out,
        config: Config = None,
        set_: Sets = None,
        workers: Workers = None,
        scheduler: Scheduler = None,
        force: Force = False,
    ) -> None:
        _run_stage_command(name, tiles, out, config, set_, workers, scheduler, force)

    app.command(name, help=help_text)(command)


for _name, _help in STAGE_COMMANDS.items():
    _add_stage_command(_name, _help)


sample_app = typer.Typer(
    help="Draw training and validation patches per tile from label rasters (or labelled "
    "points), reproducibly and without replacement; `sample validate` checks a sample set.",
    no_args_is_help=False,
)
app.add_typer(sample_app, name="sample")


@sample_app.callback(invoke_without_command=True)
def sample_command(
    ctx: typer.Context,
    tiles: Annotated[Path | None, typer.Option("--tiles", "-t", help="Tile list.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Sample set folder.")] = None,
    labels: Annotated[
        Path | None,
        typer.Option(help="Label raster, or a folder of label rasters named by tile."),
    ] = None,
    work: Work = None,
    config: Config = None,
    set_: Sets = None,
    workers: Workers = None,
    scheduler: Scheduler = None,
    force: Force = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    if tiles is None or out is None:
        raise _fail("sample needs --tiles and --out (see `watergee sample --help`)")
    extra = [f"sample.labels={labels}"] if labels is not None else []
    extra += [f"sample.work={work}"] if work is not None else []
    _run_stage_command("sample", tiles, out, config, set_, workers, scheduler, force, extra)


@app.command("classify")
def classify_command(
    tiles: Tiles,
    out: Out,
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder.")],
    mode: Annotated[
        str, typer.Option(help="pixel: a class per pixel; superpixel: one per segment.")
    ] = "pixel",
    work: Work = None,
    config: Config = None,
    set_: Sets = None,
    workers: Workers = None,
    scheduler: Scheduler = None,
    force: Force = False,
) -> None:
    """Classify each tile with a model, per pixel or per superpixel.

    Pixel CNNs and dense ResNets run once over each window of the tile; the patch ResNet
    classifies one patch per pixel and is slow by nature: use --mode superpixel (one patch per
    segment with classify.superpixel_rule=seed) or a dense-resnet for whole tiles.
    """
    if mode not in ("pixel", "superpixel"):
        raise _fail(f"--mode {mode}: choose pixel or superpixel")
    extra = [f"classify.model={model}", f"classify.mode={mode}"]
    extra += [f"classify.work={work}"] if work is not None else []
    _run_stage_command("classify", tiles, out, config, set_, workers, scheduler, force, extra)


@app.command("denoise")
def denoise_command(
    tiles: Tiles,
    out: Out,
    labels: Annotated[
        Path | None,
        typer.Option(help="Noisy water labels: a raster, or a folder / .txt list per tile."),
    ] = None,
    work: Work = None,
    config: Config = None,
    set_: Sets = None,
    workers: Workers = None,
    scheduler: Scheduler = None,
    force: Force = False,
) -> None:
    """Correct each tile's noisy water labels (QA water bit, SCL water, OSM) by self-training."""
    extra = [f"denoise.labels={labels}"] if labels is not None else []
    extra += [f"denoise.work={work}"] if work is not None else []
    _run_stage_command("denoise", tiles, out, config, set_, workers, scheduler, force, extra)


@sample_app.command("validate")
def sample_validate(
    samples: Annotated[Path, typer.Argument(help="Sample set folder (with manifest.json).")],
    require: Annotated[
        list[int] | None, typer.Option(help="A class id that must have samples (repeatable).")
    ] = None,
) -> None:
    """Report a sample set per class and tile; exit 1 when a required class has none."""
    from watergee.errors import WatergeeError
    from watergee.sampleset import validate

    try:
        lines, problems = validate(samples, list(require or []))
    except WatergeeError as exc:
        raise _fail(str(exc)) from None
    for line in lines:
        typer.echo(line)
    for problem in problems:
        typer.echo(f"watergee: error: {problem}", err=True)
    if problems:
        raise typer.Exit(1)


@app.command()
def train(
    samples: Annotated[Path, typer.Option("--samples", "-s", help="Sample set folder.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model kind: pixelcnn, svm or rf.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    config: Config = None,
    set_: Sets = None,
) -> None:
    """Train a model from a sample set and write a self-describing model folder."""
    from watergee.config import load_settings
    from watergee.errors import WatergeeError
    from watergee.training import train as train_model

    kinds = ("pixelcnn", "dense-resnet", "resnet", "svm", "rf")
    if model not in kinds:
        raise _fail(f"--model {model}: choose one of {', '.join(kinds)}")
    try:
        settings = load_settings(config, list(set_ or []))
        metadata = train_model(samples, model, out, settings.train, report=typer.echo)
    except WatergeeError as exc:
        raise _fail(str(exc)) from None
    validation = metadata.metrics.get("validation") or {}
    accuracy = validation.get("overall_accuracy")
    summary = f", validation OA {accuracy:.3f}" if accuracy is not None else ""
    typer.echo(f"{out}: {metadata.kind} on {', '.join(metadata.channels)}{summary}")


model_app = typer.Typer(help="Model artifacts: import, inspect.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("import-water-gee")
def model_import_water_gee(
    source: Annotated[Path, typer.Argument(help="water_gee's Keras 2 HDF5 file (.h5).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
) -> None:
    """Turn a pixel CNN saved by the water_gee notebooks into a watergee model artifact."""
    from watergee.errors import WatergeeError
    from watergee.models.legacy import import_water_gee

    try:
        metadata = import_water_gee(source, out)
    except WatergeeError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{out}: {metadata.kind}, channels {', '.join(metadata.channels)}")


@model_app.command("show")
def model_show(folder: Annotated[Path, typer.Argument(help="Model folder.")]) -> None:
    """Print a model artifact's metadata."""
    import json

    from watergee.errors import WatergeeError
    from watergee.models.artifact import read_metadata

    try:
        metadata = read_metadata(folder)
    except WatergeeError as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(metadata.model_dump(mode="json"), indent=2))


@app.command("config")
def show_config(config: Config = None, set_: Sets = None) -> None:
    """Print the resolved settings as commented YAML (no options: the defaults)."""
    from watergee.config import annotated_yaml, load_settings
    from watergee.errors import WatergeeError

    try:
        settings = load_settings(config, list(set_ or []))
    except WatergeeError as exc:
        raise _fail(str(exc)) from None
    typer.echo(annotated_yaml(settings), nl=False)


@app.command()
def info() -> None:
    """Versions of watergee and its libraries, GDAL drivers, and the GPUs TensorFlow sees."""
    from watergee.environment import describe_environment

    for key, value in describe_environment():
        typer.echo(f"{key:<16} {value}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
