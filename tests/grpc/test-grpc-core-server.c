/* A gRPC C-core server (completion queue, two threads polling it) serving
 * grpc.examples.echo.Echo/UnaryEcho on 127.0.0.1, called by a C-core client in the same
 * process that injects its span context with otelprof_grpc_metadata_inject. The server uses
 * otelprof_grpc_server_call_start/_finish and publishes the call around the handling of
 * each of its completion-queue events with otelprof_grpc_scope_enter/_leave.
 *
 *   test-grpc-core-server CASE   with CASE one of:
 *   unary      the handler sees the client's trace id (otelprof_current) and the SERVER
 *              span as the current span context; the exported SERVER span is the client
 *              span's child with rpc.* attributes and status code 0; threads clean after
 *   error      a handler status INVALID_ARGUMENT: rpc.grpc.status_code=3, ERROR status
 *   no_parent  no traceparent: a new trace, published all the same
 *   hostile    two traceparents, malformed, oversized: the call succeeds, new trace
 *   no_tracer  propagation only: the remote parent itself is published, no span
 *   cancel     the client cancels while the server holds the call: CANCELLED, ERROR
 *   nested     an event handled inside an unrelated publication: the scope shadows it and
 *              restores it on leave */
#define _POSIX_C_SOURCE 200809L
#include <otelprof/grpc_core.h>
#include <otelprof/sdk.h>

#include "test.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#define METHOD "/grpc.examples.echo.Echo/UnaryEcho"

/* ---- EchoRequest / EchoResponse: message 1 = string, encoded by hand ---- */

static grpc_byte_buffer *encode_msg(const char *s)
{
    size_t n = strlen(s);
    char buf[130];
    ASSERT_LT(n, 128);
    buf[0] = 0x0a; /* field 1, length-delimited */
    buf[1] = (char)n;
    memcpy(buf + 2, s, n);
    grpc_slice sl = grpc_slice_from_copied_buffer(buf, n + 2);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return bb;
}

static void decode_msg(grpc_byte_buffer *bb, char *out, size_t cap)
{
    out[0] = '\0';
    if (!bb)
        return;
    grpc_byte_buffer_reader r;
    ASSERT_TRUE(grpc_byte_buffer_reader_init(&r, bb));
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    size_t n = GRPC_SLICE_LENGTH(all);
    const unsigned char *p = GRPC_SLICE_START_PTR(all);
    if (n >= 2 && p[0] == 0x0a && p[1] < 128 && (size_t)p[1] + 2 == n && p[1] < cap) {
        memcpy(out, p + 2, p[1]);
        out[p[1]] = '\0';
    }
    grpc_slice_unref(all);
}

/* ---- the server ---- */

enum ev_kind { EV_NEW_CALL, EV_RECV_DONE, EV_SEND_DONE, EV_CLOSED, EV_SHUTDOWN };

struct srv_call;
struct tag {
    enum ev_kind kind;
    struct srv_call *call;
};

/* What each handled event saw while published. */
struct seen {
    int events;       /* events handled inside a scope */
    int bad;          /* events whose published trace id was not the call's */
    int dirty_after;  /* events after which the thread still had a context */
    int threads_mask; /* which polling threads handled events (bit per thread) */
};

struct srv_call {
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *req;
    grpc_byte_buffer *resp;
    int cancelled;
    otelprof_grpc_server_call oc;
    struct tag t_recv, t_send, t_closed;
    int pending;               /* outstanding tags: freed at 0 */
    grpc_slice status_details; /* must outlive the SEND batch */
    char message[128];
};

struct server {
    grpc_server *srv;
    grpc_completion_queue *cq;
    otelprof_grpc_server_opts opts;
    pthread_t threads[2];
    struct tag t_new, t_shutdown;
    struct srv_call *next; /* the call the outstanding request_call fills */
    pthread_mutex_t mu;
    pthread_mutex_t events_mu; /* held while an event is handled */
    struct seen seen;
    grpc_status_code reply_status; /* what the handler answers */
    atomic_int holding;            /* the cancel case: the server has the call */
    atomic_int shut_down;          /* the shutdown tag came back */
    /* the client's context: every event of a parented call must publish its trace id
     * (and, propagation only, its span id) */
    otelprof_span_context client;
    bool parented;
    bool hold; /* the cancel case: do not answer */
    int port;
    /* shadowing check (nested case): the thread's own publication before each event */
    bool nested;
    otelprof_context outer;
};

