import Foundation
import LinliCore
import LinliTenancy
import LinliWorkOrders
import Logging
import PostgresNIO
import ServiceLifecycle

/// Escalates trapped-passenger alarms nobody acknowledged (the maintainer's arrival) within 30
/// minutes — the managers are told — and fire alarms nobody acknowledged within the community's `escalate_after_seconds`
/// (default 180): an emergency work order in the "fire" category (made on first use) filed on
/// behalf of the community's manager, and a notice in every manager's inbox. Each alarm
/// escalates once (`escalated_at`), whichever process gets it first (SKIP LOCKED).
public struct AlarmEscalationJob: Service, Sendable {
    let database: Database
    let interval: Duration
    let logger: Logger

    public init(database: Database, interval: Duration = .seconds(5), logger: Logger) {
        self.database = database
        self.interval = interval
        self.logger = logger
    }

    /// The repair category escalated fire alarms are filed in.
    public static let category = "fire"

    public func run() async throws {
        await PeriodicJob.run(every: interval, first: .afterInterval, name: "alarm escalation", logger: logger) {
            try await runAll()
        }
    }

    /// One pass over every active tenant; returns the alarms escalated.
    @discardableResult
    public func runAll() async throws(LinliError) -> Int {
        var total = 0
        try await database.forEachActiveTenant("alarm escalation", logger: logger) { tenant throws(LinliError) in total += try await run(tenant) }
        return total
    }

    public func run(_ tenant: TenantRef) async throws(LinliError) -> Int {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                SELECT a.id, a.type, a.community_id, a.device_id, a.source, a.detail, a.raised_at,
                       (SELECT u.id FROM users u JOIN user_communities uc ON uc.user_id = u.id
                        WHERE uc.community_id = a.community_id AND u.role = 'manager' AND u.status = 'active' ORDER BY u.id LIMIT 1)
                FROM device_alarms a LEFT JOIN fire_settings s ON s.community_id = a.community_id
                WHERE a.status = 'active' AND a.escalated_at IS NULL
                  AND ((a.type = 'fire' AND a.raised_at < now() - make_interval(secs => coalesce(s.escalate_after_seconds, 180)))
                       OR (a.type = 'elevator.trapped'
                           AND a.raised_at < now() - make_interval(mins => \(Int32(clamping: ElevatorHandler.arrivalMinutes)))))
                ORDER BY a.raised_at
                LIMIT 100
                FOR UPDATE OF a SKIP LOCKED
                """, logger: logger)
            var due: [(UUID, String, UUID, UUID, String, String, Date, UUID?)] = []
            for try await row in rows.decode((UUID, String, UUID, UUID, String, String, Date, UUID?).self) { due.append(row) }
            for (alarm, type, community, device, point, detail, raised, manager) in due {
                if type == "elevator.trapped" {
                    // The work order exists since the alarm; past the arrival clock the managers act (second tier).
                    try await connection.run("UPDATE device_alarms SET escalated_at = now() WHERE id = \(alarm)", logger: logger)
                    try await FireHandler.notify(
                        alarm: alarm, type: "elevator.escalated", detail: "困人 \(ElevatorHandler.arrivalMinutes) 分钟未到达: \(detail)",
                        device: DeviceID(device), community: community, roles: ["manager"], on: connection, logger: logger)
                    continue
                }
                var order: UUID?
                if let manager {
                    order = try await fileWorkOrder(
                        community: CommunityID(community), manager: UserID(manager), point: point, detail: detail, raised: raised,
                        tenant: tenant, on: connection)
                }
                try await connection.run(
                    "UPDATE device_alarms SET escalated_at = now(), work_order_id = \(order) WHERE id = \(alarm)", logger: logger)
                try await FireHandler.notify(
                    alarm: alarm, type: "fire.escalated", detail: "火警未确认已超时: \(detail.isEmpty ? point : detail)",
                    device: DeviceID(device), community: community, roles: ["manager"], on: connection, logger: logger)
                logger.warning("fire alarm escalated", metadata: ["alarm.id": "\(alarm)", "work_order.id": "\(order.map { "\($0)" } ?? "-")"])
            }
            return due.count
        }
    }

    private func fileWorkOrder(
        community: CommunityID, manager: UserID, point: String, detail: String, raised: Date, tenant: TenantRef,
        on connection: PostgresConnection
    ) async throws -> UUID {
        let store = WorkOrderStore()
        let known = try await connection.run(
            "SELECT 1 FROM repair_categories WHERE community_id = \(community.uuid) AND code = \(Self.category)", logger: logger)
        var exists = false
        for try await _ in known { exists = true }
        if !exists {
            try await store.configure(
                .init(community: community, code: Self.category, name: "消防", mode: .manual, normalMinutes: 30, emergencyMinutes: 10),
                on: connection, logger: logger)
        }
        let principal = Principal(
            tenantID: tenant.id, subjectID: manager, displayName: "告警升级", role: .manager, communityIDs: [community], buildingIDs: [])
        let location = String((detail.isEmpty ? point : detail).prefix(100))
        let order = try await store.file(
            .init(
                community: community, category: Self.category, emergency: true, channel: "phone", building: nil,
                location: location.isEmpty ? "消防报警点" : location,
                description: "火警自 \(ISO8601DateFormatter().string(from: raised)) 起未确认，自动升级。报警点 \(point)",
                photoRefs: [], preferredAt: nil, onBehalfOf: nil),
            by: principal, on: connection, logger: logger)
        return order.id.uuid
    }
}

/// Keeps `telemetry`'s monthly partitions: the next three months made ahead, months older than
/// `retentionMonths` dropped whole (no row-by-row delete).
public struct TelemetryPartitionJob: Service, Sendable {
    let database: Database
    let retentionMonths: Int
    let logger: Logger

    public init(database: Database, retentionMonths: Int = 13, logger: Logger) {
        self.database = database
        self.retentionMonths = retentionMonths
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicJob.run(every: .seconds(6 * 3_600), first: .atStart, name: "telemetry partitions", logger: logger) {
            try await database.inEachActiveTenant("telemetry partitions", logger: logger) { connection in
                try await connection.run("SELECT telemetry_partitions(now()::date, 3)", logger: logger)
                let old = try await connection.run(
                    """
                    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
                    JOIN pg_namespace n ON n.oid = p.relnamespace
                    WHERE p.relname = 'telemetry' AND n.nspname = current_schema() AND c.relname ~ '^telemetry_[0-9]{6}$'
                      AND to_date(substr(c.relname, 11), 'YYYYMM') < date_trunc('month', now()) - make_interval(months => \(Int32(clamping: retentionMonths)))
                    """, logger: logger)
                var names: [String] = []
                for try await name in old.decode(String.self) { names.append(name) }
                // Names matched ^telemetry_[0-9]{6}$ above: safe to interpolate.
                for name in names { try await connection.run(PostgresQuery(unsafeSQL: "DROP TABLE \(name)"), logger: logger) }
            }
        }
    }
}
