import Foundation
import LinliCore
import LinliPoints
import LinliTenancy
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The order clock. Each unpaid order gets a timer at checkout that cancels it at its deadline
/// exactly (not at the next sweep), and each group buy one that fails it at its deadline when it
/// is short of its size; a sweep every `interval` catches what a restart dropped,
/// confirms receipt `confirm_days` after shipping, settles orders whose after-sale window is
/// over, and asks the channels about intents whose notice never came.
public final class OrderTimers: Service, Sendable {
    let database: Database
    let tenants: TenantRegistry
    let channels: PaymentChannels
    let cache: PointsCache
    let interval: Duration
    let logger: Logger
    let store = OrderStore()
    enum Due: Sendable {
        case order(UUID)
        case group(UUID)
    }
    private let stream: AsyncStream<(TenantRef, Due, Date)>
    private let continuation: AsyncStream<(TenantRef, Due, Date)>.Continuation

    public init(
        database: Database, tenants: TenantRegistry, channels: PaymentChannels, cache: PointsCache, interval: Duration = .seconds(30), logger: Logger
    ) {
        self.database = database
        self.tenants = tenants
        self.channels = channels
        self.cache = cache
        self.interval = interval
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream()
    }

    /// Cancels `order` of `tenant` at `deadline` unless it is paid by then.
    public func schedule(_ order: UUID, of tenant: TenantRef, at deadline: Date) { continuation.yield((tenant, .order(order), deadline)) }

    /// Fails group buy `group` of `tenant` at `deadline` unless it has succeeded by then.
    public func schedule(group: UUID, of tenant: TenantRef, at deadline: Date) { continuation.yield((tenant, .group(group), deadline)) }

    public func run() async throws {
        // The simulated channel's notices come here, as a real channel's would to a webhook.
        await channels.simulated.deliver { [self] notice in
            guard let tenant = try? await tenants.tenant(id: notice.tenant) else { return false }
            do {
                try await receive(notice, tenant: tenant)
                return true
            } catch {
                logger.warning("payment notice not taken", metadata: ["intent": "\(notice.intent)", "error": "\(error)"])
                return false
            }
        }
        await cancelWhenGracefulShutdown { [self] in
            await withDiscardingTaskGroup { group in
                group.addTask {
                    await PeriodicJob.run(every: self.interval, first: .atStart, name: "order sweep", logger: self.logger) {
                        try await self.sweepAll()
                    }
                }
                for await (tenant, due, deadline) in stream {
                    group.addTask {
                        let wait = deadline.timeIntervalSinceNow
                        if wait > 0 { try? await Task.sleep(for: .milliseconds(Int64(wait * 1000) + 1)) }
                        if Task.isCancelled { return }
                        do {
                            switch due {
                            case .order(let order): try await self.expire(order, of: tenant)
                            case .group(let group): try await self.failGroup(group, of: tenant)
                            }
                        } catch {
                            self.logger.warning("order timer failed", metadata: ["due": "\(due)", "error": "\(error)"])
                        }
                    }
                }
            }
        }
    }

    /// Cancels the order when it is still unpaid at its deadline.
    func expire(_ id: UUID, of tenant: TenantRef, at time: Date = Date()) async throws {
        let balance = try await database.tenantTransaction(tenant) { [store, channels] connection -> PointsStore.Balance? in
            let order = try await store.order(id, forUpdate: true, on: connection, logger: logger)
            guard order.state == .unpaid, order.payDeadline <= time.addingTimeInterval(0.001) else { return nil }
            _ = try await store.cancel(order, reason: "超时未支付", by: .job, channels: channels, on: connection, logger: logger)
            return order.points > 0 ? try await PointsStore().balance(order.resident, on: connection, logger: logger) : nil
        }
        if let balance { _ = await cache.write(balance, tenant: tenant.id) }
    }

