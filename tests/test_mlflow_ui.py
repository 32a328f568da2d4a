"""``make mlflow-ui`` (se_lib/tracking/ui.py) over the tiny workflow run's store, checked in headless Chromium.

The shared tiny run (fixture ``workflow_run``) leaves ``mlflow.db`` in its work directory. The test
resolves the runs table's address as ``make mlflow-ui`` prints it, starts ``mlflow server`` on a free
127.0.0.1 port over that store (the command :func:`se_lib.tracking.ui.server_command` runs), and drives
the UI as a user would:

* the printed address shows the classic runs table (not MLflow 3's GenAI overview or navigation)
  listing every run of the experiment, the training runs by name; the experiment carries the
  workflow's experiment-kind tag;
* a training run's page shows its parameters and metrics (with their counts);
* its artifact ``audio_samples/sample_0/enhanced.wav`` opens in the UI's audio player (a decoded
  waveform canvas and an ``<audio>`` element).

* the printed training-runs address (a search filter), with the invocation's row unfolded, shows each
  training run's Dataset column: ``mixtures-train|val|test (<DB digest>)`` with the split as context.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from browser import BrowserUnavailable, chromium, find_browser, wait_for_script
from http_wait import wait_for_http
from se_lib.tracking.runs import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG
from se_lib.tracking.ui import run_url, runs_table_url, server_command, server_env
from se_lib.tracking.urls import TRAINING_RUNS

pytestmark = pytest.mark.timeout(1800)

REPO = Path(__file__).resolve().parent.parent
BODY = "(document.body ? document.body.innerText : '')"
# wavesurfer.js (MLflow's audio artifact view) draws into a shadow root: its canvas and <audio> element.
AUDIO_PLAYER_JS = r"""
for (const host of document.querySelectorAll('*')) {
  if (!host.shadowRoot) continue;
  const audio = host.shadowRoot.querySelector('audio');
  const canvas = host.shadowRoot.querySelector('canvas');
  if (audio && canvas && canvas.width > 0 && audio.duration > 0)
    return {duration: audio.duration, canvas: [canvas.width, canvas.height]};
}
return null;
"""
# Unfold a parent run's row in the runs table: the icon button in the cell of the run-name link.
UNFOLD_JS = r"""
const link = Array.from(document.querySelectorAll('a')).find(a => a.innerText.trim() === arguments[0]);
const button = link && link.closest('[role=gridcell]') && link.closest('[role=gridcell]').querySelector('button');
if (!button) return false;
button.click();
return true;
"""


def wait_for_texts(driver, texts, counts=None, timeout: float = 60.0) -> str:
    """The page's text once it shows every string of ``texts`` and, for each ``{string: n}`` of ``counts``,
    that string ``n`` times; else its text after ``timeout`` seconds (the caller's asserts say what lacked)."""
    script = f"""
const t = {BODY}, texts = arguments[0], counts = arguments[1];
const ok = texts.every(w => t.includes(w)) && Object.entries(counts).every(([w, n]) => t.split(w).length - 1 >= n);
return ok ? t : '';"""
    return wait_for_script(driver, script, list(texts), dict(counts or {}), timeout=timeout) or driver.execute_script(
        f"return {BODY};"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui(workflow_run, tmp_path_factory):
    """``(base_url, workdir, printed address)``: the MLflow server over the tiny run's store."""
    try:
        find_browser()
    except BrowserUnavailable as exc:
        pytest.skip(str(exc))
    workdir, _ = workflow_run
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SE_"))}
    printed = subprocess.run(
        [sys.executable, "-m", "se_lib.tracking.ui", "--configfile", "config/tiny.yaml", "--port", str(port)]
        + ["--print-only"],
        cwd=workdir,
        env={**env, "PYTHONPATH": str(workdir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert printed.returncode == 0, printed.stderr
    log = (tmp_path_factory.mktemp("mlflow_ui") / "server.log").open("w")
    proc = subprocess.Popen(
        server_command("sqlite:///mlflow.db", port=port),
        cwd=workdir,
        env=server_env(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/health", proc, lambda: Path(log.name).read_text(), 180, "mlflow server")
        yield base, workdir, printed.stdout
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(20)
        log.close()


def test_runs_table_and_training_run_page_in_chromium(ui, tmp_path):
    base, workdir, printed = ui
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tiny_smoke")
    runs = client.search_runs([exp.experiment_id])
    address = runs_table_url(base, exp.experiment_id)
    assert f"MLflow UI, runs table of experiment tiny_smoke: {address}" in printed
    train = {
        json.loads(p.read_text())["run_id"]: p.parent.name for p in (workdir / "results" / "models").glob("*/run.json")
    }
    assert len(train) >= 2 and len(runs) > len(train)

    assert exp.tags.get(EXPERIMENT_KIND_TAG) == EXPERIMENT_KIND, exp.tags
    # the rule runs are nested under their invocation's parent run: the table shows the parent row
    parents = [r for r in runs if r.data.tags.get("se.run_kind") == "invocation"]
    assert len(parents) == 1
    assert all(r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id for r in runs if r not in parents)

    with chromium(tmp_path) as driver:
        driver.get(address)
        # The status line ("0 matching runs" while loading) is drawn before the table's header and rows:
        # wait for all of them. "Run Name" heads the table; the parent's row names the invocation.
        want = [f"{len(runs)} matching runs", "Run Name", parents[0].info.run_name]
        text = wait_for_texts(driver, want, timeout=120)
        assert all(w in text for w in want), (want, text[-2000:])
        # the classic view: its navigation (Runs, Models, ...), not the GenAI one (Overview, Traces, ...)
        assert "Token Usage" not in text and "Overview" not in text and "Model registry" in text, text[-2000:]

        # the training runs' Dataset column: the invocation's row unfolded, one line per split and run
        training = runs_table_url(base, exp.experiment_id, TRAINING_RUNS)
        assert f"training runs and their datasets: {training}" in printed
        driver.get(training)
        # the matching training runs and the parent row the table shows them under (the UI counts it too)
        shown = f"{len(train) + 1} matching runs"
        assert shown in wait_for_texts(driver, [shown], timeout=120), driver.execute_script(f"return {BODY};")[-2000:]
        assert wait_for_script(driver, UNFOLD_JS, parents[0].info.run_name, timeout=60)
        digest = (workdir / "results" / "db" / "digest.txt").read_text().strip()[:36]
        # each training run by name; its Dataset cell: name (digest), then the split as the input's context
        want = [f"train[model={m}]" for m in train.values()]
        datasets = [f"mixtures-{split} ({digest})\n{split.capitalize()}" for split in ("train", "val", "test")]
        text = wait_for_texts(driver, want, {d: len(train) for d in datasets}, timeout=60)
        assert all(w in text for w in want), (want, text[-2000:])
        for shown in datasets:
            assert text.count(shown) == len(train), (shown, text[-2000:])

        run_id, model = next(iter(sorted(train.items(), key=lambda t: t[1])))
        run = client.get_run(run_id)
        driver.get(run_url(base, exp.experiment_id, run_id))
        want = [f"train[model={model}]", run_id, f"Parameters ({len(run.data.params)})"]
        want += [f"Metrics ({len(run.data.metrics)})", "val_si_sdr", "optimizer/class_path"]
        text = wait_for_texts(driver, want, timeout=120)
        assert all(w in text for w in want), (want, text[-2000:])

        wav = "audio_samples/sample_0/enhanced.wav"
        assert wav in {a.path for a in client.list_artifacts(run_id, "audio_samples/sample_0")}
        driver.get(f"{run_url(base, exp.experiment_id, run_id)}/artifacts/{wav}")
        player = wait_for_script(driver, AUDIO_PLAYER_JS, timeout=90)
        assert player and player["duration"] > 0.1, driver.execute_script(f"return {BODY};")[-2000:]
