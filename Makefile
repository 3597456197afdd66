# Thin wrapper over the CMake presets (CMakePresets.json). Every goal first checks the Debian
# packages (scripts/install-deps.sh), then configures, builds and runs.
#
#   make demo                   build the ResNet trainer and train ResNet-20 on Fashion-MNIST for one
#                               epoch (runs/demo), printing the test accuracy
#   make test                   release build, all tests through CTest, and the three consumer
#                               projects (find_package, add_subdirectory, pkg-config)
#   make bench                  build and run the benchmarks (build/bench/benchmarks/bench_*)
#   make asan                   the tests under AddressSanitizer + UBSan (clang), and the fuzz
#                               targets built
#   make tsan                   the threaded code's tests under ThreadSanitizer (clang, libomp with
#                               its Archer tool)
#   make fuzz                   each libFuzzer target for FUZZ_SECONDS (default 60) under ASan,
#                               after replaying fuzz/crafted/ and fuzz/corpus/ (tools/fuzz.sh)
#   make test-cuda-emu          the CUDA backend built against the CPU emulator (tools/cuda_emu)
#                               and its test suites (tests/cuda) run on this machine, no GPU needed
#   make install PREFIX=/opt/x  install the library, headers, CMake package and ember.pc
#   make clean                  remove the preset build folders

PREFIX ?= /usr/local
space := $(subst ,, )
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: deps demo test bench asan tsan fuzz test-cuda-emu install clean

deps:
	@scripts/install-deps.sh

demo: deps
	cmake --preset release
	cmake --build --preset release --target ember-train-resnet
	build/release/examples/ember-train-resnet --model resnet20 --epochs 1 --out runs/demo

test: deps
	cmake --preset release
	cmake --build --preset release
	ctest --preset release
	tests/consumer/run.sh build/release

bench:
	@scripts/install-deps.sh bench
	@set -e; \
	if [ ! -f benchmarks/CMakeLists.txt ]; then \
	  echo "make bench: no benchmarks exist yet (benchmarks/CMakeLists.txt is absent)"; exit 0; \
	fi; \
	cmake --preset bench; \
	cmake --build --preset bench; \
	found=0; \
	for b in build/bench/benchmarks/bench_*; do \
	  if [ -f "$$b" ] && [ -x "$$b" ]; then found=1; echo "== $$b"; "$$b"; fi; \
	done; \
	if [ $$found = 0 ]; then echo "make bench: no benchmark programs were built"; fi

asan:
	@scripts/install-deps.sh asan
	cmake --preset asan
	cmake --build --preset asan
	ctest --preset asan

# The tests of the threaded code: DataLoader workers, the OpenMP-parallel kernels (chunked by
# parallel_for), the determinism test across thread counts, the generators.
TSAN_TESTS := test_dataloader test_train_from_loader test_determinism test_elementwise test_reduce \
  test_linalg test_conv test_conv_direct test_random test_index test_tensor \
  test_attention_flash test_cross_entropy_fused test_normalization_fused test_optim_fused
tsan:
	@scripts/install-deps.sh asan
	cmake --preset tsan
	cmake --build --preset tsan --target $(TSAN_TESTS)
	ctest --preset tsan -R '^($(subst $(space),|,$(strip $(TSAN_TESTS)))):'
	@# The canary: a deliberate OpenMP race that ThreadSanitizer must report (exit status 66).
	clang++ -fsanitize=thread -fopenmp -O1 -g tests/sanitizers/tsan_canary.cpp -o build/tsan/tsan_canary
	@set +e; OMP_TOOL_LIBRARIES=/usr/lib/llvm-14/lib/libarcher.so \
	  TSAN_OPTIONS=ignore_noninstrumented_modules=1:exitcode=66 build/tsan/tsan_canary \
	  > build/tsan/tsan_canary.log 2>&1; rc=$$?; set -e; \
	if [ $$rc -eq 66 ] && grep -q "tsan_canary.cpp:14" build/tsan/tsan_canary.log && \
	   ! grep -q "tsan_canary.cpp:19" build/tsan/tsan_canary.log; then \
	  echo "tsan canary: the deliberate race was reported (and only it)"; \
	else cat build/tsan/tsan_canary.log; echo "tsan canary: ThreadSanitizer missed the race"; exit 1; fi

FUZZ_SECONDS ?= 60
fuzz:
	@scripts/install-deps.sh asan
	cmake --preset asan
	cmake --build --preset asan --target ember_fuzzers
	FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz.sh build/asan/fuzz

CUDA_TESTS := $(notdir $(basename $(wildcard tests/cuda/test_cuda_*.cpp)))
test-cuda-emu: deps
	cmake -S . -B build/cuda-emu -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA_EMULATE=ON \
	  -DEMBER_BUILD_EXAMPLES=OFF
	cmake --build build/cuda-emu --target $(CUDA_TESTS) cuda_emu_selftest
	ctest --test-dir build/cuda-emu -R "^(test_cuda_|cuda_emu)" --output-on-failure

install: deps
	cmake --preset release
	cmake --build --preset release --target ember
	cmake --install build/release --prefix "$(PREFIX)"

clean:
	rm -rf build/release build/debug build/asan build/tsan build/cpu build/cuda build/bench build/cuda-emu
