# ---- libotelprof-trace: tracing API, SDK, exporters, the profiling wrapper ----
# Not part of the core (which needs libc only): the OTLP/HTTP exporter needs libcurl and
# zlib, and is left out with a message when they are missing.
option(OTELPROF_WITH_TRACE "Build the tracing API/SDK library" ON)
if(OTELPROF_WITH_TRACE)
  find_package(CURL)
  find_package(ZLIB)
  file(GLOB otelprof_trace_sources CONFIGURE_DEPENDS
    ${CMAKE_CURRENT_SOURCE_DIR}/trace/*.c ${CMAKE_CURRENT_SOURCE_DIR}/sdk/*.c)
  set(OTELPROF_WITH_OTLP OFF)
  file(GLOB otelprof_otlp_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/otlp/*.c)
  if(CURL_FOUND AND ZLIB_FOUND AND otelprof_otlp_sources)
    set(OTELPROF_WITH_OTLP ON)
    list(APPEND otelprof_trace_sources ${otelprof_otlp_sources})
  else()
    message(STATUS "otelprof: libcurl or zlib not found: building without the OTLP/HTTP exporter (apt-get install libcurl4-openssl-dev zlib1g-dev)")
  endif()
  set(OTELPROF_WITH_OTLP ${OTELPROF_WITH_OTLP} PARENT_SCOPE)
  if(otelprof_trace_sources)
    add_library(otelprof_trace_objects OBJECT ${otelprof_trace_sources})
    target_include_directories(otelprof_trace_objects PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
      PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    target_compile_definitions(otelprof_trace_objects PRIVATE OTELPROF_BUILDING
      $<$<BOOL:${OTELPROF_WITH_OTLP}>:OTELPROF_WITH_OTLP=1>)
    set_target_properties(otelprof_trace_objects PROPERTIES POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
    otelprof_target_flags(otelprof_trace_objects)
    if(OTELPROF_WITH_OTLP)
      target_link_libraries(otelprof_trace_objects PRIVATE CURL::libcurl ZLIB::ZLIB)
    endif()

    add_library(otelprof_trace_static STATIC $<TARGET_OBJECTS:otelprof_trace_objects>)
    set_target_properties(otelprof_trace_static PROPERTIES OUTPUT_NAME otelprof-trace EXPORT_NAME trace_static)
    target_link_libraries(otelprof_trace_static PUBLIC otelprof_static Threads::Threads)
    add_library(otelprof_trace_shared SHARED $<TARGET_OBJECTS:otelprof_trace_objects>)
    set_target_properties(otelprof_trace_shared PROPERTIES OUTPUT_NAME otelprof-trace EXPORT_NAME trace
      VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR} INSTALL_RPATH "$ORIGIN")
    target_link_libraries(otelprof_trace_shared PUBLIC otelprof_shared PRIVATE Threads::Threads)
    # nodelete, as libotelprof: per-thread destructors (the wrapper's state, scope stacks,
    # the SDK's span cache) point into the library; dlclose must not unmap it.
    target_link_options(otelprof_trace_shared PRIVATE
      -Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/core/otelprof.map -Wl,-z,nodelete)
    otelprof_target_sanitize(otelprof_trace_shared)
    if(OTELPROF_WITH_OTLP)
      target_link_libraries(otelprof_trace_static PUBLIC CURL::libcurl ZLIB::ZLIB)
      target_link_libraries(otelprof_trace_shared PRIVATE CURL::libcurl ZLIB::ZLIB)
    endif()
    add_library(otelprof::trace ALIAS otelprof_trace_shared)
    add_library(otelprof::trace_static ALIAS otelprof_trace_static)
    install(TARGETS otelprof_trace_static otelprof_trace_shared EXPORT otelprofTargets
      ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
      LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  endif()
endif()
