/* otelprof propagation: W3C Trace Context (traceparent / tracestate) and W3C Baggage,
 * read from and written to request headers through a carrier interface.
 *
 * Specifications:
 *   - W3C Trace Context Level 2  https://www.w3.org/TR/trace-context-2/
 *   - W3C Baggage                https://www.w3.org/TR/baggage/
 *   - OTEL_PROPAGATORS           https://opentelemetry.io/docs/specs/otel/configuration/
 * See docs/propagation.md for the rules each parser enforces and the limits chosen.
 *
 * Memory: every type here is fixed-size and owned by the caller (stack, struct member or
 * heap, as the caller likes); a zero-initialised object is a valid empty one. Parsing,
 * formatting, extract and inject never allocate. The structs' fields are private: read
 * and change them only through the functions below (the sizes may change only with the
 * library's SONAME).
 *
 * Lengths: every (pointer, length) pair accepts OTELPROF_NUL_TERMINATED as the length,
 * meaning strlen(pointer). Strings handed back (keys, values) are NOT NUL-terminated;
 * they come with their length and point into the object they were read from.
 *
 * Threads: the functions keep no global state (except otelprof_propagators_from_env,
 * which reads the environment). Concurrent calls on distinct objects are safe; one
 * object needs external locking if one thread may change it while another reads it.
 */
#ifndef OTELPROF_PROPAGATION_H
#define OTELPROF_PROPAGATION_H

#include <otelprof/common.h>
#include <otelprof/context.h> /* OTELPROF_FLAG_*, OTELPROF_NUL_TERMINATED */

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * Limits
 * ------------------------------------------------------------------------------------- */

/* tracestate: the spec's maximum of list-members, and the combined header length kept
 * (the spec asks to propagate at least 512 characters; longer headers are truncated by
 * dropping whole members, see otelprof_tracestate_parse). */
#define OTELPROF_TRACESTATE_MAX_MEMBERS 32
#define OTELPROF_TRACESTATE_MAX_LEN     512
#define OTELPROF_TRACESTATE_KEY_MAX     256
#define OTELPROF_TRACESTATE_VALUE_MAX   256

/* baggage: the spec's minimums a platform must propagate, used as the capacity. The
 * length counts the header as otelprof_baggage_format writes it (percent-encoded). */
#define OTELPROF_BAGGAGE_MAX_MEMBERS 64
#define OTELPROF_BAGGAGE_MAX_LEN     8192

/* A version-00 traceparent is 55 characters; 56 with the terminating NUL. */
#define OTELPROF_TRACEPARENT_LEN  55
#define OTELPROF_TRACEPARENT_SIZE 56

/* ---------------------------------------------------------------------------------------
 * tracestate
 * ------------------------------------------------------------------------------------- */

/* Up to 32 list-members kept in a fixed buffer, in header order (left-most first).
 * Fields are private. Zero-initialised = empty. */
typedef struct otelprof_tracestate {
    uint16_t count;
    uint16_t used; /* bytes of buf in use */
    uint16_t off[OTELPROF_TRACESTATE_MAX_MEMBERS];
    uint16_t key_len[OTELPROF_TRACESTATE_MAX_MEMBERS];
    uint16_t value_len[OTELPROF_TRACESTATE_MAX_MEMBERS];
    char buf[OTELPROF_TRACESTATE_MAX_LEN]; /* key bytes then value bytes, per member */
} otelprof_tracestate;

/* Make ts empty. Thread-safe on distinct objects, async-signal-safe. Since 0.1. */
OTELPROF_API void otelprof_tracestate_clear(otelprof_tracestate *ts);

/* Parse one tracestate header field value into ts (replacing its content).
 * Rules (Trace Context Level 2, "tracestate"): members separated by ',' with optional
 * spaces/tabs around them; empty members are skipped; key
 * `(lcalpha / DIGIT) 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@")`, which covers
 * the multi-tenant `tenant@system` form; value 1..256 characters 0x20-0x7E except ',' and
 * '=', not ending in a space (trailing spaces are whitespace, leading ones belong to the
 * value). A key seen again is dropped (the first one stays).
 * Returns OTELPROF_E_PARSE for a member that breaks the grammar and OTELPROF_E_TOO_LARGE for
 * more than 32 members; the whole tracestate is then invalid and ts is left empty.
 * A valid header longer than OTELPROF_TRACESTATE_MAX_LEN is not an error: members longer
 * than 128 characters are dropped first, right-most first, then right-most members,
 * until the rest fits (spec "tracestate limits").
 * s: read during the call only. Thread-safe on distinct objects, async-signal-safe, no
 * allocation. Since 0.1. */
