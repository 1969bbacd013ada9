// A user's grpc++ server: the otelprof interceptor installed on a ServerBuilder (built,
// not started: no network), and the C-core helpers called.
#include <otelprof/grpc.h>
#include <otelprof/grpc_core.h>

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <vector>

int main()
{
    otelprof_grpc::ServerOptions so;
    grpc::ServerBuilder b;
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
    f.emplace_back(new otelprof_grpc::ServerInterceptorFactory(so));
    b.experimental().SetInterceptorCreators(std::move(f));
    grpc_metadata_array md{};
    otelprof_span_context sc;
    if (otelprof_grpc_metadata_extract(nullptr, &md, &sc, nullptr) != OTELPROF_OK ||
        otelprof_span_context_is_valid(&sc)) {
        std::fprintf(stderr, "consumer-grpc: extract\n");
        return 1;
    }
    std::printf("consumer-grpc ok\n");
    return 0;
}
