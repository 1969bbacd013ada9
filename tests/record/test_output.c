/* The profile writers on a synthetic profile: frame names of every length up to past the
 * width of a box, kernel frames (the " [k]" suffix), multi-byte UTF-8, XML metacharacters
 * and folded-format separators. Each box's label must be the whole name or a cut at a
 * UTF-8 boundary followed by "..", and the writers must stay inside their buffers (this
 * test runs under ASan in `make check`). No eBPF needed. */
#define _GNU_SOURCE
#include "record.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c);                  \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        if (!k || i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
        i += k;
    }
    return 1;
}

/* name of length len: ASCII, or "é" repeated (2 bytes each) so cuts land mid-sequence */
static void make_name(char *out, size_t len, int utf8, int metachar)
{
    size_t i = 0;
    if (metachar && len >= 3) { /* XML metacharacters and the folded separator */
        memcpy(out, "<;&", 3);
        i = 3;
    }
    while (i < len) {
        if (utf8 && i + 2 <= len) {
            out[i++] = (char)0xc3;
            out[i++] = (char)0xa9;
        } else {
            out[i] = (char)('a' + (int)(i % 26));
            i++;
        }
    }
    out[len] = '\0';
}

/* A two-stack profile of 1000 samples: the leaf under test with `count` of them, a
 * filler stack with the rest. The SVG is 1180 px wide inside its padding, so `count`
 * sets the leaf box's width to 1.18 px per sample. */
static void one_graph(const char *svg, const char *leaf, bool kernel, const char *process,
                      int64_t count, unsigned *cut, unsigned *whole)
{
    struct rc_profile p;
    rc_profile_init(&p, 10000000);
    static struct rc_sample s;
    memset(&s, 0, sizeof s);
    s.frames[0] = (struct rc_frame){
        .func = leaf, .file = "[kernel.kallsyms]", .addr = 0xffffffff81000000ull, .kernel = kernel};
    s.frames[1] = (struct rc_frame){.func = "caller", .file = "/usr/bin/x", .addr = 1};
    s.n_frames = 2;
    s.process = process;
    rc_profile_add(&p, &s);
    s.frames[0] = (struct rc_frame){.func = "filler", .file = "/usr/bin/x", .addr = 2};
    s.n_frames = 1;
    rc_profile_add(&p, &s);
    CHECK(!p.oom && p.samples.n == 2);
    /* set the counts directly rather than adding a sample 1000 times */
    p.counts[0] = count;
    p.counts[1] = 1000 - count;

    char err[256] = "";
    CHECK(rc_write_flamegraph(&p, svg, "title <&>", "sub \"x\"", err, sizeof err) == 0);
    rc_profile_free(&p);
    size_t n = 0;
    char *doc = slurp(svg, &n);
    CHECK(doc != NULL);
    if (!doc)
        return;
    CHECK(n > 7 && strcmp(doc + n - 7, "</svg>\n") == 0);
    CHECK(utf8_valid((const unsigned char *)doc, n));
    CHECK(strstr(doc, "title &lt;&amp;&gt;") != NULL);
    for (char *t = strstr(doc, "<text x="); t; t = strstr(t + 1, "<text x=")) {
        char *open = strchr(t, '>');
        char *close = open ? strstr(open, "</text>") : NULL;
        CHECK(open && close);
        if (!open || !close)
            break;
        size_t len = (size_t)(close - open - 1);
        CHECK(utf8_valid((const unsigned char *)open + 1, len));
        CHECK(memchr(open + 1, '<', len) == NULL); /* escaped */
        if (len >= 2 && memcmp(close - 2, "..", 2) == 0)
            ++*cut;
        else
            ++*whole;
    }
    free(doc);
}

int main(void)
{
    char dir[] = "/tmp/otelprof-test-output-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char svg[128], folded[128], pb[128];
    snprintf(svg, sizeof svg, "%s/fg.svg", dir);
    snprintf(folded, sizeof folded, "%s/folded.txt", dir);
    snprintf(pb, sizeof pb, "%s/profile.pb.gz", dir);

    /* Every name length against every label fit around it (fit = (w - 6) / 7.08 chars),
     * with and without the kernel suffix: the cut decision meets every (length, width,
     * suffix) combination, including a name that fits only without its suffix. */
    static char name[200];
    unsigned graphs = 0, cut = 0, whole = 0;
    for (int variant = 0; variant < 4; variant++) {
        for (size_t len = 1; len < 90; len++) {
            make_name(name, len, variant & 1, variant == 2);
            for (size_t fit = 0; fit < len + 6; fit++) {
                double w = 6 + ((double)fit + 0.5) * 12.0 * 0.59;
                int64_t count = (int64_t)(w / 1.18 + 0.5);
                if (count < 1 || count > 999)
                    continue;
                one_graph(svg, name, variant >= 2, variant & 1 ? "proc-\xc3\xa9" : "proc", count,
                          &cut, &whole);
                graphs++;
            }
        }
    }
    /* both kinds of label happen, so the sweep exercised the cut */
    CHECK(cut > 1000);
    CHECK(whole > 1000);

    /* the folded and pprof writers on a profile with many stacks */
    struct rc_profile p;
    rc_profile_init(&p, 10000000);
    static struct rc_sample s;
    for (size_t len = 1; len < 90; len++) {
        make_name(name, len, len & 1, len % 3 == 0);
        memset(&s, 0, sizeof s);
        s.frames[0] = (struct rc_frame){
            .func = name, .file = "[kernel.kallsyms]", .addr = len, .kernel = len & 2};
        s.frames[1] =
            (struct rc_frame){.file = "/usr/bin/x", .addr = len, .base = "x", .func_off = len};
        s.n_frames = 2;
        s.process = "proc";
        rc_profile_add(&p, &s);
    }
    char err[256] = "";
    CHECK(!p.oom);
    CHECK(rc_write_folded(&p, folded, err, sizeof err) == 0);
    CHECK(rc_write_pprof(&p, pb, err, sizeof err) == 0);
    rc_profile_free(&p);
    size_t n = 0;
    char *fold = slurp(folded, &n);
    CHECK(fold != NULL);
    if (fold) {
        CHECK(utf8_valid((const unsigned char *)fold, n));
        CHECK(strstr(fold, "_[k]") != NULL);
        CHECK(strstr(fold, "x+0x") != NULL);
        CHECK(strstr(fold, "<:&") != NULL && strstr(fold, "<;&") == NULL); /* separator */
        free(fold);
    }
    if (!failures) {
        unlink(svg);
        unlink(folded);
        unlink(pb);
        rmdir(dir);
    }
    if (failures) {
        fprintf(stderr, "FAIL: %d check(s)\n", failures);
        return 1;
    }
    printf("ok: %u flame graphs (%u labels cut, %u whole), folded and pprof writers\n", graphs, cut,
           whole);
    return 0;
}
