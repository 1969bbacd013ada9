# The propagation component: W3C Trace Context, W3C Baggage, carriers, propagators.
# Only libc; paths relative to src/.
list(APPEND OTELPROF_COMPONENT_SOURCES
  propagation/traceparent.c
  propagation/tracestate.c
  propagation/baggage.c
  propagation/carrier.c
  propagation/propagators.c)
