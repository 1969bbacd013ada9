/* gRPC server interceptor overhead: unary Echo calls on 127.0.0.1 (see run.sh).
 *
 *   bench_grpc run   [--duration S] [--warmup S] [--rounds N] [--threads T] [--modes LIST]
 *                    [--server-cpus LIST] [--client-cpus LIST] [--pollers MIN,MAX]
 *   bench_grpc instr [--calls N] [--modes LIST]     (under callgrind: see run.sh)
 *   bench_grpc server MODE [--otlp URL] [--pollers MIN,MAX]   (spawned by run/instr)
 *   bench_grpc sink                                 the OTLP/HTTP sink (spawned by run/instr)
 *
 * Modes of the server (same sync Echo service and handler in each; --modes must start
 * with base, the denominator of the ratios):
 *   base   no interceptor
 *   prop   otelprof_grpc::ServerInterceptorFactory without a tracer (extract + publish)
 *   sdk    the interceptor with an SDK tracer, batch processor, OTLP/HTTP to the sink
 * and, to find where a cost comes from:
 *   noop   an interceptor that does nothing (grpc++'s own cost of intercepting a call)
 *   attach noop + otelprof_attach/detach of a fixed context (the core's share)
 *   cancel noop + ServerContext::IsCancelled() at PRE_SEND_STATUS (as grpc.h does)
 *   nopub  prop with ServerOptions::publish = false (extract only, nothing published)
 *
 * `run` starts the sink and one server process per mode (so that the server's CPU time is
 * its own: getrusage(RUSAGE_SELF) in the server, asked for over a pipe just before and
 * after each measured window), then measures the modes in rounds, alternating the order
 * (ABC, CBA, ...) to cancel drift. The load generator is this process: T threads, each
 * with its own channel (own TCP connection), making blocking UnaryEcho calls with the same
 * traceparent for every mode. Children talk over stdin/stdout: they print "ready PORT",
 * then answer one line per command line; EOF on stdin stops them.
 */
#include "echo.grpc.pb.h"

#include <otelprof/exporter_otlp.h>
#include <otelprof/grpc.h>
#include <otelprof/otelprof.h>
#include <otelprof/sdk.h>

#include <grpcpp/grpcpp.h>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#endif

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using grpc::examples::echo::Echo;
using grpc::examples::echo::EchoRequest;
using grpc::examples::echo::EchoResponse;

namespace
{

const char kTraceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

double now_s()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

/* utime + stime of this process, microseconds; *csw: its context switches (voluntary and
 * not), which tell thread hand-offs apart from work. */
long long cpu_us(long long *csw = nullptr)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (csw)
        *csw = ru.ru_nvcsw + ru.ru_nivcsw;
    return (static_cast<long long>(ru.ru_utime.tv_sec) + ru.ru_stime.tv_sec) * 1000000LL +
           ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

std::string cpu_line()
{
    long long csw = 0, us = cpu_us(&csw);
    return "cpu " + std::to_string(us) + " " + std::to_string(csw);
}

/* ---- server ---- */

class EchoImpl final : public Echo::Service
{
    grpc::Status UnaryEcho(grpc::ServerContext *, const EchoRequest *req,
                           EchoResponse *resp) override
    {
        resp->set_message(req->message());
        return grpc::Status::OK;
    }
};

/* Mode noop: an interceptor that only proceeds, to tell grpc++'s interceptor machinery
 * apart from what otelprof's does in its hooks. */
class NoopInterceptor final : public grpc::experimental::Interceptor
{
  public:
    NoopInterceptor(bool attach, grpc::ServerContextBase *cancel) : attach_(attach), cancel_(cancel)
    {
    }
    void Intercept(grpc::experimental::InterceptorBatchMethods *m) override
    {
        using H = grpc::experimental::InterceptionHookPoints;
        /* Mode attach: only otelprof_attach/detach of a fixed context around the handler,
         * the core's share of what prop does. */
        if (attach_ && m->QueryInterceptionHookPoint(H::POST_RECV_INITIAL_METADATA)) {
            otelprof_context c{};
            memset(c.trace_id, 0x4b, sizeof c.trace_id);
            memset(c.span_id, 0x0f, sizeof c.span_id);
            c.trace_flags = 1;
            attached_ = otelprof_attach(&c, nullptr, 0, &tok_) == OTELPROF_OK;
        }
        if (attached_ && m->QueryInterceptionHookPoint(H::PRE_SEND_STATUS)) {
            otelprof_detach(&tok_);
            attached_ = false;
        }
        /* Mode cancel: ServerContext::IsCancelled() at PRE_SEND_STATUS, as grpc.h asks it
         * to record the status a cancelled client got. */
        if (cancel_ && m->QueryInterceptionHookPoint(H::PRE_SEND_STATUS))
            cancelled_ = cancel_->IsCancelled();
        m->Proceed();
    }

