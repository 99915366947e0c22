#!/bin/bash
# pack-data.sh - CIFAR-10's six binary shards, cut into pieces that each travel to the GPU machine
# (the device tool) beside the working tree within its 64 MiB per call.
#   scripts/screening/pack-data.sh [DATA_DIR] [OUT_DIR]   (defaults: data/cifar-10-batches-bin, .xfer)
# Prints the number of pieces and, for each call, what to carry and the command that joins them
# there (into /tmp/cifar, which stays while the machine stays warm: ~30 s between calls).
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-data/cifar-10-batches-bin}
out=${2:-.xfer}
limit=$((64 * 1024 * 1024))
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -n 1 | cut -f1)
room=$((limit - tree - ${untracked:-0} - 1024 * 1024)) # a MiB spare
files=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin)
total=0
for f in "${files[@]}"; do total=$((total + $(stat -c %s "$data/$f"))); done
pieces=$(((total + room - 1) / room))
grep -qx "/$out/" .git/info/exclude 2>/dev/null || echo "/$out/" >>.git/info/exclude
mkdir -p "$out"
rm -f "$out"/p*
(cd "$data" && cat "${files[@]}") | split -n "$pieces" -d - "$out/p" 2>/dev/null ||
  { (cd "$data" && cat "${files[@]}") >"$out/all.tmp.bin" && split -n "$pieces" -d "$out/all.tmp.bin" "$out/p" && rm "$out/all.tmp.bin"; }
sums=$(cd "$data" && md5sum "${files[@]}" | awk '{printf "%s  %s\\n", $1, $2}')
echo "pack-data: ${total} bytes in ${pieces} pieces of at most ${room} bytes (tree ${tree} + untracked ${untracked:-0} bytes travel too)"
for p in "$out"/p*; do
  echo "  call: carry [\"$p\"], command: mkdir -p /tmp/cifar && cp $p /tmp/cifar/"
done
echo "  then, in the last call: cd /tmp/cifar && cat p* > all && for i in 1 2 3 4 5; do dd if=all of=data_batch_\$i.bin bs=30730000 skip=\$((i-1)) count=1 status=none; done && dd if=all of=test_batch.bin bs=30730000 skip=5 count=1 status=none && printf '${sums}' | md5sum -c --quiet && cd -"
