#!/usr/bin/env bash
# tests/cuda/racecheck.txt names the programs (and Catch2 test names) that tools/gpu-check.sh runs
# under compute-sanitizer racecheck on a GPU. A renamed test would make that run match nothing
# and fail only there, in minutes of lent GPU time: here each line's program must be built and
# each given name must match at least one of its tests (listing needs no GPU).
#
#   check_racecheck_list.sh LIST TESTS_DIR
set -uo pipefail
list=$1 dir=$2
bad=0 lines=0
while read -r n args; do
  case "$n" in '' | '#'*) continue ;; esac
  lines=$((lines + 1))
  if [ ! -x "$dir/$n" ]; then
    echo "racecheck.txt: no program $dir/$n"
    bad=1
    continue
  fi
  eval "set -- $args"
  [ $# -eq 0 ] && continue
  matched=$("$dir/$n" --list-test-names-only "$@" 2> /dev/null | sed '/^$/d' | wc -l)
  if [ "$matched" -eq 0 ]; then
    echo "racecheck.txt: '$*' matches no test of $n"
    bad=1
  fi
done < "$list"
echo "racecheck.txt: $lines lines checked"
exit $bad
