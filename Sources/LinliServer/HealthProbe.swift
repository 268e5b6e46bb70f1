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
        if (try? await probeConnection.run("SELECT 1", logger: logger).collect()) != nil { return true }
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
