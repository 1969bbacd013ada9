# C-core helper tests: grpc.core.<static|shared> (metadata extract/inject).
foreach(flavour static shared)
  set(exe test-grpc-core-${flavour})
  add_executable(${exe} ${CMAKE_CURRENT_SOURCE_DIR}/test-grpc-core.c)
  target_link_libraries(${exe} PRIVATE otelprof_grpc_${flavour} otelprof_${flavour})
  target_include_directories(${exe} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  otelprof_target_flags(${exe})
  add_test(NAME grpc.core.${flavour} COMMAND ${exe})
  set_tests_properties(grpc.core.${flavour} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 60 LABELS "grpc;${flavour}")
endforeach()

# A C-core completion-queue server with otelprof_grpc_server_call_* and
# otelprof_grpc_scope_*, called by a C-core client in the same process.
find_package(Threads REQUIRED)
find_package(Python3 COMPONENTS Interpreter)
set(grpc_core_server_cases unary error no_parent hostile no_tracer cancel nested)
foreach(flavour static shared)
  set(exe test-grpc-core-server-${flavour})
  add_executable(${exe} ${CMAKE_CURRENT_SOURCE_DIR}/test-grpc-core-server.c)
  target_link_libraries(${exe} PRIVATE otelprof_grpc_${flavour} otelprof_trace_${flavour}
    otelprof_${flavour} Threads::Threads)
  target_include_directories(${exe} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  otelprof_target_flags(${exe})
  foreach(c ${grpc_core_server_cases})
    # TSan build: through tsan_check.py, as the grpc++ cases (libgrpc is not instrumented)
    if(OTELPROF_SANITIZE STREQUAL "thread" AND Python3_Interpreter_FOUND)
      add_test(NAME grpc.core_server.${c}.${flavour} COMMAND ${Python3_EXECUTABLE}
        ${CMAKE_CURRENT_SOURCE_DIR}/tsan_check.py ${PROJECT_SOURCE_DIR} $<TARGET_FILE:${exe}> ${c})
    else()
      add_test(NAME grpc.core_server.${c}.${flavour} COMMAND ${exe} ${c})
    endif()
    set_tests_properties(grpc.core_server.${c}.${flavour} PROPERTIES TIMEOUT 60
      SKIP_RETURN_CODE 77 LABELS "grpc;concurrency;${flavour}")
  endforeach()
endforeach()