  private:
    bool attach_, attached_ = false, cancelled_ = false;
    grpc::ServerContextBase *cancel_;
    otelprof_token tok_ = OTELPROF_TOKEN_INIT;
};

class NoopFactory final : public grpc::experimental::ServerInterceptorFactoryInterface
{
  public:
    NoopFactory(bool attach, bool cancel) : attach_(attach), cancel_(cancel) {}
    grpc::experimental::Interceptor *
    CreateServerInterceptor(grpc::experimental::ServerRpcInfo *info) override
    {
        return new NoopInterceptor(attach_, cancel_ ? info->server_context() : nullptr);
    }

  private:
    bool attach_, cancel_;
};

int server_main(const std::string &mode, const char *otlp, int min_pollers, int max_pollers)
{
    otelprof_init(nullptr); /* every mode: one-time process context, no per-call cost */
    otelprof_tracer_provider *provider = nullptr;
    otelprof_span_processor *batch = nullptr;
    otelprof_span_exporter *exporter = nullptr;
    otelprof_grpc::ServerOptions so;
    if (mode == "sdk") {
        otelprof_status err = OTELPROF_OK;
        otelprof_otlp_opts oo = {};
        oo.sz = sizeof oo;
        oo.endpoint = otlp;
        exporter = otelprof_otlp_exporter_new(&oo, &err);
        if (!exporter) {
            fprintf(stderr, "bench_grpc: OTLP exporter: %s\n", otelprof_strerror(err));
            return 1;
        }
        /* As bench/http: a queue that keeps up with tens of thousands of calls per second
         * (the defaults, 2048 spans every 5 s, would drop most spans: cheaper, unfair). */
        otelprof_batch_opts bo = {};
        bo.sz = sizeof bo;
        bo.max_queue_size = 65536;
        bo.schedule_delay_ms = 100;
        bo.max_export_batch_size = 4096;
        batch = otelprof_batch_processor_new(exporter, &bo);
        otelprof_sdk_opts o = {};
        o.sz = sizeof o;
        o.sampler = otelprof_sampler_always_on();
        o.processors = &batch;
        o.n_processors = 1;
        provider = otelprof_sdk_provider_new(&o, &err);
        if (!provider) {
            fprintf(stderr, "bench_grpc: SDK provider: %s\n", otelprof_strerror(err));
            return 1;
        }
        so.tracer = otelprof_tracer_provider_get_tracer(provider, "bench-grpc", nullptr, nullptr);
    } else if (mode == "nopub") {
        so.publish = false;
    } else if (mode != "prop" && mode != "base" && mode != "noop" && mode != "attach" &&
               mode != "cancel") {
        fprintf(stderr, "bench_grpc: unknown mode %s\n", mode.c_str());
        return 2;
    }
    EchoImpl service;
    int port = 0;
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service);
    /* grpc++'s defaults (1 and 2) make its thread manager start and end threads all the
     * time under concurrent load; larger values keep the threads (--pollers). */
    if (min_pollers > 0)
        b.SetSyncServerOption(grpc::ServerBuilder::MIN_POLLERS, min_pollers);
    if (max_pollers > 0)
        b.SetSyncServerOption(grpc::ServerBuilder::MAX_POLLERS, max_pollers);
    if (mode != "base") {
        std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
        if (mode == "noop" || mode == "attach" || mode == "cancel")
            f.emplace_back(new NoopFactory(mode == "attach", mode == "cancel"));
        else
            f.emplace_back(new otelprof_grpc::ServerInterceptorFactory(so));
        b.experimental().SetInterceptorCreators(std::move(f));
    }
    std::unique_ptr<grpc::Server> server = b.BuildAndStart();
    if (!server || port <= 0) {
        fprintf(stderr, "bench_grpc: cannot listen on 127.0.0.1\n");
        return 1;
    }
    printf("ready %d\n", port);
    fflush(stdout);

