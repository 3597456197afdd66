#!/usr/bin/env bash
# Runs the libFuzzer targets (fuzz/fuzz_<format>.cpp, built by the `asan` preset) and prints a
# summary table.
#
#   tools/fuzz.sh [BIN_DIR] [TARGET...]     # BIN_DIR defaults to build/asan/fuzz
#
# For each target (all fuzz_* in BIN_DIR unless named): first every file of fuzz/crafted/<format>/
# and fuzz/corpus/<format>/ is run once, whole; then libFuzzer fuzzes for FUZZ_SECONDS (default
# 60) from a scratch copy of fuzz/corpus/<format>/ (fuzz/crafted/<format>/ is read as a second,
# read-only corpus), under ASan/UBSan with leak detection, -rss_limit_mb=2048 and
# -malloc_limit_mb=512. FUZZ_JOBS (default 2) targets run at a time. Nothing is written into the
# repository: corpora, logs and crash artifacts live in a scratch directory whose path is printed
# (kept when anything failed or FUZZ_KEEP=1, else removed). The table also goes to $FUZZ_SUMMARY
# when set. Exit status: 0 when every target replayed and fuzzed cleanly, 1 on any crash, leak,
# out-of-memory or timeout, 2 on a usage error.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN_DIR=${1:-build/asan/fuzz}
[[ $# -gt 0 ]] && shift
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-2}
RSS_LIMIT_MB=2048
MALLOC_LIMIT_MB=512

[[ -d $BIN_DIR ]] || { echo "fuzz.sh: no directory '$BIN_DIR' (build the asan preset first)" >&2; exit 2; }
BIN_DIR=$(cd "$BIN_DIR" && pwd)

if [[ $# -gt 0 ]]; then
  TARGETS=("$@")
else
  TARGETS=()
  for f in "$BIN_DIR"/fuzz_*; do
    [[ -f $f && -x $f ]] && TARGETS+=("$(basename "$f")")
  done
fi
[[ ${#TARGETS[@]} -gt 0 ]] || { echo "fuzz.sh: no fuzz_* executables in '$BIN_DIR'" >&2; exit 2; }

# The longest input libFuzzer builds for each format: room for a few records or tensors, small
# enough to keep the executions per second high.
max_len() {
  case $1 in
    cifar) echo 12400 ;;  # four CIFAR-100 records of 3074 bytes
    image) echo 32768 ;;
    *) echo 16384 ;;
  esac
}

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/ember-fuzz.XXXXXX")
echo "fuzz.sh: scratch directory $SCRATCH (corpora, logs, crash artifacts)"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$REPO/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# The kind of failure a libFuzzer log reports ("ok" when none).
classify() {
  local log=$1 rc=$2
  if grep -q "ERROR: libFuzzer: out-of-memory" "$log"; then echo oom
  elif grep -q "ERROR: libFuzzer: timeout" "$log"; then echo timeout
  elif grep -q "ERROR: LeakSanitizer" "$log"; then echo leak
  elif grep -qE "ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer)|runtime error:" "$log"; then echo crash
  elif grep -q "ERROR: libFuzzer: deadly signal" "$log"; then echo crash
  elif [[ $rc -ne 0 ]]; then echo "fail(rc=$rc)"
  else echo ok
  fi
}

# Replays the crafted and seed files, then fuzzes; leaves "result seconds execs exec/s corpus"
# in $SCRATCH/<target>/result.
run_target() {
  local target=$1
  local fmt=${target#fuzz_}
  local bin=$BIN_DIR/$target
  local work=$SCRATCH/$target
  mkdir -p "$work/corpus" "$work/artifacts" "$work/tmp"
  local result="" execs=0 rate=0 seconds=0 rc=0

  if [[ ! -x $bin ]]; then
    echo "missing 0 0 0 0" > "$work/result"
    return
  fi
  [[ -d $REPO/fuzz/corpus/$fmt ]] && cp -R "$REPO/fuzz/corpus/$fmt/." "$work/corpus/"
  local crafted=$REPO/fuzz/crafted/$fmt
  local extra=()
  [[ -d $crafted ]] && extra=("$crafted")

  # 1. Every crafted and seed file once, whole (libFuzzer truncates corpus inputs to -max_len).
  local files=()
  for d in "$crafted" "$REPO/fuzz/corpus/$fmt"; do
    [[ -d $d ]] || continue
    while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$d" -type f -print0 | sort -z)
  done
  if [[ ${#files[@]} -gt 0 ]]; then
    rc=0
    TMPDIR=$work/tmp timeout 600 "$bin" -rss_limit_mb=$RSS_LIMIT_MB -malloc_limit_mb=$MALLOC_LIMIT_MB \
      -timeout=60 -artifact_prefix="$work/artifacts/" "${files[@]}" > "$work/replay.log" 2>&1 || rc=$?
    result=$(classify "$work/replay.log" $rc)
    if [[ $result != ok ]]; then
      echo "replay:$result 0 0 0 $(ls "$work/corpus" | wc -l)" > "$work/result"
      return
    fi
  fi

  # 2. Fuzz.
  local start=$SECONDS
  rc=0
  TMPDIR=$work/tmp timeout $((FUZZ_SECONDS + 300)) "$bin" -max_total_time="$FUZZ_SECONDS" \
    -max_len="$(max_len "$fmt")" -rss_limit_mb=$RSS_LIMIT_MB -malloc_limit_mb=$MALLOC_LIMIT_MB \
    -timeout=25 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" "${extra[@]}" > "$work/fuzz.log" 2>&1 || rc=$?
  seconds=$((SECONDS - start))
  result=$(classify "$work/fuzz.log" $rc)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log" | tail -1)
  echo "$result $seconds ${execs:-0} ${rate:-0} $(ls "$work/corpus" | wc -l)" > "$work/result"
}

# At most FUZZ_JOBS targets at a time.
running=0
for t in "${TARGETS[@]}"; do
  if [[ $running -ge $FUZZ_JOBS ]]; then
    wait -n || true
    running=$((running - 1))
  fi
  echo "fuzz.sh: $t"
  run_target "$t" &
  running=$((running + 1))
done
wait || true

failed=0
table=$(
  printf '%-20s %8s %12s %8s %8s  %s\n' target seconds executions exec/s corpus result
  for t in "${TARGETS[@]}"; do
    read -r result seconds execs rate corpus < "$SCRATCH/$t/result" || result=missing
    printf '%-20s %8s %12s %8s %8s  %s\n' "$t" "$seconds" "$execs" "$rate" "$corpus" "$result"
  done
)
echo
echo "$table"
[[ -n ${FUZZ_SUMMARY:-} ]] && echo "$table" > "$FUZZ_SUMMARY"

for t in "${TARGETS[@]}"; do
  read -r result _ < "$SCRATCH/$t/result" || result=missing
  if [[ $result != ok ]]; then
    failed=1
    echo
    echo "fuzz.sh: $t: $result; log: $SCRATCH/$t/$( [[ $result == replay:* ]] && echo replay || echo fuzz ).log"
    for a in "$SCRATCH/$t/artifacts"/*; do
      [[ -e $a ]] && echo "  artifact: $a"
    done
  fi
done

if [[ $failed -ne 0 || ${FUZZ_KEEP:-0} == 1 ]]; then
  echo "fuzz.sh: kept $SCRATCH"
else
  rm -rf "$SCRATCH"
fi
exit $failed
