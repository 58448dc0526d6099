# The training engine (native/src/train), included from native/CMakeLists.txt after the
# selftune_native target is defined. Kept here so the engine's build lives with its code.
#
# -O3 and OpenMP *SIMD* pragmas only (no OpenMP runtime): the CPU reference's inner loops
# are reductions, which the compiler vectorizes only when told it may reorder the sums;
# `#pragma omp simd reduction` says so loop by loop, unlike -ffast-math for everything.

file(GLOB_RECURSE SELFTUNE_TRAIN_SOURCES CONFIGURE_DEPENDS "${CMAKE_CURRENT_LIST_DIR}/*.cpp")
target_sources(selftune_native PRIVATE ${SELFTUNE_TRAIN_SOURCES})

set(_selftune_train_flags "-O3" "-fopenmp-simd")
if (GGML_NATIVE AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    list(APPEND _selftune_train_flags "-march=native")
endif()
set_source_files_properties(${SELFTUNE_TRAIN_SOURCES} PROPERTIES COMPILE_OPTIONS "${_selftune_train_flags}")
