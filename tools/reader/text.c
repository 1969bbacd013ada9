/* Text helpers: UTF-8 checks, hex, and an output buffer with a JSON string writer that
 * never emits invalid JSON, whatever bytes the target process holds. */
#define _GNU_SOURCE
#include "reader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (1..4), 0 if ill-formed (overlongs,
 * surrogates and code points above U+10FFFF are ill-formed). */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

bool rd_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t l = utf8_seq(s + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

void rd_hex(char *out, const uint8_t *in, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void rd_buf_put(struct rd_buf *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (n >= b->cap - b->len || !b->p) {
        size_t cap = b->cap ? b->cap : 1024;
        while (n >= cap - b->len)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void rd_buf_puts(struct rd_buf *b, const char *s)
{
    rd_buf_put(b, s, strlen(s));
}

void rd_buf_printf(struct rd_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    rd_buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

void rd_buf_json_str(struct rd_buf *b, const uint8_t *s, size_t n)
{
    char esc[8];
    rd_buf_put(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rd_buf_put(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rd_buf_put(b, esc, 6);
            i++;
        } else {
            size_t l = utf8_seq(s + i, n - i);
            if (l) {
                rd_buf_put(b, s + i, l);
                i += l;
            } else { /* a byte that is not UTF-8: its value as a code point */
                snprintf(esc, sizeof esc, "\\u%04x", c);
                rd_buf_put(b, esc, 6);
                i++;
            }
        }
    }
    rd_buf_put(b, "\"", 1);
}

void rd_buf_text_str(struct rd_buf *b, const uint8_t *s, size_t n)
{
    char esc[8];
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t l = utf8_seq(s + i, n - i);
        if (c == '\\') {
            rd_buf_put(b, "\\\\", 2);
            i++;
        } else if (c >= 0x20 && c != 0x7f && l) {
            rd_buf_put(b, s + i, l);
            i += l;
        } else {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            rd_buf_put(b, esc, 4);
            i++;
        }
    }
}

void rd_buf_free(struct rd_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
