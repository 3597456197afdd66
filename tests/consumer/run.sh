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
# This copy proves the CMake integration (CUDA included when the tested build has it). When the
# tested build compiled through ccache (EMBER_CCACHE, the default when ccache is installed), the
# copy is configured as it was, flag for flag, and each compile comes from the cache: the same
# objects, without compiling the library a second time (6-7 minutes of `make test` on two cores).
# Without ccache the consumer, which runs no GPU code, gets the CUDA sources as PTX only (the
# "-virtual" architectures: no ptxas) and both compilers at -O1, about half as long.
bt=${build_type:-Release}
ccache_prog=$(cache_value EMBER_CCACHE_PROGRAM)
ccache_count() {  # ccache_count KEY...: the sum of those counters in ccache's statistics
  "$ccache_prog" --print-stats | awk -v keys=" $* " 'index(keys, " " $1 " ") { n += $2 } END { print n + 0 }'
}
if [[ $(cache_value EMBER_CCACHE) == ON && -n $ccache_prog && $ccache_prog != *NOTFOUND ]]; then
  flags=(-DEMBER_CCACHE=ON)
  for v in CMAKE_CXX_COMPILER CMAKE_CXX_FLAGS CMAKE_CUDA_FLAGS CMAKE_CUDA_ARCHITECTURES \
    CMAKE_CXX_FLAGS_${bt^^} CMAKE_CUDA_FLAGS_${bt^^} EMBER_NATIVE EMBER_WERROR; do
    if grep -q "^$v:" "$build/CMakeCache.txt"; then flags+=("-D$v=$(cache_value "$v")"); fi
  done
else
  ccache_prog=""
  ptx_archs=""
  archs=$(cache_value CMAKE_CUDA_ARCHITECTURES)
  for arch in $(tr ';' ' ' <<<"${archs:-90a}"); do  # 90a: Ember's default (CMakeLists.txt)
    ptx_archs+="${ptx_archs:+;}${arch%-real}"
    [[ $arch == *-virtual ]] || ptx_archs+="-virtual"
  done
  flags=(${ptx_archs:+-DCMAKE_CUDA_ARCHITECTURES="$ptx_archs"}
    -DCMAKE_CXX_FLAGS_${bt^^}="-O1 -DNDEBUG" -DCMAKE_CUDA_FLAGS_${bt^^}="-O1 -DNDEBUG")
fi
cmake -S "$here/add_subdirectory" -B "$work/add_subdirectory" -DEMBER_SOURCE_DIR="$root" \
  -DEMBER_CUDA="${cuda:-AUTO}" -DCMAKE_BUILD_TYPE="$bt" "${flags[@]}" >/dev/null ||
  fail "add_subdirectory: configure"
if [[ -n $ccache_prog ]]; then
  hit_keys="direct_cache_hit preprocessed_cache_hit"
  hits=$(ccache_count $hit_keys) misses=$(ccache_count cache_miss)
fi
cmake --build "$work/add_subdirectory" -j "$jobs" >/dev/null || fail "add_subdirectory: build"
if [[ -n $ccache_prog ]]; then
  echo "ccache: $(($(ccache_count $hit_keys) - hits)) compiles from the cache," \
    "$(($(ccache_count cache_miss) - misses)) compiled"
else
  echo "(no ccache: the library compiled again, CUDA as PTX only, at -O1)"
fi
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
