/* Propagation: W3C traceparent / tracestate / baggage parsing and formatting, the array
 * carrier, propagator selection, and extract/inject round trips. The tables assert exact
 * statuses and exact re-formatted output, so each row can fail on its own. */
#define _GNU_SOURCE
#include <otelprof/propagation.h>

#include "test.h"

#include <stdbool.h>

/* ---- helpers ---------------------------------------------------------------------- */

/* n copies of c, NUL-terminated, in a rotating static buffer (tests are single-threaded). */
static char *rep(char c, size_t n)
{
    static char bufs[4][9000];
    static int next;
    char *b = bufs[next++ & 3];
    if (n >= sizeof bufs[0])
        TEST_FAIL("rep(%zu) too long", n);
    memset(b, c, n);
    b[n] = '\0';
    return b;
}

/* Append printf output to a caller buffer. */
#define CAT(buf, ...) snprintf((buf) + strlen(buf), sizeof(buf) - strlen(buf), __VA_ARGS__)

static const char *ts_str(const otelprof_tracestate *ts)
{
    static char out[OTELPROF_TRACESTATE_MAX_LEN + 1];
    size_t n = 0;
    ASSERT_OK(otelprof_tracestate_format(ts, out, sizeof out, &n));
    ASSERT_EQ(n, strlen(out));
    return out;
}

static const char *bag_str(const otelprof_baggage *bag)
{
    static char out[OTELPROF_BAGGAGE_MAX_LEN + 1];
    size_t n = 0;
    ASSERT_OK(otelprof_baggage_format(bag, out, sizeof out, &n));
    ASSERT_EQ(n, strlen(out));
    return out;
}

/* Exact (pointer, length) string compare. */
#define ASSERT_SPAN_EQ(p, n, lit)                                                                  \
    do {                                                                                           \
        const char *p_ = (p);                                                                      \
        size_t n_ = (n), l_ = strlen(lit);                                                         \
        if (!p_ || n_ != l_ || memcmp(p_, (lit), l_) != 0)                                         \
            TEST_FAIL("ASSERT_SPAN_EQ(%s) failed: \"%.*s\" (%zu) vs \"%s\" (%zu)", #p,             \
                      p_ ? (int)n_ : 6, p_ ? p_ : "(null)", n_, (lit), l_);                        \
    } while (0)

/* ---- traceparent table -------------------------------------------------------------- */

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"

