# The two commands: `make demo` and `make test`. Both create .venv and install everything on first use.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
DEMO    ?= demo-lakehouse
SCALE   ?= 0.1
PYTEST_ARGS ?=

.PHONY: setup demo test check bench clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[spark,torch,dev,bench]'
	$(VENV)/bin/pipeline-opt setup-jars
	touch $(STAMP)

# The demo's storage showcase writes to a local S3 server (a test harness, not part of the product).
demo: setup
	$(PY) -m tests.harness.with_s3 --bucket lake -- $(VENV)/bin/pipeline-opt demo --out $(DEMO) --scale $(SCALE) \
		--s3 s3://lake/demo

# Static checks first (seconds): ruff, the import contracts (layers, no cycles) and the type check; then the suite.
# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: setup check
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(DEMO) build *.egg-info .pytest_cache
