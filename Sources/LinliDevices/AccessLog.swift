import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import NIOCore
import PostgresNIO
import SwiftProtobuf

/// The access log: door events as people read them (who, which door, how, granted or not),
/// written in the same transaction that stores the device's events, and the stranger rule.
public enum AccessLog {
    /// One access event of a batch.
    public struct Row: Sendable {
        public var seq: Int64
        public var doorCode: String
        public var method: String
        public var credential: String
        public var granted: Bool
        public var reason: String
        public var deviceTime: Date
        public var late: Bool

        /// An unknown card or face that was refused: what the stranger rule counts.
        public var isStranger: Bool { credential.isEmpty && !granted }
    }

    static let methods: [Linli_Device_V1_AccessMethod: String] = [
        .card: "card", .pin: "pin", .qr: "qr", .face: "face", .remote: "remote", .visitorCode: "visitor_code", .button: "button",
    ]

    public static func row(seq: Int64, event: Linli_Device_V1_AccessEvent, deviceTime: Date, late: Bool) -> Row {
        Row(
            seq: seq, doorCode: event.doorCode, method: methods[event.method] ?? "unspecified", credential: event.credential,
            granted: event.granted, reason: event.reason, deviceTime: deviceTime, late: late)
    }

    /// Writes the rows (a replay is a no-op) and applies the stranger rule; returns the alarm it
    /// raised, if any.
    static func record(_ rows: [Row], device: DeviceID, on connection: PostgresConnection, logger: Logger) async throws {
        guard !rows.isEmpty else { return }
        // Credentials are ids; a value that is not one matches nothing (and is never cast in SQL).
        let ids = rows.map { UUID(uuidString: $0.credential)?.uuidString.lowercased() ?? "" }
        try await connection.run(
            """
            WITH dev AS (SELECT community_id FROM devices WHERE id = \(device.uuid)),
            e AS (
                SELECT * FROM unnest(\(rows.map(\.seq)), \(rows.map(\.doorCode)), \(rows.map(\.method)), \(rows.map(\.credential)),
                                     \(ids), \(rows.map(\.granted)), \(rows.map(\.reason)), \(rows.map(\.deviceTime)), \(rows.map(\.late)))
                    AS e(seq, door_code, method, credential, credential_id, granted, reason, t, late)
            )
            INSERT INTO access_log (device_id, seq, community_id, door_id, door_code, method, granted, credential,
                                    resident_id, staff_user_id, visitor_pass_id, reason, device_time, late)
            SELECT \(device.uuid), e.seq, dev.community_id, d.id, e.door_code, e.method, e.granted, e.credential,
                   COALESCE(c.resident_id, qr.id), COALESCE(c.staff_user_id, CASE WHEN e.method = 'qr' AND qr.id IS NULL THEN u.id END),
                   p.id, e.reason, e.t, e.late
            FROM e CROSS JOIN dev
            LEFT JOIN doors d ON d.community_id = dev.community_id AND d.code = e.door_code
            LEFT JOIN access_credentials c
                ON e.method <> 'qr' AND c.id = NULLIF(e.credential_id, '')::uuid AND c.community_id = dev.community_id
            LEFT JOIN visitor_passes p
                ON e.method <> 'qr' AND p.id = NULLIF(e.credential_id, '')::uuid AND p.community_id = dev.community_id
            LEFT JOIN residents qr
                ON e.method = 'qr' AND qr.user_id = NULLIF(e.credential_id, '')::uuid AND qr.community_id = dev.community_id
            LEFT JOIN users u ON e.method = 'qr' AND u.id = NULLIF(e.credential_id, '')::uuid
            ON CONFLICT (device_id, seq) DO NOTHING
            """, logger: logger)
        if rows.contains(where: \.isStranger) { try await strangerRule(device: device, on: connection, logger: logger) }
    }

    /// Unknown faces or cards at the device's community: `stranger_threshold` of them within the
    /// window raise one `access.stranger` alarm on the device and tell the community's guards.
    static func strangerRule(device: DeviceID, on connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.run(
            """
            WITH dev AS (SELECT community_id FROM devices WHERE id = \(device.uuid)),
            rule AS (
                SELECT dev.community_id, COALESCE(s.stranger_threshold, 5) AS threshold,
                       COALESCE(s.stranger_window_minutes, 10) AS window_minutes
                FROM dev LEFT JOIN access_settings s ON s.community_id = dev.community_id
            ), seen AS (
                SELECT rule.*, (SELECT count(*) FROM access_log l
                                WHERE l.community_id = rule.community_id AND l.credential = '' AND NOT l.granted
                                  AND l.device_time > now() - make_interval(mins => rule.window_minutes)) AS strangers
                FROM rule
            )
            INSERT INTO device_alarms (id, device_id, community_id, type, severity, detail)
            SELECT uuid_v7(), \(device.uuid), community_id, 'access.stranger', 'major', strangers || ' unknown faces or cards'
            FROM seen WHERE strangers >= threshold
            ON CONFLICT (device_id, type, source) WHERE status <> 'cleared' DO NOTHING
            RETURNING id, (SELECT community_id FROM dev), (SELECT strangers FROM seen), (SELECT window_minutes FROM seen)
            """, logger: logger)
        var raised: (UUID, UUID, Int64, Int32)?
        for try await row in rows.decode((UUID, UUID, Int64, Int32).self) { raised = row }
        guard let (alarm, community, count, window) = raised else { return }
        var message = Linli_Events_V1_DeviceAlarmRaised()
        message.alarmID = alarm.uuidString.lowercased()
        message.deviceID = device.description
        message.communityID = community.uuidString.lowercased()
        message.type = "access.stranger"
        message.detail = "\(count) unknown faces or cards in \(window) minutes"
        let guards = try await connection.run(
            """
            SELECT u.id FROM users u JOIN user_communities uc ON uc.user_id = u.id
            WHERE uc.community_id = \(community) AND u.role = 'guard' AND u.status = 'active'
            """, logger: logger)
        var recipients: [UserID] = []
        for try await id in guards.decode(UUID.self) { recipients.append(UserID(id)) }
        for recipient in recipients {
            try await Outbox.enqueue(Topic.deviceAlarmRaised, message, to: recipient, on: connection, logger: logger)
        }
        logger.notice("stranger alarm", metadata: ["device.id": "\(device)", "count": "\(count)"])
    }

