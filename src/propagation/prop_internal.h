/* Private helpers shared by the propagation translation units. Not installed.
 * Everything here is static inline so the parsers can also be compiled on their own
 * (the fuzz targets link these sources directly, without the rest of the library). */
#ifndef OTELPROF_PROP_INTERNAL_H
#define OTELPROF_PROP_INTERNAL_H

#include <otelprof/propagation.h>

#include <stdbool.h>
#include <string.h>

/* OTELPROF_NUL_TERMINATED -> strlen; NULL with a length of 0 is an empty string. */
static inline size_t prop_len(const char *s, size_t len)
{
    if (len == OTELPROF_NUL_TERMINATED)
        return s ? strlen(s) : 0;
    return len;
}

/* OWS of RFC 9110: space and horizontal tab. */
static inline bool prop_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Trim OWS on both ends of s[*b..*e). */
static inline void prop_trim(const char *s, size_t *b, size_t *e)
{
    while (*b < *e && prop_is_ows(s[*b]))
        (*b)++;
    while (*e > *b && prop_is_ows(s[*e - 1]))
        (*e)--;
}

static inline char prop_ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Header names compare case-insensitively (HTTP); ASCII only, no locale. */
static inline bool prop_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (prop_ascii_lower(a[i]) != prop_ascii_lower(b[i]))
            return false;
    return true;
}

/* tracestate.c: parse the first nfields `tracestate` values of a carrier as one header
 * (the carrier's get callback must be set). */
otelprof_status prop_tracestate_from_carrier(otelprof_tracestate *ts, const otelprof_carrier *c,
                                             size_t nfields);

#endif
