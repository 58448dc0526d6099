# The training engine (native/src/train), included from native/CMakeLists.txt after the
# selftune_native target is defined. Kept here so the engine's build lives with its code.
#
# -O3, and the vector extensions ggml is built for (SELFTUNE_ARCH_FLAGS: x86-64-v3 by
# default, the same on every x86-64 machine): the CPU reference's kernels are written so the compiler can vectorize them
# without -ffast-math (independent per-lane partial sums), keeping results deterministic.

file(GLOB_RECURSE SELFTUNE_TRAIN_SOURCES CONFIGURE_DEPENDS "${CMAKE_CURRENT_LIST_DIR}/*.cpp")
# cuda/ is the CUDA backend, its host files included: built only with SELFTUNE_TRAIN_CUDA (below).
list(FILTER SELFTUNE_TRAIN_SOURCES EXCLUDE REGEX "/train/cuda/")
target_sources(selftune_native PRIVATE ${SELFTUNE_TRAIN_SOURCES})
# The engine without its N-API surface, for executables outside the addon.
set(SELFTUNE_TRAIN_ENGINE_SOURCES ${SELFTUNE_TRAIN_SOURCES})
list(FILTER SELFTUNE_TRAIN_ENGINE_SOURCES EXCLUDE REGEX "/napi_[^/]*\\.cpp$")

set(_selftune_train_flags "-O3")
if (SELFTUNE_ARCH_FLAGS AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    list(APPEND _selftune_train_flags "${SELFTUNE_ARCH_FLAGS}")
endif()
set_source_files_properties(${SELFTUNE_TRAIN_SOURCES} PROPERTIES COMPILE_OPTIONS "${_selftune_train_flags}")

# The CUDA backend (kernels, cuBLAS GEMMs, the sessions) as one static library: the addon
# links what it references, the GPU checkers (native/CMakeLists.txt) link what they need.
# Deterministic kernels: no --use_fast_math.
if (SELFTUNE_TRAIN_CUDA)
    file(GLOB SELFTUNE_TRAIN_CUDA_SOURCES CONFIGURE_DEPENDS
         "${CMAKE_CURRENT_LIST_DIR}/cuda/*.cu" "${CMAKE_CURRENT_LIST_DIR}/cuda/*.cpp")
    add_library(selftune_train_cuda STATIC ${SELFTUNE_TRAIN_CUDA_SOURCES})
    target_include_directories(selftune_train_cuda PUBLIC "${CMAKE_CURRENT_LIST_DIR}/..")
    target_link_libraries(selftune_train_cuda PUBLIC ggml-base CUDA::cudart CUDA::cublas CUDA::cublasLt)
    # One CUDA runtime in the process, the shared one (ggml-cuda's, when it is built too).
    set_target_properties(selftune_train_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Shared POSITION_INDEPENDENT_CODE ON)
    target_compile_options(selftune_train_cuda PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-O3> $<$<COMPILE_LANGUAGE:CUDA>:-O3>)
    target_link_libraries(selftune_native PRIVATE selftune_train_cuda)
    target_compile_definitions(selftune_native PRIVATE SELFTUNE_TRAIN_CUDA=1)
    set_target_properties(selftune_native PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
endif()
