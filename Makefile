# make demo  : set up .venv, then run the whole demo campaign on the embedded gateway
# make test  : set up .venv, then ruff and the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test demo lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,notebook,dask]'
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check cmframe tests benchmarks

test: setup lint
	$(PY) -m pytest -q

demo: setup
	$(PY) -m cmframe demo

bench: setup
	$(PY) benchmarks/build.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
