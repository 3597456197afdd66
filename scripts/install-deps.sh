#!/usr/bin/env bash
# Installs the Debian packages Ember needs to build and test. Quick and silent when everything is
# present. As root it installs what is missing with apt-get; otherwise it prints the exact
# apt-get command and exits non-zero.
#
#   scripts/install-deps.sh          compiler, CMake, pkg-config, Catch2 (what `make test` needs)
#   scripts/install-deps.sh asan     also clang, its sanitizer and libFuzzer runtimes and LLVM's
#                                    OpenMP runtime (the asan and tsan presets, make fuzz)
#   scripts/install-deps.sh bench    also Google Benchmark, OpenBLAS and Eigen (make bench)
#   scripts/install-deps.sh ccache   also ccache (the build compiles through it when it is found;
#                                    CI installs it so that make test's second build of the
#                                    library, the add_subdirectory consumer, comes from the cache)
#
# The CUDA backend needs NVIDIA's CUDA toolkit (nvcc); it is optional and not a Debian package
# here, so this script does not install it.
set -euo pipefail

# build-essential: g++ 12 (with libgomp, g++'s OpenMP runtime) and make. zlib1g-dev and libstb-dev
# are the data readers' libraries; nlohmann-json3-dev (header-only, private) reads tokenizer JSON;
# libcli11-dev parses the trainers' flags; dataset-fashion-mnist is the demo's data and the
# readers' real-file tests; bible-kjv prints the GPT trainer's default corpus.
packages=(build-essential g++ cmake pkg-config catch2 zlib1g-dev libstb-dev nlohmann-json3-dev
  libcli11-dev dataset-fashion-mnist bible-kjv)
for arg in "$@"; do
  case "$arg" in
    # clang's -fopenmp needs LLVM's libomp (whose Archer tool lets ThreadSanitizer see OpenMP's
    # synchronisation); libclang-rt-dev holds the ASan/UBSan/TSan and libFuzzer runtimes.
    asan) packages+=(clang libomp-dev libclang-rt-dev) ;;
    bench) packages+=(libbenchmark-dev libopenblas-dev libeigen3-dev) ;;  # Benchmark and the GEMM peers
    ccache) packages+=(ccache) ;;
    *) echo "install-deps.sh: unknown argument '$arg' (known: asan, bench, ccache)" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps.sh: not a Debian system; make sure these (or equivalents) are installed:" \
    "${packages[*]}" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

install_cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [[ $(id -u) -ne 0 ]]; then
  echo "Ember needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with:" >&2
  echo "  sudo ${install_cmd[*]}" >&2
  exit 1
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! "${install_cmd[@]}"; then
  # The package lists may be stale or absent (a fresh container): refresh them once and retry.
  apt-get update
  "${install_cmd[@]}"
fi
