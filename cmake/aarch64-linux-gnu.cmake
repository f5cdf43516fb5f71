# Cross-compiling for arm64 Linux with Debian's gcc-aarch64-linux-gnu:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DHEARTH_KERNELS_ONLY=ON
# Run the results with qemu-user: qemu-aarch64 -L /usr/aarch64-linux-gnu PROGRAM
# (tests/cli/test_neon_qemu.sh does both). A full build (without
# HEARTH_KERNELS_ONLY) also needs the arm64 -dev packages of sqlite3, libyaml,
# cJSON, ncurses and libmicrohttpd where pkg-config can find them.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(HEARTH_CROSS_PREFIX aarch64-linux-gnu- CACHE STRING "Prefix of the cross tools")
set(CMAKE_C_COMPILER ${HEARTH_CROSS_PREFIX}gcc)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Run freshly built test programs through qemu (ctest, try_run).
find_program(HEARTH_QEMU_AARCH64 qemu-aarch64)
if(HEARTH_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${HEARTH_QEMU_AARCH64};-L;/usr/aarch64-linux-gnu)
endif()

# pkg-config must look at arm64 libraries, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
