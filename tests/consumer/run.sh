#!/usr/bin/env bash
# Proves the three ways to consume Ember. Installs the library from an Ember build folder into a
# temporary prefix, then builds and runs a small program through
#   1. find_package(ember CONFIG REQUIRED) against that prefix,
#   2. add_subdirectory() of this source tree (a second, independent build of the library),
#   3. pkg-config --cflags --libs ember, with a plain Makefile.
# Usage: tests/consumer/run.sh <ember build dir>   (e.g. build/release; `make test` runs it)
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 <ember build dir>" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "$1" && pwd)
[[ -f "$build/CMakeCache.txt" ]] || { echo "$0: $build is not a CMake build folder" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ember-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
jobs=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}
# Build the add_subdirectory copy the way the tested build was configured.
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
cuda=$(cache_value EMBER_CUDA)
build_type=$(cache_value CMAKE_BUILD_TYPE)

step() { printf '\n== consumer: %s\n' "$*"; }
fail() { echo "FAILED: consumer $*" >&2; exit 1; }

# Runs a consumer program and requires its own success line.
run_consumer() {
  local name=$1 exe=$2 out
  out=$("$exe") || { echo "$out"; fail "$name: $exe exited non-zero"; }
  echo "$out"
  grep -qx "ember consumer ($name): OK" <<<"$out" || fail "$name: no OK line in its output"
}

step "install $build into $prefix"
cmake --build "$build" --target ember -j "$jobs" >/dev/null
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/ember/ember.hpp include/ember/tensor.hpp include/ember/cuda/cuda.hpp; do
  [[ -f "$prefix/$f" ]] || fail "install: $f is missing"
done
find "$prefix" -name 'libember.*' | grep -q . || fail "install: no libember"
config=$(find "$prefix" -name emberConfig.cmake -print -quit)
pcfile=$(find "$prefix" -name ember.pc -print -quit)
[[ -n "$config" && -n "$pcfile" ]] || fail "install: emberConfig.cmake or ember.pc is missing"
[[ -f "$(dirname "$config")/emberConfigVersion.cmake" ]] || fail "install: no emberConfigVersion.cmake"
# Ember's own build flags (warnings, -march=native, sanitizers) must not reach consumers.
if grep -qE 'ember_flags|-march|-Werror|-fsanitize' "$(dirname "$config")"/emberTargets*.cmake \
  "$pcfile"; then
  fail "install: the package leaks Ember's private build flags"
fi

step "find_package"
cmake -S "$here/find_package" -B "$work/find_package" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE="${build_type:-Release}" >/dev/null || fail "find_package: configure"
cmake --build "$work/find_package" -j "$jobs" || fail "find_package: build"
run_consumer find_package "$work/find_package/consumer"

step "add_subdirectory (builds the library again from $root)"
# This copy proves the CMake integration (CUDA included when the tested build has it); the
# consumer runs no GPU code, so the CUDA sources go to PTX only (the "-virtual" architectures: no
# ptxas) and both compilers optimise at -O1. The library is built twice in every `make test`; this
# makes the second build about half as long.
bt=${build_type:-Release}
ptx_archs=""
archs=$(cache_value CMAKE_CUDA_ARCHITECTURES)
for arch in $(tr ';' ' ' <<<"${archs:-90a}"); do  # 90a: Ember's default (CMakeLists.txt)
  ptx_archs+="${ptx_archs:+;}${arch%-real}"
  [[ $arch == *-virtual ]] || ptx_archs+="-virtual"
done
cmake -S "$here/add_subdirectory" -B "$work/add_subdirectory" -DEMBER_SOURCE_DIR="$root" \
  -DEMBER_CUDA="${cuda:-AUTO}" -DCMAKE_BUILD_TYPE="$bt" \
  ${ptx_archs:+-DCMAKE_CUDA_ARCHITECTURES="$ptx_archs"} \
  -DCMAKE_CXX_FLAGS_${bt^^}="-O1 -DNDEBUG" -DCMAKE_CUDA_FLAGS_${bt^^}="-O1 -DNDEBUG" >/dev/null ||
  fail "add_subdirectory: configure"
cmake --build "$work/add_subdirectory" -j "$jobs" >/dev/null || fail "add_subdirectory: build"
for t in test_ ember-demo; do  # Ember's own tests and examples stay out of a consumer's build
  if find "$work/add_subdirectory" -type f -name "$t*" -perm -u+x | grep -q .; then
    fail "add_subdirectory: Ember built its $t targets inside a consumer"
  fi
done
run_consumer add_subdirectory "$work/add_subdirectory/consumer"

step "pkg-config"
PKG_CONFIG_PATH="$(dirname "$pcfile")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
echo "pkg-config --cflags --libs ember: $(pkg-config --cflags --libs ember)"
mkdir -p "$work/pkgconfig"
make -C "$here/pkgconfig" OUT="$work/pkgconfig" || fail "pkg-config: build"
# A shared libember (BUILD_SHARED_LIBS=ON) is found at run time like any library outside the
# loader's path.
LD_LIBRARY_PATH="$(dirname "$(dirname "$pcfile")")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  run_consumer pkg-config "$work/pkgconfig/consumer"

printf '\nAll three consumer projects built and ran.\n'
