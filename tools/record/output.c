/* Text outputs of the aggregated profile: folded stacks (Brendan Gregg's format, the
 * trace id as the first frame) and a self-contained SVG flame graph. */
#define _GNU_SOURCE
#include "record.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Frame kinds: the flame graph colours them differently; folded marks kernel ones. */
enum { FK_ROOT, FK_TRACE, FK_PROCESS, FK_USER, FK_KERNEL };

static uint32_t label_str(const struct rc_agg *a, uint32_t key)
{
    for (uint32_t i = 0; i < a->n_labels; i++) {
        struct rc_label l;
        rc_agg_label(a, i, &l);
        if (l.key == key)
            return l.str;
    }
    return 0;
}

/* Frame names may not hold the separators of the folded format. */
static void put_frame(struct rd_buf *b, const char *s, size_t n, const char *suffix)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ';' || c == '\n' || c == '\r')
            c = c == ';' ? ':' : ' ';
        rd_buf_put(b, &c, 1);
    }
    rd_buf_puts(b, suffix);
}

static int write_file(const char *path, const struct rd_buf *b, char *err, size_t errlen)
{
    if (b->oom) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    FILE *f = fopen(path, "we");
    if (!f) {
        int rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    bool ok = fwrite(b->p ? b->p : "", 1, b->len, f) == b->len;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        snprintf(err, errlen, "%s: write failed", path);
        return -EIO;
    }
    return 0;
}

int rc_write_folded(const struct rc_profile *p, const char *path, char *err, size_t errlen)
{
    uint32_t k_trace = rc_intern_find(&p->strings, "trace_id", 8);
    struct rd_buf b = {0};
    for (size_t i = 0; i < p->samples.n; i++) {
        struct rc_agg a;
        rc_profile_sample(p, i, &a);
        size_t len;
        uint32_t t = k_trace == UINT32_MAX ? 0 : label_str(&a, k_trace);
        rd_buf_puts(&b, "trace:");
        if (t) {
            const char *s = rc_str_at(p, t, &len);
            rd_buf_put(&b, s, len);
        } else {
            rd_buf_puts(&b, "none");
        }
        const char *proc = rc_str_at(p, a.process, &len);
        rd_buf_puts(&b, ";");
        put_frame(&b, proc, len, "");
        /* locations are leaf first, kernel before user: print root first */
        for (uint32_t j = a.n_locs; j-- > 0;) {
            const char *name = rc_loc_name(p, a.locs[j], &len);
            rd_buf_puts(&b, ";");
            put_frame(&b, name, len, p->locs[a.locs[j]].kernel ? "_[k]" : "");
        }
        rd_buf_printf(&b, " %" PRId64 "\n", a.count);
    }
    int rc = write_file(path, &b, err, errlen);
    rd_buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- flame graph ---- */

struct node {
    uint32_t name; /* string id */
    uint8_t kind;
    int64_t value;
    uint32_t first_child, next; /* node index + 1; 0 = none */
};

struct tree {
    struct node *v;
    size_t n, cap;
    unsigned max_depth;
    bool oom;
};

static uint32_t child(struct tree *t, uint32_t parent, uint32_t name, uint8_t kind)
{
    for (uint32_t c = t->v[parent].first_child; c; c = t->v[c - 1].next)
        if (t->v[c - 1].name == name && t->v[c - 1].kind == kind)
            return c - 1;
    if (t->n == t->cap) {
        size_t nc = t->cap * 2;
        struct node *nv = realloc(t->v, nc * sizeof *nv);
        if (!nv) {
            t->oom = true;
            return UINT32_MAX;
        }
        t->v = nv;
        t->cap = nc;
    }
    uint32_t i = (uint32_t)t->n++;
    /* appended at the end of the sibling list: the graph keeps first-seen order stable */
    t->v[i] = (struct node){name, kind, 0, 0, 0};
    uint32_t *link = &t->v[parent].first_child;
    while (*link)
        link = &t->v[*link - 1].next;
    *link = i + 1;
    return i;
}

/* Siblings sorted by name (as flamegraph.pl does), so the layout does not depend on the
 * order samples arrived in. */
static void sort_children(struct tree *t, const struct rc_profile *p, uint32_t n)
{
    size_t cnt = 0;
    for (uint32_t c = t->v[n].first_child; c; c = t->v[c - 1].next)
        cnt++;
    if (cnt > 1) {
        uint32_t *ids = malloc(cnt * sizeof *ids);
        if (ids) {
            size_t k = 0;
            for (uint32_t c = t->v[n].first_child; c; c = t->v[c - 1].next)
                ids[k++] = c;
            /* insertion sort by name text: sibling lists are short */
            for (size_t i = 1; i < cnt; i++) {
                uint32_t x = ids[i];
                size_t lx, ly;
                const char *sx = rc_str_at(p, t->v[x - 1].name, &lx);
                size_t j = i;
                while (j > 0) {
                    const char *sy = rc_str_at(p, t->v[ids[j - 1] - 1].name, &ly);
                    size_t m = lx < ly ? lx : ly;
                    int c = memcmp(sy, sx, m);
                    if (c < 0 || (c == 0 && ly <= lx))
                        break;
                    ids[j] = ids[j - 1];
                    j--;
                }
                ids[j] = x;
            }
            t->v[n].first_child = ids[0];
            for (size_t i = 0; i + 1 < cnt; i++)
                t->v[ids[i] - 1].next = ids[i + 1];
            t->v[ids[cnt - 1] - 1].next = 0;
            free(ids);
        }
    }
    for (uint32_t c = t->v[n].first_child; c; c = t->v[c - 1].next)
        sort_children(t, p, c - 1);
}

#define FG_WIDTH   1200.0
#define FG_XPAD    10.0
#define FG_FRAME_H 16
#define FG_TOP     56
#define FG_BOTTOM  24
#define FG_FONT    12.0

static void xml_text(struct rd_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '<':
            rd_buf_puts(b, "&lt;");
            break;
        case '>':
            rd_buf_puts(b, "&gt;");
            break;
        case '&':
            rd_buf_puts(b, "&amp;");
            break;
        case '"':
            rd_buf_puts(b, "&quot;");
            break;
        default:
            /* control characters are not allowed in XML 1.0 */
            if (c < 0x20)
                c = '?';
            rd_buf_put(b, &c, 1);
        }
    }
}

