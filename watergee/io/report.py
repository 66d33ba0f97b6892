"""The accuracy report as people read it: a figure (map, reference, disagreement) and one
self-contained HTML page with the tables and the figure inside."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from watergee.core.atomic import atomic_path

_NONE = (1.0, 1.0, 1.0)


def _palette(codes: Sequence[int], colours: Mapping[int, tuple[int, int, int]]):
    """A colour per class: the map's colour table where it has one, else a qualitative set."""
    from matplotlib import colormaps

    spare = colormaps["tab20"].colors
    palette, k = {}, 0
    for code in codes:
        if code in colours:
            palette[code] = tuple(v / 255 for v in colours[code])
        else:
            palette[code] = spare[k % len(spare)]
            k += 1
    return palette


def _rgb(codes: np.ndarray, palette: Mapping[int, tuple[float, ...]]) -> np.ndarray:
    image = np.ones((*codes.shape, 3))
    for code, colour in palette.items():
        image[codes == code] = colour[:3]
    return image


def write_figure(
    final: Path,
    map_codes: np.ndarray,
    reference_codes: np.ndarray | None,
    points: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    colours: Mapping[int, tuple[int, int, int]],
    names: Mapping[int, str],
) -> None:
    """Map, reference and disagreement side by side (decimated arrays, -1 = no data); for a
    point reference, the map with the points marked agreeing or not (rows, cols, agrees)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    present = [int(c) for c in np.unique(map_codes) if c >= 0]
    if reference_codes is not None:
        present = sorted({*present, *(int(c) for c in np.unique(reference_codes) if c >= 0)})
    palette = _palette(present, colours)
    panels = 3 if reference_codes is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 5.4), squeeze=False)
    axes = axes[0]
    axes[0].imshow(_rgb(map_codes, palette), interpolation="nearest")
    axes[0].set_title("map")
    if reference_codes is not None:
        axes[1].imshow(_rgb(reference_codes, palette), interpolation="nearest")
        axes[1].set_title("reference")
        both = (map_codes >= 0) & (reference_codes >= 0)
        disagreement = np.ones((*map_codes.shape, 3))
        disagreement[both] = (0.8, 0.8, 0.8)
        disagreement[both & (map_codes != reference_codes)] = (0.85, 0.1, 0.1)
        axes[2].imshow(disagreement, interpolation="nearest")
        axes[2].set_title("disagreement (red)")
    if points is not None:
        rows, cols, agrees = points
        axes[0].scatter(
            cols[agrees],
            rows[agrees],
            s=14,
            facecolors="none",
            edgecolors="black",
            linewidths=0.8,
            label="agrees",
        )
        axes[0].scatter(
            cols[~agrees],
            rows[~agrees],
            s=18,
            marker="x",
            color="red",
            linewidths=1.2,
            label="disagrees",
        )
        axes[0].legend(loc="lower right", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(color=palette[c], label=f"{c} {names.get(c, '')}".strip()) for c in present]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    with atomic_path(final) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return (
            "-" if None in value else f"{_number(value[0], digits)} to {_number(value[1], digits)}"
        )
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(final: Path, report: Mapping[str, Any], figure: Path | None) -> None:
    """One page: what was compared and how, the confusion matrix, the accuracy figures with
    their confidence intervals and, for a stratified sample, area-adjusted estimates."""
    names = {int(k): v for k, v in report.get("class_names", {}).items()}
    label = lambda c: f"{c} {names.get(int(c), '')}".strip()  # noqa: E731
    sample = report["sample"]
    percent = f"{round(100 * report['confidence'])} %"
    parts = [
        f"<h1>Accuracy of {html.escape(report['map'])}</h1>",
        f"<p>Reference: {html.escape(report['reference'])} ({report['reference_kind']}, "
        f"{sample['units']:,} units; {report['left_out']:,} left out where the map has no data"
        + (f", {report['unlabelled']:,} without a class" if report.get("unlabelled") else "")
        + f"). Design: {report['design']}. Intervals: {percent}.</p>",
        f"<p><small>{html.escape(report['rule'])}</small></p>",
    ]
    classes = report["classes"]
    matrix = report["confusion_matrix"]
    parts.append("<h2>Confusion matrix (rows: map, columns: reference)</h2>")
    parts.append(
        _table(
            ["map \\ reference", *map(label, classes), "total"],
            [[label(c), *row, sum(row)] for c, row in zip(classes, matrix, strict=True)]
            + [["total", *np.sum(matrix, axis=0).tolist(), int(np.sum(matrix))]],
        )
    )
    parts.append("<h2>Accuracy of the sample counts</h2>")
    parts.append(
        _table(
            ["overall accuracy", percent, "kappa", percent],
            [
                [
                    _number(sample["overall_accuracy"]),
                    _number(sample["overall_accuracy_ci"]),
                    _number(sample["kappa"]),
                    _number(sample["kappa_ci"]),
                ]
            ],
        )
    )
    rows = []
    for code, e in sample["classes"].items():
        rows.append(
            [
                label(code),
                _number(e["users_accuracy"]),
                _number(e["users_accuracy_ci"]),
                _number(e["producers_accuracy"]),
                _number(e["producers_accuracy_ci"]),
                _number(e["f1"]),
                _number(e["f1_ci"]),
                _number(e["iou"]),
                _number(e["iou_ci"]),
            ]
        )
    parts.append(
        _table(
            [
                "class",
                "user's acc.",
                percent,
                "producer's acc.",
                percent,
                "F1",
                percent,
                "IoU",
                percent,
            ],
            rows,
        )
    )
    adjusted = report.get("area_adjusted")
    if adjusted:
        parts.append("<h2>Area-adjusted accuracy and area (Olofsson et al. 2014)</h2>")
        parts.append(
            f"<p>Overall accuracy {_number(adjusted['overall_accuracy'])} "
            f"({percent}: {_number(adjusted['overall_accuracy_ci'])}), strata: the map classes "
            f"over {adjusted['mapped_pixels_total']:,} mapped pixels.</p>"
        )
        area_unit = "ha" if adjusted["pixel_area_m2"] else "px"
        rows = []
        for code, e in adjusted["classes"].items():
            if area_unit == "ha":
                area, ci = e["area_m2"] / 1e4, tuple(v / 1e4 for v in e["area_m2_ci"])
            else:
                area, ci = e["area_pixels"], e["area_pixels_ci"]
            rows.append(
                [
                    label(code),
                    e["sample_units"],
                    _number(e["mapped_pixels"]),
                    _number(e["users_accuracy"]),
                    _number(e["users_accuracy_ci"]),
                    _number(e["producers_accuracy"]),
                    _number(e["producers_accuracy_ci"]),
                    _number(area, 1),
                    _number(ci, 1),
                ]
            )
        parts.append(
            _table(
                [
                    "class",
                    "units",
                    "mapped px",
                    "user's acc.",
                    percent,
                    "producer's acc.",
                    percent,
                    f"area ({area_unit})",
                    percent,
                ],
                rows,
            )
        )
    if figure is not None and figure.exists():
        encoded = base64.b64encode(figure.read_bytes()).decode("ascii")
        parts.append(
            f'<h2>Map and reference</h2><img alt="map, reference and disagreement" '
            f'src="data:image/png;base64,{encoded}">'
        )
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:"
        "collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:"
        "right}img{max-width:100%}"
    )
    page = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Accuracy of '
        f"{html.escape(Path(report['map']).name)}</title><style>{style}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )
    with atomic_path(final) as tmp:
        tmp.write_text(page, encoding="utf-8")