OTELPROF_API otelprof_status otelprof_tracestate_parse(otelprof_tracestate *ts, const char *s,
                                                       size_t len);

/* Like otelprof_tracestate_parse for a header sent as n fields: the fields are treated as
 * joined with ',' (RFC 9110 field combination). fields[i] has lens[i] bytes (or
 * OTELPROF_NUL_TERMINATED); lens may be NULL when every field is NUL-terminated.
 * Same guarantees. Since 0.1. */
OTELPROF_API otelprof_status otelprof_tracestate_parse_fields(otelprof_tracestate *ts,
                                                              const char *const *fields,
                                                              const size_t *lens, size_t n);

/* Number of members. Async-signal-safe. Since 0.1. */
OTELPROF_API size_t otelprof_tracestate_count(const otelprof_tracestate *ts);

/* The i-th member (0 = left-most). Pointers point into ts and stay valid until ts
 * changes. OTELPROF_E_INVAL when i >= count. Async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_tracestate_at(const otelprof_tracestate *ts, size_t i,
                                                    const char **key, size_t *key_len,
                                                    const char **value, size_t *value_len);

/* The value for key, or NULL when absent; *value_len (may be NULL) gets its length. The
 * pointer points into ts and stays valid until ts changes. Async-signal-safe. Since 0.1. */
OTELPROF_API const char *otelprof_tracestate_get(const otelprof_tracestate *ts, const char *key,
                                                 size_t key_len, size_t *value_len);

/* Add or update key=value and move it to the front, as the spec requires of a
 * participant that changes its entry. At 32 members the right-most one is dropped; if the
 * header would exceed OTELPROF_TRACESTATE_MAX_LEN, other members are dropped by the
 * truncation rules of otelprof_tracestate_parse (the new member is never dropped).
 * OTELPROF_E_INVAL for a key or value outside the grammar, OTELPROF_E_TOO_LARGE when
 * key=value alone is longer than OTELPROF_TRACESTATE_MAX_LEN; ts is unchanged on error.
 * key/value are copied. Async-signal-safe, no allocation. Since 0.1. */
OTELPROF_API otelprof_status otelprof_tracestate_set(otelprof_tracestate *ts, const char *key,
                                                     size_t key_len, const char *value,
                                                     size_t value_len);

/* Remove key. OTELPROF_OK whether or not it was there. Async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_tracestate_remove(otelprof_tracestate *ts, const char *key,
                                                        size_t key_len);

/* Write the header value ("k1=v1,k2=v2") and a NUL into out[0..out_size). *out_len (may
 * be NULL) gets the length without the NUL, also when OTELPROF_E_BUF_TOO_SMALL is returned
 * (then out holds an empty string if out_size > 0). OTELPROF_TRACESTATE_MAX_LEN + 1 bytes
 * always suffice. Async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_tracestate_format(const otelprof_tracestate *ts, char *out,
                                                        size_t out_size, size_t *out_len);

/* ---------------------------------------------------------------------------------------
 * Span context and traceparent
 * ------------------------------------------------------------------------------------- */

/* A span context as propagated between processes. trace_id/span_id in W3C byte order
 * (trace_id[0] is the first hex pair). trace_flags is kept whole, including bits this
 * version does not know; test bits with a mask (OTELPROF_FLAG_SAMPLED,
 * OTELPROF_FLAG_RANDOM_TRACE_ID). is_remote: the context was extracted from a carrier.
 * Zero-initialised = invalid (no parent). */
typedef struct otelprof_span_context {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags;
    bool is_remote;
    otelprof_tracestate tracestate;
} otelprof_span_context;

/* true when trace_id and span_id are both non-zero. Async-signal-safe. Since 0.1. */
OTELPROF_API bool otelprof_span_context_is_valid(const otelprof_span_context *ctx);

