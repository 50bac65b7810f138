# SPDX-License-Identifier: MIT
# sigsafe.install*: sigsafe used the ways its users use it.  One step per
# run; ctest orders them with a fixture (install first).
#
#   cmake -DSTEP=<step> -DSOURCE_DIR=<sigsafe source> -DWORK_DIR=<dir>
#         -DVERSION=<x.y.z> [-DC_COMPILER=cc] [-DC_FLAGS=...]
#         [-DBUILD_TYPE=...] [-DGENERATOR=...] [-DGUARD=ON|OFF]
#         [-DTOOLCHAIN_FILE=<file>] [-DEMULATOR="qemu-aarch64 ..."]
# A cross build passes its toolchain file, for the consumer projects, and
# the emulator that runs what they build.
#         -P consumers.cmake
#
# Steps:
#   install             configure and build sigsafe alone, install it into
#                       WORK_DIR/prefix with `cmake --install --prefix`,
#                       check the installed files
#   find_package        build and run find_package/ against the prefix
#   find_package_guard  the same with COMPONENTS guard
#   pkg-config          build pkg-config/main.c with `pkg-config sigsafe`
#   pkg-config-guard    build pkg-config-guard/main.c with sigsafe-guard.pc
#   add_subdirectory    build and run add_subdirectory/ (sigsafe in-tree)
#   fetchcontent        build and run fetchcontent/ (FetchContent, local)
# The two subproject steps also check that sigsafe, as a subproject, builds
# no tests or examples and adds no install rules.
cmake_minimum_required(VERSION 3.21)

foreach(var STEP SOURCE_DIR WORK_DIR VERSION)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "consumers.cmake: -D${var}=... is required")
    endif()
endforeach()
if(NOT DEFINED GUARD)
    set(GUARD ON)
endif()
if(NOT DEFINED C_COMPILER OR C_COMPILER STREQUAL "")
    set(C_COMPILER cc)
endif()

set(here ${CMAKE_CURRENT_LIST_DIR})
set(prefix ${WORK_DIR}/prefix)
set(jobs 2)

