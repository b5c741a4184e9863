"""envs/mustsurv.yaml (the rules' conda environment, `--sdm conda`) lists the same dependencies as
pyproject.toml, with the same lower bounds.

The environment is not solved in CI (no conda channel is reachable there), so this static comparison
is what keeps the two from drifting apart: a dependency added to pyproject.toml and not to the env file
fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
ENV_FILE = REPO / "envs" / "mustsurv.yaml"

# conda-forge package name -> the PyPI distribution it stands for, where the two differ.
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "opencv": "opencv-python-headless",
    "py-opencv": "opencv-python-headless",
    "openslide": "openslide-bin",
    "snakemake-minimal": "snakemake",
}
# Entries of the env file that are not Python dependencies of the package.
ENV_ONLY = {"python", "pip"}
# The pip section's line that installs the package itself (paths are relative to the env file).
SELF_INSTALL = "-e .."


def normalise(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lower_bound(specifier: SpecifierSet) -> Version | None:
    """The version of a ``>=`` clause, if the specifier has one."""
    bounds = [Version(s.version) for s in specifier if s.operator == ">="]
    return max(bounds) if bounds else None


def pyproject_dependencies() -> dict[str, SpecifierSet]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        deps[normalise(req.name)] = req.specifier
    return deps


def conda_entry(spec: str) -> tuple[str, SpecifierSet]:
    """Name (mapped to PyPI) and version specifier of a conda match spec such as ``pandas>=2.0,<3``."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", spec)
    assert match, f"{ENV_FILE.name}: cannot read conda entry {spec!r}"
    name, version = match.groups()
    name = normalise(name)
    name = CONDA_TO_PYPI.get(name, name)
    if re.match(r"=\d", version):
        version = ">" + version  # conda's `=X` means X.*: its lower bound is X
    return name, SpecifierSet(version)


def env_dependencies() -> tuple[dict[str, SpecifierSet], list[str]]:
    """The env file's dependencies by PyPI name (conda and pip sections together), and the names listed
    more than once."""
    env = yaml.safe_load(ENV_FILE.read_text())
    deps: dict[str, SpecifierSet] = {}
    seen: list[str] = []
    pip_lines: list[str] = []
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            assert set(entry) == {"pip"}, f"{ENV_FILE.name}: unexpected section {sorted(entry)}"
            pip_lines.extend(entry["pip"])
            continue
        name, spec = conda_entry(entry)
        if name in ENV_ONLY:
            continue
        seen.append(name)
        deps[name] = spec
    for line in pip_lines:
        if line.strip() == SELF_INSTALL:
            continue
        # pip reads these lines as a requirements file: options such as --no-deps are rejected there
        assert not line.lstrip().startswith("-"), (
            f"{ENV_FILE.name}: pip line {line!r} is not a requirement (pip refuses options like --no-deps "
            f"in a requirements file)")
        req = Requirement(line)
        name = normalise(req.name)
        seen.append(name)
        deps[name] = req.specifier
    duplicated = sorted({n for n in seen if seen.count(n) > 1})
    return deps, duplicated


def test_env_installs_the_package_itself():
    env = yaml.safe_load(ENV_FILE.read_text())
    pip = [e for e in env["dependencies"] if isinstance(e, dict)]
    assert pip and SELF_INSTALL in pip[0]["pip"], f"{ENV_FILE.name} must install this checkout ({SELF_INSTALL})"


def test_env_lists_the_same_dependencies_as_pyproject():
    project = pyproject_dependencies()
    env, duplicated = env_dependencies()
    assert not duplicated, f"{ENV_FILE.name} lists {duplicated} more than once (conda and pip?)"
    missing = sorted(set(project) - set(env))
    extra = sorted(set(env) - set(project))
    assert not missing, (f"in pyproject.toml but not in {ENV_FILE.name}: {missing} (add them; conda-forge names "
                         f"that differ from PyPI go into CONDA_TO_PYPI, others into the pip section)")
    assert not extra, f"in {ENV_FILE.name} but not in pyproject.toml: {extra}"


@pytest.mark.parametrize("name", sorted(pyproject_dependencies()))
def test_lower_bounds_agree(name):
    env, _ = env_dependencies()
    if name not in env:
        pytest.fail(f"{name} is not in {ENV_FILE.name}")
    ours, theirs = lower_bound(pyproject_dependencies()[name]), lower_bound(env[name])
    if ours is not None and theirs is not None:
        assert ours == theirs, f"{name}: pyproject.toml >={ours}, {ENV_FILE.name} >={theirs}"
    else:
        assert ours is None and theirs is None, (
            f"{name}: a lower bound in only one file (pyproject.toml {ours}, {ENV_FILE.name} {theirs})")


def test_env_python_satisfies_requires_python():
    requires = SpecifierSet(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"])
    env = yaml.safe_load(ENV_FILE.read_text())
    python = [e for e in env["dependencies"] if isinstance(e, str) and re.match(r"python\s*[=<>]", e)]
    assert python, f"{ENV_FILE.name} pins no python version"
    version = re.sub(r"^python\s*[=<>]+\s*", "", python[0]).split(",")[0]
    assert Version(version) in requires, f"{ENV_FILE.name} python {version} outside requires-python {requires}"
