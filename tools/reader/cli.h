/* Commands of the `otelprof` command-line tool (tools/otelprof). */
#ifndef OTELPROF_CLI_H
#define OTELPROF_CLI_H

#ifndef OTELPROF_CLI_VERSION /* set by the build from the project version */
#define OTELPROF_CLI_VERSION "0.1.0"
#endif

/* Exit codes */
#define CLI_EXIT_OK    0
#define CLI_EXIT_ERROR 1 /* the command could not do its job; stderr says why */
#define CLI_EXIT_USAGE 2

/* `otelprof inspect [--json] PID`; argv[0] is "inspect". */
int cli_inspect(int argc, char **argv);

#endif
