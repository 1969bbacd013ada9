/* otelprof: status codes, logging and the export macro shared by every component.
 *
 * Error scheme (libbpf 1.0 / libuv style): every function that can fail returns an
 * otelprof_status: 0 on success, a negative code otherwise. otelprof_strerror() gives
 * the text. Codes are only ever appended; a retired code keeps its number.
 */
#ifndef OTELPROF_COMMON_H
#define OTELPROF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(OTELPROF_BUILDING) && defined(__GNUC__)
#define OTELPROF_API __attribute__((visibility("default")))
#else
#define OTELPROF_API
#endif

/* X(name, value, message). Append only. E_TIMEOUT (since 0.2): an operation gave up at
 * its timeout (force_flush, shutdown); work it started may go on in the background. */
#define OTELPROF_STATUS_MAP(X)                                                                     \
    X(OK, 0, "success")                                                                            \
    X(E_INVAL, -1, "invalid argument")                                                             \
    X(E_NOMEM, -2, "out of memory")                                                                \
    X(E_INVALID_ID, -3, "trace id or span id is all zero")                                         \
    X(E_TOO_LARGE, -4, "attributes do not fit in the 640-byte thread record")                      \
    X(E_UTF8, -5, "value is not valid UTF-8")                                                      \
    X(E_UNKNOWN_KEY, -6, "attribute key index is not registered")                                  \
    X(E_KEY_LIMIT, -7, "the attribute key map is full (256 keys)")                                 \
    X(E_DEPTH, -8, "too many nested contexts on this thread")                                      \
    X(E_STALE_TOKEN, -9, "token was already detached or unwound by an outer detach")               \
    X(E_WRONG_THREAD, -10, "token belongs to another thread")                                      \
    X(E_NO_CONTEXT, -11, "no context is attached to this thread")                                  \
    X(E_SYSTEM, -12, "a system call failed (see the log callback for errno)")                      \
    X(E_DUP_KEY, -13, "the same attribute key appears twice in one context")                       \
    X(E_OPTS, -14, "options struct has unknown non-zero fields (built against a newer otelprof)")  \
    X(E_BUF_TOO_SMALL, -15, "output buffer too small")                                             \
    X(E_NOT_SUPPORTED, -16, "not supported on this platform or build")                             \
    X(E_PARSE, -17, "malformed input")                                                             \
    X(E_TIMEOUT, -18, "the operation did not complete within its timeout")

typedef enum otelprof_status {
#define OTELPROF_STATUS_ENUM_(name, value, msg) OTELPROF_##name = (value),
    OTELPROF_STATUS_MAP(OTELPROF_STATUS_ENUM_)
#undef OTELPROF_STATUS_ENUM_
} otelprof_status;

/* Text for a status ("success", "invalid argument", ...); never NULL, static storage.
 * Thread-safe, async-signal-safe. Since 0.1. */
OTELPROF_API const char *otelprof_strerror(otelprof_status status);

/* Symbolic name of a status ("OTELPROF_E_INVAL"); "OTELPROF_E_UNKNOWN" for a value that
 * is no code. Thread-safe, async-signal-safe. Since 0.1. */
OTELPROF_API const char *otelprof_status_name(otelprof_status status);

typedef enum otelprof_log_level {
    OTELPROF_LOG_ERROR = 0,
    OTELPROF_LOG_WARN = 1,
    OTELPROF_LOG_INFO = 2,
    OTELPROF_LOG_DEBUG = 3,
} otelprof_log_level;

/* Receives details a status code cannot carry (which env var was malformed, which
 * syscall failed). Called from the thread that hit the condition; never from the
 * attach/detach path. `msg` is valid only during the call. */
typedef void (*otelprof_log_fn)(otelprof_log_level level, const char *msg, void *arg);

/* Install a log callback (NULL: discard, the default — a library inside a host service
 * does not write to stderr unless asked). The environment variable OTELPROF_LOG=stderr
 * installs a stderr logger at first use. Returns the previous callback in *prev_fn /
 * *prev_arg when those are non-NULL. The swap is atomic. Thread-safe. Since 0.1. */
OTELPROF_API void otelprof_set_log(otelprof_log_fn fn, void *arg, otelprof_log_fn *prev_fn,
                                   void **prev_arg);

/* Send a message to the installed log callback (printf format; nothing happens without
 * one). For otelprof's own layers (tracing SDK, middleware) and for users who want their
 * messages in the same place. Thread-safe; not async-signal-safe. Since 0.1. */
OTELPROF_API void otelprof_log(otelprof_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif
