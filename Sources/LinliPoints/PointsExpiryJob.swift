import Foundation
import LinliCore
import LinliRedis
import LinliTenancy
import Logging
import PostgresNIO
import ServiceLifecycle

/// Takes the points of expired lots to each community's expired account (hourly), and drops
/// those residents' cached balances. A resident's balance is already right between passes: the
/// ledger read leaves expired lots out, the cache answers only until its next expiry, and a
/// freeze expires the resident's due lots first.
public struct PointsExpiryJob: Service, Sendable {
    let database: Database
    let cache: PointsCache
    let interval: Duration
    let logger: Logger

    public init(database: Database, redis: RedisClient?, interval: Duration = .seconds(3600), logger: Logger) {
        self.database = database
        self.cache = PointsCache(redis: redis, logger: logger)
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicJob.run(every: interval, first: .afterInterval, name: "points expiry", logger: logger) {
            let points = try await runAll()
            if points > 0 { logger.info("points expired", metadata: ["points.expired": "\(points)"]) }
        }
    }

    /// One pass over every active tenant; the points expired.
    @discardableResult
    public func runAll(at time: Date = Date()) async throws(LinliError) -> Int64 {
        var total: Int64 = 0
        try await database.forEachActiveTenant("points expiry", logger: logger) { tenant throws(LinliError) in
            total += try await run(tenant, at: time)
        }
        return total
    }

    /// One pass over `tenant`, a community per transaction.
    public func run(_ tenant: TenantRef, at time: Date = Date()) async throws(LinliError) -> Int64 {
        let store = PointsStore()
        let communities: [CommunityID] = try await database.tenantTransaction(tenant) { connection in
            var result: [CommunityID] = []
            for try await id in try await connection.run(
                "SELECT DISTINCT community_id FROM points_lots WHERE remaining > 0 AND expires_at <= \(time)", logger: logger
            ).decode(UUID.self) { result.append(CommunityID(id)) }
            return result
        }
        var total: Int64 = 0
        for community in communities {
            let (points, residents) = try await database.tenantTransaction(tenant) { connection in
                try await store.expireDue(community: community, at: time, on: connection, logger: logger)
            }
            total += points
            for resident in residents { await cache.forget(resident, tenant: tenant.id) }
        }
        return total
    }
}
