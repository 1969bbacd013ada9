/* Unit tests of otelprof_reader's decoders on crafted input the writer never produces:
 * truncated and repeated attribute entries, oversized records, invalid records, label
 * sets with absent strings, malformed protobuf, and bytes that are not UTF-8.
 * Records are placed in this process's own memory and read back with process_vm_readv. */
#define _GNU_SOURCE
#include "reader.h"
#include "test.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

static _Alignas(8) uint8_t rec[1024];

static void put_header(uint8_t valid, uint16_t attrs_size)
{
    memset(rec, 0, sizeof rec);
    for (int i = 0; i < 16; i++)
        rec[i] = (uint8_t)(0x10 + i);
    for (int i = 0; i < 8; i++)
        rec[16 + i] = (uint8_t)(0x80 + i);
    rec[24] = valid;
    rec[25] = 0x03;
    memcpy(rec + 26, &attrs_size, 2);
}

static struct rd_thread_ctx tc;

static void read_rec(void)
{
    void *p = rec;
    rd_tc_read(getpid(), (uint64_t)(uintptr_t)&p, &tc);
}

static void test_tc_attached(void)
{
    static const uint8_t a[] = {0, 3, 'a', 'b', 'c', 7, 0};
    put_header(1, sizeof a);
    memcpy(rec + 28, a, sizeof a);
    read_rec();
    ASSERT_EQ(tc.state, RD_ST_ATTACHED);
    ASSERT_EQ(tc.trace_id[0], 0x10);
    ASSERT_EQ(tc.span_id[7], 0x87);
    ASSERT_EQ(tc.trace_flags, 3);
    ASSERT_EQ(tc.n_entries, 2);
    ASSERT_EQ(tc.entries[0].key, 0);
    ASSERT_EQ(tc.entries[0].len, 3);
    ASSERT_MEM_EQ(tc.entries[0].value, "abc", 3);
    ASSERT_EQ(tc.entries[1].key, 7); /* an empty value is an entry too */
    ASSERT_EQ(tc.entries[1].len, 0);
    ASSERT_TRUE(!tc.truncated);
}

/* A truncated entry ends the list; what came before stays. */
static void test_tc_truncated(void)
{
    static const uint8_t a[] = {0, 1, 'x', 1, 5, 'y', 'y'};
    put_header(1, sizeof a);
    memcpy(rec + 28, a, sizeof a);
    read_rec();
    ASSERT_EQ(tc.state, RD_ST_ATTACHED);
    ASSERT_EQ(tc.n_entries, 1);
    ASSERT_TRUE(tc.truncated);
    /* a lone key byte without its length */
    put_header(1, 4);
    memcpy(rec + 28, (const uint8_t[]){2, 1, 'z', 9}, 4);
    read_rec();
    ASSERT_EQ(tc.n_entries, 1);
    ASSERT_TRUE(tc.truncated);
}

/* A repeated key index: the last one wins. */
static void test_tc_repeated(void)
{
    static const uint8_t a[] = {0, 1, 'a', 1, 1, 'b', 0, 2, 'c', 'c'};
    put_header(1, sizeof a);
    memcpy(rec + 28, a, sizeof a);
    read_rec();
    ASSERT_EQ(tc.n_entries, 2);
    ASSERT_EQ(tc.entries[0].key, 0);
    ASSERT_EQ(tc.entries[0].len, 2);
    ASSERT_MEM_EQ(tc.entries[0].value, "cc", 2);
    ASSERT_EQ(tc.entries[1].key, 1);
}

/* attrs_size beyond 612: only 612 bytes are copied, like the eBPF profiler. */
static void test_tc_clamp(void)
{
    put_header(1, 0xffff);
    uint8_t *p = rec + 28;
    for (int i = 0; i < 3; i++) { /* 3 * 204 = 612 bytes of entries */
        p[0] = (uint8_t)i;
        p[1] = 202;
        memset(p + 2, 'v', 202);
        p += 204;
    }
    p[0] = 3; /* entry 4 lies past the limit */
    p[1] = 1;
    read_rec();
    ASSERT_EQ(tc.state, RD_ST_ATTACHED);
    ASSERT_EQ(tc.attrs_size, 0xffff);
    ASSERT_EQ(tc.attrs_read, RD_TC_ATTRS_MAX);
    ASSERT_EQ(tc.n_entries, 3);
    ASSERT_TRUE(!tc.truncated);
}

