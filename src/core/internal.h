/* Private declarations shared by the core's translation units. Not installed. */
#ifndef OTELPROF_CORE_INTERNAL_H
#define OTELPROF_CORE_INTERNAL_H

#include <otelprof/common.h>
#include <otelprof/context.h>
#include <otelprof/version.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

#define OTELPROF_HIDDEN __attribute__((visibility("hidden")))

/* ---- log.c ---- */
OTELPROF_HIDDEN void op_log(otelprof_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- utf8.c ---- */
/* true when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
OTELPROF_HIDDEN bool op_utf8_valid(const unsigned char *s, size_t len);
/* Largest n <= max such that s[0..n) ends on a character boundary (s is valid UTF-8). */
OTELPROF_HIDDEN size_t op_utf8_cut(const unsigned char *s, size_t len, size_t max);

/* ---- process_ctx.c: process-wide configuration read by the hot path ---- */
extern OTELPROF_HIDDEN atomic_uint op_g_formats;
extern OTELPROF_HIDDEN atomic_bool op_g_inited;
extern OTELPROF_HIDDEN atomic_uint op_g_key_count;
extern OTELPROF_HIDDEN const char *_Atomic op_g_key_names[OTELPROF_MAX_KEYS];
extern OTELPROF_HIDDEN uint8_t op_g_key_name_len[OTELPROF_MAX_KEYS];
/* Custom-labels key names for the ids: immortal, name and length swapped together. */
struct op_label {
    size_t len;
    const char *name;
};
extern OTELPROF_HIDDEN const struct op_label *_Atomic op_g_trace_label;
extern OTELPROF_HIDDEN const struct op_label *_Atomic op_g_span_label;
/* Bumped by init and shutdown, the only times the formats and the id label names change:
 * a custom-labels set built under another generation is rebuilt rather than reused. */
extern OTELPROF_HIDDEN atomic_uint op_g_gen;

/* ---- customlabels (cl_tls.c, in libotelprof.a or libcustomlabels-otelprof.so) ---- */
/* Address of the calling thread's custom_labels_current_set. */
void **otelprof_cl_slot(void);

/* ---- thread_ctx.c ---- */
/* Publish "nothing" on the calling thread and forget its state (shutdown, tests). */
OTELPROF_HIDDEN void op_thread_reset_publication(void);

#endif
