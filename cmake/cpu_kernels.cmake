# CPU kernel families by target architecture. The portable scalar kernels and
# the dispatcher (backends/cpu/*.c) are built everywhere; the SIMD folders only
# for the processor they are written for:
#   x86-64:  backends/cpu/avx2/*.c, backends/cpu/avx512/*.c (picked by CPUID)
#   aarch64: backends/cpu/neon/*.c (picked by getauxval; *_dotprod.c is the
#            one file built with -march=armv8.2-a+dotprod)
# hearth_add_cpu_kernels(TARGET) adds the folders of CMAKE_SYSTEM_PROCESSOR to
# TARGET and sets HEARTH_HAVE_<FAMILY>_KERNELS=1 for the dispatcher; a folder
# that holds no sources adds nothing. Any other processor gets scalar only.
set(HEARTH_CPU_DIR ${CMAKE_SOURCE_DIR}/backends/cpu)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(HEARTH_CPU_ARCH x86_64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(HEARTH_CPU_ARCH aarch64)
else()
  set(HEARTH_CPU_ARCH other)
endif()
message(STATUS "Hearth CPU kernels: ${HEARTH_CPU_ARCH} (${CMAKE_SYSTEM_PROCESSOR})")

function(hearth_add_cpu_kernels target)
  if(HEARTH_CPU_ARCH STREQUAL "x86_64")
    file(GLOB avx2_src CONFIGURE_DEPENDS ${HEARTH_CPU_DIR}/avx2/*.c)
    file(GLOB avx512_src CONFIGURE_DEPENDS ${HEARTH_CPU_DIR}/avx512/*.c)
    if(avx2_src)
      target_sources(${target} PRIVATE ${avx2_src})
      set_source_files_properties(${avx2_src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
      target_compile_definitions(${target} PRIVATE HEARTH_HAVE_AVX2_KERNELS=1)
    endif()
    if(avx512_src)
      target_sources(${target} PRIVATE ${avx512_src})
      set_source_files_properties(${avx512_src} PROPERTIES COMPILE_OPTIONS
        "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512vnni;-mavx2;-mfma;-mf16c")
      target_compile_definitions(${target} PRIVATE HEARTH_HAVE_AVX512_KERNELS=1)
    endif()
  elseif(HEARTH_CPU_ARCH STREQUAL "aarch64")
    file(GLOB neon_src CONFIGURE_DEPENDS ${HEARTH_CPU_DIR}/neon/*.c)
    if(neon_src)
      target_sources(${target} PRIVATE ${neon_src})
      file(GLOB dotprod_src CONFIGURE_DEPENDS ${HEARTH_CPU_DIR}/neon/*_dotprod.c)
      set_source_files_properties(${dotprod_src} PROPERTIES COMPILE_OPTIONS "-march=armv8.2-a+dotprod")
      target_compile_definitions(${target} PRIVATE HEARTH_HAVE_NEON_KERNELS=1)
    endif()
  endif()
endfunction()

# HEARTH_KERNELS_ONLY: no third-party library (sqlite3, libyaml, cJSON,
# ncurses, microhttpd), so a bare cross toolchain builds it. Two libraries:
# hearth_kernels (dtype conversions, clocks, scalar and SIMD kernels, dispatcher) with
# the tests that need nothing else (test_simd, test_gemm), and hearth_core
# (the runtime and CPU backend without the files that use those libraries)
# with tests/cli/neon_greedy.c, a greedy decoder. Used to cross-build for
# arm64 and run under qemu (tests/cli/test_neon_qemu.sh).
function(hearth_build_kernels_only)
  # the row quantizers dtype.c's traits table points at (core/quant_iq2.c, quant_iq3.c, ...)
  file(GLOB quant_src CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/core/quant_*.c)
  add_library(hearth_kernels STATIC
    ${quant_src}
    ${CMAKE_SOURCE_DIR}/core/dtype.c
    ${CMAKE_SOURCE_DIR}/core/dtype_iq.c
    ${CMAKE_SOURCE_DIR}/core/dtype_iq_grids.c
    ${CMAKE_SOURCE_DIR}/core/os.c
    ${HEARTH_CPU_DIR}/cpu_quants_ref.c
    ${HEARTH_CPU_DIR}/cpu_iq_ref.c
    ${HEARTH_CPU_DIR}/cpu_features.c)
  target_include_directories(hearth_kernels PUBLIC ${CMAKE_SOURCE_DIR})
  target_compile_definitions(hearth_kernels PUBLIC _GNU_SOURCE HEARTH_VERSION="${PROJECT_VERSION}")
  target_link_libraries(hearth_kernels PUBLIC Threads::Threads m)
  hearth_add_cpu_kernels(hearth_kernels)

  # The floors without a third-party library: core/, backends/ (CPU) and the
  # runtime folders the greedy decoder needs. runtime/store (SQLite) and
  # runtime/template (cJSON) are left out; the engine's reference to the store
  # is never linked, since neon_greedy does not call the engine.
  file(GLOB core_src CONFIGURE_DEPENDS
    ${CMAKE_SOURCE_DIR}/core/*.c ${CMAKE_SOURCE_DIR}/backends/*.c ${HEARTH_CPU_DIR}/*.c
    ${CMAKE_SOURCE_DIR}/runtime/format/*.c ${CMAKE_SOURCE_DIR}/runtime/text/*.c
    ${CMAKE_SOURCE_DIR}/runtime/kv/*.c ${CMAKE_SOURCE_DIR}/runtime/model/*.c ${CMAKE_SOURCE_DIR}/runtime/serving/*.c)
  list(REMOVE_ITEM core_src ${quant_src}
    ${CMAKE_SOURCE_DIR}/core/dtype.c ${CMAKE_SOURCE_DIR}/core/dtype_iq.c ${CMAKE_SOURCE_DIR}/core/dtype_iq_grids.c
    ${CMAKE_SOURCE_DIR}/core/os.c ${HEARTH_CPU_DIR}/cpu_quants_ref.c ${HEARTH_CPU_DIR}/cpu_iq_ref.c
    ${HEARTH_CPU_DIR}/cpu_features.c)
  add_library(hearth_core STATIC ${core_src})
  target_link_libraries(hearth_core PUBLIC hearth_kernels ${CMAKE_DL_LIBS})
  get_target_property(kernel_defs hearth_kernels COMPILE_DEFINITIONS) # HEARTH_HAVE_*, for cpu_backend.c
  target_compile_definitions(hearth_core PRIVATE ${kernel_defs})
  add_executable(neon_greedy ${CMAKE_SOURCE_DIR}/tests/cli/neon_greedy.c)
  target_link_libraries(neon_greedy PRIVATE hearth_core)

  enable_testing()
  foreach(name test_simd test_gemm)
    add_executable(${name} ${CMAKE_SOURCE_DIR}/tests/unit/backends/${name}.c)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
    target_link_libraries(${name} PRIVATE hearth_kernels)
    add_test(NAME unit/${name} COMMAND ${name})
    set_tests_properties(unit/${name} PROPERTIES SKIP_RETURN_CODE 77 ENVIRONMENT "HEARTH_TEST_NO_BENCH=1")
  endforeach()
endfunction()
