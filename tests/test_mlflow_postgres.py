"""The workflow against an authenticated MLflow server backed by a real PostgreSQL server.

One PostgreSQL server (tests/pg.py) holds two databases: ``se_test``, the mixture DB (the workflow's
``db.url``), and ``mlflow``, the backend store of an MLflow server started with ``se mlflow start --auth``
(basic-auth app, admin password from a file, artifacts served from a directory). The workflow gets the
server's address and the credentials through the environment only.

To keep CI time down, the workflow runs one model's chain, not the whole tiny workflow: the target
``results/scores/conv_tasnet/test_summary.tsv`` pulls corpus, rooms, mixture_db, train, predict and
score (6 jobs; the whole tiny workflow already runs once, on sqlite, as ``workflow_run``).

Checked: a wrong password stops the workflow before any job; then every job's run arrived (FINISHED,
nested under the invocation's parent run), the training curve and the test scores equal what the
result files say, every run's artifacts are on the server's disk (byte-identical to the result files
where they are copies of them), the mixture DB and the MLflow tables share the PostgreSQL server; and
``se runs delete`` + ``se runs gc`` remove exactly the deleted run and its artifacts.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from conftest import commit_workflow_source, copy_workflow_source, snakemake_env
from pg import PostgresUnavailable, postgres_server
from se_lib.tracking import service

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MODEL = "conv_tasnet"
TARGET = f"results/scores/{MODEL}/test_summary.tsv"
EXPERIMENT = "tiny_smoke"
PASSWORD = "not-the-default-0123"  # >= 12 characters, as MLflow requires


@pytest.fixture(scope="module")
def pg_urls():
    """``(mixture DB URL, MLflow backend URL)``: two databases of one throw-away PostgreSQL server."""
    import psycopg

    try:
        with postgres_server() as url:
            u = sa.engine.make_url(url)
            with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname="postgres", autocommit=True) as c:
                c.execute('CREATE DATABASE "mlflow"')
            yield url, u.set(database="mlflow").render_as_string(hide_password=False)
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def server(pg_urls, tmp_path_factory):
    """The authenticated MLflow server on PostgreSQL: ``(url, home, artifacts dir)``; stopped at the end."""
    root = tmp_path_factory.mktemp("mlflow_service")
    secret = root / "admin_password"  # outside the workflow's git tree
    secret.write_text(PASSWORD + "\n")
    settings = service.ServiceSettings(
        home=str(root / "home"),
        port=free_port(),
        backend_store_uri=pg_urls[1],
        artifacts_destination=str(root / "artifacts"),
        auth=True,
    )
    state = service.start(settings, admin_password_file=str(secret), timeout=300)
    try:
        yield state.settings.url, root / "home", root / "artifacts"
    finally:
        service.stop(root / "home")


def free_port() -> int:
    """A free loopback port (released again, for the server to take)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(workdir: Path, url: str, password: str) -> dict[str, str]:
    env = snakemake_env(workdir)
    env.update(MLFLOW_TRACKING_URI=url, MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=password)
    return env


def _snakemake(workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(workdir / "Snakefile"), "--directory", str(workdir)]
    cmd += [TARGET, "--cores", "2", "--configfile", str(workdir / "config" / "tiny.yaml")]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=1700)


@pytest.fixture(scope="module")
def pg_workflow(pg_urls, server, tmp_path_factory):
    """The workflow copy (mixture DB on PostgreSQL) run first with a wrong, then with the right password."""
    url = server[0]
    workdir = copy_workflow_source(tmp_path_factory.mktemp("wf_pg"))
    with open(workdir / "config" / "tiny.yaml", "a", encoding="utf-8") as fh:
        fh.write(f"db:\n  url: {pg_urls[0]}\n")  # no password in it: the credentials are MLflow's, in the env
    commit_workflow_source(workdir)
    wrong = _snakemake(workdir, _env(workdir, url, "wrong-password-123"))
    right = _snakemake(workdir, _env(workdir, url, PASSWORD))
    if right.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(workdir.glob("logs/**/*.log")))
        raise AssertionError(f"snakemake failed:\n{right.stdout[-3000:]}\n{right.stderr[-6000:]}\n{logs}")
    return workdir, wrong, right


@pytest.fixture
def client(server, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    return MlflowClient(server[0])


def _job_stats(out: str) -> Counter:
    """Snakemake's "Job stats" table of a run: rule -> jobs (without the 'total' row)."""
    table = out[out.index("Job stats:") :].split("\n\n")[0]
    rows = re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)
    return Counter({rule: int(n) for rule, n in rows if rule != "total"})


def test_wrong_password_stops_the_workflow_before_any_job(pg_workflow):
    workdir, wrong, _ = pg_workflow
    assert wrong.returncode != 0
    assert "refused user 'admin' (HTTP 401)" in wrong.stderr and "MLFLOW_TRACKING_PASSWORD" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert "rule corpus" not in wrong.stderr + wrong.stdout  # no job was started


