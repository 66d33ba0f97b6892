#!/usr/bin/env bash
# A tiny pipeline inside the image (its %test, and the container rehearsal): the demo scene at
# 240 px through `watergee run`: resample, combine, sample, a pixel CNN trained for two epochs,
# every tile classified; then the same run again, which must redo nothing. A minute on one core.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KERAS_HOME=$work/keras
python=$(dirname "$(readlink -f "$(command -v watergee)")")/python
cat >"$work/selftest.yaml" <<YAML
cluster: {workers: 1}
sample: {classes: {0: 2, 1: 1}, class_names: {1: water, 2: land}, ignore: [], quota: 200,
         required: [1, 2], water_class: 1}
train: {epochs: 2}
pipeline:
  tiles: $work/data/tiles.txt
  out: $work/run
  steps: [resample, combine, {sample: {labels: $work/data/truth}}, train, classify]
YAML
watergee info
"$python" -m watergee.demo "$work/data" 240
watergee run --config "$work/selftest.yaml"
ls "$work"/run/tiles/*/*_classes_pixel.tif
watergee -q run --config "$work/selftest.yaml" | grep -q "pipeline complete"
echo "watergee self-test passed"