# run(<what> <command>...): runs a command, fails the test with its output
# if it fails, and leaves its stdout in run_output.
function(run what)
    execute_process(COMMAND ${ARGN}
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
    endif()
    set(run_output "${out}" PARENT_SCOPE)
endfunction()

# Arguments shared by every CMake configure: the same compiler, flags,
# build type and generator as the build that runs the tests.
set(configure_args "-DCMAKE_C_COMPILER=${C_COMPILER}"
    "-DCMAKE_C_FLAGS=${C_FLAGS}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
if(GENERATOR)
    list(APPEND configure_args -G "${GENERATOR}")
endif()
if(TOOLCHAIN_FILE)
    list(APPEND configure_args "-DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN_FILE}")
endif()
separate_arguments(emulator UNIX_COMMAND "${EMULATOR}")
set(config_args)
if(BUILD_TYPE)
    set(config_args --config ${BUILD_TYPE})
endif()

# cmake_project(<dir> <build> <args>...): configure and build.  The build
# tree is kept between runs: it belongs to one build of the tests, so the
# compiler and flags cannot change under it.
function(cmake_project dir build)
    run("configure ${dir}" ${CMAKE_COMMAND} -S ${dir} -B ${build}
        ${configure_args} ${ARGN})
    run("build ${dir}" ${CMAKE_COMMAND} --build ${build} ${config_args}
        --parallel ${jobs})
endfunction()

# run_app(<exe>): the consumer program must exit 0 and say "ok".
function(run_app exe)
    run("run ${exe}" ${emulator} ${exe})
    if(NOT run_output MATCHES ": ok\n$")
        message(FATAL_ERROR "${exe}: unexpected output: ${run_output}")
    endif()
    string(STRIP "${run_output}" run_output)
    message(STATUS "${exe}: ${run_output}")
endfunction()

# cache_value(<build> <var> <out>): a variable from <build>/CMakeCache.txt.
function(cache_value build var out)
    file(STRINGS ${build}/CMakeCache.txt line REGEX "^${var}:[A-Z]+=")
    string(REGEX REPLACE "^[^=]*=" "" line "${line}")
    set(${out} "${line}" PARENT_SCOPE)
endfunction()

# The installed pkg-config directory (lib/, lib64/ or lib/<multiarch>/).
function(find_pc_dir out)
    file(GLOB_RECURSE pc ${prefix}/*/sigsafe.pc)
    if(NOT pc)
        message(FATAL_ERROR "no sigsafe.pc under ${prefix}: run the install "
            "step first")
    endif()
    list(GET pc 0 pc)
    get_filename_component(dir ${pc} DIRECTORY)
    set(${out} ${dir} PARENT_SCOPE)
endfunction()

# A subproject adds no tests, builds no examples and installs nothing.
function(check_subproject build)
    foreach(var SIGSAFE_BUILD_TESTS SIGSAFE_BUILD_EXAMPLES SIGSAFE_INSTALL)
        cache_value(${build} ${var} value)
        if(value)
            message(FATAL_ERROR "${var} is '${value}' in a subproject")
        endif()
    endforeach()
    file(GLOB_RECURSE files ${build}/*)
    set(libs ${files})
    list(FILTER libs INCLUDE REGEX "/lib/libsigsafe\\.a$")
    if(NOT libs)
        message(FATAL_ERROR "no lib/libsigsafe.a under ${build}")
    endif()
    # sigsafe's binary dir: lib/libsigsafe.a is two levels down.
    list(GET libs 0 lib)
    get_filename_component(sigsafe_build ${lib} DIRECTORY)
    get_filename_component(sigsafe_build ${sigsafe_build} DIRECTORY)
    foreach(dir test examples bench)
        if(EXISTS ${sigsafe_build}/${dir})
            message(FATAL_ERROR "subproject configured ${dir}/")
        endif()
    endforeach()
    list(FILTER files INCLUDE REGEX "/(check_[a-z]+|sigsafeConfig\\.cmake)$")
    if(files)
        message(FATAL_ERROR "subproject built tests or install files: "
            "${files}")
    endif()
endfunction()

if(STEP STREQUAL "install")
    set(build ${WORK_DIR}/sigsafe-build)
    cmake_project(${SOURCE_DIR} ${build} -DSIGSAFE_BUILD_TESTS=OFF
        -DSIGSAFE_BUILD_EXAMPLES=OFF -DSIGSAFE_BUILD_GUARD=${GUARD})
    file(REMOVE_RECURSE ${prefix})
    run("install" ${CMAKE_COMMAND} --install ${build} ${config_args}
        --prefix ${prefix})
    set(expected include/sigsafe.h share/doc/sigsafe/LICENSE lib*/libsigsafe.a
        lib*/cmake/sigsafe/sigsafeConfig.cmake
        lib*/cmake/sigsafe/sigsafeConfigVersion.cmake
        lib*/cmake/sigsafe/sigsafeTargets.cmake lib*/pkgconfig/sigsafe.pc)
    if(GUARD)
        list(APPEND expected include/sigsafe_guard.h lib*/libsigsafe_guard.a
            lib*/cmake/sigsafe/sigsafeGuardTargets.cmake
            lib*/cmake/sigsafe/FindLibSigsegv.cmake
            lib*/pkgconfig/sigsafe-guard.pc)
    endif()
    # Man pages, where the tree has them and installs its docs.
    if(EXISTS ${SOURCE_DIR}/docs/CMakeLists.txt)
        file(GLOB pages RELATIVE ${SOURCE_DIR}/docs/man
            ${SOURCE_DIR}/docs/man/man3/*.3)
        foreach(page IN LISTS pages)
            list(APPEND expected share/man/${page})
        endforeach()
    endif()
    foreach(file IN LISTS expected)
        file(GLOB found ${prefix}/${file})
        if(NOT found)
            message(FATAL_ERROR "not installed: ${file}")
        endif()
    endforeach()
    list(LENGTH expected n)
    message(STATUS "installed into ${prefix}: ${n} files checked")

elseif(STEP MATCHES "^find_package(_guard)?$")
    set(build ${WORK_DIR}/${STEP})
    cmake_project(${here}/${STEP} ${build} "-DCMAKE_PREFIX_PATH=${prefix}")
    # The package must come from the test prefix, not from the system.
    cache_value(${build} sigsafe_DIR dir)
    string(FIND "${dir}" "${prefix}/" at)
    if(NOT at EQUAL 0)
        message(FATAL_ERROR "sigsafe found in '${dir}', not in ${prefix}")
    endif()
    run_app(${build}/app)

elseif(STEP MATCHES "^pkg-config(-guard)?$")
    find_program(PKG_CONFIG NAMES pkg-config pkgconf REQUIRED)
    find_pc_dir(pc_dir)
    set(ENV{PKG_CONFIG_PATH} ${pc_dir})
    if(STEP STREQUAL "pkg-config")
        set(module sigsafe)
    else()
        set(module sigsafe-guard)
    endif()
    run("pkg-config --modversion ${module}"
        ${PKG_CONFIG} --modversion ${module})
    string(STRIP "${run_output}" modversion)
    if(NOT modversion STREQUAL VERSION)
        message(FATAL_ERROR "${module}.pc has version '${modversion}', "
            "expected ${VERSION}")
    endif()
    run("pkg-config --cflags --libs ${module}"
        ${PKG_CONFIG} --cflags --libs ${module})
    separate_arguments(pc_flags UNIX_COMMAND "${run_output}")
    separate_arguments(c_flags UNIX_COMMAND "${C_FLAGS}")
    set(build ${WORK_DIR}/${STEP})
    file(REMOVE_RECURSE ${build})
    file(MAKE_DIRECTORY ${build})
    # As a Makefile would: cc $(CFLAGS) main.c $(pkg-config ...) -o app
    run("compile ${STEP}/main.c" ${C_COMPILER} ${c_flags} -Wall -Wextra
        ${here}/${STEP}/main.c ${pc_flags} -o ${build}/app)
    run_app(${build}/app)

elseif(STEP MATCHES "^(add_subdirectory|fetchcontent)$")
    set(build ${WORK_DIR}/${STEP})
    cmake_project(${here}/${STEP} ${build}
        "-DSIGSAFE_SOURCE_DIR=${SOURCE_DIR}")
    check_subproject(${build})
    run_app(${build}/app)

else()
    message(FATAL_ERROR "consumers.cmake: unknown step '${STEP}'")
endif()
