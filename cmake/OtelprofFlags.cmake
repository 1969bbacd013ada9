# Warnings and sanitizers, applied per target (never by editing global flags).
# Frame pointers everywhere: profilers (ours included) unwind user stacks through them, so
# a sample inside otelprof or an example shows who called it.
function(otelprof_target_flags tgt)
  target_compile_options(${tgt} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -fno-omit-frame-pointer $<$<BOOL:${OTELPROF_WERROR}>:-Werror>)
  otelprof_target_sanitize(${tgt})
endfunction()

function(otelprof_target_sanitize tgt)
  if(OTELPROF_SANITIZE STREQUAL "address")
    target_compile_options(${tgt} PRIVATE -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${tgt} PRIVATE -fsanitize=address,undefined)
  elseif(OTELPROF_SANITIZE STREQUAL "thread")
    # gcc warns that TSan does not model fences; the process-context protocol needs them.
    target_compile_options(${tgt} PRIVATE -fsanitize=thread -fno-omit-frame-pointer $<$<C_COMPILER_ID:GNU>:-Wno-tsan>)
    target_link_options(${tgt} PRIVATE -fsanitize=thread)
  elseif(NOT OTELPROF_SANITIZE STREQUAL "")
    message(FATAL_ERROR "OTELPROF_SANITIZE must be '', 'address' or 'thread'")
  endif()
endfunction()
