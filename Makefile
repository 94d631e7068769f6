# Two commands: `make run` starts the assistant, `make test` runs every test. Both set themselves up.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The unit tests run in this many processes (pytest-xdist; each has its own databases); the end-to-end tests,
# which start servers and time them, run one at a time.
TEST_WORKERS ?= $(shell nproc)
# Rasa must not send usage telemetry or crash reports from our machines.
export RASA_TELEMETRY_ENABLED := false

.PHONY: run test train lint unit unit-next-year nlu-report bench bench-nlu clean

# SIGTERM or SIGINT (Ctrl-C) to `bot run` stops the Rasa server, the action server and the staff console.
# `make run ARGS="--model /path/to/model.tar.gz"` serves that model instead of training.
run: $(STAMP)
	$(PY) -m bot.cli run $(ARGS)

test: $(STAMP)
	scripts/ensure-postgres.sh
	scripts/ensure-chromium.sh >/dev/null
	$(PY) -m bot.cli train
	$(PY) -m ruff check bot actions tests bench apps
	$(PY) -m mypy bot actions apps
	$(VENV)/bin/lint-imports --config .importlinter
	$(MAKE) --no-print-directory unit-next-year
	$(PY) -m pytest -q -m e2e

# The unit suite with the machine's clock 400 days ahead: a test that reads the real calendar instead of the
# suite's clock fails here (the suite's clock is set by tests/conftest.py, so nothing else differs from a run on
# today's date). Debian's libfaketime moves Python, SQLite and every process a test starts; the tests that load
# the TensorFlow model (marker "model") move Python's clock alone (time-machine), since TensorFlow's own timed
# waits never return under libfaketime. `make test` runs the unit tests this way only, once.
# The libfaketime part runs in one process: its timed waits also slow pytest-xdist's workers, whose threads wait
# on each other (three staff test files: 35 s in one process, 191 s with two workers, 19 s with two and no
# libfaketime).
unit-next-year: $(STAMP)
	faketime=$$(scripts/ensure-faketime.sh) && \
	LD_PRELOAD=$$faketime FAKETIME="+400d" FAKETIME_DONT_FAKE_MONOTONIC=1 $(PY) -m pytest -q -p no:cacheprovider -p no:xdist -m "not model" tests/unit
	TEST_MACHINE_CLOCK_AHEAD_DAYS=400 $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) -m model tests/unit

train: $(STAMP)
	$(PY) -m bot.cli train

lint: $(STAMP)
	$(PY) -m ruff check bot actions tests bench apps
	$(PY) -m mypy bot actions apps
	$(VENV)/bin/lint-imports --config .importlinter

unit: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not e2e and not model"

nlu-report: $(STAMP)
	$(PY) -m bot.cli nlu-report

# The venv is rebuilt only when the lock file or the project metadata change.
$(STAMP): requirements.lock pyproject.toml
	@python310=$$(scripts/find-python310.sh) || exit 1; \
	if [ ! -x $(PY) ]; then echo "Creating $(VENV) with $$python310"; "$$python310" -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade "pip==24.0"
	$(PY) -m pip install --quiet --no-deps -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

clean:
	rm -rf models results var .pytest_cache .mypy_cache .ruff_cache

bench: $(STAMP)
	$(PY) -m bot.cli train
	$(PY) bench/run.py
	$(PY) bench/turns.py --owners 1 8 --out results/turns.json
	$(PY) bench/nlu.py
	$(PY) bench/guard.py

# Trains the shipped pipeline, its ablations and Rasa's default from scratch and scores them with the
# baselines on the held-out set (about 20 minutes; `ARGS=--quick` skips Rasa's default and calibration).
bench-nlu: $(STAMP)
	$(PY) bench/nlu.py $(ARGS)