    /// Fails the group when it is short of its size at its deadline, then cancels its members'
    /// orders one per transaction: the unpaid ones released, the paid ones refunded.
    func failGroup(_ id: UUID, of tenant: TenantRef, at time: Date = Date()) async throws {
        let members = try await database.tenantTransaction(tenant) { connection in
            try await GroupBuyStore().failIfDue(id, at: time.addingTimeInterval(0.001), on: connection, logger: logger)
        }
        for member in members {
            let balance = try await database.tenantTransaction(tenant) { [store, channels] connection -> PointsStore.Balance? in
                let order = try await store.order(member, forUpdate: true, on: connection, logger: logger)
                guard order.state == .unpaid || order.state == .paid else { return nil }
                _ = try await store.cancel(order, reason: "拼团失败", by: .job, groupFailed: true, channels: channels, on: connection, logger: logger)
                return order.points > 0 ? try await PointsStore().balance(order.resident, on: connection, logger: logger) : nil
            }
            if let balance { _ = await cache.write(balance, tenant: tenant.id) }
        }
    }

    /// One sweep over every active tenant.
    public func sweepAll(at time: Date = Date()) async throws {
        for tenant in try await database.allTenants() where tenant.isActive { try await sweep(tenant, at: time) }
    }

    /// Unpaid orders past their deadline cancelled, shipped ones confirmed, received ones past
    /// the after-sale window settled, silent intents asked of their channel; one order per
    /// transaction.
    public func sweep(_ tenant: TenantRef, at time: Date = Date()) async throws {
        let due: [(UUID, String)] = try await database.tenantTransaction(tenant) { connection in
            var result: [(UUID, String)] = []
            for try await r in try await connection.run(
                """
                SELECT orders.id, 'expire' FROM orders WHERE state = 'unpaid' AND pay_deadline <= \(time)
                UNION ALL
                SELECT orders.id, 'confirm' FROM orders, commerce_settings
                WHERE state = 'shipped' AND shipped_at <= \(time) - make_interval(days => confirm_days)
                UNION ALL
                SELECT orders.id, 'settle' FROM orders, commerce_settings
                WHERE state = 'received' AND received_at <= \(time) - make_interval(days => review_days)
                LIMIT 1000
                """, logger: logger
            ).decode((UUID, String).self) { result.append(r) }
            return result
        }
        let groups = try await database.tenantTransaction(tenant) { connection in
            try await GroupBuyStore().due(at: time, on: connection, logger: logger)
        }
        for group in groups { try await failGroup(group, of: tenant, at: time) }
        for (id, action) in due {
            switch action {
            case "expire":
                try await expire(id, of: tenant, at: time)
            default:
                let balance = try await database.tenantTransaction(tenant) { [store] connection -> PointsStore.Balance? in
                    let order = try await store.order(id, forUpdate: true, on: connection, logger: logger)
                    if action == "confirm" {
                        _ = try await store.confirm(order, by: .job, on: connection, logger: logger)
                        return nil
                    }
                    _ = try await store.settle(order, on: connection, logger: logger)
                    return try await PointsStore().balance(order.resident, on: connection, logger: logger)
                }
                if let balance { _ = await cache.write(balance, tenant: tenant.id) }
            }
        }
        let silent = try await database.tenantTransaction(tenant) { [store] connection in
            try await store.unsettledIntents(before: time, on: connection, logger: logger)
        }
        for (intent, channel) in silent {
            guard let notice = await (try? channels.channel(channel))?.query(intent: intent) else { continue }
            _ = try await receive(notice, tenant: tenant)
        }
        // Profit shares due (a minute after their payment, then as their backoff says).
        _ = try await database.tenantTransaction(tenant) { [store, channels] connection in
            try await store.sendShares(at: time, channels: channels, on: connection, logger: logger)
        }
    }

    /// A channel's notice: verified, then applied in the tenant's transaction.
    @discardableResult
    public func receive(_ notice: PaymentNotice, tenant: TenantRef) async throws -> OrderStore.NoticeOutcome {
        let payment = try await database.tenantTransaction(tenant) { [store] connection in
            try await store.payment(notice.intent, on: connection, logger: logger)
        }
        guard try channels.channel(payment.channel).verify(notice) else {
            throw LinliError(.permissionDenied, "payment notice signature does not verify")
        }
        let (outcome, balance) = try await database.tenantTransaction(tenant) { [store, channels] connection in
            let outcome = try await store.apply(notice, channels: channels, on: connection, logger: logger)
            let order = try await store.order(payment.order, on: connection, logger: logger)
            return (outcome, order.points > 0 ? try await PointsStore().balance(order.resident, on: connection, logger: logger) : nil)
        }
        if let balance { _ = await cache.write(balance, tenant: tenant.id) }
        return outcome
    }
}
