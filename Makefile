# radiomx: `make demo` and `make test` work on a fresh clone with only Python >= 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo-out

.PHONY: demo test test-full lint bench clean

$(BIN)/radiomx: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

demo: $(BIN)/radiomx
	rm -rf $(DEMO)
	$(BIN)/radiomx demo $(DEMO)/cohort
	$(BIN)/radiomx extract $(DEMO)/cohort -o $(DEMO)/out; test $$? -le 1
	@$(BIN)/python -m radiomx.cli.demo_summary $(DEMO)/out

test: $(BIN)/radiomx
	$(BIN)/python -m pytest -q

test-full: $(BIN)/radiomx
	$(BIN)/python -m pytest -q -m full

lint: $(BIN)/radiomx
	$(BIN)/ruff check radiomx tests benchmarks

bench: $(BIN)/radiomx
	$(BIN)/python benchmarks/bench_extract.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
