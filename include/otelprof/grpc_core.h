/* otelprof gRPC C-core helpers: W3C trace context read from and written to gRPC core
 * metadata (grpc_metadata_array / grpc_metadata), for servers and clients written against
 * the C API. The C++ interceptors are in otelprof/grpc.h. Library: libotelprof-grpc
 * (built only when grpc++ is found, see docs/grpc.md).
 *
 * Keys are compared case-insensitively (gRPC keys are lowercase anyway). Every
 * `traceparent` entry is considered: two or more make the context invalid, exactly as
 * otelprof_propagation_extract specifies. Malformed input never makes extract fail. */
#ifndef OTELPROF_GRPC_CORE_H
#define OTELPROF_GRPC_CORE_H

#include <otelprof/propagation.h>

#include <grpc/grpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Extract the remote parent (traceparent/tracestate) and, with props allowing it, the
 * baggage (bag_out may be NULL) from md, e.g. the request metadata grpc_server_request_call
 * filled. props NULL: otelprof_propagators_from_env. out is zeroed (invalid) when there is
 * no usable parent. OTELPROF_E_INVAL for NULL md or out; otherwise OTELPROF_OK.
 * No allocation; reads md during the call only. Since 0.2. */
OTELPROF_API otelprof_status otelprof_grpc_metadata_extract(const otelprof_propagators *props,
                                                            const grpc_metadata_array *md,
                                                            otelprof_span_context *out,
                                                            otelprof_baggage *bag_out);

/* Append traceparent (and tracestate / baggage when present and enabled) entries for ctx
 * and bag (either may be NULL) to md[*count .. capacity). The keys and values are new
 * slices (grpc_slice_from_copied_buffer) owned by the caller: release them with
 * otelprof_grpc_metadata_release once the call no longer needs them. *count is advanced
 * by the number of entries written. OTELPROF_E_TOO_LARGE when capacity is too small
 * (nothing is appended then), OTELPROF_E_INVAL for NULL md/count, OTELPROF_E_NOMEM.
 * props NULL: otelprof_propagators_from_env. Since 0.2. */
OTELPROF_API otelprof_status otelprof_grpc_metadata_inject(const otelprof_propagators *props,
                                                           const otelprof_span_context *ctx,
                                                           const otelprof_baggage *bag,
                                                           grpc_metadata *md, size_t capacity,
                                                           size_t *count);

/* grpc_slice_unref the key and value of md[0..n). Since 0.2. */
OTELPROF_API void otelprof_grpc_metadata_release(grpc_metadata *md, size_t n);

#ifdef __cplusplus
}
#endif
#endif
