#!/bin/bash
# measure-thresholds.sh - the measurements behind the accuracy tests' thresholds, on the engine
# as built now: tests/test_accuracy.c's protocol (one epoch over the first 10,000 training
# images, all 10,000 test images) for the paper recipe 4-bit and FP32 and the fast recipe,
# seeds 0-4, then the page's short run (tests/browser/page.test.mjs) in Chromium, seeds 0-4.
# The thresholds beside those tests cite this output (results/logs/thresholds.txt).
# Usage: scripts/measure-thresholds.sh [JOBS] > results/logs/thresholds.txt   (after make build wasm)
# PARTS=native or PARTS=page measures one part only.
set -euo pipefail
JOBS=${1:-2}
Q4=${Q4:-build/q4train}
echo "# $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
PARTS=${PARTS:-native,page}
if [[ $PARTS == *native* ]]; then
echo "# one epoch over 10,000 training images, 10,000 test images (tests/test_accuracy.c); the binary's own ISA"
one() { # variant seed settings...
  local name=$1 seed=$2; shift 2
  local line
  line=$("$Q4" --data data --epochs 1 --train-limit 10000 --threads 1 --seed "$seed" --quiet "$@" | grep -o 'best test accuracy [0-9.]*%')
  echo "$name seed $seed: ${line#best }"
}
export -f one; export Q4
for seed in 0 1 2 3 4; do
  echo "paper-4bit $seed --recipe paper"
  echo "paper-fp32 $seed --recipe paper --fp32"
  echo "fast-4bit $seed --recipe fast --tta none"
done | xargs -P "$JOBS" -L 1 bash -c 'one "$@"' _ | sort
fi
if [[ $PARTS == *page* ]]; then
echo "# the page's short run in Chromium (tests/browser/page.test.mjs, SHORT_RUN), seeds 0-4"
node scripts/measure-page-run.mjs
fi
