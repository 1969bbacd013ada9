/* otelprof gRPC C++ interceptors (header-only, C++17, grpc++ >= 1.51 experimental
 * interceptor API) over otelprof's C API. Link: otelprof::grpcpp (CMake) =
 * libotelprof-trace + libotelprof + grpc++. See docs/grpc.md.
 *
 *   ServerInterceptorFactory: per call, at POST_RECV_INITIAL_METADATA, extracts
 *     traceparent/tracestate (and baggage) from the client metadata (every value: two
 *     traceparent entries make the parent invalid), starts a SERVER span through the
 *     configured tracer (rpc.system=grpc, rpc.service, rpc.method, network.peer.*; at the end
 *     rpc.grpc.status_code and ERROR status on a non-OK code, CANCELLED or
 *     DEADLINE_EXCEEDED when the client gave up), registers the call's span context under
 *     its grpc::ServerContextBase (see CallScope), and publishes it (otelprof_attach +
 *     otelprof_scope_enter) on the thread running that hook. The publication is undone on
 *     that same thread at the first of PRE_SEND_STATUS, POST_RECV_CLOSE or the
 *     interceptor's destruction that runs there, or else by the next call that starts on
 *     that thread (the state is kept per thread). With the synchronous API these all run
 *     on the thread that runs the handler, so the handler runs published and the thread is
 *     clean afterwards whatever the outcome.
 *   CallScope: publishes a call's context on the calling thread for a C++ scope, for code
 *     that runs outside the handler: callback reactors (OnReadDone, OnWriteDone, OnDone...),
 *     async-API tag handling, work handed to other threads.
 *   ClientInterceptorFactory: at PRE_SEND_INITIAL_METADATA, injects the calling thread's
 *     current span context (otelprof_current_span_context, else the published thread
 *     context of otelprof_current) as traceparent/tracestate, and the thread's baggage (see
 *     BaggageScope) when the propagators include baggage; with ClientOptions::tracer,
 *     starts a CLIENT span child of it, injects the CLIENT span's context instead, and ends
 *     it at POST_RECV_STATUS.
 *   BaggageScope: the baggage that client calls started on the calling thread send, for a
 *     C++ scope (e.g. a handler relaying what CallBaggage gave it to its own calls).
 */
#ifndef OTELPROF_GRPC_H
#define OTELPROF_GRPC_H

#ifdef __cplusplus

#include <otelprof/context.h>
#include <otelprof/propagation.h>
#include <otelprof/trace.h>

