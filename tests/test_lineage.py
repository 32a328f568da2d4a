"""Lineage on the tiny workflow run (session fixture ``workflow_run``: a copy of the source tree
committed to a fresh git repository, like a fresh clone).

* A run from a clean checkout is clean: no run is tagged dirty, none has a diff, every run names the
  checkout's commit, and the files the workflow created leave ``git status`` clean.
* One parent run per ``snakemake`` invocation, every rule's run nested under it.
* Training runs record the mixture DB's splits as MLflow dataset inputs; registered versions carry the
  commit, the DB digest and the test scores as tags.
* In a fresh clone of that repository with a tracked file edited, ``require_clean_git: true`` refuses a
  run before any job starts (a dry run still works), and a run without it is tagged dirty with the diff
  attached. One cheap rule (``corpus``) in the clone; the shared run's store is left alone.
"""

from __future__ import annotations

import json

import mlflow
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the first of these may run the tiny workflow

MODELS = ("conv_tasnet", "ic_conv_tasnet", "dprnn", "wave_u_net")


def _client(workdir):
    return mlflow.MlflowClient(f"sqlite:///{workdir}/mlflow.db")


def _runs(workdir, experiment="tiny_smoke"):
    client = _client(workdir)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=1000) if exp else []


def _fixture_invocation(workdir):
    """Runs of the fixture's own invocation (later tests may add runs of their own): its parent run and
    the rule runs."""
    runs = _runs(workdir)
    corpus = [r for r in runs if r.data.tags.get("snakemake.rule") == "corpus"]
    assert len(corpus) == 1, [r.info.run_name for r in runs]
    invocation = corpus[0].data.tags["se.invocation_id"]
    mine = [r for r in runs if r.data.tags["se.invocation_id"] == invocation]
    parents = [r for r in mine if r.data.tags.get("se.run_kind") == "invocation"]
    return parents, [r for r in mine if r.data.tags.get("se.run_kind") != "invocation"]


def test_a_clean_checkout_gives_clean_runs_and_stays_clean(workflow_run, git_cmd):
    workdir, _ = workflow_run
    head = git_cmd(workdir, "rev-parse", "HEAD").strip()
    assert git_cmd(workdir, "status", "--porcelain", "--untracked-files=all") == "", "the run left files git sees"
    client = _client(workdir)
    runs = _runs(workdir)
    assert len(runs) >= 20
    for run in runs:
        tags, name = run.data.tags, run.info.run_name
        assert tags["se.git.dirty"] == "false", name
        assert tags["mlflow.source.git.commit"] == head, name
        assert "git" not in [a.path for a in client.list_artifacts(run.info.run_id)], name


def test_every_rule_run_is_nested_under_the_invocations_parent(workflow_run):
    workdir, _ = workflow_run
    parents, rule_runs = _fixture_invocation(workdir)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name.startswith("snakemake ")
    assert parent.data.tags["se.db_digest"] == (workdir / "results/db/digest.txt").read_text().split()[0]
    assert parent.data.params["experiment"] == "tiny_smoke"
    assert len(rule_runs) >= 20 and all("snakemake.rule" in r.data.tags for r in rule_runs)
    orphans = [r.info.run_name for r in rule_runs if r.data.tags.get("mlflow.parentRunId") != parent.info.run_id]
    assert not orphans, f"runs not under the invocation's parent {parent.info.run_id}: {orphans}"


def test_training_runs_record_their_data_as_dataset_inputs(workflow_run):
    workdir, _ = workflow_run
    digest = (workdir / "results/db/digest.txt").read_text().split()[0]
    client = _client(workdir)
    for model in MODELS:
        info = json.loads((workdir / "results/models" / model / "run.json").read_text())
        inputs = client.get_run(info["run_id"]).inputs.dataset_inputs
        by_split = {{t.key: t.value for t in i.tags}["mlflow.data.context"]: i for i in inputs}
        assert sorted(by_split) == ["test", "train", "val"], model
        counts = {"train": 16, "val": 4, "test": 3}  # config/tiny.yaml
        for split, item in by_split.items():
            ds = item.dataset
            assert ds.name == f"mixtures-{split}" and ds.digest == digest[:36], (model, split)
            assert {t.key: t.value for t in item.tags}["se.db_digest"] == digest
            assert json.loads(ds.source) == {"uri": "sqlite:///results/db/mixtures.sqlite"}
            assert json.loads(ds.profile) == {"num_rows": counts[split]}


