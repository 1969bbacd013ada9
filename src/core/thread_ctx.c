/* Per-thread publication: OTEP 4947 `otel_thread_ctx_v1` and custom-labels v1.
 *
 * Write protocol (OTEP 4947 option (b), and the same for custom labels): every attach
 * builds a complete new record in a per-thread arena that no reader can see yet, then
 * swaps the TLS pointer to it with one volatile store. Detach stores the previous
 * frame's pointer (or NULL). Readers only read while this thread is stopped (perf event,
 * ptrace stop), so compiler ordering (atomic_signal_fence) is all that is needed.
 *
 * The arena is a stack: frame i's bytes sit above frame i-1's, so restoring the previous
 * context never rewrites memory a reader might be looking at. Frames are reserved before
 * they are built, and each reserved frame first points at the previous frame's data, so
 * a signal handler that attaches and detaches in the middle of an attach or detach on the
 * same thread leaves a consistent state (see docs/threads.md).
 */
#define _GNU_SOURCE
#include "internal.h"
#include "util/mapcache.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif
#ifndef PR_SET_VMA_ANON_NAME
#define PR_SET_VMA_ANON_NAME 0
#endif

/* OTEP 4947: the one symbol readers find in .dynsym (STT_TLS, 8 bytes, global, default
 * visibility). Built with -mtls-dialect=gnu2, so a shared libotelprof accesses it through
 * TLSDESC; an executable's link relaxes that to local-exec. */
__attribute__((visibility("default"))) __thread void *otel_thread_ctx_v1;

/* The record layout readers copy: 28-byte header, then [key][len][value] entries. */
struct tc_record {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t valid;
    uint8_t trace_flags;
    uint16_t attrs_size;
    uint8_t attrs[];
};
_Static_assert(offsetof(struct tc_record, valid) == 24, "OTEP 4947 layout");
_Static_assert(offsetof(struct tc_record, trace_flags) == 25, "OTEP 4947 layout");
_Static_assert(offsetof(struct tc_record, attrs_size) == 26, "OTEP 4947 layout");
_Static_assert(offsetof(struct tc_record, attrs) == OTELPROF_RECORD_HEADER, "OTEP 4947 layout");

/* custom-labels v1 (LP64): string 16 bytes, label 32, labelset 24. */
struct cl_string {
    size_t len;
    const unsigned char *buf;
};
struct cl_label {
    struct cl_string key;
    struct cl_string value;
};
struct cl_labelset {
    struct cl_label *storage;
    size_t count;
    size_t capacity;
};
_Static_assert(sizeof(struct cl_label) == 32, "custom-labels v1 layout");
_Static_assert(sizeof(struct cl_labelset) == 24, "custom-labels v1 layout");

/* Parca reader limits. */
#define CL_MAX_LABELS 10
#define CL_KEY_MAX    25
#define CL_VALUE_MAX  53

/* Only touched pages cost memory; 63 frames of the largest size (640 + 392 bytes) fit. */
#define ARENA_BYTES (64u * 1024u)
#define SEQ_MASK    ((UINT64_C(1) << 48) - 1)

struct frame {
    void *rec; /* struct tc_record *, NULL for a cleared frame */
    void *cl;  /* struct cl_labelset *, NULL when none */
    uint32_t top_before;
    uint32_t gen; /* op_g_gen when rec and cl were built */
    uint64_t seq;
    /* st->clobber when the frame was last popped: while they are equal, no build has
     * written the arena since, so its bytes are intact for reuse (see attach_build). */
    uint64_t stamp;
};

struct tstate {
    uint64_t id; /* unique per thread state: tokens carry it */
    uint32_t depth;
    uint32_t top;
    uint64_t seq;
    uint64_t clobber; /* bumped by every reservation that builds new bytes */
    void **tc_slot;   /* &otel_thread_ctx_v1 of this thread */
    void **cl_slot;   /* &custom_labels_current_set of this thread */
    /* fr[0] is an always-empty sentinel (NULL pointers): frame i of the stack is fr[i + 1],
     * so "the frame below" always exists and needs no branch. */
    struct frame fr[OTELPROF_MAX_DEPTH + 1];
};

/* The arena follows the struct in the same mapping, placed half a page away (modulo 4096)
 * from the hot header and first frames: records written there would otherwise share low
 * address bits with the frame fields read right after, and the CPU's store-to-load
 * disambiguation stalls on such 4 KiB aliases (measured: ~12% of an attach+detach). */
