"""DVC: the committed dvc.yaml is what se_lib/dvc_stages.py generates, and results round-trip through a remote.

The round trip reuses the session's tiny workflow run (fixture ``workflow_run``): its results are copied
with a fresh copy of the source tree into a git repository, recorded in dvc.lock (``dvc commit`` + touch, as
``make dvc-commit``), pushed to a local remote in a temporary folder, cloned into a new folder and
restored with the project command ``make pull`` runs; then ``snakemake -n`` has nothing to do, ``dvc
status`` and ``git status`` are clean and the comparison table equals the original.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT, copy_workflow_source
from se_lib.dvc_stages import DEFAULT_CONFIG, render, stage_targets

DVC = str(Path(sys.executable).parent / "dvc")
TINY = "config/tiny.yaml"
DVC_FILES = (".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore")


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"{' '.join(cmd)} failed in {cwd}:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout + out.stderr


def _env(snakemake_env, workdir: Path) -> dict[str, str]:
    env = snakemake_env(workdir)
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t")
    env.update(GIT_COMMITTER_EMAIL="t@example.org", DVC_NO_ANALYTICS="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def test_committed_dvc_yaml_is_a_fresh_generation():
    fresh = render([DEFAULT_CONFIG], ROOT)
    assert (ROOT / "dvc.yaml").read_text(encoding="utf-8") == fresh, (
        "dvc.yaml differs from a fresh generation: run `make dvc-yaml` (uv run python -m se_lib.dvc_stages)"
    )


def test_dvc_config_has_a_local_default_remote_outside_the_repository():
    out = subprocess.run([DVC, "remote", "list"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    name, url, *flags = out.split("\n")[0].split()
    assert "(default)" in flags, out
    remote = (ROOT / ".dvc" / url).resolve() if not os.path.isabs(url) else Path(url)
    assert ROOT.resolve() not in remote.parents and remote != ROOT.resolve(), (name, remote)
    config = (ROOT / ".dvc" / "config").read_text()
    assert "analytics = false" in config


def test_every_snakemake_final_target_is_a_dvc_output_and_stages_are_persistent():
    doc = yaml.safe_load(render([DEFAULT_CONFIG], ROOT))
    outs = []
    for stage in doc["stages"].values():
        body = stage.get("do", stage)
        items = stage.get("foreach", [None])
        for section in ("outs", "metrics", "plots"):
            for entry in body.get(section, []):
                ((path, opts),) = entry.items()
                assert opts.get("persist") is True, (path, opts)
                outs += [path.replace("${item}", i) if i else path for i in items]
    from se_lib.config import load_config

    config = load_config(ROOT / DEFAULT_CONFIG)
    targets = [t.replace("${item}", m) for ts in stage_targets(config).values() for t in ts for m in config["models"]]
    # ... and, independently of the generator, the inputs of Snakemake's own `all` rule (its final targets)
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = dry.stdout.splitlines()
    start = lines.index("rule all:")
    all_inputs = next(ln for ln in lines[start:] if ln.strip().startswith("input:")).split(":", 1)[1]
    final = [t.strip() for t in all_inputs.split(",") if t.strip()]
    assert len(final) > 10, dry.stdout[-2000:]
    for target in set(targets) | set(final):
        assert any(target == o or target.startswith(o + "/") for o in outs), f"{target} is no DVC output"


def test_round_trip_push_clone_pull_leaves_nothing_to_do(workflow_run, tmp_path, run_snakemake, snakemake_env):
    workdir, _ = workflow_run
    src = copy_workflow_source(tmp_path / "src")
    shutil.copytree(workdir / "results", src / "results")
    for name in DVC_FILES:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    env = _env(snakemake_env, src)
    remote = tmp_path / "remote"

    _run(["git", "init", "-q", "-b", "main"], src, env)
    _run([sys.executable, "-m", "se_lib.dvc_stages", "--configfile", TINY, "generate"], src, env)
    _run([DVC, "remote", "modify", "local", "url", str(remote)], src, env)
    _run(["git", "add", "-A"], src, env)
    _run(["git", "commit", "-q", "-m", "workflow + dvc.yaml (tiny)"], src, env)
    # `make dvc-commit DVC_CONFIG=config/tiny.yaml`: record the run's results in dvc.lock, then `make push`
    _run([sys.executable, "-m", "se_lib.dvc_stages", "--configfile", TINY, "commit"], src, env)
    assert "up to date" in _run([DVC, "status"], src, env)
    dry = run_snakemake(src, "-n")  # the commit rewrote the files: still nothing to do
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
    _run(["git", "add", "dvc.lock"], src, env)
    _run(["git", "commit", "-q", "-m", "dvc.lock"], src, env)
    assert not _run(["git", "status", "--porcelain"], src, env).strip()
    _run([DVC, "push"], src, env)

    shown = _run([DVC, "metrics", "show", "--md"], src, env)
    for model in ["noisy", *yaml.safe_load((src / "config/config.yaml").read_text())["models"]]:
        for metric in ("si_sdri", "pesq_wb", "stoi", "dnsmos_ovrl"):
            assert f"{model}.{metric}" in shown, (model, metric, shown)

    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(src), str(clone)], tmp_path, env)
    env = _env(snakemake_env, clone)
    assert not (clone / "results").exists()
    # `make pull DVC_CONFIG=config/tiny.yaml`
    _run([sys.executable, "-m", "se_lib.dvc_stages", "--configfile", TINY, "restore"], clone, env)

    dry = run_snakemake(clone, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
    assert "up to date" in _run([DVC, "status"], clone, env)
    assert "Running stage" not in _run([DVC, "repro", "--dry"], clone, env)
    assert not _run(["git", "status", "--porcelain"], clone, env).strip()
    for table in ("results/report/test/comparison.tsv", "results/report/test/metrics.json"):
        assert (clone / table).read_bytes() == (workdir / table).read_bytes(), table