/* true when the sampled bit (OTELPROF_FLAG_SAMPLED) of trace_flags is set.
 * Async-signal-safe. Since 0.1. */
OTELPROF_API bool otelprof_span_context_is_sampled(const otelprof_span_context *ctx);

/* Parse a traceparent header value. Strict (Trace Context Level 2, "traceparent" and
 * "versioning"): lowercase hex only; version 00 is exactly 55 characters; version ff is
 * invalid; a higher version needs at least 55 characters, its version-00 fields are read
 * at their positions, and after the flags only the end or '-' may follow; all-zero
 * trace-id or parent-id is invalid; spaces and tabs around the value are ignored.
 * On success fills trace_id, span_id, trace_flags (the whole byte), sets is_remote and
 * empties out->tracestate. On failure (OTELPROF_E_PARSE, or OTELPROF_E_INVALID_ID for
 * all-zero ids) *out is zeroed, i.e. invalid: start a new trace.
 * Async-signal-safe, no allocation. Since 0.1. */
OTELPROF_API otelprof_status otelprof_traceparent_parse(const char *s, size_t len,
                                                        otelprof_span_context *out);

/* Write the version-00 traceparent of ctx (55 characters and a NUL); trace_flags is
 * written unchanged. OTELPROF_E_INVALID_ID when ctx is not valid (out then holds "").
 * Async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_traceparent_format(const otelprof_span_context *ctx,
                                                         char out[OTELPROF_TRACEPARENT_SIZE]);

/* ---------------------------------------------------------------------------------------
 * Baggage
 * ------------------------------------------------------------------------------------- */

/* Up to 64 entries, 8192 bytes of encoded header. Each entry: a key (an RFC 9110 token),
 * a value (decoded: UTF-8 text) and optional metadata (the properties that followed ';',
 * opaque, normalised to "p1;p2=v2" without whitespace). Fields are private.
 * Zero-initialised = empty. */
typedef struct otelprof_baggage {
    uint16_t count;
    uint16_t used; /* bytes of buf in use */
    struct {
        uint16_t off, key_len, value_len, meta_len;
        uint16_t value_enc_len; /* length of the value once percent-encoded */
    } ent[OTELPROF_BAGGAGE_MAX_MEMBERS];
    char buf[OTELPROF_BAGGAGE_MAX_LEN]; /* key, decoded value, metadata, per entry */
} otelprof_baggage;

/* Make bag empty. Async-signal-safe. Since 0.1. */
OTELPROF_API void otelprof_baggage_clear(otelprof_baggage *bag);

/* Parse one `baggage` header field value and ADD its members to bag (call it once per
 * header field, after otelprof_baggage_clear, to combine several fields).
 * Grammar (W3C Baggage): members separated by ',' with optional whitespace; member =
 * key OWS '=' OWS value *(OWS ';' OWS property); key a token; value printable ASCII
 * except space, '"', ',', ';' and '\', percent-decoded (invalid UTF-8 after decoding
 * becomes U+FFFD). A member seen again replaces the earlier one (last wins).
 * Members are all-or-nothing: a malformed one is dropped (the others are kept) and makes
 * the result OTELPROF_E_PARSE; one that would exceed 64 members or
 * OTELPROF_BAGGAGE_MAX_LEN encoded bytes is dropped and makes the result
 * OTELPROF_E_TOO_LARGE (which wins over E_PARSE). Either way bag holds every member that
 * was kept. s: read during the call only, and not inside bag (OTELPROF_E_INVAL).
 * Async-signal-safe, no allocation. Since 0.1. */
OTELPROF_API otelprof_status otelprof_baggage_parse(otelprof_baggage *bag, const char *s,
                                                    size_t len);

/* Number of entries. Async-signal-safe. Since 0.1. */
OTELPROF_API size_t otelprof_baggage_count(const otelprof_baggage *bag);

/* The i-th entry, in insertion order. Any out-pointer may be NULL. Pointers point into
 * bag and stay valid until bag changes. OTELPROF_E_INVAL when i >= count.
 * Async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_baggage_at(const otelprof_baggage *bag, size_t i,
                                                 const char **key, size_t *key_len,
                                                 const char **value, size_t *value_len,
                                                 const char **metadata, size_t *metadata_len);

/* The decoded value for key (case-sensitive), or NULL; *value_len may be NULL.
 * Async-signal-safe. Since 0.1. */
