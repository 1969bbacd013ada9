// gRPC interceptor tests (issue 5): a real grpc++ server on 127.0.0.1 (ephemeral port)
// with otelprof_grpc::ServerInterceptorFactory, real grpc++ clients.
//   test-grpc-<flavour> <case>
// The test Echo service replies with what otelprof_current() shows inside the handler:
// "<trace_id hex>-<span_id hex>" or "none".
#include "echo.grpc.pb.h"

#include <otelprof/grpc.h>
#include <otelprof/sdk.h>

#include "test.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using grpc::examples::echo::Echo;
using grpc::examples::echo::EchoRequest;
using grpc::examples::echo::EchoResponse;
using Hook = grpc::experimental::InterceptionHookPoints;

// ASSERT_STR_EQ of test.h keeps only the pointers: copy temporaries first.
#define STR_EQ(a, b)                                                                               \
    do {                                                                                           \
        const std::string sa_(a), sb_(b);                                                          \
        ASSERT_STR_EQ(sa_.c_str(), sb_.c_str());                                                   \
    } while (0)

namespace
{

std::string hex(const uint8_t *b, size_t n)
{
    static const char d[] = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; i++) {
        s += d[b[i] >> 4];
        s += d[b[i] & 15];
    }
    return s;
}

std::string published()
{
    otelprof_context c{};
    if (otelprof_current(&c, nullptr, 0, nullptr) != OTELPROF_OK)
        return "none";
    return hex(c.trace_id, 16) + "-" + hex(c.span_id, 8);
}

// ---- what the threads saw, per call (one call at a time in these tests) ----
struct Seen {
    std::mutex mu;
    pthread_t handler{};
    std::map<int, pthread_t> hook_thread;      // first thread each hook ran on
    std::map<int, std::string> hook_published; // otelprof_current at that hook
    pthread_t dtor_thread{};
    std::string dtor_published;
    void reset()
    {
        std::lock_guard<std::mutex> l(mu);
        hook_thread.clear();
        hook_published.clear();
        handler = dtor_thread = pthread_t{};
        dtor_published.clear();
    }
} g_seen;

// Registered after otelprof's interceptor: records which thread each hook point runs on
// and what is published there (after otelprof's interceptor acted on that hook).
class Recorder final : public grpc::experimental::Interceptor
{
  public:
    void Intercept(grpc::experimental::InterceptorBatchMethods *m) override
    {
        if (getenv("GRPC_TEST_DUMP_MD") &&
            m->QueryInterceptionHookPoint(Hook::POST_RECV_INITIAL_METADATA))
            for (const auto &kv : *m->GetRecvInitialMetadata())
                std::printf("  md %.*s: %.*s\n", (int)kv.first.size(), kv.first.data(),
                            (int)kv.second.size(), kv.second.data());
        for (int h = 0; h < static_cast<int>(Hook::NUM_INTERCEPTION_HOOKS); h++) {
            if (!m->QueryInterceptionHookPoint(static_cast<Hook>(h)))
                continue;
            std::lock_guard<std::mutex> l(g_seen.mu);
            if (!g_seen.hook_thread.count(h)) {
                g_seen.hook_thread[h] = pthread_self();
                g_seen.hook_published[h] = published();
            }
        }
        m->Proceed();
    }
    ~Recorder() override
    {
        std::lock_guard<std::mutex> l(g_seen.mu);
        g_seen.dtor_thread = pthread_self();
        g_seen.dtor_published = published();
    }
};

// Registered before otelprof's interceptor. grpc++ runs send hooks in registration order
// and receive hooks in reverse, so at POST_RECV_INITIAL_METADATA this one runs after
// otelprof's interceptor (and the Recorder, registered last, before it).
std::mutex g_before_mu;
std::vector<std::pair<pthread_t, std::string>> g_before; // (thread, published) per call

class BeforeRecorder final : public grpc::experimental::Interceptor
{
  public:
    void Intercept(grpc::experimental::InterceptorBatchMethods *m) override
    {
        if (m->QueryInterceptionHookPoint(Hook::POST_RECV_INITIAL_METADATA)) {
            std::lock_guard<std::mutex> l(g_before_mu);
            g_before.emplace_back(pthread_self(), published());
        }
        m->Proceed();
    }
};

class BeforeRecorderFactory final : public grpc::experimental::ServerInterceptorFactoryInterface
{
  public:
    grpc::experimental::Interceptor *
    CreateServerInterceptor(grpc::experimental::ServerRpcInfo *) override
    {
        return new BeforeRecorder;
    }
};

class RecorderFactory final : public grpc::experimental::ServerInterceptorFactoryInterface
{
  public:
    grpc::experimental::Interceptor *
    CreateServerInterceptor(grpc::experimental::ServerRpcInfo *) override
    {
        return new Recorder;
    }
};

void note_handler()
{
    std::lock_guard<std::mutex> l(g_seen.mu);
    g_seen.handler = pthread_self();
}

// How long "sleep" handlers take: well past the clients' deadlines (kDeadlineMs), which
// leave room for a call to reach its handler on a warm channel even under TSan.
constexpr int kSleepMs = 600, kDeadlineMs = 150;

// Set when a handler starts (cancel tests wait for it before cancelling).
std::atomic<int> g_handlers_started{0};

// "key=value" pairs of the call's baggage (otelprof_grpc::CallBaggage), or "(unknown call)".
std::string baggage_of(const grpc::ServerContextBase *ctx)
{
    std::unique_ptr<otelprof_baggage> bag(new otelprof_baggage());
    if (!otelprof_grpc::CallBaggage(ctx, bag.get()))
        return "(unknown call)";
    std::string out;
    for (const char *k : {"user", "tier"}) {
        size_t n = 0;
        const char *v = otelprof_baggage_get(bag.get(), k, std::strlen(k), &n);
        if (v)
            out += std::string(out.empty() ? "" : ",") + k + "=" + std::string(v, n);
    }
    return out.empty() ? "(empty)" : out;
}

class SyncEcho final : public Echo::Service
{
    grpc::Status UnaryEcho(grpc::ServerContext *ctx, const EchoRequest *req,
                           EchoResponse *resp) override
    {
        note_handler();
        g_handlers_started++;
        if (req->message() == "baggage") {
            resp->set_message(baggage_of(ctx));
            return grpc::Status::OK;
        }
        if (req->message() == "fail")
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "asked to fail");
        if (req->message() == "throw") // grpc++ turns this into UNKNOWN
            throw std::runtime_error("asked to throw");
        if (req->message() == "sleep") // outlives the client's deadline
            std::this_thread::sleep_for(std::chrono::milliseconds(kSleepMs));
        resp->set_message(published());
        return grpc::Status::OK;
    }
    grpc::Status
    BidirectionalStreamingEcho(grpc::ServerContext *,
                               grpc::ServerReaderWriter<EchoResponse, EchoRequest> *s) override
    {
        note_handler();
        EchoRequest req;
        while (s->Read(&req)) {
            EchoResponse r;
            r.set_message(published());
            s->Write(r);
        }
        return grpc::Status::OK;
    }
};

// What the bidi reactor's callbacks saw (one stream at a time).
struct ReactorSeen {
    std::mutex mu;
    std::vector<std::string> on_read;      // published inside the CallScope in OnReadDone
    std::vector<std::string> before_scope; // published in OnReadDone before the CallScope
    std::vector<std::string> fresh_thread; // a new thread: before, inside, after CallScope
    std::vector<pthread_t> threads;        // thread of each OnReadDone
    std::string on_done;                   // inside the CallScope in OnDone
    bool done = false;
    void reset()
    {
        std::lock_guard<std::mutex> l(mu);
        on_read.clear();
        before_scope.clear();
        fresh_thread.clear();
        threads.clear();
        on_done.clear();
        done = false;
    }
} g_reactor;

// A streaming callback reactor: every callback runs on some gRPC callback thread and
// publishes the call's context with otelprof_grpc::CallScope(server context).
class BidiReactor final : public grpc::ServerBidiReactor<EchoRequest, EchoResponse>
{
  public:
    explicit BidiReactor(grpc::CallbackServerContext *ctx) : ctx_(ctx)
    {
        StartRead(&req_);
    }

