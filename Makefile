# The README names these targets; .ci/run calls them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

PYTHON_IMAGE ?= python:3.12-slim
IMAGE        ?= pingpong:latest
ARM_IMAGES   ?= ../shared/tools/arm-images
ARM_TAG      ?= pingpong

.PHONY: secrets wheelhouse image arm-images install go up test test-slow test-swarm test-arm test-browser test-all lint fmt bench clean

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
	$(PY) -m pytest -m "not slow and not swarm and not browser and not arm"

test-slow: install           ## long fault, power-cut and soak scenarios (prints their figures)
	$(PY) -m pytest -m slow -s

test-swarm: install          ## stack.yml on a real Swarm, one node and three (../shared/tools)
	$(PY) -m pytest -m swarm -s

test-arm: install            ## ARM images (make arm-images) playing a mixed-arch game under qemu
	$(PY) -m pytest -m arm -s

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

# Raspberry Pi images with no registry: $(ARM_IMAGES) (../shared/tools) builds the ARM
# base images (local/python:3.11-slim-arm64, -armv7) and a wheelhouse for each target
# (cp311 manylinux wheels, markers evaluated for it: no uvloop on armv7); the project's
# Dockerfile, unchanged, builds on them under qemu. With a registry: docker buildx (README).
arm-images:                  ## $(ARM_TAG):arm64 and $(ARM_TAG):armv7, offline (ARM_IMAGES)
	$(ARM_IMAGES) images
	set -e; for arch in arm64 armv7; do \
	  case $$arch in arm64) platform=linux/arm64;; armv7) platform=linux/arm/v7;; esac; \
	  dir=build/arm/$$arch; rm -rf $$dir; mkdir -p $$dir; \
	  tar -c --exclude=./.venv --exclude=./.git --exclude=./build --exclude=./secrets \
	    --exclude=./wheelhouse --exclude=./test-artifacts . | tar -x -C $$dir; \
	  $(ARM_IMAGES) wheelhouse $$arch $$dir $$dir/wheelhouse; \
	  docker build -q --platform $$platform \
	    --build-arg PYTHON_IMAGE=local/python:3.11-slim-$$arch -t $(ARM_TAG):$$arch $$dir; \
	done

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache wheelhouse
