# make demo  : set up .venv, then run the whole demo campaign on the embedded gateway
# make test  : set up .venv, then ruff and the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test demo lint bench clean chromium

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,notebook,dask]'
	touch $(STAMP)

setup: $(STAMP)

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

demo: setup
	$(PY) -m cmframe demo

bench: setup
	$(PY) benchmarks/build.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
