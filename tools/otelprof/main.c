/* otelprof: command-line front end. `otelprof <command> [args]`: `inspect` (read what
 * profilers would read) and `record` (an eBPF sampler reusing otelprof_reader). */
#include "cli.h"
#include "../record/record_cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: otelprof <command> [options]\n"
            "       otelprof --help | --version\n"
            "\n"
            "commands:\n"
            "  inspect [--json] PID   show the trace context each thread of PID publishes\n"
            "                         (OTel thread context, OTel process context, custom labels)\n"
            "  record [options]       sample CPU per trace with eBPF (otelprof record --help)\n"
            "\n"
            "Run `otelprof <command> --help` for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("otelprof %s\n", OTELPROF_CLI_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "inspect") == 0)
        return cli_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "record") == 0)
        return cli_record(argc - 1, argv + 1);
    fprintf(stderr, "otelprof: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