    auto stats = [&](const char *tag) {
        otelprof_batch_stats bs{};
        otelprof_otlp_stats os{};
        if (batch)
            otelprof_batch_processor_stats(batch, &bs);
        if (exporter)
            otelprof_otlp_exporter_stats(exporter, &os);
        printf("%s enqueued %llu exported %llu dropped %llu failures %llu requests %llu\n", tag,
               static_cast<unsigned long long>(bs.enqueued),
               static_cast<unsigned long long>(bs.exported),
               static_cast<unsigned long long>(bs.dropped_queue_full),
               static_cast<unsigned long long>(bs.export_failures),
               static_cast<unsigned long long>(os.requests));
    };
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        switch (line[0]) {
        case 'u': /* CPU time so far */
            printf("%s\n", cpu_line().c_str());
            break;
        case 's': /* span counters */
            stats("spans");
            break;
        case 'f': /* flush the batch queue (instr: every span exported inside the window) */
            if (provider)
                otelprof_tracer_provider_force_flush(provider, 10000);
            printf("flushed\n");
            break;
        case 'z': /* callgrind window (no-ops outside valgrind) */
            CALLGRIND_ZERO_STATS;
            printf("zeroed\n");
            break;
        case 'd':
            CALLGRIND_DUMP_STATS_AT(mode.c_str());
            printf("dumped\n");
            break;
        default:
            printf("?\n");
        }
        fflush(stdout);
    }
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server.reset();
    if (provider) {
        otelprof_tracer_provider_force_flush(provider, 10000);
        stats("final");
        otelprof_tracer_provider_free(provider);
    }
    return 0;
}

/* ---- OTLP/HTTP sink ---- */

std::atomic<unsigned long long> g_requests{0}, g_spans{0}, g_bad{0}, g_bytes{0};

bool varint(const unsigned char *&p, const unsigned char *end, unsigned long long *v)
{
    *v = 0;
    for (int shift = 0; p < end && shift < 64; shift += 7) {
        unsigned char c = *p++;
        *v |= static_cast<unsigned long long>(c & 0x7f) << shift;
        if (!(c & 0x80))
            return true;
    }
    return false;
}

/* Calls fn(field, payload, len) for each length-delimited field of a message; skips the
 * others. False when the message is malformed. */
template <typename F> bool each_len_field(const unsigned char *p, const unsigned char *end, F fn)
{
    while (p < end) {
        unsigned long long key, v;
        if (!varint(p, end, &key))
            return false;
        switch (key & 7) {
        case 0:
            if (!varint(p, end, &v))
                return false;
            break;
        case 1:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        case 2:
            if (!varint(p, end, &v) || v > static_cast<unsigned long long>(end - p))
                return false;
            if (!fn(key >> 3, p, p + v))
                return false;
            p += v;
            break;
        default:
            return false;
        }
    }
    return true;
}

