#!/usr/bin/env bash
# run-tests.sh JOBS COMMAND... - runs test programs JOBS at a time (each a shell command, e.g.
# "Q4_SKIP_LEARNING=1 build/sanitize/test_data DIR"). The unit and sanitizer stages are mostly
# one thread each, so two at a time nearly halves them on a 2-core machine; no test writes
# where another does (test_data has its own directory). Each program's output is printed in one
# piece when it ends; any failure fails the run, named, after the others have finished.
set -uo pipefail
jobs=$1; shift
lock=$(mktemp)
printf '%s\0' "$@" | xargs -0 -P "$jobs" -I{} bash -c '
  log=$(mktemp); start=$SECONDS
  if eval "$1" >"$log" 2>&1; then status=0; else status=$?; fi
  { echo "== $1 ($((SECONDS - start)) s)"; cat "$log"; [ $status -eq 0 ] || echo "FAILED (status $status): $1"; } | flock "$0" cat
  rm -f "$log"; exit $((status != 0))' "$lock" {}
status=$?
rm -f "$lock"
[ $status -eq 0 ] || { echo "run-tests: some test failed (see FAILED above)" >&2; exit 1; }
