/* Thread records (OTEP 4947) and custom-labels v1 sets, copied the way the eBPF readers
 * copy them: a bounded header first, the rest only when it says so. */
#define _GNU_SOURCE
#include "reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rd_tc_decode(struct rd_thread_ctx *tc)
{
    int slot[256];
    memset(slot, -1, sizeof slot);
    tc->n_entries = 0;
    tc->truncated = false;
    size_t pos = 0, n = tc->attrs_read;
    while (pos < n) {
        /* [u8 key][u8 len][len bytes]; a truncated entry ends the list */
        if (n - pos < 2 || n - pos - 2 < tc->attrs[pos + 1]) {
            tc->truncated = true;
            break;
        }
        unsigned key = tc->attrs[pos];
        struct rd_attr a = {key, tc->attrs[pos + 1], &tc->attrs[pos + 2]};
        if (slot[key] >= 0) { /* repeated key: the last one wins */
            tc->entries[slot[key]] = a;
        } else {
            slot[key] = (int)tc->n_entries;
            tc->entries[tc->n_entries++] = a;
        }
        pos += 2 + (size_t)a.len;
    }
}

static void unreadable(char *why, size_t len, const char *what, uint64_t addr, int rc)
{
    snprintf(why, len, "reading %s at 0x%llx: %s", what, (unsigned long long)addr, strerror(-rc));
}

void rd_tc_read(pid_t pid, uint64_t slot_addr, struct rd_thread_ctx *tc)
{
    uint8_t hdr[RD_TC_HEADER];
    uint64_t ptr;
    tc->n_entries = 0;
    tc->attrs_read = 0;
    tc->why[0] = '\0';
    int rc = rd_mem_read(pid, slot_addr, &ptr, 8);
    if (rc != 0) {
        tc->state = RD_ST_UNREADABLE;
        unreadable(tc->why, sizeof tc->why, "the TLS pointer", slot_addr, rc);
        return;
    }
    tc->record_addr = ptr;
    if (ptr == 0) {
        tc->state = RD_ST_NONE;
        return;
    }
    if ((rc = rd_mem_read(pid, ptr, hdr, sizeof hdr)) != 0) {
        tc->state = RD_ST_UNREADABLE;
        unreadable(tc->why, sizeof tc->why, "the record header", ptr, rc);
        return;
    }
    memcpy(tc->trace_id, hdr, 16);
    memcpy(tc->span_id, hdr + RD_TC_OFF_SPAN, 8);
    tc->valid = hdr[RD_TC_OFF_VALID];
    tc->trace_flags = hdr[RD_TC_OFF_FLAGS];
    memcpy(&tc->attrs_size, hdr + RD_TC_OFF_ASIZE, 2); /* host-endian u16 */
    if (tc->valid != 1) {
        tc->state = RD_ST_INVALID;
        return;
    }
    /* The eBPF profiler copies at most 640 bytes in all. */
    size_t n = tc->attrs_size < RD_TC_ATTRS_MAX ? tc->attrs_size : RD_TC_ATTRS_MAX;
    if (n && (rc = rd_mem_read(pid, ptr + RD_TC_HEADER, tc->attrs, n)) != 0) {
        tc->state = RD_ST_UNREADABLE;
        unreadable(tc->why, sizeof tc->why, "the record attributes", ptr + RD_TC_HEADER, rc);
        return;
    }
    tc->attrs_read = (uint16_t)n;
    rd_tc_decode(tc);
    tc->state = RD_ST_ATTACHED;
}

static int read_string(pid_t pid, uint64_t len, uint64_t buf, uint8_t **out, size_t *out_len)
{
    if (len > RD_CL_STR_MAX)
        len = RD_CL_STR_MAX;
    uint8_t *p = malloc(len + 1);
    if (!p)
        return -ENOMEM;
    int rc = len ? rd_mem_read(pid, buf, p, len) : 0;
    if (rc != 0) {
        free(p);
        return rc;
    }
    p[len] = '\0';
    *out = p;
    *out_len = len;
    return 0;
}

void rd_cl_free(struct rd_custom_labels *cl)
{
    for (size_t i = 0; i < cl->n_labels; i++) {
        free(cl->labels[i].key);
        free(cl->labels[i].value);
    }
    cl->n_labels = 0;
}

void rd_cl_read(pid_t pid, uint64_t slot_addr, struct rd_custom_labels *cl)
{
    uint64_t ptr, set[3];
    cl->n_labels = 0;
    cl->why[0] = '\0';
    int rc = rd_mem_read(pid, slot_addr, &ptr, 8);
    if (rc != 0) {
        cl->state = RD_ST_UNREADABLE;
        unreadable(cl->why, sizeof cl->why, "the TLS pointer", slot_addr, rc);
        return;
    }
    cl->set_addr = ptr;
    if (ptr == 0) {
        cl->state = RD_ST_NONE;
        return;
    }
    if ((rc = rd_mem_read(pid, ptr, set, RD_CL_SET_SIZE)) != 0) {
        cl->state = RD_ST_UNREADABLE;
        unreadable(cl->why, sizeof cl->why, "the label set", ptr, rc);
        return;
    }
    cl->count = set[1];
    cl->capacity = set[2];
    size_t n = set[1] < RD_CL_MAX_SHOWN ? (size_t)set[1] : RD_CL_MAX_SHOWN;
    uint64_t labels[RD_CL_MAX_SHOWN][4];
    if (n && (rc = rd_mem_read(pid, set[0], labels, n * RD_CL_LABEL_SIZE)) != 0) {
        cl->state = RD_ST_UNREADABLE;
        unreadable(cl->why, sizeof cl->why, "the label storage", set[0], rc);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        /* {key.len, key.buf, value.len, value.buf}; a NULL key buf: skip the label */
        if (labels[i][1] == 0)
            continue;
        struct rd_label *l = &cl->labels[cl->n_labels];
        memset(l, 0, sizeof *l);
        rc = read_string(pid, labels[i][0], labels[i][1], &l->key, &l->key_len);
        if (rc == 0 && labels[i][3] != 0) {
            rc = read_string(pid, labels[i][2], labels[i][3], &l->value, &l->value_len);
            if (rc != 0)
                free(l->key);
        }
        if (rc != 0) {
            rd_cl_free(cl);
            cl->state = RD_ST_UNREADABLE;
            unreadable(cl->why, sizeof cl->why, "a label string", labels[i][1], rc);
            return;
        }
        cl->n_labels++;
    }
    cl->state = RD_ST_ATTACHED;
}
