# One entry point for every role. `make demo` runs the whole grading flow; `make test` the suite.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
PY := $(BIN)/python
# nbgrader calls `alembic` from PATH when it creates a gradebook.
export PATH := $(BIN):$(PATH)
ASSIGNMENTS := $(notdir $(wildcard source/*))

.PHONY: env sandbox postgres release demo grade roster test bench clean-grading report bundle

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

env: $(VENV)/.installed

## sandbox: install bubblewrap, which grading kernels run in (grading/sandbox.py), when missing
sandbox:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq bubblewrap; \
	  else sudo apt-get install -y -qq bubblewrap; fi; }
	@command -v bwrap >/dev/null || { echo "bubblewrap is required to grade (apt-get install bubblewrap)"; exit 1; }

## postgres: install (Debian's postgresql package) and start a local PostgreSQL server when
## needed, with the role and database of PG_URL; the tests and concurrent graders use it
PG_URL ?= postgresql+psycopg://interp:interp@127.0.0.1:5432/interp
postgres:
	@PG_URL='$(PG_URL)' bash grading/postgres.sh

## release: regenerate release/ from source/ for every assignment
release: env
	@for a in $(ASSIGNMENTS); do $(BIN)/nbgrader generate_assignment $$a --force --log-level=WARN || exit 1; done

## demo: release, autograde the bundled example submissions, feedback, score table
demo: release sandbox
	INTERPKIT_ALLOW_RANDOM_WEIGHTS=1 $(PY) -m grading.demo

## grade: autograde every submitted student of A that needs it, in parallel on Dask workers
## (python -m grading.grade_all; ARGS for more, e.g. ARGS="--force --feedback --workers 2")
grade: env sandbox
	@test -n "$(A)" || { echo "usage: make grade A=<assignment> [ARGS=...]  (one of: $(ASSIGNMENTS))" >&2; exit 2; }
	$(PY) -m grading.grade_all $(A) $(ARGS)

## roster: students' names and ids from an LMS export (Canvas or Moodle CSV) into the gradebook
## (python -m grading.roster): make roster R=export.csv [ARGS="--id-column 'SIS User ID'"]
roster: env
	@test -n "$(R)" || { echo "usage: make roster R=<Canvas or Moodle CSV export> [ARGS=...]" >&2; exit 2; }
	$(PY) -m grading.roster "$(R)" $(ARGS)

## test: the whole test suite (CI runs exactly this); a local PostgreSQL server for the
## gradebook tests (started by `make postgres`)
test: env sandbox postgres
	INTERPKIT_ALLOW_RANDOM_WEIGHTS=1 OMP_NUM_THREADS=1 INTERP_TEST_POSTGRES_URL='$(PG_URL)' $(PY) -m pytest -n 2 --durations=15 tests

## bench: speed figures, as ratios against baselines measured in the same run
bench: env
	INTERPKIT_ALLOW_RANDOM_WEIGHTS=1 $(PY) bench/bench_gradcam.py
	INTERPKIT_ALLOW_RANDOM_WEIGHTS=1 $(PY) bench/bench_featureviz.py
	INTERPKIT_ALLOW_RANDOM_WEIGHTS=1 OMP_NUM_THREADS=1 $(PY) bench/bench_autograde.py
	INTERPKIT_ALLOW_RANDOM_WEIGHTS=1 OMP_NUM_THREADS=1 $(PY) bench/bench_grade_all.py

## report: grades of assignment A (nbgrader export, CSV) and its per-part class report (table and
## figure) in reports/: make report A=L2A2_gradcam
report: env
	@test -n "$(A)" || { echo "usage: make report A=<assignment>  (one of: $(ASSIGNMENTS))" >&2; exit 2; }
	mkdir -p reports
	$(BIN)/nbgrader export --assignment=$(A) --to=reports/$(A)_grades.csv --log-level=WARN
	$(PY) -m grading.class_report $(A) --out reports

## bundle: the folder students receive (release notebooks, interpkit, requirements, README) and
## its zip, in dist/; refuses while release/ is stale
bundle: env
	$(PY) -m grading.bundle --zip --force

## clean-grading: remove the demo's submitted/, autograded/, feedback/ and gradebook
clean-grading:
	rm -rf submitted autograded feedback gradebook.db
