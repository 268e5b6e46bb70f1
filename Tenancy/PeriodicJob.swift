import LinliCore
import Logging
import Metrics
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
