# The README's commands. `make demo` and `make test` each work alone on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,pdf,docx,html,stix,notebook,web,explain

# The data mirror: ../shared/data beside the clone unless MITREMAP_DATA says otherwise.
MITREMAP_DATA ?= $(abspath ../shared/data)
export MITREMAP_DATA

.PHONY: setup demo test bench lint clean

setup: $(STAMP)
	$(BIN)/mitremap data status
	$(BIN)/mitremap model ensure

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: setup
	$(BIN)/mitremap analyze examples/apt-report.md --iocs

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