#define ARENA_OFFSET (((sizeof(struct tstate) + 4095u) & ~(size_t)4095u) + 2048u)
#define STATE_BYTES  (ARENA_OFFSET + ARENA_BYTES)

static inline unsigned char *arena_of(struct tstate *st)
{
    return (unsigned char *)st + ARENA_OFFSET;
}

static __thread struct tstate *tls_state;
static pthread_key_t state_key;
static pthread_once_t state_key_once = PTHREAD_ONCE_INIT;
static bool state_key_ok;
static atomic_uint_fast64_t state_ids = 1;
static op_mapcache state_cache; /* states of exited threads, for the next ones */

static inline void barrier(void)
{
    atomic_signal_fence(memory_order_seq_cst);
}

#define FRAME(st, i) (&(st)->fr[(i) + 1]) /* FRAME(st, -1) is the empty sentinel */

static inline unsigned formats_now(void)
{
    return atomic_load_explicit(&op_g_formats, memory_order_relaxed);
}

/* Store f's pointers into the TLS variables of the formats that are on (NULL for the
 * others). */
static inline void publish_fm(struct tstate *st, const struct frame *f, unsigned fm)
{
    void *rec = (fm & OTELPROF_FORMAT_THREAD_CTX) ? f->rec : NULL;
    void *cl = (fm & OTELPROF_FORMAT_CUSTOM_LABELS) ? f->cl : NULL;
    barrier();
    *(void *volatile *)st->tc_slot = rec;
    *(void *volatile *)st->cl_slot = cl;
    barrier();
}

static inline void publish(struct tstate *st, const struct frame *f)
{
    publish_fm(st, f, formats_now());
}

static void state_destroy(void *p)
{
    struct tstate *st = p;
    if (!st)
        return;
    /* The thread is exiting: make sure no reader follows a pointer into the unmapped arena
     * while the rest of the thread's teardown runs. */
    publish(st, FRAME(st, -1));
    if (tls_state == st)
        tls_state = NULL;
    /* kept for the next thread (nothing points into it any more), else unmapped */
    if (!op_mapcache_put(&state_cache, st))
        munmap(st, STATE_BYTES);
}

static void state_key_init(void)
{
    state_key_ok = pthread_key_create(&state_key, state_destroy) == 0;
}

static struct tstate *state_get(otelprof_status *err)
{
    struct tstate *st = tls_state;
    if (st)
        return st;
    pthread_once(&state_key_once, state_key_init);
    if (!state_key_ok) {
        *err = OTELPROF_E_SYSTEM;
        return NULL;
    }
    /* A state an exited thread left (reset as a new mapping would be: the arena needs no
     * clearing, frames say what is in it), or mmap rather than malloc: async-signal-safe in
     * practice, and pages of the arena that are never used are never touched. */
    void *p = op_mapcache_take(&state_cache);
    if (p) {
        memset(p, 0, sizeof(struct tstate));
    } else {
        p = mmap(NULL, STATE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            *err = OTELPROF_E_NOMEM;
            return NULL;
        }
        (void)prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, STATE_BYTES,
                    (unsigned long)"otelprof-thread");
    }
    st = p;
    st->id = atomic_fetch_add(&state_ids, 1);
    st->tc_slot = &otel_thread_ctx_v1;
    st->cl_slot = otelprof_cl_slot();
    if (pthread_setspecific(state_key, st) != 0) {
        if (!op_mapcache_put(&state_cache, p))
            munmap(p, STATE_BYTES);
        *err = OTELPROF_E_SYSTEM;
        return NULL;
    }
    tls_state = st;
    return st;
}

otelprof_status otelprof_thread_init(void)
{
    otelprof_status err = OTELPROF_OK;
    return state_get(&err) ? OTELPROF_OK : err;
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline size_t attr_len(const otelprof_attr *a)
{
    return a->value_len == OTELPROF_NUL_TERMINATED ? strlen(a->value) : a->value_len;
}

/* Copy a value and check it is UTF-8, in one pass for the usual ASCII case: 8- or 4-byte
 * words (the last one overlapping) instead of a libc memcpy call plus a byte loop. */
static inline bool copy_value(uint8_t *dst, const uint8_t *src, size_t len)
{
    uint64_t hi = 0;
    if (len >= 8) {
        uint64_t v;
        for (size_t i = 0; i + 8 <= len; i += 8) {
            memcpy(&v, src + i, 8);
            memcpy(dst + i, &v, 8);
            hi |= v;
        }
        memcpy(&v, src + len - 8, 8);
        memcpy(dst + len - 8, &v, 8);
        hi |= v;
    } else if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, src, 4);
        memcpy(&b, src + len - 4, 4);
        memcpy(dst, &a, 4);
        memcpy(dst + len - 4, &b, 4);
        hi = a | b;
    } else {
        for (size_t i = 0; i < len; i++) {
            dst[i] = src[i];
            hi |= src[i];
        }
    }
    return (hi & UINT64_C(0x8080808080808080)) == 0 || op_utf8_valid(dst, len);
}

