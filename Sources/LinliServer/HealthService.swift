import GRPCCore
import LinliAPI
import ServiceLifecycle

/// The standard `grpc.health.v1.Health` service: serving while the process runs.
struct HealthService: Grpc_Health_V1_Health.ServiceProtocol {
    static let known: Set<String> = [
        "", "linli.identity.v1.IdentityService", "linli.platform.v1.PlatformService", "linli.property.v1.NoticeService",
    ]

    func check(request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>, context: ServerContext)
        async throws -> ServerResponse<Grpc_Health_V1_HealthCheckResponse> {
        guard Self.known.contains(request.message.service) else {
            throw RPCError(code: .notFound, message: "unknown service")
        }
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = .serving
        return ServerResponse(message: response)
    }

    func watch(request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>, context: ServerContext)
        async throws -> StreamingServerResponse<Grpc_Health_V1_HealthCheckResponse> {
        let known = Self.known.contains(request.message.service)
        return StreamingServerResponse { writer in
            var response = Grpc_Health_V1_HealthCheckResponse()
            response.status = known ? .serving : .serviceUnknown
            try await writer.write(response)
            // Stay open until the client leaves or the server drains, then report NOT_SERVING.
            try? await gracefulShutdown()
            response.status = .notServing
            try? await writer.write(response)
            return [:]
        }
    }
}
