import LinliCore
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle

/// The loop every background job shares: a pass every `interval` until graceful shutdown, which
/// cancels a pass in progress (its transaction rolls back; the next start redoes it). A failed
/// pass is logged and the next one runs on time.
public enum PeriodicJob {
    public static func run(
        every interval: Duration, first: First, name: String, logger: Logger,
        _ pass: @escaping @Sendable () async throws -> Void
    ) async {
        await cancelWhenGracefulShutdown {
            var wait = first == .afterInterval
            while !Task.isCancelled {
                if wait {
                    try? await Task.sleep(for: interval)
                    if Task.isCancelled { break }
                }
                wait = true
                Counter(label: MetricName.jobRuns, dimensions: [("job", name)]).increment()
                do {
                    try await pass()
                } catch {
                    Counter(label: MetricName.jobFailures, dimensions: [("job", name)]).increment()
                    logger.warning("\(name) pass failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Whether the first pass runs at start or after one interval.
    public enum First: Sendable { case atStart, afterInterval }
}

extension Database {
    /// `pass` for every active tenant in turn, for the background jobs. A tenant whose pass fails
    /// is logged and the others still have theirs (one broken schema holds up no other tenant's
    /// job); the first failure is thrown once every tenant has had its turn. Cancellation stops
    /// the round at once.
    public func forEachActiveTenant(
        _ job: String, logger: Logger, _ pass: (TenantRef) async throws(LinliError) -> Void
    ) async throws(LinliError) {
        var first: LinliError?
        for tenant in try await allTenants() where tenant.isActive {
            do {
                try await pass(tenant)
            } catch {
                if Task.isCancelled { throw error }
                logger.warning("\(job) failed for a tenant", metadata: ["tenant": "\(tenant.slug)", "error": "\(error)"])
                first = first ?? error
            }
        }
        if let first { throw first }
    }

    /// `body` in each active tenant's own transaction (see `forEachActiveTenant`).
    public func inEachActiveTenant(
        _ job: String, logger: Logger, _ body: (PostgresConnection) async throws -> Void
    ) async throws(LinliError) {
        try await forEachActiveTenant(job, logger: logger) { tenant throws(LinliError) in
            try await tenantTransaction(tenant) { connection in try await body(connection) }
        }
    }
}
