#!/usr/bin/env bash
# test_mpi.sh - data-parallel training over Open MPI (build/q4train-mpi) against one process
# (build/q4train) with the same settings and micro-batches, on real CIFAR-10 (make data):
# 2 ranks write the same checkpoint and exported model byte for byte and the same run-card
# fingerprints; rank 0 alone writes files; a rank killed with SIGKILL ends the job with a clear
# message and leaves the last checkpoint intact, which then resumes in one process and on 3 ranks
# to the same bytes as the uninterrupted run; a setting that cannot be split is refused, and so
# are ranks that would start from other data or settings than rank 0's.
# The run: the fast recipe, 524 training images (8 batches of 64, then one of 12: micro-batches
# of 8 make it 8 + 4, so with 3 ranks rank 0 holds none of that step), 2 epochs.
# Usage: tests/test_mpi.sh [q4train] [q4train-mpi] [data dir]     Exits non-zero on any failure.
set -u
Q4=${1:-build/q4train}
MPI=${2:-build/q4train-mpi}
DATA=${3:-data}
OUT=build/test-mpi
rm -rf "$OUT" && mkdir -p "$OUT"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 # CI runs as root
export OMPI_MCA_rmaps_base_oversubscribe=1                         # 3 ranks on 2 cores
run_ranks() { mpirun --oversubscribe -n "$1" "${@:2}"; }
common=(--data "$DATA" --recipe fast --train-limit 524 --test-limit 100 --epochs 2 --seed 3 --micro-batch 8 --quiet)

# ---- one process: the reference
"$Q4" "${common[@]}" --threads 1 --checkpoint "$OUT/one.ckpt" --export "$OUT/one.q4" --card "$OUT/one.json" \
  >"$OUT/one.txt" 2>&1 || fail "one process: $(cat "$OUT/one.txt")"

