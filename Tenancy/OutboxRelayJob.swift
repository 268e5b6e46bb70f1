import Foundation
import LinliCore
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle

/// Hands each tenant's outbox to the topics' consumers, after the transactions that wrote it commit.
///
/// The process that commits a transaction with outbox messages wakes its relays for that tenant
/// (`OutboxWake`, after the COMMIT, so the relay never looks for uncommitted messages; no
/// `NOTIFY`, whose cluster-wide commit lock capped every outbox write at ~1,000 a second); a
/// sweep over every tenant every `sweepInterval` catches what a process that died, or one
/// without a relay (the CLI), left behind. Messages are
/// claimed `FOR UPDATE SKIP LOCKED` and consumed in the claiming transaction, so several
/// servers relaying at once neither block nor duplicate, and a failed consumer leaves its
/// batch for the next pass. Consumers are idempotent all the same: a message replayed by hand,
/// or written twice by a retried change, must not act twice.
public struct OutboxRelayJob: Service, Sendable {
    let database: Database
    let tenants: TenantRegistry
    let consumers: [any OutboxConsumer]
    let sweepInterval: Duration
    let batch: Int
    let logger: Logger

    public init(
        database: Database, tenants: TenantRegistry, consumers: [any OutboxConsumer], sweepInterval: Duration = .seconds(30),
        batch: Int = 1_000, logger: Logger
    ) {
        self.database = database
        self.tenants = tenants
        self.consumers = consumers
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

    /// Relays a tenant as soon as one of this process's transactions adds to its outbox.
    private func listen() async {
        let subscription = OutboxWake.shared.subscribe()
        defer { OutboxWake.shared.unsubscribe(subscription) }
        await withTaskCancellationHandler {
            for await _ in subscription.rings {
                for schema in subscription.take().sorted() { await relay(schema: schema) }
            }
        } onCancel: {
            OutboxWake.shared.unsubscribe(subscription)
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
            while try await relay(tenant) >= batch {}
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

    /// Messages of `tenant` waiting for a consumer.
    func pending(_ tenant: TenantRef) async throws(LinliError) -> Int {
        let topics = consumers.flatMap { Topic.names(of: $0.name) }
        return try await database.tenantTransaction(tenant) { connection in
            try await Outbox.pending(topics, on: connection, logger: logger)
        }
    }

    /// Hands one batch per consumer of `tenant`'s outbox to the consumers; returns how many messages moved.
    /// A consumer that fails keeps its batch for the next pass and holds up neither the other
    /// consumers nor the other tenants (the failure is logged and counted, the backlog gauge shows it).
    public func relay(_ tenant: TenantRef) async throws(LinliError) -> Int {
        var moved = 0
        for consumer in consumers {
            let topics = Topic.names(of: consumer.name)
            do {
                moved += try await database.tenantTransaction(tenant) { connection in
                    let messages = try await Outbox.claim(topics, limit: batch, on: connection, logger: logger)
                    if !messages.isEmpty { try await consumer.consume(messages, tenant: tenant, on: connection, logger: logger) }
                    return messages.count
                }
            } catch {
                Counter(label: MetricName.jobFailures, dimensions: [("job", "outbox." + consumer.name.rawValue)]).increment()
                logger.warning(
                    "outbox consumer failed; its batch waits for the next pass",
                    metadata: ["outbox.consumer": "\(consumer.name.rawValue)", "tenant.id": "\(tenant.id)", "error": "\(error)"])
            }
        }
        return moved
    }
}
