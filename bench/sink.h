/* A local OTLP/HTTP sink for the benchmarks: a forked child on 127.0.0.1 that reads each
 * HTTP/1.1 request and answers 200 with an empty body, so that an exporter's own work is
 * what gets measured, with a process per connection. Header-only (static functions):
 * include it from one file per benchmark. The children die with their parent
 * (PR_SET_PDEATHSIG).
 */
#ifndef OTELPROF_BENCH_SINK_H
#define OTELPROF_BENCH_SINK_H

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

static bool read_full(int fd, char *buf, size_t n)
{
    while (n) {
        ssize_t k = read(fd, buf, n);
        if (k <= 0)
            return false;
        buf += k;
        n -= (size_t)k;
    }
    return true;
}

/* Serve one connection: requests until EOF. */
static void serve(int c)
{
    static char body[1 << 16];
    char hdr[8192];
    size_t have = 0;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                             "Content-Length: 0\r\n\r\n";
    for (;;) {
        char *end = NULL;
        while (!(end = memmem(hdr, have, "\r\n\r\n", 4))) {
            if (have == sizeof hdr)
                return;
            ssize_t k = read(c, hdr + have, sizeof hdr - have);
            if (k <= 0)
                return;
            have += (size_t)k;
        }
        size_t hlen = (size_t)(end - hdr) + 4;
        size_t clen = 0;
        for (char *p = hdr; p < end; p++) {
            if ((p == hdr || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
                clen = strtoul(p + 15, NULL, 10);
                break;
            }
        }
        size_t extra = have - hlen; /* body bytes already read */
        if (extra > clen)
            extra = clen;
        size_t left = clen - extra;
        while (left) {
            size_t k = left < sizeof body ? left : sizeof body;
            if (!read_full(c, body, k))
                return;
            left -= k;
        }
        memmove(hdr, hdr + hlen + extra, have - hlen - extra);
        have -= hlen + extra;
        if (write(c, ok, sizeof ok - 1) != (ssize_t)(sizeof ok - 1))
            return;
    }
}

/* Start the sink; *port receives its port. */
static pid_t sink_start(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("sink");
        exit(1);
    }
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGCHLD, SIG_IGN); /* no zombies */
        for (;;) {
            int c = accept(fd, NULL, NULL);
            if (c < 0)
                continue;
            /* a process per connection: exporters keep theirs open (keep-alive) */
            if (fork() == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(fd);
                int one = 1;
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                serve(c);
                _exit(0);
            }
            close(c);
        }
    }
    close(fd);
    return pid;
}

#endif
