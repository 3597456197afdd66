#!/usr/bin/env bash
# Collects into .gpu-deps/ the build dependencies that the GPU machine's image may lack (Catch2 v2,
# stb, zlib: headers and static libraries from this machine's Debian packages), so that
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
cp /usr/lib/x86_64-linux-gnu/libz.a "$d/lib/"
du -sh "$d"
