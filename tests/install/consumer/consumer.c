/* A user's program: attach, read back, detach. */
#include <otelprof/otelprof.h>
#include <stdio.h>

int main(void)
{
    otelprof_context c = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
                          {1, 2, 3, 4, 5, 6, 7, 8},
                          OTELPROF_FLAG_SAMPLED};
    otelprof_token t;
    otelprof_context back;
    if (otelprof_attach(&c, NULL, 0, &t) != OTELPROF_OK ||
        otelprof_current(&back, NULL, 0, NULL) != OTELPROF_OK || back.trace_id[15] != 16 ||
        otelprof_detach(&t) != OTELPROF_OK) {
        fprintf(stderr, "consumer: attach/current/detach failed\n");
        return 1;
    }
    printf("consumer ok (otelprof %s)\n", otelprof_version());
    return 0;
}
