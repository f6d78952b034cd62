# The two commands: `make demo` and `make test`. Both create .venv and install everything on first use.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
DEMO    ?= demo-lakehouse
SCALE   ?= 1
PYTEST_ARGS ?=
# The second Spark line: Spark 3.5 + Delta 3.2 (Scala 2.12 jars), as on Databricks Runtime 15.4 LTS, with that
# runtime's pandas, numpy, pyarrow, matplotlib and PyYAML and the lowest deltalake install_requires admits.
VENV35  ?= build/venv-spark35
PY35    := $(VENV35)/bin/python
STAMP35 := $(VENV35)/.installed
RUNTIME35 := conf/runtimes/dbr-15.4-lts.txt
# The runtime's Python: its pandas 1.5.3 has no wheel for a newer one.
PYTHON35 ?= python3.11
SPARK35_PACKAGES := delta-spark==3.2.0 deltalake==1.2.0 pytest pytest-timeout chispa
# Health, compaction with verification and undo, VACUUM, partitioning --apply, schedule, catalog names and the
# loader's Spark-written fixtures; slow and cluster tests stay on the main line.
SPARK35_TESTS ?= tests/test_spark.py tests/tables/test_compact.py tests/tables/test_verify.py \
	tests/tables/test_vacuum.py tests/tables/test_partitioning.py tests/tables/test_health.py \
	tests/tables/test_schedule.py tests/tables/test_catalog_names.py tests/loader/test_rows.py \
	tests/test_spark_lines.py

.PHONY: setup demo test test-spark35 check bench clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade 'pip>=25'  # the runtime-pin test needs pip's --dry-run for another platform
	$(PY) -m pip install -q -e '.[spark,torch,dev,bench]'
	$(VENV)/bin/pipeline-opt setup-jars
	touch $(STAMP)

# The demo's storage showcase writes to a local S3 server (a test harness, not part of the product).
demo: setup
	$(PY) -m tests.harness.with_s3 --bucket lake -- $(VENV)/bin/pipeline-opt demo --out $(DEMO) --scale $(SCALE) \
		--s3 s3://lake/demo

# Static checks first (seconds): ruff, the import contracts (layers, no cycles) and the type check; then the suite,
# in TEST_WORKERS processes, each test file in one of them with its own Spark session (much of a Spark test is
# waiting on the JVM or a subprocess, so two share two cores well); TEST_WORKERS=0 runs it in this process.
# pytest exits 5 when it collects no test; that is not a failure of the suite.
TEST_WORKERS ?= 2
test: setup check
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS); \
		rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

# The Spark 3.5 line in its own venv (make test covers Spark 4.2). torch only holds the loader tests' batches, so it
# is borrowed from the main venv: torch and what it requires, linked into one folder that a .pth line puts after
# this venv's own packages (nothing else of the main venv is visible).
test-spark35: $(STAMP35)
	$(PY35) -m pytest -p no:cacheprovider -m "not slow and not cluster" $(SPARK35_TESTS) $(PYTEST_ARGS); \
		rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

$(STAMP35): setup.cfg $(RUNTIME35) | $(STAMP)  # order-only: an older main venv is borrowed from, never rebuilt
	test -x $(PY35) || $(PYTHON35) -m venv $(VENV35)
	rm -rf $(VENV35)/lib/python3*/site-packages/zz_*.pth $(VENV35)/borrowed
	grep -E '^(pyspark|numpy|pandas|pyarrow|matplotlib|pyyaml)==' $(RUNTIME35) > $(VENV35)/pins.txt
	$(PY35) -m pip install -q --upgrade pip
	$(PY35) -m pip install -q -c $(VENV35)/pins.txt -e . $(SPARK35_PACKAGES)
	$(PY) -m tests.harness.borrow $(VENV35)/borrowed torch
	cd $(VENV35) && pwd -P | sed 's|$$|/borrowed|' > \
		"$$($(abspath $(PY35)) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz_borrowed.pth"
	touch $(STAMP35)

check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(DEMO) build *.egg-info .pytest_cache
