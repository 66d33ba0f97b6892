"""`watergee run`: the steps of a config's `pipeline:` section, in order, on one cluster.

A step is a stage and the options its command would take. The pipeline decides where each
step reads and writes under one output folder, so that each stage's outputs are the next
one's inputs:

    OUT/tiles/<tile>/     the per-tile stages (resample ... classify, clip, sieve)
    OUT/samples/          sample
    OUT/models/<kind>/    train (classify then uses the model trained last)
    OUT/products/<name>/  merge, what the product stages after it make of the mosaic, evaluate
    OUT/cells/            gee-download: the Earth Engine cells, the tile list of the steps after

A pipeline whose first step is gee-download needs no tile list: the download writes it. Its
noisy labels are what denoise reads, and denoise's corrected labels what sample reads.

A step that names its own `tiles` is a side branch (reference rasters clipped and merged like
the maps, say): it changes nothing that the steps after it read. A tile that failed at one
step is blocked at the later ones; a step over the whole run (train, merge, evaluate) runs
only when every unit came through every step before it, so that no model or mosaic is ever
made from part of the tiles.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from watergee.core import layout
from watergee.core.atomic import atomic_path
from watergee.core.config import PIPELINE_KEY, Settings, load_settings, read_yaml
from watergee.core.errors import ConfigError, SharedInputError
from watergee.core.records import read_record
from watergee.core.registry import STAGES
from watergee.core.runner import (
    Connect,
    Interrupted,
    Outcome,
    RunReport,
    conclude_interrupted,
    run_stage,
)
from watergee.core.stage import Option, Stage, setting_value
from watergee.core.tiles import Tile

#: Keys a step takes besides its stage's options.
STEP_KEYS = ("tiles", "out", "set", "label")
#: Steps that make the tile list (and labels) of the steps after them.
SOURCES = ("gee-download",)
#: Steps whose command reads no settings (no --config, no --set).
SETTINGLESS = ("gee-export",)
#: Statuses that let the steps after a unit run.
THROUGH = ("done", "skipped")
ReadTiles = Callable[[Path], list[Tile]]


@dataclass(frozen=True)
class Step:
    """One step, resolved: its stage, settings, folders and units."""

    number: int
    label: str
    stage: Stage
    settings: Settings
    out: Path
    tiles: Path | None  # the tile list it maps over (or merges)
    units: tuple[Tile, ...] = ()  # known before the run: a one-unit step, the mosaic
    command: tuple[str, ...] = ()  # the same step as a watergee command line
    side: bool = False  # a side branch: changes nothing the later steps read

    def unit_list(self, read_tiles: ReadTiles) -> list[Tile]:
        return list(self.units) if self.units else read_tiles(self.tiles)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Plan:
    tiles: Path | None  # None: the first step makes the list
    out: Path
    steps: tuple[Step, ...]


@dataclass
class PipelineReport:
    run_id: str
    steps: list[Step] = field(default_factory=list)
    units: list[str] = field(default_factory=list)  # rows of the table, in order of appearance
    cells: dict[tuple[str, int], str] = field(default_factory=dict)  # (unit, step) -> status
    reports: dict[int, RunReport] = field(default_factory=dict)  # step -> its stage report
    interrupted: int | None = None
    seconds: float = 0.0
    table_file: str | None = None

    def set(self, unit: str, step: Step, status: str) -> None:
        if unit not in self.units:
            self.units.append(unit)
        self.cells[(unit, step.number)] = status

    def count(self, step: Step, status: str) -> int:
        return sum(1 for (_, n), s in self.cells.items() if n == step.number and s == status)

    @property
    def ok(self) -> bool:
        finished = all(r.finish_error is None for r in self.reports.values())
        return (
            self.interrupted is None
            and finished
            and all(status in THROUGH for status in self.cells.values())
        )


def _expand(value: Any, out: Path) -> Path:
    """A path from the config: {out} is the run's output folder; relative to the current
    folder, as on the command line."""
    return Path(str(value).replace("{out}", str(out))).expanduser().absolute()


def _option(stage: Stage, key: str, where: str) -> Option:
    name = str(key).replace("_", "-")
    for option in stage.options:
        if option.name == name:
            return option
    allowed = ", ".join([*STEP_KEYS, *(o.name for o in stage.options)])
    raise ConfigError(f"{where}: unknown key '{key}' for {stage.name} (allowed: {allowed})")


def _step_entry(entry: Any, where: str) -> tuple[Stage, dict[str, Any]]:
    if isinstance(entry, str):
        name, options = entry, {}
    elif isinstance(entry, dict) and len(entry) == 1:
        name, options = next(iter(entry.items()))
        options = {} if options is None else options
    else:
        raise ConfigError(f"{where}: a stage name, or one stage name with its options")
    if name not in STAGES:
        raise ConfigError(f"{where}: no stage '{name}' (one of: {', '.join(STAGES)})")
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: the options of {name} must be a mapping")
    return STAGES[name], dict(options)


def _section(config: Path) -> dict[str, Any]:
    section = read_yaml(config).get(PIPELINE_KEY)
    if not isinstance(section, dict):
        raise ConfigError(
            f"{config}: no '{PIPELINE_KEY}' section with the steps to run (see configs/demo.yaml)"
        )
    unknown = sorted(set(section) - {"tiles", "out", "steps"})
    if unknown:
        raise ConfigError(f"{config}: unknown key '{PIPELINE_KEY}.{unknown[0]}'")
    if not isinstance(section.get("steps"), list) or not section["steps"]:
        raise ConfigError(f"{config}: '{PIPELINE_KEY}.steps' must be a list of stages")
    return section


def _command(
    stage: Stage,
    tiles: Path | None,
    out: Path,
    settings: Settings,
    units: tuple[Tile, ...],
    chosen: set[str],
) -> list[str]:
    """The watergee command line that runs this step alone, but for --config and --set: the
    options the step or the pipeline chose (the config's own settings come with --config)."""
    args = ["watergee", stage.name]
    if stage.name == "train":  # its own command: --out is the model folder
        folder = out / units[0].id
        return [*args, "--samples", str(settings.train.samples), "--model",
                settings.train.model, "--out", str(folder)]  # fmt: skip
    if stage.name == "gee-download":
        return ["watergee", "gee", "download", "--grid", str(units[0].source), "--out", str(out)]
    if stage.name == "gee-export":
        return ["watergee", "gee", "export-model", str(units[0].source)]
    if tiles is not None and not stage.source:
        args += ["--tiles", str(tiles)]
    args += ["--out", str(out)]
    for option in stage.options:
        value = setting_value(settings, option.setting)
        if option.setting not in chosen or value in (None, False, out):
            continue
        if value is True:
            args.append(f"--{option.name}")
        elif isinstance(value, list):
            for item in value:
                args += [f"--{option.name}", str(item)]
        else:
            args += [f"--{option.name}", str(value)]
    return args


class _Chain:
    """What the next step reads: the tile list, the class-map layer, the model, the samples."""

    def __init__(self, tiles: Path | None, out: Path) -> None:
        self.tiles = tiles
        self.folders = {name: out / name for name in ("tiles", "samples", "models", "products")}
        self.labels: Path | None = None  # what denoise and sample read, once a step made them
        self.layer = "classes"
        self.model: Path | None = None
        self.samples = self.folders["samples"]
        self.mosaic: Tile | None = None  # after a merge: the unit the product stages read


def plan_pipeline(
    config: Path,
    tiles: Path | None = None,
    out: Path | None = None,
    overrides: Sequence[str] = (),
    values: dict[str, Any] | None = None,
    read_tiles: ReadTiles | None = None,
) -> Plan:
    """Resolve every step (settings, folders, units) before anything runs, so that a typo in
    the last step fails the run before the first one starts."""
    section = _section(config)
    if out is None:
        if not section.get("out"):
            raise ConfigError(f"{config}: no output folder (--out, or '{PIPELINE_KEY}.out')")
        out = Path(str(section["out"]))
    out = out.expanduser().absolute()
    first, _ = _step_entry(section["steps"][0], f"{config}: {PIPELINE_KEY}.steps[1]")
    if tiles is None and section.get("tiles"):
        tiles = _expand(section["tiles"], out)
    if tiles is None and first.name not in SOURCES:
        raise ConfigError(f"{config}: no tile list (--tiles, or '{PIPELINE_KEY}.tiles')")
    if tiles is not None and first.name in SOURCES:
        raise ConfigError(f"{config}: the first step, {first.name}, makes the tile list; "
                          f"give no --tiles or '{PIPELINE_KEY}.tiles'")  # fmt: skip
    if tiles is not None:
        tiles = tiles.expanduser().absolute()
        if read_tiles is not None:
            read_tiles(tiles)  # a bad list fails here, naming its line
    chain, steps = _Chain(tiles, out), []
    labels: dict[str, int] = {}
    for number, entry in enumerate(section["steps"], start=1):
        where = f"{config}: {PIPELINE_KEY}.steps[{number}]"
        stage, options = _step_entry(entry, where)
        step = _plan_step(number, stage, options, where, chain, config, overrides, values or {})
        if step.side and step.tiles is not None and read_tiles is not None:
            read_tiles(step.tiles)
        if step.label in labels and len(step.units) == 1:  # merge truth: merge-truth
            step = replace(step, label=f"{step.label}-{step.units[0].id}")
        labels[step.label] = labels.get(step.label, 0) + 1
        if labels[step.label] > 1:
            step = replace(step, label=f"{step.label}#{labels[step.label]}")
        steps.append(step)
    return Plan(tiles, out, tuple(steps))


def _products(chain: _Chain) -> Path:
    return chain.folders["products"]


def _plan_step(
    number: int,
    stage: Stage,
    options: dict[str, Any],
    where: str,
    chain: _Chain,
    config: Path,
    overrides: Sequence[str],
    base_values: dict[str, Any],
) -> Step:
    out_root = chain.folders["tiles"].parent
    own_tiles, own_out = options.pop("tiles", None), options.pop("out", None)
    sets = options.pop("set", [])
    sets = [sets] if isinstance(sets, str) else list(sets)
    label = options.pop("label", None)
    values = dict(base_values)
    for key, value in options.items():
        option = _option(stage, key, where)
        values[option.setting] = _expand(value, out_root) if option.kind is Path else value
    side = own_tiles is not None
    tiles = _expand(own_tiles, out_root) if side else chain.tiles
    product = "product" in stage.sections
    after_merge = chain.mosaic is not None and not side

    def settings_now() -> Settings:
        try:
            return load_settings(config, [*overrides, *sets], values)
        except ConfigError as exc:
            raise ConfigError(f"{where} ({stage.name}): {exc}") from None

    own = settings_now()  # the step's own settings: model kind, names, mode
    units: tuple[Tile, ...] = ()
    if stage.name == "sample":
        out = _expand(own_out, out_root) if own_out else chain.folders["samples"]
        values.setdefault("sample.work", chain.folders["tiles"])
        if chain.labels is not None:
            values.setdefault("sample.labels", chain.labels)
    elif stage.name == "train":
        values.setdefault("train.samples", chain.samples)
        kind = own.train.model
        folder = _expand(own_out, out_root) if own_out else chain.folders["models"] / kind
        out, units = folder.parent, (Tile(folder.name, values["train.samples"]),)
        tiles = None
    elif stage.name == "evaluate":
        out = _expand(own_out, out_root) if own_out else _products(chain)
        if "evaluate.classified" not in values:
            if chain.mosaic is None:
                raise ConfigError(f"{where} (evaluate): needs 'classified' (no merge before it)")
            values["evaluate.classified"] = layout.class_map(
                _products(chain), chain.mosaic, own.product.mode, chain.layer
            )
        units, tiles = (Tile(own.evaluate.name, values["evaluate.classified"]),), None
    elif stage.name == "gee-download":
        if own.gee.grid is None:
            raise ConfigError(f"{where} (gee-download): needs 'grid' (from `watergee gee grid`)")
        out = _expand(own_out, out_root) if own_out else out_root / "cells"
        units, tiles = (Tile(own.gee.name, own.gee.grid),), None
    elif stage.name == "gee-export":
        model = values.get("gee.model") or chain.model or own.gee.model
        if model is None:
            raise ConfigError(f"{where} (gee-export): needs 'model' (no train step before it)")
        values["gee.model"] = model = Path(model)
        out, units, tiles = model.parent, (Tile(model.name, model),), None
    elif stage.unit != "tile":  # merge: one mosaic of the whole list
        out = _expand(own_out, out_root) if own_out else _products(chain)
        values.setdefault("product.work", chain.folders["tiles"])
        if not side:
            values.setdefault("product.input", chain.layer)
        units = (Tile(str(setting_value(own, stage.unit)), tiles),)
    else:
        default = _products(chain) if after_merge else chain.folders["tiles"]
        out = _expand(own_out, out_root) if own_out else default
        if after_merge:
            units = (chain.mosaic,)  # type: ignore[assignment]
        if product:
            values.setdefault("product.work", out)
            if not side:
                values.setdefault("product.input", chain.layer)
        if stage.name == "classify" and chain.model is not None:
            values.setdefault("classify.model", chain.model)
        if stage.name == "denoise" and chain.labels is not None:
            values.setdefault("denoise.labels", chain.labels)
    settings = settings_now()
    if stage.name == "classify" and settings.classify.model is None:
        raise ConfigError(f"{where} (classify): needs 'model' (no train step before it)")
    if not side:
        _advance(chain, stage, settings, out, units)
    chosen = set(values) - set(base_values)
    command = [*_command(stage, tiles, out, settings, units, chosen)]
    if stage.name not in SETTINGLESS:
        command += ["--config", str(config.absolute())]
        for item in [*overrides, *sets]:
            command += ["--set", item]
    label = str(label or stage.record_name(settings))
    return Step(number, label, stage, settings, out, tiles, units, tuple(command), side)


def _advance(chain: _Chain, stage: Stage, settings: Settings, out: Path, units: tuple) -> None:
    """What the steps after this one read."""
    if stage.name in layout.PRODUCT_LAYERS:
        chain.layer = layout.PRODUCT_LAYERS[stage.name]
    elif stage.name == "sample":
        chain.samples = out
    elif stage.name == "train":
        chain.model = out / units[0].id
    elif stage.name == "gee-download":
        chain.tiles = layout.downloaded_tiles(out)
        chain.labels = layout.downloaded_labels(out)
    elif stage.name == "denoise":
        chain.labels = layout.denoised_list(out)
    elif stage.name == "merge":
        name = units[0].id
        chain.mosaic = Tile(name, layout.mosaic(out, units[0]))
        chain.tiles = layout.mosaic_list(out, units[0])  # merge writes it
        chain.layer = "classes"
        chain.folders["products"] = out


class SharedClient:
    """One cluster for every step: opened when a step first has work, closed at the end."""

    def __init__(self, connect: Connect, tasks: int | None) -> None:
        self._connect, self._tasks = connect, tasks
        self._stack = contextlib.ExitStack()
        self._client: Any = None

    def __call__(self, tasks: int) -> contextlib.AbstractContextManager[Any]:
        if self._client is None:
            # an unknown tile list (made by a step) may need every worker
            wanted = None if self._tasks is None else max(tasks, self._tasks)
            self._client = self._stack.enter_context(self._connect(wanted))  # type: ignore[arg-type]
        return contextlib.nullcontext(self._client)

    def close(self) -> None:
        self._stack.close()


Progress = Callable[[Step, int], tuple[contextlib.AbstractContextManager[Any], Any]]


def run_pipeline(
    plan: Plan,
    connect: Connect,
    read_tiles: ReadTiles,
    force: bool = False,
    progress: Progress | None = None,
    announce: Callable[[Step, int, int], None] | None = None,
    finished: Callable[[Step, RunReport], None] | None = None,
) -> PipelineReport:
    """Run the plan's steps in order on one cluster (started when a step first has work)."""
    started = time.perf_counter()
    report = PipelineReport(secrets.token_hex(4), list(plan.steps))
    shared = SharedClient(connect, len(read_tiles(plan.tiles)) if plan.tiles else None)
    blocked: set[str] = set()  # units that did not come through a step
    whole = True  # every unit came through every step so far
    lost_source: str | None = None  # a step that makes the tile list failed: nothing follows
    try:
        for step in plan.steps:
            if lost_source is not None:  # the tile list these steps read was never made
                report.set(lost_source, step, "blocked")
                if announce is not None:
                    announce(step, 0, 1)
                continue
            units = step.unit_list(read_tiles)
            if step.stage.unit == "tile":
                todo = [u for u in units if u.id not in blocked]
            else:  # a model or a mosaic is made from every tile or not at all
                todo = units if whole else []
            for unit in units:
                if unit not in todo:
                    report.set(unit.id, step, "blocked")
                    blocked.add(unit.id)
                    whole = False
            if announce is not None:
                announce(step, len(todo), len(units) - len(todo))
            if not todo:
                continue
            context, on_outcome = progress(step, len(todo)) if progress else (None, None)
            with context or contextlib.nullcontext():
                try:
                    result = run_stage(step.stage, todo, step.settings, step.out, shared,
                                       force, on_outcome=on_outcome)  # fmt: skip
                except SharedInputError as exc:  # what every unit of the step reads is bad
                    name = step.stage.record_name(step.settings)
                    result = RunReport(step.stage.name, report.run_id, "", "")
                    result.outcomes = [Outcome(u.id, name, "failed", 0.0, str(exc)) for u in todo]
            if result.interrupted is not None:
                shared.close()  # the workers go before their partial files do
                result = conclude_interrupted(result, todo, step.out)
                report.interrupted = result.interrupted
            report.reports[step.number] = result
            if finished is not None:
                finished(step, result)
            for outcome in result.outcomes:
                report.set(outcome.tile, step, outcome.status)
                if outcome.status not in THROUGH:
                    blocked.add(outcome.tile)
                    whole = False
                    if step.stage.name in SOURCES:
                        lost_source = outcome.tile
            whole = whole and result.finish_error is None
            if report.interrupted is not None:
                break
    except Interrupted as stop:  # between steps, or while a step read its records
        report.interrupted = stop.signum
    finally:
        shared.close()
    report.seconds = time.perf_counter() - started
    report.table_file = str(write_table(report, plan))
    return report


def table_rows(report: PipelineReport) -> Iterator[list[str]]:
    """The tiles x steps table: a header, then one row per unit ('' where a step does not
    apply)."""
    yield ["unit", *(f"{s.number}:{s.label}" for s in report.steps)]
    for unit in report.units:
        yield [unit, *(report.cells.get((unit, s.number), "") for s in report.steps)]


def write_table(report: PipelineReport, plan: Plan) -> Path:
    """The table as tab-separated text beside the runs' reports."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime())
    path = layout.runs_dir(plan.out) / f"pipeline-{stamp}-{report.run_id}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text("".join("\t".join(row) + "\n" for row in table_rows(report)))
    return path


def products(report: PipelineReport) -> list[Path]:
    """The files of the run-wide units that came through (model, mosaic and what was made of
    it, reports), from their records: where to look once the run is over."""
    found = []
    for step in report.steps:
        for unit in step.units:
            if report.cells.get((unit.id, step.number)) not in THROUGH:
                continue
            name = step.stage.record_name(step.settings)
            record = read_record(layout.record(step.out, unit, name)) or {}
            for entry in record.get("outputs", []):
                path = step.out / entry["path"]
                if not path.name.endswith((".stac.json", ".aux.xml")) and path not in found:
                    found.append(path)
    return found
