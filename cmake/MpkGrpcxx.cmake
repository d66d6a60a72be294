# SPDX-License-Identifier: MIT
# mpk_find_grpcxx(MISSING_VAR): gRPC C++ for the programs built with it
# (tests/interop's, bench/grpcxx). Defines the imported target
# PkgConfig::MPK_GRPCXX (grpc++ and protobuf) and the cache variables
# MPK_PROTOC and MPK_GRPC_CPP_PLUGIN; sets MISSING_VAR to what is missing,
# each item naming its Debian package, or to "" when all of it is here.
include(CheckLanguage)

function(mpk_find_grpcxx missing_var)
  check_language(CXX)
  find_package(PkgConfig)
  set(missing "")
  if(NOT CMAKE_CXX_COMPILER)
    list(APPEND missing "a C++ compiler (g++)")
  endif()
  if(PKG_CONFIG_FOUND AND NOT TARGET PkgConfig::MPK_GRPCXX)
    pkg_check_modules(MPK_GRPCXX IMPORTED_TARGET GLOBAL grpc++ protobuf)
  endif()
  if(NOT TARGET PkgConfig::MPK_GRPCXX)
    list(APPEND missing "grpc++/protobuf for pkg-config (libgrpc++-dev libprotobuf-dev pkg-config)")
  endif()
  find_program(MPK_PROTOC protoc)
  if(NOT MPK_PROTOC)
    list(APPEND missing "protoc (protobuf-compiler)")
  endif()
  find_program(MPK_GRPC_CPP_PLUGIN grpc_cpp_plugin)
  if(NOT MPK_GRPC_CPP_PLUGIN)
    list(APPEND missing "grpc_cpp_plugin (protobuf-compiler-grpc)")
  endif()
  set(${missing_var} "${missing}" PARENT_SCOPE)
endfunction()

# mpk_grpcxx_directory(): the calling directory builds ordinary C++17
# programs: C++ enabled, warnings (errors under MPK_WERROR), and none of the
# project's C flags (-Wmissing-prototypes is C only). A macro: it sets the
# caller's variables and directory properties. Link options stay: empty
# but in sanitizer builds, where sanitized C libraries need the runtime.
macro(mpk_grpcxx_directory)
  enable_language(CXX)
  set(CMAKE_CXX_STANDARD 17)
  set(CMAKE_CXX_STANDARD_REQUIRED ON)
  set(CMAKE_CXX_EXTENSIONS OFF)
  set_property(DIRECTORY PROPERTY COMPILE_OPTIONS -Wall -Wextra $<$<BOOL:${MPK_WERROR}>:-Werror>)
endmacro()
