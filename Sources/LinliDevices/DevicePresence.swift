import Foundation
import LinliCore
import LinliRedis

/// Which devices were seen lately, in Redis: per tenant a sorted set of device ids scored by
/// the last heartbeat (milliseconds), under the tenant's hash tag, and one set of the tenants
/// that have any, which the offline sweep walks (it never walks every tenant).
struct DevicePresence: Sendable {
    let redis: RedisClient

    static let tenantsKey = "linli:devices:tenants"

    static func key(_ tenant: TenantID) -> String {
        RedisKey.tenant(tenant.uuid.uuidString.lowercased().replacingOccurrences(of: "-", with: ""), "devices", "seen")
    }

    /// Records that `device` was seen now; `first` also enrols its tenant for the sweep.
    func touch(_ device: DeviceID, tenant: TenantID, first: Bool = false) async throws {
        let now = Int64(clamping: Int((Date().timeIntervalSince1970 * 1000).rounded(.down)))
        try await redis.send(bytes: [Array("ZADD".utf8), Array(Self.key(tenant).utf8), Array("\(now)".utf8), Array(device.description.utf8)])
        if first { try await redis.send(["SADD", Self.tenantsKey, tenant.description]) }
    }

    /// The tenants with devices seen at some time.
    func tenants() async throws -> [TenantID] {
        let reply = try await redis.send(["SMEMBERS", Self.tenantsKey])
        return (reply.array ?? []).compactMap { $0.string.flatMap(UUID.init(uuidString:)).map(TenantID.init) }
    }

    /// Up to 1,000 devices of `tenant` last seen before `cutoff`, with that time.
    func silent(tenant: TenantID, before cutoff: Date) async throws -> [(DeviceID, Date)] {
        let ms = Int64(clamping: Int((cutoff.timeIntervalSince1970 * 1000).rounded(.down)))
        let reply = try await redis.send(["ZRANGEBYSCORE", Self.key(tenant), "-inf", "(\(ms)", "WITHSCORES", "LIMIT", "0", "1000"])
        let items = reply.array ?? []
        var result: [(DeviceID, Date)] = []
        for pair in stride(from: 0, to: items.count - 1, by: 2) {
            guard let id = items[pair].string.flatMap(UUID.init(uuidString:)), let score = items[pair + 1].string.flatMap(Double.init)
            else { continue }
            result.append((DeviceID(id), Date(timeIntervalSince1970: score / 1000)))
        }
        return result
    }

    /// Forgets devices still last seen before `cutoff` (one seen again meanwhile stays).
    func forget(_ devices: [DeviceID], tenant: TenantID, before cutoff: Date) async throws {
        guard !devices.isEmpty else { return }
        let ms = Int64(clamping: Int((cutoff.timeIntervalSince1970 * 1000).rounded(.down)))
        _ = try await redis.run(Self.forgetScript, keys: [Self.key(tenant)], arguments: ["\(ms)"] + devices.map(\.description))
    }

    private static let forgetScript = RedisScript(
        """
        local n = 0
        for i = 2, #ARGV do
          local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
          if score and tonumber(score) < tonumber(ARGV[1]) then
            redis.call('ZREM', KEYS[1], ARGV[i]); n = n + 1
          end
        end
        return n
        """)
}
