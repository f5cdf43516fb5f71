# Optional device backends. Each is AUTO (build when its toolkit is found),
# ON (fail when it is not) or OFF. The CPU backend is always built.

# CUDA -----------------------------------------------------------------
set(HEARTH_HAVE_CUDA OFF)
if(NOT HEARTH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  file(GLOB HEARTH_CUDA_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/backends/cuda/*.cu)
  if(CMAKE_CUDA_COMPILER AND HEARTH_CUDA_SRC)
    set(HEARTH_HAVE_CUDA ON)
  elseif(HEARTH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "HEARTH_CUDA=ON but no CUDA compiler (nvcc) or no CUDA sources were found")
  endif()
endif()
message(STATUS "Hearth CUDA backend: ${HEARTH_HAVE_CUDA}")

# CUDA wiring (the CUDA backend, backends/cuda/). The .cu files go into the
# `hearth` library itself; cudart is linked statically so the same binary runs
# (and falls back to the CPU) on a machine with no NVIDIA driver. The C flags
# the top level adds to every source (-Wall, -fsanitize=...) mean nothing to
# nvcc, so they are fenced to C here. CI (or HEARTH_CUDA_FAST=ON) builds one
# architecture to keep the compile quick; HEARTH_CUDA_ARCHS overrides both.
if(HEARTH_HAVE_CUDA)
  option(HEARTH_CUDA_FAST "Build the CUDA kernels for sm_90 only (quick compile)" OFF)
  if(DEFINED ENV{CI} OR HEARTH_CUDA_FAST)
    set(HEARTH_CUDA_ARCHS_DEFAULT "90")
  else()
    set(HEARTH_CUDA_ARCHS_DEFAULT "80;86;89;90")
  endif()
  set(HEARTH_CUDA_ARCHS "${HEARTH_CUDA_ARCHS_DEFAULT}" CACHE STRING "CUDA architectures of the kernels")
  set(CMAKE_CUDA_ARCHITECTURES "${HEARTH_CUDA_ARCHS}")
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)

  # Fence the directory-wide C options away from nvcc on the targets made so far.
  get_target_property(_hearth_opts hearth COMPILE_OPTIONS)
  if(_hearth_opts)
    set(_fenced "")
    foreach(o IN LISTS _hearth_opts)
      list(APPEND _fenced "$<$<COMPILE_LANGUAGE:C>:${o}>")
    endforeach()
    set_target_properties(hearth PROPERTIES COMPILE_OPTIONS "${_fenced}")
  endif()
  # ...and on the targets made after this file (the app, the tests).
  get_directory_property(_dir_opts COMPILE_OPTIONS)
  if(_dir_opts)
    set(_fenced "")
    foreach(o IN LISTS _dir_opts)
      list(APPEND _fenced "$<$<COMPILE_LANGUAGE:C>:${o}>")
    endforeach()
    set_directory_properties(PROPERTIES COMPILE_OPTIONS "${_fenced}")
  endif()

  target_sources(hearth PRIVATE ${HEARTH_CUDA_SRC})
  set_target_properties(hearth PROPERTIES CUDA_RUNTIME_LIBRARY Static CUDA_SEPARABLE_COMPILATION OFF
                                          CUDA_ARCHITECTURES "${HEARTH_CUDA_ARCHS}")
  target_compile_definitions(hearth PUBLIC HEARTH_HAVE_CUDA=1)
  target_compile_options(hearth PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo --expt-relaxed-constexpr>)
  if(HEARTH_WERROR)
    target_compile_options(hearth PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
  endif()
  # cudart_static brings -ldl -lrt -lpthread; host code of the .cu files is C++.
  target_link_libraries(hearth PUBLIC CUDA::cudart_static stdc++)

  # GPU-only checks (tests/gpu/run.sh runs them; not in ctest: CI has no GPU).
  if(HEARTH_TESTS)
    add_executable(test_cuda_ops ${CMAKE_SOURCE_DIR}/tests/gpu/test_cuda_ops.c)
    target_include_directories(test_cuda_ops PRIVATE ${CMAKE_SOURCE_DIR}/tests)
    target_link_libraries(test_cuda_ops PRIVATE hearth)
    add_executable(cuda_bw_probe ${CMAKE_SOURCE_DIR}/tests/gpu/bw_probe.cu)
    set_target_properties(cuda_bw_probe PROPERTIES CUDA_RUNTIME_LIBRARY Static)
  endif()
endif()

# Vulkan ---------------------------------------------------------------
set(HEARTH_HAVE_VULKAN OFF)
if(NOT HEARTH_VULKAN STREQUAL "OFF")
  find_package(Vulkan QUIET COMPONENTS glslc)
  file(GLOB HEARTH_VULKAN_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/backends/vulkan/*.c)
  if(Vulkan_FOUND AND Vulkan_GLSLC_EXECUTABLE AND HEARTH_VULKAN_SRC)
    set(HEARTH_HAVE_VULKAN ON)
  elseif(HEARTH_VULKAN STREQUAL "ON")
    message(FATAL_ERROR "HEARTH_VULKAN=ON but the Vulkan headers/loader or glslc were not found (packaging/install-deps.sh installs them)")
  endif()
endif()
message(STATUS "Hearth Vulkan backend: ${HEARTH_HAVE_VULKAN}")

# Vulkan wiring (the Vulkan backend, backends/vulkan/). Every shaders/*.comp is
# compiled by glslc at build time and embedded (backends/vulkan/embed_spirv.cmake
# writes vk_shaders_spv.c) so the binary needs no shader files at run time.
if(HEARTH_HAVE_VULKAN)
  file(GLOB HEARTH_VK_SHADERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/shaders/*.comp)
  # Shaders #include the .glsl files: any change there rebuilds them all.
  file(GLOB HEARTH_VK_GLSL CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/shaders/*.glsl)
  set(_spv_dir ${CMAKE_BINARY_DIR}/shaders)
  file(MAKE_DIRECTORY ${_spv_dir})
  set(_spvs "")
  foreach(s IN LISTS HEARTH_VK_SHADERS)
    get_filename_component(n ${s} NAME_WE)
    add_custom_command(OUTPUT ${_spv_dir}/${n}.spv
      COMMAND ${Vulkan_GLSLC_EXECUTABLE} --target-env=vulkan1.2 -O -Werror -o ${_spv_dir}/${n}.spv ${s}
      DEPENDS ${s} ${HEARTH_VK_GLSL} COMMENT "glslc ${n}.comp" VERBATIM)
    list(APPEND _spvs ${_spv_dir}/${n}.spv)
  endforeach()
  add_custom_command(OUTPUT ${_spv_dir}/vk_shaders_spv.c
    COMMAND ${CMAKE_COMMAND} "-DOUT=${_spv_dir}/vk_shaders_spv.c" "-DSPV=${_spvs}"
            -P ${CMAKE_SOURCE_DIR}/backends/vulkan/embed_spirv.cmake
    DEPENDS ${_spvs} ${CMAKE_SOURCE_DIR}/backends/vulkan/embed_spirv.cmake COMMENT "embedding SPIR-V" VERBATIM)
  target_sources(hearth PRIVATE ${HEARTH_VULKAN_SRC} ${_spv_dir}/vk_shaders_spv.c)
  target_compile_definitions(hearth PUBLIC HEARTH_HAVE_VULKAN=1)
  target_link_libraries(hearth PUBLIC Vulkan::Vulkan)
endif()
