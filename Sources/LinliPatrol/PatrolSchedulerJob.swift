import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import ServiceLifecycle

/// Turns every tenant's active patrol plans into tasks for the coming days.
///
/// Exactly once: a task is keyed by (plan, start time) under a unique index and inserted with
/// `ON CONFLICT DO NOTHING`, so a pass that runs twice, or on several servers at once, adds
/// nothing the first did not. A transaction-level advisory lock per tenant keeps concurrent
/// passes from doing the same work: the second skips the tenant instead of waiting.
public struct PatrolSchedulerJob: Service, Sendable {
    /// Days ahead that tasks exist, so staff see their next rounds and a scheduler outage is survived.
    public static let defaultHorizonDays = 2

    let database: Database
    let interval: Duration
    let logger: Logger

    public init(database: Database, interval: Duration = .seconds(300), logger: Logger) {
        self.database = database
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicJob.run(every: interval, first: .atStart, name: "patrol scheduler", logger: logger) {
            let generated = try await runAll()
            if generated > 0 { logger.info("patrol tasks generated", metadata: ["patrol.tasks": "\(generated)"]) }
        }
    }

    /// One pass over every active tenant; returns how many tasks were created.
    @discardableResult
    public func runAll() async throws(LinliError) -> Int {
        var total = 0
        try await database.forEachActiveTenant("patrol scheduler", logger: logger) { tenant throws(LinliError) in
            total += try await run(tenant) ?? 0
        }
        return total
    }

    /// One pass over `tenant`: the number of tasks created, or nil when another pass holds the tenant.
    public func run(_ tenant: TenantRef, horizonDays: Int = defaultHorizonDays) async throws(LinliError) -> Int? {
        try await database.tenantTransaction(tenant) { connection in
            let lock = try await connection.run(
                """
                SELECT pg_try_advisory_xact_lock(hashtext('linli.patrol_scheduler'), hashtext(current_schema()))
                """, logger: logger)
            var held = false
            for try await got in lock.decode(Bool.self) { held = got }
            guard held else { return nil }
            return try await Self.generate(plan: nil, horizonDays: horizonDays, connection, logger)
        }
    }

    /// Inserts the missing tasks of one plan (or of all active plans) whose window has not
    /// closed, from today to `horizonDays` ahead in each community's time zone.
    static func generate(plan: UUID?, horizonDays: Int, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int {
        let rows = try await connection.run(
            """
            WITH slots AS (
                SELECT p.id AS plan_id, p.community_id, p.route_id, p.staff_id, p.window_minutes,
                       (d::date + t::time) AT TIME ZONE c.time_zone AS starts_at
                FROM patrol_plans p JOIN communities c ON c.id = p.community_id
                CROSS JOIN LATERAL generate_series(
                    greatest(p.starts_on, (now() AT TIME ZONE c.time_zone)::date),
                    least(coalesce(p.ends_on, 'infinity'::date), (now() AT TIME ZONE c.time_zone)::date + \(Int32(horizonDays))),
                    interval '1 day') AS d
                CROSS JOIN LATERAL unnest(p.times) AS t
                WHERE p.active AND (\(plan)::uuid IS NULL OR p.id = \(plan))
                  AND (cardinality(p.weekdays) = 0 OR extract(isodow FROM d)::int = ANY (p.weekdays))
                  AND (d::date - p.starts_on) % p.every_days = 0)
            INSERT INTO patrol_tasks (id, community_id, plan_id, route_id, staff_id, starts_at, due_at)
            SELECT uuid_v7(), community_id, plan_id, route_id, staff_id, starts_at, starts_at + make_interval(mins => window_minutes)
            FROM slots WHERE starts_at + make_interval(mins => window_minutes) > now()
            ORDER BY starts_at
            ON CONFLICT (plan_id, starts_at) WHERE plan_id IS NOT NULL DO NOTHING
            RETURNING 1
            """, logger: logger)
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }
}
