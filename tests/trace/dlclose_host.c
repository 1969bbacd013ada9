/* dlclose of a plugin that used the tracing library, while a thread that ran spans through
 * it is still alive: the libraries' per-thread destructors run when that thread exits, so
 * the libraries must stay mapped (linked with -z nodelete). Without that, the thread's exit
 * jumps into unmapped code and the process dies. Does not link otelprof itself.
 *
 *   dlclose_host PLUGIN.so   exit 0 when the thread exited cleanly after the dlclose */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int step; /* 1: spans run, 2: plugin closed */
static int (*run)(void);
static int run_rc = -1;

static void *worker(void *arg)
{
    (void)arg;
    int rc = run();
    pthread_mutex_lock(&mu);
    run_rc = rc;
    step = 1;
    pthread_cond_broadcast(&cv);
    while (step < 2)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL; /* the thread's destructors run now */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlclose_host: dlopen: %s\n", dlerror());
        return 1;
    }
    *(void **)&run = dlsym(h, "plugin_run");
    if (!run) {
        fprintf(stderr, "dlclose_host: no plugin_run\n");
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, worker, NULL) != 0)
        return 1;
    pthread_mutex_lock(&mu);
    while (step < 1)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    if (run_rc != 0) {
        fprintf(stderr, "dlclose_host: plugin_run failed: %d\n", run_rc);
        return 1;
    }
    if (dlclose(h) != 0) {
        fprintf(stderr, "dlclose_host: dlclose: %s\n", dlerror());
        return 1;
    }
    pthread_mutex_lock(&mu);
    step = 2;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
    printf("thread exited cleanly after dlclose\n");
    return 0;
}
