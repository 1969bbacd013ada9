/* The OTLP exporter's decoders of what a collector answers (src/otlp/otlp_encode.c): an
 * ExportTraceServiceResponse after a success, a google.rpc.Status after a failure. Both
 * read bytes from the network: any input must be refused or decoded without reading past
 * it, and a message they return must lie inside it. */
#include "otlp/otlp_internal.h"

#include "fuzz_common.h"

#include <otelprof/sdk.h>

/* The encoder in the same file refers to these; the decoders never call them. */
const otelprof_kv *otelprof_resource_attributes(const otelprof_resource *r, size_t *n)
{
    (void)r, (void)n;
    abort();
}

void ots_log(otelprof_log_level level, const char *fmt, ...)
{
    (void)level, (void)fmt;
    abort();
}

static void check_inside(const uint8_t *data, size_t size, const char *msg, size_t len)
{
    if (!msg) {
        CHECK(len == 0);
        return;
    }
    CHECK((const uint8_t *)msg >= data && len <= size && (const uint8_t *)msg + len <= data + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t rejected = -1;
    const char *msg = NULL;
    size_t len = 99;
    if (op_otlp_decode_response(data, size, &rejected, &msg, &len))
        check_inside(data, size, msg, len);
    msg = NULL;
    len = 99;
    if (op_otlp_decode_status_message(data, size, &msg, &len)) {
        CHECK(msg != NULL);
        check_inside(data, size, msg, len);
    }
    return 0;
}
