# The README's commands. `make demo` and `make test` each work alone on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,pdf,docx,html,stix,notebook,web,explain

# The data mirror: ../shared/data beside the clone unless MITREMAP_DATA says otherwise.
MITREMAP_DATA ?= $(abspath ../shared/data)
export MITREMAP_DATA

.PHONY: setup demo test bench lint schema clean

setup: $(STAMP)
	$(BIN)/mitremap data status
	$(BIN)/mitremap model ensure

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# `make demo` installs no extra (the demo reads a markdown report and prints a table): a light
# venv of its own, so `make test` keeps the full one. It uses the installed default model
# (`mitremap model install FILE|URL`) when there is one; `model ensure` trains one otherwise.
DEMO_VENV  := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed

$(DEMO_STAMP): pyproject.toml
	test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/mitremap model ensure
	$(DEMO_VENV)/bin/mitremap analyze examples/apt-report.md --iocs

# the tests train the models they need (hermetic): no default model to train first. The
# package's line coverage is printed after them: what the test process runs (the children it
# starts are not measured), by path, so the Alembic migrations it loads from files count too.
# It costs time (CPU-bound tests run about a third slower under the tracer on Python 3.11):
# `make test COVERAGE=` leaves it out.
COVERAGE ?= --cov=src/mitremap --cov-report=term
test: $(STAMP)
	$(BIN)/mitremap data status
	$(BIN)/python -m pytest -q $(COVERAGE)

# `make bench` prints every benchmark; FULL=1 adds the 5-fold cross-validation on TRAM,
# leave-one-source-out training of the technique model, and the learning loop's full
# retrainings (about 75 minutes on 2 cores).
bench: setup
	$(BIN)/python benchmarks/bench_attack.py
	$(BIN)/python benchmarks/bench_similar.py
	$(BIN)/python benchmarks/bench_entities.py
	$(BIN)/python benchmarks/bench_documents.py
	$(BIN)/python benchmarks/bench_iocs.py
	$(BIN)/python benchmarks/bench_iocs_accuracy.py
	$(BIN)/python benchmarks/bench_explain.py
	$(BIN)/python benchmarks/bench_hostile.py
	$(BIN)/python benchmarks/bench_server.py
	$(BIN)/python benchmarks/bench_workspace.py
	$(BIN)/python benchmarks/bench_taxii.py
	$(BIN)/python benchmarks/bench_learning.py $(if $(FULL),--full,)
	$(BIN)/python benchmarks/bench_mapping.py $(if $(FULL),,--quick)

# mypy twice: the package (pyproject.toml's [tool.mypy]), then the tests (tests/mypy.ini)
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/mypy --config-file tests/mypy.ini
	$(BIN)/lint-imports

# after changing src/mitremap/schema.py: the shipped JSON Schemas, generated from its types
schema: $(STAMP)
	$(BIN)/python scripts/generate_schemas.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) build dist src/*.egg-info .pytest_cache .ruff_cache .mypy_cache .coverage