def test_every_run_metric_and_artifact_arrived(pg_workflow, pg_urls, server, client):
    workdir, _, right = pg_workflow
    url, _, artifacts = server
    jobs = _job_stats(right.stdout + right.stderr)
    assert jobs == Counter(corpus=1, rooms=1, mixture_db=1, train=1, predict=1, score=1)

    exp = client.get_experiment_by_name(EXPERIMENT)
    assert exp.artifact_location.startswith("mlflow-artifacts:")  # artifacts go through the server
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("se.run_kind") == "invocation"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"  # the wrong-password try left no run
    rule_runs = [r for r in runs if "snakemake.rule" in r.data.tags]
    assert Counter(r.data.tags["snakemake.rule"] for r in rule_runs) == jobs
    for run in rule_runs:
        assert run.info.status == "FINISHED", run.info.run_name
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        logs = [f.path for f in client.list_artifacts(run.info.run_id, "logs")]
        assert logs, f"{run.info.run_name}: no log artifact"
        for path in logs:  # on the server's disk, where --artifacts-destination says
            assert (artifacts / exp.experiment_id / run.info.run_id / "artifacts" / path).is_file()

    by_rule = {r.data.tags["snakemake.rule"]: r for r in rule_runs}
    train_id = by_rule["train"].info.run_id
    assert json.loads((workdir / f"results/models/{MODEL}/run.json").read_text())["run_id"] == train_id
    curve = client.get_metric_history(train_id, "val_si_sdr")
    assert len(curve) == 2  # config/tiny.yaml: max_epochs 2
    ckpt = artifacts / exp.experiment_id / train_id / "artifacts" / "checkpoints" / "best.ckpt"
    assert ckpt.stat().st_size > 0
    assert client.search_model_versions(f"name='se-{MODEL}'")[0].run_id == train_id

    summary = pd.read_csv(workdir / TARGET, sep="\t", index_col=0)
    score = client.get_run(by_rule["score"].info.run_id)
    train = client.get_run(train_id)
    for metric, row in summary.iterrows():
        assert score.data.metrics[metric] == pytest.approx(row["mean"])
        assert train.data.metrics[f"test_{metric}"] == pytest.approx(row["mean"])
    copied = artifacts / exp.experiment_id / score.info.run_id / "artifacts" / "scores" / Path(TARGET).name
    assert copied.read_bytes() == (workdir / TARGET).read_bytes()

    # one PostgreSQL server, two databases: the mixture DB and MLflow's tables
    mixtures = sa.create_engine(pg_urls[0])
    with mixtures.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM mixture")).scalar() == 16 + 4 + 3  # config/tiny.yaml
    mixtures.dispose()
    tracking = sa.create_engine(pg_urls[1])
    with tracking.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM runs")).scalar() == len(runs)
    tracking.dispose()


def test_delete_then_gc_removes_exactly_that_run(pg_workflow, server, client):
    url, home, artifacts = server
    exp = client.get_experiment_by_name(EXPERIMENT)
    before = {r.info.run_id: r for r in client.search_runs([exp.experiment_id], max_results=100)}
    score_id = next(i for i, r in before.items() if r.data.tags.get("snakemake.rule") == "score")
    score_dir = artifacts / exp.experiment_id / score_id / "artifacts"
    assert score_dir.is_dir()

    se = str(Path(sys.executable).with_name("se"))
    env = {**os.environ, "MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    store = ["--tracking-uri", url, "--experiment", EXPERIMENT]

    def run(*args: str) -> subprocess.CompletedProcess:
        out = subprocess.run([se, "runs", *args, *store], capture_output=True, text=True, env=env, timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr
        return out

    bad = subprocess.run(
        [se, "runs", "delete", "--rule", "score", *store],
        capture_output=True,
        text=True,
        env={**env, "MLFLOW_TRACKING_PASSWORD": "wrong-password-123"},
        timeout=600,
    )
    assert bad.returncode == 1 and "refused user 'admin' (HTTP 401)" in bad.stderr and "Traceback" not in bad.stderr
    assert client.get_run(score_id).info.lifecycle_stage == "active"

    assert "marked deleted 1 runs" in run("delete", "--rule", "score").stdout
    assert client.get_run(score_id).info.lifecycle_stage == "deleted"
    dry = run("gc", "--home", str(home), "--dry-run").stdout
    assert "would remove for good 1 runs" in dry and score_id in dry and score_dir.is_dir()

    assert "removed for good 1 runs" in run("gc", "--home", str(home)).stdout
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):
        client.get_run(score_id)
    assert not score_dir.exists()
    after = {r.info.run_id for r in client.search_runs([exp.experiment_id], max_results=100)}
    assert after == set(before) - {score_id}
    for run_id in after - {i for i, r in before.items() if "snakemake.rule" not in r.data.tags}:
        assert (artifacts / exp.experiment_id / run_id / "artifacts" / "logs").is_dir()  # the others keep theirs
