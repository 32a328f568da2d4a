# Two entry points (see README.md): `make run` (whole workflow on the demo data) and `make test`.
# Both bootstrap uv if it is missing and create the environment (.venv, from uv.lock) on first use.

SHELL := /bin/bash
PYTHON ?= python3
# uv on PATH, else a private copy installed from PyPI into .uv/ (venv, or pip --target as a fallback).
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.uv/bin/uv)
export UV_PYTHON ?= $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=
MLFLOW_PORT ?= 5000
MLFLOW_HOST ?= 127.0.0.1
MLFLOW_UI_ARGS ?=
MLFLOW_SERVICE_ARGS ?=
MLFLOW_GC_ARGS ?=
CLEAN_MLFLOW ?=

.PHONY: run test test-quick env lint format report mlflow-ui mlflow-start mlflow-stop mlflow-status mlflow-gc clean-results bench help sysdeps dvc-yaml dvc-commit push pull corpus

# What a run leaves in the working directory (outputs, logs, Snakemake state, the report, Lightning's default
# log folder); `make clean-results` removes exactly these. The local MLflow store (MLFLOW_LOCAL_STORE) is
# history: kept unless CLEAN_MLFLOW=1; a tracking server's store (make mlflow-start) is never touched.
RUN_PRODUCTS := results logs .snakemake report.html report.zip lightning_logs
MLFLOW_LOCAL_STORE := mlflow.db mlflow.db.lock mlruns mlartifacts

help: ## this list
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-zA-Z_-]+):.*## (.*)/  make \1|\2/' | \
		awk -F'|' '{printf "%-20s %s\n", $$1, $$2}'
	@echo "  Variables: SNAKEMAKE_ARGS (run, report; e.g. SNAKEMAKE_ARGS='--configfile config/tiny.yaml'),"
	@echo "             PYTEST_ARGS (test, test-quick), PYTHON (interpreter for a private uv), MLFLOW_PORT and"
	@echo "             MLFLOW_UI_ARGS (mlflow-ui; e.g. MLFLOW_UI_ARGS='--configfile config/tiny.yaml'),"
	@echo "             MLFLOW_HOST, MLFLOW_SERVICE_ARGS (mlflow-start; e.g. MLFLOW_SERVICE_ARGS='--auth'),"
	@echo "             MLFLOW_GC_ARGS (mlflow-gc; e.g. MLFLOW_GC_ARGS=--dry-run), CLEAN_MLFLOW=1 (clean-results)"

$(CURDIR)/.uv/bin/uv:
	@echo "uv not found: installing it from PyPI into .uv/"
	@if $(PYTHON) -m venv .uv 2>/dev/null && .uv/bin/python -m pip --version >/dev/null 2>&1; then \
		.uv/bin/python -m pip install --quiet uv; \
	else \
		rm -rf .uv && $(PYTHON) -m pip install --quiet --target .uv/lib uv && mkdir -p .uv/bin && \
		ln -sf ../lib/bin/uv .uv/bin/uv; \
	fi

# --compile-bytecode: the packages' .pyc files are written once here (about 1.5 min on 2 cores; 5 s when they are
# up to date). Without them every Python process compiles what it imports, for ever where PYTHONDONTWRITEBYTECODE
# is set (this project's development machines set it) or until a first run has written them: `import lightning`
# took 15-17 s of CPU instead of 6.5-7.6 s (README "Start-up time"). The Makefile is a prerequisite so that an
# existing .venv gets them too.
.venv/.synced: pyproject.toml uv.lock Makefile | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

env: .venv/.synced ## create .venv from uv.lock (uv sync --frozen --compile-bytecode)

run: .venv/.synced ## whole workflow on the built-in demo data, then report.html
	$(UV) run snakemake --cores all --resources gpu=1 $(SNAKEMAKE_ARGS)
	$(UV) run snakemake --report report.html $(SNAKEMAKE_ARGS)
	@echo "Report: $(CURDIR)/report.html (open it in a browser); tables: results/report/<split>/comparison.html"
	@echo "MLflow: make mlflow-ui (runs table in the browser); uv run se runs (the same table in the terminal)"

