# Everything the project needs is installed from here; targets are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.watergee-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# slurm-wlm and munge: the single-node Slurm the HPC tests and scripts run on (slurm-up)
APT_PACKAGES := libgdal-dev gdal-bin g++ slurm-wlm munge
SLURM_DIR ?= /tmp/watergee-slurm-$(shell id -u)
export KERAS_HOME ?= $(CURDIR)/.keras
export MPLCONFIGDIR ?= $(CURDIR)/.cache/matplotlib
DEMO ?= demo
PYTEST_ARGS ?=

.PHONY: install system-deps demo test test-all lint format clean slurm-up slurm-down sif container-rehearsal

install: $(STAMP)

system-deps:
	@missing=$$(for package in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "ok installed" \
	    || echo $$package; done); \
	if [ -z "$$missing" ]; then \
	  echo "system packages present (GDAL $$(gdal-config --version), $$(slurmctld -V))"; \
	else \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	      --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip "setuptools>=70.1" wheel
	$(BIN)/pip install -q "numpy>=2.0,<2.5"
	# GDAL's bindings must build against the system library and the installed numpy
	# (its numpy headers first: Debian's python3-numpy puts 1.x headers in the Python include folder)
	$(BIN)/python -c "from osgeo import gdal_array" 2>/dev/null || \
	  CPPFLAGS="-I$$($(BIN)/python -c 'import numpy; print(numpy.get_include())')" \
	  $(BIN)/pip install -q --no-build-isolation --no-cache-dir "GDAL==$$(gdal-config --version)"
	$(BIN)/python -c "from osgeo import gdal_array"
	$(BIN)/pip install -q -e ".[tf,dev]"
	touch $(STAMP)

demo: install
	$(BIN)/python -m watergee.demo $(DEMO)/data
	$(BIN)/watergee run --config configs/demo.yaml --tiles $(DEMO)/data/tiles.txt --out $(DEMO)/run
	@echo "water map:       $(CURDIR)/$(DEMO)/run/products/mosaic/mosaic_class1.tif"
	@echo "its quicklook:   $(CURDIR)/$(DEMO)/run/products/mosaic/mosaic_class1.png"
	@echo "accuracy report: $(CURDIR)/$(DEMO)/run/products/evaluation/evaluation.html"

test: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check watergee tests $(wildcard benchmarks)
	$(BIN)/ruff format --check watergee tests $(wildcard benchmarks)

format: install
	$(BIN)/ruff format watergee tests $(wildcard benchmarks)
	$(BIN)/ruff check --fix watergee tests $(wildcard benchmarks)

# a real single-node Slurm on localhost, all state in SLURM_DIR; then: eval $$(slurm/testbed.sh env DIR)
slurm-up: install
	$(SUDO) slurm/testbed.sh up $(SLURM_DIR)

slurm-down:
	$(SUDO) slurm/testbed.sh down $(SLURM_DIR)

# the Apptainer image, where apptainer exists (an HPC login node); then: apptainer test watergee.sif
sif:
	apptainer build watergee.sif containers/watergee.def

# the image's install in a fresh debootstrap root through chroot, then a tiny classify in it
container-rehearsal:
	$(SUDO) containers/rehearse.sh

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache build *.egg-info