/* Spans in an ExportTraceServiceRequest: resource_spans(1) > scope_spans(2) > spans(2). */
long long count_spans(const unsigned char *p, size_t n)
{
    long long spans = 0;
    bool ok = each_len_field(p, p + n, [&](unsigned long long f, auto *b, auto *e) {
        return f != 1 || each_len_field(b, e, [&](unsigned long long f2, auto *b2, auto *e2) {
                   return f2 != 2 ||
                          each_len_field(b2, e2, [&](unsigned long long f3, auto *, auto *) {
                              spans += f3 == 2;
                              return true;
                          });
               });
    });
    return ok ? spans : -1;
}

bool read_full(int fd, char *buf, size_t n)
{
    while (n) {
        ssize_t k = read(fd, buf, n);
        if (k <= 0)
            return false;
        buf += k;
        n -= static_cast<size_t>(k);
    }
    return true;
}

/* One keep-alive connection: POST requests with a Content-Length (the exporter sends no
 * Expect: 100-continue and no chunked bodies), each answered 200 with an empty body (a
 * valid empty ExportTraceServiceResponse). */
void sink_conn(int c)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                             "Content-Length: 0\r\n\r\n";
    std::string buf, body;
    char tmp[65536];
    for (;;) {
        size_t hend;
        while ((hend = buf.find("\r\n\r\n")) == std::string::npos) {
            if (buf.size() > 65536)
                goto out;
            ssize_t k = read(c, tmp, sizeof tmp);
            if (k <= 0)
                goto out;
            buf.append(tmp, static_cast<size_t>(k));
        }
        size_t clen = 0;
        for (size_t i = 0; i < hend; i = buf.find("\r\n", i) + 2) {
            if (strncasecmp(buf.c_str() + i, "content-length:", 15) == 0) {
                clen = strtoul(buf.c_str() + i + 15, nullptr, 10);
                break;
            }
            if (buf.find("\r\n", i) >= hend)
                break;
        }
        body.assign(buf, hend + 4, std::string::npos);
        buf.clear();
        if (body.size() > clen) { /* pipelined bytes: keep them for the next request */
            buf.assign(body, clen, std::string::npos);
            body.resize(clen);
        } else if (body.size() < clen) {
            size_t have = body.size();
            body.resize(clen);
            if (!read_full(c, &body[have], clen - have))
                goto out;
        }
        long long n = count_spans(reinterpret_cast<const unsigned char *>(body.data()), clen);
        g_requests++;
        g_bytes += clen;
        if (n < 0)
            g_bad++;
        else
            g_spans += static_cast<unsigned long long>(n);
        if (write(c, ok, sizeof ok - 1) != static_cast<ssize_t>(sizeof ok - 1))
            goto out;
    }
out:
    close(c);
}

int sink_main()
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<struct sockaddr *>(&a), sizeof a) != 0 ||
        listen(fd, 16) != 0 ||
        getsockname(fd, reinterpret_cast<struct sockaddr *>(&a), &len) != 0) {
        perror("bench_grpc sink");
        return 1;
    }
    std::thread([fd] {
        for (;;) {
            int c = accept(fd, nullptr, nullptr);
            if (c < 0)
                continue;
            int one = 1;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            std::thread(sink_conn, c).detach();
        }
    }).detach();
    printf("ready %d\n", ntohs(a.sin_port));
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'u')
            printf("%s\n", cpu_line().c_str());
        else
            printf("sink requests %llu spans %llu bytes %llu malformed %llu\n", g_requests.load(),
                   g_spans.load(), g_bytes.load(), g_bad.load());
        fflush(stdout);
    }
    return 0;
}

/* ---- the driver ---- */

struct Child {
    std::string name;
    pid_t pid = -1;
    FILE *in = nullptr, *out = nullptr; /* its stdin, its stdout */
    int port = 0;