/* First pass: keys, lengths and the total size, without touching value bytes (UTF-8 is
 * checked while copying). lens[i] receives each value's length. */
static inline otelprof_status size_attrs(const otelprof_attr *attrs, size_t n, uint8_t *lens,
                                         size_t *total_out)
{
    unsigned nkeys = atomic_load_explicit(&op_g_key_count, memory_order_acquire);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const otelprof_attr *a = &attrs[i];
        if (!a->value)
            return OTELPROF_E_INVAL;
        if (a->key >= nkeys)
            return OTELPROF_E_UNKNOWN_KEY;
        size_t len = attr_len(a);
        if (len > OTELPROF_VALUE_MAX)
            return OTELPROF_E_TOO_LARGE;
        total += 2 + len;
        if (total > OTELPROF_ATTRS_MAX)
            return OTELPROF_E_TOO_LARGE;
        lens[i] = (uint8_t)len;
    }
    if (n > 1) {
        /* Duplicate keys: pairwise for the usual handful, a bitmap beyond. */
        if (n <= 8) {
            for (size_t i = 1; i < n; i++)
                for (size_t j = 0; j < i; j++)
                    if (attrs[i].key == attrs[j].key)
                        return OTELPROF_E_DUP_KEY;
        } else {
            uint64_t seen[OTELPROF_MAX_KEYS / 64] = {0};
            for (size_t i = 0; i < n; i++) {
                uint32_t k = attrs[i].key;
                if (seen[k / 64] & (UINT64_C(1) << (k % 64)))
                    return OTELPROF_E_DUP_KEY;
                seen[k / 64] |= UINT64_C(1) << (k % 64);
            }
        }
    }
    *total_out = total;
    return OTELPROF_OK;
}

static inline size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

#if defined(__SSE2__)
#include <emmintrin.h>
/* Lowercase hex of 8 bytes in a dozen SSE2 instructions (x86-64 baseline): split the
 * nibbles, interleave them high first, add '0' and, for 10..15, the gap up to 'a'. */
static inline void hex8(char *out, const uint8_t *in)
{
    const __m128i nib = _mm_set1_epi8(0x0f);
    __m128i v = _mm_loadl_epi64((const __m128i *)(const void *)in);
    __m128i n = _mm_unpacklo_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), nib), _mm_and_si128(v, nib));
    __m128i letter =
        _mm_and_si128(_mm_cmpgt_epi8(n, _mm_set1_epi8(9)), _mm_set1_epi8('a' - '0' - 10));
    _mm_storeu_si128((__m128i *)(void *)out,
                     _mm_add_epi8(_mm_add_epi8(n, _mm_set1_epi8('0')), letter));
}
#else
/* Lowercase hex pairs of every byte value, first character in the low byte (both
 * supported targets are little-endian): one load and one 2-byte store per byte. */
#define HEXC(d) ((d) < 10 ? '0' + (d) : 'a' - 10 + (d))
#define HX(n)   ((uint16_t)(HEXC((n) >> 4) | HEXC((n)&15) << 8))
#define HX4(n)  HX(n), HX((n) + 1), HX((n) + 2), HX((n) + 3)
#define HX16(n) HX4(n), HX4((n) + 4), HX4((n) + 8), HX4((n) + 12)
#define HX64(n) HX16(n), HX16((n) + 16), HX16((n) + 32), HX16((n) + 48)
static const uint16_t hex_pairs[256] = {HX64(0), HX64(64), HX64(128), HX64(192)};
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "hex_pairs assumes little-endian");

static inline void hex8(char *out, const uint8_t *in)
{
    for (size_t i = 0; i < 8; i++)
        memcpy(out + 2 * i, &hex_pairs[in[i]], 2);
}
#endif

/* The id labels' values: 32 + 16 hex characters at hx. The trace id's are skipped when
 * hx already holds them (a reused label set of the same trace). */
static inline void hex_ids(char *hx, const struct tc_record *rec, bool trace_done)
{
    if (!trace_done) {
        hex8(hx, rec->trace_id);
        hex8(hx + 16, rec->trace_id + 8);
    }
    hex8(hx + 32, rec->span_id);
}

