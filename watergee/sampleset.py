"""A sample set on disk: per-tile shards of patches, per-tile summaries, one manifest.

Shards are plain .npz files (X: patches, channels last, float32 physical values; y: class id;
code: original label; row, col, map_x, map_y: where the sample pixel is), small enough to stream one
at a time into training. The manifest says everything a model needs to use the samples the
same way in classification: band order, scaling, patch size and centre convention, classes.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from watergee import __version__
from watergee.core import layout, records
from watergee.core.atomic import atomic_path
from watergee.core.config import SampleSettings, Settings, section_hash
from watergee.core.errors import TileInputError
from watergee.core.records import write_json_atomic
from watergee.core.registry import STAGES
from watergee.core.runner import Outcome
from watergee.core.tiles import Tile


class ClassInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(description="Class id written in class rasters.")
    name: str = Field("", description="Human-readable name.")
    code: int | None = Field(None, description="Label code it came from, if any.")


CENTRE_CONVENTION = "sample pixel at row and column patch // 2 of its patch"
SECTIONS = STAGES["sample"].sections


def write_shards(folder: Path, split: str, arrays: dict[str, np.ndarray], size: int) -> list[Path]:
    """Write `arrays` (equal first dimension) as shards of at most `size` samples."""
    count = len(next(iter(arrays.values())))
    paths = []
    for number, start in enumerate(range(0, count, size)):
        path = folder / f"{split}-{number:05d}.npz"
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **{k: v[start : start + size] for k, v in arrays.items()})
        paths.append(path)
    return paths


#: What every shard holds: patches (samples, rows, cols, channels) and their class codes.
SHARD_ARRAYS = ("X", "y")


def read_shard(path: Path) -> dict[str, np.ndarray]:
    """One shard's arrays; a damaged or foreign file is an error naming it."""
    try:
        with np.load(path) as data:
            shard = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise TileInputError(f"{path}: not a readable sample shard ({reason})") from None
    missing = [key for key in SHARD_ARRAYS if key not in shard]
    if missing:
        raise TileInputError(f"{path}: not a sample shard (no array {', '.join(missing)})")
    if len(shard["X"]) != len(shard["y"]):
        raise TileInputError(f"{path}: {len(shard['X'])} patches but {len(shard['y'])} classes")
    return shard


def _add(total: dict[str, int], part: dict[str, int]) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + value


def _current_elsewhere(out: Path, settings: Settings) -> list[Tile]:
    """Tiles of the set sampled by earlier runs with these settings and still complete: a
    re-run of just the failed tiles keeps the others in the set."""
    digest = section_hash(settings, SECTIONS)
    tiles = []
    for record in sorted(out.glob(f"*/{layout.STATE_DIR}/sample.json")):
        folder = record.parent.parent
        if records.staleness(records.read_record(record), digest, out) is None:
            tiles.append(Tile(folder.name, folder))
    return tiles


def write_manifest(
    results: Sequence[tuple[Tile, Outcome]], settings: Settings, out: Path
) -> list[Path]:
    """Gather the per-tile summaries of a sampling run into the sample set's manifest.

    Tiles done or skipped in this run enter it, and tiles of earlier runs whose samples are
    complete and drawn with these settings; a tile that failed in this run keeps no place, even
    when an earlier run left its summary and shards (drawn under other settings)."""
    opts = settings.sample
    per_tile: dict[str, Any] = {}
    totals: dict[str, dict[str, int]] = {"train": {}, "validation": {}}
    bands: list[str] | None = None
    scaling = None
    shards: dict[str, list[str]] = {"train": [], "validation": []}
    failed = [tile.id for tile, outcome in results if outcome.status == "failed"]
    ran = {tile.id for tile, _ in results}
    kept = [tile for tile, outcome in results if outcome.status != "failed"]
    kept += [tile for tile in _current_elsewhere(out, settings) if tile.id not in ran]
    for tile in sorted(kept, key=lambda t: t.id):
        path = layout.sample_summary(out, tile)
        summary = json.loads(path.read_text())
        if bands is None:
            bands, scaling = summary["bands"], summary["scaling"]
        elif summary["bands"] != bands:
            raise TileInputError(
                f"{path}: bands {summary['bands']} differ from the other tiles' {bands}"
            )
        per_tile[tile.id] = {
            k: summary[k] for k in ("train", "validation", "candidates", "dropped", "labels")
        }
        for split in ("train", "validation"):
            _add(totals[split], summary[split])
            shards[split] += [str(Path(tile.id) / name) for name in summary["shards"][split]]
    manifest = {
        "watergee": __version__,
        "settings_hash": section_hash(settings, SECTIONS),
        "bands": bands or [],
        "scaling": scaling,
        "values": "physical values (DN * scale + offset); patches never contain no data",
        "patch": opts.patch,
        "centre": CENTRE_CONVENTION,
        "layout": "X: (samples, patch, patch, bands) float32; y: class id; code: label code",
        "mode": opts.mode,
        "classes": {str(k): v for k, v in opts.classes.items()},
        "class_names": {str(k): v for k, v in _names(opts).items()},
        "required": opts.required,
        "seed": opts.seed,
        "validation": opts.validation,
        "split": opts.split,
        "block": opts.block if opts.split == "blocks" else None,
        "totals": totals,
        "tiles": per_tile,
        "failed_tiles": failed,
        "shards": shards,
    }
    path = layout.sample_manifest(out)
    try:
        unchanged = json.loads(path.read_text()) == json.loads(json.dumps(manifest, default=str))
    except (OSError, ValueError):
        unchanged = False
    if not unchanged:  # rewritten only when it changes: a model trained on it stays current
        write_json_atomic(path, manifest)
    return [path]


