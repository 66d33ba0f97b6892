"""`watergee gee`: the Earth Engine half — grid, composites and labels, downloads, and the
trained pixel CNN as an Earth Engine expression. Only these commands import earthengine-api."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watergee.cli.options import EXIT_FAILED, Config, Sets, exits

Grid = Annotated[Path, typer.Option("--grid", help="Cell grid (from `watergee gee grid`).")]

app = typer.Typer(
    help="Earth Engine: tile grid, composites and QA water labels, downloads, model export.",
    no_args_is_help=True,
)


@app.command("export-model")
@exits
def export_model(
    folder: Annotated[Path, typer.Argument(help="Model folder (a pixel CNN).")],
) -> None:
    """Turn a trained pixel CNN into one Earth Engine image expression, check it against the
    Keras model on local random features, and save it in FOLDER/earthengine/. Needs no
    credentials: the expression is built and checked offline."""
    from watergee.gee.model_export import export_model as export
    from watergee.gee.session import offline

    with offline():
        report = export(folder)
    typer.echo(f"{report.expression}: {report.operations} Earth Engine operations "
               f"(a kernel per band pair would need {report.pairwise_convolutions:,} "
               "convolutions)")  # fmt: skip
    bands = ", ".join(report.outputs)
    typer.echo(f"largest difference from the Keras model: {report.max_difference:.2g} "
               f"over {report.checked_pixels} pixels; bands {bands}")  # fmt: skip


@app.command("grid")
@exits
def grid(
    aoi: Annotated[
        str,
        typer.Option(
            "--aoi",
            help="Area: a vector file (any OGR format, "
            "any CRS) or west,south,east,north in degrees.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Grid file (.gpkg, .geojson, .fgb).")],
    cell: Annotated[float, typer.Option("--cell", help="Cell side in degrees.")] = 0.135,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            help="Attribute filter on the "
            'area\'s features, e.g. "PATH = 123 AND ROW = 32" on the WRS-2 '
            "footprints, or \"ISO = 'DEU'\" on a country file.",
        ),
    ] = None,
) -> None:
    """Write the cells of the global CELL-degree grid whose interior meets the area. A cell's
    id is its place in the global lattice, so ids never change with the area."""
    from watergee.gee.grid import cells_over, parse_bbox, read_area, write_grid

    area = parse_bbox(aoi)
    if area is None:
        area = read_area(Path(aoi), where)
    cells = cells_over(area, cell)
    write_grid(cells, out, cell)
    typer.echo(f"{out}: {len(cells)} cells of {cell:g} deg")


def _settings(config: Path | None, sets: list[str] | None):
    from watergee.core.config import load_settings

    return load_settings(config, list(sets or []))


@app.command("composite")
@exits
def composite(
    grid: Grid,
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file for the expression.")],
    config: Config = None,
    set_: Sets = None,
) -> None:
    """Write the composite that `gee download` fetches (features, noisy label, validity) as
    a serialised Earth Engine expression, to inspect or reuse. Needs no credentials."""
    import json

    from watergee.core.atomic import atomic_path
    from watergee.gee.composite import download_image, region
    from watergee.gee.grid import grid_bounds, read_grid
    from watergee.gee.session import offline

    settings = _settings(config, set_).gee
    cells = read_grid(grid, settings.cell)
    with offline():
        import ee

        image = download_image(settings, region(grid_bounds(cells)))
        encoded = ee.serializer.encode(image, for_cloud_api=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(encoded, indent=1) + "\n")
    months = "-".join(str(m) for m in settings.months)
    years = ", ".join(map(str, settings.years))
    typer.echo(f"{out}: {settings.sensor} {settings.reducer} composite, months {months} of "
               f"{years}, over {len(cells)} cells")  # fmt: skip


@app.command("download")
@exits
def download(
    grid: Grid,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the cells' files.")],
    config: Config = None,
    set_: Sets = None,
) -> None:
    """Fetch every cell's features and noisy water label with computePixels, within the
    service's limits; cells already on disk and whole are skipped, so a re-run resumes.
    Writes OUT/features/ID.tif, OUT/labels/ID.tif and OUT/tiles.txt for the tile stages."""
    from watergee.gee.stages import download_grid, failed_list

    settings = _settings(config, set_)
    finished, total = [0], [0]

    def announce(project: str, cells: int) -> None:
        total[0] = cells
        typer.echo(f"{cells} cells from project {project}, "
                   f"{settings.gee.concurrency} requests at a time", err=True)  # fmt: skip

    def progress(cell: str, state: str) -> None:
        finished[0] += 1
        typer.echo(f"[{finished[0]}/{total[0]}] {cell} {state}", err=True)

    report = download_grid(grid, out, settings, progress, announce)
    typer.echo(f"{len(report.done)} downloaded, {len(report.skipped)} already complete, "
               f"{len(report.failed)} failed; {report.requests} requests, "
               f"{report.retried} retried")  # fmt: skip
    typer.echo(f"tile list: {report.tile_list}")
    for cell, why in report.failed.items():
        typer.echo(f"watergee: error: {cell}: {why}", err=True)
    if report.failed:
        typer.echo(f"failed cells: {failed_list(out)}", err=True)
        raise typer.Exit(EXIT_FAILED)


@app.command("predict")
@exits
def predict(
    folder: Annotated[
        Path, typer.Argument(help="Model folder (a pixel CNN on the composite's eight features).")
    ],
    grid: Grid,
    to: Annotated[str, typer.Option("--to", help="asset, drive or storage.")] = "asset",
    dest: Annotated[
        str,
        typer.Option(
            "--dest",
            help="Asset id (projects/P/assets/NAME), Drive folder, or Cloud Storage bucket.",
        ),
    ] = "",
    name: Annotated[str, typer.Option("--name", help="Task and file name.")] = "water",
    probabilities: Annotated[
        bool, typer.Option("--probabilities", help="Also export the class probabilities (float32).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build and print the task, offline; start nothing.")
    ] = False,
    config: Config = None,
    set_: Sets = None,
) -> None:
    """Classify the season's composite over the grid's cells in Earth Engine with the exported
    network and start an export task (class band pyramided by mode)."""
    import contextlib
    import json

    from watergee.cli.options import fail
    from watergee.gee.composite import region
    from watergee.gee.export import operation_count
    from watergee.gee.grid import grid_bounds, read_grid
    from watergee.gee.predict import export_task, lattice_transform, prediction
    from watergee.gee.session import connect, offline

    if to not in ("asset", "drive", "storage"):
        raise fail(f"--to {to}: choose asset, drive or storage")
    if not dest and not dry_run:
        raise fail("--dest is needed: the asset id, Drive folder or bucket to export to")
    settings = _settings(config, set_)
    opts = settings.gee
    cells = read_grid(grid, opts.cell)
    with offline() if dry_run else contextlib.nullcontext():
        if not dry_run:
            connect(opts)
        bounds = grid_bounds(cells)
        area = region(bounds)
        image, rules = prediction(folder, opts, area, probabilities, settings.classify)
        west, _, _, north = bounds
        task = export_task(image, to, dest or "DEST", name, area,  # type: ignore[arg-type]
                           lattice_transform(opts, west, north), probabilities)  # fmt: skip
        summary = {k: v for k, v in task.config.items() if k != "expression"}
        typer.echo(f"{name}: {operation_count(image)} operations over {len(cells)} cells, to {to}")
        for check, rule in rules.items():
            typer.echo(f"check on water, {check}: {rule}")
        typer.echo(json.dumps(summary, indent=1))
        if dry_run:
            return
        task.start()
    typer.echo(f"started task {task.id}; follow it with `earthengine task info {task.id}`")


@app.command("selftest")
@exits
def selftest(
    folder: Annotated[Path, typer.Argument(help="Model folder (a pixel CNN).")],
    at: Annotated[str, typer.Option("--at", help="lon,lat of a small test block.")],
    config: Config = None,
    set_: Sets = None,
) -> None:
    """Run the exported network in Earth Engine on a 64 x 64 block of real pixels and the
    local model on the same features; print the largest difference (needs credentials)."""
    from watergee.cli.options import fail
    from watergee.gee.selftest import selftest as run_selftest
    from watergee.gee.session import connect

    try:
        lon, lat = (float(v) for v in at.split(","))
    except ValueError:
        raise fail(f"--at {at}: give lon,lat in degrees") from None
    opts = _settings(config, set_).gee
    connect(opts)
    report = run_selftest(folder, opts, lon, lat)
    typer.echo(f"block at {report.west:.6f}, {report.north:.6f}: largest difference "
               f"{report.max_difference:.3g} over {report.pixels} pixels")  # fmt: skip
    if not report.ok:
        why = "no pixel with a full valid field" if report.pixels == 0 else "differs"
        typer.echo(f"watergee: error: selftest failed: the server's result {why}", err=True)
        raise typer.Exit(EXIT_FAILED)
    typer.echo("the server computes the exported network as the local model does")
