"""Checks of the tiny workflow run through a real SLURM scheduler with the slurm profile (profiles/slurm).

The run itself, done once per session (fixture ``slurm_run``): tests/slurm_workflow.py (a cluster and an MLflow
server started for it, the sqlite store refused, the workflow through sbatch, a DDP training through sbatch,
everything stopped); in a ``make test`` session it starts in the background when the session starts.

The tests compare it with the local run of the same config (the session fixture ``workflow_run``): the
same jobs, the same mixture DB digest, the same output files, the same deterministic data files; and every
job's MLflow run carries a SLURM job id that the scheduler's own history (its job-completion log) and the
plugin's per-job logs know too. The profile's job groups (``groups:`` in profiles/slurm/config.yaml: the data
stage, each split's noisy baseline, the report stage) went as one sbatch job each, so fewer sbatch jobs than
rule jobs. ``test_timings`` prints the local and SLURM wall times, their ratio, and where the extra time goes
(a measurement only when the module runs alone: ``pytest tests/test_slurm.py -s -k timings``).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

import mlflow
import pytest
import yaml

import background
from slurm_cluster import DEFAULT_CONF, Cluster, SlurmUnavailable
from slurm_workflow import DDP_EXPERIMENT, EXPERIMENT, GPU_RULES, PROFILE, SlurmRun, slurm_workflow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]

# Files whose bytes depend on time, paths or float scheduling rather than on the config: compared by name only.
# (Everything under results/ is compared by name; these data files by content as well.)
DETERMINISTIC = ("results/db/digest.txt", "results/db/summary.tsv", "results/corpus", "results/rooms")


def node_cpus(cluster: Cluster) -> int:
    return int(re.search(r"\bCPUs=(\d+)", cluster.conf.read_text()).group(1))


def profile_groups(workdir: Path) -> dict[str, str]:
    """The profile's job groups: rule -> group name (``groups:`` in profiles/slurm/config.yaml)."""
    return dict(yaml.safe_load((workdir / PROFILE / "config.yaml").read_text()).get("groups") or {})


@pytest.fixture(scope="module")
def slurm_run(workflow_run, tmp_path_factory, request) -> SlurmRun:
    """The run of tests/slurm_workflow.py: started in the background when the session began (other tests were
    selected too), else run here, after the local run."""
    try:
        return background.result(request.config, "slurm_run", lambda: slurm_workflow(tmp_path_factory.mktemp("slurm")))
    except SlurmUnavailable as exc:
        pytest.skip(str(exc))


def rule_runs(store: str) -> list:
    client = mlflow.MlflowClient(store)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if "snakemake.rule" in r.data.tags]


def runs_by_job(runs: list) -> dict[str, list]:
    """SLURM job id -> the rule runs that ran in that job (several for a group job)."""
    jobs = defaultdict(list)
    for r in runs:
        jobs[r.data.tags["slurm.job_id"]].append(r)
    return dict(jobs)


def invocation_run(store: str):
    """The first ``snakemake`` invocation's parent run in ``store`` (later tests may add invocations)."""
    client = mlflow.MlflowClient(store)
    exp = client.get_experiment_by_name(EXPERIMENT)
    parents = client.search_runs([exp.experiment_id], "tags.`se.run_kind` = 'invocation'")
    return min(parents, key=lambda r: r.info.start_time)


def test_sqlite_store_is_refused_before_any_job(slurm_run):
    out = slurm_run.refused
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "'sqlite:///mlflow.db' is a local file, but the slurm executor" in text
    assert "MLFLOW_TRACKING_URI" in text and "tracking.shared_single_node: true" in text
    assert slurm_run.jobs_after_refusal == []
    assert "submitted with SLURM jobid" not in text