def iter_samples(root: Path, split: str) -> Iterator[dict[str, np.ndarray]]:
    """The shards of one split of a sample set, one at a time."""
    return SampleSet.open(root).shards(split)


@dataclass
class SampleSet:
    """A sample set on disk, through its manifest."""

    root: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, root: Path) -> SampleSet:
        path = layout.sample_manifest(root)
        try:
            return cls(root, json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise TileInputError(f"{path}: not a readable sample-set manifest ({exc})") from None

    @property
    def classes(self) -> list[int]:
        """Class ids of the training samples, sorted: output channel i is classes[i]."""
        return sorted(int(c) for c, n in self.manifest["totals"]["train"].items() if n > 0)

    def count(self, split: str) -> int:
        return sum(self.manifest["totals"][split].values())

    def shards(self, split: str) -> Iterator[dict[str, np.ndarray]]:
        for name in self.manifest["shards"][split]:
            yield read_shard(self.root / name)

    def class_infos(self) -> list[ClassInfo]:
        names = self.manifest.get("class_names", {})
        codes = {v: int(k) for k, v in self.manifest.get("classes", {}).items()}
        return [
            ClassInfo(id=c, name=names.get(str(c), ""), code=codes.get(c)) for c in self.classes
        ]

    def provenance(self) -> dict[str, Any]:
        path = layout.sample_manifest(self.root)
        return {
            "path": str(self.root),
            "manifest_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }


def validate(root: Path, required: Sequence[int] = ()) -> tuple[list[str], list[str]]:
    """A report of a sample set (lines) and its problems (empty when it is usable)."""
    path = layout.sample_manifest(root)
    manifest = SampleSet.open(root).manifest
    names = manifest.get("class_names", {})
    totals = manifest["totals"]
    classes = sorted({*totals["train"], *totals["validation"]}, key=int)
    grand = sum(totals["train"].values()) + sum(totals["validation"].values())
    lines = [
        f"sample set {root}: {grand} samples, patch {manifest['patch']}, "
        f"bands {' '.join(manifest['bands'])}",
        f"{'class':>6} {'name':<16} {'train':>8} {'val':>8} {'share':>7}",
    ]
    for cls in classes:
        n_train, n_val = totals["train"].get(cls, 0), totals["validation"].get(cls, 0)
        share = (n_train + n_val) / grand if grand else 0.0
        lines.append(f"{cls:>6} {names.get(cls, ''):<16} {n_train:>8} {n_val:>8} {share:>7.1%}")
    lines.append(f"{'tile':<28} {'samples':>8} {'label nodata':>13}  labels")
    for tile, info in manifest["tiles"].items():
        count = sum(info["train"].values()) + sum(info["validation"].values())
        labels = info["labels"]
        where = labels.get("path") or labels.get("points", "")
        note = "warped to the tile grid, nearest" if labels.get("warped") else "on the tile grid"
        lines.append(
            f"{tile:<28} {count:>8} {labels.get('nodata_fraction', 0):>13.1%}  {where} ({note})"
        )
        per_class = "  ".join(
            f"{cls}: {info['train'].get(cls, 0)}/{info['validation'].get(cls, 0)}"
            for cls in sorted({*info["train"], *info["validation"]}, key=int)
        )
        lines.append(f"{'':<28} class: train/val  {per_class}")
        dropped = {k: sum(v.values()) for k, v in info["dropped"].items() if v}
        if dropped:
            lines.append(f"{'':<28} dropped candidates: {dropped}")
    problems = []
    for cls in sorted({*map(int, manifest.get("required", [])), *required}):
        key = str(cls)
        if totals["train"].get(key, 0) + totals["validation"].get(key, 0) == 0:
            label = f" ({names[key]})" if key in names else ""
            problems.append(f"{path}: required class {cls}{label} has no samples")
        elif totals["validation"].get(key, 0) == 0 and manifest.get("validation", 0) > 0:
            problems.append(f"{path}: required class {cls} has no validation samples")
    if not manifest["tiles"]:
        problems.append(f"{path}: no tile produced samples")
    return lines, problems


def _names(opts: SampleSettings) -> dict[int, str]:
    """Class names for the model; the water class is 'water' unless named otherwise, so
    that classify's checks on water find it."""
    named = {name.strip().lower() for name in opts.class_names.values()}
    if opts.water_class is None or opts.water_class in opts.class_names or "water" in named:
        return dict(opts.class_names)
    return {**opts.class_names, opts.water_class: "water"}
