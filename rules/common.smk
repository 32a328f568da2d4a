# Shared by all rule files -- config validation, the invocation id, input functions and constants.

import os
import uuid
from pathlib import Path

from se_lib.config import db_url, tracking_uri, validate_config


# Validate before any job starts; defaults are filled in from the schema. The message names the key.
validate_config(config, workflow.source_path("../config/schema/config.schema.yaml"))

# One id per `snakemake` invocation, inherited by every job (local or cluster) through the environment.
INVOCATION_ID = os.environ.setdefault("SE_INVOCATION_ID", uuid.uuid4().hex)
os.environ.setdefault("SE_EXPERIMENT", config["experiment"])

from se_lib.data.splits import SPLITS
CORPUS_DIR = "results/corpus"
ROOMS_DIR = "results/rooms"
# The DB digest file stands for the mixture DB whatever its backend (sqlite file or server URL).
DB_FILE = "results/db/digest.txt"
DB_URL = db_url(config)
MODELS = list(config["models"])


def lib_sources(*names):
    """se_lib source files a rule runs, declared as inputs so that code changes rerun the right jobs.

    Each name is a module (`data/db.py`) or a package folder (`models`) under se_lib/; `config.py`,
    the schema and the tracking package are always included.
    """
    root = Path(workflow.basedir) / "se_lib"
    files = {root / "__init__.py", root / "config.py"}
    files.update((root / "tracking").glob("*.py"))
    for name in names:
        path = root / name
        if path.is_dir():
            files.update(path.rglob("*.py"))
        elif path.with_suffix(".py").exists():
            files.add(path.with_suffix(".py"))
        elif path.exists():
            files.add(path)
        else:
            raise ValueError(f"lib_sources: se_lib/{name} does not exist")
    rel = sorted(os.path.relpath(p, Path.cwd()) for p in files)
    return rel + [repo_path("config/schema/config.schema.yaml")]


def repo_path(path):
    """A file shipped with the workflow (e.g. config/models/x.yaml), relative to the working directory."""
    return os.path.relpath(Path(workflow.basedir) / path, Path.cwd())


def db_outputs():
    """Outputs of the mixture DB job -- the digest always; the SQLite file too when the DB is a local file."""
    outs = {"digest": DB_FILE, "summary": "results/db/summary.tsv"}
    if DB_URL.startswith("sqlite:///"):
        outs["db"] = DB_URL[len("sqlite:///") :]
    return outs


def all_targets():
    targets = [DB_FILE]
    targets += expand("results/models/{model}/best.ckpt", model=MODELS)
    targets += REPORT_TARGETS
    return targets


def prepare_tracking():
    from se_lib.tracking.runs import setup_tracking

    setup_tracking(config)
