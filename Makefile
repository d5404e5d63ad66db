# The two commands: `make run` (set up and start the server on the embedded
# voice; `make run MODE=ray ENGINE_REPLICAS=2` on a one-machine Ray cluster) and
# `make test` (set up everything the tests need and run them all; the Ray tests
# run inside a loopback-only network namespace, tests/integration/test_ray_namespace.py).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
MODE ?= standalone

.PHONY: run test lint check lock system-deps system-deps-run

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/pip install --quiet -c requirements.lock -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev,qwen,ray,frameworks,asr]'
	touch $@

# The `ray` extra (MODE=ray: engine replicas on Ray Serve), installed by `make run MODE=ray` when missing.
$(VENV)/.ray: $(VENV)/.runtime
	$(BIN)/pip install --quiet -c requirements.lock -e '.[ray]'
	touch $@

RUN_EXTRAS := $(if $(filter ray,$(MODE)),$(VENV)/.ray)

# Debian packages: rubberband-cli (pitch-preserving speed for backends without their own),
# libjemalloc2 (`make run` preloads it: resident memory stays lower under load, loadtest/RESULTS.md)
# and, for the tests, headless Chromium (never a downloaded browser) and
# promtool (extracted alone from the prometheus package to lint metrics config).
RUN_PACKAGES := rubberband-cli libjemalloc2
TEST_PACKAGES := chromium coturn iproute2

system-deps-run:
	@missing=""; for p in $(RUN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

system-deps: system-deps-run
	@missing=""; for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

$(BIN)/promtool: $(BIN)/python
	cd $(VENV) && (apt-get download prometheus || (apt-get update && apt-get download prometheus)) && \
		dpkg-deb --fsys-tarfile prometheus_*.deb | tar -xO ./usr/bin/promtool > bin/promtool && \
		chmod +x bin/promtool && rm -f prometheus_*.deb

run: system-deps-run $(VENV)/.runtime $(RUN_EXTRAS)
	LD_PRELOAD=$$(ls /usr/lib/*/libjemalloc.so.2 | head -n 1) HOST=$(HOST) PORT=$(PORT) MODE=$(MODE) $(BIN)/media-server serve

# Pipecat in a virtualenv of its own: every release pins protobuf<7, below the one requirements.lock has.
PIPECAT_VENV := .venv-pipecat
$(PIPECAT_VENV)/bin/python:
	$(PYTHON) -m venv $(PIPECAT_VENV)
	$(PIPECAT_VENV)/bin/pip install --quiet 'pipecat-ai[cartesia,openai]==1.14.0'

test: system-deps $(VENV)/.dev $(BIN)/promtool $(PIPECAT_VENV)/bin/python
	PIPECAT_PYTHON=$(PIPECAT_VENV)/bin/python $(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

# Refresh requirements.lock: resolve the newest allowed versions in a scratch venv.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[dev,qwen,ray,frameworks,asr,gpucheck]'
	.lock-venv/bin/pip freeze --exclude-editable > requirements.lock
	rm -rf .lock-venv
