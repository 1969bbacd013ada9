/* `otelprof record`: entry point called by tools/otelprof/main.c. */
#ifndef OTELPROF_RECORD_CLI_H
#define OTELPROF_RECORD_CLI_H

/* argv[0] is "record". Built from record.c with eBPF support, or from record_stub.c,
 * which only explains that it is missing. */
int cli_record(int argc, char **argv);

#endif
