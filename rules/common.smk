# Shared by all rule files -- config validation, the invocation id, input functions and constants.

import functools
import os
import uuid
from pathlib import Path
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError

from se_lib.code_deps import config_class_modules, import_closure, module_closure, net_class_modules
from se_lib.config import db_url, model_config_dirs, tracking_uri, validate_config
from se_lib.sweep import by_model, points

# Validate before any job starts; defaults are filled in from the schema. The message names the key.
validate_config(config, workflow.source_path("../config/schema/config.schema.yaml"))

# One id per `snakemake` invocation, inherited by every job (local or cluster) through the environment.
INVOCATION_ID = os.environ.setdefault("SE_INVOCATION_ID", uuid.uuid4().hex)

from se_lib.data.splits import SPLITS

from se_lib.data.corpora.stage import is_recorded, reference_mic

CORPUS_DIR = "results/corpus"
# A recorded public corpus (corpus.kind voicebank_demand | dns2020 | chime4 | paired) has no simulated rooms.
RECORDED = is_recorded(config)
# The reference microphone the scorer and reports use: the simulated array's, or the recorded corpus's.
REF_MIC = reference_mic(config)
ROOMS_DIR = "results/rooms"
# The DB digest file stands for the mixture DB whatever its backend (sqlite file or server URL).
DB_FILE = "results/db/digest.txt"
DB_URL = db_url(config)
MODELS = list(config["models"])
# Sweep points (config `sweeps`, se_lib/sweep.py): each trains, predicts and is scored as its own system,
# `<model>--<key><value>_...`, under the `{model}` wildcard like a model; values come from this table.
# Building it checks the `sweeps` section (a ConfigError naming the key, before any job).
SWEEP_POINTS = {p.system: p for p in points(config)}
SWEEPS = by_model(SWEEP_POINTS.values())
SYSTEMS = MODELS + list(SWEEP_POINTS)


def system_model(system):
    """The model config a system trains: the model itself, or a sweep point's model."""
    return SWEEP_POINTS[system].model if system in SWEEP_POINTS else system


def sweep_systems(wildcards):
    """The systems of sweep `wildcards.sweep` (a model's points), in config order."""
    return [p.system for p in SWEEPS[wildcards.sweep]]


def sweep_point(wildcards):
    """A sweep point's system name, values and overrides (params of train/predict); None for a model."""
    p = SWEEP_POINTS.get(wildcards.model)
    return None if p is None else {"system": p.system, "values": p.values, "overrides": p.overrides}


def workflow_script(name):
    """A script of workflow_scripts/ for rules in rules/*.smk -- `.path` for the script directive, `.code` for its `code` input."""
    script = Path(workflow.basedir) / "workflow_scripts" / name
    return SimpleNamespace(path=f"../workflow_scripts/{name}", code=script_code(script))


@functools.cache
def script_code(script):
    """Code inputs of a job running `script`: its import closure within se_lib, plus the config schema.

    The closure is every se_lib file the script imports, directly or transitively, package `__init__.py`
    files included (see se_lib/code_deps.py); the schema fills the defaults of the config every script
    reads. Editing any of these reruns the job (Snakemake compares checksums: a bare `touch` does not).
    """
    closure = import_closure(script, workflow.basedir)
    return [repo_path(os.path.relpath(p, workflow.basedir)) for p in closure] + [CONFIG_SCHEMA]


@functools.cache
def class_code(config_files, net_only=False):
    """se_lib files behind the classes LightningCLI config files name (`class_path:`), with their imports.

    The train script loads the model, data module and callbacks by these names at run time, so the import
    closure of the script alone misses them; with `net_only`, just the network classes (`model.init_args.net`):
    the predict script rebuilds the network from the checkpoint and imports nothing else by name. A missing
    file is skipped (Snakemake reports it as a missing input of the rule).
    """
    existing = [f for f in config_files if os.path.exists(f)]
    find = net_class_modules if net_only else config_class_modules
    modules = find(existing, workflow.basedir)
    return [repo_path(os.path.relpath(p, workflow.basedir)) for p in module_closure(modules, workflow.basedir)]


