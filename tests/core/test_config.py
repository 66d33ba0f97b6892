from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import ValidationError

from watergee.core.config import (
    Settings,
    annotated_yaml,
    is_knob,
    is_later,
    load_settings,
    save_settings,
    section_hash,
)
from watergee.core.errors import ConfigError, WatergeeError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_file_is_the_generated_one_and_loads_to_the_defaults():
    text = (ROOT / "configs" / "defaults.yaml").read_text()
    assert text == annotated_yaml(), "regenerate configs/defaults.yaml with `watergee config`"
    assert load_settings(ROOT / "configs" / "defaults.yaml") == Settings()


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    load_settings(path)


def test_unknown_key_is_named_with_its_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("resample:\n  metod: cubic\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value) == f"{path}: unknown key 'resample.metod'"
    assert isinstance(err.value, ValueError) and isinstance(err.value, WatergeeError)


def test_unknown_section_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("resampel:\n  method: cubic\n")
    with pytest.raises(ConfigError, match=r"unknown key 'resampel'"):
        load_settings(path)


def test_wrong_type_names_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("output:\n  window: big\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith(f"{path}: 'output.window':") and "integer" in message
    assert "\n" not in message


def test_bad_choice_and_bad_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("resample:\n  method: sharpest\n")
    with pytest.raises(ConfigError, match=r"'resample.method'"):
        load_settings(path)
    path.write_text("resample: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^{path}: .* at line \d+"):
        load_settings(path)
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(tmp_path / "absent.yaml")


def test_overrides_win_over_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("resample:\n  method: cubic\noutput:\n  window: 512\n")
    settings = load_settings(path, ["resample.method=near", "indices.indices=[MNDWI]"])
    assert settings.resample.method == "near"
    assert settings.output.window == 512
    assert settings.indices.indices == ["MNDWI"]
    with pytest.raises(ConfigError, match=r"expected section\.key=value"):
        load_settings(None, ["resample.method"])
    with pytest.raises(ConfigError, match=r"unknown key 'resample\.speed'"):
        load_settings(None, ["resample.speed=1"])


def test_section_hash_follows_only_the_stage_sections():
    base = Settings()
    sections = ("sentinel2", "output", "resample")
    h = section_hash(base, sections)
    assert h == section_hash(Settings(), sections)
    more_workers = load_settings(None, ["cluster.workers=7"])
    assert section_hash(more_workers, sections) == h
    cubic = load_settings(None, ["resample.method=cubic"])
    assert section_hash(cubic, sections) != h
    assert section_hash(cubic, ("output",)) == section_hash(base, ("output",))


def _other_value(section: type, name: str, value):
    """A valid value of the field other than `value`."""
    annotation = section.model_fields[name].annotation
    choices = [c for c in get_args(annotation) if isinstance(c, str | int)]
    for inner in get_args(annotation):
        choices += [c for c in get_args(inner) if isinstance(c, str | int)]
    candidates = [c for c in choices if c != value]
    if isinstance(value, bool):
        candidates = [not value]
    elif isinstance(value, int):
        candidates += [value + 16, value + 1, value // 2]
    elif isinstance(value, float):
        candidates += [value / 2, value + 0.5]
    elif isinstance(value, list):
        candidates += [value[:-1], value[::-1], [6], ["B02"], ["MNDWI"]]
    elif isinstance(value, dict):
        candidates += [{1: 2}, {1: "water"}, {"GPU": 1.0}]
    elif isinstance(value, tuple):
        candidates += [(2.0, 98.0), (7, 9)]
    elif isinstance(value, str):
        candidates += [value + "x", "2" + value]  # "2" + a size, time or duration is another
    candidates += [-1000.0, 3, 64, [6], Path("/elsewhere/x.tif"), "somewhere"]
    for candidate in candidates:
        try:
            new = section.model_validate({name: candidate})
        except ValidationError:
            continue
        if getattr(new, name) != value:
            return getattr(new, name)
    raise AssertionError(f"no other valid value for {section.__name__}.{name}")


def _every_field():
    for section_name, info in Settings.model_fields.items():
        section = info.annotation
        for name in section.model_fields:
            yield section_name, section, name


@pytest.mark.parametrize(
    ("section_name", "section", "name"),
    list(_every_field()),
    ids=lambda v: getattr(v, "__name__", v),
)
def test_only_science_fields_change_a_stage_hash(section_name, section, name):
    """Knobs (speed, memory, storage, placement) and the cluster section never make a finished
    tile look stale; every other field of a section a stage reads does."""
    from watergee.core.registry import STAGES

    base = Settings()
    value = _other_value(section, name, getattr(getattr(base, section_name), name))
    changed = base.model_copy(
        update={section_name: getattr(base, section_name).model_copy(update={name: value})}
    )
    knob = is_knob(section, name)
    for stage in STAGES.values():
        same = section_hash(changed, stage.sections) == section_hash(base, stage.sections)
        reads = section_name in stage.sections
        assert same == (knob or not reads), (stage.name, f"{section_name}.{name}", knob)


def test_knobs_are_the_documented_ones():
    knobs = {f"{s}.{n}" for s, cls, n in _every_field() if is_knob(cls, n)}
    assert {k for k in knobs if not k.startswith("cluster.")} == {
        "output.window", "output.threads", "output.compress", "output.intermediate_compress",
        "output.blocksize", "output.overviews",
        "classify.memory_mb", "classify.window", "classify.batch_size", "classify.work",
        "sample.work", "sample.shard_size", "sample.required", "sample.class_names",
        "denoise.work", "product.work", "train.samples",
        "gee.project", "gee.service_account", "gee.key_file", "gee.high_volume",
        "gee.concurrency", "gee.retries", "gee.backoff", "gee.request_bytes",
        "gee.grid", "gee.name", "gee.model",
    }  # fmt: skip
    assert all(is_knob(cls, n) for s, cls, n in _every_field() if s == "cluster")


def test_a_setting_added_later_at_its_default_leaves_older_outputs_current():
    """classify.precision came after class maps were made in float32: at float32 the classify
    hash is the one computed without it; at bfloat16 it is another."""
    from watergee.core.config import science

    later = {f"{s}.{n}" for s, cls, n in _every_field() if is_later(cls, n)}
    assert later == {"classify.precision"}
    base = Settings()
    assert "precision" not in science(base.classify)
    mixed = base.model_copy(
        update={"classify": base.classify.model_copy(update={"precision": "bfloat16"})}
    )
    assert science(mixed.classify)["precision"] == "bfloat16"
    classify = ("sentinel2", "output", "classify")
    assert section_hash(mixed, classify) != section_hash(base, classify)


def test_watergee_config_marks_exactly_the_settings_kept_out_of_the_hash():
    """Every key's comment, or for the cluster section the section's, says when changing it
    leaves finished outputs current; no other comment says so."""
    from watergee.core.config import UNHASHED

    marked, comment, section = set(), "", None
    for line in annotated_yaml().splitlines():
        if line.lstrip().startswith("#"):
            comment += line.lstrip("# ") + " "
            continue
        if line and not line.startswith(" "):
            section = line.rstrip(":")
            marked |= {f"{section}.*"} if UNHASHED in comment else set()
        elif line.strip():
            key = line.strip().split(":")[0]
            marked |= {f"{section}.{key}"} if UNHASHED in comment else set()
        comment = ""
    knobs = {f"{s}.{n}" for s, cls, n in _every_field() if is_knob(cls, n)}
    assert marked == {k for k in knobs if not k.startswith("cluster.")} | {"cluster.*"}


def test_command_values_are_typed_never_reparsed(tmp_path):
    """A path from an option is a path, whatever YAML would make of it."""
    odd = tmp_path / "labels #2.tif"
    settings = load_settings(None, [], {"sample.labels": odd, "denoise.labels": Path("2020")})
    assert settings.sample.labels == odd
    assert settings.denoise.labels == Path("2020").resolve()


def test_saved_settings_reload_to_the_same_values(tmp_path):
    settings = load_settings(None, ["resample.method=cubic", "cluster.workers=3"])
    path = save_settings(settings, tmp_path)
    assert path.parent == tmp_path / ".watergee" / "settings"
    assert load_settings(path) == settings
    assert save_settings(settings, tmp_path) == path  # same settings, same file
    assert yaml.safe_load(path.read_text())["resample"]["method"] == "cubic"


def test_a_walltime_is_a_slurm_time_whichever_way_yaml_reads_it(tmp_path):
    """`walltime: 90` is read by YAML as an integer (Slurm's minutes) and `01:30:00` by YAML 1.1
    as a base-60 number: both stay what the user wrote."""
    config = tmp_path / "c.yaml"
    for text, expected in (("90", "90"), ("01:30:00", "01:30:00"), ("'2-00'", "2-00")):
        config.write_text(f"cluster:\n  walltime: {text}\n")
        assert load_settings(config).cluster.walltime == expected
    config.write_text("cluster:\n  walltime: true\n")
    with pytest.raises(ConfigError, match=r"cluster\.walltime"):
        load_settings(config)
