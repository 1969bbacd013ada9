/* otelprof_sdk_provider_new_from_env: the SDK configured by the standard OTEL_* variables
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). */
#define _GNU_SOURCE
#include "sdk_internal.h"

#include <stdlib.h>
#include <string.h>

#ifdef OTELPROF_WITH_OTLP
#include <otelprof/exporter_otlp.h> /* built with the library when libcurl and zlib are found */
#endif

#define MAX_EXPORTERS 8

static otelprof_span_processor *otlp_processor(void)
{
#ifdef OTELPROF_WITH_OTLP
    otelprof_status rc = OTELPROF_OK;
    otelprof_span_exporter *e = otelprof_otlp_exporter_new_from_env(&rc);
    if (!e) {
        ots_log(OTELPROF_LOG_WARN,
                "OTEL_TRACES_EXPORTER=otlp: exporter not created (%s); spans are not exported",
                otelprof_strerror(rc));
        return NULL;
    }
    otelprof_span_processor *p = otelprof_batch_processor_new(e, NULL);
    if (!p)
        ots_log(OTELPROF_LOG_WARN, "OTEL_TRACES_EXPORTER=otlp: batch processor not created");
    return p;
#else
    ots_log(OTELPROF_LOG_WARN, "OTEL_TRACES_EXPORTER=otlp: this build has no OTLP exporter "
                               "(libcurl/zlib missing); spans are not exported");
    return NULL;
#endif
}

static otelprof_span_processor *console_processor(void)
{
    otelprof_span_exporter *e = otelprof_console_exporter_new(stdout);
    return e ? otelprof_simple_processor_new(e) : NULL;
}

otelprof_tracer_provider *otelprof_sdk_provider_new_from_env(otelprof_status *err)
{
    if (ots_env_bool("OTEL_SDK_DISABLED")) {
        if (err)
            *err = OTELPROF_OK;
        return otelprof_noop_provider_new();
    }
    /* OTEL_TRACES_EXPORTER: a comma-separated list; "none" alone means no exporter. */
    const char *list = ots_env("OTEL_TRACES_EXPORTER");
    if (!list)
        list = "otlp";
    bool want_console = false, want_otlp = false, want_none = false;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *w = p;
        size_t wn = n;
        while (wn && (*w == ' ' || *w == '\t'))
            w++, wn--;
        while (wn && (w[wn - 1] == ' ' || w[wn - 1] == '\t'))
            wn--;
        if (ots_word_eq(w, wn, "console"))
            want_console = true;
        else if (ots_word_eq(w, wn, "otlp"))
            want_otlp = true;
        else if (ots_word_eq(w, wn, "none"))
            want_none = true;
        else if (wn)
            ots_log(OTELPROF_LOG_WARN,
                    "OTEL_TRACES_EXPORTER: \"%.*s\" is not supported (otlp, "
                    "console, none); ignored",
                    (int)wn, w);
        p += n;
        if (*p == ',')
            p++;
    }
    if (want_none && (want_console || want_otlp)) {
        ots_log(OTELPROF_LOG_WARN, "OTEL_TRACES_EXPORTER=\"%s\": \"none\" wins over the others",
                list);
        want_console = want_otlp = false;
    }
    otelprof_span_processor *procs[MAX_EXPORTERS];
    size_t n_procs = 0;
    if (want_otlp) {
        otelprof_span_processor *x = otlp_processor();
        if (x)
            procs[n_procs++] = x;
    }
    if (want_console) {
        otelprof_span_processor *x = console_processor();
        if (x)
            procs[n_procs++] = x;
        else
            ots_log(OTELPROF_LOG_WARN, "OTEL_TRACES_EXPORTER=console: out of memory");
    }
    otelprof_sdk_opts o = OTELPROF_SDK_OPTS(.processors = procs, .n_processors = n_procs);
    return otelprof_sdk_provider_new(&o, err);
}