static uint32_t hash_name(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void colour(uint8_t kind, const char *s, size_t n, int rgb[3])
{
    uint32_t h = hash_name(s, n);
    double v1 = (h & 0xff) / 255.0, v2 = ((h >> 8) & 0xff) / 255.0, v3 = ((h >> 16) & 0xff) / 255.0;
    switch (kind) {
    case FK_KERNEL: /* orange */
        rgb[0] = 220 + (int)(35 * v1), rgb[1] = 120 + (int)(60 * v2), rgb[2] = (int)(40 * v3);
        break;
    case FK_TRACE: /* purple */
        rgb[0] = 160 + (int)(40 * v1), rgb[1] = 120 + (int)(40 * v2), rgb[2] = 220 + (int)(35 * v3);
        break;
    case FK_PROCESS: /* aqua */
        rgb[0] = 80 + (int)(40 * v1), rgb[1] = 180 + (int)(50 * v2), rgb[2] = 200 + (int)(40 * v3);
        break;
    case FK_ROOT:
        rgb[0] = rgb[1] = rgb[2] = 200;
        break;
    default: /* user code: the classic red-yellow */
        rgb[0] = 205 + (int)(50 * v3), rgb[1] = (int)(230 * v1), rgb[2] = (int)(55 * v2);
    }
}

static void draw(struct rd_buf *b, const struct tree *t, const struct rc_profile *p, uint32_t n,
                 unsigned depth, double x, double scale, int64_t total, unsigned height)
{
    const struct node *nd = &t->v[n];
    double w = (double)nd->value * scale;
    if (w < 0.1)
        return; /* too narrow to see; its children are narrower still */
    double y = height - FG_BOTTOM - (double)(depth + 1) * FG_FRAME_H;
    size_t len;
    const char *name = rc_str_at(p, nd->name, &len);
    const char *suffix = nd->kind == FK_KERNEL ? " [k]" : "";
    int rgb[3];
    colour(nd->kind, name, len, rgb);
    rd_buf_puts(b, "<g><title>");
    xml_text(b, name, len);
    rd_buf_puts(b, suffix);
    rd_buf_printf(b, " (%" PRId64 " samples, %.2f%%)</title>", nd->value,
                  100.0 * (double)nd->value / (double)total);
    rd_buf_printf(b,
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" "
                  "fill=\"rgb(%d,%d,%d)\" rx=\"2\" ry=\"2\"/>",
                  x, y, w, FG_FRAME_H - 1, rgb[0], rgb[1], rgb[2]);
    /* as many characters as fit, ".." when cut */
    size_t fit = (size_t)((w - 6) / (FG_FONT * 0.59));
    size_t total_len = len + strlen(suffix);
    if (fit >= 3) {
        rd_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 3, y + FG_FRAME_H - 4.5);
        if (total_len <= fit) {
            xml_text(b, name, len);
            rd_buf_puts(b, suffix);
        } else {
            size_t keep = fit - 2 < len ? fit - 2 : len;
            /* do not cut a UTF-8 sequence; keep == len means the suffix was cut */
            while (keep > 0 && keep < len && ((unsigned char)name[keep] & 0xc0) == 0x80)
                keep--;
            xml_text(b, name, keep);
            rd_buf_puts(b, "..");
        }
        rd_buf_puts(b, "</text>");
    }
    rd_buf_puts(b, "</g>\n");
    double cx = x;
    for (uint32_t c = nd->first_child; c; c = t->v[c - 1].next) {
        draw(b, t, p, c - 1, depth + 1, cx, scale, total, height);
        cx += (double)t->v[c - 1].value * scale;
    }
}