  private:
    void OnReadDone(bool ok) override
    {
        std::string before = published();
        otelprof_grpc::CallScope scope(ctx_);
        if (!ok) {
            Finish(grpc::Status::OK);
            return;
        }
        std::string in = published();
        // The same lookup from a thread that never saw this call.
        std::string fresh;
        std::thread([&] {
            fresh = published();
            {
                otelprof_grpc::CallScope s2(ctx_);
                fresh += " " + published();
            }
            fresh += " " + published();
        }).join();
        {
            std::lock_guard<std::mutex> l(g_reactor.mu);
            g_reactor.on_read.push_back(in);
            g_reactor.before_scope.push_back(before);
            g_reactor.fresh_thread.push_back(fresh);
            g_reactor.threads.push_back(pthread_self());
        }
        resp_.set_message(in);
        StartWrite(&resp_);
    }
    void OnWriteDone(bool ok) override
    {
        otelprof_grpc::CallScope scope(ctx_);
        if (ok)
            StartRead(&req_);
        else
            Finish(grpc::Status(grpc::StatusCode::UNKNOWN, "write failed"));
    }
    void OnDone() override
    {
        {
            otelprof_grpc::CallScope scope(ctx_);
            std::lock_guard<std::mutex> l(g_reactor.mu);
            g_reactor.on_done = published();
            g_reactor.done = true;
        }
        delete this;
    }

    grpc::CallbackServerContext *ctx_;
    EchoRequest req_;
    EchoResponse resp_;
};

class CallbackEcho final : public Echo::CallbackService
{
    grpc::ServerUnaryReactor *UnaryEcho(grpc::CallbackServerContext *ctx, const EchoRequest *req,
                                        EchoResponse *resp) override
    {
        note_handler();
        g_handlers_started++;
        resp->set_message(published());
        grpc::ServerUnaryReactor *r = ctx->DefaultReactor();
        if (req->message() == "later") // finished from another thread, after the handler returned
            std::thread([r] {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                r->Finish(grpc::Status::OK);
            }).detach();
        else if (req->message() == "sleep") // finished OK after the client gave up
            std::thread([r] {
                std::this_thread::sleep_for(std::chrono::milliseconds(kSleepMs));
                r->Finish(grpc::Status::OK);
            }).detach();
        else
            r->Finish(grpc::Status::OK);
        return r;
    }
    grpc::ServerBidiReactor<EchoRequest, EchoResponse> *
    BidirectionalStreamingEcho(grpc::CallbackServerContext *ctx) override
    {
        note_handler();
        return new BidiReactor(ctx);
    }
};

// ---- the async (completion-queue) API: one CQ, one loop thread of the application ----
struct AsyncSeen {
    std::mutex mu;
    std::condition_variable cv;
    struct Tag {
        int kind; // 0 request, 1 finish, 2 done
        std::string message, before, inside, after;
        bool cancelled;
    };
    std::vector<Tag> tags;
    int requests = 0, deleted = 0;
    void reset()
    {
        std::lock_guard<std::mutex> l(mu);
        tags.clear();
        requests = deleted = 0;
    }
} g_async;

class AsyncCall
{
  public:
    enum Kind { REQUEST, FINISH, DONE };
    struct Tag {
        AsyncCall *call;
        Kind kind;
    };

    AsyncCall(Echo::AsyncService *svc, grpc::ServerCompletionQueue *cq)
        : svc_(svc), cq_(cq), writer_(&ctx_)
    {
        ctx_.AsyncNotifyWhenDone(&done_tag_);
        svc_->RequestUnaryEcho(&ctx_, &req_, &writer_, cq_, cq_, &request_tag_);
    }

    // The application's handling of one tag (run inside the call's CallScope). true: the
    // call can be deleted.
    bool Handle(Kind k, bool ok)
    {
        switch (k) {
        case REQUEST:
            if (!ok) // shutting down: no call, no done tag
                return true;
            new AsyncCall(svc_, cq_);
            g_handlers_started++;
            if (req_.message() == "abandon") { // never answered: the client gives up
                abandoned_ = true;
            } else {
                resp_.set_message(published());
                writer_.Finish(resp_, grpc::Status::OK, &finish_tag_);
            }
            return false;
        case FINISH:
            finished_ = true;
            return done_;
        case DONE:
            done_ = true;
            return finished_ || abandoned_;
        }
        return false;
    }

    grpc::ServerContext ctx_;
    EchoRequest req_;

  private:
    Echo::AsyncService *svc_;
    grpc::ServerCompletionQueue *cq_;
    grpc::ServerAsyncResponseWriter<EchoResponse> writer_;
    EchoResponse resp_;
    bool finished_ = false, done_ = false, abandoned_ = false;

  public:
    Tag request_tag_{this, REQUEST}, finish_tag_{this, FINISH}, done_tag_{this, DONE};
};

void async_loop(grpc::ServerCompletionQueue *cq)
{
    void *tag = nullptr;
    bool ok = false;
    while (cq->Next(&tag, &ok)) {
        AsyncCall::Tag *t = static_cast<AsyncCall::Tag *>(tag);
        AsyncCall *c = t->call;
        const AsyncCall::Kind kind = t->kind; // t lives in c, which may be deleted below
        AsyncSeen::Tag seen;
        seen.kind = kind;
        seen.before = published();
        bool del;
        {
            otelprof_grpc::CallScope scope(&c->ctx_);
            seen.inside = published();
            del = c->Handle(kind, ok);
        }
        seen.after = published();
        seen.message = c->req_.message();
        seen.cancelled = kind == AsyncCall::DONE && c->ctx_.IsCancelled(); // valid now
        if (del)
            delete c; // the interceptor goes with the server context
        std::lock_guard<std::mutex> l(g_async.mu);
        if (ok || kind != AsyncCall::REQUEST)
            g_async.tags.push_back(seen);
        if (kind == AsyncCall::REQUEST && ok)
            g_async.requests++;
        if (del)
            g_async.deleted++;
        g_async.cv.notify_all();
    }
}

enum class Api { Sync, Callback, Async };

// An SDK provider (always_on, simple processor) whose spans go to *mem, a memory exporter.
otelprof_tracer_provider *memory_provider(otelprof_span_exporter **mem)
{
    *mem = otelprof_memory_exporter_new(0);
    otelprof_span_processor *p = otelprof_simple_processor_new(*mem);
    otelprof_sdk_opts o = {};
    o.sz = sizeof o;
    o.sampler = otelprof_sampler_always_on();
    o.processors = &p;
    o.n_processors = 1;
    otelprof_status err = OTELPROF_OK;
    otelprof_tracer_provider *provider = otelprof_sdk_provider_new(&o, &err);
    ASSERT_OK(err);
    return provider;
}

struct Env {
    otelprof_span_exporter *mem = nullptr;
    otelprof_tracer_provider *provider = nullptr;
    otelprof_tracer *tracer = nullptr;
    std::unique_ptr<grpc::Server> server;
    std::unique_ptr<grpc::Service> service;
    std::unique_ptr<grpc::ServerCompletionQueue> cq;
    std::thread loop;
    int port = 0;

    explicit Env(bool callback = false, otelprof_grpc::ServerOptions so = {},
                 bool with_tracer = true, Api api = Api::Sync)
    {
        if (callback)
            api = Api::Callback;
        provider = memory_provider(&mem);
        tracer = otelprof_tracer_provider_get_tracer(provider, "test-grpc", nullptr, nullptr);
        if (with_tracer)
            so.tracer = tracer;
        if (api == Api::Callback)
            service.reset(new CallbackEcho);
        else if (api == Api::Async)
            service.reset(new Echo::AsyncService);
        else
            service.reset(new SyncEcho);
        grpc::ServerBuilder b;
        b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
        b.RegisterService(service.get());
        if (api == Api::Async)
            cq = b.AddCompletionQueue();
        std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
        f.emplace_back(new BeforeRecorderFactory);
        f.emplace_back(new otelprof_grpc::ServerInterceptorFactory(so));
        f.emplace_back(new RecorderFactory);
        b.experimental().SetInterceptorCreators(std::move(f));
        server = b.BuildAndStart();
        ASSERT_TRUE(server != nullptr);
        ASSERT_GT(port, 0);
        if (api == Api::Async) {
            new AsyncCall(static_cast<Echo::AsyncService *>(service.get()), cq.get());
            loop = std::thread(async_loop, cq.get());
        }
    }
    ~Env()
    {
        // A deadline: an async call the application never finished must not block it.
        server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
        if (cq) {
            cq->Shutdown();
            loop.join();
        }
        server.reset();
        otelprof_tracer_provider_free(provider);
    }
    std::unique_ptr<Echo::Stub> stub(bool inject = true)
    {
        std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> f;
        if (inject)
            f.emplace_back(new otelprof_grpc::ClientInterceptorFactory());
        auto ch = grpc::experimental::CreateCustomChannelWithInterceptors(
            "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(),
            grpc::ChannelArguments(), std::move(f));
        return Echo::NewStub(ch);
    }
    // A channel whose interceptor starts CLIENT spans through this provider.
    std::unique_ptr<Echo::Stub> stub_with_spans()
    {
        otelprof_grpc::ClientOptions co;
        co.tracer = tracer;
        co.target = "dns:///127.0.0.1:" + std::to_string(port);
        std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> f;
        f.emplace_back(new otelprof_grpc::ClientInterceptorFactory(co));
        auto ch = grpc::experimental::CreateCustomChannelWithInterceptors(
            "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(),
            grpc::ChannelArguments(), std::move(f));
        return Echo::NewStub(ch);
    }
    std::vector<const otelprof_span_data *> spans_of(otelprof_span_kind kind)
    {
        std::vector<const otelprof_span_data *> v;
        for (size_t i = 0; i < otelprof_memory_exporter_count(mem); i++) {
            const otelprof_span_data *d = otelprof_memory_exporter_get(mem, i);
            if (d->kind == kind)
                v.push_back(d);
        }
        return v;
    }
    // The exported SERVER spans.
    std::vector<const otelprof_span_data *> server_spans()
    {
        return spans_of(OTELPROF_SPAN_KIND_SERVER);
    }
    // Waits up to 5 s for n SERVER spans (they end on server threads after the client
    // returned when the client gave up).
    std::vector<const otelprof_span_data *> wait_server_spans(size_t n)
    {
        for (int i = 0; i < 250 && server_spans().size() < n; i++)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return server_spans();
    }
};