static struct server S;

static void request_next(void)
{
    struct srv_call *c = calloc(1, sizeof *c);
    ASSERT_TRUE(c != NULL);
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->md);
    c->t_recv = (struct tag){EV_RECV_DONE, c};
    c->t_send = (struct tag){EV_SEND_DONE, c};
    c->t_closed = (struct tag){EV_CLOSED, c};
    S.next = c;
    S.t_new = (struct tag){EV_NEW_CALL, c};
    ASSERT_EQ(grpc_server_request_call(S.srv, &c->call, &c->details, &c->md, S.cq, S.cq, &S.t_new),
              GRPC_CALL_OK);
}

static void call_unref(struct srv_call *c)
{
    if (--c->pending > 0)
        return;
    otelprof_grpc_server_call_finish(&c->oc, c->cancelled ? GRPC_STATUS_CANCELLED : S.reply_status,
                                     "handler");
    grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    if (c->req)
        grpc_byte_buffer_destroy(c->req);
    if (c->resp)
        grpc_byte_buffer_destroy(c->resp);
    free(c);
}

static void fib_burn(void)
{
    volatile unsigned long x = 0;
    for (int i = 0; i < 100000; i++)
        x += (unsigned long)i;
}

/* One completion-queue event of a call, as the application handles it. Runs published. */
static void handle(struct tag *t, bool ok)
{
    struct srv_call *c = t->call;
    switch (t->kind) {
    case EV_NEW_CALL: {
        if (!ok) { /* the server is shutting down */
            free(c);
            return;
        }
        pthread_mutex_lock(&S.mu);
        request_next(); /* keep accepting */
        pthread_mutex_unlock(&S.mu);
        /* the span starts here; the rest of this event runs published (see poll_loop) */
        grpc_op ops[2];
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[0].data.recv_close_on_server.cancelled = &c->cancelled;
        c->pending = 1;
        ASSERT_EQ(grpc_call_start_batch(c->call, ops, 1, &c->t_closed, NULL), GRPC_CALL_OK);
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_RECV_MESSAGE;
        ops[0].data.recv_message.recv_message = &c->req;
        c->pending++;
        ASSERT_EQ(grpc_call_start_batch(c->call, ops, 1, &c->t_recv, NULL), GRPC_CALL_OK);
        return;
    }
    case EV_RECV_DONE: {
        decode_msg(c->req, c->message, sizeof c->message);
        fib_burn(); /* the handler's CPU: what a profiler samples, published */
        if (S.hold) {
            atomic_store(&S.holding, 1);
            call_unref(c); /* never answer; RECV_CLOSE reports the client's cancel */
            return;
        }
        grpc_op ops[3];
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        c->resp = encode_msg(c->message);
        ops[1].data.send_message.send_message = c->resp;
        ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[2].data.send_status_from_server.status = S.reply_status;
        c->status_details = grpc_slice_from_static_string("handler");
        ops[2].data.send_status_from_server.status_details = &c->status_details;
        ASSERT_EQ(grpc_call_start_batch(c->call, ops, 3, &c->t_send, NULL), GRPC_CALL_OK);
        return; /* the RECV_MESSAGE reference passes to SEND */
    }
    case EV_SEND_DONE:
    case EV_CLOSED:
        call_unref(c);
        return;
    case EV_SHUTDOWN:
        atomic_store(&S.shut_down, 1);
        return;
    }
}

