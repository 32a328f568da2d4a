"""envs/*.yaml (per-rule conda specs) stay consistent with pyproject.toml, the tested install path."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_reqs() -> dict[str, Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in data["project"]["dependencies"]]
    return {r.name.lower(): r for r in reqs}


def _env_reqs(path: Path) -> list[Requirement]:
    spec = yaml.safe_load(path.read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
    return [Requirement(r) for r in pip]


def test_every_env_pin_matches_pyproject():
    project = _pyproject_reqs()
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs, "no envs/*.yaml"
    for env in envs:
        for req in _env_reqs(env):
            assert req.name.lower() in project, f"{env.name}: {req.name} is not a pyproject dependency"
            ref = project[req.name.lower()]
            assert req.specifier == ref.specifier, f"{env.name}: {req} != pyproject {ref}"
            assert req.extras == ref.extras, f"{env.name}: extras of {req} != pyproject {ref}"


def test_every_pyproject_dependency_is_in_some_env():
    covered = {r.name.lower() for env in (ROOT / "envs").glob("*.yaml") for r in _env_reqs(env)}
    missing = set(_pyproject_reqs()) - covered
    assert not missing, f"pyproject dependencies missing from envs/: {sorted(missing)}"


def test_env_python_matches_requires_python():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    low = re.search(r">=\s*(\d+\.\d+)", data["project"]["requires-python"]).group(1)
    for env in (ROOT / "envs").glob("*.yaml"):
        spec = yaml.safe_load(env.read_text())
        py = next(d for d in spec["dependencies"] if isinstance(d, str) and d.startswith("python"))
        assert py.split("=")[-1] >= low, f"{env.name}: {py} older than requires-python {low}"


def test_rules_reference_existing_envs():
    for smk in (ROOT / "rules").glob("*.smk"):
        for name in re.findall(r'conda:\s*\n?\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / name).resolve().exists(), f"{smk.name}: conda env {name} missing"