const otelprof_kv *attr(const otelprof_span_data *d, const char *key)
{
    for (size_t i = 0; i < d->n_attrs; i++)
        if (std::strcmp(d->attrs[i].key, key) == 0)
            return &d->attrs[i];
    return nullptr;
}

std::string attr_str(const otelprof_span_data *d, const char *key)
{
    const otelprof_kv *kv = attr(d, key);
    if (!kv || kv->value.type != OTELPROF_VALUE_STRING)
        return "(absent)";
    size_t n = kv->value.u.str.len == OTELPROF_NUL_TERMINATED ? std::strlen(kv->value.u.str.ptr)
                                                              : kv->value.u.str.len;
    return std::string(kv->value.u.str.ptr, n);
}

int64_t attr_int(const otelprof_span_data *d, const char *key)
{
    const otelprof_kv *kv = attr(d, key);
    ASSERT_TRUE(kv != nullptr);
    ASSERT_EQ(kv->value.type, OTELPROF_VALUE_INT);
    return kv->value.u.i;
}

// A CLIENT span made current on this thread (scope), as an instrumented caller would.
struct ClientSpan {
    otelprof_span *span;
    otelprof_scope scope{};
    otelprof_span_context ctx;
    explicit ClientSpan(otelprof_tracer *t)
    {
        otelprof_span_start_opts o = {};
        o.sz = sizeof o;
        o.kind = OTELPROF_SPAN_KIND_CLIENT;
        o.root = true;
        span = otelprof_tracer_start_span(t, "client", &o);
        ctx = *otelprof_span_get_context(span);
        ASSERT_TRUE(otelprof_span_context_is_valid(&ctx));
        ASSERT_OK(otelprof_scope_enter(&ctx, &scope));
    }
    ~ClientSpan()
    {
        otelprof_scope_leave(&scope);
        otelprof_span_end(span, 0);
    }
};

// The sync API: every hook otelprof uses ran on the handler thread; the handler saw the
// context; after otelprof's PRE_SEND_STATUS the thread is clean again.
void check_sync_threads(const char *what)
{
    std::lock_guard<std::mutex> l(g_seen.mu);
    ASSERT_TRUE(g_seen.hook_thread.count(static_cast<int>(Hook::POST_RECV_INITIAL_METADATA)));
    ASSERT_TRUE(g_seen.hook_thread.count(static_cast<int>(Hook::PRE_SEND_STATUS)));
    ASSERT_TRUE(pthread_equal(
        g_seen.hook_thread[static_cast<int>(Hook::POST_RECV_INITIAL_METADATA)], g_seen.handler));
    ASSERT_TRUE(
        pthread_equal(g_seen.hook_thread[static_cast<int>(Hook::PRE_SEND_STATUS)], g_seen.handler));
    STR_EQ(g_seen.hook_published[static_cast<int>(Hook::PRE_SEND_STATUS)].c_str(), "none");
    // Nothing left over from an earlier call when this one arrived (the Recorder runs
    // before otelprof on receive hooks).
    STR_EQ(g_seen.hook_published[static_cast<int>(Hook::POST_RECV_INITIAL_METADATA)], "none");
    std::printf("%s: hooks on the handler thread:", what);
    for (auto &kv : g_seen.hook_thread)
        std::printf(" %d%s", kv.first, pthread_equal(kv.second, g_seen.handler) ? "" : "(other)");
    std::printf("; destructor %s\n",
                pthread_equal(g_seen.dtor_thread, g_seen.handler) ? "on it" : "elsewhere");
}

void case_sync_unary()
{
    Env env;
    auto stub = env.stub();
    std::string client_trace;
    uint8_t client_span[8];
    {
        ClientSpan cs(env.tracer);
        client_trace = hex(cs.ctx.trace_id, 16);
        std::memcpy(client_span, cs.ctx.span_id, 8);
        g_seen.reset();
        grpc::ClientContext ctx;
        EchoRequest req;
        req.set_message("1");
        EchoResponse resp;
        grpc::Status st = stub->UnaryEcho(&ctx, req, &resp);
        ASSERT_TRUE(st.ok());
        std::printf("published in handler: %s, client trace %s\n", resp.message().c_str(),
                    client_trace.c_str());
        STR_EQ(resp.message().substr(0, 32).c_str(), client_trace.c_str());
    }
    check_sync_threads("sync unary");
    auto spans = env.server_spans();
    ASSERT_EQ(spans.size(), 1);
    const otelprof_span_data *d = spans[0];
    STR_EQ(hex(d->context.trace_id, 16).c_str(), client_trace.c_str());
    ASSERT_MEM_EQ(d->parent_span_id, client_span, 8);
    ASSERT_TRUE(d->parent_is_remote);
    STR_EQ(d->name, "grpc.examples.echo.Echo/UnaryEcho");
    STR_EQ(attr_str(d, "rpc.system").c_str(), "grpc");
    STR_EQ(attr_str(d, "rpc.service").c_str(), "grpc.examples.echo.Echo");
    STR_EQ(attr_str(d, "rpc.method").c_str(), "UnaryEcho");
    ASSERT_EQ(attr_int(d, "rpc.grpc.status_code"), 0);
    ASSERT_EQ(d->status, OTELPROF_SPAN_STATUS_UNSET);
    /* the client's side of the connection */
    STR_EQ(attr_str(d, "network.peer.address").c_str(), "127.0.0.1");
    ASSERT_TRUE(attr_int(d, "network.peer.port") > 0 && attr_int(d, "network.peer.port") < 65536);
    ASSERT_TRUE(attr_int(d, "network.peer.port") != env.port);
}

void case_sync_error()
{
    Env env;
    auto stub = env.stub();
    for (const char *m : {"fail", "throw"}) {
        g_seen.reset();
        grpc::ClientContext ctx;
        EchoRequest req;
        req.set_message(m);
        EchoResponse resp;
        grpc::Status st = stub->UnaryEcho(&ctx, req, &resp);
        ASSERT_TRUE(!st.ok());
        check_sync_threads(m);
    }
    auto spans = env.server_spans();
    ASSERT_EQ(spans.size(), 2);
    ASSERT_EQ(attr_int(spans[0], "rpc.grpc.status_code"), 3);
    ASSERT_EQ(spans[0]->status, OTELPROF_SPAN_STATUS_ERROR);
    ASSERT_EQ(attr_int(spans[1], "rpc.grpc.status_code"), 2);
    ASSERT_EQ(spans[1]->status, OTELPROF_SPAN_STATUS_ERROR);
}

void case_sync_bidi()
{
    Env env;
    auto stub = env.stub();
    std::string client_trace;
    {
        ClientSpan cs(env.tracer);
        client_trace = hex(cs.ctx.trace_id, 16);
        g_seen.reset();
        grpc::ClientContext ctx;
        auto s = stub->BidirectionalStreamingEcho(&ctx);
        for (int i = 0; i < 3; i++) {
            EchoRequest req;
            req.set_message(std::to_string(i));
            ASSERT_TRUE(s->Write(req));
            EchoResponse resp;
            ASSERT_TRUE(s->Read(&resp));
            STR_EQ(resp.message().substr(0, 32).c_str(), client_trace.c_str());
        }
        s->WritesDone();
        ASSERT_TRUE(s->Finish().ok());
    }
    check_sync_threads("sync bidi");
    auto spans = env.server_spans();
    ASSERT_EQ(spans.size(), 1);
    STR_EQ(attr_str(spans[0], "rpc.method").c_str(), "BidirectionalStreamingEcho");
}