# se_lib modules the .smk files import themselves need no code input of their own; what they compute
# reaches a job as its params, inputs or outputs, which Snakemake tracks; the config defaults they fill
# come from the schema (an input of every job) and se_lib/config.py (in every script's closure).
def check_code_inputs():
    """Fail at parse time where a job's script is not declared with its code (input `code`)."""
    for r in workflow.rules:
        if not r.script:
            continue
        script = Path(r.basedir.get_path_or_uri(secret_free=True)) / r.script
        declared = {os.path.normpath(f) for f in getattr(r.input, "code", [])}
        missing = sorted(set(map(os.path.normpath, script_code(script.resolve()))) - declared)
        if missing:
            raise WorkflowError(
                f"{r.name!r} runs {r.script} but its input `code` (workflow_script(...).code) lacks "
                + ", ".join(missing)
            )


def repo_path(path):
    """A file shipped with the workflow (e.g. config/models/x.yaml), relative to the working directory."""
    return os.path.relpath(Path(workflow.basedir) / path, Path.cwd())


CONFIG_SCHEMA = repo_path("config/schema/config.schema.yaml")


# Folders of a model's LightningCLI config files: config/models, plus config/models/demo when
# `train.overlay` is demo (se_lib.config.model_config_dirs).
TRAIN_CONFIG_DIRS = [str(d) for d in model_config_dirs(config["train"]["overlay"], repo_path("config/models"))]


# The shared training setup (data module, trainer, callbacks, writer) under every model's config;
# `se` reads it by itself, but it is part of every model's effective config, hence an input.
SHARED_MODEL_CONFIG = repo_path("config/models/_shared.yaml")


def model_configs(wildcards):
    """The LightningCLI config files of system `wildcards.model` (passed to `se` with --config)."""
    return [f"{d}/{system_model(wildcards.model)}.yaml" for d in TRAIN_CONFIG_DIRS]


def model_code(wildcards):
    """se_lib files of the classes the shared and the model's config files name (model, data module,
    callbacks, prediction writer): what a training job imports by name."""
    return class_code(tuple([SHARED_MODEL_CONFIG, *model_configs(wildcards)]))


def net_code(wildcards):
    """se_lib files of the network class the model's config files name: what a predict job imports by name."""
    return class_code(tuple([SHARED_MODEL_CONFIG, *model_configs(wildcards)]), net_only=True)


def db_outputs():
    """Outputs of the mixture DB job -- the digest always; the SQLite file too when the DB is a local file."""
    outs = {"digest": DB_FILE, "summary": "results/db/summary.tsv"}
    if DB_URL.startswith("sqlite:///"):
        outs["db"] = DB_URL[len("sqlite:///") :]
    return outs


def all_targets():
    targets = [DB_FILE]
    targets += expand("results/models/{model}/best.ckpt", model=SYSTEMS)
    targets += REPORT_TARGETS
    return targets


def check_overrides():
    """`onstart` (a run, not a dry run): the LightningCLI overrides (`train.extra_args`, sweep points) of
    every system this run trains or predicts with must parse with the `se` parser, before any job
    starts; the message names the config key (se_lib/train/overrides.py; cached by digest)."""
    if workflow.touch:
        return
    systems = sorted({j.wildcards["model"] for j in workflow.dag.needrun_jobs() if j.rule.name in ("train", "predict")})
    if not systems:
        return
    from se_lib.train.overrides import check

    problems = check(config, systems)
    if problems:
        raise WorkflowError("invalid LightningCLI overrides in the workflow config:\n  " + "\n  ".join(problems))


def prepare_tracking():
    """`onstart` (a run, not a dry run): refuse a local sqlite MLflow store when a cluster executor (e.g.
    profiles/slurm) runs the jobs on other machines, unless `tracking.shared_single_node`; refuse an
    MLflow tracking server that does not answer or refuses the credentials of the environment
    (se_lib/tracking/service.py); refuse a dirty git tree when `require_clean_git` is set (naming the
    dirty files); create the MLflow store and experiment once before parallel jobs open them, and the
    parent run of this invocation that every rule's run is nested under."""
    if workflow.touch:  # --touch runs no job: nothing to track
        return
    from se_lib.tracking.cluster import check_store_reachable
    from se_lib.tracking.runs import start_invocation_run
    from se_lib.tracking.service import ServiceError, check_server_access

    plugin = workflow.executor_plugin  # set once execution starts (None while the Snakefile is parsed)
    check_store_reachable(config, plugin.name if plugin else None, remote=workflow.non_local_exec)
    try:  # a tracking server must answer and accept $MLFLOW_TRACKING_USERNAME/PASSWORD before any job starts
        check_server_access(tracking_uri(config))
    except ServiceError as exc:
        raise WorkflowError(str(exc)) from None

    if config["require_clean_git"]:
        from se_lib.tracking.git import require_clean

        require_clean(workflow.basedir)
    dag = workflow.dag
    targets = sorted(map(str, dag.targetfiles or [])) + sorted(map(str, dag.targetrules or []))
    start_invocation_run(config, configfiles=[str(f) for f in workflow.configfiles], targets=targets)


