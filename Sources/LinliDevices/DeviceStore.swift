import Foundation
import LinliCore
import LinliTenancy
import Logging
import NIOCore
import PostgresNIO

/// The device registry and what devices reported: every SQL of devices, their events and their
/// alarms. Commands are in `DeviceStore+Commands`.
public struct DeviceStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// The kinds of device, as stored.
    public static let kinds = ["door", "face_terminal", "barrier", "meter", "detector", "broadcast", "elevator", "energy"]

    public struct Device: Sendable {
        public var id: DeviceID
        public var communityID: CommunityID
        public var serial: String
        public var kind: String
        public var name: String
        public var status: String
        public var online: Bool
        public var lastSeenAt: Date?
        public var commitPoint: Int64
        public var firmware: String
        public var createdAt: Date
    }

    static let deviceColumns =
        "id, community_id, serial, kind, name, status, online, last_seen_at, commit_point, firmware, created_at"

    static func decodeDevices(_ rows: PostgresRowSequence) async throws -> [Device] {
        var result: [Device] = []
        typealias Row = (UUID, UUID, String, String, String, String, Bool, Date?, Int64, String, Date)
        for try await row in rows.decode(Row.self) {
            result.append(
                Device(
                    id: DeviceID(row.0), communityID: CommunityID(row.1), serial: row.2, kind: row.3, name: row.4,
                    status: row.5, online: row.6, lastSeenAt: row.7, commitPoint: row.8, firmware: row.9, createdAt: row.10))
        }
        return result
    }

    // MARK: Staff

    /// Registers a device; returns it and its secret (the only time the secret exists in clear).
    public func register(
        community: CommunityID, serial: String, kind: String, name: String, by user: UserID,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> (Device, [UInt8]) {
        try await Scope.requireExists(community, on: connection, logger: logger)
        let secret = DeviceCredential.makeSecret()
        let stored = ByteBuffer(bytes: DeviceCredential.storedKey(secret: secret))
        let id = DeviceID.make()
        let rows = try await connection.run(
            """
            INSERT INTO devices (id, community_id, serial, kind, name, stored_key, created_by)
            VALUES (\(id.uuid), \(community.uuid), \(serial), \(kind), \(name), \(stored), \(user.uuid))
            ON CONFLICT (community_id, serial) DO NOTHING
            RETURNING \(unescaped: Self.deviceColumns)
            """, logger: logger)
        guard let device = try await Self.decodeDevices(rows).first else {
            throw LinliError(.alreadyExists, "serial: a device with this serial is registered in the community", field: "serial")
        }
        return (device, secret)
    }

    /// A new secret for the device; connections under the old one are dropped (`generation`).
    public func rotateSecret(_ id: DeviceID, for principal: Principal, on connection: PostgresConnection, logger: Logger)
        async throws -> [UInt8]
    {
        let device = try await self.device(id, for: principal, on: connection, logger: logger)
        guard device.status != "revoked" else {
            throw LinliError(.failedPrecondition, "device_id: the device is revoked; register it anew", field: "device_id")
        }
        let secret = DeviceCredential.makeSecret()
        let stored = ByteBuffer(bytes: DeviceCredential.storedKey(secret: secret))
        try await connection.run(
            "UPDATE devices SET stored_key = \(stored), generation = generation + 1 WHERE id = \(id.uuid)", logger: logger)
        return secret
    }

    /// Sets the status; a device leaving `active` is dropped and its open commands expire.
    public func setStatus(
        _ id: DeviceID, to status: String, for principal: Principal, on connection: PostgresConnection, logger: Logger
    ) async throws -> Device {
        let device = try await self.device(id, for: principal, on: connection, logger: logger)
        if device.status == "revoked" && status != "revoked" {
            throw LinliError(.failedPrecondition, "status: a revoked device stays revoked; register it anew", field: "status")
        }
        if device.status == status { return device }
        let rows = try await connection.run(
            """
            UPDATE devices SET status = \(status), generation = generation + 1,
                online = CASE WHEN \(status) = 'active' THEN online ELSE false END
            WHERE id = \(id.uuid)
            RETURNING \(unescaped: Self.deviceColumns)
            """, logger: logger)
        if status != "active" {
            try await connection.run(
                """
                UPDATE device_commands SET state = 'expired', detail = 'the device was \(unescaped: status)', updated_at = now()
                WHERE device_id = \(id.uuid) AND state IN ('queued', 'sent', 'delivered')
                """, logger: logger)
        }
        guard let updated = try await Self.decodeDevices(rows).first else { throw LinliError.notFound("device") }
        return updated
    }

    /// The device, if the principal's scope covers its community; `notFound` otherwise.
    public func device(_ id: DeviceID, for principal: Principal, on connection: PostgresConnection, logger: Logger)
        async throws -> Device
    {
        let rows = try await connection.run(
            "SELECT \(unescaped: Self.deviceColumns) FROM devices WHERE id = \(id.uuid)", logger: logger)
        // Out of scope reads as unknown: a device id says nothing about other communities.
        guard let device = try await Self.decodeDevices(rows).first, principal.canAct(in: device.communityID) else {
            throw LinliError.notFound("device")
        }
        return device
    }

    /// A page of the community's devices, oldest first.
    public func list(
        community: CommunityID, after cursor: (Date, UUID)?, limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> [Device] {
        let at = cursor?.0 ?? .distantPast
        let after = cursor?.1 ?? UUID(uuid: uuidZero)
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.deviceColumns) FROM devices
            WHERE community_id = \(community.uuid) AND (created_at, id) > (\(at), \(after))
            ORDER BY created_at, id LIMIT \(limit + 1)
            """, logger: logger)
        return try await Self.decodeDevices(rows)
    }

    public struct StoredEvent: Sendable {
        public var seq: Int64
        public var body: ByteBuffer
        public var receivedAt: Date
        public var late: Bool
    }

    /// A page of the device's events, highest sequence first, below `before` (nil: from the top).
    public func events(of device: DeviceID, before: Int64?, limit: Int, on connection: PostgresConnection, logger: Logger)
        async throws -> [StoredEvent]
    {
        let rows = try await connection.run(
            """
            SELECT seq, body, received_at, late FROM device_events
            WHERE device_id = \(device.uuid) AND seq < \(before ?? .max)
            ORDER BY seq DESC LIMIT \(limit + 1)
            """, logger: logger)
        var result: [StoredEvent] = []
        for try await (seq, body, receivedAt, late) in rows.decode((Int64, ByteBuffer, Date, Bool).self) {
            result.append(StoredEvent(seq: seq, body: body, receivedAt: receivedAt, late: late))
        }
        return result
    }
}