    /// Clears stranger alarms whose window has passed, and deletes log rows and door events older
    /// than each community's retention.
    static func tidy(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE device_alarms a SET status = 'cleared', cleared_at = now()
            FROM devices d LEFT JOIN access_settings s ON s.community_id = d.community_id
            WHERE a.device_id = d.id AND a.type = 'access.stranger' AND a.status <> 'cleared'
              AND a.raised_at < now() - make_interval(mins => COALESCE(s.stranger_window_minutes, 10))
            """, logger: logger)
        try await connection.run(
            """
            WITH expired AS (
                DELETE FROM access_log l USING communities c LEFT JOIN access_settings s ON s.community_id = c.id
                WHERE l.community_id = c.id AND l.device_time < now() - make_interval(days => COALESCE(s.retention_days, 30))
                RETURNING l.device_id, l.seq
            )
            DELETE FROM device_events e USING expired x WHERE e.device_id = x.device_id AND e.seq = x.seq
            """, logger: logger)
    }
}

extension AccessLog {
    /// Whose log: a community's (optionally one door), or one user's own entries as a resident
    /// or as staff.
    public enum Scope: Sendable {
        case community(CommunityID, door: UUID?)
        case user(UserID)
    }

    /// A page, newest first.
    public static func page(
        _ scope: Scope, after cursor: (Date, UUID, Int64)?, limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> Linli_Device_V1_ListAccessLogResponse {
        var community: UUID?
        var door: UUID?
        var user: UUID?
        switch scope {
        case .community(let id, let d):
            community = id.uuid
            door = d
        case .user(let id): user = id.uuid
        }
        let at = cursor?.0 ?? .distantFuture
        let device = cursor?.1 ?? UUID(uuid: uuidZero)
        let seq = cursor?.2 ?? 0
        let rows = try await connection.run(
            """
            SELECT l.device_id, l.seq, l.door_id, l.door_code, l.method, l.granted, l.credential, l.resident_id, l.staff_user_id,
                   l.reason, l.device_time, l.late
            FROM access_log l
            WHERE (\(community)::uuid IS NULL OR l.community_id = \(community))
              AND (\(door)::uuid IS NULL OR l.door_id = \(door))
              AND (\(user)::uuid IS NULL
                   OR l.resident_id IN (SELECT r.id FROM residents r WHERE r.user_id = \(user))
                   OR l.staff_user_id = \(user))
              AND (\(cursor == nil) OR (l.device_time, l.device_id, l.seq) < (\(at), \(device), \(seq)))
            ORDER BY l.device_time DESC, l.device_id DESC, l.seq DESC
            LIMIT \(limit + 1)
            """, logger: logger)
        var entries: [(Date, UUID, Int64, Linli_Device_V1_AccessLogEntry)] = []
        typealias Row = (UUID, Int64, UUID?, String, String, Bool, String, UUID?, UUID?, String, Date, Bool)
        for try await row in rows.decode(Row.self) {
            var entry = Linli_Device_V1_AccessLogEntry()
            entry.deviceID = row.0.uuidString.lowercased()
            entry.seq = UInt64(clamping: row.1)
            entry.doorID = row.2?.uuidString.lowercased() ?? ""
            entry.doorCode = row.3
            entry.method = methods.first { $0.value == row.4 }?.key ?? .unspecified
            entry.granted = row.5
            entry.credentialID = row.6
            entry.residentID = row.7?.uuidString.lowercased() ?? ""
            entry.staffUserID = row.8?.uuidString.lowercased() ?? ""
            entry.reason = row.9
            entry.deviceTime = Google_Protobuf_Timestamp(date: row.10)
            entry.late = row.11
            entries.append((row.10, row.0, row.1, entry))
        }
        var response = Linli_Device_V1_ListAccessLogResponse()
        response.entries = entries.prefix(limit).map(\.3)
        if entries.count > limit, let last = entries.prefix(limit).last {
            response.nextPageToken = PageToken.encode(last.0, last.1, sequence: last.2)
        }
        return response
    }
}