def finish_tracking(success):
    """`onsuccess`/`onerror`: end the invocation's parent run FINISHED or FAILED (a failure to do so is
    reported, never raised: the workflow's outcome stands)."""
    if workflow.touch:
        return
    from se_lib.tracking.runs import end_invocation_run

    try:
        end_invocation_run(config, success)
    except Exception as exc:
        print(f"warning: could not end the MLflow parent run of invocation {INVOCATION_ID}: {exc}")


# GPUs a job asks for (resources `gpu`), evaluated per job once Snakemake knows its executor: none with the
# accelerator cpu, or run by the local executor on a machine without a GPU (se_lib/train/gpu_slots.py job_gpus);
# a cluster executor's jobs always ask.
def train_gpus(wildcards):
    """GPUs of one training job: train.devices (DDP when > 1)."""
    from se_lib.train.gpu_slots import job_gpus

    return job_gpus(config["train"]["devices"], config["train"]["accelerator"], local=workflow.local_exec)


def predict_gpus(wildcards):
    """One GPU per prediction job (predict.accelerator, else train.accelerator)."""
    from se_lib.train.gpu_slots import job_gpus

    accelerator = config["predict"]["accelerator"] or config["train"]["accelerator"]
    return job_gpus(1, accelerator, local=workflow.local_exec)


# ---------------------------------------------------------------------------------------- test sets
# Public test sets (config `test_sets`, se_lib/data/corpora/stage.py): split `test_<name>` has its own corpus
# stage and DB under results/test_sets/<name>/ (the `test` split of that DB) and its own reference mic; every
# other stage treats it as one more split.
from se_lib.data.corpora.stage import (
    approximate_reference,
    evaluated_systems,
    model_channels,
    test_set_config,
    test_set_splits,
)

TEST_SETS = test_set_splits(config)  # split -> test set name
TEST_SET_CONFIGS = {name: test_set_config(config, name) for name in TEST_SETS.values()}


def test_set_dir(name):
    return f"results/test_sets/{name}"


def split_db_file(wildcards):
    """The digest file of the DB that holds split `wildcards.split` (a test set's own DB for `test_<name>`)."""
    name = TEST_SETS.get(wildcards.split)
    return DB_FILE if name is None else f"{test_set_dir(name)}/db/digest.txt"


def split_db_url(wildcards):
    name = TEST_SETS.get(wildcards.split)
    return DB_URL if name is None else f"sqlite:///{test_set_dir(name)}/db/mixtures.sqlite"


def split_db_split(wildcards):
    """The split of that DB: the split itself, or a test set DB's `test`."""
    return "test" if wildcards.split in TEST_SETS else wildcards.split


def split_ref_mic(wildcards):
    name = TEST_SETS.get(wildcards.split)
    return REF_MIC if name is None else reference_mic(TEST_SET_CONFIGS[name])


def split_published(wildcards):
    """The published-results file (config/published/<name>.yaml) of a test set split, else None."""
    name = TEST_SETS.get(wildcards.split)
    return None if name is None else config["test_sets"][name]["published"]


@functools.cache
def system_channels(system):
    """Microphones system `system`'s network takes (`in_channels` of its config files, then train.extra_args and
    its sweep overrides): 1 enhances the reference mic of any array."""
    point = SWEEP_POINTS.get(system)
    overrides = point.overrides if point else None
    return model_channels(config, system_model(system), overrides, repo_path("config/models"))


def eval_systems(split, systems=None):
    """The systems evaluated on `split`: all of them, but on a test set only those whose network takes its channel
    count (or one channel); where the config cannot tell a test set's channels, all (predict checks the files)."""
    return evaluated_systems(config, split, SYSTEMS if systems is None else systems, system_channels)


def split_approximate(wildcards):
    """`close_talk` where split `wildcards.split`'s reference is approximate (CHiME-4 real recordings scored
    against the close-talk mic, corpus option `close_talk_reference`), else None: the scorer labels those scores."""
    name = TEST_SETS.get(wildcards.split)
    return approximate_reference((config if name is None else TEST_SET_CONFIGS[name])["corpus"])