def test_every_job_went_through_sbatch(slurm_run, workflow_run):
    local_workdir, _ = workflow_run
    runs = rule_runs(slurm_run.store)
    local = rule_runs(f"sqlite:///{local_workdir}/mlflow.db")
    names = [r.info.run_name for r in runs]
    assert len(set(names)) == len(names) and set(names) == {r.info.run_name for r in local}  # the same jobs
    ids = [r.data.tags.get("slurm.job_id") for r in runs]
    assert all(ids), ids
    # one SLURM job per run, except the runs of a profile group, which share theirs (test_grouped_rules...)
    groups = profile_groups(slurm_run.workdir)
    for job_id, job_runs in runs_by_job(runs).items():
        rules = [r.data.tags["snakemake.rule"] for r in job_runs]
        assert len(job_runs) == 1 or (rules[0] in groups and {groups.get(x) for x in rules} == {groups[rules[0]]}), (
            job_id,
            rules,
        )
    for r in runs:
        assert r.data.tags["slurm.cluster"] == "se-test" and r.data.tags["slurm.node"] == slurm_run.cluster.node
        assert r.data.tags["slurm.partition"] == "main"
    # the scheduler's history: exactly these jobs, all completed
    history = {rec["JobId"]: rec for rec in slurm_run.history}
    assert set(history) == set(ids)
    assert {rec["JobState"] for rec in history.values()} == {"COMPLETED"}
    assert slurm_run.squeue == dict.fromkeys(ids, "COMPLETED")
    # the plugin's logs, one per job: logs/slurm/rule_<rule>/<wildcards>/<job id>.log, and for a group job
    # logs/slurm/group_<group>_<its rules>/<job id>.log
    logs = {p.stem: p for p in (slurm_run.workdir / "logs/slurm").rglob("*.log")}
    assert set(logs) == set(ids)
    for r in runs:
        log = logs[r.data.tags["slurm.job_id"]].relative_to(slurm_run.workdir / "logs/slurm")
        rule = r.data.tags["snakemake.rule"]
        if rule in groups:
            assert log.parts[0].startswith(f"group_{groups[rule]}_"), (log, r.info.run_name)
        else:
            assert log.parts[0] == f"rule_{rule}", (log, r.info.run_name)
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", slurm_run.run.stdout + slurm_run.run.stderr)
    assert sorted(submitted) == sorted(set(ids))
    # GPU jobs asked for a GPU and got one of the node's (fake) devices; the others got none
    for r in runs:
        gpus = r.data.tags.get("slurm.gpus")
        assert (gpus in {"0", "1"}) if r.data.tags["snakemake.rule"] in GPU_RULES else gpus is None, r.info.run_name


def test_grouped_rules_went_as_one_sbatch_job_each(slurm_run):
    """The profile's groups: the data stage (corpus -> rooms -> mixture DB) is one sbatch job, each split's noisy
    baseline (references -> scores) one, the whole report stage one; every other rule job is a job of its own. So
    the workflow took fewer sbatch jobs than rule jobs, and no group job asked for more CPUs than the node has."""
    groups = profile_groups(slurm_run.workdir)
    assert {"corpus", "rooms", "mixture_db", "noisy_reference", "score_noisy", "report_table"} <= set(groups)
    runs = rule_runs(slurm_run.store)
    jobs = {job_id: sorted(r.data.tags["snakemake.rule"] for r in rs) for job_id, rs in runs_by_job(runs).items()}
    by_group = defaultdict(list)  # group -> its SLURM jobs' rule lists
    for rules in jobs.values():
        by_group[groups.get(rules[0])].append(rules)
    assert by_group["data"] == [["corpus", "mixture_db", "rooms"]]
    rules_run = [r.data.tags["snakemake.rule"] for r in runs]
    splits = rules_run.count("noisy_reference")
    assert splits >= 1 and by_group["baseline"] == [["noisy_reference", "score_noisy"]] * splits
    report_rules = sorted(rule for rule in rules_run if groups.get(rule) == "report")
    assert len(report_rules) >= 6 and by_group["report"] == [report_rules]
    assert all(len(rules) == 1 for rules in by_group[None])  # ungrouped: one rule job per sbatch job
    # the sbatch jobs submitted (plugin log lines) and the scheduler's history agree: fewer jobs than rule runs
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", slurm_run.run.stdout + slurm_run.run.stderr)
    assert len(submitted) == len(slurm_run.history) == len(jobs) == len(by_group[None]) + 2 + splits < len(runs)
    print(f"\nsbatch jobs: {len(jobs)} for {len(runs)} rule jobs (one each without the groups)", flush=True)
    # a group job asks for what its jobs need side by side, no more than the node has (SLURM refuses more)
    history = {rec["JobId"]: rec for rec in slurm_run.history}
    for job_id, rules in jobs.items():
        if len(rules) > 1:
            assert 1 <= int(history[job_id]["ProcCnt"]) <= node_cpus(slurm_run.cluster), (rules, history[job_id])


