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
