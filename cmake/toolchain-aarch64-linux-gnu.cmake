# SPDX-License-Identifier: MIT
# Cross-builds sigsafe for Linux on aarch64 with Debian's cross compiler
# (gcc-aarch64-linux-gnu) and runs what it builds under qemu-user
# (qemu-aarch64).  Check and libsigsegv come from Debian's arm64 packages
# (dpkg --add-architecture arm64; check:arm64, libsigsegv-dev:arm64), which
# install under /usr/lib/aarch64-linux-gnu.  tools/test.sh aarch64 sets all
# this up:
#   cmake -S . -B build/aarch64 \
#       -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(SIGSAFE_CROSS_TRIPLET aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${SIGSAFE_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${SIGSAFE_CROSS_TRIPLET}-g++)

# Libraries and headers from the cross sysroot and the arm64 multiarch
# directories; programs (cmake, sh, pkg-config) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${SIGSAFE_CROSS_TRIPLET})
set(CMAKE_LIBRARY_ARCHITECTURE ${SIGSAFE_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config (Check ships only check.pc) must read the arm64 .pc files.
set(ENV{PKG_CONFIG_LIBDIR}
    "/usr/lib/${SIGSAFE_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")

# ctest runs every test program through qemu-user.  The arm64 dynamic loader
# and libc come from libc6:arm64, which installs them where an arm64 system
# has them (/lib/ld-linux-aarch64.so.1, /lib/aarch64-linux-gnu), so qemu
# needs no -L prefix; qemu 7.2 with -L hangs in the child of a fork.
find_program(SIGSAFE_QEMU_AARCH64 qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${SIGSAFE_QEMU_AARCH64})
