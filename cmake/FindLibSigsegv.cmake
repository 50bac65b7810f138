# SPDX-License-Identifier: MIT
# Finds GNU libsigsegv (Debian's libsigsegv-dev ships no .pc file).
# Defines LibSigsegv_FOUND, LibSigsegv_INCLUDE_DIR, LibSigsegv_LIBRARY and
# the imported target LibSigsegv::LibSigsegv.
find_path(LibSigsegv_INCLUDE_DIR NAMES sigsegv.h)
find_library(LibSigsegv_LIBRARY NAMES sigsegv)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(LibSigsegv
    REQUIRED_VARS LibSigsegv_LIBRARY LibSigsegv_INCLUDE_DIR)
if(LibSigsegv_FOUND AND NOT TARGET LibSigsegv::LibSigsegv)
    add_library(LibSigsegv::LibSigsegv UNKNOWN IMPORTED)
    set_target_properties(LibSigsegv::LibSigsegv PROPERTIES
        IMPORTED_LOCATION "${LibSigsegv_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${LibSigsegv_INCLUDE_DIR}")
endif()
mark_as_advanced(LibSigsegv_INCLUDE_DIR LibSigsegv_LIBRARY)
