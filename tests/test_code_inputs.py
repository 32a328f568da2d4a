"""Code edits rerun exactly the jobs that run the code (se_lib/code_deps.py + rules/common.smk), and
se_lib has no import cycles.

The workflow test is table-driven over every se_lib module: after the tiny workflow run (the session
fixture ``workflow_run``), appending a comment to the module makes ``snakemake -n`` plan exactly

* the jobs that run the module: their script imports it, directly or transitively, or a class their
  LightningCLI config names (train: any ``class_path:``; predict: the network's, ``model.init_args.net``,
  which is all it rebuilds from the checkpoint) lives in it or imports it, and
* the jobs downstream of those in the DAG (their inputs will be regenerated), ``all`` included,

and no others; a module no job runs (e.g. one only the Snakefile or tests import) plans nothing. The
expected set comes from :mod:`modulefinder` (byte-code scan, run on each script) and the jobs' own inputs
and outputs as Snakemake prints them with ``--forceall``, not from the ``ast`` walk the rules use.
"""

from __future__ import annotations

import json
import modulefinder
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from se_lib.code_deps import (
    ImportResolutionError,
    config_class_modules,
    import_closure,
    import_graph,
    module_closure,
    module_file,
)

ROOT = Path(__file__).resolve().parent.parent
SE_LIB_MODULES = sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "se_lib").rglob("*.py") if "__pycache__" not in p.parts
)


# ---------------------------------------------------------------------------------------------------
# Unit tests of the closure on a small package written for the purpose.


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def pkg(tmp_path):
    return _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import os\nfrom pkg.b import f\n",
            "pkg/b.py": "def f():\n    from pkg.sub import deep  # inside a function\n    return deep\n",
            "pkg/sub/__init__.py": "from . import helper\n",
            "pkg/sub/deep.py": "try:\n    from ..c import x\nexcept ImportError:\n    pass\n",
            "pkg/sub/helper.py": "",
            "pkg/c.py": "x = 1\n",
            "pkg/unused.py": "import pkg.a\n",
            "pkg/lazy/__init__.py": (
                "import importlib\n_EXPORTS = {'g': 'pkg.lazy.impl'}\nOWN = 1\n"
                "def __getattr__(name):\n    return getattr(importlib.import_module(_EXPORTS[name]), name)\n"
            ),
            "pkg/lazy/impl.py": "def g():\n    pass\n",
            "scripts/run.py": "import numpy\nimport pkg.a as alias\n",
        },
    )


def _rel(paths, root):
    return {p.relative_to(root).as_posix() for p in paths}


def test_closure_follows_imports_everywhere_and_the_packages_on_the_way(pkg):
    got = _rel(import_closure(pkg / "scripts/run.py", pkg, package="pkg"), pkg)
    assert got == {
        "pkg/__init__.py",
        "pkg/a.py",
        "pkg/b.py",
        "pkg/sub/__init__.py",
        "pkg/sub/deep.py",
        "pkg/sub/helper.py",
        "pkg/c.py",
    }


def test_closure_of_a_package_file_includes_itself(pkg):
    got = _rel(import_closure(pkg / "pkg/unused.py", pkg, package="pkg"), pkg)
    assert {"pkg/unused.py", "pkg/a.py", "pkg/c.py"} <= got


def test_from_package_import_submodule_counts_as_the_submodule(pkg):
    _write(pkg, {"scripts/s.py": "from pkg import c\n"})
    assert _rel(import_closure(pkg / "scripts/s.py", pkg, package="pkg"), pkg) == {"pkg/__init__.py", "pkg/c.py"}


def test_lazy_exports_count_only_when_a_lazy_name_is_imported(pkg):
    _write(pkg, {"scripts/own.py": "from pkg.lazy import OWN\n", "scripts/lazy.py": "from pkg.lazy import g\n"})
    assert "pkg/lazy/impl.py" not in _rel(import_closure(pkg / "scripts/own.py", pkg, package="pkg"), pkg)
    assert "pkg/lazy/impl.py" in _rel(import_closure(pkg / "scripts/lazy.py", pkg, package="pkg"), pkg)


