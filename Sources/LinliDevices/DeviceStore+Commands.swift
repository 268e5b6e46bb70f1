import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import NIOCore
import PostgresNIO
import SwiftProtobuf

/// Commands to devices: rows first, then the wire. States queued → sent → delivered →
/// succeeded / failed / timed_out, or expired when not delivered by `expires_at`. A command
/// read after its expiry that was never delivered reads as expired whether or not the sweep
/// has written it yet, so no path can send or run it.
extension DeviceStore {
    /// How long a delivered command may take to report its result before it is timed out.
    public static let resultTimeout: Duration = .seconds(60)

    public struct CommandRow: Sendable {
        public var id: DeviceCommandID
        public var deviceID: DeviceID
        public var state: String
        public var body: ByteBuffer
        public var createdAt: Date
        public var expiresAt: Date
        public var updatedAt: Date
        public var detail: String
        public var createdBy: UserID
    }

    /// The state as callers see it: never-delivered commands past their expiry are expired.
    static let commandColumns = """
        id, device_id,
        CASE WHEN state IN ('queued', 'sent') AND expires_at <= now() THEN 'expired' ELSE state END,
        body, created_at, expires_at, updated_at, detail, created_by
        """

    static func decodeCommands(_ rows: PostgresRowSequence) async throws -> [CommandRow] {
        var result: [CommandRow] = []
        typealias Row = (UUID, UUID, String, ByteBuffer, Date, Date, Date, String, UUID)
        for try await row in rows.decode(Row.self) {
            result.append(
                CommandRow(
                    id: DeviceCommandID(row.0), deviceID: DeviceID(row.1), state: row.2, body: row.3, createdAt: row.4,
                    expiresAt: row.5, updatedAt: row.6, detail: row.7, createdBy: UserID(row.8)))
        }
        return result
    }

    /// Queues `command` (its id and expiry are set here); the insert trigger wakes the gateway
    /// process that holds the device.
    public func queue(
        _ command: Linli_Device_V1_Command, action: String, to device: Device, ttl: Duration, by user: UserID,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> CommandRow {
        guard device.status == "active" else {
            throw LinliError(.failedPrecondition, "device_id: the device is \(device.status)", field: "device_id")
        }
        let id = DeviceCommandID.make()
        let now = Date()
        let expires = now.addingTimeInterval(TimeInterval(ttl.components.seconds))
        var command = command
        command.commandID = id.description
        command.expiresAtMs = Int64(clamping: Int((expires.timeIntervalSince1970 * 1000).rounded(.down)))
        let body = ByteBuffer(bytes: try command.serializedBytes() as [UInt8])
        let rows = try await connection.run(
            """
            INSERT INTO device_commands (id, device_id, action, body, expires_at, created_by)
            VALUES (\(id.uuid), \(device.id.uuid), \(action), \(body), \(expires), \(user.uuid))
            RETURNING \(unescaped: Self.commandColumns)
            """, logger: logger)
        guard let row = try await Self.decodeCommands(rows).first else { throw LinliError.notFound("command") }
        return row
    }

    /// The command, if the principal may see its device.
    public func command(_ id: DeviceCommandID, for principal: Principal, on connection: PostgresConnection, logger: Logger)
        async throws -> CommandRow
    {
        let rows = try await connection.run(
            "SELECT \(unescaped: Self.commandColumns) FROM device_commands WHERE id = \(id.uuid)", logger: logger)
        guard let row = try await Self.decodeCommands(rows).first else { throw LinliError.notFound("command") }
        _ = try await device(row.deviceID, for: principal, on: connection, logger: logger)
        return row
    }

    /// The device's commands due to be sent (queued, or sent on a connection that is gone), in
    /// order, marked sent; `except` are already on this connection.
    public func takeDue(for device: DeviceID, except: Set<DeviceCommandID>, tenant: TenantRef, logger: Logger)
        async throws(LinliError) -> [(DeviceCommandID, ByteBuffer)]
    {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                UPDATE device_commands c SET state = 'sent', updated_at = now()
                FROM (SELECT id FROM device_commands
                      WHERE device_id = \(device.uuid) AND state IN ('queued', 'sent') AND expires_at > now()
                        AND NOT (id = ANY(\(except.map(\.uuid))))
                      ORDER BY created_at LIMIT 100 FOR UPDATE) due
                WHERE c.id = due.id
                RETURNING c.id, c.body, c.created_at
                """, logger: logger)
            var result: [(DeviceCommandID, ByteBuffer, Date)] = []
            for try await (id, body, created) in rows.decode((UUID, ByteBuffer, Date).self) {
                result.append((DeviceCommandID(id), body, created))
            }
            return result.sorted { $0.2 < $1.2 }.map { ($0.0, $0.1) }
        }
    }

    /// Applies a device's report on a command. Only forward moves apply: a duplicate or stale
    /// report is a no-op, a report on an expired command changes nothing (it never runs), and
    /// a result after a timeout is still recorded (the device did run it).
    @discardableResult
    public func report(
        _ id: DeviceCommandID, outcome: Linli_Device_V1_CommandOutcome, detail: String, device: DeviceID,
        tenant: TenantRef, logger: Logger
    ) async throws(LinliError) -> Bool {
        let (target, from): (String, [String])
        switch outcome {
        case .received: (target, from) = ("delivered", ["queued", "sent"])
        case .succeeded: (target, from) = ("succeeded", ["queued", "sent", "delivered", "timed_out"])
        case .failed: (target, from) = ("failed", ["queued", "sent", "delivered", "timed_out"])
        default: return false
        }
        return try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                UPDATE device_commands SET state = \(target), detail = \(detail), updated_at = now()
                WHERE id = \(id.uuid) AND device_id = \(device.uuid) AND state = ANY(\(from))
                  AND (state = 'delivered' OR state = 'timed_out' OR expires_at > now())
                RETURNING 1
                """, logger: logger)
            for try await _ in rows { return true }
            return false
        }
    }

    /// Writes down what time has decided: never-delivered commands past their expiry are
    /// expired, delivered ones silent past the result timeout are timed out.
    public func sweepCommands(tenant: TenantRef, logger: Logger) async throws(LinliError) -> Int {
        let timeout = "\(DeviceStore.resultTimeout.components.seconds) seconds"
        return try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                WITH e AS (
                    UPDATE device_commands SET state = 'expired', updated_at = now()
                    WHERE state IN ('queued', 'sent') AND expires_at <= now() RETURNING 1
                ), t AS (
                    UPDATE device_commands SET state = 'timed_out', updated_at = now()
                    WHERE state = 'delivered' AND updated_at < now() - \(timeout)::interval RETURNING 1
                )
                SELECT (SELECT count(*) FROM e) + (SELECT count(*) FROM t)
                """, logger: logger)
            for try await count in rows.decode(Int64.self) { return Int(clamping: count) }
            return 0
        }
    }

    /// Which of `devices` have commands waiting to be sent.
    public func devicesWithQueuedCommands(_ devices: [DeviceID], tenant: TenantRef, logger: Logger) async throws(LinliError)
        -> Set<DeviceID>
    {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                SELECT DISTINCT device_id FROM device_commands
                WHERE device_id = ANY(\(devices.map(\.uuid))) AND state = 'queued' AND expires_at > now()
                """, logger: logger)
            var result: Set<DeviceID> = []
            for try await id in rows.decode(UUID.self) { result.insert(DeviceID(id)) }
            return result
        }
    }
}