/* Custom-labels set for a record: the two id labels, then attributes that fit Parca's
 * reader (10 labels, keys <= 25 bytes: longer keys are left out rather than cut into
 * colliding names; values cut to 53 bytes at a character boundary). cl_size() bytes. */
static void cl_build(unsigned char *p, const struct tc_record *rec, size_t n_attrs)
{
    struct cl_labelset *ls = (struct cl_labelset *)p;
    struct cl_label *lab = (struct cl_label *)(p + sizeof *ls);
    size_t nlab_max = n_attrs + 2 < CL_MAX_LABELS ? n_attrs + 2 : CL_MAX_LABELS;
    char *hx = (char *)(lab + nlab_max);
    hex_ids(hx, rec, false);
    const struct op_label *tl = atomic_load_explicit(&op_g_trace_label, memory_order_acquire);
    const struct op_label *sl = atomic_load_explicit(&op_g_span_label, memory_order_acquire);
    size_t n = 0;
    lab[n++] = (struct cl_label){{tl->len, (const unsigned char *)tl->name},
                                 {32, (const unsigned char *)hx}};
    lab[n++] = (struct cl_label){{sl->len, (const unsigned char *)sl->name},
                                 {16, (const unsigned char *)hx + 32}};
    const uint8_t *a = rec->attrs, *end = rec->attrs + rec->attrs_size;
    while (a < end && n < nlab_max) {
        uint8_t key = a[0], len = a[1];
        const char *name = atomic_load_explicit(&op_g_key_names[key], memory_order_acquire);
        size_t klen = op_g_key_name_len[key];
        if (name && klen <= CL_KEY_MAX) {
            lab[n++] = (struct cl_label){{klen, (const unsigned char *)name},
                                         {op_utf8_cut(a + 2, len, CL_VALUE_MAX), a + 2}};
        }
        a += 2 + len;
    }
    ls->storage = lab;
    ls->count = n;
    ls->capacity = n;
}

static size_t cl_size(size_t n_attrs)
{
    size_t nlab = n_attrs + 2 < CL_MAX_LABELS ? n_attrs + 2 : CL_MAX_LABELS;
    return align8(sizeof(struct cl_labelset) + nlab * sizeof(struct cl_label) + 48);
}

static inline char *cl_hex_of(unsigned char *p, size_t n_attrs)
{
    size_t nlab_max = n_attrs + 2 < CL_MAX_LABELS ? n_attrs + 2 : CL_MAX_LABELS;
    return (char *)(p + sizeof(struct cl_labelset) + nlab_max * sizeof(struct cl_label));
}