#include <grpcpp/server_context.h>
#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/interceptor.h>
#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>
#include <grpcpp/support/string_ref.h>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace otelprof_grpc
{

/* Server options. Copied by the factory. */
struct ServerOptions {
    /* The tracer SERVER spans are started with. nullptr: no span; a valid remote parent
     * is then still published (propagation only). Must outlive the server. */
    otelprof_tracer *tracer = nullptr;
    /* nullptr: otelprof_propagators_from_env() when the factory is made. */
    const otelprof_propagators *propagators = nullptr;
    /* Full method names ("/pkg.Service/Method"). A call is traced when include_prefixes is
     * empty or one of them prefixes the method, and no ignore prefix does. */
    std::vector<std::string> include_prefixes;
    std::vector<std::string> ignore_prefixes;
    /* Publish the context on the hook thread (attach + scope). */
    bool publish = true;
    /* Methods served with the async (completion-queue) API ("/" for all). For them the
     * context is not published on the hook thread: POST_RECV_INITIAL_METADATA runs inside
     * CompletionQueue::Next() of whatever thread polls, which then goes on to handle other
     * calls' tags; publish it with CallScope(&server_context) around the tag handling.
     * Cancellation: ServerContext::IsCancelled() is never asked for these methods (for
     * an async call grpc++ 1.51 crashes without AsyncNotifyWhenDone); they are still
     * marked DEADLINE_EXCEEDED when their deadline has passed, and CANCELLED /
     * DEADLINE_EXCEEDED when they end without a status. */
    std::vector<std::string> async_prefixes;
    /* Sync API: also ask ServerContext::IsCancelled() at PRE_SEND_STATUS, so that a call
     * the client cancelled before its deadline is recorded CANCELLED rather than with the
     * handler's status. Off by default because of its price: with grpc++ 1.51 it plucks the
     * call's completion queue, measured at about +15 us of server CPU per call (a trivial
     * unary call costs ~21 us; bench/grpc, mode "cancel"). Without it a sync call is still
     * marked DEADLINE_EXCEEDED when its deadline has passed (a clock read). Callback-API
     * calls are always asked (cheap there: an atomic flag). Only on grpc++'s sync-server
     * threads, where 1.51 makes it safe. */
    bool check_cancelled = false;
    /* Register sync-API calls too, so that CallScope(&ctx) / CallSpanContext(&ctx) find them
     * from threads other than the handler's. Callback and async calls, and calls that
     * brought baggage, are always registered. Off by default: a sync handler runs published,
     * and can hand otelprof_current_span_context() to other threads (CallScope(span
     * context)); registering costs a locked map insert and erase per call. */
    bool register_sync_calls = false;
};

/* Client options. Copied by the factory. */
struct ClientOptions {
    /* nullptr: otelprof_propagators_from_env() when the factory is made. */
    const otelprof_propagators *propagators = nullptr;
    /* With a tracer, each call gets a CLIENT span (child of the caller's current span
     * context), whose context is injected instead of the caller's. Must outlive the
     * channel. */
    otelprof_tracer *tracer = nullptr;
    /* The channel's target as given to CreateCustomChannelWithInterceptors (grpc++ 1.51
     * does not expose it to interceptors): "host:port", "dns:///host:port", "ipv4:a.b.c.d:p",
     * "[v6]:port". Gives server.address / server.port; empty: not recorded. */
    std::string target;
};

namespace detail
{

using RecvMap = std::multimap<grpc::string_ref, grpc::string_ref>;
using SendMap = std::multimap<std::string, std::string>;

inline bool name_eq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = static_cast<char>(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

inline size_t recv_count(void *user, const char *name, size_t name_len)
{
    const RecvMap *m = static_cast<const RecvMap *>(user);
    size_t n = 0;
    for (const auto &kv : *m)
        n += name_eq(kv.first.data(), kv.first.size(), name, name_len) ? 1 : 0;
    return n;
}

inline const char *recv_get(void *user, const char *name, size_t name_len, size_t index,
                            size_t *value_len)
{
    const RecvMap *m = static_cast<const RecvMap *>(user);
    for (const auto &kv : *m) {
        if (!name_eq(kv.first.data(), kv.first.size(), name, name_len))
            continue;
        if (index-- == 0) {
            *value_len = kv.second.size();
            return kv.second.data();
        }
    }
    return nullptr;
}

inline otelprof_status send_set(void *user, const char *name, size_t name_len, const char *value,
                                size_t value_len)
{
    SendMap *m = static_cast<SendMap *>(user);
    std::string key(name, name_len);
    try {
        m->erase(key);
        m->emplace(std::move(key), std::string(value, value_len));
    } catch (...) {
        return OTELPROF_E_NOMEM;
    }
    return OTELPROF_OK;
}

inline otelprof_kv kv_str(const char *k, const char *v)
{
    otelprof_kv kv = {};
    kv.key = k;
    kv.value.type = OTELPROF_VALUE_STRING;
    kv.value.u.str.ptr = v;
    kv.value.u.str.len = OTELPROF_NUL_TERMINATED;
    return kv;
}

inline otelprof_kv kv_int(const char *k, int64_t v)
{
    otelprof_kv kv = {};
    kv.key = k;
    kv.value.type = OTELPROF_VALUE_INT;
    kv.value.u.i = v;
    return kv;
}

/* "/pkg.Service/Method" -> ("pkg.Service/Method", "pkg.Service", "Method") */
/* "/pkg.Service/Method" split in place, without copies: the name outlives the hooks that
 * use the parts (the span copies what it keeps). */
struct MethodName {
    const char *full = "";    /* without the leading '/' */
    const char *service = ""; /* service_len bytes */
    size_t service_len = 0;
    const char *method = "";
    explicit MethodName(const char *m)
    {
        if (!m)
            return;
        full = m[0] == '/' ? m + 1 : m;
        const char *slash = std::strchr(full, '/');
        service = full;
        service_len = slash ? static_cast<size_t>(slash - full) : std::strlen(full);
        method = slash ? slash + 1 : "";
    }
    /* rpc.system, rpc.service, rpc.method (the last two when present) into out[0..3). */
    size_t rpc_attrs(otelprof_kv *out) const
    {
        size_t n = 0;
        out[n++] = kv_str("rpc.system", "grpc");
        if (service_len) {
            out[n] = kv_str("rpc.service", service);
            out[n++].value.u.str.len = service_len;
        }
        if (*method)
            out[n++] = kv_str("rpc.method", method);
        return n;
    }
};

/* A peer as gRPC gives it ("ipv4:1.2.3.4:p", "ipv6:[::1]:p"; also "[::1]:p", "h:p", "h")
 * into host (NUL-terminated, cap bytes) and port (-1: none), without allocating: it runs on
 * every traced call. false for a unix socket, an empty host or one longer than cap - 1. */
inline bool peer_host_port(const char *s, char *host, size_t cap, int *port)
{
    *port = -1;
    if (std::strncmp(s, "ipv4:", 5) == 0 || std::strncmp(s, "ipv6:", 5) == 0)
        s += 5;
    else if (std::strncmp(s, "unix:", 5) == 0 || std::strncmp(s, "unix-abstract:", 14) == 0)
        return false;
    const char *h = s, *he, *p = nullptr;
    if (*s == '[') {
        h = s + 1;
        he = std::strchr(h, ']');
        if (!he)
            return false;
        if (he[1] == ':')
            p = he + 2;
    } else {
        const char *colon = std::strrchr(s, ':');
        bool one = colon && std::strchr(s, ':') == colon; /* else a bare IPv6 address */
        he = one ? colon : s + std::strlen(s);
        p = one ? colon + 1 : nullptr;
    }
    size_t n = static_cast<size_t>(he - h);
    if (n == 0 || n >= cap)
        return false;
    std::memcpy(host, h, n);
    host[n] = '\0';
    long v = 0;
    const char *d = p;
    for (; d && *d >= '0' && *d <= '9' && v < 65536; d++)
        v = v * 10 + (*d - '0');
    if (d && d != p && *d == '\0' && v > 0 && v < 65536)
        *port = static_cast<int>(v);
    return true;
}

/* "host:port" out of a gRPC target ("dns:///h:p", "dns://authority/h:p", and the peer
 * forms above). port -1: none. false for unix sockets and anything without a host. Runs
 * once per client, so it may allocate. */
inline bool split_host_port(const std::string &target, std::string *host, int *port)
{
    const char *s = target.c_str();
    if (std::strncmp(s, "dns:", 4) == 0) {
        s += 4;
        if (std::strncmp(s, "//", 2) == 0) { /* dns://authority/host:port */
            const char *slash = std::strchr(s + 2, '/');
            s = slash ? slash + 1 : "";
        }
    }
    std::vector<char> buf(std::strlen(s) + 1);
    if (!peer_host_port(s, buf.data(), buf.size(), port))
        return false;
    *host = buf.data();
    return true;
}

struct ServerConfig {
    ServerOptions o;
    otelprof_propagators props{};
};

/* What the server interceptor published on a thread. Kept per thread, not in the
 * interceptor, so that only the publishing thread ever touches it, and so that a
 * publication left behind by a call whose end ran on other threads is unwound by the next
 * call that starts on this thread. */
struct Published {
    uint64_t gen = 0; /* which call published it; 0: nothing */
    bool attached = false, scoped = false;
    otelprof_token token = OTELPROF_TOKEN_INIT;
    otelprof_scope scope{};
};

inline Published &tls_published()
{
    static thread_local Published p;
    return p;
}

inline uint64_t next_gen()
{
    static std::atomic<uint64_t> g{0};
    return ++g;
}

inline void unwind(Published &p)
{
    if (p.scoped)
        (void)otelprof_scope_leave(&p.scope);
    if (p.attached)
        (void)otelprof_detach(&p.token);
    p = Published();
}

/* Publish sc on this thread: core record (what profilers read) + current span context. */
inline void publish(const otelprof_span_context &sc, otelprof_token *token, bool *attached,
                    otelprof_scope *scope, bool *scoped)
{
    otelprof_context tc{};
    std::memcpy(tc.trace_id, sc.trace_id, sizeof tc.trace_id);
    std::memcpy(tc.span_id, sc.span_id, sizeof tc.span_id);
    tc.trace_flags = sc.trace_flags;
    *attached = otelprof_attach(&tc, nullptr, 0, token) == OTELPROF_OK;
    *scoped = otelprof_scope_enter(&sc, scope) == OTELPROF_OK;
}

/* The span context of each live traced server call, keyed by its grpc::ServerContextBase,
 * for CallScope. Sharded so that concurrent calls rarely meet on a lock; an entry is
 * removed only by the call that made it (gen), so a context address reused by a new call
 * before the old interceptor is destroyed keeps the new call's entry. Never destroyed:
 * gRPC threads may still end calls while static destructors run at exit. */
struct CallEntry {
    uint64_t gen = 0;
    otelprof_span_context ctx{};
    std::shared_ptr<const otelprof_baggage> bag; /* only when the client sent baggage */
};

class CallRegistry
{
  public:
    static CallRegistry &get()
    {
        static CallRegistry *r = new CallRegistry;
        return *r;
    }
    void put(const void *key, CallEntry e)
    {
        Shard &s = shard(key);
        std::lock_guard<std::mutex> l(s.mu);
        s.map[key] = std::move(e);
    }
    void remove(const void *key, uint64_t gen)
    {
        Shard &s = shard(key);
        std::lock_guard<std::mutex> l(s.mu);
        auto it = s.map.find(key);
        if (it != s.map.end() && it->second.gen == gen)
            s.map.erase(it);
    }
    bool find(const void *key, otelprof_span_context *ctx, uint64_t *gen,
              std::shared_ptr<const otelprof_baggage> *bag)
    {
        Shard &s = shard(key);
        std::lock_guard<std::mutex> l(s.mu);
        auto it = s.map.find(key);
        if (it == s.map.end())
            return false;
        if (ctx)
            *ctx = it->second.ctx;
        if (gen)
            *gen = it->second.gen;
        if (bag)
            *bag = it->second.bag;
        return true;
    }

  private:
    static constexpr size_t kShards = 16;
    struct Shard {
        std::mutex mu;
        std::unordered_map<const void *, CallEntry> map;
    };
    Shard &shard(const void *key)
    {
        uintptr_t h = reinterpret_cast<uintptr_t>(key);
        return shards_[((h >> 4) ^ (h >> 12)) % kShards];
    }
    Shard shards_[kShards];
};

/* Whether the calling thread is one of grpc++'s sync-server threads ("grpcpp_sync_server",
 * kept as "grpcpp_sync_ser" by the kernel), cached per thread. Only there, and in callback
 * calls, is ServerContext::IsCancelled() safe to ask: for an async-API call it plucks a
 * completion queue that cannot be plucked (a crash in 1.51 without AsyncNotifyWhenDone). */
inline bool on_sync_server_thread()
{
    static thread_local int v = -1;
    if (v < 0) {
        char name[16] = "";
        v = pthread_getname_np(pthread_self(), name, sizeof name) == 0 &&
            std::strncmp(name, "grpcpp_sync", 11) == 0;
    }
    return v == 1;
}

inline bool prefixed(const char *s, const std::vector<std::string> &prefixes)
{
    for (const auto &p : prefixes)
        if (std::strncmp(s, p.c_str(), p.size()) == 0)
            return true;
    return false;
}

class ServerInterceptor final : public grpc::experimental::Interceptor
{
  public:
    ServerInterceptor(const ServerConfig *cfg, grpc::experimental::ServerRpcInfo *info)
        : cfg_(cfg), ctx_(info ? info->server_context() : nullptr)
    {
        /* grpc++ keeps the name for the call's life; only read while the call runs */
        method_ = info && info->method() ? info->method() : "";
        callback_ = dynamic_cast<grpc::CallbackServerContext *>(ctx_) != nullptr;
        async_ = ctx_ != nullptr && !callback_ && prefixed(method_, cfg->o.async_prefixes);
    }

    ~ServerInterceptor() override
    {
        (void)ready_.load(std::memory_order_acquire); /* see ready_ */
        Leave();
        End();
        /* ctx_ must not be read here: the last reference to the interceptors may be
         * dropped after the server context is gone. The key is only compared. */
        if (reg_gen_ != 0)
            CallRegistry::get().remove(ctx_, reg_gen_);
    }

    void Intercept(grpc::experimental::InterceptorBatchMethods *m) override
    {
        using H = grpc::experimental::InterceptionHookPoints;
        if (m->QueryInterceptionHookPoint(H::POST_RECV_INITIAL_METADATA))
            Start(m->GetRecvInitialMetadata());
        if (m->QueryInterceptionHookPoint(H::PRE_SEND_STATUS) && !have_status_) {
            status_ = m->GetSendStatus();
            have_status_ = true;
            /* The handler's status never reaches a client that cancelled or whose deadline
             * passed: record what the client got. With the sync API IsCancelled() may run
             * POST_RECV_CLOSE of this call (nested, on this thread) before returning. */
            cancelled_ = ctx_ && !async_ &&
                         (callback_ || (cfg_->o.check_cancelled && on_sync_server_thread())) &&
                         ctx_->IsCancelled();
            Leave();
            End();
        }
        if (m->QueryInterceptionHookPoint(H::POST_RECV_CLOSE))
            Leave();
        m->Proceed();
    }

  private:
    void Start(const RecvMap *md)
    {
        if (started_)
            return;
        started_ = true;
        StartCall(md);
        ready_.store(true, std::memory_order_release);
    }

    void StartCall(const RecvMap *md)
    {
        if (ctx_) {
            deadline_ = ctx_->deadline();
            has_deadline_ = deadline_ != std::chrono::system_clock::time_point::max();
        }
        otelprof_span_context parent{};
        std::shared_ptr<const otelprof_baggage> bag;
        if (md) {
            otelprof_carrier c = {};
            c.sz = sizeof c;
            c.user = const_cast<RecvMap *>(md);
            c.count = recv_count;
            c.get = recv_get;
            /* Baggage is parsed only when the client sent some (the struct is 8 KiB). */
            bool want_bag = (cfg_->props.mask & OTELPROF_PROPAGATOR_BAGGAGE) != 0 &&
                            recv_count(c.user, "baggage", 7) != 0;
            std::unique_ptr<otelprof_baggage> b;
            if (want_bag)
                b.reset(new (std::nothrow) otelprof_baggage());
            (void)otelprof_propagation_extract(&cfg_->props, &c, &parent, b.get());
            if (b && otelprof_baggage_count(b.get()) != 0)
                bag = std::shared_ptr<const otelprof_baggage>(std::move(b));
        }
        const otelprof_span_context *pub = nullptr;
        if (cfg_->o.tracer) {
            MethodName mn(method_); /* only spans need the parts */
            otelprof_kv attrs[5];
            size_t n = mn.rpc_attrs(attrs);
            /* The client's address, as gRPC saw it ("ipv4:127.0.0.1:54321"); nothing for a
             * unix socket. */
            std::string peer = ctx_ ? ctx_->peer() : std::string();
            char peer_host[64];
            int peer_port = -1;
            if (peer_host_port(peer.c_str(), peer_host, sizeof peer_host, &peer_port)) {
                attrs[n++] = kv_str("network.peer.address", peer_host);
                if (peer_port > 0)
                    attrs[n++] = kv_int("network.peer.port", peer_port);
            }
            otelprof_span_start_opts so = {};
            so.sz = sizeof so;
            so.kind = OTELPROF_SPAN_KIND_SERVER;
            so.parent = &parent;
            so.root = !otelprof_span_context_is_valid(&parent);
            so.attrs = attrs;
            so.n_attrs = n;
            otelprof_span *sp =
                otelprof_tracer_start_span(cfg_->o.tracer, *mn.full ? mn.full : "grpc", &so);
            if (sp)
                pub = otelprof_span_get_context(sp);
            span_.store(sp, std::memory_order_release);
        } else if (otelprof_span_context_is_valid(&parent)) {
            remote_ = parent;
            pub = &remote_;
        }
        if (!pub || !otelprof_span_context_is_valid(pub))
            return;
        /* Sync handlers run published on their thread: their calls are registered only
         * when asked (or to keep their baggage), which saves a locked map insert and erase
         * per call on the common path. */
        if (ctx_ && (callback_ || async_ || bag || cfg_->o.register_sync_calls)) {
            CallEntry e;
            e.gen = reg_gen_ = next_gen();
            e.ctx = *pub;
            e.bag = std::move(bag);
            CallRegistry::get().put(ctx_, std::move(e));
        }
        if (!cfg_->o.publish || async_)
            return;
        Published &p = tls_published();
        if (p.gen != 0)
            unwind(p); /* a call whose end never came back to this thread (callback API) */
        publish(*pub, &p.token, &p.attached, &p.scope, &p.scoped);
        p.gen = gen_ = reg_gen_ ? reg_gen_ : next_gen();
    }

    /* Undo the publication if this thread still holds this call's one. */
    void Leave()
    {
        Published &p = tls_published();
        if (gen_ != 0 && p.gen == gen_)
            unwind(p);
    }

    /* slack: a client's deadline timer fires before the server's, whose deadline was
     * computed from the grpc-timeout header on arrival (and rounded up): the client's
     * cancellation then reaches the server shortly before the server's deadline. */
    bool DeadlinePassed(std::chrono::milliseconds slack = std::chrono::milliseconds(0)) const
    {
        return has_deadline_ && std::chrono::system_clock::now() + slack >= deadline_;
    }

    void End()
    {
        otelprof_span *sp = span_.exchange(nullptr, std::memory_order_acq_rel);
        if (!sp)
            return;
        int code;
        std::string msg;
        if (!have_status_ || cancelled_) {
            /* PRE_SEND_STATUS never came (the call died first), or the client was gone */
            bool dl = DeadlinePassed(std::chrono::milliseconds(100));
            code = static_cast<int>(dl ? grpc::StatusCode::DEADLINE_EXCEEDED
                                       : grpc::StatusCode::CANCELLED);
            msg = dl ? "deadline exceeded" : "cancelled";
        } else if (!status_.ok() || !DeadlinePassed()) {
            code = static_cast<int>(status_.error_code());
            msg = status_.error_message();
        } else {
            /* an OK status sent after the deadline: the client got DEADLINE_EXCEEDED */
            code = static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED);
            msg = "deadline exceeded";
        }
        otelprof_kv kv = kv_int("rpc.grpc.status_code", code);
        otelprof_span_set_attributes(sp, &kv, 1);
        if (code != 0)
            otelprof_span_set_status(sp, OTELPROF_SPAN_STATUS_ERROR, msg.c_str());
        otelprof_span_end(sp, 0);
    }

    const ServerConfig *cfg_;
    grpc::ServerContextBase *ctx_;
    const char *method_ = "";
    bool callback_ = false, async_ = false;
    bool started_ = false;
    /* The hooks and the destructor of one call may run on different threads; gRPC orders
     * them, but with synchronisation of its own (invisible to TSan, which libgrpc is not
     * built for). The span is claimed by whoever ends it with an exchange, so it ends once
     * whatever the order, and ready_ (released when the call has started, acquired by the
     * destructor) carries what Start wrote to the destructor's thread. */
    std::atomic<otelprof_span *> span_{nullptr};
    std::atomic<bool> ready_{false};
    otelprof_span_context remote_{};
    grpc::Status status_;
    bool have_status_ = false, cancelled_ = false;
    std::chrono::system_clock::time_point deadline_{};
    bool has_deadline_ = false;
    uint64_t gen_ = 0;     /* this call's publication, 0: none */
    uint64_t reg_gen_ = 0; /* this call's CallRegistry entry, 0: none */
};

struct ClientConfig {
    ClientOptions o;
    otelprof_propagators props{};
    std::string server_address; /* from o.target */
    int server_port = -1;
};

/* The calling thread's outgoing baggage (BaggageScope); nullptr: none. */
inline const otelprof_baggage *&tls_baggage()
{
    static thread_local const otelprof_baggage *b = nullptr;
    return b;
}

class ClientInterceptor final : public grpc::experimental::Interceptor
{
  public:
    ClientInterceptor(const ClientConfig *cfg, grpc::experimental::ClientRpcInfo *info)
        : cfg_(cfg), info_(info)
    {
    }

    ~ClientInterceptor() override
    {
        End(nullptr);
    }

    void Intercept(grpc::experimental::InterceptorBatchMethods *m) override
    {
        using H = grpc::experimental::InterceptionHookPoints;
        if (m->QueryInterceptionHookPoint(H::PRE_SEND_INITIAL_METADATA))
            Send(m->GetSendInitialMetadata());
        if (m->QueryInterceptionHookPoint(H::POST_RECV_STATUS))
            End(m->GetRecvStatus());
        m->Proceed();
    }

  private:
    void Send(SendMap *md)
    {
        const otelprof_span_context *cur = otelprof_current_span_context();
        otelprof_span_context pub{};
        if (!cur || !otelprof_span_context_is_valid(cur)) {
            otelprof_context tc{};
            cur = nullptr;
            if (otelprof_current(&tc, nullptr, 0, nullptr) == OTELPROF_OK) {
                std::memcpy(pub.trace_id, tc.trace_id, sizeof pub.trace_id);
                std::memcpy(pub.span_id, tc.span_id, sizeof pub.span_id);
                pub.trace_flags = tc.trace_flags;
                cur = &pub;
            }
        }
        if (cfg_->o.tracer && !span_.load(std::memory_order_relaxed)) {
            MethodName mn(info_ ? info_->method() : nullptr);
            otelprof_kv attrs[5];
            size_t n = mn.rpc_attrs(attrs);
            if (!cfg_->server_address.empty())
                attrs[n++] = kv_str("server.address", cfg_->server_address.c_str());
            if (cfg_->server_port > 0)
                attrs[n++] = kv_int("server.port", cfg_->server_port);
            otelprof_span_start_opts so = {};
            so.sz = sizeof so;
            so.kind = OTELPROF_SPAN_KIND_CLIENT;
            so.parent = cur;
            so.root = cur == nullptr; /* nothing current: a new trace */
            so.attrs = attrs;
            so.n_attrs = n;
            otelprof_span *sp =
                otelprof_tracer_start_span(cfg_->o.tracer, *mn.full ? mn.full : "grpc", &so);
            if (sp)
                cur = otelprof_span_get_context(sp);
            span_.store(sp, std::memory_order_release);
        }
        const otelprof_baggage *bag = tls_baggage();
        bool has_bag = bag && otelprof_baggage_count(bag) != 0;
        if (md && ((cur && otelprof_span_context_is_valid(cur)) || has_bag)) {
            otelprof_carrier c = {};
            c.sz = sizeof c;
            c.user = md;
            c.set = send_set;
            (void)otelprof_propagation_inject(&cfg_->props, cur, has_bag ? bag : nullptr, &c);
        }
    }

    /* st nullptr: the interceptor goes away without a status (the call never completed). */
    void End(const grpc::Status *st)
    {
        otelprof_span *sp = span_.exchange(nullptr, std::memory_order_acq_rel);
        if (!sp)
            return;
        if (st) {
            otelprof_kv kv[3];
            size_t n = 0;
            kv[n++] = kv_int("rpc.grpc.status_code", static_cast<int>(st->error_code()));
            /* the peer the call went to, once known ("ipv4:127.0.0.1:50051") */
            char host[64];
            int port = -1;
            std::string peer =
                info_ && info_->client_context() ? info_->client_context()->peer() : std::string();
            if (peer_host_port(peer.c_str(), host, sizeof host, &port)) {
                kv[n++] = kv_str("network.peer.address", host);
                if (port > 0)
                    kv[n++] = kv_int("network.peer.port", port);
            }
            otelprof_span_set_attributes(sp, kv, n);
            if (!st->ok())
                otelprof_span_set_status(sp, OTELPROF_SPAN_STATUS_ERROR,
                                         st->error_message().c_str());
        }
        otelprof_span_end(sp, 0);
    }

    const ClientConfig *cfg_;
    grpc::experimental::ClientRpcInfo *info_;
    /* Started on the calling thread, ended at POST_RECV_STATUS, which the async and
     * callback client APIs run elsewhere: claimed with an exchange (see the server's). */
    std::atomic<otelprof_span *> span_{nullptr};
};

} // namespace detail

/* The span context the server interceptor registered for a live call (the SERVER span's,
 * or the remote parent's without a tracer). false when the call is not traced, not yet
 * started (before POST_RECV_INITIAL_METADATA) or gone. Thread-safe; one sharded lock. */
inline bool CallSpanContext(const grpc::ServerContextBase *ctx, otelprof_span_context *out)
{
    return ctx && detail::CallRegistry::get().find(ctx, out, nullptr, nullptr);
}

/* The baggage the client sent with a live call (server interceptor, with the baggage
 * propagator on). false when the call is unknown; *out is then empty. */
inline bool CallBaggage(const grpc::ServerContextBase *ctx, otelprof_baggage *out)
{
    std::shared_ptr<const otelprof_baggage> bag;
    bool found = ctx && detail::CallRegistry::get().find(ctx, nullptr, nullptr, &bag);
    if (out) {
        if (bag)
            *out = *bag;
        else
            otelprof_baggage_clear(out);
    }
    return found;
}

/* Sets the baggage that client calls started on the calling thread send (through
 * ClientInterceptorFactory, when its propagators include baggage: OTEL_PROPAGATORS'
 * default "tracecontext,baggage" does) while it lives (RAII; create and destroy it on the
 * same thread, innermost first; the innermost wins). bag is not copied: it must outlive
 * the scope. Calls whose PRE_SEND_INITIAL_METADATA runs on another thread (some async and
 * callback client paths) do not see it. E.g. a handler relaying its client's baggage:
 *   otelprof_baggage bag;
 *   otelprof_grpc::CallBaggage(ctx, &bag);
 *   otelprof_grpc::BaggageScope relay(bag);
 *   stub->Call(...);                                      // sends the same baggage
 * Thread-safe (acts on the calling thread only). Since 0.2. */
class BaggageScope
{
  public:
    explicit BaggageScope(const otelprof_baggage &bag) : prev_(detail::tls_baggage())
    {
        detail::tls_baggage() = &bag;
    }
    ~BaggageScope()
    {
        detail::tls_baggage() = prev_;
    }
    BaggageScope(const BaggageScope &) = delete;
    BaggageScope &operator=(const BaggageScope &) = delete;

  private:
    const otelprof_baggage *prev_;
};

/* Publishes a server call's context on the calling thread while it lives (RAII; create
 * and destroy it on the same thread, innermost first): otelprof_attach (what profilers
 * read) + otelprof_scope_enter (otelprof_current_span_context(), outgoing client calls).
 * For reactor callbacks (OnReadDone, OnWriteDone, OnCancel, OnDone), async-API tag
 * handling, and work handed to other threads.
 *   CallScope(ctx): the context registered for the call (see CallSpanContext); nothing
 *     when there is none. If this thread still holds the interceptor's publication of the
 *     same call (the hook ran here), it is kept as is and nothing more is published; if it
 *     holds the publication of another call, left behind by a hook, that one is unwound
 *     first (as the next call starting on this thread would do).
 *   CallScope(span_context): that context (e.g. saved with CallSpanContext or
 *     otelprof_current_span_context() in the handler), nested on whatever is published. */
class CallScope
{
  public:
    explicit CallScope(const grpc::ServerContextBase *ctx)
    {
        otelprof_span_context sc{};
        uint64_t gen = 0;
        if (!ctx || !detail::CallRegistry::get().find(ctx, &sc, &gen, nullptr))
            return;
        detail::Published &p = detail::tls_published();
        if (p.gen == gen) {
            active_ = true;
            return;
        }
        if (p.gen != 0)
            detail::unwind(p);
        Enter(sc);
    }
    explicit CallScope(const otelprof_span_context &sc)
    {
        if (otelprof_span_context_is_valid(&sc))
            Enter(sc);
    }
    ~CallScope()
    {
        if (scoped_)
            (void)otelprof_scope_leave(&scope_);
        if (attached_)
            (void)otelprof_detach(&token_);
    }
    CallScope(const CallScope &) = delete;
    CallScope &operator=(const CallScope &) = delete;

    /* true when the call's context is published on this thread by this scope or (same
     * call) by the interceptor. */
    bool active() const
    {
        return active_;
    }

  private:
    void Enter(const otelprof_span_context &sc)
    {
        detail::publish(sc, &token_, &attached_, &scope_, &scoped_);
        active_ = attached_ || scoped_;
    }

    bool active_ = false, attached_ = false, scoped_ = false;
    otelprof_token token_ = OTELPROF_TOKEN_INIT;
    otelprof_scope scope_{};
};

/* Register with grpc::ServerBuilder::experimental().SetInterceptorCreators(...). */
class ServerInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface
{
  public:
    explicit ServerInterceptorFactory(ServerOptions o = ServerOptions())
    {
        cfg_.o = std::move(o);
        if (cfg_.o.propagators)
            cfg_.props = *cfg_.o.propagators;
        else
            (void)otelprof_propagators_from_env(&cfg_.props);
        cfg_.o.propagators = nullptr;
    }

    grpc::experimental::Interceptor *
    CreateServerInterceptor(grpc::experimental::ServerRpcInfo *info) override
    {
        const char *m = info && info->method() ? info->method() : "";
        if (!cfg_.o.include_prefixes.empty() && !detail::prefixed(m, cfg_.o.include_prefixes))
            return nullptr;
        if (detail::prefixed(m, cfg_.o.ignore_prefixes))
            return nullptr;
        return new detail::ServerInterceptor(&cfg_, info);
    }

  private:
    detail::ServerConfig cfg_;
};

/* Pass to grpc::experimental::CreateCustomChannelWithInterceptors. */
class ClientInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface
{
  public:
    explicit ClientInterceptorFactory(const otelprof_propagators *props = nullptr)
    {
        ClientOptions o;
        o.propagators = props;
        Init(std::move(o));
    }
    explicit ClientInterceptorFactory(ClientOptions o)
    {
        Init(std::move(o));
    }

    grpc::experimental::Interceptor *
    CreateClientInterceptor(grpc::experimental::ClientRpcInfo *info) override
    {
        return new detail::ClientInterceptor(&cfg_, info);
    }

  private:
    void Init(ClientOptions o)
    {
        cfg_.o = std::move(o);
        if (cfg_.o.propagators)
            cfg_.props = *cfg_.o.propagators;
        else
            (void)otelprof_propagators_from_env(&cfg_.props);
        cfg_.o.propagators = nullptr;
        if (!cfg_.o.target.empty() &&
            !detail::split_host_port(cfg_.o.target, &cfg_.server_address, &cfg_.server_port)) {
            cfg_.server_address.clear();
            cfg_.server_port = -1;
        }
    }

    detail::ClientConfig cfg_;
};

} // namespace otelprof_grpc

#endif /* __cplusplus */
#endif