static void *poll_loop(void *arg)
{
    int self = (int)(intptr_t)arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(S.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return NULL;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        struct tag *t = ev.tag;
        if (t->kind == EV_SHUTDOWN) {
            handle(t, ev.success);
            continue;
        }
        /* One event at a time: gRPC orders a call's events (the next batch is started
         * while handling the previous one), but libgrpc is not TSan-instrumented, so the
         * TSan build would see the call's state handed between the pollers unordered. */
        pthread_mutex_lock(&S.events_mu);
        struct srv_call *c = t->call;
        if (t->kind == EV_NEW_CALL && ev.success)
            ASSERT_OK(otelprof_grpc_server_call_start(&S.opts, &c->details, &c->md, &c->oc));
        /* nested case: the thread holds an unrelated publication of its own */
        otelprof_token outer_tok = OTELPROF_TOKEN_INIT;
        if (S.nested)
            ASSERT_OK(otelprof_attach(&S.outer, NULL, 0, &outer_tok));
        bool have_ctx = !(t->kind == EV_NEW_CALL && !ev.success);
        otelprof_span_context want;
        memset(&want, 0, sizeof want);
        if (have_ctx)
            want = c->oc.context;
        otelprof_grpc_scope sc;
        ASSERT_OK(otelprof_grpc_scope_enter(have_ctx ? &want : NULL, &sc));
        otelprof_context cur;
        otelprof_status rc = otelprof_current(&cur, NULL, 0, NULL);
        bool good;
        if (have_ctx && otelprof_span_context_is_valid(&want)) {
            const otelprof_span_context *cs = otelprof_current_span_context();
            good = rc == OTELPROF_OK && memcmp(cur.trace_id, want.trace_id, 16) == 0 &&
                   memcmp(cur.span_id, want.span_id, 8) == 0 && cs &&
                   memcmp(cs->span_id, want.span_id, 8) == 0;
            if (S.parented)
                good = good && memcmp(cur.trace_id, S.client.trace_id, 16) == 0;
            if (S.parented && !S.opts.tracer)
                good = good && memcmp(cur.span_id, S.client.span_id, 8) == 0;
        } else {
            good = rc == OTELPROF_E_NO_CONTEXT; /* cleared, not the outer one */
        }
        handle(t, ev.success);
        ASSERT_OK(otelprof_grpc_scope_leave(&sc));
        bool clean = true;
        if (S.nested) {
            /* the outer publication is back */
            clean = otelprof_current(&cur, NULL, 0, NULL) == OTELPROF_OK &&
                    memcmp(cur.trace_id, S.outer.trace_id, 16) == 0;
            ASSERT_OK(otelprof_detach(&outer_tok));
        }
        clean = clean && otelprof_current(&cur, NULL, 0, NULL) == OTELPROF_E_NO_CONTEXT;
        pthread_mutex_unlock(&S.events_mu);
        pthread_mutex_lock(&S.mu);
        S.seen.events++;
        S.seen.bad += !good;
        S.seen.dirty_after += !clean;
        S.seen.threads_mask |= 1 << self;
        pthread_mutex_unlock(&S.mu);
    }
}

static void server_start(otelprof_tracer *tracer)
{
    S.srv = grpc_server_create(NULL, NULL);
    S.cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(S.srv, S.cq, NULL);
    grpc_server_credentials *cr = grpc_insecure_server_credentials_create();
    S.port = grpc_server_add_http2_port(S.srv, "127.0.0.1:0", cr);
    grpc_server_credentials_release(cr);
    ASSERT_GT(S.port, 0);
    grpc_server_start(S.srv);
    pthread_mutex_init(&S.mu, NULL);
    pthread_mutex_init(&S.events_mu, NULL);
    S.opts = OTELPROF_GRPC_SERVER_OPTS(.tracer = tracer);
    request_next();
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&S.threads[i], NULL, poll_loop, (void *)(intptr_t)i), 0);
}

static void server_stop(void)
{
    S.t_shutdown = (struct tag){EV_SHUTDOWN, NULL};
    grpc_server_shutdown_and_notify(S.srv, S.cq, &S.t_shutdown);
    grpc_server_cancel_all_calls(S.srv);
    /* the shutdown tag, and the pending request_call failing, come through the pollers */
    for (int i = 0; i < 2000 && !atomic_load(&S.shut_down); i++) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ASSERT_TRUE(atomic_load(&S.shut_down));
    grpc_server_destroy(S.srv);
    grpc_completion_queue_shutdown(S.cq);
    for (int i = 0; i < 2; i++)
        pthread_join(S.threads[i], NULL);
    grpc_completion_queue_destroy(S.cq);
    pthread_mutex_destroy(&S.mu);
    pthread_mutex_destroy(&S.events_mu);
}

/* ---- the client ---- */

struct reply {
    grpc_status_code status;
    char message[128];
};