def test_results_match_the_local_run(slurm_run, workflow_run):
    local_workdir, _ = workflow_run

    def files(root: Path, sub: str) -> set[str]:
        return {str(p.relative_to(root)) for p in (root / sub).rglob("*") if p.is_file()}

    assert files(slurm_run.workdir, "results") == files(local_workdir, "results")
    digest = (local_workdir / "results/db/digest.txt").read_text()
    assert (slurm_run.workdir / "results/db/digest.txt").read_text() == digest
    for name in sorted(files(local_workdir, "results")):
        if name.startswith(DETERMINISTIC):
            assert (slurm_run.workdir / name).read_bytes() == (local_workdir / name).read_bytes(), name
    runs = rule_runs(slurm_run.store)
    assert {r.data.tags["se.db_digest"] for r in runs if r.data.tags["snakemake.rule"] == "train"} == {
        digest.split()[0]
    }
    assert invocation_run(slurm_run.store).info.status == "FINISHED"
    # artifacts went through the server (nodes need no shared artifact folder)
    train = next(r for r in runs if r.data.tags["snakemake.rule"] == "train")
    assert train.info.artifact_uri.startswith("mlflow-artifacts:")


def test_ddp_training_through_sbatch(slurm_run):
    """``train.devices: 2`` under SLURM: one sbatch job holding both (fake) GPUs and two tasks' CPUs; the job's
    step is one task, so rank 0 starts the second rank itself (``cluster_args``: LightningEnvironment; gloo on
    the CPU here, no CUDA); one MLflow run, its metrics logged once per epoch (rank 0), one checkpoint."""
    out = slurm_run.ddp
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    (record,) = slurm_run.ddp_history
    assert record["JobState"] == "COMPLETED" and record["ProcCnt"] == "2", record
    client = mlflow.MlflowClient(slurm_run.store)
    exp = client.get_experiment_by_name(DDP_EXPERIMENT)
    runs = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("snakemake.rule") == "train"]
    (train,) = runs
    assert train.info.status == "FINISHED"
    assert train.data.tags["slurm.job_id"] == record["JobId"] and train.data.tags["slurm.gpus"] == "0,1"
    assert len(client.get_metric_history(train.info.run_id, "val_loss")) == 2  # max_epochs 2, rank 0 only
    log = (slurm_run.ddp_workdir / "logs/train/conv_tasnet.log").read_text()
    assert "LightningEnvironment" in log and "Starting with 2 processes" in log
    assert (slurm_run.ddp_workdir / "results/models/conv_tasnet/best.ckpt").is_file()


def test_daemons_are_stopped_afterwards(slurm_run):
    assert slurm_run.alive_after_stop == {}
    # still gone now; a daemon that exited but was not reaped (munged double-forks, and a container's pid 1
    # may never reap orphans) is a zombie: it runs nothing and holds no port, so it counts as stopped
    for name, pid in slurm_run.cluster.procs.items():
        stat = Path(f"/proc/{pid}/stat")
        state = stat.read_text().split(") ", 1)[1][0] if stat.exists() else "gone"
        comm = Path(f"/proc/{pid}/comm").read_text().strip() if stat.exists() else ""
        assert state in {"gone", "Z"} or comm != name, (name, pid, state)
    # nothing of the test cluster is left where clients look by default: scontrol fails at once, so later
    # snakemake starts (the plugin calls it when imported) do not wait for a controller
    assert slurm_run.scontrol_seconds_after < 3
    assert not DEFAULT_CONF.is_symlink()


