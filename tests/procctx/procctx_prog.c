/* Publisher for the out-of-process check of the OTel Process Context (procctx_check.py).
 *
 * Initialises otelprof with a service name, two resource attributes and a few attribute
 * keys (UTF-8 included), prints "ready <pid> <formats>", then obeys one command per line
 * on stdin, answering each with one line:
 *   key NAME    register NAME          -> "ok <index>"
 *   fork        fork a child that waits -> "child <pid>" once the child has published
 *   killchild   end and reap the child  -> "ok"
 *   shutdown    otelprof_shutdown()     -> "ok"
 * EOF or "quit" ends the program. Replies go through write(2) so that the child (which
 * shares stdout) never flushes a copy of the parent's stdio buffer.
 */
#define _GNU_SOURCE
#include <otelprof/context.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Registration order is what threadlocal.attribute_key_map must list. */
static const char *const keys[] = {"http.route", "user.id",
                                   "r\xC3\xA9gion.\xE5\x90\x8D\xE5\x89\x8D", "db.system"};

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0 && write(1, buf, (size_t)n) != n)
        exit(3);
}

static void must(otelprof_status rc, const char *what)
{
    if (rc != OTELPROF_OK) {
        fprintf(stderr, "procctx_prog: %s: %s\n", what, otelprof_strerror(rc));
        exit(1);
    }
}

int main(void)
{
    /* formats stays 0 so that OTELPROF_FORMATS decides, as in a real deployment. */
    must(otelprof_init(&OTELPROF_INIT_OPTS(.service_name = "procctx-test")), "init");
    must(otelprof_resource_set("service.version", "1.2.3"), "resource_set");
    must(otelprof_resource_set("deployment.environment.name", "t\xC3\xA9st"), "resource_set");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        uint32_t idx;
        must(otelprof_key_register(keys[i], &idx), "key_register");
        if (idx != i) {
            fprintf(stderr, "procctx_prog: key %zu got index %u\n", i, idx);
            return 1;
        }
    }
    reply("ready %d %u\n", (int)getpid(), otelprof_formats());

    pid_t child = 0;
    char line[512];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "key ", 4) == 0) {
            uint32_t idx;
            must(otelprof_key_register(line + 4, &idx), "key_register");
            reply("ok %ld\n", (long)idx);
        } else if (strcmp(line, "fork") == 0) {
            int ready_pipe[2];
            if (pipe(ready_pipe) != 0)
                return 1;
            child = fork();
            if (child < 0)
                return 1;
            if (child == 0) {
                /* otelprof republished from its atfork handler before fork() returned
                 * here; tell the parent, then wait to be killed. */
                close(ready_pipe[0]);
                if (write(ready_pipe[1], "r", 1) != 1)
                    _exit(3);
                for (;;)
                    pause();
            }
            close(ready_pipe[1]);
            char c;
            if (read(ready_pipe[0], &c, 1) != 1)
                return 1;
            close(ready_pipe[0]);
            reply("child %ld\n", (long)child);
        } else if (strcmp(line, "killchild") == 0) {
            if (child > 0) {
                kill(child, SIGKILL);
                waitpid(child, NULL, 0);
                child = 0;
            }
            reply("ok\n");
        } else if (strcmp(line, "shutdown") == 0) {
            otelprof_shutdown();
            reply("ok\n");
        } else if (strcmp(line, "quit") == 0) {
            break;
        } else {
            reply("error\n");
        }
    }
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    return 0;
}