/* valid must be exactly 1. */
static void test_tc_invalid(void)
{
    put_header(0, 0);
    read_rec();
    ASSERT_EQ(tc.state, RD_ST_INVALID);
    put_header(2, 0);
    read_rec();
    ASSERT_EQ(tc.state, RD_ST_INVALID);
    ASSERT_EQ(tc.valid, 2);
}

static void test_tc_none_and_unreadable(void)
{
    void *p = NULL;
    rd_tc_read(getpid(), (uint64_t)(uintptr_t)&p, &tc);
    ASSERT_EQ(tc.state, RD_ST_NONE);
    long pg = sysconf(_SC_PAGESIZE);
    void *m = mmap(NULL, (size_t)pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    p = m;
    rd_tc_read(getpid(), (uint64_t)(uintptr_t)&p, &tc);
    ASSERT_EQ(tc.state, RD_ST_UNREADABLE);
    /* a header that ends exactly at an unreadable page */
    void *two =
        mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(two != MAP_FAILED);
    ASSERT_EQ(mprotect((char *)two + pg, (size_t)pg, PROT_NONE), 0);
    uint8_t *h = (uint8_t *)two + pg - 28;
    memset(h, 0, 28);
    h[24] = 1;
    h[26] = 10; /* 10 bytes of attributes: unmapped */
    p = h;
    rd_tc_read(getpid(), (uint64_t)(uintptr_t)&p, &tc);
    ASSERT_EQ(tc.state, RD_ST_UNREADABLE);
    munmap(m, (size_t)pg);
    munmap(two, 2 * (size_t)pg);
}

/* ------------------------------------------------------------ custom labels ---- */

static void test_cl_read(void)
{
    static const char k1[] = "key1", v1[] = "value1", k3[] = "key3";
    /* the storage ends where an unreadable page begins */
    long pg = sysconf(_SC_PAGESIZE);
    uint8_t *two =
        mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(two != MAP_FAILED);
    ASSERT_EQ(mprotect(two + pg, (size_t)pg, PROT_NONE), 0);
    uint64_t(*labels)[4] = (uint64_t(*)[4])(two + pg - 3 * 32);
    const uint64_t init[3][4] = {
        {4, (uint64_t)(uintptr_t)k1, 6, (uint64_t)(uintptr_t)v1},
        {3, 0, 6, (uint64_t)(uintptr_t)v1}, /* key buf NULL: skipped */
        {4, (uint64_t)(uintptr_t)k3, 0, 0}, /* value absent */
    };
    memcpy(labels, init, sizeof init);
    uint64_t set[3] = {(uint64_t)(uintptr_t)labels, 3, 3};
    void *p = set;
    struct rd_custom_labels cl;
    memset(&cl, 0, sizeof cl);
    rd_cl_read(getpid(), (uint64_t)(uintptr_t)&p, &cl);
    ASSERT_EQ(cl.state, RD_ST_ATTACHED);
    ASSERT_EQ(cl.n_labels, 2);
    ASSERT_STR_EQ((const char *)cl.labels[0].key, "key1");
    ASSERT_STR_EQ((const char *)cl.labels[0].value, "value1");
    ASSERT_STR_EQ((const char *)cl.labels[1].key, "key3");
    ASSERT_NULL(cl.labels[1].value);
    rd_cl_free(&cl);
    /* a count far beyond the storage: capped, and the unreadable rest reported */
    set[1] = UINT64_C(1) << 40;
    rd_cl_read(getpid(), (uint64_t)(uintptr_t)&p, &cl);
    ASSERT_EQ(cl.state, RD_ST_UNREADABLE);
    ASSERT_EQ(cl.n_labels, 0);
    /* a key whose bytes are unmapped */
    set[1] = 1;
    labels[2][1] = (uint64_t)(uintptr_t)(two + pg);
    memcpy(labels, labels[2], 32);
    rd_cl_read(getpid(), (uint64_t)(uintptr_t)&p, &cl);
    ASSERT_EQ(cl.state, RD_ST_UNREADABLE);
    ASSERT_EQ(cl.n_labels, 0);
    munmap(two, 2 * (size_t)pg);
}

/* ------------------------------------------------------------ protobuf ---- */

struct pbw {
    uint8_t b[1024];
    size_t n;
};

static void w_byte(struct pbw *w, uint8_t c)
{
    ASSERT_LT(w->n, sizeof w->b);
    w->b[w->n++] = c;
}

static void w_varint(struct pbw *w, uint64_t v)
{
    do {
        w_byte(w, (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
        v >>= 7;
    } while (v);
}

static void w_len(struct pbw *w, unsigned field, const void *p, size_t n)
{
    w_varint(w, (uint64_t)field << 3 | 2);
    w_varint(w, n);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_sub(struct pbw *w, unsigned field, const struct pbw *sub)
{
    w_len(w, field, sub->b, sub->n);
}

static void kv_string(struct pbw *w, unsigned field, const char *k, const char *v)
{
    struct pbw kv = {{0}, 0}, any = {{0}, 0};
    w_len(&any, 1, v, strlen(v));
    w_len(&kv, 1, k, strlen(k));
    w_sub(&kv, 2, &any);
    w_sub(w, field, &kv);
}

static void build_payload(struct pbw *msg)
{
    struct pbw res = {{0}, 0}, kv = {{0}, 0}, any = {{0}, 0}, arr = {{0}, 0};
    kv_string(&res, 1, "service.name", "svc");
    w_len(&kv, 1, "process.pid", 11);
    w_varint(&any, 3 << 3 | 0);
    w_varint(&any, (uint64_t)-5); /* negative int64: 10-byte varint */
    w_sub(&kv, 2, &any);
    w_sub(&res, 1, &kv);
    w_varint(&res, 7 << 3 | 5); /* unknown fixed32 */
    for (int i = 0; i < 4; i++)
        w_byte(&res, 0xee);
    w_sub(msg, 1, &res);
    kv_string(msg, 2, "threadlocal.schema_version", "tlsdesc_v1_dev");
    const char *keys[] = {"http.route", "tenant"};
    for (int i = 0; i < 2; i++) {
        struct pbw item = {{0}, 0};
        w_len(&item, 1, keys[i], strlen(keys[i]));
        w_sub(&arr, 1, &item);
    }
    memset(&any, 0, sizeof any);
    memset(&kv, 0, sizeof kv);
    w_sub(&any, 5, &arr);
    w_len(&kv, 1, "threadlocal.attribute_key_map", 29);
    w_sub(&kv, 2, &any);
    w_sub(msg, 2, &kv);
    w_varint(msg, 9 << 3 | 0); /* unknown varint */
    w_varint(msg, 300);
    w_varint(msg, 10 << 3 | 1); /* unknown fixed64 */
    for (int i = 0; i < 8; i++)
        w_byte(msg, 0x11);
}

static int decode(const uint8_t *p, size_t n, struct rd_procctx *pc)
{
    memset(pc, 0, sizeof *pc);
    uint8_t *copy = malloc(n ? n : 1);
    ASSERT_TRUE(copy != NULL);
    if (n)
        memcpy(copy, p, n);
    return rd_procctx_decode(pc, copy, n);
}

static void test_pc_decode(void)
{
    struct pbw msg = {{0}, 0};
    build_payload(&msg);
    struct rd_procctx pc;
    ASSERT_EQ(decode(msg.b, msg.n, &pc), 0);
    ASSERT_EQ(pc.n_resource, 2);
    ASSERT_EQ(pc.resource[0].value.kind, RD_ANY_STRING);
    ASSERT_EQ(pc.resource[1].value.kind, RD_ANY_INT);
    ASSERT_EQ(pc.resource[1].value.i, -5);
    ASSERT_TRUE(pc.has_schema);
    ASSERT_MEM_EQ(pc.schema, "tlsdesc_v1_dev", 14);
    ASSERT_TRUE(pc.has_key_map);
    ASSERT_EQ(pc.n_keys, 2);
    ASSERT_EQ(pc.key_len[1], 6);
    ASSERT_MEM_EQ(pc.keys[1], "tenant", 6);
    rd_procctx_free(&pc);
}

/* Every prefix and every single-byte corruption: decoded or rejected, never out of
 * bounds (run under ASan). */
static void test_pc_mutations(void)
{
    struct pbw msg = {{0}, 0};
    build_payload(&msg);
    struct rd_procctx pc;
    for (size_t n = 0; n < msg.n; n++) {
        (void)decode(msg.b, n, &pc);
        rd_procctx_free(&pc);
    }
    for (size_t i = 0; i < msg.n; i++) {
        for (unsigned v = 0; v < 256; v += 17) {
            uint8_t save = msg.b[i];
            msg.b[i] = (uint8_t)v;
            (void)decode(msg.b, msg.n, &pc);
            rd_procctx_free(&pc);
            msg.b[i] = save;
        }
    }
}

static void test_pc_malformed(void)
{
    struct rd_procctx pc;
    static const uint8_t group[] = {1 << 3 | 3};
    static const uint8_t field0[] = {0 << 3 | 0, 1};
    static const uint8_t long_len[] = {2 << 3 | 2, 100, 'a'};
    static const uint8_t varint11[] = {9 << 3, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff,   0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t varint_bit[] = {9 << 3, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff,   0xff, 0xff, 0xff, 0x02};
    static const uint8_t short_fixed[] = {9 << 3 | 1, 1, 2, 3};
    static const uint8_t wrong_wt[] = {2 << 3 | 0, 5}; /* attributes as a varint */
    const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {{group, sizeof group},           {field0, sizeof field0},
               {long_len, sizeof long_len},     {varint11, sizeof varint11},
               {varint_bit, sizeof varint_bit}, {short_fixed, sizeof short_fixed},
               {wrong_wt, sizeof wrong_wt}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ(decode(bad[i].p, bad[i].n, &pc), -EBADMSG);
        rd_procctx_free(&pc);
    }
    ASSERT_EQ(decode(NULL, 0, &pc), 0); /* empty message: nothing, but well-formed */
    ASSERT_TRUE(!pc.has_key_map);
    rd_procctx_free(&pc);
}

/* ------------------------------------------------------------ text ---- */

static void test_json_escape(void)
{
    struct rd_buf b = {0};
    static const uint8_t s[] = {'a', '"', '\\', '\n', 0xff, 0xc3, 0xa9, 0xed, 0xa0, 0x80, 0x01};
    rd_buf_json_str(&b, s, sizeof s);
    /* invalid bytes (0xff, a surrogate's 3 bytes) become \u00XX of each byte */
    ASSERT_STR_EQ(b.p, "\"a\\\"\\\\\\u000a\\u00ff\xc3\xa9\\u00ed\\u00a0\\u0080\\u0001\"");
    rd_buf_free(&b);
    rd_buf_text_str(&b, s, sizeof s);
    ASSERT_STR_EQ(b.p, "a\"\\\\\\x0a\\xff\xc3\xa9\\xed\\xa0\\x80\\x01");
    rd_buf_free(&b);
    ASSERT_TRUE(rd_utf8_valid((const uint8_t *)"\xf0\x9f\x98\x80", 4));
    ASSERT_TRUE(!rd_utf8_valid((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
    ASSERT_TRUE(!rd_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {
        {"tc_attached", test_tc_attached},
        {"tc_truncated", test_tc_truncated},
        {"tc_repeated", test_tc_repeated},
        {"tc_clamp", test_tc_clamp},
        {"tc_invalid", test_tc_invalid},
        {"tc_none_and_unreadable", test_tc_none_and_unreadable},
        {"cl_read", test_cl_read},
        {"pc_decode", test_pc_decode},
        {"pc_mutations", test_pc_mutations},
        {"pc_malformed", test_pc_malformed},
        {"json_escape", test_json_escape},
        {NULL, NULL},
    };
    return test_main(cases, argc, argv);
}
