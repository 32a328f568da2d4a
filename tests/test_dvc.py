"""DVC: the committed dvc.yaml is what se_lib/dvc_stages.py generates, and results round-trip through a remote.

The round trip reuses the session's tiny workflow run (fixture ``workflow_run``): its results are copied
with a fresh copy of the source tree into a git repository, recorded in dvc.lock (``dvc commit`` + touch, as
``make dvc-commit``), pushed to a local remote in a temporary folder, cloned into a new folder and
restored with the project command ``make pull`` runs; then ``snakemake -n`` has nothing to do, ``dvc
status`` and ``git status`` are clean and the comparison table equals the original.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, copy_workflow_source
from se_lib.config import load_config
from se_lib.dvc_stages import DEFAULT_CONFIG, generate, locked_targets, render, stage_targets

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


# ------------------------------------------------------------------------------------------- test sets
TEST_SETS = {
    "test_sets": {
        "vbd": {
            "corpus": {"kind": "voicebank_demand", "voicebank_demand": {"root": "/nowhere/vbd", "sets": ["test"]}},
            "published": "voicebank_demand",
        },
        "chime4-real": {
            "corpus": {
                "kind": "chime4",
                "chime4": {"root": "/nowhere/chime4", "sets": ["et05_real"], "channels": [1, 3, 4, 5]},
            }
        },
    }
}


def _expanded(doc: dict) -> dict[str, list[str]]:
    """Every stage's outputs (outs, metrics, plots) with DVC's foreach templates filled in: stage name -> paths."""
    out: dict[str, list[str]] = {}
    for name, stage in doc["stages"].items():
        body = stage.get("do", stage)
        paths = [p for section in ("outs", "metrics", "plots") for entry in body.get(section, []) for p in entry]
        foreach = stage.get("foreach")
        if foreach is None:
            out[name] = paths
            continue
        for key, item in foreach.items() if isinstance(foreach, dict) else ((i, i) for i in foreach):
            fill = [p.replace("${item}", key).replace("${key}", key) for p in paths]
            for field, value in item.items() if isinstance(item, dict) else ():
                fill = [p.replace(f"${{item.{field}}}", value) for p in fill]
            out[f"{name}@{key}"] = fill
    return out


def _test_set_config(tmp_path: Path) -> list[str]:
    extra = tmp_path / "test_sets.yaml"
    extra.write_text(yaml.safe_dump(TEST_SETS, sort_keys=False))
    return [TINY, str(extra)]


def test_test_sets_get_stages_and_metrics_without_overlapping_outputs(tmp_path):
    """With `test_sets`, each test set's data, predictions and scores are outputs of stages of their own, none inside
    another stage's output (the DB splits' stages then list their splits' files), and each has a DVC metrics file."""
    doc = generate(_test_set_config(tmp_path), ROOT)
    outs = _expanded(doc)
    owner = {}
    for stage, paths in outs.items():
        for p in paths:
            assert p not in owner, f"{p}: output of {owner[p]} and {stage}"
            owner[p] = stage
    for a, b in itertools.permutations(owner, 2):
        assert not b.startswith(a + "/"), f"{b} ({owner[b]}) lies inside {a} ({owner[a]})"
    stages = set(outs)
    assert {"test_set@vbd", "test_set@chime4-real"} <= stages
    # a mono test set: the one-channel systems only; the 4-channel CHiME-4 choice: every system
    assert {s for s in stages if s.startswith("predict_test_set@vbd_")} == {
        "predict_test_set@vbd_conv_tasnet",
        "predict_test_set@vbd_dprnn",
        "predict_test_set@vbd_conv_tasnet--lr1em3",
        "predict_test_set@vbd_conv_tasnet--lr3em3",
    }
    assert "predict_test_set@chime4-real_ic_conv_tasnet" in stages
    assert "results/scores/dprnn/test_vbd_summary.tsv" in outs["predict_test_set@vbd_dprnn"]
    assert "results/scores/noisy/test_chime4-real_summary.tsv" in outs["test_set@chime4-real"]
    metrics = [p for entry in doc["stages"]["report"]["metrics"] for p in entry]
    assert metrics == [f"results/report/{s}/metrics.json" for s in ("test", "test_vbd", "test_chime4-real")]
    # the stage's command is the Snakemake target Snakemake's `all` asks for, and it is filled in per item
    targets = stage_targets(load_config(overrides=TEST_SETS))
    assert targets["predict_test_set"] == ["results/scores/${item.system}/${item.split}_summary.tsv"]


def test_dvc_accepts_the_test_set_stages_and_refuses_whole_folders_beside_them(tmp_path):
    """`dvc dag` on the generated stages: test set -> its prediction stages -> report. Whole prediction folders as
    outputs of the DB splits' stages (the layout without test sets) would hold the test sets' outputs: DVC refuses."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    _run(["git", "init", "-q"], repo, env)
    _run([DVC, "init", "-q"], repo, env)
    text = render(_test_set_config(tmp_path), ROOT)
    (repo / "dvc.yaml").write_text(text)
    dot = _run([DVC, "dag", "--dot"], repo, env)
    for edge in (
        '"test_set@vbd" -> "predict_test_set@vbd_dprnn"',
        '"train@dprnn" -> "predict_test_set@vbd_dprnn"',
        '"predict_test_set@chime4-real_ic_conv_tasnet" -> "report"',
        '"test_set@chime4-real" -> "report"',
    ):
        assert edge in dot, (edge, dot[-3000:])
    overlapping = text.replace("- results/predictions/${item}/test:\n", "- results/predictions/${item}:\n")
    assert overlapping != text
    (repo / "dvc.yaml").write_text(overlapping)
    refused = subprocess.run([DVC, "dag", "--dot"], cwd=repo, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "overlap" in refused.stdout + refused.stderr


def test_locked_test_set_stages_map_back_to_snakemake_targets(tmp_path, monkeypatch):
    """`make pull` touches the Snakemake targets of every locked stage, a test set's per-system stages included."""
    monkeypatch.chdir(ROOT)
    lock = tmp_path / "dvc.lock"
    names = ["test_set@vbd", "predict_test_set@vbd_dprnn", "predict_test_set@chime4-real_conv_tasnet--lr1em3"]
    lock.write_text(yaml.safe_dump({"schema": "2.0", "stages": dict.fromkeys(names, {})}, sort_keys=False))
    assert locked_targets(_test_set_config(tmp_path), lock) == [
        "results/scores/noisy/test_vbd_summary.tsv",
        "results/scores/dprnn/test_vbd_summary.tsv",
        "results/scores/conv_tasnet--lr1em3/test_chime4-real_summary.tsv",
    ]
    lock.write_text(yaml.safe_dump({"stages": {"predict_test_set@vbd_wave_u_net": {}}}))  # mono: not a stage
    with pytest.raises(SystemExit, match="not a stage of the generated dvc.yaml"):
        locked_targets(_test_set_config(tmp_path), lock)