def test_import_of_a_missing_module_names_file_and_line(pkg):
    _write(pkg, {"scripts/bad.py": "import os\n\nfrom pkg.nope import x\n"})
    with pytest.raises(ImportResolutionError, match=r"bad\.py:3: imports pkg\.nope"):
        import_closure(pkg / "scripts/bad.py", pkg, package="pkg")


def test_unparsable_file_is_named(pkg):
    _write(pkg, {"pkg/c.py": "def (:\n"})
    with pytest.raises(ImportResolutionError, match=r"c\.py:1: cannot parse"):
        import_closure(pkg / "scripts/run.py", pkg, package="pkg")


def test_edit_is_seen_in_the_same_process(pkg):
    before = _rel(import_closure(pkg / "scripts/run.py", pkg, package="pkg"), pkg)
    (pkg / "pkg/c.py").write_text("import pkg.unused\nx = 1\n")
    after = _rel(import_closure(pkg / "scripts/run.py", pkg, package="pkg"), pkg)
    assert after == before | {"pkg/unused.py"}


def test_config_class_paths_name_their_modules(pkg):
    cfg = (
        _write(
            pkg,
            {
                "m.yaml": "model:\n  class_path: pkg.sub.deep.Net\n  init_args:\n    x:\n"
                "      class_path: torch.nn.ReLU\ntrainer:\n  callbacks:\n"
                '    - class_path: "pkg.c.Callback"\n'
            },
        )
        / "m.yaml"
    )
    mods = config_class_modules([cfg], pkg, package="pkg")
    assert mods == ["pkg.c", "pkg.sub.deep"]
    assert "pkg/sub/helper.py" in _rel(module_closure(mods, pkg, package="pkg"), pkg)
    (pkg / "bad.yaml").write_text("model:\n  class_path: pkg.gone.Net\n")
    with pytest.raises(ImportResolutionError, match=r"bad\.yaml: class_path pkg\.gone\.Net"):
        config_class_modules([pkg / "bad.yaml"], pkg, package="pkg")


def test_import_graph_edges_are_the_imports_as_written(pkg):
    graph = import_graph(pkg, package="pkg")
    assert graph["pkg.a"] == {"pkg.b": 2}
    assert graph["pkg.sub.deep"] == {"pkg.c": 2}
    assert graph["pkg.sub"] == {"pkg.sub.helper": 1}  # not an edge to itself