OTELPROF_API const char *otelprof_baggage_get(const otelprof_baggage *bag, const char *key,
                                              size_t key_len, size_t *value_len);

/* Add or replace an entry (a replaced one moves to the end). value: UTF-8 text
 * (OTELPROF_E_UTF8 otherwise), encoded when formatted. metadata: NULL/empty or properties
 * in the header syntax, e.g. "ttl=30;private" (OTELPROF_E_INVAL otherwise). Key not a token:
 * OTELPROF_E_INVAL. Exceeding 64 entries or OTELPROF_BAGGAGE_MAX_LEN encoded bytes:
 * OTELPROF_E_TOO_LARGE. bag is unchanged on error. Everything is copied; the inputs must
 * not point into bag itself (OTELPROF_E_INVAL; copy a value read from bag first).
 * Async-signal-safe, no allocation. Since 0.1. */
OTELPROF_API otelprof_status otelprof_baggage_set(otelprof_baggage *bag, const char *key,
                                                  size_t key_len, const char *value,
                                                  size_t value_len, const char *metadata,
                                                  size_t metadata_len);

/* Remove key. OTELPROF_OK whether or not it was there. Async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_baggage_remove(otelprof_baggage *bag, const char *key,
                                                     size_t key_len);

/* Write the header value and a NUL into out[0..out_size): "k=v;meta,k2=v2", values
 * percent-encoded (every byte outside the spec's baggage-octet set, and '%', as %XX).
 * *out_len (may be NULL) gets the length without the NUL, also with
 * OTELPROF_E_BUF_TOO_SMALL (then out holds "" if out_size > 0).
 * OTELPROF_BAGGAGE_MAX_LEN + 1 bytes always suffice. Async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_baggage_format(const otelprof_baggage *bag, char *out,
                                                     size_t out_size, size_t *out_len);

/* ---------------------------------------------------------------------------------------
 * Carrier: the headers of one request, reached through callbacks so the HTTP and gRPC
 * layers can wrap their own header maps without copying.
 * ------------------------------------------------------------------------------------- */

/* Called by for_each for every header; return non-zero to stop the iteration. */
typedef int (*otelprof_header_visit_fn)(void *arg, const char *name, size_t name_len,
                                        const char *value, size_t value_len);

/* Set sz = sizeof(otelprof_carrier) (OTELPROF_CARRIER_INIT does): callbacks added later
 * are read only when the caller's sz covers them. Names are compared case-insensitively
 * (ASCII); the library passes lowercase names. Returned pointers must stay valid until the
 * carrier is next changed. Callbacks a direction does not use may be NULL (extract uses
 * count and get, inject uses set). */
typedef struct otelprof_carrier {
    size_t sz;
    void *user;
    /* Number of values (header fields) named name. */
    size_t (*count)(void *user, const char *name, size_t name_len);
    /* The index-th value named name, or NULL past the last; *value_len gets its length. */
    const char *(*get)(void *user, const char *name, size_t name_len, size_t index,
                       size_t *value_len);
    /* Replace every value named name with this one (copied by the carrier). */
    otelprof_status (*set)(void *user, const char *name, size_t name_len, const char *value,
                           size_t value_len);
    /* Visit every header in order; returns OTELPROF_OK, also when fn stopped it. */
    otelprof_status (*for_each)(void *user, otelprof_header_visit_fn fn, void *arg);
} otelprof_carrier;
#define OTELPROF_CARRIER_INIT(...) ((otelprof_carrier){.sz = sizeof(otelprof_carrier), __VA_ARGS__})

/* A ready-made carrier over an array of NUL-terminated (name, value) pairs. For reading,
 * point headers at the pairs and set count. For writing, give a char buffer: set copies
 * names and values into it (space of replaced values is not reused) and appends to or
 * rewrites the array. */
typedef struct otelprof_header {
    const char *name;
    const char *value;
} otelprof_header;

typedef struct otelprof_header_array {
    otelprof_header *headers;
    size_t count;
    size_t capacity;
    char *buf; /* may be NULL for a read-only carrier */
    size_t buf_size;
    size_t buf_used;
} otelprof_header_array;