int rc_write_flamegraph(const struct rc_profile *p, const char *path, const char *title,
                        const char *subtitle, char *err, size_t errlen)
{
    struct tree t = {0};
    t.cap = 1024;
    t.v = malloc(t.cap * sizeof *t.v);
    if (!t.v) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    uint32_t all = rc_intern_find(&p->strings, "all", 3);
    t.v[0] = (struct node){all == UINT32_MAX ? 0 : all, FK_ROOT, 0, 0, 0};
    t.n = 1;
    for (size_t i = 0; i < p->samples.n && !t.oom; i++) {
        struct rc_agg a;
        rc_profile_sample(p, i, &a);
        t.v[0].value += a.count;
        uint32_t n = child(&t, 0, a.process, FK_PROCESS);
        unsigned depth = 1;
        for (uint32_t j = a.n_locs; j-- > 0 && n != UINT32_MAX;) {
            const struct rc_loc *l = &p->locs[a.locs[j]];
            t.v[n].value += a.count;
            n = child(&t, n, p->fns[l->function].name, l->kernel ? FK_KERNEL : FK_USER);
            depth++;
        }
        if (n != UINT32_MAX)
            t.v[n].value += a.count;
        if (depth > t.max_depth)
            t.max_depth = depth;
    }
    if (t.oom) {
        free(t.v);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    sort_children(&t, p, 0);

    unsigned height = FG_TOP + FG_BOTTOM + (t.max_depth + 1) * FG_FRAME_H;
    struct rd_buf b = {0};
    rd_buf_printf(&b,
                  "<?xml version=\"1.0\" standalone=\"no\"?>\n"
                  "<svg version=\"1.1\" width=\"%d\" height=\"%u\" viewBox=\"0 0 %d %u\" "
                  "xmlns=\"http://www.w3.org/2000/svg\">\n",
                  (int)FG_WIDTH, height, (int)FG_WIDTH, height);
    rd_buf_puts(&b, "<defs><linearGradient id=\"bg\" y1=\"0\" y2=\"1\" x1=\"0\" x2=\"0\">"
                    "<stop stop-color=\"#eeeeee\" offset=\"5%\"/>"
                    "<stop stop-color=\"#eeeeb0\" offset=\"95%\"/></linearGradient></defs>\n");
    rd_buf_printf(&b,
                  "<style>text { font-family: Verdana, sans-serif; font-size: %.0fpx; fill: "
                  "#000; } .title { font-size: 17px; text-anchor: middle; } .sub { font-size: "
                  "12px; text-anchor: middle; fill: #555; }</style>\n",
                  FG_FONT);
    rd_buf_printf(&b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%u\" fill=\"url(#bg)\"/>\n",
                  (int)FG_WIDTH, height);
    rd_buf_printf(&b, "<text class=\"title\" x=\"%.0f\" y=\"24\">", FG_WIDTH / 2);
    xml_text(&b, title, strlen(title));
    rd_buf_puts(&b, "</text>\n");
    rd_buf_printf(&b, "<text class=\"sub\" x=\"%.0f\" y=\"42\">", FG_WIDTH / 2);
    xml_text(&b, subtitle, strlen(subtitle));
    rd_buf_puts(&b, "</text>\n");
    if (t.v[0].value > 0) {
        double scale = (FG_WIDTH - 2 * FG_XPAD) / (double)t.v[0].value;
        draw(&b, &t, p, 0, 0, FG_XPAD, scale, t.v[0].value, height);
    } else {
        rd_buf_printf(&b, "<text class=\"sub\" x=\"%.0f\" y=\"%u\">no samples</text>\n",
                      FG_WIDTH / 2, height / 2);
    }
    rd_buf_puts(&b, "</svg>\n");
    free(t.v);
    int rc = write_file(path, &b, err, errlen);
    rd_buf_free(&b);
    return rc;
}
