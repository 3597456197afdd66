#!/usr/bin/env bash
# Packs the GPU check's programs, built here for sm_90a, into .gpu-build/ (git-ignored), so that
# tools/gpu-check.sh on the lent GPU machine spends its minutes running them, not compiling: the
# CUDA test programs (tests/cuda), the GPU benchmarks (bench_cuda_*), and the shared libraries they load that a CUDA
# image may lack (OpenMP's runtime, Google Benchmark). The CUDA libraries themselves (cudart,
# cuBLAS) come from the GPU machine's CUDA install. Name .gpu-build in the device call's carry.
#
#   tools/gpu-pack.sh [BUILD_DIR]     (default build/release, configured with CUDA for sm_90a)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
benches="$(cd benchmarks && ls bench_cuda_*.cpp | sed 's/\.cpp$//' | tr '\n' ' ')"
targets="$(cd tests/cuda && ls test_cuda_*.cpp | sed 's/\.cpp$//' | tr '\n' ' ') $benches"
cmake --build "$build" -j "$(nproc)" --target $targets
out=.gpu-build
rm -rf "$out"
mkdir -p "$out/stage/tests" "$out/stage/benchmarks" "$out/stage/lib"
find "$build/tests" -maxdepth 1 -type f -executable -name 'test_cuda_*' ! -name '*.*' \
  -exec cp {} "$out/stage/tests/" \;
for b in $benches; do cp "$build/benchmarks/$b" "$out/stage/benchmarks/"; done
strip --strip-debug "$out"/stage/tests/* "$out"/stage/benchmarks/*
# Shared libraries outside glibc, libstdc++/libgcc and CUDA's own.
for f in "$out"/stage/tests/* "$out"/stage/benchmarks/*; do ldd "$f"; done |
  awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
  grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libcudnn[^/]*)\.so' |
  while read -r lib; do cp -L "$lib" "$out/stage/lib/"; done
# The GPU code in the programs, by architecture (e.g. sm_90a), as the build compiled it.
archs=$(grep -ho 'code=[^ ]*' "$build"/CMakeFiles/ember.dir/flags.make | grep -o 'sm_[0-9a-z]*' | sort -u | tr '\n' ' ')
# xz with a 256 MiB window: the programs (about 840 MB together on 2026-12-07, 40-57 MB each)
# share most of their bytes (the static libember), and a window spanning several programs finds
# them again: 34 MB, where preset 9's 64 MiB window (less than two programs) gave 78 MB, past the
# device tool's 64 MiB carry. Decompressing needs the window's 256 MiB of memory.
tar -C "$out/stage" -cf - . | xz --lzma2=preset=9,dict=256MiB -T1 > "$out/programs.tar.xz"
# The device call carries at most 64 MiB in all (.gpu-deps is about 6 MB of it).
size=$(stat -c %s "$out/programs.tar.xz")
if [ "$size" -gt $((56 * 1024 * 1024)) ]; then
  echo "gpu-pack: programs.tar.xz is $size bytes: too large for the device call's 64 MiB carry" >&2
  exit 1
fi
rm -rf "$out/stage"
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes'), ${archs% }, g++ $(g++ -dumpversion), $(date -u +%F)" > "$out/made-by.txt"
du -sh "$out/programs.tar.xz"
cat "$out/made-by.txt"
