#!/usr/bin/env bash
# The GPU check: run on a machine with an NVIDIA GPU (the lent H200) from the repository root.
# Builds Ember for sm_90a (CUDA_ARCH overrides), prints nvidia-smi, runs the CUDA test suite,
# the whole CTest suite, compute-sanitizer memcheck over each CUDA test with the caching allocator
# off and racecheck on the tests of kernels that use shared memory, then the short GPU benchmarks
# when they exist, and prints a summary table last (each row also goes to $LOGS/summary.txt as it
# is made). Each step has a time limit (TEST_LIMIT, SANITIZER_LIMIT). Full logs go to $LOGS (default $OUT/gpu-check when $OUT is set, else
# build/gpu-check-logs). Dependencies the machine may lack come from .gpu-deps (tools/gpu-deps.sh).
# Budget: about 8 minutes on an H200.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCH=${CUDA_ARCH:-90a}
BUILD=${BUILD:-build/gpu}
LOGS=${LOGS:-${OUT:+$OUT/gpu-check}}
LOGS=${LOGS:-build/gpu-check-logs}
mkdir -p "$LOGS"
LOGS=$(cd "$LOGS" && pwd)
# Per-step limits (seconds), so one slow step cannot eat the device time of the rest.
TEST_LIMIT=${TEST_LIMIT:-120}
SANITIZER_LIMIT=${SANITIZER_LIMIT:-90}
declare -a rows
# Each row goes to the table and, at once, to $LOGS/summary.txt (kept if the run is cut short).
row() {
  rows+=("$(printf '%-34s %-7s %s' "$1" "$2" "$3")")
  printf '%-34s %-7s %s\n' "$1" "$2" "$3" >> "$LOGS/summary.txt"
}
# verdict RC: ok, TIMEOUT (rc 124 from timeout) or FAIL
verdict() { case $1 in 0) echo ok ;; 124) echo TIMEOUT ;; *) echo FAIL ;; esac; }
: > "$LOGS/summary.txt"
t0=$(date +%s)

# ---- the machine ----
nvidia-smi > "$LOGS/nvidia-smi.txt" 2>&1 && row "nvidia-smi" ok "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)" ||
  row "nvidia-smi" FAIL "see nvidia-smi.txt"
nvcc --version > "$LOGS/nvcc.txt" 2>&1

# ---- build ----
prefix=""
[ -d .gpu-deps ] && prefix="-DCMAKE_PREFIX_PATH=$PWD/.gpu-deps -DZLIB_ROOT=$PWD/.gpu-deps -DEMBER_STB_INCLUDE_DIR=$PWD/.gpu-deps/include/stb"
gen=""
command -v ninja > /dev/null && gen="-G Ninja"
if cmake -S . -B "$BUILD" $gen -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON \
     -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_INSTALL=OFF \
     -DEMBER_WERROR=ON $prefix > "$LOGS/configure.txt" 2>&1 &&
   cmake --build "$BUILD" -j "$(nproc)" > "$LOGS/build.txt" 2>&1; then
  row "build (sm_$ARCH)" ok "$(( $(date +%s) - t0 )) s"
else
  row "build (sm_$ARCH)" FAIL "see configure.txt / build.txt"
  printf '%s\n' "${rows[@]}"
  tail -30 "$LOGS/build.txt" 2>/dev/null || tail -30 "$LOGS/configure.txt"
  exit 1
fi

# ---- CUDA tests (every tests/cuda/test_* program), then the whole CTest suite ----
status=0
for t in "$BUILD"/tests/test_cuda_*; do
  [ -x "$t" ] || continue
  n=$(basename "$t")
  timeout "$TEST_LIMIT" "$t" > "$LOGS/$n.txt" 2>&1
  rc=$?
  [ $rc -eq 0 ] || status=1
  row "$n" "$(verdict $rc)" "$(grep -E '^(All tests passed|test cases)' "$LOGS/$n.txt" | tail -1)"
done
# The CPU suite on the GPU machine (the CUDA build must pass it there too); short.
(cd "$BUILD" && ctest -j "$(nproc)" --timeout 300 -E "bench_" > "$LOGS/ctest.txt" 2>&1)
rc=$?
[ $rc -eq 0 ] || status=1
row "ctest (all tests)" "$(verdict $rc)" "$(grep -E 'tests passed|tests failed' "$LOGS/ctest.txt" | tail -1)"

# ---- compute-sanitizer ----
if command -v compute-sanitizer > /dev/null; then
  # memcheck with every allocation a cudaMalloc, so each out-of-bounds access is caught
  for t in "$BUILD"/tests/test_cuda_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    EMBER_CUDA_NO_CACHING=1 timeout "$SANITIZER_LIMIT" compute-sanitizer --tool memcheck \
      --error-exitcode 9 "$t" > "$LOGS/$n.memcheck.txt" 2>&1
    rc=$?
    [ $rc -eq 0 ] || status=1
    row "  memcheck $n" "$(verdict $rc)" "$(grep -E 'ERROR SUMMARY' "$LOGS/$n.memcheck.txt" | tail -1)"
  done
  # racecheck on the kernels that use shared memory: tests/cuda/racecheck.txt lists a program and
  # optionally Catch2 arguments (a test name) per line; '#' starts a comment.
  if [ -f tests/cuda/racecheck.txt ]; then
    while read -r n args; do
      case "$n" in '' | '#'*) continue ;; esac
      [ -x "$BUILD/tests/$n" ] || continue
      eval "set -- $args"
      timeout "$SANITIZER_LIMIT" compute-sanitizer --tool racecheck --error-exitcode 9 \
        "$BUILD/tests/$n" "$@" > "$LOGS/$n.racecheck.txt" 2>&1
      rc=$?
      [ $rc -eq 0 ] || status=1
      row "  racecheck $n" "$(verdict $rc)" "$(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$LOGS/$n.racecheck.txt" | tail -1)"
    done < tests/cuda/racecheck.txt
  fi
else
  row "compute-sanitizer" FAIL "not found"
  status=1
fi

# ---- short GPU benchmarks (benchmarks/bench_cuda_*) ----
# Configured into the same build only now (Google Benchmark from .gpu-deps, no libtorch peer), so
# a benchmark that fails to build costs its row, not the tests above.
if cmake -S . -B "$BUILD" -DEMBER_BUILD_BENCHMARKS=ON -DEMBER_TORCH_ROOT="$PWD/.gpu-deps/no-torch" \
     > "$LOGS/configure-bench.txt" 2>&1 &&
   cmake --build "$BUILD" -j "$(nproc)" --target bench_cuda_ops > "$LOGS/build-bench.txt" 2>&1; then
  row "build bench_cuda_ops" ok ""
else
  status=1
  row "build bench_cuda_ops" FAIL "see configure-bench.txt / build-bench.txt"
fi
for b in "$BUILD"/benchmarks/bench_cuda_*; do
  [ -x "$b" ] || continue
  n=$(basename "$b")
  timeout "$TEST_LIMIT" "$b" --ember_summary="$LOGS/$n.json" > "$LOGS/$n.txt" 2>&1
  rc=$?
  [ $rc -eq 0 ] || status=1
  row "$n" "$(verdict $rc)" "$n.json"
done

echo
echo "== gpu-check summary ($(date -u +%Y-%m-%dT%H:%MZ), $(( $(date +%s) - t0 )) s; logs in $LOGS)"
printf '%s\n' "${rows[@]}"
exit $status