// One OK call, so that the channel is connected before a call with a short deadline (the
// connection set-up must not eat the deadline before the server sees the call); its span
// is dropped.
void warm_up(Env &env, Echo::Stub *stub)
{
    grpc::ClientContext ctx;
    EchoRequest req;
    req.set_message("1");
    EchoResponse resp;
    ASSERT_TRUE(stub->UnaryEcho(&ctx, req, &resp).ok());
    env.wait_server_spans(1);
    otelprof_memory_exporter_reset(env.mem);
}

// The code and status the server recorded for the one SERVER span of a call the client
// gave up on, which ends on the server after the client returned.
void expect_gave_up(Env &env, grpc::StatusCode want, const char *what)
{
    auto spans = env.wait_server_spans(1);
    ASSERT_EQ(spans.size(), 1);
    const otelprof_kv *code = attr(spans[0], "rpc.grpc.status_code");
    ASSERT_TRUE(code != nullptr);
    std::printf("%s: server span status_code=%lld status=%d (%s)\n", what,
                (long long)code->value.u.i, (int)spans[0]->status,
                spans[0]->status_description ? spans[0]->status_description : "");
    ASSERT_EQ(code->value.u.i, static_cast<int>(want));
    ASSERT_EQ(spans[0]->status, OTELPROF_SPAN_STATUS_ERROR);
}

// The client gives up (deadline) while the handler still runs and then returns OK: the
// server span records DEADLINE_EXCEEDED (what the client got), ERROR. Sync: the handler
// stays published until it returns, the thread is clean afterwards. Callback: Finish(OK)
// from another thread after the deadline.
void case_deadline()
{
    for (bool callback : {false, true}) {
        Env env(callback);
        auto stub = env.stub();
        warm_up(env, stub.get());
        g_seen.reset();
        {
            ClientSpan cs(env.tracer);
            grpc::ClientContext ctx;
            ctx.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::milliseconds(kDeadlineMs));
            EchoRequest req;
            req.set_message("sleep");
            EchoResponse resp;
            grpc::Status st = stub->UnaryEcho(&ctx, req, &resp);
            ASSERT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
        }
        expect_gave_up(env, grpc::StatusCode::DEADLINE_EXCEEDED,
                       callback ? "deadline (callback)" : "deadline (sync)");
        std::lock_guard<std::mutex> l(g_seen.mu);
        bool st_seen = g_seen.hook_thread.count(static_cast<int>(Hook::PRE_SEND_STATUS)) != 0;
        std::printf("  PRE_SEND_STATUS %s; destructor on %s thread\n",
                    st_seen ? "ran" : "did not run",
                    pthread_equal(g_seen.dtor_thread, g_seen.handler) ? "the handler" : "another");
        if (callback)
            continue;
        ASSERT_TRUE(st_seen);
        STR_EQ(g_seen.hook_published[static_cast<int>(Hook::PRE_SEND_STATUS)], "none");
        if (pthread_equal(g_seen.dtor_thread, g_seen.handler))
            STR_EQ(g_seen.dtor_published, "none");
    }
}

// The client cancels (ClientContext::TryCancel) while the handler runs, which then
// returns OK: the server span records CANCELLED, ERROR with the callback API, and with the
// sync API when ServerOptions::check_cancelled is on. Off (the default, for its cost), a
// sync call cancelled before its deadline keeps the handler's status: asserted too, so the
// documented trade-off stays true.
void case_cancel()
{
    for (int mode = 0; mode < 3; mode++) {
        bool callback = mode == 2;
        otelprof_grpc::ServerOptions so;
        so.check_cancelled = mode == 1;
        Env env(callback, so);
        auto stub = env.stub();
        g_handlers_started = 0;
        grpc::ClientContext ctx;
        std::thread canceller([&] {
            for (int i = 0; i < 500 && g_handlers_started == 0; i++)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            ctx.TryCancel();
        });
        EchoRequest req;
        req.set_message("sleep");
        EchoResponse resp;
        grpc::Status st = stub->UnaryEcho(&ctx, req, &resp);
        canceller.join();
        ASSERT_EQ(st.error_code(), grpc::StatusCode::CANCELLED);
        if (mode == 0) {
            auto spans = env.wait_server_spans(1);
            ASSERT_EQ(spans.size(), 1);
            const otelprof_kv *code = attr(spans[0], "rpc.grpc.status_code");
            ASSERT_TRUE(code != nullptr);
            std::printf("cancel (sync, check_cancelled off): server span status_code=%lld "
                        "(the handler's)\n",
                        (long long)code->value.u.i);
            ASSERT_EQ(code->value.u.i, 0);
            continue;
        }
        expect_gave_up(env, grpc::StatusCode::CANCELLED,
                       callback ? "cancel (callback)" : "cancel (sync, check_cancelled)");
    }
}

// Hostile metadata: the call always succeeds, and a bad parent starts a new trace.
static int kManyTs = getenv("MANY_TS")
                         ? atoi(getenv("MANY_TS"))
                         : 40; // > 32 members; 200 would exceed gRPC's own 8 KiB metadata limit
                               // (RESOURCE_EXHAUSTED before any interceptor)
void case_hostile()
{
    Env env;
    auto stub = env.stub(false);
    const std::string good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const std::string good2 = "00-11111111111111111111111111111111-2222222222222222-01";
    struct Case {
        const char *name;
        std::vector<std::pair<std::string, std::string>> md;
        bool parent_expected;
    };
    std::vector<Case> cases = {
        {"valid", {{"traceparent", good}}, true},
        {"valid+bad tracestate", {{"traceparent", good}, {"tracestate", "=,=,@@ bad"}}, true},
        {"malformed", {{"traceparent", "00-xyz"}}, false},
        {"uppercase",
         {{"traceparent", "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01"}},
         false},
        {"zero ids",
         {{"traceparent", "00-00000000000000000000000000000000-0000000000000000-01"}},
         false},
        {"duplicated same", {{"traceparent", good}, {"traceparent", good}}, false},
        {"duplicated different", {{"traceparent", good}, {"traceparent", good2}}, false},
        {"oversized", {{"traceparent", good + std::string(7000, 'a')}}, false},
        {"oversized tracestate",
         {{"traceparent", good}, {"tracestate", std::string(7000, 'a') + "=b"}},
         true},
        {"many tracestate", {}, true},
        {"empty", {{"traceparent", ""}}, false},
    };
    for (int i = 0; i < kManyTs; i++)
        cases[9].md.emplace_back("tracestate", "k" + std::to_string(i) + "=v");
    cases[9].md.emplace_back("traceparent", good);
    for (const Case &c : cases) {
        otelprof_memory_exporter_reset(env.mem);
        g_seen.reset();
        grpc::ClientContext ctx;
        for (const auto &kv : c.md)
            ctx.AddMetadata(kv.first, kv.second);
        EchoRequest req;
        req.set_message("x");
        EchoResponse resp;
        grpc::Status st = stub->UnaryEcho(&ctx, req, &resp);
        if (!st.ok())
            TEST_FAIL("%s: call failed: %d %s", c.name, st.error_code(),
                      st.error_message().c_str());
        check_sync_threads(c.name);
        auto spans = env.server_spans();
        ASSERT_EQ(spans.size(), 1);
        std::string tid = hex(spans[0]->context.trace_id, 16);
        STR_EQ(resp.message().substr(0, 32).c_str(), tid.c_str());
        static const uint8_t zero[8] = {0};
        bool has_parent = std::memcmp(spans[0]->parent_span_id, zero, 8) != 0;
        std::printf("%s: trace %s parent %s\n", c.name, tid.c_str(), has_parent ? "yes" : "no");
        ASSERT_EQ(has_parent, c.parent_expected);
        if (c.parent_expected)
            STR_EQ(tid.c_str(), "0af7651916cd43dd8448eb211c80319c");
    }
}

