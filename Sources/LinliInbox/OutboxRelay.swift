import Foundation
import LinliCore
import LinliTenancy
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle

/// Delivers each tenant's outbox to the in-app inbox, after the transactions that wrote it commit.
///
/// A statement trigger on `outbox` sends `NOTIFY linli_outbox, '<schema>'`; PostgreSQL delivers
/// it only when the writing transaction commits, so the relay never sees uncommitted messages.
/// One LISTEN connection wakes the relay for that tenant at once; a sweep over every tenant
/// every `sweepInterval` catches what arrived while no server was listening. Each message is
/// moved exactly once: rows are claimed `FOR UPDATE SKIP LOCKED` and `notifications.outbox_id`
/// is unique, so several servers relaying at once neither block nor duplicate.
public struct OutboxRelay: Service, Sendable {
    /// Topics other modules consume from the outbox themselves.
    public static let consumedElsewhere = "billing.%"
    public static let channel = "linli_outbox"

    let database: Database
    let tenants: TenantRegistry
    let sweepInterval: Duration
    let batch: Int
    let logger: Logger

    public init(
        database: Database, tenants: TenantRegistry, sweepInterval: Duration = .seconds(30), batch: Int = 1_000,
        logger: Logger
    ) {
        self.database = database
        self.tenants = tenants
        self.sweepInterval = sweepInterval
        self.batch = batch
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await listen() }
                group.addTask { await sweep() }
                await group.waitForAll()
            }
        }
    }

    /// Relays a tenant as soon as one of its transactions adds to the outbox; reconnects after failures.
    private func listen() async {
        while !Task.isCancelled {
            do {
                try await database.client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        for try await notification in notifications {
                            await relay(schema: notification.payload)
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("outbox listener lost its connection; reconnecting", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func sweep() async {
        while !Task.isCancelled {
            do {
                try await relayAll()
            } catch {
                logger.warning("outbox sweep failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: sweepInterval)
        }
    }

    private func relay(schema: String) async {
        do {
            guard schema.hasPrefix("t_"), let tenant = try await tenants.find(slug: String(schema.dropFirst(2))) else { return }
            while try await relay(tenant) == batch {}
        } catch {
            logger.warning("outbox relay failed", metadata: ["tenant.schema": "\(schema)", "error": "\(error)"])
        }
    }

    /// One pass over every tenant; returns how many messages were delivered.
    @discardableResult
    public func relayAll() async throws(LinliError) -> Int {
        var total = 0
        var backlog = 0
        for tenant in try await database.allTenants() {
            while true {
                let moved = try await relay(tenant)
                total += moved
                if moved < batch { break }
            }
            backlog += try await pending(tenant)
        }
        // What a full pass left behind (held by a concurrent relay, or failing): an operator's alarm.
        Gauge(label: MetricName.outboxBacklog).record(backlog)
        return total
    }

    /// Messages of `tenant` waiting for this relay.
    func pending(_ tenant: TenantRef) async throws(LinliError) -> Int {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.query(
                """
                SELECT count(*) FROM outbox
                WHERE delivered_at IS NULL AND recipient_id IS NOT NULL AND topic NOT LIKE \(Self.consumedElsewhere)
                """, logger: logger)
            for try await count in rows.decode(Int.self) { return count }
            return 0
        }
    }

    /// Moves one batch of `tenant`'s outbox into its inbox; returns how many moved.
    public func relay(_ tenant: TenantRef) async throws(LinliError) -> Int {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.query(
                """
                WITH claimed AS (
                    SELECT id, topic, recipient_id, payload FROM outbox
                    WHERE delivered_at IS NULL AND recipient_id IS NOT NULL AND topic NOT LIKE \(Self.consumedElsewhere)
                    ORDER BY id LIMIT \(Int32(batch)) FOR UPDATE SKIP LOCKED),
                delivered AS (
                    UPDATE outbox o SET delivered_at = now() FROM claimed WHERE o.id = claimed.id RETURNING o.id)
                INSERT INTO notifications (id, outbox_id, recipient_id, topic, payload)
                SELECT uuid_v7(), c.id, c.recipient_id, c.topic, c.payload FROM claimed c JOIN delivered d ON d.id = c.id
                ON CONFLICT (outbox_id) DO NOTHING
                RETURNING 1
                """, logger: logger)
            var moved = 0
            for try await _ in rows { moved += 1 }
            return moved
        }
    }
}