/* One unary call with extra metadata; cancel: cancel once the server holds the call. */
static void client_call(const grpc_metadata *md, size_t n_md, const char *msg, bool cancel,
                        struct reply *out)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", S.port);
    grpc_channel_credentials *cc = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, cc, NULL);
    grpc_channel_credentials_release(cc);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(20, GPR_TIMESPAN));
    grpc_slice method = grpc_slice_from_static_string(METHOD);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                               deadline, NULL);
    grpc_byte_buffer *req = encode_msg(msg), *resp = NULL;
    grpc_metadata_array init_md, trailing;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trailing);
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = (grpc_metadata *)md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &resp;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &out->status;
    ops[5].data.recv_status_on_client.status_details = &details;
    int tag = 1;
    ASSERT_EQ(grpc_call_start_batch(call, ops, 6, &tag, NULL), GRPC_CALL_OK);
    if (cancel) {
        for (int i = 0; i < 2000 && !atomic_load(&S.holding); i++) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        ASSERT_TRUE(atomic_load(&S.holding));
        ASSERT_EQ(grpc_call_cancel(call, NULL), GRPC_CALL_OK);
    }
    grpc_event ev = grpc_completion_queue_pluck(cq, &tag, deadline, NULL);
    ASSERT_EQ(ev.type, GRPC_OP_COMPLETE);
    decode_msg(resp, out->message, sizeof out->message);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trailing);
    grpc_byte_buffer_destroy(req);
    if (resp)
        grpc_byte_buffer_destroy(resp);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
}

/* ---- checks ---- */

static const otelprof_kv *attr(const otelprof_span_data *d, const char *key)
{
    for (size_t i = 0; i < d->n_attrs; i++)
        if (strcmp(d->attrs[i].key, key) == 0)
            return &d->attrs[i];
    return NULL;
}

static void expect_str(const otelprof_span_data *d, const char *key, const char *want)
{
    const otelprof_kv *kv = attr(d, key);
    ASSERT_TRUE(kv != NULL);
    ASSERT_EQ(kv->value.type, OTELPROF_VALUE_STRING);
    ASSERT_EQ(kv->value.u.str.len, strlen(want));
    ASSERT_TRUE(memcmp(kv->value.u.str.ptr, want, strlen(want)) == 0);
}

/* Wait for the server to finish the call (the span ends on the last event). */
static const otelprof_span_data *one_span(otelprof_span_exporter *mem)
{
    for (int i = 0; i < 2000 && otelprof_memory_exporter_count(mem) < 1; i++) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ASSERT_EQ(otelprof_memory_exporter_count(mem), 1);
    return otelprof_memory_exporter_get(mem, 0);
}

/* want: the events of the call (NEW_CALL, RECV_DONE, SEND_DONE, CLOSED; no SEND when the
 * server held the call). The client can have its reply before the pollers are through
 * with the last events: wait for them. */