static const uint8_t tid_bytes[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                      0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t pid_bytes[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

typedef struct tp_row {
    const char *group;
    const char *in;
    otelprof_status want;
    int flags;   /* expected trace_flags on success */
    int sampled; /* expected is_sampled on success */
} tp_row;

static const tp_row tp_rows[] = {
    /* valid */
    {"valid", "00-" TID "-" PID "-01", OTELPROF_OK, 0x01, 1},
    {"valid", "00-" TID "-" PID "-00", OTELPROF_OK, 0x00, 0},
    {"valid", "00-" TID "-" PID "-03", OTELPROF_OK, 0x03, 1},
    /* uppercase hex anywhere */
    {"uppercase", "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01", OTELPROF_E_PARSE, 0, 0},
    {"uppercase", "00-" TID "-00F067AA0BA902B7-01", OTELPROF_E_PARSE, 0, 0},
    {"uppercase", "00-" TID "-" PID "-0A", OTELPROF_E_PARSE, 0, 0},
    {"uppercase", "0A-" TID "-" PID "-01", OTELPROF_E_PARSE, 0, 0},
    /* wrong lengths */
    {"length", "", OTELPROF_E_PARSE, 0, 0},
    {"length", "00-" TID "-" PID "-0", OTELPROF_E_PARSE, 0, 0},
    {"length", "00-" TID "-" PID "-001", OTELPROF_E_PARSE, 0, 0},
    {"length", "00-" TID "0-" PID "-01", OTELPROF_E_PARSE, 0, 0},
    {"length", "00-4bf92f3577b34da6a3ce929d0e0e473-" PID "-01", OTELPROF_E_PARSE, 0, 0},
    {"length", "00-" TID "-00f067aa0ba902b-01", OTELPROF_E_PARSE, 0, 0},
    {"length", "00-" TID "-" PID "0-01", OTELPROF_E_PARSE, 0, 0},
    {"length", "0-" TID "-" PID "-01", OTELPROF_E_PARSE, 0, 0},
    {"length", "000-" TID "-" PID "-01", OTELPROF_E_PARSE, 0, 0},
    /* bad separators */
    {"separator", "00_" TID "-" PID "-01", OTELPROF_E_PARSE, 0, 0},
    {"separator", "00-" TID "_" PID "-01", OTELPROF_E_PARSE, 0, 0},
    {"separator", "00-" TID "-" PID "_01", OTELPROF_E_PARSE, 0, 0},
    {"separator", "00 " TID " " PID " 01", OTELPROF_E_PARSE, 0, 0},
    {"separator", "00-" TID "-" PID "-01-", OTELPROF_E_PARSE, 0, 0},
    /* non-hex */
    {"nonhex", "00-4bf92f3577b34da6a3ce929d0e0e473g-" PID "-01", OTELPROF_E_PARSE, 0, 0},
    {"nonhex", "00-" TID "-00f067aa0ba902bz-01", OTELPROF_E_PARSE, 0, 0},
    {"nonhex", "00-" TID "-" PID "-0x", OTELPROF_E_PARSE, 0, 0},
    {"nonhex", "0g-" TID "-" PID "-01", OTELPROF_E_PARSE, 0, 0},
    {"nonhex", "00-" TID "-" PID "-+1", OTELPROF_E_PARSE, 0, 0},
    /* version ff is invalid, also with the future-version layout */
    {"version_ff", "ff-" TID "-" PID "-01", OTELPROF_E_PARSE, 0, 0},
    {"version_ff", "ff-" TID "-" PID "-01-what", OTELPROF_E_PARSE, 0, 0},
    /* all-zero ids */
    {"zero_ids", "00-00000000000000000000000000000000-" PID "-01", OTELPROF_E_INVALID_ID, 0, 0},
    {"zero_ids", "00-" TID "-0000000000000000-01", OTELPROF_E_INVALID_ID, 0, 0},
    {"zero_ids", "cc-00000000000000000000000000000000-" PID "-01", OTELPROF_E_INVALID_ID, 0, 0},
    /* version 00 with anything after the flags */
    {"v00_extra", "00-" TID "-" PID "-01-", OTELPROF_E_PARSE, 0, 0},
    {"v00_extra", "00-" TID "-" PID "-01-extra", OTELPROF_E_PARSE, 0, 0},
    {"v00_extra", "00-" TID "-" PID "-01x", OTELPROF_E_PARSE, 0, 0},
    /* future versions */
    {"future", "01-" TID "-" PID "-01", OTELPROF_OK, 0x01, 1},
    {"future", "cc-" TID "-" PID "-01", OTELPROF_OK, 0x01, 1},
    {"future", "cc-" TID "-" PID "-01-what-the-future-will-be-like", OTELPROF_OK, 0x01, 1},
    {"future", "cc-" TID "-" PID "-00-", OTELPROF_OK, 0x00, 0},
    {"future_bad_tail", "cc-" TID "-" PID "-01.what", OTELPROF_E_PARSE, 0, 0},
    {"future_bad_tail", "cc-" TID "-" PID "-01x", OTELPROF_E_PARSE, 0, 0},
    {"future_bad_tail", "cc-" TID "-" PID "-0", OTELPROF_E_PARSE, 0, 0},
    {"future_bad_tail", "cc-" TID "-" PID "-01 -x", OTELPROF_E_PARSE, 0, 0},
    /* OWS around the value */
    {"ows", " 00-" TID "-" PID "-01", OTELPROF_OK, 0x01, 1},
    {"ows", "00-" TID "-" PID "-01 ", OTELPROF_OK, 0x01, 1},
    {"ows", " \t 00-" TID "-" PID "-01\t\t ", OTELPROF_OK, 0x01, 1},
    {"ows", "\n00-" TID "-" PID "-01", OTELPROF_E_PARSE, 0, 0},
    {"ows", "00-" TID "-" PID "-01\r", OTELPROF_E_PARSE, 0, 0},
    {"ows", "   ", OTELPROF_E_PARSE, 0, 0},
    /* unknown flag bits are kept; sampled is read by mask */
    {"flags", "00-" TID "-" PID "-ff", OTELPROF_OK, 0xff, 1},
    {"flags", "00-" TID "-" PID "-fe", OTELPROF_OK, 0xfe, 0},
    {"flags", "00-" TID "-" PID "-08", OTELPROF_OK, 0x08, 0},
    {"flags", "00-" TID "-" PID "-09", OTELPROF_OK, 0x09, 1},
    {"flags", "00-" TID "-" PID "-02", OTELPROF_OK, 0x02, 0},
};

static void run_tp_group(const char *group)
{
    int rows = 0;
    for (size_t i = 0; i < sizeof tp_rows / sizeof tp_rows[0]; i++) {
        const tp_row *r = &tp_rows[i];
        if (strcmp(r->group, group) != 0)
            continue;
        rows++;
        otelprof_span_context ctx;
        memset(&ctx, 0xa5, sizeof ctx); /* garbage in: the parser must reset it */
        otelprof_status st = otelprof_traceparent_parse(r->in, strlen(r->in), &ctx);
        if (st != r->want)
            TEST_FAIL("traceparent \"%s\": got %s, want %s", r->in, otelprof_status_name(st),
                      otelprof_status_name(r->want));
        if (st == OTELPROF_OK) {
            ASSERT_TRUE(otelprof_span_context_is_valid(&ctx));
            ASSERT_MEM_EQ(ctx.trace_id, tid_bytes, 16);
            ASSERT_MEM_EQ(ctx.span_id, pid_bytes, 8);
            ASSERT_EQ(ctx.trace_flags, r->flags);
            ASSERT_EQ(otelprof_span_context_is_sampled(&ctx), r->sampled);
            ASSERT_EQ(ctx.is_remote, 1);
            ASSERT_EQ(otelprof_tracestate_count(&ctx.tracestate), 0);
            /* Re-formatting always gives version 00 with the flags byte unchanged. */
            char out[OTELPROF_TRACEPARENT_SIZE], want[64];
            snprintf(want, sizeof want, "00-" TID "-" PID "-%02x", (unsigned)r->flags);
            ASSERT_OK(otelprof_traceparent_format(&ctx, out));
            ASSERT_STR_EQ(out, want);
        } else {
            /* Failure leaves "no parent", never half a context. */
            static const otelprof_span_context zero;
            ASSERT_MEM_EQ(&ctx, &zero, sizeof ctx);
            ASSERT_TRUE(!otelprof_span_context_is_valid(&ctx));
        }
    }
    if (rows == 0)
        TEST_FAIL("no rows in group %s", group);
}

static void traceparent_valid(void)
{
    run_tp_group("valid");
}
static void traceparent_uppercase(void)
{
    run_tp_group("uppercase");
}
static void traceparent_length(void)
{
    run_tp_group("length");
}
static void traceparent_separator(void)
{
    run_tp_group("separator");
}
static void traceparent_nonhex(void)
{
    run_tp_group("nonhex");
}
static void traceparent_version_ff(void)
{
    run_tp_group("version_ff");
}
static void traceparent_zero_ids(void)
{
    run_tp_group("zero_ids");
}
static void traceparent_v00_extra(void)
{
    run_tp_group("v00_extra");
}
static void traceparent_future_version(void)
{
    run_tp_group("future");
}
static void traceparent_future_bad_tail(void)
{
    run_tp_group("future_bad_tail");
}
static void traceparent_ows(void)
{
    run_tp_group("ows");
}
static void traceparent_flags(void)
{
    run_tp_group("flags");
}

static void traceparent_api(void)
{
    otelprof_span_context ctx;
    /* NUL-terminated length, NULL input, NULL output. */
    ASSERT_OK(otelprof_traceparent_parse("00-" TID "-" PID "-01", OTELPROF_NUL_TERMINATED, &ctx));
    ASSERT_MEM_EQ(ctx.trace_id, tid_bytes, 16);
    ASSERT_STATUS(otelprof_traceparent_parse(NULL, 0, &ctx), OTELPROF_E_PARSE);
    ASSERT_STATUS(otelprof_traceparent_parse(NULL, 5, &ctx), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_traceparent_parse("00", 2, NULL), OTELPROF_E_INVAL);
    /* The length bounds the read: a valid prefix of a longer buffer. */
    const char *longer = "00-" TID "-" PID "-01junk";
    ASSERT_OK(otelprof_traceparent_parse(longer, OTELPROF_TRACEPARENT_LEN, &ctx));
    ASSERT_STATUS(otelprof_traceparent_parse(longer, OTELPROF_TRACEPARENT_LEN - 1, &ctx),
                  OTELPROF_E_PARSE);
    /* Format refuses invalid contexts and leaves "". */
    char out[OTELPROF_TRACEPARENT_SIZE];
    otelprof_span_context zero;
    memset(&zero, 0, sizeof zero);
    memset(out, 'x', sizeof out);
    ASSERT_STATUS(otelprof_traceparent_format(&zero, out), OTELPROF_E_INVALID_ID);
    ASSERT_STR_EQ(out, "");
    zero.trace_id[15] = 1; /* span id still zero */
    ASSERT_STATUS(otelprof_traceparent_format(&zero, out), OTELPROF_E_INVALID_ID);
    ASSERT_TRUE(!otelprof_span_context_is_valid(&zero));
    zero.span_id[0] = 0x80;
    ASSERT_OK(otelprof_traceparent_format(&zero, out));
    ASSERT_STR_EQ(out, "00-00000000000000000000000000000001-8000000000000000-00");
    ASSERT_EQ(strlen(out), OTELPROF_TRACEPARENT_LEN);
    ASSERT_TRUE(!otelprof_span_context_is_valid(NULL));
}

/* ---- tracestate table --------------------------------------------------------------- */

typedef struct ts_row {
    const char *group;
    const char *in;
    otelprof_status want;
    const char *out; /* formatted result on success */
} ts_row;

static const ts_row ts_rows[] = {
    {"keys", "a=1", OTELPROF_OK, "a=1"},
    {"keys", "0abc=1", OTELPROF_OK, "0abc=1"},
    {"keys", "a_b-c*d/e=1", OTELPROF_OK, "a_b-c*d/e=1"},
    {"keys", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", OTELPROF_OK,
     "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
    {"multi_tenant", "tenant@system=1", OTELPROF_OK, "tenant@system=1"},
    {"multi_tenant", "fw529a3039@dt=FW4;0;0", OTELPROF_OK, "fw529a3039@dt=FW4;0;0"},
    {"multi_tenant", "1tenant@sys-1_*/=x", OTELPROF_OK, "1tenant@sys-1_*/=x"},
    {"multi_tenant", "a@b@c=x", OTELPROF_OK, "a@b@c=x"}, /* current grammar: '@' is a keychar */
    {"bad_keys", "A=1", OTELPROF_E_PARSE, NULL},
    {"bad_keys", "aB=1", OTELPROF_E_PARSE, NULL},
    {"bad_keys", "_a=1", OTELPROF_E_PARSE, NULL},
    {"bad_keys", "@a=1", OTELPROF_E_PARSE, NULL},
    {"bad_keys", "-a=1", OTELPROF_E_PARSE, NULL},
    {"bad_keys", "a.b=1", OTELPROF_E_PARSE, NULL},
    {"bad_keys", "a b=1", OTELPROF_E_PARSE, NULL},
    {"bad_keys", "a =1", OTELPROF_E_PARSE, NULL},
    {"bad_keys", "=1", OTELPROF_E_PARSE, NULL},
    {"bad_keys", "novalue", OTELPROF_E_PARSE, NULL},
    {"bad_keys", "ok=1,B=2", OTELPROF_E_PARSE, NULL}, /* one bad member invalidates the header */
    {"values", "a= x", OTELPROF_OK, "a= x"},          /* leading space belongs to the value */
    {"values", "a=x y", OTELPROF_OK, "a=x y"},
    {"values", "a=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~", OTELPROF_OK,
     "a=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~"},
    {"bad_values", "a=", OTELPROF_E_PARSE, NULL},
    {"bad_values", "a=x=y", OTELPROF_E_PARSE, NULL},
    {"bad_values", "a=x\x7f", OTELPROF_E_PARSE, NULL},
    {"bad_values", "a=x\ty", OTELPROF_E_PARSE, NULL},
    {"bad_values", "a=\xc3\xa9", OTELPROF_E_PARSE, NULL},
    {"bad_values", "a=\x01", OTELPROF_E_PARSE, NULL},
    {"trailing_space", "a=1 ", OTELPROF_OK, "a=1"},
    {"trailing_space", "a=1 \t ,b=2\t", OTELPROF_OK, "a=1,b=2"},
    {"trailing_space", "a=x y  ", OTELPROF_OK, "a=x y"},
    {"empty_members", "a=1,,b=2", OTELPROF_OK, "a=1,b=2"},
    {"empty_members", ",a=1, ,\t,b=2,", OTELPROF_OK, "a=1,b=2"},
    {"empty_members", "", OTELPROF_OK, ""},
    {"empty_members", " , ,", OTELPROF_OK, ""},
    {"duplicates", "a=1,b=2,a=3", OTELPROF_OK, "a=1,b=2"},
    {"duplicates", "a=1,a=1,a=2", OTELPROF_OK, "a=1"},
};

static void run_ts_group(const char *group)
{
    int rows = 0;
    for (size_t i = 0; i < sizeof ts_rows / sizeof ts_rows[0]; i++) {
        const ts_row *r = &ts_rows[i];
        if (strcmp(r->group, group) != 0)
            continue;
        rows++;
        otelprof_tracestate ts;
        memset(&ts, 0, sizeof ts);
        ASSERT_OK(otelprof_tracestate_set(&ts, "old", 3, "state", 5)); /* must be replaced */
        otelprof_status st = otelprof_tracestate_parse(&ts, r->in, strlen(r->in));
        if (st != r->want)
            TEST_FAIL("tracestate \"%s\": got %s, want %s", r->in, otelprof_status_name(st),
                      otelprof_status_name(r->want));
        if (st == OTELPROF_OK)
            ASSERT_STR_EQ(ts_str(&ts), r->out);
        else
            ASSERT_EQ(otelprof_tracestate_count(&ts), 0); /* invalid: nothing propagated */
    }
    if (rows == 0)
        TEST_FAIL("no rows in group %s", group);
}

static void tracestate_keys(void)
{
    run_ts_group("keys");
}
static void tracestate_multi_tenant(void)
{
    run_ts_group("multi_tenant");
}
static void tracestate_bad_keys(void)
{
    run_ts_group("bad_keys");
}
static void tracestate_values(void)
{
    run_ts_group("values");
    otelprof_tracestate ts = {0};
    ASSERT_OK(otelprof_tracestate_parse(&ts, "a= x  ", OTELPROF_NUL_TERMINATED));
    size_t n = 0;
    const char *v = otelprof_tracestate_get(&ts, "a", 1, &n);
    ASSERT_SPAN_EQ(v, n, " x");
}
static void tracestate_bad_values(void)
{
    run_ts_group("bad_values");
}
static void tracestate_trailing_space(void)
{
    run_ts_group("trailing_space");
}
static void tracestate_empty_members(void)
{
    run_ts_group("empty_members");
}
static void tracestate_duplicates(void)
{
    run_ts_group("duplicates");
    otelprof_tracestate ts = {0};
    ASSERT_OK(otelprof_tracestate_parse(&ts, "a=1,b=2,a=3", OTELPROF_NUL_TERMINATED));
    size_t n = 0;
    ASSERT_SPAN_EQ(otelprof_tracestate_get(&ts, "a", 1, &n), n, "1");
    ASSERT_EQ(otelprof_tracestate_count(&ts), 2);
}

static void members(char *buf, size_t size, int n)
{
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%sk%d=v", i ? "," : "", i);
}

static void tracestate_member_limit(void)
{
    char buf[1024];
    otelprof_tracestate ts = {0};
    members(buf, sizeof buf, 32);
    ASSERT_OK(otelprof_tracestate_parse(&ts, buf, strlen(buf)));
    ASSERT_EQ(otelprof_tracestate_count(&ts), 32);
    ASSERT_STR_EQ(ts_str(&ts), buf);
    /* Empty members do not count. */
    char with_empty[1100];
    snprintf(with_empty, sizeof with_empty, ",,%s,, ,", buf);
    ASSERT_OK(otelprof_tracestate_parse(&ts, with_empty, strlen(with_empty)));
    ASSERT_EQ(otelprof_tracestate_count(&ts), 32);
    /* 33 members: the header is invalid and discarded. */
    members(buf, sizeof buf, 33);
    ASSERT_STATUS(otelprof_tracestate_parse(&ts, buf, strlen(buf)), OTELPROF_E_TOO_LARGE);
    ASSERT_EQ(otelprof_tracestate_count(&ts), 0);
    /* 33 with a duplicate still is 33 list-members as received. */
    members(buf, sizeof buf, 32);
    CAT(buf, ",k0=again");
    ASSERT_STATUS(otelprof_tracestate_parse(&ts, buf, strlen(buf)), OTELPROF_E_TOO_LARGE);
    ASSERT_EQ(otelprof_tracestate_count(&ts), 0);
}

static void tracestate_length_limits(void)
{
    char buf[700];
    otelprof_tracestate ts = {0};
    snprintf(buf, sizeof buf, "%s=v", rep('k', 256));
    ASSERT_OK(otelprof_tracestate_parse(&ts, buf, strlen(buf)));
    ASSERT_STR_EQ(ts_str(&ts), buf);
    snprintf(buf, sizeof buf, "%s=v", rep('k', 257));
    ASSERT_STATUS(otelprof_tracestate_parse(&ts, buf, strlen(buf)), OTELPROF_E_PARSE);
    ASSERT_EQ(otelprof_tracestate_count(&ts), 0);
    snprintf(buf, sizeof buf, "k=%s", rep('v', 256));
    ASSERT_OK(otelprof_tracestate_parse(&ts, buf, strlen(buf)));
    ASSERT_STR_EQ(ts_str(&ts), buf);
    snprintf(buf, sizeof buf, "k=%s", rep('v', 257));
    ASSERT_STATUS(otelprof_tracestate_parse(&ts, buf, strlen(buf)), OTELPROF_E_PARSE);
    /* Trailing OWS does not count toward the 256. */
    snprintf(buf, sizeof buf, "k=%s    ", rep('v', 256));
    ASSERT_OK(otelprof_tracestate_parse(&ts, buf, strlen(buf)));
    ASSERT_EQ(strlen(ts_str(&ts)), 258);
}

static void tracestate_multi_field(void)
{
    otelprof_tracestate ts = {0};
    const char *f1[] = {"a=1,b=2", "c=3"};
    ASSERT_OK(otelprof_tracestate_parse_fields(&ts, f1, NULL, 2));
    ASSERT_STR_EQ(ts_str(&ts), "a=1,b=2,c=3");
    /* Explicit lengths, an empty field, a duplicate across fields. */
    const char *f2[] = {"a=1xxx", "", " b=2 ", "a=9"};
    size_t l2[] = {3, 0, OTELPROF_NUL_TERMINATED, 3};
    ASSERT_OK(otelprof_tracestate_parse_fields(&ts, f2, l2, 4));
    ASSERT_STR_EQ(ts_str(&ts), "a=1,b=2");
    /* A bad member in any field invalidates the whole header. */
    const char *f3[] = {"a=1", "B=2"};
    ASSERT_STATUS(otelprof_tracestate_parse_fields(&ts, f3, NULL, 2), OTELPROF_E_PARSE);
    ASSERT_EQ(otelprof_tracestate_count(&ts), 0);
    /* The 32-member limit applies to the joined header. */
    char b1[600], b2[600];
    members(b1, sizeof b1, 20);
    b2[0] = '\0';
    for (int i = 20; i < 33; i++)
        CAT(b2, "%sk%d=v", i > 20 ? "," : "", i);
    const char *f4[] = {b1, b2};
    ASSERT_STATUS(otelprof_tracestate_parse_fields(&ts, f4, NULL, 2), OTELPROF_E_TOO_LARGE);
    ASSERT_EQ(otelprof_tracestate_count(&ts), 0);
    /* No field at all: empty and OK. */
    ASSERT_OK(otelprof_tracestate_parse_fields(&ts, NULL, NULL, 0));
    ASSERT_EQ(otelprof_tracestate_count(&ts), 0);
}

/* A member "<key>=<value of n-2-strlen(key) chars>" of exactly n characters. */
static void add_member(char *buf, size_t size, const char *key, size_t n)
{
    snprintf(buf + strlen(buf), size - strlen(buf), "%s%s=%s", buf[0] ? "," : "", key,
             rep('x', n - 1 - strlen(key)));
}

static void tracestate_truncation(void)
{
    char buf[2048], want[2048];
    otelprof_tracestate ts = {0};
    /* Right-most long (>128) member goes first; the other long one fits and stays. */
    buf[0] = '\0';
    add_member(buf, sizeof buf, "a", 122);
    add_member(buf, sizeof buf, "b", 140);
    add_member(buf, sizeof buf, "c", 122);
    add_member(buf, sizeof buf, "d", 250);
    add_member(buf, sizeof buf, "e", 122);
    ASSERT_EQ(strlen(buf), 760);
    ASSERT_OK(otelprof_tracestate_parse(&ts, buf, strlen(buf)));
    want[0] = '\0';
    add_member(want, sizeof want, "a", 122);
    add_member(want, sizeof want, "b", 140);
    add_member(want, sizeof want, "c", 122);
    add_member(want, sizeof want, "e", 122);
    ASSERT_EQ(strlen(want), 509);
    ASSERT_STR_EQ(ts_str(&ts), want);

    /* No long members: right-most members go. */
    buf[0] = '\0';
    for (char k = 'a'; k <= 'e'; k++)
        add_member(buf, sizeof buf, (char[]){k, 0}, 122);
    ASSERT_OK(otelprof_tracestate_parse(&ts, buf, strlen(buf)));
    want[0] = '\0';
    for (char k = 'a'; k <= 'd'; k++)
        add_member(want, sizeof want, (char[]){k, 0}, 122);
    ASSERT_STR_EQ(ts_str(&ts), want);

    /* Long members first (both), then from the right. */
    buf[0] = '\0';
    add_member(buf, sizeof buf, "l", 200);
    for (char k = 'a'; k <= 'e'; k++)
        add_member(buf, sizeof buf, (char[]){k, 0}, 122);
    add_member(buf, sizeof buf, "m", 129);
    ASSERT_OK(otelprof_tracestate_parse(&ts, buf, strlen(buf)));
    ASSERT_STR_EQ(ts_str(&ts), want);

    /* Exactly 512 stays whole. */
    buf[0] = '\0';
    add_member(buf, sizeof buf, "a", 255);
    add_member(buf, sizeof buf, "b", 256);
    ASSERT_EQ(strlen(buf), 512);
    ASSERT_OK(otelprof_tracestate_parse(&ts, buf, strlen(buf)));
    ASSERT_STR_EQ(ts_str(&ts), buf);
    /* A single maximal member (513 characters) cannot be kept at all. */
    snprintf(buf, sizeof buf, "%s=%s", rep('k', 256), rep('v', 256));
    ASSERT_OK(otelprof_tracestate_parse(&ts, buf, strlen(buf)));
    ASSERT_EQ(otelprof_tracestate_count(&ts), 0);
}

static void tracestate_set_get_remove(void)
{
    otelprof_tracestate ts = {0};
    ASSERT_OK(otelprof_tracestate_parse(&ts, "a=1,b=2,c=3", OTELPROF_NUL_TERMINATED));
    /* Updating an entry moves it to the front. */
    ASSERT_OK(otelprof_tracestate_set(&ts, "c", 1, "new", 3));
    ASSERT_STR_EQ(ts_str(&ts), "c=new,a=1,b=2");
    /* A new entry goes to the front too. */
    ASSERT_OK(otelprof_tracestate_set(&ts, "vendor@sys", OTELPROF_NUL_TERMINATED, "v",
                                      OTELPROF_NUL_TERMINATED));
    ASSERT_STR_EQ(ts_str(&ts), "vendor@sys=v,c=new,a=1,b=2");
    size_t n = 0;
    ASSERT_SPAN_EQ(otelprof_tracestate_get(&ts, "a", 1, &n), n, "1");
    ASSERT_NULL(otelprof_tracestate_get(&ts, "z", 1, &n));
    ASSERT_NULL(otelprof_tracestate_get(&ts, "vendor", OTELPROF_NUL_TERMINATED, NULL));
    /* Iteration in header order. */
    const char *k, *v;
    size_t kl, vl;
    ASSERT_EQ(otelprof_tracestate_count(&ts), 4);
    ASSERT_OK(otelprof_tracestate_at(&ts, 1, &k, &kl, &v, &vl));
    ASSERT_SPAN_EQ(k, kl, "c");
    ASSERT_SPAN_EQ(v, vl, "new");
    ASSERT_STATUS(otelprof_tracestate_at(&ts, 4, &k, &kl, &v, &vl), OTELPROF_E_INVAL);
    /* Remove, including an absent key. */
    ASSERT_OK(otelprof_tracestate_remove(&ts, "c", 1));
    ASSERT_OK(otelprof_tracestate_remove(&ts, "zz", 2));
    ASSERT_STR_EQ(ts_str(&ts), "vendor@sys=v,a=1,b=2");
    /* Setting from a value that lives inside ts itself. */
    v = otelprof_tracestate_get(&ts, "b", 1, &vl);
    ASSERT_OK(otelprof_tracestate_set(&ts, "a", 1, v, vl));
    ASSERT_STR_EQ(ts_str(&ts), "a=2,vendor@sys=v,b=2");
    otelprof_tracestate_clear(&ts);
    ASSERT_EQ(otelprof_tracestate_count(&ts), 0);
    ASSERT_STR_EQ(ts_str(&ts), "");
}

static void tracestate_set_limits(void)
{
    otelprof_tracestate ts = {0};
    char buf[1024];
    /* Bad key / value: unchanged. */
    ASSERT_OK(otelprof_tracestate_set(&ts, "a", 1, "1", 1));
    ASSERT_STATUS(otelprof_tracestate_set(&ts, "A", 1, "1", 1), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_tracestate_set(&ts, "b", 1, "", 0), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_tracestate_set(&ts, "b", 1, "x ", 2), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_tracestate_set(&ts, "b", 1, "x,y", 3), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_tracestate_set(&ts, "b", 1, "x=y", 3), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_tracestate_set(&ts, rep('k', 257), 257, "1", 1), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_tracestate_set(&ts, "b", 1, rep('v', 257), 257), OTELPROF_E_INVAL);
    /* 256+1+256 = 513 > 512: cannot fit even alone. */
    ASSERT_STATUS(otelprof_tracestate_set(&ts, rep('k', 256), 256, rep('v', 256), 256),
                  OTELPROF_E_TOO_LARGE);
    ASSERT_STR_EQ(ts_str(&ts), "a=1");
    /* A 33rd member pushes out the right-most. */
    members(buf, sizeof buf, 32);
    ASSERT_OK(otelprof_tracestate_parse(&ts, buf, strlen(buf)));
    ASSERT_OK(otelprof_tracestate_set(&ts, "new", 3, "1", 1));
    ASSERT_EQ(otelprof_tracestate_count(&ts), 32);
    ASSERT_NULL(otelprof_tracestate_get(&ts, "k31", 3, NULL));
    ASSERT_TRUE(otelprof_tracestate_get(&ts, "k30", 3, NULL) != NULL);
    ASSERT_OK(otelprof_tracestate_at(&ts, 0, &(const char *){0}, NULL, NULL, NULL));
    /* Updating one of 32 drops nothing. */
    ASSERT_OK(otelprof_tracestate_set(&ts, "k5", 2, "2", 1));
    ASSERT_EQ(otelprof_tracestate_count(&ts), 32);
    ASSERT_TRUE(otelprof_tracestate_get(&ts, "k30", 3, NULL) != NULL);
    /* Growing past 512 truncates the others (long ones first), never the new one. */
    buf[0] = '\0';
    add_member(buf, sizeof buf, "a", 200);
    add_member(buf, sizeof buf, "b", 100);
    add_member(buf, sizeof buf, "c", 100);
    ASSERT_OK(otelprof_tracestate_parse(&ts, buf, strlen(buf)));
    ASSERT_OK(otelprof_tracestate_set(&ts, "n", 1, rep('y', 250), 250));
    char want[1024];
    snprintf(want, sizeof want, "n=%s,", rep('y', 250));
    size_t wl = strlen(want);
    want[wl] = '\0';
    add_member(want + wl, sizeof want - wl, "b", 100);
    CAT(want, ",");
    wl = strlen(want);
    add_member(want + wl, sizeof want - wl, "c", 100);
    ASSERT_STR_EQ(ts_str(&ts), want);
}

static void tracestate_format_buffer(void)
{
    otelprof_tracestate ts = {0};
    ASSERT_OK(otelprof_tracestate_parse(&ts, "ab=1,c=2", OTELPROF_NUL_TERMINATED));
    char out[8];
    size_t n = 0;
    memset(out, 'x', sizeof out);
    ASSERT_STATUS(otelprof_tracestate_format(&ts, out, 8, &n), OTELPROF_E_BUF_TOO_SMALL);
    ASSERT_EQ(n, 8);
    ASSERT_STR_EQ(out, "");
    char out9[9];
    ASSERT_OK(otelprof_tracestate_format(&ts, out9, 9, &n));
    ASSERT_STR_EQ(out9, "ab=1,c=2");
    ASSERT_STATUS(otelprof_tracestate_format(&ts, NULL, 0, &n), OTELPROF_E_BUF_TOO_SMALL);
    ASSERT_EQ(n, 8);
    ASSERT_STATUS(otelprof_tracestate_parse(NULL, "a=1", 3), OTELPROF_E_INVAL);
}

/* ---- baggage ------------------------------------------------------------------------ */

static void expect_bag(const otelprof_baggage *bag, const char *key, const char *value)
{
    size_t n = 0;
    const char *v = otelprof_baggage_get(bag, key, OTELPROF_NUL_TERMINATED, &n);
    if (!value) {
        ASSERT_NULL(v);
        return;
    }
    ASSERT_SPAN_EQ(v, n, value);
}

static void expect_meta(const otelprof_baggage *bag, size_t i, const char *key, const char *meta)
{
    const char *k, *m;
    size_t kl, ml;
    ASSERT_OK(otelprof_baggage_at(bag, i, &k, &kl, NULL, NULL, &m, &ml));
    ASSERT_SPAN_EQ(k, kl, key);
    ASSERT_SPAN_EQ(m, ml, meta);
}

static void baggage_basic(void)
{
    otelprof_baggage bag = {0};
    ASSERT_OK(otelprof_baggage_parse(&bag, "userId=alice,serverNode=DF%2028,isProduction=false",
                                     OTELPROF_NUL_TERMINATED));
    ASSERT_EQ(otelprof_baggage_count(&bag), 3);
    expect_bag(&bag, "userId", "alice");
    expect_bag(&bag, "serverNode", "DF 28");
    expect_bag(&bag, "isProduction", "false");
    expect_bag(&bag, "userid", NULL); /* keys are case-sensitive */
    ASSERT_STR_EQ(bag_str(&bag), "userId=alice,serverNode=DF%2028,isProduction=false");
    /* OWS everywhere the grammar allows it; '=' inside a value is fine. */
    otelprof_baggage_clear(&bag);
    ASSERT_OK(otelprof_baggage_parse(&bag, " k1 \t=\t v=1 , k2= ,k3=x ", OTELPROF_NUL_TERMINATED));
    expect_bag(&bag, "k1", "v=1");
    expect_bag(&bag, "k2", "");
    expect_bag(&bag, "k3", "x");
    ASSERT_STR_EQ(bag_str(&bag), "k1=v=1,k2=,k3=x");
    /* Parsing adds to what is there (several header fields). */
    ASSERT_OK(otelprof_baggage_parse(&bag, "k4=4", 4));
    ASSERT_EQ(otelprof_baggage_count(&bag), 4);
    /* Empty members are tolerated. */
    otelprof_baggage_clear(&bag);
    ASSERT_OK(otelprof_baggage_parse(&bag, ",a=1,, ,b=2,", OTELPROF_NUL_TERMINATED));
    ASSERT_STR_EQ(bag_str(&bag), "a=1,b=2");
    ASSERT_OK(otelprof_baggage_parse(&bag, NULL, 0));
    ASSERT_STATUS(otelprof_baggage_parse(NULL, "a=1", 3), OTELPROF_E_INVAL);
}

static void baggage_percent_roundtrip(void)
{
    otelprof_baggage bag = {0}, back = {0};
    /* Every character the spec excludes from baggage-octet, '%' itself and UTF-8. */
    const char *raw = "a b,c;d\"e\\f%g=h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\t\x7f~";
    ASSERT_OK(otelprof_baggage_set(&bag, "k", 1, raw, OTELPROF_NUL_TERMINATED, NULL, 0));
    const char *enc = "k=a%20b%2Cc%3Bd%22e%5Cf%25g=h%C3%A9%E2%82%AC%F0%9F%98%80%09%7F~";
    ASSERT_STR_EQ(bag_str(&bag), enc);
    ASSERT_OK(otelprof_baggage_parse(&back, enc, strlen(enc)));
    expect_bag(&back, "k", raw);
    ASSERT_STR_EQ(bag_str(&back), enc);
    /* Lowercase hex decodes too; unreserved octets written encoded come back literal. */
    otelprof_baggage_clear(&back);
    ASSERT_OK(otelprof_baggage_parse(&back, "k=%c3%a9%41%2c", OTELPROF_NUL_TERMINATED));
    expect_bag(&back, "k",
               "\xc3\xa9"
               "A,");
    ASSERT_STR_EQ(bag_str(&back), "k=%C3%A9A%2C");
}

static void baggage_utf8_replacement(void)
{
    static const struct {
        const char *in, *want;
    } rows[] = {
        {"k=%FF", "\xef\xbf\xbd"},
        {"k=%C3", "\xef\xbf\xbd"},
        {"k=%C3x", "\xef\xbf\xbdx"},
        {"k=%E2%82", "\xef\xbf\xbd"}, /* one maximal subpart, one U+FFFD */
        {"k=%E2%82x", "\xef\xbf\xbdx"},
        {"k=%ED%A0%80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"k=%C0%80", "\xef\xbf\xbd\xef\xbf\xbd"},                /* overlong NUL */
        {"k=%F4%90%80%80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"k=a%80b", "a\xef\xbf\xbd"
                    "b"},
        {"k=%F0%9F%98%80", "\xf0\x9f\x98\x80"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        otelprof_baggage bag = {0};
        ASSERT_OK(otelprof_baggage_parse(&bag, rows[i].in, OTELPROF_NUL_TERMINATED));
        expect_bag(&bag, "k", rows[i].want);
    }
    /* set refuses what parse repairs. */
    otelprof_baggage bag = {0};
    ASSERT_STATUS(otelprof_baggage_set(&bag, "k", 1, "\xff", 1, NULL, 0), OTELPROF_E_UTF8);
    ASSERT_STATUS(otelprof_baggage_set(&bag, "k", 1, "\xed\xa0\x80", 3, NULL, 0), OTELPROF_E_UTF8);
    ASSERT_EQ(otelprof_baggage_count(&bag), 0);
}

static void baggage_properties(void)
{
    otelprof_baggage bag = {0};
    ASSERT_OK(otelprof_baggage_parse(&bag,
                                     "k1=v1;p1;p2=x, k2 = v2 ; ttl = 30 ;  private ,k3=v3;;a=%20",
                                     OTELPROF_NUL_TERMINATED));
    ASSERT_EQ(otelprof_baggage_count(&bag), 3);
    expect_bag(&bag, "k1", "v1");
    expect_bag(&bag, "k2", "v2");
    expect_meta(&bag, 0, "k1", "p1;p2=x");
    expect_meta(&bag, 1, "k2", "ttl=30;private");
    expect_meta(&bag, 2, "k3", "a=%20"); /* properties stay opaque: not decoded */
    ASSERT_STR_EQ(bag_str(&bag), "k1=v1;p1;p2=x,k2=v2;ttl=30;private,k3=v3;a=%20");
    /* set with metadata, and its validation. */
    ASSERT_OK(otelprof_baggage_set(&bag, "k4", 2, "v", 1, " m1 ; m2=y ", OTELPROF_NUL_TERMINATED));
    expect_meta(&bag, 3, "k4", "m1;m2=y");
    ASSERT_STATUS(otelprof_baggage_set(&bag, "k5", 2, "v", 1, "bad key", OTELPROF_NUL_TERMINATED),
                  OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_baggage_set(&bag, "k5", 2, "v", 1, "a=b,c", OTELPROF_NUL_TERMINATED),
                  OTELPROF_E_INVAL);
    ASSERT_EQ(otelprof_baggage_count(&bag), 4);
}

static void baggage_malformed_members(void)
{
    static const struct {
        const char *in;
        const char *kept;
    } rows[] = {
        {"a=1,novalue,b=2", "a=1,b=2"},
        {"a=1,=2,b=2", "a=1,b=2"},
        {"a=1,k=v v,b=2", "a=1,b=2"}, /* space inside a value */
        {"a=1,k=%zz,b=2", "a=1,b=2"}, /* bad percent escape */
        {"a=1,k=%4,b=2", "a=1,b=2"},  /* truncated escape */
        {"a=1,k=x%,b=2", "a=1,b=2"},
        {"a=1,(k)=v,b=2", "a=1,b=2"}, /* key not a token */
        {"a=1,k y=v,b=2", "a=1,b=2"},
        {"a=1,k=\"q\",b=2", "a=1,b=2"},
        {"a=1,k=x\\y,b=2", "a=1,b=2"},
        {"a=1,k=\xc3\xa9,b=2", "a=1,b=2"}, /* raw non-ASCII must be encoded */
        {"a=1,k=v;=x,b=2", "a=1,b=2"},     /* property without key */
        {"a=1,k=v;p q,b=2", "a=1,b=2"},
        {"a=1,k;p=v,b=2", "a=1,b=2"}, /* ';' before '=' */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        otelprof_baggage bag = {0};
        otelprof_status st = otelprof_baggage_parse(&bag, rows[i].in, OTELPROF_NUL_TERMINATED);
        if (st != OTELPROF_E_PARSE)
            TEST_FAIL("baggage \"%s\": got %s", rows[i].in, otelprof_status_name(st));
        ASSERT_STR_EQ(bag_str(&bag), rows[i].kept);
    }
}

static void baggage_duplicates(void)
{
    otelprof_baggage bag = {0};
    ASSERT_OK(otelprof_baggage_parse(&bag, "k=1,j=2,k=3;p", OTELPROF_NUL_TERMINATED));
    ASSERT_EQ(otelprof_baggage_count(&bag), 2);
    expect_bag(&bag, "k", "3");
    ASSERT_STR_EQ(bag_str(&bag), "j=2,k=3;p");
}

static void baggage_limits(void)
{
    static char buf[OTELPROF_BAGGAGE_MAX_LEN * 2];
    otelprof_baggage bag = {0};
    /* 64 members fit, the 65th is dropped whole. */
    buf[0] = '\0';
    for (int i = 0; i < 65; i++)
        CAT(buf, "%sk%d=%d", i ? "," : "", i, i);
    ASSERT_STATUS(otelprof_baggage_parse(&bag, buf, strlen(buf)), OTELPROF_E_TOO_LARGE);
    ASSERT_EQ(otelprof_baggage_count(&bag), 64);
    expect_bag(&bag, "k63", "63");
    expect_bag(&bag, "k64", NULL);
    /* Replacing an entry in a full baggage still works. */
    ASSERT_OK(otelprof_baggage_set(&bag, "k0", 2, "z", 1, NULL, 0));
    ASSERT_STATUS(otelprof_baggage_set(&bag, "new", 3, "z", 1, NULL, 0), OTELPROF_E_TOO_LARGE);
    ASSERT_EQ(otelprof_baggage_count(&bag), 64);

    /* 8192 bytes exactly fit; one more does not (the member is dropped, not cut). */
    otelprof_baggage_clear(&bag);
    snprintf(buf, sizeof buf, "k=%s", rep('x', OTELPROF_BAGGAGE_MAX_LEN - 2));
    ASSERT_OK(otelprof_baggage_parse(&bag, buf, strlen(buf)));
    ASSERT_EQ(strlen(bag_str(&bag)), OTELPROF_BAGGAGE_MAX_LEN);
    otelprof_baggage_clear(&bag);
    snprintf(buf, sizeof buf, "a=1,k=%s,b=2", rep('x', OTELPROF_BAGGAGE_MAX_LEN - 2));
    ASSERT_STATUS(otelprof_baggage_parse(&bag, buf, strlen(buf)), OTELPROF_E_TOO_LARGE);
    ASSERT_STR_EQ(bag_str(&bag), "a=1,b=2");

    /* The limit counts encoded bytes: 2730 spaces -> 8190 + "k=" = 8192. */
    otelprof_baggage_clear(&bag);
    ASSERT_OK(otelprof_baggage_set(&bag, "k", 1, rep(' ', 2730), 2730, NULL, 0));
    ASSERT_EQ(strlen(bag_str(&bag)), OTELPROF_BAGGAGE_MAX_LEN);
    ASSERT_STATUS(otelprof_baggage_set(&bag, "j", 1, "", 0, NULL, 0), OTELPROF_E_TOO_LARGE);
    otelprof_baggage_clear(&bag);
    ASSERT_STATUS(otelprof_baggage_set(&bag, "k", 1, rep(' ', 2731), 2731, NULL, 0),
                  OTELPROF_E_TOO_LARGE);
    ASSERT_EQ(otelprof_baggage_count(&bag), 0);
    /* Decoding U+FFFD grows the re-encoded form: "%FF" (3) is re-sent as 9 bytes. */
    buf[0] = '\0';
    CAT(buf, "k=");
    for (int i = 0; i < 1000; i++)
        CAT(buf, "%%FF");
    ASSERT_STATUS(otelprof_baggage_parse(&bag, buf, strlen(buf)), OTELPROF_E_TOO_LARGE);
    ASSERT_EQ(otelprof_baggage_count(&bag), 0);
}

static void baggage_set_get_remove(void)
{
    otelprof_baggage bag = {0};
    ASSERT_OK(otelprof_baggage_set(&bag, "a", 1, "1", 1, NULL, 0));
    ASSERT_OK(otelprof_baggage_set(&bag, "b", OTELPROF_NUL_TERMINATED, "two words",
                                   OTELPROF_NUL_TERMINATED, "p", 1));
    ASSERT_OK(otelprof_baggage_set(&bag, "c", 1, "3", 1, "", 0));
    ASSERT_STR_EQ(bag_str(&bag), "a=1,b=two%20words;p,c=3");
    /* Replacing moves to the end. */
    ASSERT_OK(otelprof_baggage_set(&bag, "a", 1, "one", 3, NULL, 0));
    ASSERT_STR_EQ(bag_str(&bag), "b=two%20words;p,c=3,a=one");
    ASSERT_OK(otelprof_baggage_remove(&bag, "c", 1));
    ASSERT_OK(otelprof_baggage_remove(&bag, "nope", 4));
    ASSERT_STR_EQ(bag_str(&bag), "b=two%20words;p,a=one");
    expect_bag(&bag, "b", "two words");
    expect_bag(&bag, "c", NULL);
    /* Iterate. */
    const char *k, *v, *m;
    size_t kl, vl, ml;
    ASSERT_EQ(otelprof_baggage_count(&bag), 2);
    ASSERT_OK(otelprof_baggage_at(&bag, 1, &k, &kl, &v, &vl, &m, &ml));
    ASSERT_SPAN_EQ(k, kl, "a");
    ASSERT_SPAN_EQ(v, vl, "one");
    ASSERT_EQ(ml, 0);
    ASSERT_STATUS(otelprof_baggage_at(&bag, 2, &k, &kl, &v, &vl, &m, &ml), OTELPROF_E_INVAL);
    /* Errors leave bag unchanged. */
    ASSERT_STATUS(otelprof_baggage_set(&bag, "", 0, "v", 1, NULL, 0), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_baggage_set(&bag, "a b", 3, "v", 1, NULL, 0), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_baggage_set(&bag, "a,b", 3, "v", 1, NULL, 0), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_baggage_set(&bag, "k", 1, NULL, 0, NULL, 0), OTELPROF_E_INVAL);
    /* Inputs that point into bag itself are refused. */
    v = otelprof_baggage_get(&bag, "b", 1, &vl);
    ASSERT_STATUS(otelprof_baggage_set(&bag, "z", 1, v, vl, NULL, 0), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_baggage_parse(&bag, v, vl), OTELPROF_E_INVAL);
    ASSERT_STR_EQ(bag_str(&bag), "b=two%20words;p,a=one");
    /* Remove the first entry: the others' storage moves and must stay intact. */
    ASSERT_OK(otelprof_baggage_remove(&bag, "b", 1));
    expect_bag(&bag, "a", "one");
    ASSERT_STR_EQ(bag_str(&bag), "a=one");
}

static void baggage_format_buffer(void)
{
    otelprof_baggage bag = {0};
    ASSERT_OK(otelprof_baggage_set(&bag, "k", 1, " ", 1, NULL, 0));
    char out[6];
    size_t n = 0;
    ASSERT_STATUS(otelprof_baggage_format(&bag, out, 5, &n), OTELPROF_E_BUF_TOO_SMALL);
    ASSERT_EQ(n, 5);
    ASSERT_STR_EQ(out, "");
    ASSERT_OK(otelprof_baggage_format(&bag, out, 6, &n));
    ASSERT_STR_EQ(out, "k=%20");
    otelprof_baggage_clear(&bag);
    ASSERT_OK(otelprof_baggage_format(&bag, out, 1, &n));
    ASSERT_EQ(n, 0);
    ASSERT_STR_EQ(out, "");
}

/* ---- carrier ------------------------------------------------------------------------ */

static int visit_concat(void *arg, const char *name, size_t nl, const char *value, size_t vl)
{
    char *out = arg;
    size_t l = strlen(out);
    snprintf(out + l, 256 - l, "%.*s:%.*s;", (int)nl, name, (int)vl, value);
    return strcmp(name, "stop") == 0;
}

static void carrier_array(void)
{
    otelprof_header h[4] = {{"Content-Type", "text/plain"}, {"X-A", "1"}, {"x-a", "2"}};
    char buf[64];
    otelprof_header_array arr;
    otelprof_header_array_init(&arr, h, 3, 4, buf, sizeof buf);
    otelprof_carrier c = otelprof_header_array_carrier(&arr);
    ASSERT_EQ(c.sz, sizeof(otelprof_carrier));
    ASSERT_EQ(c.count(c.user, "x-A", 3), 2);
    ASSERT_EQ(c.count(c.user, "content-type", OTELPROF_NUL_TERMINATED), 1);
    ASSERT_EQ(c.count(c.user, "x", 1), 0);
    size_t n = 0;
    ASSERT_SPAN_EQ(c.get(c.user, "X-a", 3, 1, &n), n, "2");
    ASSERT_NULL(c.get(c.user, "X-a", 3, 2, &n));
    /* set replaces every value of the name, keeping the first one's place. */
    ASSERT_OK(c.set(c.user, "x-a", 3, "new", 3));
    ASSERT_EQ(arr.count, 2);
    ASSERT_STR_EQ(h[1].name, "x-a");
    ASSERT_STR_EQ(h[1].value, "new");
    ASSERT_OK(c.set(c.user, "b", 1, "v", 1));
    ASSERT_OK(c.set(c.user, "c", 1, "v", 1));
    ASSERT_EQ(arr.count, 4);
    ASSERT_STATUS(c.set(c.user, "d", 1, "v", 1), OTELPROF_E_TOO_LARGE);
    ASSERT_STATUS(c.set(c.user, "b", 1, rep('v', 60), 60), OTELPROF_E_BUF_TOO_SMALL);
    ASSERT_STATUS(c.set(c.user, "b", 1, "a\0b", 3), OTELPROF_E_INVAL);
    ASSERT_STR_EQ(h[2].value, "v"); /* unchanged after the failures */
    char seen[256] = "";
    ASSERT_OK(c.for_each(c.user, visit_concat, seen));
    ASSERT_STR_EQ(seen, "Content-Type:text/plain;x-a:new;b:v;c:v;");
    /* Visiting stops when the callback says so. */
    otelprof_header h2[3] = {{"a", "1"}, {"stop", "2"}, {"b", "3"}};
    otelprof_header_array arr2;
    otelprof_header_array_init(&arr2, h2, 3, 3, NULL, 0);
    otelprof_carrier c2 = otelprof_header_array_carrier(&arr2);
    seen[0] = '\0';
    ASSERT_OK(c2.for_each(c2.user, visit_concat, seen));
    ASSERT_STR_EQ(seen, "a:1;stop:2;");
    /* Read-only (no buffer): set fails cleanly. */
    ASSERT_STATUS(c2.set(c2.user, "a", 1, "x", 1), OTELPROF_E_BUF_TOO_SMALL);
    ASSERT_STR_EQ(h2[0].value, "1");
}

/* ---- propagators -------------------------------------------------------------------- */

static char log_seen[2048];
static int log_count;

static void capture_log(otelprof_log_level level, const char *msg, void *arg)
{
    (void)arg;
    log_count++;
    CAT(log_seen, "[%d] %s\n", (int)level, msg);
}

static uint32_t mask_of(const char *list)
{
    otelprof_propagators p = {0xdead};
    ASSERT_OK(otelprof_propagators_parse(&p, list, OTELPROF_NUL_TERMINATED));
    return p.mask;
}

static void propagators_parse(void)
{
    const uint32_t TC = OTELPROF_PROPAGATOR_TRACECONTEXT, BG = OTELPROF_PROPAGATOR_BAGGAGE;
    otelprof_set_log(capture_log, NULL, NULL, NULL);
    ASSERT_EQ(mask_of(""), TC | BG);
    ASSERT_EQ(mask_of(NULL), TC | BG);
    ASSERT_EQ(mask_of(" , "), TC | BG);
    ASSERT_EQ(mask_of("tracecontext"), TC);
    ASSERT_EQ(mask_of("baggage"), BG);
    ASSERT_EQ(mask_of(" Baggage ,\tTRACECONTEXT "), TC | BG);
    ASSERT_EQ(mask_of("none"), 0);
    ASSERT_EQ(log_count, 0);
    ASSERT_EQ(mask_of("tracecontext,b3,foo"), TC);
    ASSERT_EQ(log_count, 2);
    ASSERT_TRUE(strstr(log_seen, "[1] OTEL_PROPAGATORS: unsupported propagator \"b3\" ignored"));
    ASSERT_TRUE(strstr(log_seen, "[1] OTEL_PROPAGATORS: unknown propagator \"foo\" ignored"));
    ASSERT_EQ(mask_of("foo"), 0); /* only unknown names: nothing selected */
    ASSERT_EQ(mask_of("none,tracecontext"), 0);
    ASSERT_TRUE(strstr(log_seen, "\"none\" given with other propagators"));
    ASSERT_STATUS(otelprof_propagators_parse(NULL, "x", 1), OTELPROF_E_INVAL);
    otelprof_set_log(NULL, NULL, NULL, NULL);
}

static void propagators_env(void)
{
    otelprof_propagators p;
    unsetenv("OTEL_PROPAGATORS");
    ASSERT_OK(otelprof_propagators_from_env(&p));
    ASSERT_EQ(p.mask, OTELPROF_PROPAGATOR_TRACECONTEXT | OTELPROF_PROPAGATOR_BAGGAGE);
    setenv("OTEL_PROPAGATORS", "baggage", 1);
    ASSERT_OK(otelprof_propagators_from_env(&p));
    ASSERT_EQ(p.mask, OTELPROF_PROPAGATOR_BAGGAGE);
    setenv("OTEL_PROPAGATORS", "none", 1);
    ASSERT_OK(otelprof_propagators_from_env(&p));
    ASSERT_EQ(p.mask, 0);
    setenv("OTEL_PROPAGATORS", "", 1);
    ASSERT_OK(otelprof_propagators_from_env(&p));
    ASSERT_EQ(p.mask, OTELPROF_PROPAGATOR_TRACECONTEXT | OTELPROF_PROPAGATOR_BAGGAGE);
}

/* ---- extract / inject --------------------------------------------------------------- */

static const otelprof_propagators ALL = {OTELPROF_PROPAGATOR_TRACECONTEXT |
                                         OTELPROF_PROPAGATOR_BAGGAGE};

static otelprof_span_context sample_ctx(void)
{
    otelprof_span_context ctx;
    memset(&ctx, 0, sizeof ctx);
    memcpy(ctx.trace_id, tid_bytes, 16);
    memcpy(ctx.span_id, pid_bytes, 8);
    ctx.trace_flags = 0x81; /* an unknown bit travels with sampled */
    ASSERT_OK(
        otelprof_tracestate_parse(&ctx.tracestate, "me=1,you@them=2", OTELPROF_NUL_TERMINATED));
    return ctx;
}

static void propagation_roundtrip(void)
{
    otelprof_span_context ctx = sample_ctx(), got;
    otelprof_baggage bag = {0}, got_bag;
    ASSERT_OK(otelprof_baggage_set(&bag, "user", 4, "a b", 3, "p", 1));
    otelprof_header h[8];
    char buf[1024];
    otelprof_header_array arr;
    otelprof_header_array_init(&arr, h, 0, 8, buf, sizeof buf);
    otelprof_carrier c = otelprof_header_array_carrier(&arr);
    ASSERT_OK(otelprof_propagation_inject(&ALL, &ctx, &bag, &c));
    ASSERT_EQ(arr.count, 3);
    ASSERT_STR_EQ(h[0].name, "traceparent");
    ASSERT_STR_EQ(h[0].value, "00-" TID "-" PID "-81");
    ASSERT_STR_EQ(h[1].name, "tracestate");
    ASSERT_STR_EQ(h[1].value, "me=1,you@them=2");
    ASSERT_STR_EQ(h[2].name, "baggage");
    ASSERT_STR_EQ(h[2].value, "user=a%20b;p");
    /* Injecting again replaces rather than duplicates. */
    ASSERT_OK(otelprof_propagation_inject(&ALL, &ctx, &bag, &c));
    ASSERT_EQ(arr.count, 3);

    memset(&got, 0xee, sizeof got);
    ASSERT_OK(otelprof_propagation_extract(&ALL, &c, &got, &got_bag));
    ASSERT_TRUE(otelprof_span_context_is_valid(&got));
    ASSERT_TRUE(got.is_remote);
    ASSERT_MEM_EQ(got.trace_id, ctx.trace_id, 16);
    ASSERT_MEM_EQ(got.span_id, ctx.span_id, 8);
    ASSERT_EQ(got.trace_flags, 0x81);
    ASSERT_TRUE(otelprof_span_context_is_sampled(&got));
    ASSERT_STR_EQ(ts_str(&got.tracestate), "me=1,you@them=2");
    ASSERT_STR_EQ(bag_str(&got_bag), "user=a%20b;p");
    expect_bag(&got_bag, "user", "a b");

    /* Invalid context and empty baggage: nothing written. */
    otelprof_header_array_init(&arr, h, 0, 8, buf, sizeof buf);
    otelprof_span_context none;
    memset(&none, 0, sizeof none);
    otelprof_baggage empty = {0};
    ASSERT_OK(otelprof_propagation_inject(&ALL, &none, &empty, &c));
    ASSERT_OK(otelprof_propagation_inject(&ALL, NULL, NULL, &c));
    ASSERT_EQ(arr.count, 0);
    /* A carrier that runs out of room: the error comes back. */
    char tiny[8];
    otelprof_header_array_init(&arr, h, 0, 8, tiny, sizeof tiny);
    ASSERT_STATUS(otelprof_propagation_inject(&ALL, &ctx, &bag, &c), OTELPROF_E_BUF_TOO_SMALL);
}

static void propagation_duplicate_traceparent(void)
{
    otelprof_header h[] = {{"traceparent", "00-" TID "-" PID "-01"},
                           {"tracestate", "a=1"},
                           {"traceparent", "00-" TID "-" PID "-01"}};
    otelprof_header_array arr;
    otelprof_header_array_init(&arr, h, 3, 3, NULL, 0);
    otelprof_carrier c = otelprof_header_array_carrier(&arr);
    otelprof_span_context got;
    memset(&got, 0xee, sizeof got);
    ASSERT_OK(otelprof_propagation_extract(&ALL, &c, &got, NULL));
    ASSERT_TRUE(!otelprof_span_context_is_valid(&got));
    ASSERT_EQ(got.is_remote, 0);
    ASSERT_EQ(otelprof_tracestate_count(&got.tracestate), 0);
    /* Also when the names differ only in case. */
    h[2].name = "TraceParent";
    ASSERT_OK(otelprof_propagation_extract(&ALL, &c, &got, NULL));
    ASSERT_TRUE(!otelprof_span_context_is_valid(&got));
    /* One of them gone: valid again. */
    arr.count = 2;
    ASSERT_OK(otelprof_propagation_extract(&ALL, &c, &got, NULL));
    ASSERT_TRUE(otelprof_span_context_is_valid(&got));
    ASSERT_STR_EQ(ts_str(&got.tracestate), "a=1");
}

static void propagation_header_case(void)
{
    otelprof_header h[] = {{"TRACEPARENT", "00-" TID "-" PID "-01"},
                           {"TraceState", "a=1"},
                           {"tracestate", "b=2"},
                           {"BAGGAGE", "k=v"},
                           {"Baggage", "j=w"}};
    otelprof_header_array arr;
    otelprof_header_array_init(&arr, h, 5, 5, NULL, 0);
    otelprof_carrier c = otelprof_header_array_carrier(&arr);
    otelprof_span_context got;
    otelprof_baggage bag;
    ASSERT_OK(otelprof_propagation_extract(&ALL, &c, &got, &bag));
    ASSERT_TRUE(otelprof_span_context_is_valid(&got));
    /* Several tracestate / baggage fields are joined in order. */
    ASSERT_STR_EQ(ts_str(&got.tracestate), "a=1,b=2");
    ASSERT_STR_EQ(bag_str(&bag), "k=v,j=w");
}

static void propagation_bad_tracestate(void)
{
    otelprof_header h[] = {{"traceparent", " 00-" TID "-" PID "-01\t"},
                           {"tracestate", "a=1,B=2"},
                           {"baggage", "ok=1,bad"}};
    otelprof_header_array arr;
    otelprof_header_array_init(&arr, h, 3, 3, NULL, 0);
    otelprof_carrier c = otelprof_header_array_carrier(&arr);
    otelprof_span_context got;
    otelprof_baggage bag;
    ASSERT_OK(otelprof_propagation_extract(&ALL, &c, &got, &bag));
    /* The parent survives a bad tracestate; the tracestate is dropped. */
    ASSERT_TRUE(otelprof_span_context_is_valid(&got));
    ASSERT_EQ(otelprof_tracestate_count(&got.tracestate), 0);
    ASSERT_STR_EQ(bag_str(&bag), "ok=1");
    /* Without a valid traceparent the tracestate is not even looked at; baggage still is. */
    h[0].value = "00-" TID "-" PID "-0g";
    h[1].value = "a=1";
    ASSERT_OK(otelprof_propagation_extract(&ALL, &c, &got, &bag));
    ASSERT_TRUE(!otelprof_span_context_is_valid(&got));
    ASSERT_EQ(otelprof_tracestate_count(&got.tracestate), 0);
    ASSERT_STR_EQ(bag_str(&bag), "ok=1");
}

static void propagation_selected(void)
{
    otelprof_header h[] = {{"traceparent", "00-" TID "-" PID "-01"}, {"baggage", "k=v"}};
    otelprof_header_array arr;
    otelprof_header_array_init(&arr, h, 2, 2, NULL, 0);
    otelprof_carrier c = otelprof_header_array_carrier(&arr);
    otelprof_span_context got;
    otelprof_baggage bag;
    otelprof_propagators only_tc = {OTELPROF_PROPAGATOR_TRACECONTEXT};
    otelprof_propagators only_bg = {OTELPROF_PROPAGATOR_BAGGAGE};
    otelprof_propagators none = {0};
    ASSERT_OK(otelprof_propagation_extract(&only_tc, &c, &got, &bag));
    ASSERT_TRUE(otelprof_span_context_is_valid(&got));
    ASSERT_EQ(otelprof_baggage_count(&bag), 0);
    ASSERT_OK(otelprof_propagation_extract(&only_bg, &c, &got, &bag));
    ASSERT_TRUE(!otelprof_span_context_is_valid(&got));
    ASSERT_EQ(otelprof_baggage_count(&bag), 1);
    ASSERT_OK(otelprof_propagation_extract(&none, &c, &got, &bag));
    ASSERT_TRUE(!otelprof_span_context_is_valid(&got));
    ASSERT_EQ(otelprof_baggage_count(&bag), 0);

    otelprof_span_context ctx = sample_ctx();
    otelprof_baggage b2 = {0};
    ASSERT_OK(otelprof_baggage_set(&b2, "k", 1, "v", 1, NULL, 0));
    otelprof_header out[4];
    char buf[512];
    otelprof_header_array oa;
    otelprof_header_array_init(&oa, out, 0, 4, buf, sizeof buf);
    otelprof_carrier oc = otelprof_header_array_carrier(&oa);
    ASSERT_OK(otelprof_propagation_inject(&none, &ctx, &b2, &oc));
    ASSERT_EQ(oa.count, 0);
    ASSERT_OK(otelprof_propagation_inject(&only_bg, &ctx, &b2, &oc));
    ASSERT_EQ(oa.count, 1);
    ASSERT_STR_EQ(out[0].name, "baggage");
}

static void propagation_bad_args(void)
{
    otelprof_header h[] = {{"traceparent", "00-" TID "-" PID "-01"}};
    otelprof_header_array arr;
    otelprof_header_array_init(&arr, h, 1, 1, NULL, 0);
    otelprof_carrier c = otelprof_header_array_carrier(&arr);
    otelprof_span_context got;
    ASSERT_STATUS(otelprof_propagation_extract(NULL, &c, &got, NULL), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_propagation_extract(&ALL, NULL, &got, NULL), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_propagation_inject(&ALL, &got, NULL, NULL), OTELPROF_E_INVAL);
    /* A carrier built against an older, smaller struct: callbacks past sz are absent. */
    otelprof_carrier old = c;
    old.sz = offsetof(otelprof_carrier, count);
    ASSERT_STATUS(otelprof_propagation_extract(&ALL, &old, &got, NULL), OTELPROF_E_INVAL);
    ASSERT_STATUS(otelprof_propagation_inject(&ALL, &got, NULL, &old), OTELPROF_E_INVAL);
    otelprof_carrier noget = c;
    noget.get = NULL;
    ASSERT_STATUS(otelprof_propagation_extract(&ALL, &noget, &got, NULL), OTELPROF_E_INVAL);
    /* Nothing requested: the callbacks are not needed. */
    ASSERT_OK(otelprof_propagation_extract(&ALL, &noget, NULL, NULL));
    /* The init macro fills sz. */
    otelprof_carrier m = OTELPROF_CARRIER_INIT(.user = &arr);
    ASSERT_EQ(m.sz, sizeof(otelprof_carrier));
    ASSERT_NULL(m.get);
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {
        {"traceparent_valid", traceparent_valid},
        {"traceparent_uppercase", traceparent_uppercase},
        {"traceparent_length", traceparent_length},
        {"traceparent_separator", traceparent_separator},
        {"traceparent_nonhex", traceparent_nonhex},
        {"traceparent_version_ff", traceparent_version_ff},
        {"traceparent_zero_ids", traceparent_zero_ids},
        {"traceparent_v00_extra", traceparent_v00_extra},
        {"traceparent_future_version", traceparent_future_version},
        {"traceparent_future_bad_tail", traceparent_future_bad_tail},
        {"traceparent_ows", traceparent_ows},
        {"traceparent_flags", traceparent_flags},
        {"traceparent_api", traceparent_api},
        {"tracestate_keys", tracestate_keys},
        {"tracestate_multi_tenant", tracestate_multi_tenant},
        {"tracestate_bad_keys", tracestate_bad_keys},
        {"tracestate_values", tracestate_values},
        {"tracestate_bad_values", tracestate_bad_values},
        {"tracestate_trailing_space", tracestate_trailing_space},
        {"tracestate_empty_members", tracestate_empty_members},
        {"tracestate_duplicates", tracestate_duplicates},
        {"tracestate_member_limit", tracestate_member_limit},
        {"tracestate_length_limits", tracestate_length_limits},
        {"tracestate_multi_field", tracestate_multi_field},
        {"tracestate_truncation", tracestate_truncation},
        {"tracestate_set_get_remove", tracestate_set_get_remove},
        {"tracestate_set_limits", tracestate_set_limits},
        {"tracestate_format_buffer", tracestate_format_buffer},
        {"baggage_basic", baggage_basic},
        {"baggage_percent_roundtrip", baggage_percent_roundtrip},
        {"baggage_utf8_replacement", baggage_utf8_replacement},
        {"baggage_properties", baggage_properties},
        {"baggage_malformed_members", baggage_malformed_members},
        {"baggage_duplicates", baggage_duplicates},
        {"baggage_limits", baggage_limits},
        {"baggage_set_get_remove", baggage_set_get_remove},
        {"baggage_format_buffer", baggage_format_buffer},
        {"carrier_array", carrier_array},
        {"propagators_parse", propagators_parse},
        {"propagators_env", propagators_env},
        {"propagation_roundtrip", propagation_roundtrip},
        {"propagation_duplicate_traceparent", propagation_duplicate_traceparent},
        {"propagation_header_case", propagation_header_case},
        {"propagation_bad_tracestate", propagation_bad_tracestate},
        {"propagation_selected", propagation_selected},
        {"propagation_bad_args", propagation_bad_args},
        {NULL, NULL},
    };
    return test_main(cases, argc, argv);
}
