# make demo  : set up .venv, then run the whole demo campaign on the embedded gateway
# make test  : set up .venv, then ruff and the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# the oldest pandas we support, in a venv of its own: the suite runs there too
VENV2  := .venv-pandas2
PY2    := $(VENV2)/bin/python
STAMP2 := $(VENV2)/.installed

.PHONY: setup test test-pandas2 demo lint bench clean chromium

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,notebook,dask]'
	touch $(STAMP)

setup: $(STAMP)

$(STAMP2): pyproject.toml
	test -x $(PY2) || $(PYTHON) -m venv $(VENV2)
	$(PY2) -m pip install -q --upgrade pip
	$(PY2) -m pip install -q 'pandas>=2.2,<2.3' -e '.[dev,dask]'
	touch $(STAMP2)

lint: setup
	$(VENV)/bin/ruff check cmframe tests benchmarks

# Debian's chromium renders the HTML report in a test: installed only when missing
# (CI runs as root; elsewhere sudo is used)
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: setup lint chromium
	$(PY) -m pytest -q
	$(MAKE) test-pandas2

# the suite again on pandas 2.2 (the notebooks run in the main venv's kernel only)
test-pandas2: $(STAMP2)
	$(PY2) -m pytest -q -p no:cacheprovider --deselect tests/test_notebooks.py

demo: setup
	$(PY) -m cmframe demo

bench: setup
	$(PY) benchmarks/build.py

clean:
	rm -rf $(VENV) $(VENV2) demo-output .pytest_cache .ruff_cache