# the fingerprints of the first steps and of every epoch, and the claims, of a card
fingerprints() { node -e '
  const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(JSON.stringify([c.steps, c.epochs.map(({ step, sha256, loss, test_accuracy }) => [step, sha256, loss, test_accuracy])]));' "$1"; }

same_as_one() { # what, files (checkpoint, export[, card])
  local what=$1
  if ! cmp -s "$OUT/one.ckpt" "$2"; then fail "$what: the checkpoint differs from one process's"; return; fi
  if ! cmp -s "$OUT/one.q4" "$3"; then fail "$what: the exported model differs from one process's"; return; fi
  if [ -n "${4:-}" ] && [ "$(fingerprints "$OUT/one.json")" != "$(fingerprints "$4")" ]; then
    fail "$what: the run card's fingerprints differ from one process's"; return
  fi
  pass "$what: checkpoint and exported model byte-identical to one process's${4:+, run-card fingerprints identical}"
}

# ---- 2 ranks, one thread each (3 ranks: the resume below trains epoch 2 on 3, its last step with a
# rank holding no micro-batch, its evaluation split three ways; a full 3-rank run would add 13 s)
for n in 2; do
  run_ranks $n "$MPI" "${common[@]}" --threads 1 --checkpoint "$OUT/r$n.ckpt" --export "$OUT/r$n.q4" --card "$OUT/r$n.json" \
    --log "$OUT/r$n.jsonl" >"$OUT/r$n.txt" 2>&1 || { fail "$n ranks: $(cat "$OUT/r$n.txt")"; continue; }
  same_as_one "$n ranks" "$OUT/r$n.ckpt" "$OUT/r$n.q4" "$OUT/r$n.json"
  lines=$(wc -l <"$OUT/r$n.jsonl")
  [ "$lines" -eq 3 ] && pass "$n ranks: one log, written once (3 lines)" || fail "$n ranks: the log has $lines lines, not 3"
  grep -q "^combining ($n processes): .* ms per step; .* MB sent per step" "$OUT/r$n.txt" ||
    fail "$n ranks: no line on combining: $(cat "$OUT/r$n.txt")"
  ls "$OUT"/r$n.*.tmp.* >/dev/null 2>&1 && fail "$n ranks: temporary files left"
done

# ---- a rank killed: the job ends with a clear message, the last checkpoint is intact
rm -f "$OUT/killed.ckpt"
run_ranks 2 "$MPI" "${common[@]}" --threads 1 --checkpoint "$OUT/killed.ckpt" >"$OUT/killed.txt" 2>&1 &
job=$!
for _ in $(seq 1 600); do [ -f "$OUT/killed.ckpt" ] && break; sleep 0.1; done # epoch 1 saved
victim=""
for pid in $(pgrep -f -- "$MPI"); do
  [ "$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')" = 1 ] && victim=$pid
done
if [ -z "$victim" ] || [ ! -f "$OUT/killed.ckpt" ]; then
  fail "rank killed: no checkpoint after epoch 1 or no rank 1 to kill"
  wait $job
else
  kill -9 "$victim"
  wait $job
  rc=$?
  if [ $rc -eq 0 ]; then fail "rank killed: mpirun exited 0"
  elif ! grep -q "rank 1 .* exited on signal 9 (Killed)" "$OUT/killed.txt"; then fail "rank killed: no clear message: $(cat "$OUT/killed.txt")"
  else pass "rank 1 killed with SIGKILL in epoch 2: mpirun exits $rc: $(grep -o "process rank 1 .* (Killed)" "$OUT/killed.txt")"; fi
  # resumed in one process and on 3 ranks: the uninterrupted run's bytes
  cp "$OUT/killed.ckpt" "$OUT/resume1.ckpt" && cp "$OUT/killed.ckpt" "$OUT/resume3.ckpt"
  "$Q4" --data "$DATA" --resume "$OUT/resume1.ckpt" --checkpoint "$OUT/resume1.ckpt" --export "$OUT/resume1.q4" \
    --threads 1 --quiet >"$OUT/resume1.txt" 2>&1 || fail "resumed in one process: $(cat "$OUT/resume1.txt")"
  same_as_one "the killed run's checkpoint resumed in one process" "$OUT/resume1.ckpt" "$OUT/resume1.q4"
  run_ranks 3 "$MPI" --data "$DATA" --resume "$OUT/resume3.ckpt" --checkpoint "$OUT/resume3.ckpt" \
    --export "$OUT/resume3.q4" --threads 1 --quiet >"$OUT/resume3.txt" 2>&1 || fail "resumed on 3 ranks: $(cat "$OUT/resume3.txt")"
  same_as_one "the killed run's checkpoint (2 ranks) resumed on 3 ranks" "$OUT/resume3.ckpt" "$OUT/resume3.q4"
fi

# ---- --help on 2 ranks: printed once (by rank 0), exit 0
run_ranks 2 "$MPI" --help >"$OUT/help.txt" 2>&1
rc=$?
usages=$(grep -c "^usage: mpirun -n N q4train-mpi" "$OUT/help.txt")
[ $rc -eq 0 ] && [ "$usages" = 1 ] && pass "--help on 2 ranks: one usage, exit 0" ||
  fail "--help on 2 ranks: exit $rc, $usages usages: $(head -5 "$OUT/help.txt")"

# ---- refused: several ranks without micro-batches (nothing would fix the order of the sums)
run_ranks 2 "$MPI" --data "$DATA" --train-limit 128 --epochs 1 --threads 1 --checkpoint "$OUT/refused.ckpt" \
  >"$OUT/refused.txt" 2>&1 && fail "2 ranks without --micro-batch: exit status 0"
if grep -q "rank [01] of 2): data-parallel training needs micro-batches" "$OUT/refused.txt" && [ ! -e "$OUT/refused.ckpt" ]; then
  pass "2 ranks without --micro-batch: refused, nothing written: $(grep -m1 -o "data-parallel training needs.*" "$OUT/refused.txt" | cut -c1-90)"
else
  fail "2 ranks without --micro-batch: $(cat "$OUT/refused.txt")"
fi

# ---- refused: ranks that do not start from the same data or settings (MPMD: each rank its own options)
mkdir -p "$OUT/other/cifar-10-batches-bin"
for f in "$DATA"/cifar-10-batches-bin/*; do ln -sf "$(realpath "$f")" "$OUT/other/cifar-10-batches-bin/"; done
rm "$OUT/other/cifar-10-batches-bin/data_batch_1.bin"
cp "$DATA/cifar-10-batches-bin/data_batch_1.bin" "$OUT/other/cifar-10-batches-bin/"
printf '\x07' | dd of="$OUT/other/cifar-10-batches-bin/data_batch_1.bin" bs=1 seek=5000 conv=notrunc 2>/dev/null # one pixel
short=(--recipe fast --train-limit 128 --test-limit 100 --epochs 1 --micro-batch 8 --threads 1 --quiet)
expect_start_refused() { # what, expected words, rank 1's options...
  local what=$1 words=$2; shift 2
  mpirun --oversubscribe -n 1 "$MPI" --data "$DATA" "${short[@]}" --checkpoint "$OUT/start.ckpt" : \
    -n 1 "$MPI" "$@" "${short[@]}" >"$OUT/start.txt" 2>&1 && fail "$what: exit status 0"
  if grep -q "rank 0 of 2): rank 1 starts from other $words" "$OUT/start.txt" && [ ! -e "$OUT/start.ckpt" ]; then
    pass "$what: refused, nothing written: $(grep -m1 -o "rank 1 starts from other.*" "$OUT/start.txt")"
  else
    fail "$what: $(cat "$OUT/start.txt")"
  fi
}
expect_start_refused "rank 1 reads other data (one pixel)" "data than rank 0 (compared: the shards' MD5s)" --data "$OUT/other"
expect_start_refused "rank 1 given another seed" "settings than rank 0" --data "$DATA" --seed 9

if [ $failures -ne 0 ]; then
  echo "test_mpi: $failures failure(s)"
  exit 1
fi
echo "test_mpi: all passed"
