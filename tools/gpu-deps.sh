#!/usr/bin/env bash
# Collects into .gpu-deps/ the build dependencies that the GPU machine's image may lack (Catch2 v2,
# stb, zlib, CLI11: headers and static libraries from this machine's Debian packages; Google
# Benchmark: headers, its shared library and CMake package, for the GPU benchmarks), so that
# tools/gpu-check.sh can build there. Run here before a device call and name .gpu-deps in its
# `carry` (the folder is git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
d=.gpu-deps
rm -rf "$d"
mkdir -p "$d/include" "$d/lib/cmake"
cp -r /usr/include/catch2 "$d/include/"
cp -r /usr/lib/cmake/Catch2 "$d/lib/cmake/"
cp /usr/lib/libCatch2WithMain.a "$d/lib/" 2>/dev/null ||
  cp /usr/lib/x86_64-linux-gnu/libCatch2WithMain.a "$d/lib/"
cp -r /usr/include/stb "$d/include/"
cp /usr/include/zlib.h /usr/include/zconf.h "$d/include/"
# CLI11 (header-only) for the examples' common library that bench_cuda_step links; its CMake
# package finds the prefix three levels up.
cp -r /usr/include/CLI "$d/include/"
mkdir -p "$d/share/cmake"
cp -r /usr/share/cmake/CLI11 "$d/share/cmake/"
cp /usr/lib/x86_64-linux-gnu/libz.a "$d/lib/"
# Google Benchmark: the package's own relocatable layout (its CMake files find the prefix three
# levels up), shared library included (Debian ships no static one).
arch=x86_64-linux-gnu
mkdir -p "$d/lib/$arch/cmake"
cp -r /usr/include/benchmark "$d/include/"
cp -r /usr/lib/$arch/cmake/benchmark "$d/lib/$arch/cmake/"
cp -P /usr/lib/$arch/libbenchmark.so* /usr/lib/$arch/libbenchmark_main.a "$d/lib/$arch/"
du -sh "$d"
