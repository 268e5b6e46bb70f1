import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import ServiceLifecycle

/// Folds every tenant's metric deltas into `platform.national_daily`.
///
/// One transaction per tenant deletes a batch of deltas (as the tenant role, `SKIP LOCKED`)
/// and adds their sums to the platform tables (as the application role), then moves the
/// tenant's watermark. A delta is therefore folded exactly once, even with several servers
/// running the rollup at the same time, and a crash loses nothing.
public struct NationalRollupJob: Service, Sendable {
    let database: Database
    let interval: Duration
    let batch: Int
    let logger: Logger

    /// Creates a rollup that runs every `interval`.
    public init(database: Database, interval: Duration = .seconds(5), batch: Int = 50_000, logger: Logger) {
        self.database = database
        self.interval = interval
        self.batch = batch
        self.logger = logger
    }

    /// Runs a pass every `interval` until shutdown. Shutdown cancels a pass in progress:
    /// its transaction rolls back and the next start folds those deltas.
    public func run() async throws {
        await PeriodicJob.run(every: interval, first: .afterInterval, name: "rollup", logger: logger) {
            _ = try await foldAll()
        }
    }

    /// One pass over every tenant; returns how many deltas were folded.
    @discardableResult
    public func foldAll() async throws(LinliError) -> Int {
        let tenants = try await database.allTenants()
        var total = 0
        for tenant in tenants {
            while true {
                let folded = try await fold(tenant)
                total += folded
                if folded < batch { break }
            }
        }
        return total
    }

    /// Folds one batch of `tenant`'s deltas.
    public func fold(_ tenant: TenantRef) async throws(LinliError) -> Int {
        try await database.tenantTransaction(tenant) { connection in
            let started = try await connection.run("SELECT now()", logger: logger)
            var startedAt = Date()
            for try await at in started.decode(Date.self) { startedAt = at }
            let rows = try await connection.run(
                """
                WITH taken AS (
                    DELETE FROM metric_deltas WHERE id IN (
                        SELECT id FROM metric_deltas ORDER BY id LIMIT \(batch) FOR UPDATE SKIP LOCKED)
                    RETURNING community_id, day, metric, delta)
                SELECT community_id, day, metric, sum(delta)::bigint, count(*) FROM taken GROUP BY 1, 2, 3
                """, logger: logger)
            var sums: [(UUID, Date, String, Int64)] = []
            var count = 0
            for try await (community, day, metric, sum, n) in rows.decode((UUID, Date, String, Int64, Int).self) {
                sums.append((community, day, metric, sum))
                count += n
            }
            try await connection.run("SET LOCAL ROLE NONE", logger: logger)
            for (community, day, metric, sum) in sums {
                try await connection.run(
                    """
                    INSERT INTO platform.national_daily (tenant_id, community_id, day, metric, value)
                    VALUES (\(tenant.id.uuid), \(community), \(day), \(metric), \(sum))
                    ON CONFLICT (tenant_id, metric, community_id, day) DO UPDATE
                    SET value = platform.national_daily.value + EXCLUDED.value
                    """, logger: logger)
            }
            // Deltas committed before this transaction began are visible to it, so all of
            // them are folded once this batch was not full.
            try await connection.run(
                """
                INSERT INTO platform.rollup_state (tenant_id, folded_through, deltas_folded)
                VALUES (\(tenant.id.uuid), \(startedAt), \(count))
                ON CONFLICT (tenant_id) DO UPDATE SET
                    folded_through = CASE WHEN \(count < batch) THEN EXCLUDED.folded_through ELSE platform.rollup_state.folded_through END,
                    deltas_folded = platform.rollup_state.deltas_folded + EXCLUDED.deltas_folded
                """, logger: logger)
            return count
        }
    }
}
