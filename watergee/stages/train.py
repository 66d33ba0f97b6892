"""train as a stage: one model from one sample set, for `watergee run`, where training is a
step on the cluster (a GPU worker when there is one) that resumes like every other step."""

from __future__ import annotations

import logging
from pathlib import Path

from watergee.core import layout
from watergee.core.config import Settings
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.models.artifact import METADATA, read_metadata
from watergee.models.training import train as train_model
from watergee.sampleset import SampleSet

log = logging.getLogger(__name__)


def train(unit: Tile, settings: Settings, out: Path) -> StageResult:
    """Train `settings.train.model` on the sample set `unit.source` into OUT/<unit.id>."""
    samples, folder = unit.source, layout.tile_dir(out, unit)
    sample_set = SampleSet.open(samples)
    inputs = [layout.sample_manifest(samples)]
    for split in ("train", "validation"):
        inputs += [samples / name for name in sample_set.manifest["shards"][split]]
    metadata = train_model(samples, settings.train.model, folder, settings.train, log.info)
    read_metadata(folder)  # what classify will read: complete, or the step fails here
    outputs = [folder / METADATA, folder / metadata.file]
    outputs += sorted(p for p in folder.glob("*.stac.json") if p not in outputs)
    validation = metadata.metrics.get("validation") or {}
    return StageResult(inputs, outputs, {"validation_oa": validation.get("overall_accuracy")})
