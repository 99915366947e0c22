#!/bin/bash
# recipe_mirror.sh - parallel runs of recipe_mirror.py on one GPU (or on the CPU, as a rehearsal).
#   RUNS="name:bits:epochs:seed[:k=v,k=v] ..." [LIMIT=500] [PY=python3] recipe_mirror.sh DATA LOGS [ARGS...]
#       (the optional fifth field is the run's own --set; ARGS, e.g. --recipe fast15 --tf32, go to every run)
#       every run in the background under `timeout LIMIT`, logging LOGS/name.jsonl and LOGS/name.out,
#       then the tail of any that failed and one summary line per run (recipe_mirror.py --summarize)
#   [BENCH_N=7680] [PY=python3] recipe_mirror.sh --bench LOGS [ARGS...]
#       timing on random data (2 epochs of BENCH_N images): one 4-bit run alone, then six 4-bit and four
#       FP32 runs started together (a file barrier), for recipe_mirror.py --plan
set -u
here=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-python3}
tool="$here/recipe_mirror.py"
pids=(); names=()

launch() { # name bits epochs seed logs args...
    local name=$1 bits=$2 epochs=$3 seed=$4 logs=$5
    shift 5
    PYTHONUNBUFFERED=1 timeout "${LIMIT:-500}" "$PY" "$tool" --bits "$bits" --epochs "$epochs" --seed "$seed" \
        --log "$logs/$name.jsonl" "$@" >"$logs/$name.out" 2>&1 &
    pids+=($!); names+=("$name")
}

finish() { # logs names...: wait for every launched run, report failures, summarize the named logs
    local logs=$1 i rc files=()
    shift
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}"; rc=$?
        if [ "$rc" -ne 0 ]; then
            echo "FAILED ${names[$i]}: rc $rc$([ "$rc" -eq 124 ] && echo ' (timeout)'); its last lines:"
            tail -n 4 "$logs/${names[$i]}.out" | cut -c1-300
        fi
    done
    for i in "$@"; do [ -s "$logs/$i.jsonl" ] && files+=("$logs/$i.jsonl"); done
    [ ${#files[@]} -gt 0 ] && "$PY" "$tool" --summarize "${files[@]}"
    pids=(); names=()
}

if [ "${1:-}" = --bench ]; then
    logs=$2
    shift 2
    mkdir -p "$logs"
    n=${BENCH_N:-7680}
    launch solo 4 2 0 "$logs" --synthetic "$n" "$@"
    finish "$logs" solo
    rm -rf "$logs/barrier"
    for i in 0 1 2 3 4 5; do launch "p4-$i" 4 2 "$i" "$logs" --synthetic "$n" --barrier "$logs/barrier:10" "$@"; done
    for i in 0 1 2 3; do launch "p32-$i" 32 2 "$i" "$logs" --synthetic "$n" --barrier "$logs/barrier:10" "$@"; done
    finish "$logs" "${names[@]}"
    exit 0
fi

data=$1 logs=$2
shift 2
mkdir -p "$logs"
all=()
for spec in ${RUNS:?set RUNS to \"name:bits:epochs:seed ...\"}; do
    IFS=: read -r name bits epochs seed set <<<"$spec"
    launch "$name" "$bits" "$epochs" "$seed" "$logs" --data "$data" --set "${set:-}" "$@"
    all+=("$name")
done
sorted=($(printf '%s\n' "${all[@]}" | sort))
finish "$logs" "${sorted[@]}"
