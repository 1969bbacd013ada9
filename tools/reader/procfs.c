/* /proc parsing and cross-process memory reads. */
#define _GNU_SOURCE
#include "reader.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static char *dup_range(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int rd_maps_read(pid_t pid, struct rd_maps *out)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    out->v = NULL;
    out->n = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0, vcap = 0;
    ssize_t len;
    int rc = 0;
    errno = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        struct rd_mapping m = {0};
        int pos = 0;
        /* start-end perms offset major:minor inode [path] */
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 "%n", &m.start,
                   &m.end, m.perms, &m.offset, &m.dev_major, &m.dev_minor, &m.inode, &pos) != 7)
            continue;
        const char *p = line + pos;
        while (*p == ' ' || *p == '\t')
            p++;
        m.path = dup_range(p, strlen(p));
        if (!m.path) {
            rc = -ENOMEM;
            break;
        }
        if (out->n == vcap) {
            size_t nc = vcap ? vcap * 2 : 64;
            struct rd_mapping *nv = realloc(out->v, nc * sizeof *nv);
            if (!nv) {
                free(m.path);
                rc = -ENOMEM;
                break;
            }
            out->v = nv;
            vcap = nc;
        }
        out->v[out->n++] = m;
    }
    /* Reading maps of a process we may not ptrace fails at the first read, not at open. */
    if (rc == 0 && ferror(f))
        rc = errno ? -errno : -EIO;
    free(line);
    fclose(f);
    if (rc != 0)
        rd_maps_free(out);
    return rc;
}

void rd_maps_free(struct rd_maps *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].path);
    free(m->v);
    m->v = NULL;
    m->n = 0;
}

int rd_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        struct iovec local = {(char *)buf + done, len - done};
        struct iovec remote = {(void *)(uintptr_t)(addr + done), len - done};
        if (addr + done < addr) /* wrapped around */
            return -EFAULT;
        ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (n < 0)
            return -errno;
        if (n == 0) /* the rest is not mapped */
            return -EFAULT;
        done += (size_t)n;
    }
    return 0;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

int rd_tasks(pid_t pid, pid_t **tids, size_t *n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    *tids = NULL;
    *n = 0;
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long v = strtol(de->d_name, &end, 10);
        if (*end != '\0' || v <= 0)
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            pid_t *nv = realloc(*tids, nc * sizeof *nv);
            if (!nv) {
                closedir(d);
                free(*tids);
                *tids = NULL;
                *n = 0;
                return -ENOMEM;
            }
            *tids = nv;
            cap = nc;
        }
        (*tids)[(*n)++] = (pid_t)v;
    }
    closedir(d);
    if (*n)
        qsort(*tids, *n, sizeof **tids, cmp_pid);
    return 0;
}

void rd_thread_name(pid_t pid, pid_t tid, char *buf, size_t len)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)pid, (int)tid);
    buf[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(buf, (int)len, f)) {
        size_t n = strlen(buf);
        if (n && buf[n - 1] == '\n')
            buf[n - 1] = '\0';
    } else {
        buf[0] = '\0';
    }
    fclose(f);
}

bool rd_pid_exists(pid_t pid)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    return stat(path, &st) == 0;
}

long rd_tracer_pid(pid_t pid, pid_t tid)
{
    char path[96], line[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long tracer = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "TracerPid:", 10) == 0) {
            tracer = strtol(line + 10, NULL, 10);
            break;
        }
    }
    fclose(f);
    return tracer;
}

bool rd_thread_gone(pid_t pid, pid_t tid)
{
    char path[96], buf[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "tid (comm) S ...": comm may hold spaces and parentheses, the state follows the
     * last ')' */
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return n == 0;
    return p[2] == 'Z' || p[2] == 'X';
}