    /* One command line, one answer line. */
    std::string ask(const char *cmd)
    {
        char line[256];
        fprintf(in, "%s\n", cmd);
        fflush(in);
        if (!fgets(line, sizeof line, out)) {
            fprintf(stderr, "bench_grpc: %s died\n", name.c_str());
            exit(1);
        }
        line[strcspn(line, "\n")] = 0;
        return line;
    }
    long long cpu(long long *csw = nullptr)
    {
        long long us = 0, n = 0;
        sscanf(ask("u").c_str(), "cpu %lld %lld", &us, &n);
        if (csw)
            *csw = n;
        return us;
    }
    /* Close its stdin; the rest of its output (final counters) is returned. */
    std::string stop()
    {
        if (!in)
            return "";
        fclose(in);
        in = nullptr;
        std::string rest;
        char line[256];
        while (fgets(line, sizeof line, out))
            rest += line;
        fclose(out);
        int st;
        waitpid(pid, &st, 0);
        return rest;
    }
};

bool parse_cpus(const char *s, cpu_set_t *set)
{
    CPU_ZERO(set);
    for (const char *p = s; *p;) {
        char *e;
        long a = strtol(p, &e, 10), b = a;
        if (e == p)
            return false;
        if (*e == '-')
            b = strtol(e + 1, &e, 10);
        for (long i = a; i <= b && i < CPU_SETSIZE; i++)
            CPU_SET(static_cast<int>(i), set);
        p = *e == ',' ? e + 1 : e;
        if (*e && *e != ',')
            return false;
    }
    return true;
}

/* fork + exec this program with args (before any gRPC state exists in this process, or
 * from a process whose gRPC threads the child never needs: exec replaces it at once). */
Child spawn(const std::string &name, std::vector<std::string> args, const char *cpus,
            const std::vector<std::string> &wrap = {})
{
    static std::string self = [] {
        char b[4096];
        ssize_t n = readlink("/proc/self/exe", b, sizeof b - 1);
        return std::string(b, n > 0 ? static_cast<size_t>(n) : 0);
    }();
    int to[2], from[2];
    /* CLOEXEC: later children must not hold these ends (stdin EOF is the stop signal). */
    if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC)) {
        perror("pipe");
        exit(1);
    }
    Child c;
    c.name = name;
    c.pid = fork();
    if (c.pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no stray servers if the driver dies */
        cpu_set_t set;
        if (cpus && *cpus && parse_cpus(cpus, &set))
            sched_setaffinity(0, sizeof set, &set);
        std::vector<std::string> argv = wrap;
        argv.push_back(self);
        argv.insert(argv.end(), args.begin(), args.end());
        std::vector<char *> av;
        for (auto &s : argv)
            av.push_back(&s[0]);
        av.push_back(nullptr);
        execvp(av[0], av.data());
        _exit(127);
    }
    close(to[0]), close(from[1]);
    c.in = fdopen(to[1], "w");
    c.out = fdopen(from[0], "r");
    char line[256];
    int port = 0;
    if (!fgets(line, sizeof line, c.out) || sscanf(line, "ready %d", &port) != 1) {
        fprintf(stderr, "bench_grpc: %s did not start\n", name.c_str());
        exit(1);
    }
    c.port = port;
    return c;
}

std::unique_ptr<Echo::Stub> make_stub(int port)
{
    grpc::ChannelArguments args;
    /* One TCP connection per channel (channels with equal arguments share one otherwise). */
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto ch = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                        grpc::InsecureChannelCredentials(), args);
    return Echo::NewStub(ch);
}

bool call(Echo::Stub *stub)
{
    grpc::ClientContext ctx;
    ctx.AddMetadata("traceparent", kTraceparent);
    EchoRequest req;
    req.set_message("hello");
    EchoResponse resp;
    return stub->UnaryEcho(&ctx, req, &resp).ok();
}

struct Sample {
    double cps = 0;        /* calls per second */
    double server_us = 0;  /* server CPU per call */
    double client_us = 0;  /* this process's CPU per call */
    double server_csw = 0; /* server context switches per call */
    unsigned long long errors = 0;
};

