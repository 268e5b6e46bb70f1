import GRPCCore
import LinliAPI
import LinliCore
import LinliRedis
import LinliTenancy
import Logging
import Metrics
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The standard `grpc.health.v1.Health` service, answering from the `HealthProbe`.
///
/// `Watch` needs no credentials, so its streams are bounded: at most `maxWatchers` at once
/// (more are `RESOURCE_EXHAUSTED`), each ending after `maxWatch` (clients watch again).
struct HealthService: Grpc_Health_V1_Health.ServiceProtocol {
    static let known: Set<String> = [
        "", "linli.identity.v1.IdentityService", "linli.platform.v1.PlatformService", "linli.property.v1.NoticeService",
    ]
    let probe: HealthProbe
    let maxWatchers: Int
    let maxWatch: Duration
    let watchers = SharedCounter()

    init(probe: HealthProbe, maxWatchers: Int = 64, maxWatch: Duration = .seconds(300)) {
        self.probe = probe
        self.maxWatchers = maxWatchers
        self.maxWatch = maxWatch
    }

    private func status(_ service: String) -> Grpc_Health_V1_HealthCheckResponse.ServingStatus {
        guard Self.known.contains(service) else { return .serviceUnknown }
        return probe.isServing ? .serving : .notServing
    }

    func check(request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>, context: ServerContext)
        async throws -> ServerResponse<Grpc_Health_V1_HealthCheckResponse>
    {
        guard Self.known.contains(request.message.service) else {
            throw RPCError(code: .notFound, message: "unknown service")
        }
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = status(request.message.service)
        return ServerResponse(message: response)
    }

    func watch(request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>, context: ServerContext)
        async throws -> StreamingServerResponse<Grpc_Health_V1_HealthCheckResponse>
    {
        guard watchers.acquire(max: maxWatchers) else {
            throw RPCError(code: .resourceExhausted, message: "too many health watchers; retry later")
        }
        let service = request.message.service
        let deadline = ContinuousClock.now + maxWatch
        return StreamingServerResponse { [watchers, probe] writer in
            defer { watchers.release() }
            // Report changes until the client leaves, the stream's time is up or the server drains.
            try await cancelWhenGracefulShutdown {
                var last: Grpc_Health_V1_HealthCheckResponse.ServingStatus?
                while ContinuousClock.now < deadline {
                    let now: Grpc_Health_V1_HealthCheckResponse.ServingStatus =
                        Self.known.contains(service) ? (probe.isServing ? .serving : .notServing) : .serviceUnknown
                    if now != last {
                        try await writer.write(.with { $0.status = now })
                        last = now
                    }
                    do { try await Task.sleep(for: .milliseconds(500)) } catch { break }
                }
            }
            try? await writer.write(.with { $0.status = .notServing })
            return [:]
        }
    }
}

/// A counter with a ceiling, shared by the calls of one service.
final class SharedCounter: Sendable {
    private let value = Mutex(0)

    func acquire(max: Int) -> Bool {
        value.withLock { v in
            guard v < max else { return false }
            v += 1
            return true
        }
    }

    func release() { value.withLock { $0 -= 1 } }
}
