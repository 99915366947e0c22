#!/usr/bin/env bash
# bench-mpi.sh - one process against mpirun's ranks on this machine (shared-memory transport),
# interleaved: training images/s, evaluation seconds, and for the ranks the time per step spent
# combining and the megabytes each rank sends per step. The fast recipe on the first 6400
# training images (100 steps of 64) and 2000 test images, ROUNDS rounds; prints each run and
# the medians. Run it on an idle machine (make bench-mpi).
# Usage: scripts/bench-mpi.sh [rounds] [data dir]
set -euo pipefail
ROUNDS=${1:-3}
DATA=${2:-data}
OUT=build/bench-mpi
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(--data "$DATA" --recipe fast --train-limit 6400 --test-limit 2000 --epochs 1 --seed 1 --tta none --quiet)
configs=(
  "1x2 whole batch|build/q4train --threads 2"
  "1x2 micro 8|build/q4train --threads 2 --micro-batch 8"
  "2x1 micro 8|mpirun -n 2 build/q4train-mpi --threads 1 --micro-batch 8"
  "2x1 micro 16|mpirun -n 2 build/q4train-mpi --threads 1 --micro-batch 16"
  "2x1 micro 32|mpirun -n 2 build/q4train-mpi --threads 1 --micro-batch 32"
)
echo "# $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | xargs) (family $(grep -m1 "cpu family" /proc/cpuinfo | cut -d: -f2 | xargs), model $(grep -m1 "^model\s" /proc/cpuinfo | cut -d: -f2 | xargs)), $(nproc) cores, kernels $(build/q4bench --kernels); $(mpirun --version | head -1); $(date -u +%F)"
printf '%-14s %5s %9s %8s %12s %10s\n' config round "train/s" "eval s" "combine ms" "MB/step"
results=$OUT/results.txt
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  for c in "${configs[@]}"; do
    name=${c%%|*}
    read -r -a cmd <<<"${c#*|}"
    rm -f "$OUT/log.jsonl"
    "${cmd[@]}" "${common[@]}" --log "$OUT/log.jsonl" >"$OUT/out.txt" 2>&1 || { cat "$OUT/out.txt"; exit 1; }
    read -r rate eval <<<"$(node -e '
      const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
      const e = lines.find((l) => l.epoch === 1); console.log(e.images_per_second.toFixed(1), e.eval_seconds.toFixed(2));' "$OUT/log.jsonl")"
    combine=$(sed -n 's/^combining.* \([0-9.]*\) ms per step; \([0-9.]*\) MB sent.*/\1 \2/p' "$OUT/out.txt")
    ms=${combine% *} mb=${combine#* }
    printf '%-14s %5d %9s %8s %12s %10s\n' "$name" "$round" "$rate" "$eval" "${ms:--}" "${mb:--}"
    echo "$name|$rate|$eval|${ms:--}|${mb:--}" >>"$results"
  done
done
echo "# medians of $ROUNDS rounds"
node -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split("|"));
  const median = (xs) => { const s = xs.slice().sort((a, b) => a - b); return s[(s.length - 1) >> 1]; };
  for (const name of [...new Set(rows.map((r) => r[0]))]) {
    const mine = rows.filter((r) => r[0] === name), col = (i) => mine[0][i] === "-" ? "-" : median(mine.map((r) => +r[i]));
    console.log(`${name.padEnd(14)} median ${String(col(1)).padStart(7)} img/s  eval ${col(2)} s  combine ${col(3)} ms/step  ${col(4)} MB/step`);
  }' "$results"