/* T client threads against port: warm-up, then a window of duration seconds. */
Sample measure(Child &server, unsigned threads, double warmup, double duration)
{
    enum { WARM, MEASURE, STOP };
    std::atomic<int> phase{WARM};
    std::atomic<unsigned long long> calls{0}, errors{0};
    std::vector<std::thread> ts;
    for (unsigned i = 0; i < threads; i++)
        ts.emplace_back([&] {
            auto stub = make_stub(server.port);
            unsigned long long n = 0, bad = 0;
            for (;;) {
                int ph = phase.load(std::memory_order_relaxed);
                if (ph == STOP)
                    break;
                bool ok = call(stub.get());
                if (phase.load(std::memory_order_relaxed) == MEASURE && ph == MEASURE) {
                    n++;
                    bad += !ok;
                }
            }
            calls += n;
            errors += bad;
        });
    std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
    long long w0 = 0, w1 = 0;
    long long s0 = server.cpu(&w0), c0 = cpu_us();
    double t0 = now_s();
    phase = MEASURE;
    std::this_thread::sleep_for(std::chrono::duration<double>(duration));
    phase = STOP;
    double t1 = now_s();
    long long s1 = server.cpu(&w1), c1 = cpu_us();
    for (auto &t : ts)
        t.join();
    Sample r;
    double n = static_cast<double>(calls.load());
    r.cps = n / (t1 - t0);
    r.server_us = n > 0 ? static_cast<double>(s1 - s0) / n : 0;
    r.client_us = n > 0 ? static_cast<double>(c1 - c0) / n : 0;
    r.server_csw = n > 0 ? static_cast<double>(w1 - w0) / n : 0;
    r.errors = errors.load();
    return r;
}

