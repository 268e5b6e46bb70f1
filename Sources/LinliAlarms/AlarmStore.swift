import Foundation
import LinliCore
import LinliTenancy
import LinliWorkOrders
import Logging
import PostgresNIO

/// Alarms and fire points in the caller's tenant transaction; an alarm or point of a community
/// the caller cannot act in is NOT_FOUND.
public struct AlarmStore: Sendable {
    public init() {}

    public struct Alarm: Sendable {
        public var id: UUID
        public var community: CommunityID
        public var device: UUID
        public var type: String
        public var source: String
        public var severity: String
        public var status: String
        public var detail: String
        public var occurrences: Int
        public var raisedAt: Date
        public var lastSeenAt: Date
        public var acknowledgedAt: Date?
        public var acknowledgedBy: UUID?
        public var assignee: UUID?
        public var clearedAt: Date?
        public var clearedBy: UUID?
        public var falseAlarm: Bool
        public var clearReason: String
        public var escalatedAt: Date?
        public var workOrder: UUID?
    }

    static let columns = """
        id, community_id, device_id, type, source, severity, status, detail, occurrences, raised_at, last_seen_at, acknowledged_at,
        acknowledged_by, assignee_id, cleared_at, cleared_by, false_alarm, clear_reason, escalated_at, work_order_id
        """

    static func alarms(_ rows: PostgresRowSequence) async throws -> [Alarm] {
        var result: [Alarm] = []
        for try await r in rows.decode(
            (
                UUID, UUID, UUID, String, String, String, String, String, Int32, Date, Date, Date?, UUID?, UUID?, Date?, UUID?, Bool, String,
                Date?, UUID?
            ).self)
        {
            result.append(
                Alarm(
                    id: r.0, community: CommunityID(r.1), device: r.2, type: r.3, source: r.4, severity: r.5, status: r.6, detail: r.7,
                    occurrences: Int(clamping: r.8), raisedAt: r.9, lastSeenAt: r.10, acknowledgedAt: r.11, acknowledgedBy: r.12, assignee: r.13,
                    clearedAt: r.14, clearedBy: r.15, falseAlarm: r.16, clearReason: r.17, escalatedAt: r.18, workOrder: r.19))
        }
        return result
    }