// Include/ignore prefixes: an ignored method gets no span and no publication.
void case_prefixes()
{
    otelprof_grpc::ServerOptions so;
    so.ignore_prefixes = {"/grpc.examples.echo.Echo/Unary"};
    Env env(false, so);
    auto stub = env.stub();
    {
        ClientSpan cs(env.tracer);
        grpc::ClientContext ctx;
        EchoRequest req;
        req.set_message("1");
        EchoResponse resp;
        ASSERT_TRUE(stub->UnaryEcho(&ctx, req, &resp).ok());
        STR_EQ(resp.message().c_str(), "none");
    }
    ASSERT_EQ(env.server_spans().size(), 0);

    otelprof_grpc::ServerOptions so2;
    so2.include_prefixes = {"/grpc.examples.echo.Echo/Bidi"};
    Env env2(false, so2);
    auto stub2 = env2.stub();
    grpc::ClientContext ctx;
    EchoRequest req;
    req.set_message("1");
    EchoResponse resp;
    ASSERT_TRUE(stub2->UnaryEcho(&ctx, req, &resp).ok());
    STR_EQ(resp.message().c_str(), "none");
    ASSERT_EQ(env2.server_spans().size(), 0);
}

// No tracer: propagation only, the remote parent is published as is.
void case_no_tracer()
{
    Env env(false, {}, false);
    auto stub = env.stub();
    ClientSpan cs(env.tracer);
    grpc::ClientContext ctx;
    EchoRequest req;
    req.set_message("1");
    EchoResponse resp;
    ASSERT_TRUE(stub->UnaryEcho(&ctx, req, &resp).ok());
    std::string want = hex(cs.ctx.trace_id, 16) + "-" + hex(cs.ctx.span_id, 8);
    STR_EQ(resp.message().c_str(), want.c_str());
    ASSERT_EQ(env.server_spans().size(), 0);
}

// The callback API: report where the hooks and the handler ran and whether the handler saw
// the context. Documented in docs/grpc.md; the assertions pin what 1.51 does.
void case_callback_gap()
{
    Env env(true);
    auto stub = env.stub();
    std::string client_trace;
    for (int i = 0; i < 3; i++) {
        ClientSpan cs(env.tracer);
        client_trace = hex(cs.ctx.trace_id, 16);
        g_seen.reset();
        grpc::ClientContext ctx;
        EchoRequest req;
        req.set_message("1");
        EchoResponse resp;
        ASSERT_TRUE(stub->UnaryEcho(&ctx, req, &resp).ok());
        std::lock_guard<std::mutex> l(g_seen.mu);
        pthread_t h = g_seen.handler;
        auto on = [&](Hook k) {
            auto it = g_seen.hook_thread.find(static_cast<int>(k));
            if (it == g_seen.hook_thread.end())
                return "not run";
            return pthread_equal(it->second, h) ? "handler thread" : "other thread";
        };
        std::printf("callback unary #%d: handler saw %s (client trace %s)\n"
                    "  POST_RECV_INITIAL_METADATA: %s, PRE_SEND_STATUS: %s (published there "
                    "after otelprof: %s), POST_RECV_CLOSE: %s, destructor: %s\n",
                    i, resp.message().c_str(), client_trace.c_str(),
                    on(Hook::POST_RECV_INITIAL_METADATA), on(Hook::PRE_SEND_STATUS),
                    g_seen.hook_published[static_cast<int>(Hook::PRE_SEND_STATUS)].c_str(),
                    on(Hook::POST_RECV_CLOSE),
                    pthread_equal(g_seen.dtor_thread, h) ? "handler thread" : "other thread");
    }
    auto spans = env.server_spans();
    ASSERT_EQ(spans.size(), 3);
    STR_EQ(hex(spans[2]->context.trace_id, 16), client_trace);

    // The gap: Finish() from another thread after the handler returned. The handler still
    // runs published, but PRE_SEND_STATUS / POST_RECV_CLOSE / the destructor run elsewhere,
    // so the handler thread keeps the call's context until the next call starts on it
    // (which unwinds it before publishing its own).
    std::vector<std::string> traces;
    for (int i = 0; i < 4; i++) {
        ClientSpan cs(env.tracer);
        std::string want = hex(cs.ctx.trace_id, 16);
        traces.push_back(want);
        g_seen.reset();
        {
            std::lock_guard<std::mutex> l(g_before_mu);
            g_before.clear();
        }
        grpc::ClientContext ctx;
        EchoRequest req;
        req.set_message("later");
        EchoResponse resp;
        ASSERT_TRUE(stub->UnaryEcho(&ctx, req, &resp).ok());
        STR_EQ(resp.message().substr(0, 32), want); // the handler itself is published
        std::lock_guard<std::mutex> l(g_seen.mu);
        std::lock_guard<std::mutex> l2(g_before_mu);
        pthread_t h = g_seen.handler;
        auto st = g_seen.hook_thread.find(static_cast<int>(Hook::PRE_SEND_STATUS));
        bool st_on_handler = st != g_seen.hook_thread.end() && pthread_equal(st->second, h);
        // Receive hooks run in reverse registration order: the Recorder (registered last)
        // sees POST_RECV_INITIAL_METADATA before otelprof, BeforeRecorder (first) after.
        std::string before =
            g_seen.hook_published[static_cast<int>(Hook::POST_RECV_INITIAL_METADATA)];
        ASSERT_TRUE(!g_before.empty());
        STR_EQ(g_before[0].second.substr(0, 32), want);
        bool stale = i > 0 && before.substr(0, 32) == traces[static_cast<size_t>(i) - 1];
        std::printf("callback later #%d: handler published ok; PRE_SEND_STATUS on %s; destructor "
                    "on %s; the handler thread showed before otelprof at arrival: %s%s\n",
                    i, st_on_handler ? "handler thread" : "other thread",
                    pthread_equal(g_seen.dtor_thread, h) ? "handler thread" : "other thread",
                    before.c_str(), stale ? " (the previous call's context: stale)" : "");
    }
    ASSERT_EQ(env.server_spans().size(), 7);
}

