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

/// Whether the process can serve: PostgreSQL and Redis answered a probe within the last few
/// seconds. A load balancer reads it through `grpc.health.v1.Health` and routes around a
/// process that has lost its storage; it comes back by itself when they return.
public final class HealthProbe: Service, Sendable {
    private let database: Database
    private let redis: RedisClient
    private let storage: StorageHealth
    private let logger: Logger
    private let interval: Duration
    /// A store that has not answered for this long counts as down.
    private let staleAfter: Duration
    private struct State {
        var postgresOK: ContinuousClock.Instant?
        var redisOK: ContinuousClock.Instant?
        var postgresProbing = false
        var redisProbing = false
        var draining = false
    }
    private let state = Mutex(State())
    private let connection = Mutex<PostgresConnection?>(nil)
    private let connect: @Sendable () async throws -> PostgresConnection

    /// Creates a probe; nothing runs until `run`.
    public init(
        database: Database, redis: RedisClient, storage: StorageHealth, logger: Logger,
        connect: @escaping @Sendable () async throws -> PostgresConnection,
        interval: Duration = .seconds(1), staleAfter: Duration = .seconds(5)
    ) {
        self.connect = connect
        self.database = database
        self.redis = redis
        self.storage = storage
        self.logger = logger
        self.interval = interval
        self.staleAfter = staleAfter
    }

    /// Whether both stores answered lately and the process is not draining.
    public var isServing: Bool {
        let now = ContinuousClock.now
        return state.withLock { s in
            guard !s.draining, let pg = s.postgresOK, let redis = s.redisOK else { return false }
            return now - pg < staleAfter && now - redis < staleAfter
        }
    }

    /// Probes until graceful shutdown, then reports not serving.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                self.probe()
                try? await Task.sleep(for: self.interval)
            }
        }
        state.withLock { $0.draining = true }
        if let open = connection.withLock({ $0 }) { try? await open.close() }
    }

    /// Starts one probe of each store, unless the previous one still waits: a store that
    /// hangs marks itself down by going stale, and never piles up probes.
    private func probe() {
        let (probePostgres, probeRedis) = state.withLock { s in
            defer { s.postgresProbing = true; s.redisProbing = true }
            return (!s.postgresProbing, !s.redisProbing)
        }
        let wasServing = isServing
        if probePostgres {
            Task {
                let ok = await self.probePostgres()
                if ok { self.storage.postgresAnswered() } else { self.storage.postgresFailed() }
                self.state.withLock { s in
                    s.postgresProbing = false
                    if ok { s.postgresOK = .now }
                }
                self.report(wasServing)
            }
        }
        if probeRedis {
            Task {
                let ok = (try? await self.redis.send(["PING"])) != nil
                self.state.withLock { s in
                    s.redisProbing = false
                    if ok { s.redisOK = .now }
                }
                self.report(wasServing)
            }
        }
    }

    /// `SELECT 1` on a connection of the probe's own, so that a busy pool never reads as an
    /// outage; a probe that takes over 3 s closes the connection and counts as failed.
    private func probePostgres() async -> Bool {
        let existing = connection.withLock { $0 }
        let probeConnection: PostgresConnection
        if let existing, !existing.isClosed {
            probeConnection = existing
        } else {
            guard let fresh = try? await connect() else { return false }
            connection.withLock { $0 = fresh }
            probeConnection = fresh
        }
        let watchdog = probeConnection.eventLoop.scheduleTask(in: .seconds(3)) {
            let closing: EventLoopFuture<Void> = probeConnection.close()
            closing.whenComplete { _ in }
        }
        defer { watchdog.cancel() }
        if (try? await probeConnection.query("SELECT 1", logger: logger).collect()) != nil { return true }
        try? await probeConnection.close()
        return false
    }

    private func report(_ wasServing: Bool) {
        let serving = isServing
        guard serving != wasServing else { return }
        Gauge(label: MetricName.serving).record(serving ? 1 : 0)
        if serving { logger.notice("storage reachable: serving") } else { logger.error("storage unreachable: not serving") }
    }
}

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