static void check_threads_clean_and_covered(int want)
{
    struct seen s;
    for (int i = 0;; i++) {
        pthread_mutex_lock(&S.mu);
        s = S.seen;
        pthread_mutex_unlock(&S.mu);
        if (s.events >= want || i == 2500)
            break;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("events handled %d, wrong context %d, left published %d, polling threads mask %d\n",
           s.events, s.bad, s.dirty_after, s.threads_mask);
    ASSERT_EQ(s.events, want);
    ASSERT_EQ(s.bad, 0);
    ASSERT_EQ(s.dirty_after, 0);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        TEST_FAIL("usage: %s CASE", argv[0]);
    const char *cs = argv[1];
    grpc_init();
    otelprof_span_exporter *mem = otelprof_memory_exporter_new(0);
    otelprof_span_processor *proc = otelprof_simple_processor_new(mem);
    otelprof_status err = OTELPROF_OK;
    otelprof_tracer_provider *prov =
        otelprof_sdk_provider_new(&OTELPROF_SDK_OPTS(.sampler = otelprof_sampler_always_on(),
                                                     .processors = &proc, .n_processors = 1),
                                  &err);
    ASSERT_OK(err);
    otelprof_tracer *tracer = otelprof_tracer_provider_get_tracer(prov, "test", NULL, NULL);
    bool with_tracer = strcmp(cs, "no_tracer") != 0;
    S.reply_status = strcmp(cs, "error") == 0 ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_OK;
    S.hold = strcmp(cs, "cancel") == 0;
    S.nested = strcmp(cs, "nested") == 0;
    memset(S.outer.trace_id, 0x77, 16);
    memset(S.outer.span_id, 0x78, 8);
    S.outer.trace_flags = 1;

    /* the client's span context, as a client span would have it */
    otelprof_span_context client;
    memset(&client, 0, sizeof client);
    otelprof_random_trace_id(client.trace_id);
    otelprof_random_span_id(client.span_id);
    client.trace_flags = OTELPROF_FLAG_SAMPLED;
    S.client = client;
    S.parented = strcmp(cs, "no_parent") != 0 && strcmp(cs, "hostile") != 0;
    server_start(with_tracer ? tracer : NULL);
    grpc_metadata md[8];
    size_t n = 0;
    if (strcmp(cs, "no_parent") != 0 && strcmp(cs, "hostile") != 0)
        ASSERT_OK(otelprof_grpc_metadata_inject(NULL, &client, NULL, md, 8, &n));
    if (strcmp(cs, "hostile") == 0) {
        static char big[6000];
        memset(big, 'f', sizeof big - 1);
        ASSERT_OK(otelprof_grpc_metadata_inject(NULL, &client, NULL, md, 8, &n));
        md[n].key = grpc_slice_from_static_string("traceparent");
        md[n++].value = grpc_slice_from_static_string("00-zz-1-01");
        md[n].key = grpc_slice_from_static_string("tracestate");
        md[n++].value = grpc_slice_from_static_string(big);
    }
    struct reply r = {0};
    client_call(md, n, "hello", S.hold, &r);
    printf("client: status %d message \"%s\"\n", (int)r.status, r.message);

    if (S.hold) {
        ASSERT_EQ(r.status, GRPC_STATUS_CANCELLED);
    } else {
        ASSERT_EQ(r.status, S.reply_status);
        ASSERT_STR_EQ(r.message, "hello");
    }
    if (with_tracer) {
        const otelprof_span_data *d = one_span(mem);
        ASSERT_STR_EQ(d->name, "grpc.examples.echo.Echo/UnaryEcho");
        ASSERT_EQ(d->kind, OTELPROF_SPAN_KIND_SERVER);
        expect_str(d, "rpc.system", "grpc");
        expect_str(d, "rpc.service", "grpc.examples.echo.Echo");
        expect_str(d, "rpc.method", "UnaryEcho");
        const otelprof_kv *code = attr(d, "rpc.grpc.status_code");
        ASSERT_TRUE(code != NULL);
        bool parented = strcmp(cs, "no_parent") != 0 && strcmp(cs, "hostile") != 0;
        if (parented) {
            ASSERT_MEM_EQ(d->context.trace_id, client.trace_id, 16);
            ASSERT_MEM_EQ(d->parent_span_id, client.span_id, 8);
            ASSERT_TRUE(d->parent_is_remote);
        } else {
            ASSERT_TRUE(memcmp(d->context.trace_id, client.trace_id, 16) != 0);
            static const uint8_t zero[8];
            ASSERT_MEM_EQ(d->parent_span_id, zero, 8);
        }
        if (S.hold) {
            ASSERT_EQ(code->value.u.i, GRPC_STATUS_CANCELLED);
            ASSERT_EQ(d->status, OTELPROF_SPAN_STATUS_ERROR);
        } else if (S.reply_status != GRPC_STATUS_OK) {
            ASSERT_EQ(code->value.u.i, 3);
            ASSERT_EQ(d->status, OTELPROF_SPAN_STATUS_ERROR);
            ASSERT_STR_EQ(d->status_description, "handler");
        } else {
            ASSERT_EQ(code->value.u.i, 0);
            ASSERT_EQ(d->status, OTELPROF_SPAN_STATUS_UNSET);
        }
    } else {
        /* propagation only: no span, and the events saw the client's own ids (checked
         * per event against c->oc.context, which must then be the remote parent) */
        ASSERT_EQ(otelprof_memory_exporter_count(mem), 0);
    }
    check_threads_clean_and_covered(S.hold ? 3 : 4);
    otelprof_grpc_metadata_release(md, n);
    server_stop();
    otelprof_tracer_provider_free(prov);
    grpc_shutdown();
    printf("ok\n");
    return 0;
}
