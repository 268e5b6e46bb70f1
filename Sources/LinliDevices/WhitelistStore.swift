import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import NIOCore
import PostgresNIO

/// Each device's whitelist as versioned desired state (migration 0019): reconciling writes
/// what changed as a new version; a device gets the net change from the version it holds.
public struct WhitelistStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Reconciles the devices of the communities something marked (a move-out, a revoked card,
    /// an expired pass...; migration 0035); returns how many devices it looked at. Several
    /// processes may run it at once: each mark is taken by one, and devices are locked in id
    /// order so two passes over one community wait rather than deadlock.
    @discardableResult
    public func reconcileMarked(tenant: TenantRef, logger: Logger) async throws(LinliError) -> Int {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                WITH taken AS (
                    DELETE FROM whitelist_marks WHERE (community_id, xact) IN (
                        SELECT community_id, xact FROM whitelist_marks ORDER BY community_id, xact LIMIT 500 FOR UPDATE SKIP LOCKED)
                    RETURNING community_id
                )
                SELECT count(whitelist_reconcile(id)) FROM (
                    SELECT d.id FROM devices d
                    WHERE d.community_id IN (SELECT community_id FROM taken) AND d.status = 'active'
                      AND EXISTS (SELECT 1 FROM door_devices dd WHERE dd.device_id = d.id)
                    ORDER BY d.id
                ) marked
                """, logger: logger)
            for try await count in rows.decode(Int64.self) { return Int(clamping: count) }
            return 0
        }
    }

    /// Reconciles every active device with doors: the periodic pass that drops what time ended
    /// (expired passes and credentials).
    @discardableResult
    public func reconcileAll(tenant: TenantRef, logger: Logger) async throws(LinliError) -> Int {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                SELECT count(whitelist_reconcile(id)) FROM (
                    SELECT d.id FROM devices d
                    WHERE d.status = 'active' AND EXISTS (SELECT 1 FROM door_devices dd WHERE dd.device_id = d.id)
                    ORDER BY d.id
                ) every
                """, logger: logger)
            for try await count in rows.decode(Int64.self) { return Int(clamping: count) }
            return 0
        }
    }

    /// Whether a device reporting `reported` at hello can be sent a diff from it: only a version
    /// between the last acknowledged and the current one (older removals are collected).
    public func baseline(device: DeviceID, reported: Int64, tenant: TenantRef, logger: Logger) async throws(LinliError) -> Int64? {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                "SELECT whitelist_version, whitelist_acked FROM devices WHERE id = \(device.uuid)", logger: logger)
            for try await (version, acked) in rows.decode((Int64, Int64).self) {
                return reported > 0 && reported >= acked && reported <= version ? reported : nil
            }
            return nil
        }
    }

    /// The diff from `held` (nil: the device's state is unknown, send everything), or nil when
    /// the device is up to date. Also returns the version it brings the device to.
    public func diff(device: DeviceID, from held: Int64?, tenant: TenantRef, logger: Logger) async throws(LinliError)
        -> Linli_Device_V1_WhitelistDiff?
    {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                "SELECT whitelist_version, community_id FROM devices WHERE id = \(device.uuid) AND status = 'active'", logger: logger)
            var current: (Int64, UUID)?
            for try await row in rows.decode((Int64, UUID).self) { current = row }
            guard let (version, community) = current else { return nil }
            if let held, held >= version { return nil }
            if held == nil && version == 0 { return nil }
            var diff = Linli_Device_V1_WhitelistDiff()
            diff.fromVersion = UInt64(clamping: held ?? 0)
            diff.toVersion = UInt64(clamping: version)
            diff.full = held == nil
            let from = held ?? 0
            let full = held == nil
            let entries = try await connection.run(
                """
                SELECT key, kind, value, valid_from, valid_until, door_codes FROM whitelist_entries
                WHERE device_id = \(device.uuid) AND removed_version IS NULL AND (\(full) OR added_version > \(from))
                ORDER BY key
                """, logger: logger)
            for try await (key, kind, value, validFrom, validUntil, doors) in entries.decode(
                (String, String, String, Date?, Date?, [String]).self)
            {
                var entry = Linli_Device_V1_WhitelistEntry()
                entry.key = key
                entry.kind = Self.kinds[kind] ?? .unspecified
                entry.value = value
                entry.validFromMs = validFrom.map(Self.milliseconds) ?? 0
                entry.validUntilMs = validUntil.map(Self.milliseconds) ?? 0
                entry.doorCodes = doors
                diff.upserts.append(entry)
            }
            if !full {
                let removed = try await connection.run(
                    """
                    SELECT DISTINCT w.key FROM whitelist_entries w
                    WHERE w.device_id = \(device.uuid) AND w.added_version <= \(from) AND w.removed_version > \(from)
                      AND NOT EXISTS (
                          SELECT 1 FROM whitelist_entries c
                          WHERE c.device_id = w.device_id AND c.key = w.key AND c.removed_version IS NULL AND c.added_version > \(from))
                    ORDER BY 1
                    """, logger: logger)
                for try await key in removed.decode(String.self) { diff.removes.append(key) }
            }
            let doors = try await connection.run(
                """
                SELECT d.code, d.building_id FROM door_devices dd JOIN doors d ON d.id = dd.door_id
                WHERE dd.device_id = \(device.uuid) ORDER BY d.code
                """, logger: logger)
            for try await (code, building) in doors.decode((String, UUID?).self) {
                var door = Linli_Device_V1_DoorInfo()
                door.code = code
                door.buildingID = building?.uuidString.lowercased() ?? ""
                diff.doors.append(door)
            }
            let key = try await AccessStore().qrKey(community: CommunityID(community), on: connection, logger: logger)
            diff.qrPublicKey = Data(key.publicKey.rawRepresentation)
            return diff
        }
    }

    /// Records the version a device holds; an ack older than the last one or newer than any
    /// version made is ignored. Entries removed at or before it are no longer needed.
    @discardableResult
    public func acknowledge(_ version: Int64, device: DeviceID, tenant: TenantRef, logger: Logger) async throws(LinliError) -> Bool {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                UPDATE devices SET whitelist_acked = \(version)
                WHERE id = \(device.uuid) AND \(version) > whitelist_acked AND \(version) <= whitelist_version
                RETURNING 1
                """, logger: logger)
            var applied = false
            for try await _ in rows { applied = true }
            if applied {
                try await connection.run(
                    "DELETE FROM whitelist_entries WHERE device_id = \(device.uuid) AND removed_version <= \(version)", logger: logger)
            }
            return applied
        }
    }

    /// Version, acknowledged version and entry count.
    public func status(device: DeviceID, on connection: PostgresConnection, logger: Logger) async throws -> (Int64, Int64, Int) {
        let rows = try await connection.run(
            """
            SELECT whitelist_version, whitelist_acked,
                   (SELECT count(*) FROM whitelist_entries WHERE device_id = \(device.uuid) AND removed_version IS NULL)
            FROM devices WHERE id = \(device.uuid)
            """, logger: logger)
        for try await (version, acked, count) in rows.decode((Int64, Int64, Int64).self) {
            return (version, acked, Int(clamping: count))
        }
        throw LinliError.notFound("device")
    }

    static let kinds: [String: Linli_Device_V1_CredentialKind] = [
        "card": .card, "pin": .pin, "face": .face, "visitor_code": .visitorCode,
    ]

    static func milliseconds(_ date: Date) -> Int64 {
        Int64(clamping: Int((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }
}