def test_registered_versions_carry_commit_digest_and_test_scores(workflow_run, git_cmd):
    workdir, _ = workflow_run
    head = git_cmd(workdir, "rev-parse", "HEAD").strip()
    digest = (workdir / "results/db/digest.txt").read_text().split()[0]
    client = _client(workdir)
    for model in MODELS:
        info = json.loads((workdir / "results/models" / model / "run.json").read_text())
        version = client.get_model_version(info["registered_model"], info["registered_version"])
        assert version.run_id == info["run_id"]
        tags = version.tags
        assert (tags["git_commit"], tags["git_dirty"], tags["db_digest"]) == (head, "false", digest), model
        metrics = client.get_run(info["run_id"]).data.metrics
        scores = {k: v for k, v in tags.items() if k.startswith("test_")}
        assert {"test_si_sdr", "test_si_sdri", "test_pesq_wb", "test_stoi"} <= set(scores), (model, sorted(tags))
        for key, value in scores.items():
            assert float(value) == pytest.approx(metrics[key]), (model, key)


@pytest.fixture(scope="module")
def edited_clone(workflow_run, git_cmd, tmp_path_factory):
    """A fresh clone of the fixture's repository with one tracked file edited (not committed)."""
    workdir, _ = workflow_run
    clone = tmp_path_factory.mktemp("clone") / "wf"
    git_cmd(workdir.parent, "clone", "-q", str(workdir), str(clone))
    edited = clone / "report" / "workflow.rst"
    edited.write_text(edited.read_text() + "\nAn uncommitted line.\n")
    return clone


def test_require_clean_git_refuses_a_dirty_tree_before_any_job(edited_clone, run_snakemake):
    corpus, runs = edited_clone / "results/corpus", len(_runs(edited_clone))
    before = corpus.stat().st_mtime_ns if corpus.exists() else None
    args = ("--config", "require_clean_git=True", "--forcerun", "corpus", "--", "results/corpus")
    out = run_snakemake(edited_clone, *args, check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    assert "require_clean_git: true" in text and " M report/workflow.rst" in text, text[-3000:]
    assert (corpus.stat().st_mtime_ns if corpus.exists() else None) == before  # no job started
    assert len(_runs(edited_clone)) == runs  # no parent run, no rule run
    dry = run_snakemake(edited_clone, "-n", *args)
    assert "corpus" in dry.stdout + dry.stderr


def test_a_run_from_an_edited_checkout_is_dirty_with_the_diff(edited_clone, run_snakemake, git_cmd, tmp_path):
    head = git_cmd(edited_clone, "rev-parse", "HEAD").strip()
    run_snakemake(edited_clone, "--forcerun", "corpus", "--", "results/corpus")
    assert git_cmd(edited_clone, "status", "--porcelain") == " M report/workflow.rst\n"  # the run's files ignored
    client = _client(edited_clone)
    runs = _runs(edited_clone)
    corpus = [r for r in runs if r.data.tags.get("snakemake.rule") == "corpus"][-1]
    parent = client.get_run(corpus.data.tags["mlflow.parentRunId"])
    for run in (corpus, parent):
        assert run.data.tags["se.git.dirty"] == "true" and run.data.tags["mlflow.source.git.commit"] == head
        patch = client.download_artifacts(run.info.run_id, "git/diff.patch", str(tmp_path / run.info.run_id))
        text = open(patch).read()
        assert "report/workflow.rst" in text and "+An uncommitted line." in text
