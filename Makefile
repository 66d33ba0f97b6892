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
	$(BIN)/watergee resample --tiles $(DEMO)/data/tiles.txt --out $(DEMO)/work --config configs/demo.yaml
	$(BIN)/watergee combine  --tiles $(DEMO)/data/tiles.txt --out $(DEMO)/work --config configs/demo.yaml
	$(BIN)/watergee indices  --tiles $(DEMO)/data/tiles.txt --out $(DEMO)/work --config configs/demo.yaml
	$(BIN)/watergee superpixel --tiles $(DEMO)/data/tiles.txt --out $(DEMO)/work --config configs/demo.yaml
	$(BIN)/watergee sample --tiles $(DEMO)/data/tiles.txt --out $(DEMO)/samples --work $(DEMO)/work \
	    --labels $(DEMO)/data/truth --config configs/demo.yaml
	$(BIN)/watergee sample validate $(DEMO)/samples
	$(BIN)/watergee train --samples $(DEMO)/samples --model pixelcnn --out $(DEMO)/models/pixelcnn \
	    --config configs/demo.yaml
	$(BIN)/watergee classify --tiles $(DEMO)/data/tiles.txt --out $(DEMO)/work \
	    --model $(DEMO)/models/pixelcnn --config configs/demo.yaml
	$(BIN)/watergee classify --tiles $(DEMO)/data/tiles.txt --out $(DEMO)/work \
	    --model $(DEMO)/models/pixelcnn --mode superpixel --config configs/demo.yaml
	$(BIN)/watergee clip --tiles $(DEMO)/data/tiles.txt --out $(DEMO)/work --config configs/demo.yaml
	$(BIN)/watergee merge --tiles $(DEMO)/data/tiles.txt --out $(DEMO)/products --work $(DEMO)/work \
	    --input clipped --config configs/demo.yaml
	echo "$(CURDIR)/$(DEMO)/products/mosaic/mosaic.tif" > $(DEMO)/products/mosaic.txt
	$(BIN)/watergee sieve --tiles $(DEMO)/products/mosaic.txt --out $(DEMO)/products --config configs/demo.yaml
	$(BIN)/watergee extract --tiles $(DEMO)/products/mosaic.txt --out $(DEMO)/products --class 1 \
	    --input sieved --config configs/demo.yaml
	# the known water goes through the same clip and merge, then the mosaic is scored against it
	$(BIN)/watergee clip --tiles $(DEMO)/data/truth.txt --out $(DEMO)/truth --config configs/demo.yaml
	$(BIN)/watergee merge --tiles $(DEMO)/data/truth.txt --out $(DEMO)/products --work $(DEMO)/truth \
	    --input clipped --name truth --config configs/demo.yaml
	$(BIN)/watergee evaluate --classified $(DEMO)/products/mosaic/mosaic_sieved.tif \
	    --reference $(DEMO)/products/truth/truth.tif --out $(DEMO)/products --config configs/demo.yaml
	@echo "accuracy report: $(CURDIR)/$(DEMO)/products/evaluation/evaluation.html"
	@echo "demo outputs: $(DEMO)/work (rasters), $(DEMO)/samples, $(DEMO)/models, $(DEMO)/products (mosaic, sieved, water)"

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