// A callback bidi stream served by a ServerBidiReactor: OnReadDone/OnWriteDone/OnDone run
// on gRPC callback threads; inside otelprof_grpc::CallScope(server context) they see the
// client's trace (and a brand-new thread sees it too, and nothing before or after).
void case_reactor()
{
    Env env(true);
    auto stub = env.stub();
    for (int round = 0; round < 3; round++) {
        g_reactor.reset();
        std::string want;
        {
            ClientSpan cs(env.tracer);
            want = hex(cs.ctx.trace_id, 16);
            grpc::ClientContext ctx;
            auto s = stub->BidirectionalStreamingEcho(&ctx);
            for (int i = 0; i < 4; i++) {
                EchoRequest req;
                req.set_message(std::to_string(i));
                ASSERT_TRUE(s->Write(req));
                EchoResponse resp;
                ASSERT_TRUE(s->Read(&resp));
                STR_EQ(resp.message().substr(0, 32), want);
            }
            s->WritesDone();
            ASSERT_TRUE(s->Finish().ok());
        }
        for (int i = 0; i < 250; i++) {
            {
                std::lock_guard<std::mutex> l(g_reactor.mu);
                if (g_reactor.done)
                    break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        std::lock_guard<std::mutex> l(g_reactor.mu);
        ASSERT_TRUE(g_reactor.done);
        ASSERT_EQ(g_reactor.on_read.size(), 4);
        int without = 0;
        std::string threads;
        for (size_t i = 0; i < g_reactor.on_read.size(); i++) {
            STR_EQ(g_reactor.on_read[i].substr(0, 32), want);
            STR_EQ(g_reactor.fresh_thread[i].substr(0, 5), "none ");
            STR_EQ(g_reactor.fresh_thread[i].substr(5, 32), want);
            ASSERT_TRUE(g_reactor.fresh_thread[i].size() > 5 + 32 + 1);
            STR_EQ(g_reactor.fresh_thread[i].substr(g_reactor.fresh_thread[i].size() - 5), " none");
            without += g_reactor.before_scope[i].substr(0, 32) != want;
            threads += pthread_equal(g_reactor.threads[i], g_reactor.threads[0]) ? " A" : " B";
        }
        STR_EQ(g_reactor.on_done.substr(0, 32), want);
        std::printf("reactor round %d: OnReadDone threads%s; %d of 4 OnReadDone were not "
                    "published before the CallScope; OnDone published\n",
                    round, threads.c_str(), without);
    }
    ASSERT_EQ(env.server_spans().size(), 3);
}

// The async (completion-queue) API: the application's CQ loop thread handles each tag
// inside otelprof_grpc::CallScope(&server context): it sees the client's trace there,
// nothing before (async_prefixes: no publication inside CompletionQueue::Next) and nothing
// after. A call the application never answers ends without PRE_SEND_STATUS (the
// interceptor's destructor): CANCELLED after TryCancel, DEADLINE_EXCEEDED after the deadline.
void case_async()
{
    otelprof_grpc::ServerOptions so;
    so.async_prefixes = {"/grpc.examples.echo.Echo/"};
    Env env(false, so, true, Api::Async);
    auto stub = env.stub();
    g_async.reset();
    std::string want, want_span;
    {
        ClientSpan cs(env.tracer);
        want = hex(cs.ctx.trace_id, 16);
        want_span = hex(cs.ctx.span_id, 8);
        for (int i = 0; i < 3; i++) {
            grpc::ClientContext ctx;
            EchoRequest req;
            req.set_message("1");
            EchoResponse resp;
            ASSERT_TRUE(stub->UnaryEcho(&ctx, req, &resp).ok());
            STR_EQ(resp.message().substr(0, 32), want);
        }
    }
    {
        std::unique_lock<std::mutex> l(g_async.mu);
        g_async.cv.wait_for(l, std::chrono::seconds(5), [] { return g_async.deleted >= 3; });
        ASSERT_EQ(g_async.deleted, 3);
        int by_kind[3] = {0, 0, 0};
        for (const auto &t : g_async.tags) {
            by_kind[t.kind]++;
            STR_EQ(t.before, "none");
            STR_EQ(t.inside.substr(0, 32), want);
            STR_EQ(t.after, "none");
        }
        std::printf("async: %d request, %d finish, %d done tags, each published inside the "
                    "scope only\n",
                    by_kind[0], by_kind[1], by_kind[2]);
        ASSERT_EQ(by_kind[0], 3);
        ASSERT_EQ(by_kind[1], 3);
        ASSERT_EQ(by_kind[2], 3);
    }
    auto spans = env.server_spans();
    ASSERT_EQ(spans.size(), 3);
    for (const otelprof_span_data *d : spans) {
        STR_EQ(hex(d->context.trace_id, 16), want);
        STR_EQ(hex(d->parent_span_id, 8), want_span);
        ASSERT_EQ(attr_int(d, "rpc.grpc.status_code"), 0);
        ASSERT_EQ(d->status, OTELPROF_SPAN_STATUS_UNSET);
    }

    // Never answered: the client gives up; the done tag says cancelled; the application
    // deletes the call, and with it the interceptor, which ends the span.
    for (bool by_deadline : {false, true}) {
        otelprof_memory_exporter_reset(env.mem);
        g_async.reset();
        g_seen.reset();
        g_handlers_started = 0;
        std::string trace;
        {
            ClientSpan cs(env.tracer);
            trace = hex(cs.ctx.trace_id, 16);
            grpc::ClientContext ctx;
            if (by_deadline)
                ctx.set_deadline(std::chrono::system_clock::now() +
                                 std::chrono::milliseconds(kDeadlineMs));
            std::thread canceller([&] {
                if (by_deadline)
                    return;
                for (int i = 0; i < 500 && g_handlers_started == 0; i++)
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                ctx.TryCancel();
            });
            EchoRequest req;
            req.set_message("abandon");
            EchoResponse resp;
            grpc::Status st = stub->UnaryEcho(&ctx, req, &resp);
            canceller.join();
            ASSERT_EQ(st.error_code(), by_deadline ? grpc::StatusCode::DEADLINE_EXCEEDED
                                                   : grpc::StatusCode::CANCELLED);
        }
        {
            std::unique_lock<std::mutex> l(g_async.mu);
            g_async.cv.wait_for(l, std::chrono::seconds(5), [] { return g_async.deleted >= 1; });
            ASSERT_EQ(g_async.deleted, 1);
            bool done_cancelled = false;
            for (const auto &t : g_async.tags) {
                STR_EQ(t.inside.substr(0, 32), trace);
                STR_EQ(t.after, "none");
                done_cancelled |= t.kind == AsyncCall::DONE && t.cancelled;
            }
            ASSERT_TRUE(done_cancelled);
        }
        expect_gave_up(
            env, by_deadline ? grpc::StatusCode::DEADLINE_EXCEEDED : grpc::StatusCode::CANCELLED,
            by_deadline ? "async, never answered, deadline" : "async, never answered, cancelled");
        STR_EQ(hex(env.server_spans()[0]->context.trace_id, 16), trace);
        std::lock_guard<std::mutex> l(g_seen.mu);
        ASSERT_EQ(g_seen.hook_thread.count(static_cast<int>(Hook::PRE_SEND_STATUS)), 0);
    }
}

// ClientOptions::tracer: the client interceptor starts a CLIENT span (child of the
// caller's current span), injects its context, ends it with the status.
void case_client_span()
{
    Env env;
    auto stub = env.stub_with_spans();
    otelprof_span_start_opts po = {};
    po.sz = sizeof po;
    po.root = true;
    otelprof_span *caller = otelprof_tracer_start_span(env.tracer, "caller", &po);
    otelprof_span_context cctx = *otelprof_span_get_context(caller);
    otelprof_scope scope{};
    ASSERT_OK(otelprof_scope_enter(&cctx, &scope));
    for (const char *m : {"1", "fail"}) {
        grpc::ClientContext ctx;
        EchoRequest req;
        req.set_message(m);
        EchoResponse resp;
        grpc::Status st = stub->UnaryEcho(&ctx, req, &resp);
        ASSERT_EQ(st.ok(), std::string(m) == "1");
        if (st.ok()) // the handler sees the caller's trace
            STR_EQ(resp.message().substr(0, 32), hex(cctx.trace_id, 16));
    }
    ASSERT_OK(otelprof_scope_leave(&scope));
    otelprof_span_end(caller, 0);
    // No current span: the CLIENT span starts a new trace.
    {
        grpc::ClientContext ctx;
        EchoRequest req;
        req.set_message("1");
        EchoResponse resp;
        ASSERT_TRUE(stub->UnaryEcho(&ctx, req, &resp).ok());
    }
    auto servers = env.server_spans();
    auto clients = env.spans_of(OTELPROF_SPAN_KIND_CLIENT);
    ASSERT_EQ(servers.size(), 3);
    ASSERT_EQ(clients.size(), 3);
    static const uint8_t zero[8] = {0};
    for (size_t i = 0; i < 3; i++) {
        const otelprof_span_data *c = clients[i], *sv = servers[i];
        std::printf("client span %s %s parent %s -> server span %s parent %s, code %lld\n",
                    hex(c->context.trace_id, 16).c_str(), hex(c->context.span_id, 8).c_str(),
                    hex(c->parent_span_id, 8).c_str(), hex(sv->context.span_id, 8).c_str(),
                    hex(sv->parent_span_id, 8).c_str(),
                    (long long)attr_int(c, "rpc.grpc.status_code"));
        STR_EQ(c->name, "grpc.examples.echo.Echo/UnaryEcho");
        STR_EQ(attr_str(c, "rpc.system"), "grpc");
        STR_EQ(attr_str(c, "rpc.service"), "grpc.examples.echo.Echo");
        STR_EQ(attr_str(c, "rpc.method"), "UnaryEcho");
        STR_EQ(attr_str(c, "server.address"), "127.0.0.1");
        ASSERT_EQ(attr_int(c, "server.port"), env.port);
        STR_EQ(attr_str(c, "network.peer.address"), "127.0.0.1");
        ASSERT_EQ(attr_int(c, "network.peer.port"), env.port);
        // the server's span is the CLIENT span's child, in the same trace
        ASSERT_MEM_EQ(sv->context.trace_id, c->context.trace_id, 16);
        ASSERT_MEM_EQ(sv->parent_span_id, c->context.span_id, 8);
        ASSERT_TRUE(sv->parent_is_remote);
        if (i < 2) { // under the caller's span
            ASSERT_MEM_EQ(c->context.trace_id, cctx.trace_id, 16);
            ASSERT_MEM_EQ(c->parent_span_id, cctx.span_id, 8);
        } else {
            ASSERT_TRUE(std::memcmp(c->context.trace_id, cctx.trace_id, 16) != 0);
            ASSERT_MEM_EQ(c->parent_span_id, zero, 8);
        }
    }
    ASSERT_EQ(attr_int(clients[0], "rpc.grpc.status_code"), 0);
    ASSERT_EQ(clients[0]->status, OTELPROF_SPAN_STATUS_UNSET);
    ASSERT_EQ(attr_int(clients[1], "rpc.grpc.status_code"), 3);
    ASSERT_EQ(clients[1]->status, OTELPROF_SPAN_STATUS_ERROR);
    STR_EQ(clients[1]->status_description ? clients[1]->status_description : "", "asked to fail");

    // Target forms the options accept.
    struct T {
        const char *target, *host;
        int port;
        bool ok;
    } targets[] = {
        {"dns:///example.com:443", "example.com", 443, true},
        {"dns://8.8.8.8/example.com:8443", "example.com", 8443, true},
        {"ipv4:10.0.0.1:80", "10.0.0.1", 80, true},
        {"ipv6:[::1]:50051", "::1", 50051, true},
        {"[2001:db8::1]:9", "2001:db8::1", 9, true},
        {"localhost", "localhost", -1, true},
        {"host:notaport", "host", -1, true},
        {"unix:/tmp/s.sock", "", -1, false},
        {"dns:///", "", -1, false},
    };
    for (const T &t : targets) {
        std::string host;
        int port = 0;
        bool ok = otelprof_grpc::detail::split_host_port(t.target, &host, &port);
        ASSERT_EQ(ok, t.ok);
        if (ok) {
            STR_EQ(host, t.host);
            ASSERT_EQ(port, t.port);
        }
    }

    // Peer forms gRPC gives (ServerContext::peer, ClientContext::peer), parsed in place.
    T peers[] = {
        {"ipv4:127.0.0.1:54321", "127.0.0.1", 54321, true},
        {"ipv6:[::1]:50051", "::1", 50051, true},
        {"ipv6:[fe80::1%25eth0]:7", "fe80::1%25eth0", 7, true},
        {"[2001:db8::1]", "2001:db8::1", -1, true},
        {"ipv4:10.0.0.1", "10.0.0.1", -1, true},
        {"ipv4:10.0.0.1:0", "10.0.0.1", -1, true},
        {"ipv4:10.0.0.1:65536", "10.0.0.1", -1, true},
        {"ipv4:10.0.0.1:80x", "10.0.0.1", -1, true},
        {"2001:db8::2", "2001:db8::2", -1, true},
        {"unix:/tmp/s.sock", "", -1, false},
        {"unix-abstract:name", "", -1, false},
        {"ipv6:[::1", "", -1, false},
        {"ipv4::80", "", -1, false},
        {"", "", -1, false},
    };
    for (const T &t : peers) {
        char host[64] = "x";
        int port = 0;
        bool ok = otelprof_grpc::detail::peer_host_port(t.target, host, sizeof host, &port);
        ASSERT_EQ(ok, t.ok);
        if (ok) {
            STR_EQ(host, t.host);
            ASSERT_EQ(port, t.port);
        }
    }
    // a host that does not fit is refused, not cut
    std::string longp = "ipv4:" + std::string(64, 'a') + ":1";
    char small[64];
    int port = 0;
    ASSERT_TRUE(!otelprof_grpc::detail::peer_host_port(longp.c_str(), small, sizeof small, &port));
}

// Baggage sent by the client is extracted by the server interceptor (baggage propagator,
// on by default) and readable for the call with otelprof_grpc::CallBaggage.
// A sync call without baggage is not registered by default (ServerOptions::
// register_sync_calls): "(unknown call)" then, "(empty)" with the option.
void case_baggage()
{
    for (bool reg : {false, true}) {
        otelprof_grpc::ServerOptions so;
        so.register_sync_calls = reg;
        Env env(false, so);
        auto stub = env.stub(false);
        struct C {
            std::vector<std::string> fields;
            std::string want;
        };
        std::vector<C> cases = {
            {{"user=alice,tier=gold"}, "user=alice,tier=gold"},
            {{"user=bob", "tier=silver;prop"}, "user=bob,tier=silver"}, // two fields combine
            {{}, reg ? "(empty)" : "(unknown call)"},
            {{"%%%bad,user=carol"}, "user=carol"}, // a malformed member is dropped
        };
        // eleven fields: the first and the last count (baggage_of reports user and tier)
        C many;
        many.fields.push_back("tier=bronze");
        for (int i = 1; i < 10; i++)
            many.fields.push_back("k" + std::to_string(i) + "=v" + std::to_string(i));
        many.fields.push_back("user=dave");
        many.want = "user=dave,tier=bronze";
        cases.push_back(many);
        for (const C &c : cases) {
            grpc::ClientContext ctx;
            ctx.AddMetadata("traceparent",
                            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
            for (const std::string &f : c.fields)
                ctx.AddMetadata("baggage", f);
            EchoRequest req;
            req.set_message("baggage");
            EchoResponse resp;
            ASSERT_TRUE(stub->UnaryEcho(&ctx, req, &resp).ok());
            std::printf("baggage %s -> %s\n", c.fields.empty() ? "(none)" : c.fields[0].c_str(),
                        resp.message().c_str());
            STR_EQ(resp.message(), c.want);
        }
        // Outside a call: unknown.
        grpc::ServerContext other;
        STR_EQ(baggage_of(&other), "(unknown call)");

        // The client interceptor sends the thread's BaggageScope (default propagators:
        // tracecontext,baggage), the innermost scope winning; none once the scopes end.
        auto injecting = env.stub(true);
        auto call = [&]() {
            grpc::ClientContext ctx;
            EchoRequest req;
            req.set_message("baggage");
            EchoResponse resp;
            ASSERT_TRUE(injecting->UnaryEcho(&ctx, req, &resp).ok());
            return resp.message();
        };
        otelprof_baggage outer, inner;
        otelprof_baggage_clear(&outer);
        otelprof_baggage_clear(&inner);
        ASSERT_OK(otelprof_baggage_parse(&outer, "user=dave,tier=gold", OTELPROF_NUL_TERMINATED));
        ASSERT_OK(otelprof_baggage_parse(&inner, "user=erin", OTELPROF_NUL_TERMINATED));
        {
            ClientSpan cs(env.tracer);
            otelprof_grpc::BaggageScope a(outer);
            STR_EQ(call(), "user=dave,tier=gold");
            {
                otelprof_grpc::BaggageScope b(inner);
                STR_EQ(call(), "user=erin");
            }
            STR_EQ(call(), "user=dave,tier=gold");
        }
        {
            // no span context: the baggage alone is sent, and the call is registered for it
            otelprof_grpc::BaggageScope a(inner);
            STR_EQ(call(), "user=erin");
        }
        {
            ClientSpan cs(env.tracer);
            STR_EQ(call(), reg ? "(empty)" : "(unknown call)"); // scopes gone: nothing sent
        }
    }
}

std::string json_str(const std::string &j, const char *key)
{
    std::string k = std::string("\"") + key + "\":\"";
    size_t at = j.find(k);
    if (at == std::string::npos)
        return "";
    at += k.size();
    return j.substr(at, j.find('"', at) - at);
}

// A Node.js client (@grpc/grpc-js, OTel JS W3C propagator) against this server.
void case_node_client()
{
    const char *node = getenv("GRPC_NODE"), *mods = getenv("GRPC_NODE_MODULES"),
               *client = getenv("GRPC_NODE_CLIENT"), *proto = getenv("GRPC_ECHO_PROTO");
    if (!node || !*node || std::strstr(node, "NOTFOUND"))
        TEST_SKIP("node not found");
    if (!mods || !client || !proto)
        TEST_SKIP(
            "GRPC_NODE_MODULES / GRPC_NODE_CLIENT / GRPC_ECHO_PROTO not set (run through ctest)");
    std::string probe = std::string(mods) + "/@grpc/grpc-js/package.json";
    if (access(probe.c_str(), R_OK) != 0)
        TEST_SKIP("npm packages not installed in %s (grpc.npm_ci skipped or failed)", mods);
    Env env;
    std::string cmd = std::string("NODE_PATH='") + mods + "' '" + node + "' '" + client +
                      "' 127.0.0.1:" + std::to_string(env.port) + " '" + proto + "'";
    FILE *f = popen(cmd.c_str(), "r");
    ASSERT_TRUE(f != nullptr);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        out.append(buf, n);
    int rc = pclose(f);
    std::printf("node client: %s", out.c_str());
    ASSERT_EQ(rc, 0);
    std::string trace = json_str(out, "traceId"), span = json_str(out, "spanId");
    ASSERT_EQ(trace.size(), 32);
    STR_EQ(json_str(out, "unary").substr(0, 32), trace);
    std::string bidi = "\"bidi\":[\"" + trace;
    ASSERT_TRUE(out.find(bidi) != std::string::npos);
    auto spans = env.server_spans();
    ASSERT_EQ(spans.size(), 2);
    for (const otelprof_span_data *d : spans) {
        STR_EQ(hex(d->context.trace_id, 16), trace);
        STR_EQ(hex(d->parent_span_id, 8), span);
        ASSERT_EQ(attr_int(d, "rpc.grpc.status_code"), 0);
    }
}

// ---- generic (AsyncGenericService) methods ----

std::string bytes_of(const grpc::ByteBuffer &bb)
{
    std::vector<grpc::Slice> slices;
    std::string out;
    if (bb.Dump(&slices).ok())
        for (const grpc::Slice &sl : slices)
            out.append(reinterpret_cast<const char *>(sl.begin()), sl.size());
    return out;
}

grpc::ByteBuffer buffer_of(const std::string &text)
{
    grpc::Slice sl(text);
    return grpc::ByteBuffer(&sl, 1);
}

// One call of a generic service: request, read, answer with what the handler saw.
struct GenericCall {
    enum Step { REQUEST, READ, FINISH };
    grpc::GenericServerContext ctx;
    grpc::GenericServerAsyncReaderWriter stream{&ctx};
    grpc::ByteBuffer req;
    Step step = REQUEST;
};

// A generic service (no generated code: raw bytes, any method name): the interceptor traces
// its calls like generated ones, and CallScope publishes them in the application's
// completion-queue loop.
void case_generic()
{
    otelprof_span_exporter *mem = nullptr;
    otelprof_tracer_provider *provider = memory_provider(&mem);
    otelprof_tracer *tracer =
        otelprof_tracer_provider_get_tracer(provider, "test-grpc", nullptr, nullptr);

    otelprof_grpc::ServerOptions so;
    so.tracer = tracer;
    so.async_prefixes = {"/raw.Bytes/"};
    grpc::AsyncGenericService generic;
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterAsyncGenericService(&generic);
    std::unique_ptr<grpc::ServerCompletionQueue> cq = b.AddCompletionQueue();
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
    f.emplace_back(new otelprof_grpc::ServerInterceptorFactory(so));
    b.experimental().SetInterceptorCreators(std::move(f));
    std::unique_ptr<grpc::Server> server = b.BuildAndStart();
    ASSERT_TRUE(server != nullptr);

    std::mutex mu;
    std::vector<std::string> outside; // what the loop thread published between tags
    std::thread loop([&] {
        GenericCall *first = new GenericCall;
        generic.RequestCall(&first->ctx, &first->stream, cq.get(), cq.get(), first);
        void *tag = nullptr;
        bool ok = false;
        while (cq->Next(&tag, &ok)) {
            GenericCall *c = static_cast<GenericCall *>(tag);
            bool del = !ok;
            {
                otelprof_grpc::CallScope scope(&c->ctx);
                if (ok && c->step == GenericCall::REQUEST) {
                    GenericCall *next = new GenericCall;
                    generic.RequestCall(&next->ctx, &next->stream, cq.get(), cq.get(), next);
                    c->step = GenericCall::READ;
                    c->stream.Read(&c->req, c);
                } else if (ok && c->step == GenericCall::READ) {
                    // the answer: the method, what was sent, and the context published here
                    c->step = GenericCall::FINISH;
                    c->stream.WriteAndFinish(
                        buffer_of(c->ctx.method() + " " + bytes_of(c->req) + " " + published()),
                        grpc::WriteOptions(), grpc::Status::OK, c);
                } else {
                    del = true;
                }
            }
            {
                std::lock_guard<std::mutex> l(mu);
                outside.push_back(published());
            }
            if (del)
                delete c;
        }
    });

    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> cf;
    cf.emplace_back(new otelprof_grpc::ClientInterceptorFactory());
    auto ch = grpc::experimental::CreateCustomChannelWithInterceptors(
        "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(),
        grpc::ChannelArguments(), std::move(cf));
    grpc::GenericStub stub(ch);
    grpc::CompletionQueue ccq;
    std::vector<std::string> traces, parents;
    for (int i = 0; i < 3; i++) {
        ClientSpan cs(tracer);
        traces.push_back(hex(cs.ctx.trace_id, 16));
        parents.push_back(hex(cs.ctx.span_id, 8));
        grpc::ClientContext ctx;
        std::unique_ptr<grpc::GenericClientAsyncResponseReader> call = stub.PrepareUnaryCall(
            &ctx, "/raw.Bytes/Echo", buffer_of("ping" + std::to_string(i)), &ccq);
        call->StartCall();
        grpc::ByteBuffer resp;
        grpc::Status st;
        call->Finish(&resp, &st, reinterpret_cast<void *>(1));
        void *tag = nullptr;
        bool ok = false;
        ASSERT_TRUE(ccq.Next(&tag, &ok));
        ASSERT_TRUE(ok);
        ASSERT_TRUE(st.ok());
        std::string got = bytes_of(resp);
        std::printf("generic call %d answered: %s\n", i, got.c_str());
        STR_EQ(got.substr(0, got.rfind(' ')), "/raw.Bytes/Echo ping" + std::to_string(i));
        STR_EQ(got.substr(got.rfind(' ') + 1, 32), traces.back()); // published in the handler
    }
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    cq->Shutdown();
    loop.join();
    ccq.Shutdown();
    {
        std::lock_guard<std::mutex> l(mu);
        ASSERT_GT(outside.size(), 0);
        for (const std::string &o2 : outside)
            STR_EQ(o2, "none"); // nothing stays published outside CallScope
    }
    size_t n = 0;
    for (size_t i = 0; i < otelprof_memory_exporter_count(mem); i++) {
        const otelprof_span_data *d = otelprof_memory_exporter_get(mem, i);
        if (d->kind != OTELPROF_SPAN_KIND_SERVER)
            continue;
        ASSERT_LT(n, traces.size());
        STR_EQ(hex(d->context.trace_id, 16), traces[n]);
        STR_EQ(hex(d->parent_span_id, 8), parents[n]);
        STR_EQ(d->name, "raw.Bytes/Echo");
        STR_EQ(attr_str(d, "rpc.service"), "raw.Bytes");
        STR_EQ(attr_str(d, "rpc.method"), "Echo");
        ASSERT_EQ(attr_int(d, "rpc.grpc.status_code"), 0);
        n++;
    }
    ASSERT_EQ(n, 3);
    server.reset();
    otelprof_tracer_provider_free(provider);
}

// Client for the example's smoke test: `call HOST:PORT MESSAGE` under a random span
// context made current with a scope; prints "<client trace id> <client span id>" before
// the call (grpc_inspect.py reads them while the call runs), then "<reply>".
int case_call(const char *target, const char *message)
{
    uint8_t tid[16], sid[8];
    otelprof_random_trace_id(tid);
    otelprof_random_span_id(sid);
    otelprof_span_context sc{};
    std::memcpy(sc.trace_id, tid, 16);
    std::memcpy(sc.span_id, sid, 8);
    sc.trace_flags = OTELPROF_FLAG_SAMPLED;
    otelprof_scope scope{};
    ASSERT_OK(otelprof_scope_enter(&sc, &scope));
    std::printf("%s %s\n", hex(tid, 16).c_str(), hex(sid, 8).c_str());
    std::fflush(stdout);
    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> f;
    f.emplace_back(new otelprof_grpc::ClientInterceptorFactory());
    auto stub = Echo::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
        target, grpc::InsecureChannelCredentials(), grpc::ChannelArguments(), std::move(f)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    EchoRequest req;
    req.set_message(message);
    EchoResponse resp;
    grpc::Status st = stub->UnaryEcho(&ctx, req, &resp);
    otelprof_scope_leave(&scope);
    if (!st.ok()) {
        std::fprintf(stderr, "call failed: %d %s\n", st.error_code(), st.error_message().c_str());
        return 1;
    }
    std::printf("%s\n", resp.message().c_str());
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc == 4 && std::string(argv[1]) == "call")
        return case_call(argv[2], argv[3]);
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CASE\n", argv[0]);
        return 2;
    }
    std::setvbuf(stdout, nullptr, _IONBF, 0);
    std::string c = argv[1];
    if (c == "sync_unary")
        case_sync_unary();
    else if (c == "sync_error")
        case_sync_error();
    else if (c == "sync_bidi")
        case_sync_bidi();
    else if (c == "hostile")
        case_hostile();
    else if (c == "prefixes")
        case_prefixes();
    else if (c == "no_tracer")
        case_no_tracer();
    else if (c == "callback_gap")
        case_callback_gap();
    else if (c == "deadline")
        case_deadline();
    else if (c == "cancel")
        case_cancel();
    else if (c == "reactor")
        case_reactor();
    else if (c == "async")
        case_async();
    else if (c == "client_span")
        case_client_span();
    else if (c == "baggage")
        case_baggage();
    else if (c == "node_client")
        case_node_client();
    else if (c == "generic")
        case_generic();
    else {
        std::fprintf(stderr, "unknown case %s\n", c.c_str());
        return 2;
    }
    std::printf("ok\n");
    return 0;
}