double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::vector<std::string> split(const std::string &s)
{
    std::vector<std::string> out;
    size_t i = 0;
    while (i <= s.size()) {
        size_t j = s.find(',', i);
        if (j == std::string::npos)
            j = s.size();
        if (j > i)
            out.push_back(s.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

const char *target_of(const std::string &m)
{
    return m == "prop" ? ">= 0.97" : m == "sdk" ? ">= 0.90" : "-";
}

int run_main(int argc, char **argv)
{
    double duration = 5, warmup = 1;
    unsigned rounds = 5, threads = 8;
    std::string modes_s = "base,prop,sdk";
    const char *scpus = "", *ccpus = "", *pollers = "";
    for (int i = 2; i < argc; i++) {
        std::string a = argv[i];
        if (i + 1 >= argc)
            return 2;
        if (a == "--duration")
            duration = atof(argv[++i]);
        else if (a == "--warmup")
            warmup = atof(argv[++i]);
        else if (a == "--rounds")
            rounds = static_cast<unsigned>(atoi(argv[++i]));
        else if (a == "--threads")
            threads = static_cast<unsigned>(atoi(argv[++i]));
        else if (a == "--modes")
            modes_s = argv[++i];
        else if (a == "--server-cpus")
            scpus = argv[++i];
        else if (a == "--client-cpus")
            ccpus = argv[++i];
        else if (a == "--pollers")
            pollers = argv[++i];
        else
            return 2;
    }
    std::vector<std::string> modes = split(modes_s);
    if (modes.empty() || modes[0] != "base" || rounds < 1 || threads < 1) {
        fprintf(stderr, "bench_grpc: --modes must start with base; rounds, threads >= 1\n");
        return 2;
    }
    /* Children first: this process has no gRPC threads yet when it forks. The sink shares
     * the client CPUs: it stands for a collector elsewhere, not for the server's work. */
    Child sink = spawn("sink", {"sink"}, ccpus);
    std::string url = "http://127.0.0.1:" + std::to_string(sink.port) + "/v1/traces";
    std::vector<Child> servers;
    for (auto &m : modes) {
        std::vector<std::string> args = {"server", m};
        if (m == "sdk")
            args.insert(args.end(), {"--otlp", url});
        if (*pollers)
            args.insert(args.end(), {"--pollers", pollers});
        servers.push_back(spawn(m, args, scpus));
    }
    cpu_set_t set;
    if (*ccpus && parse_cpus(ccpus, &set))
        sched_setaffinity(0, sizeof set, &set);
    printf("bench_grpc: unary UnaryEcho on 127.0.0.1, %u client threads/channels, %u rounds x "
           "%.1f s per mode (warm-up %.1f s), order alternating per round%s%s%s%s%s%s\n",
           threads, rounds, duration, warmup, *scpus ? ", server cpus " : "", scpus,
           *ccpus ? ", client+sink cpus " : "", ccpus,
           *pollers ? ", sync server pollers min,max " : "", pollers);
    std::vector<std::vector<Sample>> res(modes.size());
    long long sink_cpu0 = sink.cpu();
    for (unsigned r = 0; r < rounds; r++) {
        for (size_t k = 0; k < modes.size(); k++) {
            size_t i = r % 2 ? modes.size() - 1 - k : k;
            Sample s = measure(servers[i], threads, warmup, duration);
            res[i].push_back(s);
            printf("round %u  %-6s %9.0f calls/s  server %6.2f us CPU/call %5.2f csw/call  "
                   "client %6.2f us CPU/call%s\n",
                   r + 1, modes[i].c_str(), s.cps, s.server_us, s.server_csw, s.client_us,
                   s.errors ? "  ERRORS" : "");
            fflush(stdout);
        }
    }
    long long sink_cpu = sink.cpu() - sink_cpu0;
    /* Per-round ratios: each compares measurements a few seconds apart. */
    printf("\n%-6s %12s %10s %13s %10s %13s %9s\n", "mode", "calls/s(med)", "ratio(med)",
           "srv us/call", "cpu ratio", "cli us/call", "target");
    for (size_t i = 0; i < modes.size(); i++) {
        std::vector<double> cps, ratio, sus, cratio, cus;
        for (unsigned r = 0; r < rounds; r++) {
            cps.push_back(res[i][r].cps);
            ratio.push_back(res[i][r].cps / res[0][r].cps);
            sus.push_back(res[i][r].server_us);
            cratio.push_back(res[0][r].server_us / res[i][r].server_us);
            cus.push_back(res[i][r].client_us);
        }
        double rm = median(ratio);
        printf("%-6s %12.0f %10.3f %13.2f %10.3f %13.2f %9s", modes[i].c_str(), median(cps), rm,
               median(sus), median(cratio), median(cus), target_of(modes[i]));
        double t = modes[i] == "prop" ? 0.97 : modes[i] == "sdk" ? 0.90 : 0;
        if (t > 0 && rm < t)
            printf("  MISSED");
        printf("\n");
    }
    printf("ratio = calls/s of the mode / calls/s of base in the same round (median over "
           "rounds); cpu ratio = base server CPU/call / the mode's (1 = no extra CPU)\n");
    unsigned long long errors = 0;
    for (auto &v : res)
        for (auto &s : v)
            errors += s.errors;
    int rc = errors ? 1 : 0;
    if (errors)
        printf("ERRORS: %llu failed calls\n", errors);
    for (size_t i = 0; i < modes.size(); i++) {
        if (modes[i] != "sdk")
            continue;
        std::string fin = servers[i].stop();
        unsigned long long enq = 0, exp = 0, drop = 0, fail = 0, req = 0;
        sscanf(fin.c_str(),
               "final enqueued %llu exported %llu dropped %llu failures %llu "
               "requests %llu",
               &enq, &exp, &drop, &fail, &req);
        std::string sk = sink.ask("s");
        unsigned long long sreq = 0, sspans = 0, sbytes = 0, bad = 0;
        sscanf(sk.c_str(), "sink requests %llu spans %llu bytes %llu malformed %llu", &sreq,
               &sspans, &sbytes, &bad);
        printf("sdk spans: enqueued %llu, exported %llu, dropped (queue full) %llu, export "
               "failures %llu; sink received %llu spans in %llu requests (%llu bytes, %llu "
               "malformed); sink CPU %.1f ms over the run\n",
               enq, exp, drop, fail, sspans, sreq, sbytes, bad,
               static_cast<double>(sink_cpu) / 1e3);
        if (sspans == 0 || sspans != exp || bad) {
            printf("ERROR: the sink did not receive the exported spans\n");
            rc = 1;
        }
    }
    for (auto &s : servers)
        s.stop();
    sink.stop();
    return rc;
}

/* Instructions per call on the server: each mode's server under callgrind (spawned with
 * the valgrind command line in BENCH_GRPC_VALGRIND), one client thread, a fixed number of
 * calls inside a zero..dump window (queued spans flushed before both ends). */
int instr_main(int argc, char **argv)
{
    unsigned calls = 2000;
    std::string modes_s = "base,prop,sdk";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--calls") == 0)
            calls = static_cast<unsigned>(atoi(argv[i + 1]));
        else if (strcmp(argv[i], "--modes") == 0)
            modes_s = argv[i + 1];
        else
            return 2;
    }
    const char *vg = getenv("BENCH_GRPC_VALGRIND");
    std::vector<std::string> wrap;
    if (vg) {
        std::string w = vg;
        size_t i = 0;
        while (i < w.size()) {
            size_t j = w.find(' ', i);
            if (j == std::string::npos)
                j = w.size();
            if (j > i)
                wrap.push_back(w.substr(i, j - i));
            i = j + 1;
        }
    }
    std::vector<std::string> modes = split(modes_s);
    Child sink = spawn("sink", {"sink"}, nullptr);
    std::string url = "http://127.0.0.1:" + std::to_string(sink.port) + "/v1/traces";
    std::vector<Child> servers;
    for (auto &m : modes) {
        std::vector<std::string> args = {"server", m};
        if (m == "sdk")
            args.insert(args.end(), {"--otlp", url});
        std::vector<std::string> w = wrap;
        for (auto &s : w) {
            size_t p = s.find("%m");
            if (p != std::string::npos)
                s.replace(p, 2, m);
        }
        servers.push_back(spawn(m, args, nullptr, w));
    }
    for (size_t i = 0; i < modes.size(); i++) {
        auto stub = make_stub(servers[i].port);
        unsigned bad = 0;
        for (unsigned k = 0; k < 200; k++) /* warm-up: connection, first-call paths */
            bad += !call(stub.get());
        servers[i].ask("f");
        servers[i].ask("z");
        for (unsigned k = 0; k < calls; k++)
            bad += !call(stub.get());
        servers[i].ask("f");
        servers[i].ask("d");
        printf("instr %s %u calls%s\n", modes[i].c_str(), calls, bad ? " ERRORS" : "");
        fflush(stdout);
        servers[i].stop();
    }
    printf("%s\n", sink.ask("s").c_str());
    sink.stop();
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "server" && argc >= 3) {
        const char *otlp = nullptr;
        int minp = 0, maxp = 0;
        for (int i = 3; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--otlp") == 0)
                otlp = argv[i + 1];
            else if (strcmp(argv[i], "--pollers") == 0)
                sscanf(argv[i + 1], "%d,%d", &minp, &maxp);
        }
        return server_main(argv[2], otlp, minp, maxp);
    }
    if (cmd == "sink")
        return sink_main();
    if (cmd == "run")
        return run_main(argc, argv);
    if (cmd == "instr")
        return instr_main(argc, argv);
    fprintf(stderr,
            "usage: %s run [--duration S] [--warmup S] [--rounds N] [--threads T] [--modes "
            "base,prop,sdk] [--server-cpus L] [--client-cpus L]\n"
            "       %s instr [--calls N] [--modes L]   (servers under $BENCH_GRPC_VALGRIND)\n",
            argv[0], argv[0]);
    return 2;
}
