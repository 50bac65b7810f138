# SPDX-License-Identifier: MIT
# Install rules: headers, libsigsafe.a and libsigsafe_guard.a, the CMake
# package (sigsafeConfig.cmake, its version file, the exported targets
# sigsafe::sigsafe and sigsafe::guard, and FindLibSigsegv.cmake for the guard
# component), the pkg-config files sigsafe.pc and sigsafe-guard.pc, and
# LICENSE and CHANGELOG.md.  The man pages are installed by docs/.
# Included from the top-level CMakeLists.txt after the library targets exist.
# Every path is relative to the install prefix, so that
# `cmake --install <build> --prefix <dir>` works and the result can be moved.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SIGSAFE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sigsafe)

install(FILES ${PROJECT_SOURCE_DIR}/include/sigsafe.h
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/CHANGELOG.md
    DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(TARGETS sigsafe EXPORT sigsafeTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# Core and guard are exported separately: the guard targets, and the
# libsigsegv they need, are loaded only when the guard component is asked for.
install(EXPORT sigsafeTargets NAMESPACE sigsafe::
    DESTINATION ${SIGSAFE_CMAKE_DIR})

if(TARGET sigsafe_guard)
    install(FILES ${PROJECT_SOURCE_DIR}/include/sigsafe_guard.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
    install(TARGETS sigsafe_guard EXPORT sigsafeGuardTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
    install(EXPORT sigsafeGuardTargets NAMESPACE sigsafe::
        DESTINATION ${SIGSAFE_CMAKE_DIR})
    install(FILES ${PROJECT_SOURCE_DIR}/cmake/FindLibSigsegv.cmake
        DESTINATION ${SIGSAFE_CMAKE_DIR})
endif()

configure_package_config_file(
    ${PROJECT_SOURCE_DIR}/cmake/sigsafeConfig.cmake.in
    ${PROJECT_BINARY_DIR}/sigsafeConfig.cmake
    INSTALL_DESTINATION ${SIGSAFE_CMAKE_DIR})
# The ABI promise in sigsafe.h holds within one major version.
write_basic_package_version_file(
    ${PROJECT_BINARY_DIR}/sigsafeConfigVersion.cmake
    COMPATIBILITY SameMajorVersion)
install(FILES
    ${PROJECT_BINARY_DIR}/sigsafeConfig.cmake
    ${PROJECT_BINARY_DIR}/sigsafeConfigVersion.cmake
    DESTINATION ${SIGSAFE_CMAKE_DIR})

# pkg-config: prefix is found from the .pc file's own place (${pcfiledir}),
# unless the install directories were given as absolute paths.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}"
        OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(SIGSAFE_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
    set(SIGSAFE_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
    set(SIGSAFE_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
    file(RELATIVE_PATH up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
    string(REGEX REPLACE "/$" "" up "${up}")
    set(SIGSAFE_PC_PREFIX "\${pcfiledir}/${up}")
    set(SIGSAFE_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
    set(SIGSAFE_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(pc_files sigsafe)
if(TARGET sigsafe_guard)
    list(APPEND pc_files sigsafe-guard)
endif()
foreach(pc IN LISTS pc_files)
    configure_file(${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in
        ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
    install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