# ---------------------------------------------------------------------------------------------------
# No import cycles among se_lib modules (imports inside functions included: they only defer a cycle).


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan): the modules on an import cycle."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(comps)


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}, "e": {"f": 1}, "f": {"e": 1}}
    assert _cycles(graph) == [["a", "b", "c"], ["e", "f"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []


def test_se_lib_has_no_import_cycles():
    graph = import_graph(ROOT)
    report = []
    for comp in _cycles(graph):
        edges = [
            f"    {module_file(a, ROOT).relative_to(ROOT)}:{line} imports {b}"
            for a in comp
            for b, line in sorted(graph[a].items())
            if b in comp
        ]
        report.append(f"  cycle among {', '.join(comp)}:\n" + "\n".join(edges))
    assert not report, "import cycles among se_lib modules (imports inside functions count):\n" + "\n".join(report)


# ---------------------------------------------------------------------------------------------------
# The workflow plans exactly the right jobs after a code edit.

_BLOCK = re.compile(r"^(?:local)?rule (\w+):\n((?:    .*\n?)*)", re.MULTILINE)


def _jobs(text: str) -> dict[tuple, dict]:
    """Jobs of a ``snakemake -n`` log: (rule, wildcards) -> {"input": [...], "output": [...]}."""
    jobs = {}
    for rule, body in _BLOCK.findall(text):
        fields = dict(re.findall(r"^    (\w+): (.*)$", body, re.MULTILINE))
        key = (rule, fields.get("wildcards", ""))
        jobs[key] = {k: [s.strip() for s in fields.get(k, "").split(",") if s.strip()] for k in ("input", "output")}
    return jobs


def _rule_scripts(src: Path) -> dict[str, Path]:
    """Rule name -> its script, read from the rule files (a literal path or ``workflow_script("x.py")``)."""
    scripts = {}
    for smk in [src / "Snakefile", *sorted((src / "rules").glob("*.smk"))]:
        text = smk.read_text()
        named = dict(re.findall(r'^(\w+) = workflow_script\("([^"]+)"\)', text, re.MULTILINE))
        for block in re.split(r"^(?=rule \w+:)", text, flags=re.MULTILINE):
            m = re.match(r"rule (\w+):", block)
            s = re.search(r'^    script:\n\s+(?:"([^"]+)"|(\w+)\.path)', block, re.MULTILINE)
            if m and s:
                path = (smk.parent / s.group(1)) if s.group(1) else src / "workflow_scripts" / named[s.group(2)]
                scripts[m.group(1)] = path.resolve()
    return scripts


def _se_lib_files(src: Path, script: Path | None = None, modules=()) -> set[str]:
    """se_lib files ``script`` and ``modules`` import, by :mod:`modulefinder` restricted to the copy."""
    finder = modulefinder.ModuleFinder(path=[str(src)])  # third-party and stdlib modules stay unresolved
    if script is not None:
        finder.run_script(str(script))
    for name in modules:
        finder.import_hook(name)
    return {
        Path(m.__file__).resolve().relative_to(src).as_posix()
        for name, m in finder.modules.items()
        if name.split(".")[0] == "se_lib" and m.__file__
    }


def _class_modules(config_file: Path) -> set[str]:
    """Modules of the se_lib classes a LightningCLI YAML names (``class_path`` values, at any depth)."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            value = node.get("class_path")
            if isinstance(value, str) and value.startswith("se_lib."):
                found.add(value.rsplit(".", 1)[0])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load(config_file.read_text()))
    return found


def _net_class_modules(config_file: Path) -> set[str]:
    """The module of the network class a LightningCLI YAML names (``model.init_args.net.class_path``), if any."""
    net = ((yaml.safe_load(config_file.read_text()) or {}).get("model") or {}).get("init_args", {}).get("net") or {}
    value = net.get("class_path")
    return {value.rsplit(".", 1)[0]} if isinstance(value, str) and value.startswith("se_lib.") else set()


# One interpreter imports Snakemake once and forks a child per dry run, which runs the real CLI
# (`snakemake.cli.main`, fresh state in every child; the workflow's se_lib is imported by the child
# only): each plan costs the Snakefile parse and the DAG, not Python's and Snakemake's start-up.
_FORK_SERVER = r"""
import json, os, sys
import snakemake.cli
for line in sys.stdin:
    argv, log = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = 1
        try:
            snakemake.cli.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class DryRunner:
    """``snakemake -n`` on the workflow copy, the same command line as conftest's ``snakemake()``."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir, self.log = workdir, workdir.parent / f"{workdir.name}-dryrun.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _FORK_SERVER],
            cwd=workdir,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def __call__(self, *args: str) -> str:
        argv = [
            "-s",
            str(self.workdir / "Snakefile"),
            "--directory",
            str(self.workdir),
            "--configfile",
            str(self.workdir / "config" / "tiny.yaml"),
            "--cores",
            "2",
            "-n",
            *args,
        ]
        self.proc.stdin.write(json.dumps([argv, str(self.log)]) + "\n")
        self.proc.stdin.flush()
        rc = int(self.proc.stdout.readline() or -1)
        text = self.log.read_text()
        assert rc == 0, f"snakemake -n {' '.join(args)} exited {rc}:\n{text[-6000:]}"
        return text

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def dry_run(workflow_run, snakemake_env):
    runner = DryRunner(workflow_run[0], snakemake_env(workflow_run[0]))
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def code_plan(workflow_run, dry_run):
    """Every job of the finished run, the se_lib files each runs (expected) and the jobs after each."""
    src, _ = workflow_run
    jobs = _jobs(dry_run("--forceall"))
    scripts = _rule_scripts(src)
    runs = {}
    for key, io in jobs.items():
        rule = key[0]
        if rule == "all":
            runs[key] = set()
            continue
        assert rule in scripts, f"rule {rule}: no script found in the rule files (test needs updating?)"
        configs = [src / p for p in io["input"] if p.endswith(".yaml") and (src / p).is_file()]
        named = _net_class_modules if rule == "predict" else _class_modules
        runs[key] = _se_lib_files(src, scripts[rule], sorted(set().union(*map(named, configs))))
    consumers = {k: {c for c, cio in jobs.items() if set(cio["input"]) & set(io["output"])} for k, io in jobs.items()}
    return src, runs, consumers


def _downstream(start: set, consumers: dict) -> set:
    todo, seen = list(start), set(start)
    while todo:
        for c in consumers[todo.pop()]:
            if c not in seen:
                seen.add(c)
                todo.append(c)
    return seen


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first of these runs the tiny workflow (session fixture)
def test_expected_plan_is_not_trivial(code_plan):
    """Guard for the table below: the independent method sees real, different closures."""
    src, runs, consumers = code_plan
    by_rule = {k[0]: v for k, v in runs.items()}
    # the model's class (named by class_path in its config; `se` also registers every model by name)
    assert "se_lib/models/dprnn.py" in runs[("train", "model=dprnn")]
    # predict rebuilds the network with plain torch: the network's class, never the Lightning module
    assert "se_lib/models/dprnn.py" in runs[("predict", "model=dprnn, split=test")]
    assert "se_lib/train/module.py" in by_rule["train"] and "se_lib/train/module.py" not in by_rule["predict"]
    assert "se_lib/data/naming.py" in by_rule["mixture_db"]  # via data/db.py
    # training scores live metrics (se_lib.train.live_metrics: stoi, pesq_wb, dnsmos) but never runs the scorer
    assert "se_lib/metrics/stoi.py" in by_rule["score"] and "se_lib/metrics/stoi.py" in by_rule["train"]
    assert "se_lib/metrics/scorer.py" in by_rule["score"] and "se_lib/metrics/scorer.py" not in by_rule["train"]
    assert len(_downstream({("corpus", "")}, consumers)) == len(runs)  # every job depends on the corpus


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first of these runs the tiny workflow (session fixture)
@pytest.mark.parametrize("module", SE_LIB_MODULES)
def test_editing_a_module_plans_exactly_the_jobs_that_run_it(module, code_plan, dry_run):
    src, runs, consumers = code_plan
    expected = _downstream({k for k, files in runs.items() if module in files}, consumers)
    path = src / module
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# edited by test_code_inputs\n")
        t0 = time.perf_counter()
        out = dry_run()
        planned = set(_jobs(out))
        print(f"{module}: {len(planned)} jobs planned in {time.perf_counter() - t0:.1f} s")
    finally:
        path.write_bytes(original)
    fmt = lambda jobs: "\n    ".join(f"{r} {w}".strip() for r, w in sorted(jobs)) or "(none)"  # noqa: E731
    assert planned == expected, (
        f"editing {module}:\n  planned but not expected:\n    {fmt(planned - expected)}\n"
        f"  expected but not planned:\n    {fmt(expected - planned)}"
    )
    if not expected:
        assert "Nothing to be done" in out, out[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first of these runs the tiny workflow (session fixture)
def test_same_content_reruns_nothing(code_plan, dry_run):
    """After every edit was undone (the files are newer than the results, same content), nothing is
    planned: Snakemake compares checksums of small inputs, so a bare `touch` reruns nothing either."""
    src, _, _ = code_plan
    os.utime(src / "se_lib/io.py")
    out = dry_run()
    assert "Nothing to be done" in out, out[-3000:]
