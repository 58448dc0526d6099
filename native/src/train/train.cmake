# The training engine (native/src/train), included from native/CMakeLists.txt after the
# selftune_native target is defined. Kept here so the engine's build lives with its code.
#
# -O3, and the host's vector extensions when ggml is built for them (GGML_NATIVE, the
# default): the CPU reference's kernels are written so the compiler can vectorize them
# without -ffast-math (independent per-lane partial sums), keeping results deterministic.

file(GLOB_RECURSE SELFTUNE_TRAIN_SOURCES CONFIGURE_DEPENDS "${CMAKE_CURRENT_LIST_DIR}/*.cpp")
target_sources(selftune_native PRIVATE ${SELFTUNE_TRAIN_SOURCES})

set(_selftune_train_flags "-O3")
if (GGML_NATIVE AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    list(APPEND _selftune_train_flags "-march=native")
endif()
set_source_files_properties(${SELFTUNE_TRAIN_SOURCES} PROPERTIES COMPILE_OPTIONS "${_selftune_train_flags}")
