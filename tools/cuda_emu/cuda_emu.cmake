# EMBER_CUDA_EMULATE=ON: the CUDA backend (src/cuda/*.cu) compiled as plain C++ against the CPU
# emulation of the CUDA programming model in tools/cuda_emu (see its README.md). No nvcc, no
# cudart: the emulator reports one GPU, so cuda::is_available() is true and the CUDA tests run.
#
# Included from the top-level CMakeLists.txt before its CUDA section. The real CUDA branch is
# skipped (EMBER_CUDA is shadowed to OFF); once the top-level file is processed, the deferred
# ember_cuda_emu_setup() swaps the stub runtime in the ember target for the rewritten CUDA sources.

set(EMBER_CUDA OFF)  # a normal variable: shadows the cache entry for the CUDA section below
find_package(Python3 REQUIRED COMPONENTS Interpreter)
message(STATUS "Ember: CUDA backend emulated on the CPU (tools/cuda_emu)")

set(EMBER_CUDA_EMU_DIR ${CMAKE_CURRENT_LIST_DIR})

function(ember_cuda_emu_setup)
  if(NOT TARGET ember)
    message(FATAL_ERROR "cuda_emu: no ember target to attach the emulated CUDA backend to")
  endif()
  set(src_dir ${PROJECT_SOURCE_DIR}/src/cuda)
  set(gen_root ${PROJECT_BINARY_DIR}/cuda_emu/src)
  set(gen_dir ${gen_root}/cuda)
  set(rewrite ${EMBER_CUDA_EMU_DIR}/rewrite_launches.py)

  # The stub runtime goes; no_cuda.cpp stays for the families without a .cu.
  get_target_property(sources ember SOURCES)
  list(REMOVE_ITEM sources src/cuda/runtime_stub.cpp ${src_dir}/runtime_stub.cpp)
  set_target_properties(ember PROPERTIES SOURCES "${sources}")

  file(GLOB cu_sources CONFIGURE_DEPENDS ${src_dir}/*.cu)
  file(GLOB cu_headers CONFIGURE_DEPENDS ${src_dir}/*.cuh)
  set(generated "")
  set(families "")
  foreach(input ${cu_sources} ${cu_headers})
    get_filename_component(name ${input} NAME)
    if(input MATCHES "\\.cu$")
      set(output ${gen_dir}/${name}.cpp)
      get_filename_component(family ${input} NAME_WE)
      string(TOUPPER ${family} family)
      list(APPEND families EMBER_CUDA_HAS_${family})
    else()
      set(output ${gen_dir}/${name})
    endif()
    add_custom_command(OUTPUT ${output}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${gen_dir}
      COMMAND Python3::Interpreter ${rewrite} ${input} ${output}
      DEPENDS ${input} ${rewrite}
      COMMENT "cuda_emu: rewriting ${name}"
      VERBATIM)
    list(APPEND generated ${output})
  endforeach()
  list(FILTER generated INCLUDE REGEX "\\.cu\\.cpp$")
  set(gen_headers "")
  foreach(h ${cu_headers})
    get_filename_component(name ${h} NAME)
    list(APPEND gen_headers ${gen_dir}/${name})
  endforeach()

  file(GLOB emu_runtime CONFIGURE_DEPENDS ${EMBER_CUDA_EMU_DIR}/src/*.cpp)
  target_sources(ember PRIVATE ${generated} ${gen_headers} ${emu_runtime})
  set_source_files_properties(${generated} ${gen_headers} PROPERTIES GENERATED TRUE)
  # Rewritten .cuh copies shadow the originals for quoted includes ("cuda/loops.cuh"); the
  # toolkit's headers are the emulator's. Exact IEEE arithmetic: no contraction into fma.
  set_source_files_properties(${generated} PROPERTIES
    COMPILE_OPTIONS "-iquote;${gen_root};-ffp-contract=off;-Wno-unknown-pragmas;-Wno-sign-compare")
  set_source_files_properties(${emu_runtime} PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
  target_include_directories(ember BEFORE PRIVATE ${EMBER_CUDA_EMU_DIR}/include)
  target_compile_definitions(ember PRIVATE EMBER_WITH_CUDA=1 EMBER_CUDA_EMULATED=1)
  set_source_files_properties(${PROJECT_SOURCE_DIR}/src/cuda/no_cuda.cpp PROPERTIES
    COMPILE_DEFINITIONS "${families}")

  # The emulator's own checks (tests/emu_selftest.cu): correct kernels, then each misuse aborting.
  if(EMBER_BUILD_TESTS)
    set(selftest_cpp ${PROJECT_BINARY_DIR}/cuda_emu/emu_selftest.cpp)
    add_custom_command(OUTPUT ${selftest_cpp}
      COMMAND Python3::Interpreter ${rewrite} ${EMBER_CUDA_EMU_DIR}/tests/emu_selftest.cu ${selftest_cpp}
      DEPENDS ${EMBER_CUDA_EMU_DIR}/tests/emu_selftest.cu ${rewrite}
      COMMENT "cuda_emu: rewriting emu_selftest.cu" VERBATIM)
    add_executable(cuda_emu_selftest ${selftest_cpp} ${emu_runtime})
    target_include_directories(cuda_emu_selftest BEFORE PRIVATE ${EMBER_CUDA_EMU_DIR}/include)
    target_compile_options(cuda_emu_selftest PRIVATE -ffp-contract=off)
    add_test(NAME "cuda_emu: selftest" COMMAND cuda_emu_selftest)
    foreach(misuse early_exit divergent shfl_exit big_shared block_size grid_y host_pointer
            memcpy_kind overflow mbar_deadlock mbar_uninit wgmma_refill wgmma_unfenced tma_unwaited named_leftover
            named_deadlock bulk_misaligned cluster_exited cluster_static cluster_grid
            cooperative_deadlock cooperative_size cooperative_cluster warp_priority_list
            bulk_unwaited)
      add_test(NAME "cuda_emu: detects ${misuse}" COMMAND cuda_emu_selftest ${misuse})
    endforeach()
  endif()
endfunction()

cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL ember_cuda_emu_setup)