/* Initialise arr over headers[0..count) with room for capacity pairs (>= count) and buf
 * of buf_size bytes for copies. The arrays stay owned by the caller and must outlive arr.
 * Async-signal-safe. Since 0.1. */
OTELPROF_API void otelprof_header_array_init(otelprof_header_array *arr, otelprof_header *headers,
                                             size_t count, size_t capacity, char *buf,
                                             size_t buf_size);

/* A carrier whose callbacks act on arr (which must outlive it). Its set returns
 * OTELPROF_E_TOO_LARGE when the pairs are full and OTELPROF_E_BUF_TOO_SMALL when buf is.
 * Async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_carrier otelprof_header_array_carrier(otelprof_header_array *arr);

/* ---------------------------------------------------------------------------------------
 * Propagators
 * ------------------------------------------------------------------------------------- */

#define OTELPROF_PROPAGATOR_TRACECONTEXT 0x1u
#define OTELPROF_PROPAGATOR_BAGGAGE      0x2u

/* Which propagators are on (a mask of OTELPROF_PROPAGATOR_*). Fields are private. */
typedef struct otelprof_propagators {
    uint32_t mask;
} otelprof_propagators;

/* Select propagators from a comma-separated list like OTEL_PROPAGATORS:
 * "tracecontext", "baggage", "none" (case-insensitive, whitespace around names ignored).
 * "none" selects nothing, whatever else is listed. Unknown names are ignored with a
 * warning through the log callback. An empty list selects the default,
 * "tracecontext,baggage". Always OTELPROF_OK except OTELPROF_E_INVAL for a NULL out.
 * Thread-safe. Not async-signal-safe (it may log). Since 0.1. */
OTELPROF_API otelprof_status otelprof_propagators_parse(otelprof_propagators *out, const char *list,
                                                        size_t len);

/* otelprof_propagators_parse of the environment variable OTEL_PROPAGATORS (unset: the
 * default). Reads the environment on every call: call it at start-up, not while other
 * threads may setenv. Not async-signal-safe. Since 0.1. */
OTELPROF_API otelprof_status otelprof_propagators_from_env(otelprof_propagators *out);

/* Read the remote parent and baggage from carrier (count/get callbacks).
 * out (may be NULL): with tracecontext on, exactly one valid traceparent value gives a
 * valid context with is_remote = true, and then the tracestate fields (joined) are parsed
 * into out->tracestate, left empty if invalid; no, two or more, or an invalid traceparent
 * leave *out zeroed (invalid: start a new trace). With tracecontext off, *out is zeroed.
 * bag_out (may be NULL): cleared, then with baggage on every `baggage` field is parsed
 * into it (malformed or excess members dropped).
 * Malformed input never makes this fail: OTELPROF_OK, or OTELPROF_E_INVAL for a NULL props
 * or carrier, or a carrier without the callbacks needed. Check the result with
 * otelprof_span_context_is_valid. props NULL is not allowed; use the result of
 * otelprof_propagators_parse. No allocation; thread-safety and async-signal-safety are
 * those of the carrier's callbacks. Since 0.1. */
OTELPROF_API otelprof_status otelprof_propagation_extract(const otelprof_propagators *props,
                                                          const otelprof_carrier *carrier,
                                                          otelprof_span_context *out,
                                                          otelprof_baggage *bag_out);

/* Write ctx and bag into carrier (set callback): with tracecontext on and ctx valid,
 * `traceparent` (version 00) and, when not empty, `tracestate`; with baggage on and bag
 * non-empty, `baggage`. ctx and bag may be NULL (nothing written for them). Returns the
 * first error a set callback returned (later headers are still attempted), else
 * OTELPROF_OK; OTELPROF_E_INVAL for a NULL props/carrier or no set callback.
 * No allocation (uses about 9 KiB of stack); thread-safety and async-signal-safety are
 * those of the carrier's callbacks. Since 0.1. */
OTELPROF_API otelprof_status otelprof_propagation_inject(const otelprof_propagators *props,
                                                         const otelprof_span_context *ctx,
                                                         const otelprof_baggage *bag,
                                                         const otelprof_carrier *carrier);

#ifdef __cplusplus
}
#endif
#endif