def test_timings(slurm_run, workflow_run):
    """Local vs SLURM wall time, their ratio, and where the extra time under SLURM goes (printed; a benchmark:
    asserts only that the parts add up, never a time)."""
    local_workdir, _ = workflow_run
    report = timing_report(slurm_run, f"sqlite:///{local_workdir}/mlflow.db")
    print("\n" + report)
    assert "total" in report and "ratio" in report


def _seconds(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))


def timing_report(slurm_run: SlurmRun, local_store: str) -> str:
    """Wall time local vs SLURM (the invocations' parent runs) and their ratio, and per SLURM job: queue wait
    (sbatch -> start), job start -> its first rule's MLflow run start (job step launch, Python + Snakemake +
    imports), the rule bodies (first run start -> last run end; several rules for a group job), the same rules'
    run times in the local run (summed), last run end -> job end, and job end -> the next submission ("notice":
    the plugin's status polling; an upper bound, as it also counts waits for jobs still running)."""

    def wall(store):
        run = invocation_run(store)
        return (run.info.end_time - run.info.start_time) / 1000

    runs = runs_by_job(rule_runs(slurm_run.store))
    local = {r.info.run_name: r for r in rule_runs(local_store)}
    hist = {rec["JobId"]: rec for rec in slurm_run.history}
    submits = sorted(_seconds(h["SubmitTime"]) for h in hist.values())
    rows, sums = [], dict.fromkeys(("queue", "launch", "body", "local_body", "tail", "notice"), 0.0)
    for job_id, job_runs in sorted(runs.items(), key=lambda kv: int(kv[0])):
        h = hist[job_id]
        sub, start, end = (_seconds(h[k]) for k in ("SubmitTime", "StartTime", "EndTime"))
        r0 = min(r.info.start_time for r in job_runs) / 1000
        r1 = max(r.info.end_time for r in job_runs) / 1000
        later = [s for s in submits if s >= end]
        part = {
            "queue": start - sub,
            "launch": r0 - start,
            "body": r1 - r0,
            "local_body": sum(
                (local[r.info.run_name].info.end_time - local[r.info.run_name].info.start_time) / 1000 for r in job_runs
            ),
            "tail": end - r1,
            "notice": (later[0] - end) if later else 0.0,
        }
        for k, v in part.items():
            sums[k] += v
        rules = sorted({r.data.tags["snakemake.rule"] for r in job_runs})
        name = job_runs[0].info.run_name if len(job_runs) == 1 else f"group of {len(job_runs)}: " + ",".join(rules)
        rows.append(f"  {job_id:>4} {name[:40]:<40} " + " ".join(f"{part[k]:7.1f}" for k in sums))
    head = f"  {'job':>4} {'rule run (or group job)':<40} " + " ".join(f"{k:>7}" for k in sums)
    total = f"  {'':>4} {'total (s)':<40} " + " ".join(f"{sums[k]:7.1f}" for k in sums)
    n_runs = sum(len(v) for v in runs.values())
    local_s, slurm_s = wall(local_store), wall(slurm_run.store)
    return "\n".join(
        [
            f"tiny workflow wall time (invocation parent run): local {local_s:.0f} s, SLURM {slurm_s:.0f} s, "
            f"ratio {slurm_s / local_s:.2f} (snakemake process {slurm_run.seconds:.0f} s); "
            f"{len(runs)} sbatch jobs for {n_runs} rule jobs",
            *(
                ["(run in the background beside other tests: not a measurement; run tests/test_slurm.py alone for one)"]
                if slurm_run.background
                else []
            ),
            head,
            *rows,
            total,
        ]
    )
