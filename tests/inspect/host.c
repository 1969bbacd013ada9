/* Host for the dlopen link mode: it does not link otelprof; it dlopen()s the plugin (which
 * links libotelprof.so) and runs the plugin's threads, so every otelprof module in the
 * process was loaded by dlopen. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "inspect host: dlopen: %s\n", dlerror());
        return 1;
    }
    int (*run)(void);
    *(void **)&run = dlsym(h, "inspect_plugin_run");
    if (!run) {
        fprintf(stderr, "inspect host: dlsym: %s\n", dlerror());
        return 1;
    }
    return run();
}
