# vnode developer commands. Everything installs into .venv; `make test` also provisions what the tests need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

## run: start the sandbox (in-memory API server + virtual node) in the foreground, run examples/build-pod.yaml
##      on it and end by printing the example build's cost report
run: $(STAMP)
	bash examples/sandbox-demo.sh $(BIN)/vnode

## test: install and start what the tests need, then run unit and integration tests
test: $(STAMP)
	bash tests/tools/test-env.sh $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

## bench: run the benchmarks and print their figures
bench: $(STAMP)
	bash tests/tools/test-env.sh $(BIN)/python -m tests.bench $(BENCH)

## lint: ruff, mypy and the import layering contract
lint: $(STAMP)
	$(BIN)/ruff check vnode tests
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .vnode .test-env
