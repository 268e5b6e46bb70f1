import LinliCore
import LinliIdentity
import LinliRedis
import Logging
import Metrics

/// GCRA rate limiting (`GCRA`) in one Lua script, so the check and the update are atomic in Redis.
///
/// When Redis is unavailable the limiter fails open: the call goes through and a line is
/// logged, because refusing every call would turn a cache outage into a full outage.
public struct RateLimiter: Sendable {
    let redis: RedisClient
    let limits: [RateClass: RateLimit]
    let logger: Logger

    /// Creates a limiter.
    public init(redis: RedisClient, limits: [RateClass: RateLimit], logger: Logger) {
        self.redis = redis
        self.limits = limits
        self.logger = logger
    }

    // KEYS[1]: the bucket. ARGV[1]: emission interval (µs). ARGV[2]: burst. ARGV[3]: "peek" to
    // ask without taking a slot. Returns 0 when allowed, else the microseconds to wait.
    static let script = RedisScript(GCRA.function + "return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == 'peek')")

    /// The budget of `rateClass` in `tenant`'s bucket of that class, with the subject to be appended; nil when unlimited.
    public func budget(_ rateClass: RateClass, tenant: String) -> GCRA.Budget? {
        limits[rateClass].map { GCRA.Budget(key: RedisKey.tenant(tenant, "rl", rateClass.rawValue, ""), perSecond: $0.perSecond, burst: $0.burst) }
    }

    /// Throws `resourceExhausted` with the retry delay when `subject` is over its limit.
    /// With `peek`, only asks whether a call would pass, without counting one.
    public func check(_ rateClass: RateClass, tenant: String, subject: String, peek: Bool = false) async throws(LinliError) {
        guard let budget = budget(rateClass, tenant: tenant) else { return }
        let wait: Int64
        do {
            wait =
                try await redis.run(
                    Self.script, keys: [budget.key + subject],
                    arguments: [String(budget.intervalMicros), String(budget.burst), peek ? "peek" : "take"]
                ).integer ?? 0
        } catch {
            logger.warning("rate limit skipped: Redis unavailable", metadata: ["error": "\(error)"])
            Counter(label: MetricName.rateLimitFailOpen).increment()
            return
        }
        if wait > 0 { throw LinliError.rateLimited(retryAfterMilliseconds: max(1, (wait + 999) / 1000)) }
    }
}

extension RateLimiter: LoginThrottle {
    /// Accounts are keyed by a hash of tenant and user name, so no caller text becomes a key.
    public func checkAccount(tenantSlug: String, username: String) async throws(LinliError) {
        try await check(.account, tenant: "login", subject: Self.account(tenantSlug, username), peek: true)
    }

    public func recordFailure(tenantSlug: String, username: String) async {
        _ = try? await check(.account, tenant: "login", subject: Self.account(tenantSlug, username))
    }

    static func account(_ slug: String, _ username: String) -> String {
        Secret.hashHex("\(slug.lowercased())|\(username.lowercased())")
    }
}
