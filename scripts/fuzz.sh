#!/usr/bin/env bash
# fuzz.sh SECONDS TARGET... - runs each libFuzzer target (built by `make test-fuzz`) for a
# bounded time from a small seed corpus of valid inputs made here. Any crash, leak or
# sanitizer report fails the run (libFuzzer exits non-zero and keeps the input). The targets
# run FUZZ_JOBS at a time (default 2: each fuzzer is one thread), each one's lines printed
# together when it ends.
set -euo pipefail
seconds=$1; shift
jobs=${FUZZ_JOBS:-2}
work=build/fuzz/work
rm -rf "$work" && mkdir -p "$work/seeds"
# seeds: a tiny official-format CIFAR-10 release as .tar.gz and .tar, and loose shards
mkdir -p "$work/tree/cifar-10-batches-bin"
for name in data_batch_1.bin test_batch.bin; do
  { printf '\x03'; head -c 3072 /dev/zero | tr '\0' '\x80'; printf '\x07'; head -c 3072 /dev/urandom; } \
    >"$work/tree/cifar-10-batches-bin/$name"
done
printf 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n' >"$work/tree/cifar-10-batches-bin/batches.meta.txt"
tar -C "$work/tree" -czf "$work/c10.tar.gz" cifar-10-batches-bin
tar -C "$work/tree" -cf "$work/c10.tar" cifar-10-batches-bin
fuzz_one() {
  local target=$1 corpus status
  corpus="$work/corpus-$target"
  mkdir -p "$corpus"
  case $target in
    fuzz_archive) { printf '\x00'; cat "$work/c10.tar.gz"; } >"$corpus/seed-gz"; { printf '\x00'; cat "$work/c10.tar"; } >"$corpus/seed-tar" ;;
    fuzz_shard) { printf '\x00'; cat "$work/tree/cifar-10-batches-bin/data_batch_1.bin"; } >"$corpus/seed-shard"
                { printf '\x04'; cat "$work/tree/cifar-10-batches-bin/batches.meta.txt"; } >"$corpus/seed-names" ;;
    # these two overwrite the start of a valid checkpoint / model made by the target itself:
    # the empty input is the valid file, the seeds below a version-1 header and a short file
    fuzz_checkpoint) printf 'Q4CKPT\r\n\x02\x00\x00\x00\x80\x00\x00\x00' >"$corpus/seed-v2"
                     printf 'Q4CKPT\r\n\x01\x00\x00\x00\x00\x01\x00\x00' >"$corpus/seed-v1" ;;
    # a card from step 0, and one of a resumed run (with its "start")
    fuzz_card) build/q4train --data data --train-limit 2 --test-limit 1 --batch 2 --epochs 1 --card "$corpus/seed-card" \
                 --quiet >/dev/null
               build/q4train --data data --train-limit 4 --test-limit 1 --batch 2 --epochs 1 --max-steps 1 \
                 --checkpoint "$work/card-step1.ckpt" --quiet >/dev/null
               build/q4train --data data --resume "$work/card-step1.ckpt" --card "$corpus/seed-resumed" --quiet >/dev/null ;;
    fuzz_model) printf 'Q4MODEL\n\x01\x00\x00\x00\x0a\x00\x00\x00\x04\x00\x00\x00' >"$corpus/seed-model" ;;
  esac
  echo "== $target for ${seconds}s"
  "build/fuzz/$target" -max_total_time="$seconds" -max_len=200000 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$work/$target-" "$corpus" 2>&1 | grep -E "^#[0-9]+ *DONE|stat::number_of_executed_units|ERROR|SUMMARY" && true
  # grep hides the progress lines; PIPESTATUS gives the fuzzer's own exit status (`&& true`
  # keeps set -e out of it and, when the pipeline fails, leaves PIPESTATUS as it was)
  status=${PIPESTATUS[0]}
  if [ "$status" -ne 0 ]; then echo "fuzz: $target failed (status $status); inputs kept in $work" >&2; return 1; fi
}

pids=() names=()
for target in "$@"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  fuzz_one "$target" >"$work/$target.out" 2>&1 &
  pids+=($!) names+=("$target")
done
failed=0
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then cat "$work/${names[$i]}.out"; else cat "$work/${names[$i]}.out"; failed=1; fi
done
[ $failed -eq 0 ] || exit 1
echo "fuzz: all targets ran clean"
