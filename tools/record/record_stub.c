/* `otelprof record` in a build without eBPF support (no clang BPF target, bpftool, libbpf,
 * zlib or kernel BTF at configure time): say so instead of pretending to sample. */
#include "record_cli.h"

#include <stdio.h>

#ifndef OTELPROF_RECORD_MISSING
#define OTELPROF_RECORD_MISSING "unknown"
#endif

int cli_record(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr,
            "otelprof record: this otelprof was built without eBPF support (missing at build "
            "time: %s).\nRebuild with clang, bpftool, libbpf-dev, zlib and a kernel with BTF "
            "(/sys/kernel/btf/vmlinux).\n",
            OTELPROF_RECORD_MISSING);
    return 1;
}
