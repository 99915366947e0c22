#!/bin/bash
# measure-integer.sh - integer evaluation against float evaluation of the same models (issue 26):
# tests/test_accuracy.c's protocol (one epoch over the first 10,000 training images, all 10,000
# test images), the paper recipe and the fast recipe, seeds 0-4: each run exports its model,
# which is then evaluated both ways. test_accuracy's MAX_INTEGER_GAP cites this output
# (results/integer/protocol.txt); the committed models of results/ are measured by `make
# integer-accuracy`.
# Usage: scripts/measure-integer.sh [JOBS] > results/integer/protocol.txt   (after make build)
set -euo pipefail
JOBS=${1:-2}
Q4=${Q4:-build/q4train}
echo "# $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernels $(build/q4bench --kernels)"
echo "# one epoch over 10,000 training images; test accuracy on 10,000 test images in floats, then in integer arithmetic"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
one() { # name seed settings...
  local name=$1 seed=$2; shift 2
  local model="$DIR/$name-$seed.q4"
  "$Q4" --data data --epochs 1 --train-limit 10000 --threads 1 --seed "$seed" --quiet --export "$model" "$@" > /dev/null
  local f i
  f=$("$Q4" --data data --eval-model "$model" --threads 1 | grep -o 'test accuracy [0-9.]*% ([0-9/]*)')
  i=$("$Q4" --data data --eval-model "$model" --threads 1 --integer | grep -o 'test accuracy [0-9.]*% ([0-9/]*)')
  echo "$name seed $seed: float ${f#test accuracy }, integer ${i#test accuracy }"
}
export -f one; export Q4; export DIR=$dir
for seed in 0 1 2 3 4; do
  echo "paper-4bit $seed --recipe paper"
  echo "fast-4bit $seed --recipe fast --tta none"
done | xargs -P "$JOBS" -L 1 bash -c 'one "$@"' _ | sort
