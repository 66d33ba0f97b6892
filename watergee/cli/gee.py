"""`watergee gee`: the Earth Engine half — grid, composites and labels, downloads, and the
trained pixel CNN as an Earth Engine expression. Only these commands import earthengine-api."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watergee.cli.options import exits

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
