/* otelprof gRPC C++ interceptors (header-only, C++17, grpc++ >= 1.51 experimental
 * interceptor API) over otelprof's C API. Link: otelprof::grpcpp (CMake) =
 * libotelprof-trace + libotelprof + grpc++. See docs/grpc.md.
 *
 *   ServerInterceptorFactory: per call, at POST_RECV_INITIAL_METADATA, extracts
 *     traceparent/tracestate from the client metadata (every value: two traceparent entries
 *     make the parent invalid), starts a SERVER span through the configured tracer
 *     (rpc.system=grpc, rpc.service, rpc.method; at the end rpc.grpc.status_code and ERROR
 *     status on a non-OK code), and publishes the span's context (otelprof_attach +
 *     otelprof_scope_enter) on the thread running that hook. The publication is undone on
 *     that same thread at the first of PRE_SEND_STATUS, POST_RECV_CLOSE or the
 *     interceptor's destruction that runs there, or else by the next call that starts on
 *     that thread (the state is kept per thread). With the synchronous API these all run
 *     on the thread that runs the handler (tests/grpc: sync_hook_threads), so the handler
 *     runs published and the thread is clean afterwards whatever the outcome. With the
 *     callback API see docs/grpc.md ("callback API gap").
 *   ClientInterceptorFactory: at PRE_SEND_INITIAL_METADATA, injects the calling thread's
 *     current span context (otelprof_current_span_context, else the published thread
 *     context of otelprof_current) as traceparent/tracestate.
 */
#ifndef OTELPROF_GRPC_H
#define OTELPROF_GRPC_H

#ifdef __cplusplus

#include <otelprof/context.h>
#include <otelprof/propagation.h>
#include <otelprof/trace.h>

#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/interceptor.h>
#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>
#include <grpcpp/support/string_ref.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
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

inline uint64_t now_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
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

class ServerInterceptor final : public grpc::experimental::Interceptor
{
  public:
    ServerInterceptor(const ServerConfig *cfg, const char *method) : cfg_(cfg)
    {
        method_ = method ? method : "";
    }

    ~ServerInterceptor() override
    {
        Leave();
        End();
    }

    void Intercept(grpc::experimental::InterceptorBatchMethods *m) override
    {
        using H = grpc::experimental::InterceptionHookPoints;
        if (m->QueryInterceptionHookPoint(H::POST_RECV_INITIAL_METADATA))
            Start(m->GetRecvInitialMetadata());
        if (m->QueryInterceptionHookPoint(H::PRE_SEND_STATUS)) {
            status_ = m->GetSendStatus();
            have_status_ = true;
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
        otelprof_span_context parent{};
        if (md) {
            otelprof_carrier c = {};
            c.sz = sizeof c;
            c.user = const_cast<RecvMap *>(md);
            c.count = recv_count;
            c.get = recv_get;
            (void)otelprof_propagation_extract(&cfg_->props, &c, &parent, nullptr);
        }
        /* "/pkg.Service/Method" -> service, method */
        std::string full = method_.size() && method_[0] == '/' ? method_.substr(1) : method_;
        size_t slash = full.find('/');
        std::string service = slash == std::string::npos ? full : full.substr(0, slash);
        std::string rpc = slash == std::string::npos ? std::string() : full.substr(slash + 1);

        const otelprof_span_context *pub = nullptr;
        if (cfg_->o.tracer) {
            otelprof_kv attrs[3];
            int n = 0;
            attrs[n++] = kv_str("rpc.system", "grpc");
            if (!service.empty())
                attrs[n++] = kv_str("rpc.service", service.c_str());
            if (!rpc.empty())
                attrs[n++] = kv_str("rpc.method", rpc.c_str());
            otelprof_span_start_opts so = {};
            so.sz = sizeof so;
            so.kind = OTELPROF_SPAN_KIND_SERVER;
            so.parent = &parent;
            so.root = !otelprof_span_context_is_valid(&parent);
            so.attrs = attrs;
            so.n_attrs = static_cast<size_t>(n);
            span_ = otelprof_tracer_start_span(cfg_->o.tracer, full.empty() ? "grpc" : full.c_str(),
                                               &so);
            if (span_)
                pub = otelprof_span_get_context(span_);
        } else if (otelprof_span_context_is_valid(&parent)) {
            remote_ = parent;
            pub = &remote_;
        }
        if (!cfg_->o.publish || !pub || !otelprof_span_context_is_valid(pub))
            return;
        otelprof_context tc{};
        std::memcpy(tc.trace_id, pub->trace_id, sizeof tc.trace_id);
        std::memcpy(tc.span_id, pub->span_id, sizeof tc.span_id);
        tc.trace_flags = pub->trace_flags;
        Published &p = tls_published();
        if (p.gen != 0)
            unwind(p); /* a call whose end never came back to this thread (callback API) */
        p.attached = otelprof_attach(&tc, nullptr, 0, &p.token) == OTELPROF_OK;
        p.scoped = otelprof_scope_enter(pub, &p.scope) == OTELPROF_OK;
        p.gen = gen_ = next_gen();
    }

    /* Undo the publication if this thread still holds this call's one. */
    void Leave()
    {
        Published &p = tls_published();
        if (gen_ != 0 && p.gen == gen_)
            unwind(p);
    }

    void End()
    {
        if (!span_)
            return;
        int code = have_status_ ? static_cast<int>(status_.error_code())
                                : static_cast<int>(grpc::StatusCode::CANCELLED);
        otelprof_kv kv = {};
        kv.key = "rpc.grpc.status_code";
        kv.value.type = OTELPROF_VALUE_INT;
        kv.value.u.i = code;
        otelprof_span_set_attributes(span_, &kv, 1);
        if (code != 0) {
            std::string msg = have_status_ ? status_.error_message() : std::string("cancelled");
            otelprof_span_set_status(span_, OTELPROF_SPAN_STATUS_ERROR, msg.c_str());
        }
        otelprof_span_end(span_, 0);
        span_ = nullptr;
    }

    static otelprof_kv kv_str(const char *k, const char *v)
    {
        otelprof_kv kv = {};
        kv.key = k;
        kv.value.type = OTELPROF_VALUE_STRING;
        kv.value.u.str.ptr = v;
        kv.value.u.str.len = OTELPROF_NUL_TERMINATED;
        return kv;
    }

    const ServerConfig *cfg_;
    std::string method_;
    bool started_ = false;
    otelprof_span *span_ = nullptr;
    otelprof_span_context remote_{};
    grpc::Status status_;
    bool have_status_ = false;
    uint64_t gen_ = 0; /* this call's publication, 0: none */
};

class ClientInterceptor final : public grpc::experimental::Interceptor
{
  public:
    explicit ClientInterceptor(const otelprof_propagators *props) : props_(*props) {}

