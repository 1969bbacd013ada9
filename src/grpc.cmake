# ---- libotelprof-grpc (issue 5): C-core metadata helpers, and the header-only grpc++
# interceptors (include/otelprof/grpc.h) as the interface target otelprof::grpcpp.
# Built only when pkg-config finds grpc++ (and grpc); otherwise skipped with a message.
# C++ is enabled here only, and only when grpc++ is found.
option(OTELPROF_WITH_GRPC "Build the gRPC interceptors and helpers" ON)
set(OTELPROF_GRPC_FOUND OFF)
if(NOT OTELPROF_WITH_GRPC)
  message(STATUS "otelprof: OTELPROF_WITH_GRPC=OFF: skipping libotelprof-grpc")
elseif(NOT TARGET otelprof_trace_objects)
  message(STATUS "otelprof: the tracing library is not built: skipping libotelprof-grpc")
else()
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(OTELPROF_GRPCPP QUIET IMPORTED_TARGET grpc++)
    pkg_check_modules(OTELPROF_GRPC QUIET IMPORTED_TARGET grpc)
  endif()
  if(NOT OTELPROF_GRPCPP_FOUND OR NOT OTELPROF_GRPC_FOUND)
    message(STATUS "otelprof: grpc++ not found (pkg-config grpc++): skipping libotelprof-grpc, the gRPC example and tests (apt-get install libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev)")
  else()
    enable_language(CXX)
    set(OTELPROF_GRPC_FOUND ON)
    add_library(otelprof_grpc_objects OBJECT ${CMAKE_CURRENT_SOURCE_DIR}/grpc/core.c)
    target_include_directories(otelprof_grpc_objects PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>)
    target_link_libraries(otelprof_grpc_objects PRIVATE PkgConfig::OTELPROF_GRPC)
    target_compile_definitions(otelprof_grpc_objects PRIVATE OTELPROF_BUILDING)
    set_target_properties(otelprof_grpc_objects PROPERTIES POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
    otelprof_target_flags(otelprof_grpc_objects)

    add_library(otelprof_grpc_static STATIC $<TARGET_OBJECTS:otelprof_grpc_objects>)
    set_target_properties(otelprof_grpc_static PROPERTIES OUTPUT_NAME otelprof-grpc EXPORT_NAME grpc_static)
    target_link_libraries(otelprof_grpc_static PUBLIC otelprof_trace_static otelprof_static PkgConfig::OTELPROF_GRPC)

    add_library(otelprof_grpc_shared SHARED $<TARGET_OBJECTS:otelprof_grpc_objects>)
    set_target_properties(otelprof_grpc_shared PROPERTIES OUTPUT_NAME otelprof-grpc EXPORT_NAME grpc
      VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR} INSTALL_RPATH "$ORIGIN")
    target_link_libraries(otelprof_grpc_shared PUBLIC otelprof_trace_shared otelprof_shared PkgConfig::OTELPROF_GRPC)
    target_link_options(otelprof_grpc_shared PRIVATE
      -Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/core/otelprof.map)
    otelprof_target_sanitize(otelprof_grpc_shared)

    # Header-only interceptors: C++17 over the C libraries and grpc++.
    foreach(flavour static shared)
      add_library(otelprof_grpcpp_${flavour} INTERFACE)
      target_link_libraries(otelprof_grpcpp_${flavour} INTERFACE otelprof_grpc_${flavour}
        otelprof_trace_${flavour} otelprof_${flavour} PkgConfig::OTELPROF_GRPCPP)
      target_compile_options(otelprof_grpcpp_${flavour} INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-std=c++17>)
    endforeach()
    add_library(otelprof::grpc ALIAS otelprof_grpc_shared)
    add_library(otelprof::grpc_static ALIAS otelprof_grpc_static)
    add_library(otelprof::grpcpp ALIAS otelprof_grpcpp_shared)
    add_library(otelprof::grpcpp_static ALIAS otelprof_grpcpp_static)
    # Their own export set: otelprofConfig.cmake loads it only where grpc is found.
    set_target_properties(otelprof_grpcpp_static PROPERTIES EXPORT_NAME grpcpp_static)
    set_target_properties(otelprof_grpcpp_shared PROPERTIES EXPORT_NAME grpcpp)
    install(TARGETS otelprof_grpc_static otelprof_grpc_shared otelprof_grpcpp_static
      otelprof_grpcpp_shared EXPORT otelprofGrpcTargets
      ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
      LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
    message(STATUS "otelprof: libotelprof-grpc with grpc++ ${OTELPROF_GRPCPP_VERSION}")

    # grpc.examples.echo (examples/grpc-example/echo.proto), generated C++ shared by the
    # example and tests/grpc.
    pkg_check_modules(OTELPROF_PROTOBUF QUIET IMPORTED_TARGET protobuf)
    find_program(OTELPROF_PROTOC protoc)
    find_program(OTELPROF_GRPC_CPP_PLUGIN grpc_cpp_plugin)
    set(echo_proto ${PROJECT_SOURCE_DIR}/examples/grpc-example/echo.proto)
    if(OTELPROF_PROTOBUF_FOUND AND OTELPROF_PROTOC AND OTELPROF_GRPC_CPP_PLUGIN AND EXISTS ${echo_proto})
      set(gen ${PROJECT_BINARY_DIR}/grpc-gen)
      file(MAKE_DIRECTORY ${gen})
      add_custom_command(OUTPUT ${gen}/echo.pb.cc ${gen}/echo.pb.h ${gen}/echo.grpc.pb.cc ${gen}/echo.grpc.pb.h
        COMMAND ${OTELPROF_PROTOC} -I${PROJECT_SOURCE_DIR}/examples/grpc-example --cpp_out=${gen}
          --grpc_out=${gen} --plugin=protoc-gen-grpc=${OTELPROF_GRPC_CPP_PLUGIN} ${echo_proto}
        DEPENDS ${echo_proto} VERBATIM)
      add_library(otelprof_grpc_echo_proto STATIC ${gen}/echo.pb.cc ${gen}/echo.grpc.pb.cc)
      target_include_directories(otelprof_grpc_echo_proto PUBLIC ${gen})
      target_link_libraries(otelprof_grpc_echo_proto PUBLIC PkgConfig::OTELPROF_GRPCPP PkgConfig::OTELPROF_PROTOBUF)
    else()
      message(STATUS "otelprof: protobuf, protoc or grpc_cpp_plugin missing: no gRPC example or tests (apt-get install protobuf-compiler-grpc libprotobuf-dev)")
    endif()

    # The example lives in examples/grpc-example; examples/CMakeLists.txt is not ours, so
    # it is added from here, into the build tree's examples/grpc-example.
    if((NOT DEFINED OTELPROF_BUILD_EXAMPLES OR OTELPROF_BUILD_EXAMPLES) AND TARGET otelprof_grpc_echo_proto
        AND EXISTS ${PROJECT_SOURCE_DIR}/examples/grpc-example/CMakeLists.txt)
      add_subdirectory(${PROJECT_SOURCE_DIR}/examples/grpc-example
        ${PROJECT_BINARY_DIR}/examples/grpc-example)
    endif()
  endif()
endif()
# Seen by tests/ (a sibling of src/).
set(OTELPROF_GRPC_FOUND ${OTELPROF_GRPC_FOUND} PARENT_SCOPE)
