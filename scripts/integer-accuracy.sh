#!/bin/bash
# integer-accuracy.sh - `make integer-accuracy`: every exported model committed under results/
# evaluated on the 10,000 test images in floats and in integer arithmetic (q4train --eval-model,
# then with --integer), side by side: the figures behind the README's integer evaluation table
# and test-cli's 0.1-point check (issue 26).
# Usage: scripts/integer-accuracy.sh [MODEL...] > results/integer/models.txt
set -euo pipefail
Q4=${Q4:-build/q4train}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(results/headline/*.q4 results/integer/*.q4)
echo "# $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernels $(build/q4bench --kernels)"
echo "# model: test accuracy in floats, in integer arithmetic (q4train --eval-model M [--integer]), and the difference in points"
for m in "${models[@]}"; do
  f=$("$Q4" --data data --eval-model "$m" --threads 1 | grep -o 'test accuracy [0-9.]*% ([0-9/]*)' | cut -d' ' -f3-)
  i=$("$Q4" --data data --eval-model "$m" --threads 1 --integer | grep -o 'test accuracy [0-9.]*% ([0-9/]*)' | cut -d' ' -f3-)
  d=$(node -e 'const [f,i]=process.argv.slice(1).map(s=>parseFloat(s));console.log((i-f>=0?"+":"")+(i-f).toFixed(2))' "$f" "$i")
  echo "$m: float $f, integer $i, $d"
done