    void Intercept(grpc::experimental::InterceptorBatchMethods *m) override
    {
        using H = grpc::experimental::InterceptionHookPoints;
        if (m->QueryInterceptionHookPoint(H::PRE_SEND_INITIAL_METADATA)) {
            SendMap *md = m->GetSendInitialMetadata();
            const otelprof_span_context *cur = otelprof_current_span_context();
            otelprof_span_context pub{};
            if (!cur || !otelprof_span_context_is_valid(cur)) {
                otelprof_context tc{};
                if (otelprof_current(&tc, nullptr, 0, nullptr) == OTELPROF_OK) {
                    std::memcpy(pub.trace_id, tc.trace_id, sizeof pub.trace_id);
                    std::memcpy(pub.span_id, tc.span_id, sizeof pub.span_id);
                    pub.trace_flags = tc.trace_flags;
                    cur = &pub;
                }
            }
            if (md && cur && otelprof_span_context_is_valid(cur)) {
                otelprof_carrier c = {};
                c.sz = sizeof c;
                c.user = md;
                c.set = send_set;
                (void)otelprof_propagation_inject(&props_, cur, nullptr, &c);
            }
        }
        m->Proceed();
    }

  private:
    otelprof_propagators props_;
};

inline bool prefixed(const std::string &s, const std::vector<std::string> &prefixes)
{
    for (const auto &p : prefixes)
        if (s.compare(0, p.size(), p) == 0)
            return true;
    return false;
}

} // namespace detail

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
        std::string m = info && info->method() ? info->method() : "";
        if (!cfg_.o.include_prefixes.empty() && !detail::prefixed(m, cfg_.o.include_prefixes))
            return nullptr;
        if (detail::prefixed(m, cfg_.o.ignore_prefixes))
            return nullptr;
        return new detail::ServerInterceptor(&cfg_, m.c_str());
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
        if (props)
            props_ = *props;
        else
            (void)otelprof_propagators_from_env(&props_);
    }

    grpc::experimental::Interceptor *
    CreateClientInterceptor(grpc::experimental::ClientRpcInfo *) override
    {
        return new detail::ClientInterceptor(&props_);
    }

  private:
    otelprof_propagators props_{};
};

} // namespace otelprof_grpc

#endif /* __cplusplus */
#endif
