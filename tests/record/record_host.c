/* Host for the dlopen case of the record tests: it does not link otelprof; it dlopen()s
 * the plugin (which links libotelprof.so) and runs record_target_main from it, so the
 * otelprof modules of the process were all loaded by dlopen. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PLUGIN.so ARGS...\n", argv[0]);
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "record host: dlopen: %s\n", dlerror());
        return 1;
    }
    int (*run)(int, char **);
    *(void **)&run = dlsym(h, "record_target_main");
    if (!run) {
        fprintf(stderr, "record host: dlsym: %s\n", dlerror());
        return 1;
    }
    return run(argc - 1, argv + 1);
}
