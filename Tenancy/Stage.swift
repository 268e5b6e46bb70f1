import LinliCore
import Metrics

/// The stages of a call's path, timed on every call so that the request path's cost can be
/// read off the metrics endpoint (and `Deploy/bench` prints it per RPC): where a call waits is
/// measured, not guessed.
public enum Stage: String, CaseIterable, Sendable {
    /// Authentication and rate limit: the admission interceptor's Redis work.
    case admit
    /// Waiting for a pooled PostgreSQL connection.
    case acquire = "db.acquire"
    /// `BEGIN` and the tenant switch.
    case begin = "db.begin"
    /// The handler's statements.
    case body = "db.body"
    /// `COMMIT`.
    case commit = "db.commit"

    private static let timers: [Stage: Timer] = Dictionary(
        uniqueKeysWithValues: allCases.map { ($0, Timer(label: MetricName.stageDuration, dimensions: [("stage", $0.rawValue)])) })

    /// Records the time since `start` and returns now, the start of the next stage.
    @discardableResult
    public func record(since start: ContinuousClock.Instant) -> ContinuousClock.Instant {
        let now = ContinuousClock.now
        Self.timers[self]?.recordNanoseconds((now - start).nanosecondsClamped)
        return now
    }
}
