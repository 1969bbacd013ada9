/* A user's traced program: SDK provider (in-memory exporter) wrapped for profiling; the
 * span started through it is what the thread publishes. */
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#include <otelprof/wrap.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    otelprof_span_exporter *mem = otelprof_memory_exporter_new(0);
    otelprof_span_processor *p = otelprof_simple_processor_new(mem);
    otelprof_status err = OTELPROF_OK;
    otelprof_tracer_provider *sdk =
        otelprof_sdk_provider_new(&OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                                     .processors = &p, .n_processors = 1),
                                  &err);
    otelprof_tracer_provider *w =
        otelprof_tracer_provider_wrap(sdk, &OTELPROF_WRAP_OPTS(.take_ownership = true), &err);
    if (!sdk || !w) {
        fprintf(stderr, "consumer-trace: provider: %s\n", otelprof_strerror(err));
        return 1;
    }
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(w, "consumer", NULL, NULL);
    otelprof_span *s = otelprof_tracer_start_span(t, "work", NULL);
    otelprof_context c;
    const otelprof_span_context *sc = otelprof_span_get_context(s);
    int ok = otelprof_current(&c, NULL, 0, NULL) == OTELPROF_OK &&
             memcmp(c.span_id, sc->span_id, 8) == 0;
    otelprof_span_end(s, 0);
    ok = ok && otelprof_current(&c, NULL, 0, NULL) == OTELPROF_E_NO_CONTEXT &&
         otelprof_memory_exporter_count(mem) == 1;
    otelprof_tracer_provider_free(w);
    if (!ok) {
        fprintf(stderr, "consumer-trace: the span was not published/exported\n");
        return 1;
    }
    printf("consumer-trace ok\n");
    return 0;
}
