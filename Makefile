# The README names these targets; .ci/run calls them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

PYTHON_IMAGE ?= python:3.12-slim
IMAGE        ?= pingpong:latest

.PHONY: secrets wheelhouse image install go up test test-slow test-swarm test-browser test-all lint fmt bench clean

install: $(STAMP)            ## a virtualenv with pingpong and its dev tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*; touch $@

go:                          ## Go for the bench's Go original (Debian's golang-go, when root)
	@command -v go >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null; } \
	  || echo "make: no Go toolchain: the bench will not measure the Go original (install Go)"

up: install                  ## the whole game locally: then curl localhost:3000
	$(VENV)/bin/pingpong up

test: install go             ## unit + integration tests (a few minutes)
	$(PY) -m pytest -m "not slow and not swarm and not browser"

test-slow: install           ## long fault and soak scenarios (prints their figures)
	$(PY) -m pytest -m slow -s

test-swarm: install          ## deploy stack.yml on a real Docker Swarm (../shared/tools/swarm-up)
	$(PY) -m pytest -m swarm -s

test-browser: install        ## the scoreboard page in headless Chromium
	$(PY) -m pytest -m browser

test-all: install go         ## everything CI runs
	$(PY) -m pytest

lint: install                ## ruff and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

wheelhouse: install         ## wheels of pingpong and its dependencies (this machine's Python)
	$(PY) -m pip wheel -q --wheel-dir wheelhouse .
	$(PY) -m pip download -q --dest wheelhouse --only-binary=:all: 'setuptools>=77'

secrets: install             ## NATS passwords per role for stack.yml (./secrets, 0700)
	$(VENV)/bin/pingpong auth-secrets secrets

image: wheelhouse            ## the one image for every service (IMAGE, PYTHON_IMAGE)
	docker build --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) -t $(IMAGE) .

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache wheelhouse
