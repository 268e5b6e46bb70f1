import Foundation
import LinliAPI
import LinliCore
import LinliDevices
import LinliTenancy
import Logging
import PostgresNIO

/// Fire panel events, inside the transaction that stores them (the gateway's
/// `DeviceEventHandler`): every event is kept in `fire_events`; a fire, fault, supervisory or
/// disabled signal creates or updates the one active alarm of its (device, type, point) — two
/// identical events milliseconds apart raise one alarm, counted twice — and a new fire alarm is
/// told to the community's guards and managers in the same transaction (the outbox carries it
/// to their inboxes). A reset clears the device's fire alarms. A point nobody configured still
/// raises its alarm: a fire is never dropped for want of set-up.
public struct FireHandler: DeviceEventHandler {
    public init() {}

    public func handles(_ event: Linli_Device_V1_Event) -> Bool {
        if case .fire = event.body { return true }
        return false
    }

    static let kinds: [Linli_Device_V1_FireEventKind: String] = [
        .fire: "fire", .fault: "fault", .supervisory: "supervisory", .disabled: "disabled", .linkageStarted: "linkage_started",
        .linkageConfirmed: "linkage_confirmed", .reset: "reset",
    ]

    /// Alarm type and severity per event kind; kinds not here raise nothing.
    static let alarms: [String: (type: String, severity: String)] = [
        "fire": ("fire", "critical"), "fault": ("fire.fault", "major"), "supervisory": ("fire.supervisory", "minor"),
        "disabled": ("fire.disabled", "warning"),
    ]

    public func handle(_ events: [DeviceStore.IncomingEvent], device: DeviceID, on connection: PostgresConnection, logger: Logger)
        async throws -> [Linli_Device_V1_ServerMessage]
    {
        for incoming in events {
            guard case .fire(let fire) = incoming.event.body else { continue }
            let kind = Self.kinds[fire.kind] ?? "unspecified"
            var alarm: UUID?
            if let (type, severity) = Self.alarms[kind] {
                alarm = try await Self.raise(
                    type: type, severity: severity, point: fire.pointCode, detail: fire.detail, device: device, on: connection, logger: logger)
                if kind == "disabled" {
                    try await connection.run(
                        "UPDATE fire_points SET disabled = true WHERE device_id = \(device.uuid) AND code = \(fire.pointCode)", logger: logger)
                }
            } else if kind == "reset" {
                try await connection.run(
                    """
                    UPDATE device_alarms SET status = 'cleared', cleared_at = now(), clear_reason = 'reset at the panel'
                    WHERE device_id = \(device.uuid) AND (type = 'fire' OR type LIKE 'fire.%') AND status <> 'cleared'
                    """, logger: logger)
            } else if kind.hasPrefix("linkage") {
                try await connection.run(
                    """
                    UPDATE device_alarms SET detail = left(detail || ' · ' || \(kind == "linkage_started" ? "联动启动" : "联动反馈"), 500),
                                             last_seen_at = now()
                    WHERE device_id = \(device.uuid) AND type = 'fire' AND status <> 'cleared'
                    """, logger: logger)
            }
            try await connection.run(
                """
                INSERT INTO fire_events (device_id, seq, community_id, point_id, point_code, kind, detail, device_time, late, alarm_id)
                SELECT d.id, \(incoming.seq), d.community_id, p.id, \(fire.pointCode), \(kind), \(fire.detail), \(incoming.deviceTime),
                       \(incoming.late), \(alarm)
                FROM devices d LEFT JOIN fire_points p ON p.device_id = d.id AND p.code = \(fire.pointCode)
                WHERE d.id = \(device.uuid)
                ON CONFLICT (device_id, seq) DO NOTHING
                """, logger: logger)
        }
        return []
    }

    /// Creates the active alarm of (device, type, point) or counts this event on it; returns
    /// the alarm. A new one is told to the guards (fire) and the managers at once.
    static func raise(
        type: String, severity: String, point: String, detail: String, device: DeviceID, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> UUID? {
        try await raiseNew(type: type, severity: severity, point: point, detail: detail, device: device, on: connection, logger: logger)?.id
    }

    /// Guards are told at once of these; managers of every alarm.
    static let urgent: Set<String> = ["fire", "elevator.trapped"]

    /// `raise`, also saying whether the alarm is new.
    static func raiseNew(
        type: String, severity: String, point: String, detail: String, device: DeviceID, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (id: UUID, community: UUID, new: Bool)? {
        let rows = try await connection.run(
            """
            WITH d AS (
                SELECT d.id, d.community_id, d.name, p.location, p.floor, b.name AS building, p.disabled
                FROM devices d LEFT JOIN fire_points p ON p.device_id = d.id AND p.code = \(point)
                LEFT JOIN buildings b ON b.id = p.building_id
                WHERE d.id = \(device.uuid)
            )
            INSERT INTO device_alarms (id, device_id, community_id, type, source, severity, detail)
            SELECT uuid_v7(), d.id, d.community_id, \(type), \(point), \(severity),
                   left(concat_ws(' ', d.building, CASE WHEN d.floor IS NOT NULL THEN d.floor || '层' END, d.location,
                                  CASE WHEN d.disabled THEN '(屏蔽点)' END, \(detail)), 500)
            FROM d
            ON CONFLICT (device_id, type, source) WHERE status <> 'cleared'
            DO UPDATE SET occurrences = device_alarms.occurrences + 1, last_seen_at = now()
            RETURNING id, community_id, detail, xmax = 0
            """, logger: logger)
        var raised: (UUID, UUID, String, Bool)?
        for try await row in rows.decode((UUID, UUID, String, Bool).self) { raised = row }
        guard let (alarm, community, text, inserted) = raised else { return nil }
        if inserted {
            let roles = urgent.contains(type) ? ["guard", "manager"] : ["manager"]
            try await notify(
                alarm: alarm, type: type, detail: text.isEmpty ? point : text, device: device, community: community, roles: roles,
                on: connection, logger: logger)
            if urgent.contains(type) {
                logger.notice("urgent alarm", metadata: ["type": "\(type)", "device.id": "\(device)", "point": "\(point)", "alarm.id": "\(alarm)"])
            }
        }
        return (alarm, community, inserted)
    }

    /// Tells the community's active staff of `roles` through the outbox (their inboxes).
    static func notify(
        alarm: UUID, type: String, detail: String, device: DeviceID, community: UUID, roles: [String], on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        var message = Linli_Events_V1_DeviceAlarmRaised()
        message.alarmID = alarm.uuidString.lowercased()
        message.deviceID = device.description
        message.communityID = community.uuidString.lowercased()
        message.type = type
        message.detail = detail
        let staff = try await connection.run(
            """
            SELECT u.id FROM users u JOIN user_communities uc ON uc.user_id = u.id
            WHERE uc.community_id = \(community) AND u.role = ANY(\(roles)) AND u.status = 'active'
            """, logger: logger)
        var recipients: [UserID] = []
        for try await id in staff.decode(UUID.self) { recipients.append(UserID(id)) }
        for recipient in recipients {
            try await Outbox.enqueue(Topic.deviceAlarmRaised, message, to: recipient, on: connection, logger: logger)
        }
    }
}

/// Raising an alarm from any module: the one create-or-update of (device, type, source), told
/// to the community's managers when it is new.
public enum Alarms {
    @discardableResult
    public static func raise(
        type: String, severity: String, source: String, detail: String, device: DeviceID, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> UUID? {
        try await FireHandler.raise(type: type, severity: severity, point: source, detail: detail, device: device, on: connection, logger: logger)
    }
}
