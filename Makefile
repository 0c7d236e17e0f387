# radiomx: `make demo` and `make test` work on a fresh clone with only Python >= 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo-out

.PHONY: demo test test-full lint bench browser clean

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

# Debian's headless Chromium, for the report's browser test (tests/test_report_browser.py). Idempotent and quick
# when installed; installs as root only (CI runs as root); elsewhere that test skips (and fails under CI=true).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "make: chromium is not installed and this is not root: the report's browser test will skip"; fi

# The linters first (ruff, and the layer contracts of pyproject.toml's [tool.importlinter]): CI fails on a broken layer.
test: lint browser
	$(BIN)/python -m pytest -q

test-full: $(BIN)/radiomx
	$(BIN)/python -m pytest -q -m full

lint: $(BIN)/radiomx
	$(BIN)/ruff check radiomx tests benchmarks
	$(BIN)/lint-imports --no-cache

bench: $(BIN)/radiomx
	$(BIN)/python benchmarks/bench_extract.py
	$(BIN)/python benchmarks/bench_qc.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
