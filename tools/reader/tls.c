/* Per-thread half of the TLS resolution: stop the thread, read its thread pointer and,
 * for dynamic TLS, walk glibc's DTV. */
#define _GNU_SOURCE
#include "reader.h"

#include <errno.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

/* glibc x86-64: tcbhead_t { void *tcb; dtv_t *dtv; void *self; ... } at tp; dtv entries
 * are 16 bytes { void *val; bool is_static; }, dtv[-1].counter is the slot count and
 * dtv[0].counter the generation. */
#define TCB_DTV_OFFSET      8
#define DTV_ENTRY           16
#define TLS_DTV_UNALLOCATED UINT64_MAX

int rd_thread_stop(pid_t tid, int *pending_sig)
{
    *pending_sig = 0;
    if (ptrace(PTRACE_SEIZE, tid, 0, 0) != 0)
        return -errno;
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0) {
        int e = errno;
        (void)ptrace(PTRACE_DETACH, tid, 0, 0);
        return -e;
    }
    for (;;) {
        int status;
        pid_t r = waitpid(tid, &status, __WALL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            (void)ptrace(PTRACE_DETACH, tid, 0, 0);
            return e == ECHILD ? -ESRCH : -e;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status))
            return -ESRCH;
        if (WIFSTOPPED(status)) {
            /* A signal-delivery-stop can come before the interrupt's event stop: the thread
             * is stopped all the same, and the signal must be delivered on detach. */
            if ((status >> 16) != PTRACE_EVENT_STOP)
                *pending_sig = WSTOPSIG(status);
            return 0;
        }
    }
}

void rd_thread_release(pid_t tid, int pending_sig)
{
    (void)ptrace(PTRACE_DETACH, tid, 0, (void *)(long)pending_sig);
}

int rd_thread_pointer(pid_t tid, uint64_t *tp)
{
#if defined(__x86_64__)
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, tid, 0, &regs) != 0)
        return -errno;
    *tp = regs.fs_base;
    return 0;
#else
    /* aarch64 would read TPIDR_EL0 with PTRACE_GETREGSET NT_ARM_TLS, but its TLS layout
     * (variant I) and relocation types differ: not implemented. */
    (void)tid;
    *tp = 0;
    return -ENOTSUP;
#endif
}

int rd_tls_address(pid_t pid, uint64_t tp, const struct rd_tls_loc *loc, uint64_t *addr)
{
    switch (loc->kind) {
    case RD_TLS_STATIC:
        *addr = tp + (uint64_t)loc->var_offset;
        return 0;
    case RD_TLS_DTV: {
        uint64_t dtv, hdr[2], gen[2], ent[2];
        int rc = rd_mem_read(pid, tp + TCB_DTV_OFFSET, &dtv, 8);
        if (rc != 0)
            return rc;
        if (dtv < DTV_ENTRY)
            return -EFAULT;
        if ((rc = rd_mem_read(pid, dtv - DTV_ENTRY, hdr, sizeof hdr)) != 0 ||
            (rc = rd_mem_read(pid, dtv, gen, sizeof gen)) != 0)
            return rc;
        /* Slot beyond this thread's DTV, or a DTV older than the module: glibc would
         * update it on the thread's next access; until then the thread has no storage. */
        if (loc->module_id > hdr[0] || (loc->gen_count && gen[0] < loc->gen_count))
            return 1;
        if ((rc = rd_mem_read(pid, dtv + loc->module_id * DTV_ENTRY, ent, sizeof ent)) != 0)
            return rc;
        if (ent[0] == TLS_DTV_UNALLOCATED || ent[0] == 0)
            return 1;
        *addr = ent[0] + loc->dtv_offset;
        return 0;
    }
    default:
        return -ENOENT;
    }
}
