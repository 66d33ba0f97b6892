#!/usr/bin/env bash
# A tiny classify inside the image (its %test, and the container rehearsal): the demo scene at
# 240 px, a pixel CNN trained for two epochs, every tile classified. A minute or two on one core.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KERAS_HOME=$work/keras
python=$(dirname "$(readlink -f "$(command -v watergee)")")/python
cat >"$work/selftest.yaml" <<'YAML'
cluster: {workers: 1}
sample: {classes: {0: 2, 1: 1}, class_names: {1: water, 2: land}, ignore: [], quota: 200,
         required: [1, 2], water_class: 1}
train: {epochs: 2}
YAML
options=(--config "$work/selftest.yaml")
watergee info
"$python" -m watergee.demo "$work/data" 240
watergee -q resample --tiles "$work/data/tiles.txt" --out "$work/work" "${options[@]}"
watergee -q combine --tiles "$work/data/tiles.txt" --out "$work/work" "${options[@]}"
watergee -q sample --tiles "$work/data/tiles.txt" --out "$work/samples" --work "$work/work" \
    --labels "$work/data/truth" "${options[@]}"
watergee train --samples "$work/samples" --model pixelcnn --out "$work/model" \
    --config "$work/selftest.yaml"
watergee -q classify --tiles "$work/data/tiles.txt" --out "$work/work" --model "$work/model" \
    "${options[@]}"
ls "$work"/work/*/*_classes_pixel.tif
echo "watergee self-test passed"