/* a[0..len) == b[0..len), in 8-byte words like copy_value. */
static inline bool equal_bytes(const uint8_t *a, const uint8_t *b, size_t len)
{
    if (len >= 8) {
        uint64_t diff = 0;
        for (size_t i = 0; i + 8 <= len; i += 8)
            diff |= load64(a + i) ^ load64(b + i);
        return (diff | (load64(a + len - 8) ^ load64(b + len - 8))) == 0;
    }
    if (len >= 4) {
        uint32_t a0, a1, b0, b1;
        memcpy(&a0, a, 4);
        memcpy(&a1, a + len - 4, 4);
        memcpy(&b0, b, 4);
        memcpy(&b1, b + len - 4, 4);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

/* The entries at p are exactly what attrs (lengths in lens) would be encoded as. */
static inline bool same_entries(const uint8_t *p, const otelprof_attr *attrs, const uint8_t *lens,
                                size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = lens[i];
        if (p[0] != (uint8_t)attrs[i].key || p[1] != len ||
            !equal_bytes(p + 2, (const uint8_t *)attrs[i].value, len))
            return false;
        p += 2 + len;
    }
    return true;
}

static inline otelprof_token make_token(const struct tstate *st, uint32_t depth, uint64_t seq)
{
    otelprof_token t = {{st->id, ((uint64_t)depth << 48) | (seq & SEQ_MASK)}};
    return t;
}

/* Reserve frame `depth` and `need` arena bytes; the frame initially republishes what the
 * previous frame holds, so an interrupting handler's detach never exposes a half-built
 * record. */
static inline __attribute__((always_inline)) struct frame *reserve(struct tstate *st, size_t need,
                                                                   unsigned char **mem, bool builds)
{
    /* st is read afresh: the callers' checks before this point must not be merged with
     * the loads here, or a handler that ran in between would go unnoticed. */
    barrier();
    uint32_t d = st->depth;
    if (d >= OTELPROF_MAX_DEPTH || need > ARENA_BYTES - st->top)
        return NULL;
    struct frame *f = FRAME(st, d);
    f->rec = FRAME(st, (int)d - 1)->rec;
    f->cl = FRAME(st, (int)d - 1)->cl;
    f->top_before = st->top;
    f->seq = ++st->seq;
    /* New bytes may overwrite popped frames above: stale their stamps before writing. A
     * reattach rewrites only its own frame's ids and leaves the others intact. */
    st->clobber += builds;
    *mem = arena_of(st) + st->top;
    barrier();
    st->top += (uint32_t)need;
    st->depth = d + 1;
    barrier();
    return f;
}

/* The first attach in the process or on a thread: initialise. */
static __attribute__((noinline)) otelprof_status ensure_ready_slow(struct tstate **st)
{
    if (!atomic_load_explicit(&op_g_inited, memory_order_acquire)) {
        otelprof_status rc = otelprof_init(NULL);
        if (rc != OTELPROF_OK)
            return rc;
    }
    otelprof_status err = OTELPROF_OK;
    *st = state_get(&err);
    return *st ? OTELPROF_OK : err;
}

static inline __attribute__((always_inline)) otelprof_status ensure_ready(struct tstate **st)
{
    *st = tls_state;
    if (__builtin_expect(*st != NULL && atomic_load_explicit(&op_g_inited, memory_order_relaxed),
                         1))
        return OTELPROF_OK;
    return ensure_ready_slow(st);
}

/* Undo a reservation whose record could not be built; nothing was published from it. */
static inline void unreserve(struct tstate *st, struct frame *f)
{
    barrier();
    st->depth--;
    st->top = f->top_before;
    barrier();
}

/* The record header, the part every attach writes the same way. */
static inline void write_header(struct tc_record *rec, const otelprof_context *ctx,
                                size_t attrs_size)
{
    memcpy(rec->trace_id, ctx->trace_id, 16);
    memcpy(rec->span_id, ctx->span_id, 8);
    rec->valid = 1;
    rec->trace_flags = ctx->trace_flags;
    rec->attrs_size = (uint16_t)attrs_size;
}

/* Reserve a frame, build the record (and the custom-labels set when that format is on)
 * and publish it. attrs were validated by size_attrs (lengths in lens).
 *
 * Re-encoding is skipped when nothing changed: if nothing was built on this thread since
 * the frame at this depth was last popped (its stamp is still the thread's clobber count:
 * reattaching frames, at this depth or below, rewrites only their ids) and it started at
 * the same arena offset, its record and label set are still intact exactly where the new
 * ones go. So a request's root span and its children each find their frames from the
 * previous request. Then attribute entries equal to the new ones are compared instead of
 * copied and validated again, and a label set built under the current generation (same
 * names) only gets the new ids' hex. The check is completed after the reservation: a
 * signal handler attaching in between bumps st->seq and is noticed. */
static inline __attribute__((always_inline)) otelprof_status
attach_build(struct tstate *st, const otelprof_context *ctx, const otelprof_attr *attrs,
             const uint8_t *lens, size_t n_attrs, size_t attrs_size, otelprof_token *token)
{
    /* The generation first: a label set built now carries names at least that new. */
    unsigned gen = atomic_load_explicit(&op_g_gen, memory_order_acquire);
    bool want_cl =
        atomic_load_explicit(&op_g_formats, memory_order_relaxed) & OTELPROF_FORMAT_CUSTOM_LABELS;
    size_t rec_bytes = align8(OTELPROF_RECORD_HEADER + attrs_size);
    size_t need = rec_bytes + (want_cl ? cl_size(n_attrs) : 0);
    uint64_t seq0 = st->seq, clobber0 = st->clobber;
    barrier(); /* read before what they vouch for */
    const struct frame *old = st->depth < OTELPROF_MAX_DEPTH ? FRAME(st, st->depth) : NULL;
    bool reuse = old && old->stamp == clobber0 && old->top_before == st->top && old->gen == gen;
    const void *old_rec = reuse ? old->rec : NULL, *old_cl = reuse ? old->cl : NULL;
    unsigned char *mem;
    struct frame *f = reserve(st, need, &mem, true);
    if (!f) {
        *token = (otelprof_token)OTELPROF_TOKEN_INIT;
        return OTELPROF_E_DEPTH;
    }
    struct tc_record *rec = (struct tc_record *)mem;
    unsigned char *cl_mem = want_cl ? mem + rec_bytes : NULL;
    /* Our reservation is the only one since the checks above: seq and clobber moved by
     * exactly ours (a handler that ran inside our increment of one shows in the other). */
    reuse = reuse && f->seq == seq0 + 1 && st->clobber == clobber0 + 1 &&
            old_rec == (const void *)mem && old_cl == (const void *)cl_mem &&
            rec->attrs_size == attrs_size && same_entries(rec->attrs, attrs, lens, n_attrs);
    bool same_trace = reuse && load64(rec->trace_id) == load64(ctx->trace_id) &&
                      load64(rec->trace_id + 8) == load64(ctx->trace_id + 8);
    write_header(rec, ctx, attrs_size);
    if (!reuse) {
        uint8_t *out = rec->attrs;
        for (size_t i = 0; i < n_attrs; i++) {
            size_t len = lens[i];
            *out++ = (uint8_t)attrs[i].key;
            *out++ = (uint8_t)len;
            /* Validate the copy: the caller's buffer could change under us, ours cannot. */
            if (!copy_value(out, (const uint8_t *)attrs[i].value, len)) {
                unreserve(st, f);
                *token = (otelprof_token)OTELPROF_TOKEN_INIT;
                return OTELPROF_E_UTF8;
            }
            out += len;
        }
    }
    if (cl_mem) {
        if (reuse) /* same entries and generation: the same labels, new ids */
            hex_ids(cl_hex_of(cl_mem, n_attrs), rec, same_trace);
        else
            cl_build(cl_mem, rec, n_attrs);
    }
    barrier();
    f->rec = rec;
    f->cl = cl_mem;
    f->gen = gen;
    publish(st, f);
    *token = make_token(st, st->depth, f->seq);
    return OTELPROF_OK;
}

/* attach_build's reuse case without its sizing pass, for the few attributes of the usual
 * span: the frame at this depth is intact since it was popped (stamp and arena offset),
 * built in this generation, and its entries equal attrs, so its record and label set
 * already sit where a new build would put them and only the ids change. Entries
 * equal to ones that were validated need no validation of their own. Returns false,
 * having published nothing, when any of that does not hold; the caller then builds. */
static inline __attribute__((always_inline)) bool reattach(struct tstate *st,
                                                           const otelprof_context *ctx,
                                                           const otelprof_attr *attrs,
                                                           size_t n_attrs, otelprof_token *token)
{
    uint32_t d = st->depth;
    if (d >= OTELPROF_MAX_DEPTH)
        return false;
    struct frame *f = FRAME(st, d);
    uint64_t seq0 = st->seq, clobber0 = st->clobber;
    barrier(); /* read before what they vouch for */
    unsigned char *mem = arena_of(st) + st->top;
    void *cl = f->cl;
    if (f->stamp != clobber0 || f->top_before != st->top || f->rec != (void *)mem ||
        f->gen != atomic_load_explicit(&op_g_gen, memory_order_acquire))
        return false;
    struct tc_record *rec = (struct tc_record *)mem;
    size_t attrs_size = rec->attrs_size;
    if (attrs_size > OTELPROF_ATTRS_MAX) /* torn by a handler: seq will say so, stay in bounds */
        return false;
    const uint8_t *p = rec->attrs, *end = rec->attrs + attrs_size;
    for (size_t i = 0; i < n_attrs; i++) {
        const otelprof_attr *a = &attrs[i];
        if (!a->value || (size_t)(end - p) < 2 || p[0] != a->key)
            return false;
        size_t len = attr_len(a);
        if (p[1] != len || (size_t)(end - p) - 2 < len ||
            !equal_bytes(p + 2, (const uint8_t *)a->value, len))
            return false;
        p += 2 + len;
    }
    bool want_cl =
        atomic_load_explicit(&op_g_formats, memory_order_relaxed) & OTELPROF_FORMAT_CUSTOM_LABELS;
    if (p != end || (cl != NULL) != want_cl)
        return false;
    size_t rec_bytes = align8(OTELPROF_RECORD_HEADER + attrs_size);
    if (cl && cl != (void *)(mem + rec_bytes))
        return false;
    unsigned char *got;
    if (reserve(st, rec_bytes + (cl ? cl_size(n_attrs) : 0), &got, false) != f)
        return false; /* depth or arena full: nothing was reserved */
    /* A handler that attached meanwhile bumped st->seq, unless it ran between the load
     * and the store of reserve's increment; then its build, the only kind of attach that
     * could change these bytes (a reattach needs them equal to its own), still shows in
     * st->clobber, which nothing here writes. */
    if (f->seq != seq0 + 1 || st->clobber != clobber0) {
        unreserve(st, f);
        return false;
    }
    bool same_trace = load64(rec->trace_id) == load64(ctx->trace_id) &&
                      load64(rec->trace_id + 8) == load64(ctx->trace_id + 8);
    memcpy(rec->trace_id, ctx->trace_id, 16);
    memcpy(rec->span_id, ctx->span_id, 8);
    rec->trace_flags = ctx->trace_flags;
    if (cl)
        hex_ids(cl_hex_of(cl, n_attrs), rec, same_trace);
    barrier();
    f->rec = rec;
    f->cl = cl;
    publish(st, f);
    *token = make_token(st, st->depth, f->seq);
    return true;
}

static __attribute__((noinline)) otelprof_status attach_general(const otelprof_context *ctx,
                                                                const otelprof_attr *attrs,
                                                                size_t n_attrs,
                                                                otelprof_token *token)
{
    if (!token)
        return OTELPROF_E_INVAL;
    *token = (otelprof_token)OTELPROF_TOKEN_INIT;
    if (!ctx || (n_attrs && !attrs))
        return OTELPROF_E_INVAL;
    if (!(load64(ctx->trace_id) | load64(ctx->trace_id + 8)) || !load64(ctx->span_id))
        return OTELPROF_E_INVALID_ID;
    if (n_attrs > OTELPROF_ATTRS_MAX / 2)
        return OTELPROF_E_TOO_LARGE;
    uint8_t lens[OTELPROF_ATTRS_MAX / 2];
    size_t attrs_size = 0;
    otelprof_status rc = size_attrs(attrs, n_attrs, lens, &attrs_size);
    if (rc != OTELPROF_OK)
        return rc;
    struct tstate *st;
    if ((rc = ensure_ready(&st)) != OTELPROF_OK)
        return rc;
    return attach_build(st, ctx, attrs, lens, n_attrs, attrs_size, token);
}

/* Attributes handled without attach_general's call and its worst-case length array: the
 * usual handful (the wrapper and the HTTP middleware publish a few keys). */
#define SMALL_ATTRS 4

/* The common cases (a thread already set up, a few attributes) get a lean inline path;
 * everything else, errors included, and a thread's first use go through attach_general. */
/* Everything but a reattach: kept out of line so that the reattach path in
 * otelprof_attach stays a small leaf with few registers to save. */
static __attribute__((noinline)) otelprof_status attach_small(const otelprof_context *ctx,
                                                              const otelprof_attr *attrs,
                                                              size_t n_attrs, otelprof_token *token)
{
    struct tstate *st = tls_state;
    if (n_attrs > SMALL_ATTRS || (n_attrs && !attrs) || !ctx || !token || !st ||
        !atomic_load_explicit(&op_g_inited, memory_order_relaxed))
        return attach_general(ctx, attrs, n_attrs, token);
    if (!(load64(ctx->trace_id) | load64(ctx->trace_id + 8)) || !load64(ctx->span_id)) {
        *token = (otelprof_token)OTELPROF_TOKEN_INIT;
        return OTELPROF_E_INVALID_ID;
    }
    if (n_attrs == 0 && !(atomic_load_explicit(&op_g_formats, memory_order_relaxed) &
                          OTELPROF_FORMAT_CUSTOM_LABELS)) {
        /* ids only, no label set: a header is all there is to write, nothing to reuse */
        unsigned char *mem;
        struct frame *f = reserve(st, align8(OTELPROF_RECORD_HEADER), &mem, true);
        if (!f) {
            *token = (otelprof_token)OTELPROF_TOKEN_INIT;
            return OTELPROF_E_DEPTH;
        }
        struct tc_record *rec = (struct tc_record *)mem;
        write_header(rec, ctx, 0);
        barrier();
        f->rec = rec;
        f->cl = NULL;
        publish(st, f);
        *token = make_token(st, st->depth, f->seq);
        return OTELPROF_OK;
    }
    uint8_t lens[SMALL_ATTRS];
    size_t attrs_size = 0;
    if (n_attrs && size_attrs(attrs, n_attrs, lens, &attrs_size) != OTELPROF_OK)
        return attach_general(ctx, attrs, n_attrs, token); /* reports the error */
    return attach_build(st, ctx, attrs, lens, n_attrs, attrs_size, token);
}

/* The usual case first: a thread already set up attaching the same few attributes as the
 * last context it detached at this depth (a server's request after request). */
otelprof_status otelprof_attach(const otelprof_context *ctx, const otelprof_attr *attrs,
                                size_t n_attrs, otelprof_token *token)
{
    struct tstate *st = tls_state;
    if (__builtin_expect(st && ctx && token && n_attrs <= SMALL_ATTRS && (attrs || !n_attrs) &&
                             atomic_load_explicit(&op_g_inited, memory_order_relaxed),
                         1) &&
        (load64(ctx->trace_id) | load64(ctx->trace_id + 8)) && load64(ctx->span_id) &&
        reattach(st, ctx, attrs, n_attrs, token))
        return OTELPROF_OK;
    return attach_small(ctx, attrs, n_attrs, token);
}

otelprof_status otelprof_clear(otelprof_token *token)
{
    if (!token)
        return OTELPROF_E_INVAL;
    *token = (otelprof_token)OTELPROF_TOKEN_INIT;
    struct tstate *st;
    otelprof_status rc = ensure_ready(&st);
    if (rc != OTELPROF_OK)
        return rc;
    unsigned char *mem;
    struct frame *f = reserve(st, 0, &mem, true);
    if (!f)
        return OTELPROF_E_DEPTH;
    f->rec = NULL;
    f->cl = NULL;
    publish(st, f);
    *token = make_token(st, st->depth, f->seq);
    return OTELPROF_OK;
}

otelprof_status otelprof_detach(otelprof_token *token)
{
    if (!token)
        return OTELPROF_E_INVAL;
    if (token->priv[0] == 0 && token->priv[1] == 0)
        return OTELPROF_OK;
    struct tstate *st = tls_state;
    if (!st || st->id != token->priv[0])
        return OTELPROF_E_WRONG_THREAD;
    uint32_t d = (uint32_t)(token->priv[1] >> 48);
    uint64_t seq = token->priv[1] & SEQ_MASK;
    if (d == 0 || d > st->depth || (FRAME(st, (int)d - 1)->seq & SEQ_MASK) != seq) {
        *token = (otelprof_token)OTELPROF_TOKEN_INIT;
        return OTELPROF_E_STALE_TOKEN;
    }
    const struct frame *prev = FRAME(st, (int)d - 2);
    unsigned fm = formats_now();
    /* Frames below the popped one never change while it is popped, so the pointers are
     * read once and kept in registers across the barriers. */
    void *rec = (fm & OTELPROF_FORMAT_THREAD_CTX) ? prev->rec : NULL;
    void *cl = (fm & OTELPROF_FORMAT_CUSTOM_LABELS) ? prev->cl : NULL;
    void *volatile *tc_slot = st->tc_slot, *volatile *cl_slot = st->cl_slot;
    uint32_t top = FRAME(st, (int)d - 1)->top_before;
    /* Publish first, pop second, publish again: a handler that runs between the steps
     * either sees the popped frame still reserved or restores `prev` itself. */
    barrier();
    *tc_slot = rec;
    *cl_slot = cl;
    uint32_t depth = st->depth;
    barrier();
    st->depth = d - 1;
    st->top = top;
    barrier();
    *tc_slot = rec;
    *cl_slot = cl;
    barrier();
    /* The popped frames' bytes stay as they are until something is built over them. */
    for (uint32_t i = d - 1; i < depth; i++)
        FRAME(st, (int)i)->stamp = st->clobber;
    *token = (otelprof_token)OTELPROF_TOKEN_INIT;
    return OTELPROF_OK;
}

otelprof_status otelprof_current(otelprof_context *ctx, otelprof_attr *attrs, size_t cap,
                                 size_t *n_attrs)
{
    if (n_attrs)
        *n_attrs = 0;
    struct tstate *st = tls_state;
    if (!st || !FRAME(st, (int)st->depth - 1)->rec)
        return OTELPROF_E_NO_CONTEXT;
    const struct tc_record *rec = FRAME(st, (int)st->depth - 1)->rec;
    if (ctx) {
        memcpy(ctx->trace_id, rec->trace_id, 16);
        memcpy(ctx->span_id, rec->span_id, 8);
        ctx->trace_flags = rec->trace_flags;
    }
    size_t n = 0;
    const uint8_t *a = rec->attrs, *end = rec->attrs + rec->attrs_size;
    while (a < end) {
        if (attrs && n < cap)
            attrs[n] = (otelprof_attr){a[0], (const char *)a + 2, a[1]};
        n++;
        a += 2 + a[1];
    }
    if (n_attrs)
        *n_attrs = n;
    return OTELPROF_OK;
}

void op_thread_reset_publication(void)
{
    struct tstate *st = tls_state;
    if (st)
        publish(st, FRAME(st, (int)st->depth - 1));
}
