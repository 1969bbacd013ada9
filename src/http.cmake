# ---- libotelprof-http: HTTP middleware (libmicrohttpd, CivetWeb) and libcurl propagation ----
# Needs libotelprof-trace. Each part is built only when its library is found, with a
# message otherwise; without any of them the library is not built at all.
option(OTELPROF_WITH_HTTP "Build the HTTP middleware library" ON)
set(OTELPROF_HTTP_PARTS "")
if(OTELPROF_WITH_HTTP AND NOT TARGET otelprof_trace_objects)
  message(STATUS "otelprof: the tracing library is not built: skipping libotelprof-http")
elseif(OTELPROF_WITH_HTTP)
  find_package(PkgConfig QUIET)
  set(otelprof_http_sources ${CMAKE_CURRENT_SOURCE_DIR}/http/request.c)
  set(otelprof_http_libs "")
  set(otelprof_http_defs "")

  if(PkgConfig_FOUND)
    pkg_check_modules(OTELPROF_MHD QUIET libmicrohttpd)
  endif()
  if(OTELPROF_MHD_FOUND)
    list(APPEND otelprof_http_sources ${CMAKE_CURRENT_SOURCE_DIR}/http/mhd.c)
    list(APPEND otelprof_http_libs ${OTELPROF_MHD_LINK_LIBRARIES})
    list(APPEND OTELPROF_HTTP_PARTS mhd)
  else()
    message(STATUS "otelprof: libmicrohttpd not found: libotelprof-http without the libmicrohttpd middleware (apt-get install libmicrohttpd-dev)")
  endif()

  find_path(OTELPROF_CIVETWEB_INCLUDE_DIR civetweb.h)
  find_library(OTELPROF_CIVETWEB_LIBRARY civetweb)
  if(OTELPROF_CIVETWEB_INCLUDE_DIR AND OTELPROF_CIVETWEB_LIBRARY)
    list(APPEND otelprof_http_sources ${CMAKE_CURRENT_SOURCE_DIR}/http/civetweb.c)
    list(APPEND otelprof_http_libs ${OTELPROF_CIVETWEB_LIBRARY})
    list(APPEND OTELPROF_HTTP_PARTS civetweb)
  else()
    message(STATUS "otelprof: CivetWeb not found: libotelprof-http without the CivetWeb middleware (apt-get install libcivetweb-dev)")
  endif()

  find_package(CURL QUIET)
  if(CURL_FOUND)
    list(APPEND otelprof_http_sources ${CMAKE_CURRENT_SOURCE_DIR}/http/curl.c)
    list(APPEND otelprof_http_libs ${CURL_LIBRARIES})
    list(APPEND OTELPROF_HTTP_PARTS curl)
  else()
    message(STATUS "otelprof: libcurl not found: libotelprof-http without the libcurl helper (apt-get install libcurl4-openssl-dev)")
  endif()

  if(OTELPROF_HTTP_PARTS)
    add_library(otelprof_http_objects OBJECT ${otelprof_http_sources})
    target_include_directories(otelprof_http_objects PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    target_include_directories(otelprof_http_objects PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
      PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    if(OTELPROF_MHD_FOUND)
      target_include_directories(otelprof_http_objects PRIVATE ${OTELPROF_MHD_INCLUDE_DIRS})
    endif()
    if("civetweb" IN_LIST OTELPROF_HTTP_PARTS)
      target_include_directories(otelprof_http_objects PRIVATE ${OTELPROF_CIVETWEB_INCLUDE_DIR})
    endif()
    if(CURL_FOUND)
      target_include_directories(otelprof_http_objects PRIVATE ${CURL_INCLUDE_DIRS})
    endif()
    target_compile_definitions(otelprof_http_objects PRIVATE OTELPROF_BUILDING)
    set_target_properties(otelprof_http_objects PROPERTIES POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
    otelprof_target_flags(otelprof_http_objects)

    add_library(otelprof_http_static STATIC $<TARGET_OBJECTS:otelprof_http_objects>)
    set_target_properties(otelprof_http_static PROPERTIES OUTPUT_NAME otelprof-http EXPORT_NAME http_static)
    target_link_libraries(otelprof_http_static PUBLIC otelprof_trace_static ${otelprof_http_libs} Threads::Threads)

    add_library(otelprof_http_shared SHARED $<TARGET_OBJECTS:otelprof_http_objects>)
    set_target_properties(otelprof_http_shared PROPERTIES OUTPUT_NAME otelprof-http EXPORT_NAME http
      VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR} INSTALL_RPATH "$ORIGIN")
    # Public: the middleware's headers expose trace.h and the server libraries' types.
    target_link_libraries(otelprof_http_shared PUBLIC otelprof_trace_shared otelprof_shared
      ${otelprof_http_libs} PRIVATE Threads::Threads)
    target_link_options(otelprof_http_shared PRIVATE
      -Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/core/otelprof.map)
    otelprof_target_sanitize(otelprof_http_shared)
    set_property(TARGET otelprof_http_static otelprof_http_shared PROPERTY OTELPROF_HTTP_PARTS "${OTELPROF_HTTP_PARTS}")
    add_library(otelprof::http ALIAS otelprof_http_shared)
    add_library(otelprof::http_static ALIAS otelprof_http_static)
    install(TARGETS otelprof_http_static otelprof_http_shared EXPORT otelprofTargets
      ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
      LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
    message(STATUS "otelprof: libotelprof-http parts: ${OTELPROF_HTTP_PARTS}")
  else()
    message(STATUS "otelprof: none of libmicrohttpd, CivetWeb, libcurl found: skipping libotelprof-http")
  endif()
endif()
# Seen by examples/, tests/ and bench/ (siblings of src/).
set(OTELPROF_HTTP_PARTS "${OTELPROF_HTTP_PARTS}" PARENT_SCOPE)
