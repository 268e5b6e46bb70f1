import Foundation
import LinliCore
import LinliRedis

/// Sessions in Redis: the key is a hash of the token, never the token; every use slides the
/// expiry; a session also dies at an absolute lifetime; all of a user's sessions can be revoked.
///
/// Tokens look like `lls_<tenant>_<256 random bits>`: the tenant part picks the Redis hash
/// tag, so a tenant's sessions live in one cluster slot. When Redis is down, every session
/// operation fails closed with `unavailable`.
public struct SessionStore: Sendable {
    private let redis: RedisClient
    /// Idle time after which a session ends.
    public let idleTimeout: Duration
    /// Time after which a session ends however busy it is.
    public let maxLifetime: Duration

    /// Creates a store.
    public init(redis: RedisClient, idleTimeout: Duration = .seconds(1800), maxLifetime: Duration = .seconds(7 * 86400)) {
        self.redis = redis
        self.idleTimeout = idleTimeout
        self.maxLifetime = maxLifetime
    }

    /// A new session for `principal`; returns the token and its idle expiry.
    public func create(for principal: Principal, now: Date = Date()) async throws(LinliError) -> (token: String, expiresAt: Date) {
        let tag = Self.tag(principal.tenantID)
        let token = "lls_\(tag)_\(Secret.random())"
        let key = RedisKey.tenant(tag, "sess", Secret.hashHex(token))
        let userKey = RedisKey.tenant(tag, "usess", principal.subjectID.description)
        let ttl = String(Int(clamping: idleTimeout.components.seconds))
        do {
            try await redis.send(["SET", key, PrincipalCodec.encode(principal, issuedAt: now), "EX", ttl])
            try await redis.send(["SADD", userKey, key])
            try await redis.send(["EXPIRE", userKey, String(Int(clamping: maxLifetime.components.seconds))])
        } catch {
            throw Self.map(error)
        }
        return (token, now.addingTimeInterval(TimeInterval(idleTimeout.components.seconds)))
    }

    /// The principal of a live session, sliding its expiry; `unauthenticated` otherwise.
    public func resolve(_ token: String, now: Date = Date()) async throws(LinliError) -> Principal {
        try await admit(token, now: now) { _ in nil }.principal
    }

    // KEYS[1]: the session. ARGV[1]: idle timeout (s). ARGV[2]: the rate-limit bucket's key
    // without its subject ('' for none), ARGV[3] its interval (µs), ARGV[4] its burst.
    // Returns {session value or '', µs to wait}. The bucket carries the session's hash tag, so
    // both keys live in one cluster slot.
    static let admitScript = RedisScript(
        GCRA.function + """
            local v = redis.call('GETEX', KEYS[1], 'EX', ARGV[1])
            if not v then return {'', 0} end
            local wait = 0
            if ARGV[2] ~= '' then
              local subject = string.match(v, '^v1|[^|]*|([^|]+)|')
              if subject then wait = gcra(ARGV[2] .. subject, tonumber(ARGV[3]), tonumber(ARGV[4]), false) end
            end
            return {v, wait}
            """)

    /// The principal of a live session, sliding its expiry, and in the same Redis round trip a
    /// slot of the rate-limit budget `budget(tag)` names for the session's subject (tag: the
    /// session's tenant tag). Returns the microseconds the call must wait (0: go ahead).
    public func admit(
        _ token: String, now: Date = Date(), budget: (_ tag: String) -> GCRA.Budget?
    ) async throws(LinliError) -> (principal: Principal, waitMicros: Int64) {
        guard let (tag, key) = Self.key(for: token) else { throw Self.invalidSession }
        let rate = budget(tag)
        let reply: [RESPValue]
        do {
            reply =
                try await redis.run(
                    Self.admitScript, keys: [key],
                    arguments: [
                        String(Int(clamping: idleTimeout.components.seconds)), rate?.key ?? "", String(rate?.intervalMicros ?? 0),
                        String(rate?.burst ?? 0),
                    ]
                ).array ?? []
        } catch {
            throw Self.map(error)
        }
        guard reply.count == 2, let value = reply[0].string, let (principal, issuedAt) = PrincipalCodec.decode(value) else {
            throw Self.invalidSession
        }
        if now.timeIntervalSince(issuedAt) > TimeInterval(maxLifetime.components.seconds) {
            _ = try? await redis.send(["DEL", key])
            throw Self.invalidSession
        }
        return (principal, reply[1].integer ?? 0)
    }

    /// Ends one session.
    public func revoke(_ token: String) async throws(LinliError) {
        guard let (_, key) = Self.key(for: token) else { return }
        do { try await redis.send(["DEL", key]) } catch { throw Self.map(error) }
    }

    /// Ends every session of `user`; returns how many were live.
    public func revokeAll(tenant: TenantID?, user: UserID) async throws(LinliError) -> Int {
        let tag = Self.tag(tenant)
        let userKey = RedisKey.tenant(tag, "usess", user.description)
        do {
            let members = try await redis.send(["SMEMBERS", userKey]).array?.compactMap(\.string) ?? []
            var live = 0
            if !members.isEmpty {
                live = Int(try await redis.send(["DEL"] + members).integer ?? 0)
            }
            try await redis.send(["DEL", userKey])
            return live
        } catch {
            throw Self.map(error)
        }
    }

    static let invalidSession = LinliError(.unauthenticated, "session expired or revoked; sign in again")

    /// The Redis hash tag of `tenant`'s sessions and rate-limit buckets.
    public static func tag(_ tenant: TenantID?) -> String {
        tenant.map { $0.description.replacingOccurrences(of: "-", with: "") } ?? "platform"
    }

    /// The hash tag and the Redis key of `token`'s session; nil for anything not shaped like a token.
    static func key(for token: String) -> (tag: String, key: String)? {
        let parts = token.split(separator: "_", maxSplits: 2)
        guard parts.count == 3, parts[0] == "lls", parts[2].count == 43,
            parts[1] == "platform" || (parts[1].count == 32 && parts[1].allSatisfy(\.isHexDigit))
        else { return nil }
        return (String(parts[1]), RedisKey.tenant(String(parts[1]), "sess", Secret.hashHex(token)))
    }

    static func map(_ error: any Error) -> LinliError {
        if let error = error as? LinliError { return error }
        return LinliError(.unavailable, "session store unavailable", cause: error)
    }
}
