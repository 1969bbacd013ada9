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

#include <otelprof/context.h>
#include <otelprof/propagation.h>
#include <otelprof/trace.h>

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

/* ---- server calls: what the grpc++ server interceptor does, for C-core servers ----
 *
 *   grpc_server_request_call(server, &call, &details, &request_md, cq, cq, tag);
 *   ... the tag comes back from the completion queue:
 *   otelprof_grpc_server_call c;
 *   otelprof_grpc_server_call_start(&opts, &details, &request_md, &c);
 *   ... around the application's handling of each completion-queue event of that call
 *   (on whichever thread handles it):
 *   otelprof_grpc_scope s;
 *   otelprof_grpc_scope_enter(&c.context, &s);  ... handle ...  otelprof_grpc_scope_leave(&s);
 *   ... when the status is sent (or the call was cancelled):
 *   otelprof_grpc_server_call_finish(&c, status, details_text);
 */

typedef struct otelprof_grpc_server_opts {
    size_t sz;
    /* Tracer for the SERVER spans; NULL: propagation only (the remote parent is published
     * as is, no span). */
    otelprof_tracer *tracer;
    /* NULL: otelprof_propagators_from_env. */
    const otelprof_propagators *propagators;
} otelprof_grpc_server_opts;
#define OTELPROF_GRPC_SERVER_OPTS(...)                                                             \
    ((otelprof_grpc_server_opts){.sz = sizeof(otelprof_grpc_server_opts), __VA_ARGS__})

/* One server call. Fields may be read; do not write them. */
typedef struct otelprof_grpc_server_call {
    /* What otelprof_grpc_scope_enter(&call.context, ...) publishes: the SERVER span's
     * context, or without a tracer the remote parent (invalid when there is none). */
    otelprof_span_context context;
    /* The SERVER span, NULL without a tracer or once finished. */
    otelprof_span *span;
} otelprof_grpc_server_call;

/* Begin a server call: extract the remote parent from request_md (the metadata
 * grpc_server_request_call filled), and with a tracer start a SERVER span named
 * "pkg.Service/Method" (from details->method; "/pkg.Service/Method" on the wire) with
 * rpc.system=grpc, rpc.service, rpc.method, child of the remote parent or a new trace.
 * Publishes nothing by itself. Malformed metadata never makes it fail: the call simply has
 * no remote parent. OTELPROF_E_INVAL for NULL opts fields that are required (call,
 * details, request_md). opts may be NULL. Thread-safe; allocation: the span's. Since 0.2. */
OTELPROF_API otelprof_status otelprof_grpc_server_call_start(const otelprof_grpc_server_opts *opts,
                                                             const grpc_call_details *details,
                                                             const grpc_metadata_array *request_md,
                                                             otelprof_grpc_server_call *call);

/* End the call's span: rpc.grpc.status_code = status, ERROR status with `message` (may be
 * NULL) for any code but GRPC_STATUS_OK, then end. Use GRPC_STATUS_CANCELLED when the
 * call was cancelled (the RECV_CLOSE_ON_SERVER op reported cancelled). Idempotent; does
 * not touch any thread's publication. Thread-safe for distinct calls. Since 0.2. */
OTELPROF_API void otelprof_grpc_server_call_finish(otelprof_grpc_server_call *call,
                                                   grpc_status_code status, const char *message);

/* A publication of a call's context on the calling thread: otelprof_attach (what
 * profilers read) plus otelprof_scope_enter (so otelprof_current_span_context(), spans
 * started meanwhile, and otelprof_grpc_metadata_inject of nested outgoing calls see it).
 * Treat as opaque. */
typedef struct otelprof_grpc_scope {
    otelprof_token token;
    otelprof_scope scope;
    unsigned flags;
} otelprof_grpc_scope;

/* Publish ctx on the calling thread until otelprof_grpc_scope_leave on the same thread;
 * scopes nest (leave in reverse order). An invalid or NULL ctx publishes "no context"
 * (otelprof_clear), so an event of a call without a parent is not attributed to whatever
 * the thread held before. Errors of the underlying calls are returned, and leave undoes
 * whatever part succeeded. No allocation after the thread's first use, no lock.
 * Since 0.2. */
OTELPROF_API otelprof_status otelprof_grpc_scope_enter(const otelprof_span_context *ctx,
                                                       otelprof_grpc_scope *s);
/* Undo otelprof_grpc_scope_enter. OTELPROF_E_WRONG_THREAD (and nothing changes) on
 * another thread. Since 0.2. */
OTELPROF_API otelprof_status otelprof_grpc_scope_leave(otelprof_grpc_scope *s);

#ifdef __cplusplus
}
#endif
#endif
