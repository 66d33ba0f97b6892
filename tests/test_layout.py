"""The package's layering: each layer imports only the layers below it, stages never import
each other, and the README lists exactly the commands `watergee --help` shows."""

import ast
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "watergee"
SCIENCE = {"sentinel2", "stacks", "spectral", "features", "sampling", "sampleset",
           "segmentation", "denoising", "metrics", "mgrs", "ownership", "mosaic",
           "classmaps", "demo", "accuracy", "reference", "nirsplit", "waterchecks"}  # fmt: skip
#: Each layer and the layers it may import from (itself included).
ALLOWED = {
    "core": {"core"},
    "io": {"core", "io"},
    "science": {"core", "io", "science"},
    "models": {"core", "io", "science", "models"},
    "stages": {"core", "io", "science", "models"},
    "hpc": {"core", "hpc"},
    "gee": {"core", "io", "science", "models", "gee"},
    "cli": {"core", "cli"},
}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "watergee" or len(parts) == 1:
        return None
    return "science" if parts[1] in SCIENCE else parts[1]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.startswith("watergee.")}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        yield module, path


@pytest.mark.parametrize(("module", "path"), list(_modules()), ids=lambda v: str(v))
def test_imports_go_only_downwards(module, path):
    layer = _layer(module)
    if layer is None:
        return
    for imported in _imports(path):
        target = _layer(imported)
        if target is None or imported == "watergee.__version__":
            continue
        # The cli reaches library functions only inside commands, by dotted name.
        assert target in ALLOWED[layer] or layer == "cli", f"{module} imports {imported}"
        if layer == "stages" and target == "stages":
            raise AssertionError(f"{module} imports another stage: {imported}")


def test_only_the_gee_command_group_reaches_the_gee_wing_or_earthengine_api():
    """earthengine-api stays out of every other command's import path."""
    for module, path in _modules():
        if module.startswith(("watergee.gee", "watergee.cli.gee")):
            continue
        imported = _imports(path)
        assert not {n for n in imported if n.startswith("watergee.gee")}, module
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "ee" or n.startswith("ee.") for n in names), module


def test_cli_module_level_imports_are_core_only():
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: commands import inside their bodies
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("watergee."):
                assert _layer(node.module) in {"core", "cli"}, f"{path.name}: {node.module}"


def test_readme_lists_the_commands_of_help():
    from watergee.cli.main import app

    runner = CliRunner()
    listed = set(re.findall(r"^│ (\w[\w-]*) ", runner.invoke(app, ["--help"]).output, re.M))
    groups = ("sample", "model", "tiles", "cluster", "gee")
    for group in groups:
        sub = runner.invoke(app, [group, "--help"]).output
        listed |= {f"{group} {c}" for c in re.findall(r"^│ (\w[\w-]*) ", sub, re.M)}
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("## Commands") :].split("```")[1]
    documented = set()
    for line in block.splitlines():
        line = line.split("#")[0]
        words = [w for w in line.split() if not w.startswith(("[", "-", "#"))]
        if len(words) >= 2 and words[0] == "watergee":
            documented.add(words[1])
            if words[1] in groups and len(words) > 2 and re.fullmatch(r"[a-z][\w-]*", words[2]):
                documented.add(f"{words[1]} {words[2]}")
    documented.discard("COMMAND")
    assert listed <= documented, f"missing from the README: {listed - documented}"
    stray = {d for d in documented if d not in listed and d not in groups}
    assert not stray, f"in the README, not in --help: {stray}"
    tree = readme[readme.index("## Architecture") :]
    for folder in ("cli/", "core/", "io/", "stages/", "models/", "hpc/", "gee/"):
        assert folder in tree
