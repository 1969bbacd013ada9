// grpc-example: grpc.examples.echo.Echo served with the otelprof server interceptor.
// UnaryEcho and BidirectionalStreamingEcho take a decimal N and reply fib(N), computed
// naively so profilers see the handler burn CPU inside the request's published context.
//   grpc-example [--port N]      (default 3000, on 0.0.0.0)
// Spans: console exporter (one JSON line per span on stdout) unless OTEL_TRACES_EXPORTER is
// set, in which case the SDK is configured from the environment (otlp, console, none).
#include "echo.grpc.pb.h"

#include <otelprof/grpc.h>
#include <otelprof/sdk.h>

#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

namespace
{

volatile unsigned long long g_sink;

unsigned long long fib(unsigned n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

std::string fib_reply(const std::string &msg)
{
    char *end = nullptr;
    unsigned long n = std::strtoul(msg.c_str(), &end, 10);
    if (msg.empty() || !end || *end != '\0' || n > 50)
        return std::string();
    unsigned long long r = fib(static_cast<unsigned>(n));
    g_sink = r;
    return std::to_string(r);
}

class EchoService final : public grpc::examples::echo::Echo::Service
{
    grpc::Status UnaryEcho(grpc::ServerContext *, const grpc::examples::echo::EchoRequest *req,
                           grpc::examples::echo::EchoResponse *resp) override
    {
        std::string r = fib_reply(req->message());
        if (r.empty())
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "message must be a decimal N <= 50");
        resp->set_message(r);
        return grpc::Status::OK;
    }

    grpc::Status BidirectionalStreamingEcho(
        grpc::ServerContext *,
        grpc::ServerReaderWriter<grpc::examples::echo::EchoResponse,
                                 grpc::examples::echo::EchoRequest> *stream) override
    {
        grpc::examples::echo::EchoRequest req;
        while (stream->Read(&req)) {
            std::string r = fib_reply(req.message());
            if (r.empty())
                return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    "message must be a decimal N <= 50");
            grpc::examples::echo::EchoResponse resp;
            resp.set_message(r);
            stream->Write(resp);
        }
        return grpc::Status::OK;
    }
};

otelprof_tracer_provider *make_provider()
{
    otelprof_status err = OTELPROF_OK;
    const char *exp = std::getenv("OTEL_TRACES_EXPORTER");
    if (exp && *exp)
        return otelprof_sdk_provider_new_from_env(&err);
    otelprof_span_processor *p =
        otelprof_simple_processor_new(otelprof_console_exporter_new(stdout));
    otelprof_sdk_opts o = {};
    o.sz = sizeof o;
    o.processors = &p;
    o.n_processors = 1;
    return otelprof_sdk_provider_new(&o, &err);
}

} // namespace

int main(int argc, char **argv)
{
    int port = 3000;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: %s [--port N]\n", argv[0]);
            return 2;
        }
    }
    otelprof_tracer_provider *provider = make_provider();
    if (!provider) {
        std::fprintf(stderr, "grpc-example: cannot create the tracer provider\n");
        return 1;
    }
    otelprof_grpc::ServerOptions so;
    so.tracer = otelprof_tracer_provider_get_tracer(provider, "grpc-example", nullptr, nullptr);

    // SIGINT/SIGTERM: handled by a thread with sigwait, which shuts the server down.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    EchoService service;
    grpc::ServerBuilder builder;
    int bound = 0;
    builder.AddListeningPort("0.0.0.0:" + std::to_string(port), grpc::InsecureServerCredentials(),
                             &bound);
    builder.RegisterService(&service);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
    f.emplace_back(new otelprof_grpc::ServerInterceptorFactory(so));
    builder.experimental().SetInterceptorCreators(std::move(f));
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server || bound == 0) {
        std::fprintf(stderr, "grpc-example: cannot listen on port %d\n", port);
        return 1;
    }
    std::fprintf(stderr, "grpc-example: listening on 0.0.0.0:%d\n", bound);
    std::thread waiter([&] {
        int sig = 0;
        sigwait(&set, &sig);
        server->Shutdown();
    });
    server->Wait();
    waiter.join();
    otelprof_tracer_provider_shutdown(provider, 5000);
    otelprof_tracer_provider_free(provider);
    return 0;
}
