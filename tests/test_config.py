from pathlib import Path

import pytest
import yaml

from watergee.config import (
    Settings,
    annotated_yaml,
    load_settings,
    save_settings,
    section_hash,
)
from watergee.errors import ConfigError, WatergeeError

ROOT = Path(__file__).resolve().parents[1]


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


def test_saved_settings_reload_to_the_same_values(tmp_path):
    settings = load_settings(None, ["resample.method=cubic", "cluster.workers=3"])
    path = save_settings(settings, tmp_path)
    assert path.parent == tmp_path / ".watergee" / "settings"
    assert load_settings(path) == settings
    assert save_settings(settings, tmp_path) == path  # same settings, same file
    assert yaml.safe_load(path.read_text())["resample"]["method"] == "cubic"