    public func alarm(_ id: UUID, for principal: Principal, lock: Bool = false, on connection: PostgresConnection, logger: Logger)
        async throws -> Alarm
    {
        var binds = PostgresBindings()
        binds.append(id)
        let sql = "SELECT \(Self.columns) FROM device_alarms WHERE id = $1" + (lock ? " FOR UPDATE" : "")
        let rows = try await connection.run(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        guard let alarm = try await Self.alarms(rows).first, principal.canAct(in: alarm.community) else { throw LinliError.notFound("alarm") }
        return alarm
    }

    public func alarms(
        community: CommunityID, activeOnly: Bool, typePrefix: String, before: (Date, UUID)?, limit: Int, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Alarm] {
        var binds = PostgresBindings()
        binds.append(community.uuid)
        var sql = "SELECT \(Self.columns) FROM device_alarms WHERE community_id = $1"
        if activeOnly { sql += " AND status <> 'cleared'" }
        if !typePrefix.isEmpty {
            binds.append(typePrefix)
            sql += " AND (type = $\(binds.count) OR type LIKE $\(binds.count) || '.%')"
        }
        if let (time, id) = before {
            binds.append(time)
            binds.append(id)
            sql += " AND (raised_at, id) < ($\(binds.count - 1), $\(binds.count))"
        }
        binds.append(Int32(clamping: limit))
        sql += " ORDER BY raised_at DESC, id DESC LIMIT $\(binds.count)"
        return try await Self.alarms(try await connection.run(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger))
    }

    public func acknowledge(_ alarm: Alarm, by user: UserID, on connection: PostgresConnection, logger: Logger) async throws {
        guard alarm.status == "active" else {
            throw LinliError(.failedPrecondition, "alarm_id: the alarm is \(alarm.status) already", field: "alarm_id")
        }
        try await connection.run(
            """
            UPDATE device_alarms SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = \(user.uuid)
            WHERE id = \(alarm.id) AND status = 'active'
            """, logger: logger)
    }

    public func assign(_ alarm: Alarm, to user: UserID, on connection: PostgresConnection, logger: Logger) async throws {
        let staff = try await connection.run(
            """
            SELECT 1 FROM users u JOIN user_communities uc ON uc.user_id = u.id
            WHERE u.id = \(user.uuid) AND uc.community_id = \(alarm.community.uuid) AND u.role <> 'resident' AND u.status = 'active'
            """, logger: logger)
        var found = false
        for try await _ in staff { found = true }
        guard found else { throw LinliError.invalid("user_id", "is not active staff of the alarm's community") }
        try await connection.run("UPDATE device_alarms SET assignee_id = \(user.uuid) WHERE id = \(alarm.id)", logger: logger)
    }

    /// Clears the alarm; a false alarm needs a reason and counts toward the point's daily limit,
    /// past which the point is flagged for remediation and the managers are told.
    public func clear(
        _ alarm: Alarm, falseAlarm: Bool, reason: String, by user: UserID, on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard alarm.status != "cleared" else { throw LinliError(.failedPrecondition, "alarm_id: the alarm is cleared already", field: "alarm_id") }
        if falseAlarm, reason.isEmpty { throw LinliError.invalid("reason", "a false alarm needs its cause") }
        try await connection.run(
            """
            UPDATE device_alarms SET status = 'cleared', cleared_at = now(), cleared_by = \(user.uuid), false_alarm = \(falseAlarm),
                                     clear_reason = \(reason),
                                     acknowledged_at = coalesce(acknowledged_at, now()), acknowledged_by = coalesce(acknowledged_by, \(user.uuid))
            WHERE id = \(alarm.id)
            """, logger: logger)
        guard falseAlarm, alarm.type == "fire", !alarm.source.isEmpty else { return }
        let rows = try await connection.run(
            """
            WITH limit_ AS (SELECT coalesce((SELECT false_alarm_daily_limit FROM fire_settings WHERE community_id = \(alarm.community.uuid)), 5) AS n),
            today AS (
                SELECT count(*) AS n FROM device_alarms
                WHERE device_id = \(alarm.device) AND source = \(alarm.source) AND type = 'fire' AND false_alarm
                  AND cleared_at >= community_day_start(\(alarm.community.uuid), community_today(\(alarm.community.uuid)))
            )
            UPDATE fire_points SET remediation_flagged_at = now()
            WHERE device_id = \(alarm.device) AND code = \(alarm.source) AND remediation_flagged_at IS NULL
              AND (SELECT n FROM today) > (SELECT n FROM limit_)
            RETURNING (SELECT n FROM today)
            """, logger: logger)
        var flagged: Int64?
        for try await count in rows.decode(Int64.self) { flagged = count }
        if let flagged {
            try await FireHandler.notify(
                alarm: alarm.id, type: "fire.remediation", detail: "\(alarm.source): \(flagged) false alarms today; remediation needed",
                device: DeviceID(alarm.device), community: alarm.community.uuid, roles: ["manager"], on: connection, logger: logger)
        }
    }

    public struct FirePoint: Sendable {
        public var id: UUID
        public var device: UUID
        public var code: String
        public var kind: String
        public var building: UUID?
        public var floor: Int
        public var location: String
        public var disabled: Bool
        public var remediationFlaggedAt: Date?

        public init(
            id: UUID, device: UUID, code: String, kind: String, building: UUID?, floor: Int, location: String, disabled: Bool,
            remediationFlaggedAt: Date?
        ) {
            self.id = id
            self.device = device
            self.code = code
            self.kind = kind
            self.building = building
            self.floor = floor
            self.location = location
            self.disabled = disabled
            self.remediationFlaggedAt = remediationFlaggedAt
        }
    }

    public func createPoint(_ p: FirePoint, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> FirePoint {
        let device = try await connection.run("SELECT community_id, kind FROM devices WHERE id = \(p.device)", logger: logger)
        var found: (UUID, String)?
        for try await row in device.decode((UUID, String).self) { found = row }
        guard let (community, kind) = found, principal.canAct(in: CommunityID(community)) else { throw LinliError.notFound("device") }
        guard kind == "detector" else { throw LinliError.invalid("device_id", "is a \(kind) device, not a fire panel (DETECTOR)") }
        if let building = p.building {
            let rows = try await connection.run(
                "SELECT 1 FROM buildings WHERE id = \(building) AND community_id = \(community)", logger: logger)
            var ok = false
            for try await _ in rows { ok = true }
            guard ok else { throw LinliError.notFound("building") }
        }
        let rows = try await connection.run(
            """
            INSERT INTO fire_points (id, community_id, device_id, code, kind, building_id, floor, location)
            VALUES (\(p.id), \(community), \(p.device), \(p.code), \(p.kind), \(p.building), \(Int32(clamping: p.floor)), \(p.location))
            ON CONFLICT (device_id, code) DO NOTHING RETURNING 1
            """, logger: logger)
        var made = false
        for try await _ in rows { made = true }
        guard made else { throw LinliError(.alreadyExists, "code: the panel already has a point with this code", field: "code") }
        return p
    }

    public func points(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> [FirePoint] {
        let rows = try await connection.run(
            """
            SELECT id, device_id, code, kind, building_id, floor, location, disabled, remediation_flagged_at
            FROM fire_points WHERE community_id = \(community.uuid) ORDER BY device_id, code
            """, logger: logger)
        var result: [FirePoint] = []
        for try await r in rows.decode((UUID, UUID, String, String, UUID?, Int32, String, Bool, Date?).self) {
            result.append(
                FirePoint(
                    id: r.0, device: r.1, code: r.2, kind: r.3, building: r.4, floor: Int(clamping: r.5), location: r.6, disabled: r.7,
                    remediationFlaggedAt: r.8))
        }
        return result
    }

    public func settings(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> (escalate: Int, limit: Int) {
        let rows = try await connection.run(
            "SELECT escalate_after_seconds, false_alarm_daily_limit FROM fire_settings WHERE community_id = \(community.uuid)", logger: logger)
        for try await (escalate, limit) in rows.decode((Int32, Int32).self) { return (Int(clamping: escalate), Int(clamping: limit)) }
        return (180, 5)
    }

    public func setSettings(community: CommunityID, escalate: Int, limit: Int, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            INSERT INTO fire_settings (community_id, escalate_after_seconds, false_alarm_daily_limit)
            VALUES (\(community.uuid), \(Int32(clamping: escalate)), \(Int32(clamping: limit)))
            ON CONFLICT (community_id) DO UPDATE SET escalate_after_seconds = EXCLUDED.escalate_after_seconds,
                                                     false_alarm_daily_limit = EXCLUDED.false_alarm_daily_limit
            """, logger: logger)
    }

    public struct Report: Sendable {
        public var fireAlarms: Int
        public var falseAlarms: Int
        public var faults: Int
        public var escalated: Int
        public var medianAckSeconds: Int
        public var pointsFlagged: Int
        public var alarms: [Alarm]
    }

    public func report(community: CommunityID, from: String, to: String, on connection: PostgresConnection, logger: Logger) async throws -> Report {
        let c = community.uuid
        let span = "community_day_start($1, $2::date) AND raised_at < community_day_start($1, $3::date + 1)"
        var binds = PostgresBindings()
        binds.append(c)
        binds.append(from)
        binds.append(to)
        let rows = try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    SELECT count(*) FILTER (WHERE type = 'fire'), count(*) FILTER (WHERE type = 'fire' AND false_alarm),
                           count(*) FILTER (WHERE type = 'fire.fault'), count(*) FILTER (WHERE escalated_at IS NOT NULL),
                           coalesce(percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - raised_at))
                                    FILTER (WHERE type = 'fire' AND acknowledged_at IS NOT NULL), 0)::int4,
                           (SELECT count(*) FROM fire_points WHERE community_id = $1 AND remediation_flagged_at IS NOT NULL)
                    FROM device_alarms WHERE community_id = $1 AND (type = 'fire' OR type LIKE 'fire.%') AND raised_at >= \(span)
                    """, binds: binds), logger: logger)
        var report = Report(fireAlarms: 0, falseAlarms: 0, faults: 0, escalated: 0, medianAckSeconds: 0, pointsFlagged: 0, alarms: [])
        for try await r in rows.decode((Int64, Int64, Int64, Int64, Int32, Int64).self) {
            report = Report(
                fireAlarms: Int(clamping: r.0), falseAlarms: Int(clamping: r.1), faults: Int(clamping: r.2), escalated: Int(clamping: r.3),
                medianAckSeconds: Int(clamping: r.4), pointsFlagged: Int(clamping: r.5), alarms: [])
        }
        let list = try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    SELECT \(Self.columns) FROM device_alarms
                    WHERE community_id = $1 AND (type = 'fire' OR type LIKE 'fire.%') AND raised_at >= \(span)
                    ORDER BY raised_at LIMIT 2000
                    """, binds: binds), logger: logger)
        report.alarms = try await Self.alarms(list)
        return report
    }
}

extension AlarmStore {
    public struct Rule: Sendable {
        public var id: UUID
        public var community: CommunityID
        public var deviceKind: String
        public var metric: String
        public var above: Bool
        public var threshold: Int64
        public var durationSeconds: Int
        public var repeatCount: Int
        public var clearThreshold: Int64
        public var severity: String
        public var name: String

        public init(
            id: UUID, community: CommunityID, deviceKind: String, metric: String, above: Bool, threshold: Int64, durationSeconds: Int,
            repeatCount: Int, clearThreshold: Int64, severity: String, name: String
        ) {
            self.id = id
            self.community = community
            self.deviceKind = deviceKind
            self.metric = metric
            self.above = above
            self.threshold = threshold
            self.durationSeconds = durationSeconds
            self.repeatCount = repeatCount
            self.clearThreshold = clearThreshold
            self.severity = severity
            self.name = name
        }
    }

    /// Creates the rule, or replaces the one of the same (kind, metric, name); a changed rule
    /// starts its state afresh.
    public func setRule(_ r: Rule, on connection: PostgresConnection, logger: Logger) async throws -> Rule {
        let rows = try await connection.run(
            """
            INSERT INTO alarm_rules (id, community_id, device_kind, metric, comparison, threshold_milli, duration_seconds, repeat_count,
                                     clear_threshold_milli, severity, name)
            VALUES (\(r.id), \(r.community.uuid), \(r.deviceKind), \(r.metric), \(r.above ? "above" : "below"), \(r.threshold),
                    \(Int32(clamping: r.durationSeconds)), \(Int32(clamping: r.repeatCount)), \(r.clearThreshold), \(r.severity), \(r.name))
            ON CONFLICT (community_id, device_kind, metric, name) DO UPDATE SET comparison = EXCLUDED.comparison,
                threshold_milli = EXCLUDED.threshold_milli, duration_seconds = EXCLUDED.duration_seconds, repeat_count = EXCLUDED.repeat_count,
                clear_threshold_milli = EXCLUDED.clear_threshold_milli, severity = EXCLUDED.severity
            RETURNING id
            """, logger: logger)
        var stored = r
        for try await id in rows.decode(UUID.self) { stored.id = id }
        try await connection.run("DELETE FROM alarm_rule_state WHERE rule_id = \(stored.id)", logger: logger)
        return stored
    }

    public func rules(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> [Rule] {
        let rows = try await connection.run(
            """
            SELECT id, device_kind, metric, comparison = 'above', threshold_milli, duration_seconds, repeat_count, clear_threshold_milli,
                   severity, name
            FROM alarm_rules WHERE community_id = \(community.uuid) ORDER BY device_kind, metric, name
            """, logger: logger)
        var result: [Rule] = []
        for try await r in rows.decode((UUID, String, String, Bool, Int64, Int32, Int32, Int64, String, String).self) {
            result.append(
                Rule(
                    id: r.0, community: community, deviceKind: r.1, metric: r.2, above: r.3, threshold: r.4, durationSeconds: Int(clamping: r.5),
                    repeatCount: Int(clamping: r.6), clearThreshold: r.7, severity: r.8, name: r.9))
        }
        return result
    }

    public struct Bucket: Sendable {
        public var at: Date
        public var avg: Int64
        public var min: Int64
        public var max: Int64
        public var samples: Int
    }

    /// The device's metric in [from, to) in buckets of `bucket` seconds, and the basis points of
    /// buckets with a sample.
    public func telemetry(
        device: DeviceID, metric: String, from: Date, to: Date, bucket: Int, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (buckets: [Bucket], uptimeBasisPoints: Int) {
        let owner = try await connection.run("SELECT community_id FROM devices WHERE id = \(device.uuid)", logger: logger)
        var community: UUID?
        for try await id in owner.decode(UUID.self) { community = id }
        guard let community, principal.canAct(in: CommunityID(community)) else { throw LinliError.notFound("device") }
        let rows = try await connection.run(
            """
            SELECT date_bin(make_interval(secs => \(Int32(clamping: bucket))), at, \(from)) AS b, avg(value_milli)::int8, min(value_milli),
                   max(value_milli), count(*)::int4
            FROM telemetry WHERE device_id = \(device.uuid) AND metric = \(metric) AND at >= \(from) AND at < \(to)
            GROUP BY b ORDER BY b
            """, logger: logger)
        var buckets: [Bucket] = []
        for try await (at, avg, low, high, count) in rows.decode((Date, Int64, Int64, Int64, Int32).self) {
            buckets.append(Bucket(at: at, avg: avg, min: low, max: high, samples: Int(clamping: count)))
        }
        let total = max(1, Int(exactly: (to.timeIntervalSince(from) / Double(bucket)).rounded(.up)) ?? 1)
        return (buckets, buckets.count * 10_000 / total)
    }
}
