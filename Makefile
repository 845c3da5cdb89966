# Frontdesk: `make run` and `make test` are the whole set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Tests write bytecode even where the environment says not to (PYTHONDONTWRITEBYTECODE=1): without it
# every test process and every service a test starts compiles the project again, and pytest rewrites
# every test module's asserts again (about 3.5 s of CPU per process). __pycache__ is git-ignored.
PYTEST := PYTHONDONTWRITEBYTECODE= $(PY) -m pytest

.PHONY: install browser run test test-fast check lint typecheck bench faults fuzz clean compose-test compose-cluster-test

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Start nats-server (JetStream), the sandbox and every service; Ctrl-C stops them all.
run: install
	$(PY) -m services.devstack

## Debian's chromium for the browser tests (the console's), installed when missing: CI starts fresh.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else sudo apt-get install -y -q chromium; fi; }

## The whole test suite against real nats-server, SMTP and HTTP, in TEST_WORKERS processes (pytest-xdist):
## tests mostly wait on servers, sockets and children, so more processes than cores pay; each test has its
## own nats-server on a random port. TEST_WORKERS=0 runs it in this process.
## Work stealing: a few tests take 5-10 s (the browsers, property tests over sockets); handed out in fixed
## chunks they left the other processes idle at the end (111-132 s against 86 s on this 2-core machine).
TEST_WORKERS ?= 4
test: install browser
	$(PYTEST) -q -m "not slow and not compose" -n $(TEST_WORKERS) --dist worksteal

check: lint typecheck

lint: install
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/ruff format --check services tests bench
	$(VENV)/bin/hadolint deploy/Dockerfile
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose*.yaml

typecheck: install
	$(VENV)/bin/mypy --strict services tests bench

## Throughput and latency as ratios against bare baselines measured in the same run.
bench: install
	$(PY) -m bench

## Kill things mid-stream and count every message; a bounded fuzz run of the email parser first.
# In the fault suite the fuzz run is bounded by count (about a minute here) rather than by time, so a
# slower CI machine does the same amount of work.
faults: install
	$(MAKE) fuzz FUZZ_TIME=180 FUZZ_FLAGS="-seed=1 -runs=30000"
	$(PYTEST) -q -s -m slow tests/faults tests/cluster

## Coverage-guided fuzzing (atheris) of intake_email's parse-and-build path for FUZZ_TIME seconds,
## from seeds written afresh to .data/fuzz; a crash prints its input and stops with a non-zero exit.
FUZZ_TIME ?= 60
FUZZ_FLAGS ?=
fuzz: install
	$(PY) -m tests.fuzz -max_total_time=$(FUZZ_TIME) $(FUZZ_FLAGS)

## The dev stack under a real Docker engine (../shared/tools/docker-local.sh, started and stopped here if
## it is not running): build, up, the issue's scenarios over loopback ports, one accounting line, down -v.
compose-test: install
	$(PYTEST) -q -s -m compose tests/compose/test_stack.py

## On demand: deploy/compose.cluster.yaml (three NATS, two replicas per service), the stream leader killed
## mid-stream; prints sent / accepted / refused-and-resent / tickets / lost / doubled.
compose-cluster-test: install
	$(PYTEST) -q -s -m compose tests/compose/test_cluster.py

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
