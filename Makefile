# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when it is
# missing and (re)install the project when pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench package test-package clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m sandbox gui

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "not slow"
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# A one-folder desktop build in dist/ (PyInstaller; see packaging/).
package: $(STAMP)
	$(PY) -m pip install -e '.[package]'
	$(PY) -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller \
		packaging/trading-signal-sandbox.spec

# Builds the package and runs the built app once under a virtual screen (slow).
test-package: package
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m slow tests/test_packaging.py

bench: $(STAMP)
	$(PY) -m pip install -e '.[bench]'
	QT_QPA_PLATFORM=offscreen $(PY) bench/backtest.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/train_throughput.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/chart_pan.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/ui_stall.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/cold_start.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/sweep.py

clean:
	rm -rf build dist .pytest_cache
