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