# System packages some tests use for real (PostgreSQL server, headless Chromium driven by Selenium through
# chromedriver; alsa-utils' recorded voice prompts, the real speech of the public-corpus stand-ins, which fall
# back to eSpeak NG without them). Installed with apt-get when running as root and missing; otherwise those
# tests install/skip themselves and say why.
sysdeps: ## system packages some tests use (PostgreSQL, Chromium + chromedriver, alsa-utils), via apt-get when root
	@need=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || need="$$need postgresql"; \
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need="$$need chromium"; \
	command -v chromedriver >/dev/null || need="$$need chromium-driver"; \
	test -f /usr/share/sounds/alsa/Front_Center.wav || need="$$need alsa-utils"; \
	if [ -n "$$need" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing system packages:$$need"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null; \
		else echo "note: missing system packages:$$need (not root: dependent tests will say so)"; fi; \
	fi

test: .venv/.synced sysdeps ## the test suite (uv run pytest, plus PYTEST_ARGS)
	$(UV) run pytest $(PYTEST_ARGS)

# The edit loop's tier: no workflow, Snakemake, server, cluster or end-to-end training (marker e2e, derived from
# what each test uses in tests/conftest.py); `make test` (CI) runs everything.
test-quick: .venv/.synced ## the quick tests only (pytest -m "not e2e", plus PYTEST_ARGS): a few minutes
	$(UV) run pytest -m "not e2e" $(PYTEST_ARGS)

LINT_PY := se_lib workflow_scripts tests bench main.py
LINT_SMK := Snakefile rules

lint: .venv/.synced ## ruff check (E, F, I, UP, B) + ruff format --check, snakefmt --check, snakemake --lint
	$(UV) run --frozen ruff check $(LINT_PY)
	$(UV) run --frozen ruff format --check $(LINT_PY)
	$(UV) run --frozen snakefmt --check $(LINT_SMK)
	$(UV) run --frozen snakemake --lint

format: .venv/.synced ## apply ruff format (+ safe ruff fixes) and snakefmt
	$(UV) run --frozen ruff check --fix $(LINT_PY)
	$(UV) run --frozen ruff format $(LINT_PY)
	$(UV) run --frozen snakefmt $(LINT_SMK)

report: .venv/.synced ## snakemake --report report.html after a run (honours SNAKEMAKE_ARGS like run)
	$(UV) run snakemake --report report.html $(SNAKEMAKE_ARGS)

mlflow-ui: .venv/.synced ## MLflow UI on 127.0.0.1 (port MLFLOW_PORT, 5000) over the project's store; prints the runs table's address
	$(UV) run python -m se_lib.tracking.ui --port $(MLFLOW_PORT) $(MLFLOW_UI_ARGS)

# The tracking server as a background service (se_lib/tracking/service.py; README "Tracking service").
mlflow-start: .venv/.synced ## MLflow server in the background on MLFLOW_HOST:MLFLOW_PORT (pid file, log in mlflow-service/)
	$(UV) run --frozen se mlflow start --host $(MLFLOW_HOST) --port $(MLFLOW_PORT) $(MLFLOW_SERVICE_ARGS)

mlflow-stop: .venv/.synced ## stop the server through its pid file (SIGTERM, SIGKILL after a timeout)
	$(UV) run --frozen se mlflow stop

mlflow-status: .venv/.synced ## is the server running, where, since when, does it answer
	@$(UV) run --frozen se mlflow status || [ $$? = 3 ]  # 3: not running (said so); 1: running, not answering

mlflow-gc: .venv/.synced ## remove runs marked deleted (se runs delete) and their artifacts for good (MLFLOW_GC_ARGS=--dry-run)
	$(UV) run --frozen se runs gc $(MLFLOW_GC_ARGS)

bench: .venv/.synced ## benchmarks in bench/ (ratios against reference implementations)
	@for b in bench/bench_*.py; do echo "== $$b"; $(UV) run python $$b || exit 1; done

clean-results: ## remove what a run leaves (results, logs, .snakemake, report); the MLflow store only with CLEAN_MLFLOW=1
	rm -rf $(RUN_PRODUCTS)
	@if [ "$(CLEAN_MLFLOW)" = 1 ]; then \
		echo "CLEAN_MLFLOW=1: removing the local MLflow store ($(MLFLOW_LOCAL_STORE)): its run history is gone for good"; \
		rm -rf $(MLFLOW_LOCAL_STORE); \
	else \
		for f in $(MLFLOW_LOCAL_STORE); do [ -e $$f ] && kept="$$kept $$f"; done; \
		if [ -n "$$kept" ]; then echo "kept the MLflow history:$$kept (CLEAN_MLFLOW=1 removes it; se runs delete + make mlflow-gc removes single runs)"; fi; \
	fi; true

# DVC (see README "Reproduce or restore"): dvc.yaml is generated from the workflow; DVC_CONFIG names the
# workflow config file(s) it is generated for and restored with (default config/config.yaml).
DVC_CONFIG ?= config/config.yaml

dvc-yaml: .venv/.synced ## regenerate dvc.yaml from the Snakemake workflow (DVC_CONFIG=config/config.yaml)
	$(UV) run --frozen python -m se_lib.dvc_stages $(foreach f,$(DVC_CONFIG),--configfile $(f)) generate

dvc-commit: .venv/.synced ## record `make run`'s results in dvc.lock + DVC cache (dvc commit -f, then snakemake --touch)
	$(UV) run --frozen python -m se_lib.dvc_stages $(foreach f,$(DVC_CONFIG),--configfile $(f)) commit

push: .venv/.synced ## upload the DVC-tracked results to the default remote (dvc push)
	$(UV) run --frozen dvc push

pull: .venv/.synced ## fresh clone: dvc pull, then snakemake --touch on the pulled outputs (snakemake -n: nothing to do)
	$(UV) run --frozen python -m se_lib.dvc_stages $(foreach f,$(DVC_CONFIG),--configfile $(f)) restore

# Public corpora (config/corpora/<CORPUS>.yaml; se_lib/data/corpora/download.py): download, check and unpack the
# archives into ROOT, resuming interrupted downloads, then verify ROOT; VERIFY=1 only verifies. Licensed corpora
# (CHiME-4) and those without an archive (DNS 2020) are only verified; the recipe says how to obtain them.
corpus: .venv/.synced ## download + verify a public corpus: make corpus CORPUS=voicebank_demand ROOT=/data/vbd (VERIFY=1: verify only)
	@if [ -z "$(CORPUS)" ] || [ -z "$(ROOT)" ]; then \
		echo "make corpus: set CORPUS (one of: $$(ls config/corpora/ | sed -n 's/\.yaml$$//p' | tr '\n' ' '| sed 's/ $$//')) and ROOT (the corpus folder)," >&2; \
		echo "  e.g. make corpus CORPUS=voicebank_demand ROOT=/data/vbd   (VERIFY=1: only verify ROOT)" >&2; exit 2; \
	fi
	$(UV) run --frozen python -m se_lib.data.corpora.download --recipe 'config/corpora/$(CORPUS).yaml' --root '$(ROOT)' $(if $(filter 1 yes true,$(VERIFY)),--verify-only)
