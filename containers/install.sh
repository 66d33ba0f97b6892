#!/usr/bin/env bash
# Installs watergee with its system packages into a Debian (bookworm) or Ubuntu root file
# system, as root: the one install path of the Apptainer image (%post of watergee.def) and of
# `make container-rehearsal` (run through chroot in a fresh debootstrap root).
#
#   containers/install.sh SOURCE_FOLDER
#
# WATERGEE_PREFIX   where the virtual environment goes (default /opt/watergee)
# WATERGEE_TF       the TensorFlow requirement (default tensorflow[and-cuda]: the CUDA user-space
#                   libraries come as wheels, and `apptainer exec --nv` binds the host's driver;
#                   tensorflow-cpu for a CPU-only image)
set -euo pipefail
source=$(cd "${1:?usage: install.sh SOURCE_FOLDER}" && pwd)
prefix=${WATERGEE_PREFIX:-/opt/watergee}
tf=${WATERGEE_TF:-tensorflow[and-cuda]}
export DEBIAN_FRONTEND=noninteractive

apt-get update -q
apt-get install -y -q --no-install-recommends \
    python3 python3-venv python3-dev libgdal-dev gdal-bin g++ ca-certificates
python3 -m venv --clear "$prefix"
"$prefix/bin/pip" install -q -U pip "setuptools>=70.1" wheel
"$prefix/bin/pip" install -q "numpy>=2.0,<2.5"
# GDAL's bindings build against the system library and this environment's numpy, never the
# headers of Debian's numpy 1.x (python3-numpy, pulled in by gdal-bin) that sit in the Python
# include folder and would come first: bindings built on them fail under numpy 2
numpy_include=$("$prefix/bin/python" -c "import numpy; print(numpy.get_include())")
CPPFLAGS="-I$numpy_include" "$prefix/bin/pip" install -q --no-build-isolation --no-cache-dir \
    "GDAL==$(gdal-config --version)"
"$prefix/bin/python" -c "from osgeo import gdal_array"
"$prefix/bin/pip" install -q --no-cache-dir "$source" "$tf"
ln -sf "$prefix/bin/watergee" /usr/local/bin/watergee

# the compiler was for the GDAL bindings only
apt-get purge -y -q g++ python3-dev && apt-get autoremove -y -q
apt-get clean && rm -rf /var/lib/apt/lists/*
watergee --version
