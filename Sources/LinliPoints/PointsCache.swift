import Foundation
import LinliCore
import LinliRedis
import Logging

/// The residents' points balances in Redis, derived from the ledger and never its authority
/// (DESIGN, "Redis"). A balance is written after the transaction that changed it has
/// committed, with the ledger's version: a write older than what Redis holds is dropped, so
/// two writers racing (a reader filling a miss, a writer after its commit) leave the newest.
/// Each change also deletes the key inside its transaction, so that a process that dies
/// between COMMIT and the write leaves a miss, not a stale balance. A failing Redis is logged
/// and skipped: reads then come from PostgreSQL.
public struct PointsCache: Sendable {
    let redis: RedisClient?
    let logger: Logger
    /// A cached balance lives this long without a write (bounds any staleness a lost write leaves).
    static let ttlMilliseconds = 600_000

    public init(redis: RedisClient?, logger: Logger) {
        self.redis = redis
        self.logger = logger
    }

    /// Sets the balance when its version is newer than the cached one.
    static let setIfNewer = RedisScript(
        """
        local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
        if tonumber(ARGV[1]) <= v then return 0 end
        redis.call('HSET', KEYS[1], 'v', ARGV[1], 'a', ARGV[2], 'f', ARGV[3], 'x', ARGV[4], 'xp', ARGV[5])
        redis.call('PEXPIRE', KEYS[1], ARGV[6])
        return 1
        """)

    static func key(_ tenant: TenantID, _ resident: UUID) -> String {
        RedisKey.tenant(tenant.description, "points", resident.uuidString.lowercased())
    }

    /// The cached balance, nil on a miss, when Redis is down, or when a lot in it has expired
    /// since it was written (the ledger then says what is left).
    public func read(_ resident: UUID, tenant: TenantID, now: Date = Date()) async -> PointsStore.Balance? {
        guard let redis else { return nil }
        do {
            let reply = try await redis.send(["HMGET", Self.key(tenant, resident), "v", "a", "f", "x", "xp"])
            guard let fields = reply.array?.map({ $0.string.flatMap { Int64($0) } }), fields.count == 5,
                let version = fields[0], let available = fields[1], let frozen = fields[2], let expiry = fields[3], let expiryPoints = fields[4]
            else { return nil }
            let next = expiry > 0 ? Date(timeIntervalSince1970: Double(expiry) / 1000) : nil
            if let next, next <= now { return nil }
            return PointsStore.Balance(
                resident: resident, available: available, frozen: frozen, version: version, nextExpiry: next, nextExpiryPoints: expiryPoints)
        } catch {
            logger.warning("points cache read failed; reading the ledger", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Writes a committed balance (newer versions only); returns whether Redis took it.
    @discardableResult
    public func write(_ balance: PointsStore.Balance, tenant: TenantID) async -> Bool {
        guard let redis else { return false }
        let expiry = balance.nextExpiry.map { Int64(exactly: ($0.timeIntervalSince1970 * 1000).rounded(.down)) ?? 0 } ?? 0
        do {
            let reply = try await redis.run(
                Self.setIfNewer, keys: [Self.key(tenant, balance.resident)],
                arguments: [
                    "\(balance.version)", "\(balance.available)", "\(balance.frozen)", "\(expiry)", "\(balance.nextExpiryPoints)",
                    "\(Self.ttlMilliseconds)",
                ])
            return reply.integer == 1
        } catch {
            logger.warning("points cache write failed; the ledger stays the answer", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Drops a cached balance (before a change commits).
    public func forget(_ resident: UUID, tenant: TenantID) async {
        guard let redis else { return }
        do { _ = try await redis.send(["DEL", Self.key(tenant, resident)]) } catch {
            logger.warning("points cache delete failed", metadata: ["error": "\(error)"])
        }
    }

    /// Overwrites whatever is cached with the ledger's balance (the check's repair).
    public func replace(_ balance: PointsStore.Balance, tenant: TenantID) async {
        await forget(balance.resident, tenant: tenant)
        await write(balance, tenant: tenant)
    }
}
