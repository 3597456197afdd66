#!/usr/bin/env bash
# The GPU check: run on a machine with an NVIDIA GPU (the lent H200) from the repository root.
#
# 1. nvidia-smi; the programs: either the ones tools/gpu-pack.sh built for sm_90a on the
#    development machine and packed into .gpu-build/ (used when they load and list their tests
#    there), or a build here for sm_$CUDA_ARCH (default 90a) of the CUDA test suites and
#    GPU benchmarks, bench_cuda_* (dependencies the machine lacks come from .gpu-deps, tools/gpu-deps.sh).
#    FULL=1 builds everything here and also runs the whole CTest suite.
# 2. Every CUDA test program (tests/cuda/test_cuda_*), several at a time.
# 3. The short GPU benchmarks (benchmarks/bench_cuda_*), alone on the GPU; the variants no GPU
#    has run yet (EXPERIMENTAL, and the case families in EXPERIMENTAL_FAMILIES) each in a process
#    of their own after the rest of their program;
#    bench_cuda_step four times: as is, with EMBER_CUDA_BACKEND=vendor, with EMBER_GEMM_TC_CONFIG=5
#    and with EMBER_GEMM_TC_CONFIG=3.
# 4. The PyTorch peer, benchmarks/peer_torch_cuda.py (attention by cuDNN's fused SDPA and by
#    FlashAttention, whole GPT-2 and ResNet-50 training steps in eager PyTorch; the same case keys
#    as bench_cuda_attention and bench_cuda_step), alone on the GPU, within PEER_LIMIT (120) s;
#    skipped (not a failure) where no python3 (PEER_PYTHON) has torch with CUDA.
# 5. compute-sanitizer, SAN_JOBS (16) processes at a time, the slow programs (SPLIT) one process
#    per test case: memcheck over each CUDA test with the caching
#    allocator off (EMBER_CUDA_NO_CACHING=1, so every allocation is its own cudaMalloc), racecheck
#    over the tests of the kernels that use shared memory (tests/cuda/racecheck.txt). memcheck
#    does not count failed runtime calls as errors (--report-api-errors no): Ember checks each
#    call's status itself and raises DeviceError, and the runtime test provokes an out-of-memory
#    on purpose.
# 6. tools/gpu-table.py joins every benchmark JSON (Ember's and the peer's) into one ratio table,
#    $LOGS/table.md, printed before the summary.
# 7. A summary table, printed last; each row also goes to $LOGS/summary.txt as it is made.
#
# The whole run keeps to DEADLINE seconds (default 420): each step's time limit is cut to what is
# left. Logs go to $LOGS (default /tmp/gpu-check when $OUT is set, else build/gpu-check-logs); with
# $OUT set (the device tool), summary.txt, table.md, a tarball of all logs and as many of the
# benchmark JSON files as fit (the reruns' *_config* / *_vendor* ones last) are copied there at the end, as the tool
# brings back at most 8 files.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCH=${CUDA_ARCH:-90a}
BUILD=${BUILD:-build/gpu}
DEADLINE=${DEADLINE:-420}
TEST_LIMIT=${TEST_LIMIT:-120}
BENCH_LIMIT=${BENCH_LIMIT:-100}
EXP_LIMIT=${EXP_LIMIT:-60}  # each experimental variant's benchmark process
PEER_LIMIT=${PEER_LIMIT:-120}
SANITIZER_LIMIT=${SANITIZER_LIMIT:-240}
JOBS=${JOBS:-6}  # test programs at a time
LOGS=${LOGS:-${OUT:+/tmp/gpu-check}}
LOGS=${LOGS:-build/gpu-check-logs}
mkdir -p "$LOGS" "$BUILD"
LOGS=$(cd "$LOGS" && pwd)
t0=$(date +%s)
declare -a rows
: > "$LOGS/summary.txt"
row() {
  rows+=("$(printf '%-36s %-8s %s' "$1" "$2" "$3")")
  printf '%-36s %-8s %s\n' "$1" "$2" "$3" >> "$LOGS/summary.txt"
}
# verdict RC: ok, TIMEOUT (124 from timeout) or FAIL
verdict() { case $1 in 0) echo ok ;; 124) echo TIMEOUT ;; *) echo "FAIL($1)" ;; esac; }
elapsed() { echo $(( $(date +%s) - t0 )); }
# limit N: N seconds, or what is left of the deadline less a 20 s reserve, whichever is less
limit() {
  local left=$(( DEADLINE - $(elapsed) - 20 ))
  [ "$left" -lt 5 ] && left=5
  [ "$1" -lt "$left" ] && echo "$1" || echo "$left"
}
# json_files: the benchmark JSON in $LOGS, the *_config* / *_vendor* / *_exp_* ones (reruns of a
# program, the experimental variants' own runs) last
json_files() {
  local f
  for f in "$LOGS"/*.json; do
    case $f in *_config* | *_vendor* | *_exp_*) ;; *) [ -f "$f" ] && echo "$f" ;; esac
  done
  for f in "$LOGS"/*_config*.json "$LOGS"/*_vendor*.json "$LOGS"/*_exp_*.json; do
    [ -f "$f" ] && echo "$f"
  done | sort -u
  return 0
}
finish() {
  if [ -n "$(json_files)" ] && command -v python3 > /dev/null; then
    echo
    # shellcheck disable=SC2046  # one argument per file: the names have no spaces
    python3 tools/gpu-table.py --out "$LOGS/table.md" $(json_files) 2> "$LOGS/table.err"
  fi
  echo
  echo "== gpu-check summary ($(date -u +%Y-%m-%dT%H:%MZ), $(elapsed) s; logs in $LOGS)"
  printf '%s\n' "${rows[@]}"
  if [ -n "${OUT:-}" ]; then
    local copied=0 f
    for f in "$LOGS/summary.txt" "$LOGS/table.md"; do
      [ -f "$f" ] && cp "$f" "$OUT/" && copied=$((copied + 1))
    done
    tar -C "$LOGS" -czf "$OUT/gpu-check-logs.tar.gz" . 2>/dev/null && copied=$((copied + 1))
    for f in $(json_files); do
      if [ "$copied" -lt 8 ]; then
        cp "$f" "$OUT/" && copied=$((copied + 1))
      else
        echo "not copied to \$OUT (8 files at most), in the tarball: $(basename "$f")"
      fi
    done
  fi
}
trap finish EXIT
status=0

# ---- the machine ----
nvidia-smi > "$LOGS/nvidia-smi.txt" 2>&1 &&
  row "nvidia-smi" ok "$(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | head -1)" ||
  row "nvidia-smi" FAIL "see nvidia-smi.txt"
nvcc --version > "$LOGS/nvcc.txt" 2>&1
LD_LIBRARY_PATH_START=${LD_LIBRARY_PATH:-}  # the environment's own, for the PyTorch peer
# Shared libraries the programs need from the CUDA install (cuBLAS for the benchmark's peer):
# the toolkit's folder and, where the image has them, the Python wheels' folders.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
         $(ls -d /opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib \
                 /usr/local/lib/python3*/dist-packages/nvidia/*/lib 2>/dev/null); do
  [ -d "$d" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
export LD_LIBRARY_PATH

# ---- the programs ----
cuda_tests() { ls "$BUILD"/tests/test_cuda_* 2>/dev/null | while read -r t; do [ -x "$t" ] && echo "$t"; done; }
built=""
if [ -z "${FULL:-}" ] && [ -f .gpu-build/programs.tar.xz ]; then
  mkdir -p "$BUILD/tests" "$BUILD/benchmarks" "$BUILD/lib"
  tar -C "$BUILD" -xJf .gpu-build/programs.tar.xz
  export LD_LIBRARY_PATH="$PWD/$BUILD/lib:$LD_LIBRARY_PATH"
  # Catch2 v2 exits with the number of tests listed: the listing itself says the program loaded.
  "$BUILD/tests/test_cuda_runtime" --list-tests > "$LOGS/prebuilt-check.txt" 2>&1
  if grep -q "test cases" "$LOGS/prebuilt-check.txt"; then
    built="prebuilt"
    row "programs" ok "prebuilt: $(cat .gpu-build/made-by.txt 2>/dev/null)"
  else
    row "programs (prebuilt)" FAIL "do not load here, building: $(head -c 120 "$LOGS/prebuilt-check.txt")"
    rm -rf "$BUILD"
  fi
fi
if [ -z "$built" ]; then
  prefix=""
  [ -d .gpu-deps ] && prefix="-DCMAKE_PREFIX_PATH=$PWD/.gpu-deps -DZLIB_ROOT=$PWD/.gpu-deps -DEMBER_STB_INCLUDE_DIR=$PWD/.gpu-deps/include/stb"
  gen=""
  command -v ninja > /dev/null && gen="-G Ninja"
  targets="$(cd tests/cuda && ls test_cuda_*.cpp | sed 's/\.cpp$//' | tr '\n' ' ')"
  targets="$targets $(cd benchmarks && ls bench_cuda_*.cpp | sed 's/\.cpp$//' | tr '\n' ' ')"
  # bench_cuda_step links the examples' common library, which needs CLI11 (headers only: the
  # system's or .gpu-deps'); without it the examples stay off and the configure step skips the
  # program. A program the configure step skips (there, or without cuDNN) is no target.
  examples=OFF
  for d in /usr/include /usr/local/include .gpu-deps/include; do
    [ -f "$d/CLI/CLI.hpp" ] && examples=ON
  done
  if cmake -S . -B "$BUILD" $gen -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON \
       -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DEMBER_BUILD_EXAMPLES=$examples -DEMBER_INSTALL=OFF \
       -DEMBER_WERROR=ON -DEMBER_BUILD_BENCHMARKS=ON -DEMBER_TORCH_ROOT="$PWD/.gpu-deps/no-torch" \
       $prefix > "$LOGS/configure.txt" 2>&1 &&
     targets="$(for t in $targets; do grep -q "Ember: $t skipped" "$LOGS/configure.txt" || echo "$t"; done)" &&
     { [ -z "${FULL:-}" ] || targets="all"; } &&
     cmake --build "$BUILD" -j "$(nproc)" --target $targets > "$LOGS/build.txt" 2>&1; then
    built="built here"
    row "build (sm_$ARCH)" ok "$(elapsed) s"
  else
    row "build (sm_$ARCH)" FAIL "see configure.txt / build.txt"
    tail -30 "$LOGS/build.txt" 2>/dev/null || tail -30 "$LOGS/configure.txt"
    exit 1
  fi
fi

# ---- CUDA tests, $JOBS at a time ----
# run_one NAME LIMIT CMD...: runs CMD with output to $LOGS/NAME.txt and its status to NAME.rc
run_one() {
  local n=$1 lim=$2
  shift 2
  timeout "$lim" "$@" > "$LOGS/$n.txt" 2>&1
  echo $? > "$LOGS/$n.rc"
}
lim=$(limit "$TEST_LIMIT")
for t in $(cuda_tests); do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  OMP_NUM_THREADS=2 run_one "$(basename "$t")" "$lim" "$t" &
done
wait
for t in $(cuda_tests); do
  n=$(basename "$t")
  rc=$(cat "$LOGS/$n.rc" 2>/dev/null || echo 1)
  [ "$rc" -eq 0 ] || status=1
  row "$n" "$(verdict "$rc")" "$(grep -E '^(All tests passed|test cases)' "$LOGS/$n.txt" | tail -1)"
done
if [ -n "${FULL:-}" ]; then
  (cd "$BUILD" && ctest -j "$(nproc)" --timeout "$(limit 300)" -E "bench_" > "$LOGS/ctest.txt" 2>&1)
  rc=$?
  [ $rc -eq 0 ] || status=1
  row "ctest (all tests)" "$(verdict $rc)" "$(grep -E 'tests passed|tests failed' "$LOGS/ctest.txt" | tail -1)"
fi

# ---- short GPU benchmarks, alone on the GPU ----
# The variants no GPU has run yet (EXPERIMENTAL: the cases' last names; the cuBLASLt peer too)
# run after the rest of their program, each in a process of its own, so one that hangs or faults
# (which ends the process's CUDA context) costs only its own rows, not the program's table; their
# rates join the table by case.
EXPERIMENTAL=${EXPERIMENTAL:-"ember_config3 ember_config4 ember_config5 ember_config6 ember_wgmma ember_ws ember_ws64 ember_fused cublaslt"}
exp_regex="/($(echo $EXPERIMENTAL | tr ' ' '|'))(/|$)"
# Whole case families whose kernels no GPU has run yet (the cases' first names), likewise each in
# a process of its own, with the memcpy ceilings their table column needs.
EXPERIMENTAL_FAMILIES=${EXPERIMENTAL_FAMILIES:-"batch_norm_relu_bf16"}
fam_regex="^($(echo $EXPERIMENTAL_FAMILIES | tr ' ' '|'))/"
for b in "$BUILD"/benchmarks/bench_cuda_*; do
  [ -x "$b" ] || continue
  n=$(basename "$b")
  timeout "$(limit "$BENCH_LIMIT")" "$b" --benchmark_filter="-($exp_regex|$fam_regex)" \
    --ember_summary="$LOGS/$n.json" > "$LOGS/$n.txt" 2>&1
  rc=$?
  [ $rc -eq 0 ] || status=1
  row "$n" "$(verdict $rc)" "$n.json, $n.txt"
  "$b" --benchmark_list_tests > "$LOGS/${n}_list.txt" 2>&1
  # Each variant's cases (by last name) or family's (by first name, with the memcpy ceilings).
  for v in $EXPERIMENTAL $EXPERIMENTAL_FAMILIES; do
    case " $EXPERIMENTAL_FAMILIES " in
      *" $v "*) match="^$v/" filter="^($v/|memcpy_d2d/)" ;;
      *) match="/$v(/|$)" filter="/$v(/|$)" ;;
    esac
    grep -qE "$match" "$LOGS/${n}_list.txt" || continue
    timeout "$(limit "$EXP_LIMIT")" "$b" --benchmark_filter="$filter" \
      --ember_summary="$LOGS/${n}_exp_$v.json" > "$LOGS/${n}_exp_$v.txt" 2>&1
    rc=$?
    [ $rc -eq 0 ] || status=1
    row "$n ($v)" "$(verdict $rc)" "${n}_exp_$v.json, ${n}_exp_$v.txt"
  done
  # Whole training steps again: on the vendor backend (cuBLAS products, cuDNN convolution, the
  # attention composite), which separates Ember's kernels from the rest of the step (the
  # framework around them); with every Hopper kernel at once (GEMM configuration 5, the
  # warp-specialised attention forward, the wgmma attention backward and convolution); then with
  # every 16-bit GEMM on tile configuration 5 (persistent ping-pong TMA + wgmma) and 3 (one block
  # per tile), the step-level comparison with the automatic choice (the last dropped first when
  # the deadline is near).
  if [ "$n" = bench_cuda_step ]; then
    for v in "vendor EMBER_CUDA_BACKEND=vendor" \
             "hopper EMBER_GEMM_TC_CONFIG=5 EMBER_ATTENTION_FORWARD_VARIANT=2 EMBER_ATTENTION_BACKWARD_VARIANT=2 EMBER_CONV_VARIANT=1" \
             "config5 EMBER_GEMM_TC_CONFIG=5" "config3 EMBER_GEMM_TC_CONFIG=3"; do
      set -- $v
      name=$1
      shift
      env "$@" timeout "$(limit "$BENCH_LIMIT")" "$b" \
        --ember_summary="$LOGS/${n}_$name.json" > "$LOGS/${n}_$name.txt" 2>&1
      rc=$?
      [ $rc -eq 0 ] || status=1
      row "$n ($*)" "$(verdict $rc)" "${n}_$name.json, ${n}_$name.txt"
    done
  fi
done

# ---- the PyTorch peer, alone on the GPU ----
# benchmarks/peer_torch_cuda.py times the same attention and training-step cases in PyTorch
# (cuDNN's fused SDPA, FlashAttention, eager GPT-2 and ResNet-50 steps). It runs with the
# environment's own library path: the CUDA folders added above could hand torch a cuDNN or cuBLAS
# other than the ones its wheel was built with. The interpreter: the first of PEER_PYTHON (default
# python3, then the /opt/*/.venv ones) that imports torch with a CUDA GPU.
peer_python=""
: > "$LOGS/peer_probe.txt"
for py in ${PEER_PYTHON:-python3 $(ls /opt/*/.venv/bin/python3 2>/dev/null)}; do
  command -v "$py" > /dev/null || continue
  if env LD_LIBRARY_PATH="$LD_LIBRARY_PATH_START" timeout "$(limit 60)" \
       "$py" -c 'import torch; assert torch.cuda.is_available()' >> "$LOGS/peer_probe.txt" 2>&1; then
    peer_python=$py
    break
  fi
done
if [ -n "$peer_python" ]; then
  PYTHONUNBUFFERED=1 LD_LIBRARY_PATH="$LD_LIBRARY_PATH_START" timeout "$(limit "$PEER_LIMIT")" \
    "$peer_python" benchmarks/peer_torch_cuda.py --out "$LOGS/peer_torch_cuda.json" \
    > "$LOGS/peer_torch_cuda.txt" 2>&1
  rc=$?
  [ $rc -eq 0 ] || status=1
  row "peer_torch_cuda" "$(verdict $rc)" "peer_torch_cuda.json, peer_torch_cuda.txt: $(
    grep -E '^peer_torch_cuda: [0-9]+ cases' "$LOGS/peer_torch_cuda.txt" | tail -1 | cut -d' ' -f2-)"
else
  row "peer_torch_cuda" skipped "no torch with CUDA ($(tail -1 "$LOGS/peer_probe.txt" | head -c 100))"
fi

# ---- compute-sanitizer, SAN_JOBS processes at a time ----
# The programs in SPLIT run one sanitizer process per test case (names cut at their first comma
# and ended with '*', as Catch2 reads a comma as 'or'), so their slowest case, not their sum,
# decides the time.
SAN_JOBS=${SAN_JOBS:-16}
SPLIT=${SPLIT:-"test_cuda_optim test_cuda_sort test_cuda_index test_cuda_conv test_cuda_random test_cuda_conv_implicit_gemm test_cuda_attention test_cuda_gemm_tc"}
if command -v compute-sanitizer > /dev/null; then
  lim=$(limit "$SANITIZER_LIMIT")
  declare -a checks
  # san_job NAME TOOL PROGRAM [CATCH2 ARGS...]
  san_job() {
    local name=$1 tool=$2
    shift 2
    while [ "$(jobs -rp | wc -l)" -ge "$SAN_JOBS" ]; do wait -n; done
    checks+=("$name")
    if [ "$tool" = memcheck ]; then
      EMBER_CUDA_NO_CACHING=1 OMP_NUM_THREADS=1 run_one "$name" "$lim" \
        compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 9 "$@" &
    else
      OMP_NUM_THREADS=1 run_one "$name" "$lim" \
        compute-sanitizer --tool racecheck --error-exitcode 9 "$@" &
    fi
  }
  test_cases() { "$1" --list-test-names-only 2> /dev/null | sed -e '/^$/d' -e 's/,.*$/*/' | sort -u; }
  split_of() { case " $SPLIT " in *" $1 "*) return 0 ;; esac; return 1; }
  # san_program TOOL PROGRAM [ARGS...]: one job, or one per test case for a SPLIT program
  san_program() {
    local tool=$1 t=$2 n i=0 c
    n=$(basename "$2")
    shift 2
    if [ $# -eq 0 ] && split_of "$n"; then
      while IFS= read -r c; do
        i=$((i + 1))
        san_job "$tool.$n.$i" "$tool" "$t" "$c"
      done < <(test_cases "$t")
    else  # a program given a test name may come more than once: each its own log
      local name="$tool.$n"
      [ $# -gt 0 ] && named=$((named + 1)) && name="$name.t$named"
      san_job "$name" "$tool" "$t" "$@"
    fi
  }
  named=0
  for t in $(cuda_tests); do san_program memcheck "$t"; done
  # racecheck.txt: a program and optionally Catch2 arguments (a test name) per line; '#' comments
  if [ -f tests/cuda/racecheck.txt ]; then
    while read -r n args; do
      case "$n" in '' | '#'*) continue ;; esac
      [ -x "$BUILD/tests/$n" ] || continue
      eval "set -- $args"
      san_program racecheck "$BUILD/tests/$n" "$@"
    done < tests/cuda/racecheck.txt
  fi
  wait
  for c in "${checks[@]}"; do
    rc=$(cat "$LOGS/$c.rc" 2>/dev/null || echo 1)
    [ "$rc" -eq 0 ] || status=1
    row "  $c" "$(verdict "$rc")" \
      "$(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY|Device not supported|test cases' "$LOGS/$c.txt" | tail -1)"
  done
else
  row "compute-sanitizer" FAIL "not found"
  status=1
fi
exit $status
