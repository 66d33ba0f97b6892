"""The Apptainer definition, parsed offline with spython (Apptainer itself cannot be installed
here; `make container-rehearsal` runs its install script in a fresh Debian root)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFINITION = ROOT / "containers" / "watergee.def"


@pytest.fixture(scope="module")
def recipe():
    parsers = pytest.importorskip("spython.main.parse.parsers")
    return parsers.SingularityParser(str(DEFINITION)).recipe["spython-base"]


def test_the_image_builds_from_plain_debian_and_installs_through_the_one_script(recipe):
    assert recipe.fromHeader == "debian:bookworm-slim"
    copied = dict(line.split() for line in recipe.files)
    for source, target in copied.items():
        assert (ROOT / source).exists(), f"%files copies {source}, which is not in the repository"
        assert target.startswith("/opt/watergee-src/")
    assert copied["containers/install.sh"] == "/opt/watergee-src/containers/install.sh"
    assert recipe.install[0] == "bash /opt/watergee-src/containers/install.sh /opt/watergee-src"


def test_the_image_runs_watergee_and_tests_itself(recipe):
    assert recipe.cmd == 'exec watergee "$@"'
    tests = [line for line in recipe.install if "/tests.sh" in line and "echo" in line]
    assert any("watergee info" in line for line in tests)
    assert any("watergee-selftest" in line for line in tests)
    labels = dict(line.split(" ", 1) for line in recipe.labels)
    assert labels["org.opencontainers.image.title"] == "watergee"
    assert any(line.startswith("KERAS_HOME=") for line in recipe.environ)
    text = DEFINITION.read_text()
    assert "%help" in text and "apptainer run --nv watergee.sif" in text


@pytest.mark.parametrize("script", ["install.sh", "selftest.sh", "rehearse.sh"])
def test_the_container_scripts_are_valid_bash(script):
    checked = subprocess.run(["bash", "-n", str(ROOT / "containers" / script)],
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
