/* A plugin linking libotelprof-trace.so (and libotelprof.so): dlclose_host loads it,
 * runs spans on a thread through it, unloads it, then lets the thread exit. */
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>
#include <otelprof/trace.h>
#include <otelprof/wrap.h>

int plugin_run(void);

/* Start and end spans through a wrapped SDK provider inside a scope: every per-thread
 * state of the tracing library (the wrapper's, the scope stack, the SDK's span cache) and
 * of the core is created on the calling thread. 0 on success. */
int plugin_run(void)
{
    otelprof_span_processor *procs[] = {
        otelprof_simple_processor_new(otelprof_memory_exporter_new(16))};
    otelprof_sdk_opts o = OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                            .processors = procs, .n_processors = 1);
    otelprof_status err;
    otelprof_tracer_provider *sdk = otelprof_sdk_provider_new(&o, &err);
    if (!sdk)
        return 1;
    otelprof_tracer_provider *p =
        otelprof_tracer_provider_wrap(sdk, &OTELPROF_WRAP_OPTS(.take_ownership = true), &err);
    if (!p)
        return 2;
    otelprof_tracer *t = otelprof_tracer_provider_get_tracer(p, "plugin", NULL, NULL);
    for (int i = 0; i < 3; i++) {
        otelprof_span *s = otelprof_tracer_start_span(t, "op", NULL);
        otelprof_scope sc;
        if (otelprof_scope_enter(otelprof_span_get_context(s), &sc) != OTELPROF_OK)
            return 3;
        otelprof_span_end(otelprof_tracer_start_span(t, "child", NULL), 0);
        otelprof_scope_leave(&sc);
        otelprof_span_end(s, 0);
    }
    otelprof_tracer_provider_free(p);
    return 0;
}
