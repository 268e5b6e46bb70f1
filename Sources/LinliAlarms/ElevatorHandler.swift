import Foundation
import LinliAPI
import LinliCore
import LinliDevices
import LinliTenancy
import LinliWorkOrders
import Logging
import PostgresNIO

/// Elevator monitors' events, inside the transaction that stores them: every change kept, the
/// car's latest state, and the emergencies. A trapped passenger raises one `elevator.trapped`
/// alarm per car, told to the guards and managers at once, and files an emergency work order
/// in category "elevator" whose 30-minute deadline is the maintainer's arrival clock
/// (acknowledging the alarm records the arrival, clearing it the cause); past 30 minutes
/// without arrival the escalation job tells the managers. A fault code raises `elevator.fault`.
public struct ElevatorHandler: DeviceEventHandler {
    public init() {}

    public func handles(_ event: Linli_Device_V1_Event) -> Bool {
        if case .elevator = event.body { return true }
        return false
    }

    static let states: [Linli_Device_V1_ElevatorState: String] = [
        .running: "running", .stopped: "stopped", .fault: "fault", .maintenance: "maintenance",
    ]

    /// The repair category trapped-passenger work orders are filed in; arrival within 30 minutes.
    public static let category = "elevator"
    public static let arrivalMinutes = 30

    public func handle(_ events: [DeviceStore.IncomingEvent], device: DeviceID, on connection: PostgresConnection, logger: Logger)
        async throws -> [Linli_Device_V1_ServerMessage]
    {
        for incoming in events {
            guard case .elevator(let e) = incoming.event.body else { continue }
            let state = Self.states[e.state] ?? "unknown"
            let floor = Int32(clamping: e.floor)
            try await connection.run(
                """
                WITH ev AS (
                    INSERT INTO elevator_events (device_id, seq, code, state, floor, door_open, fault_code, trapped, device_time)
                    VALUES (\(device.uuid), \(incoming.seq), \(e.elevatorCode), \(state), \(floor), \(e.doorOpen), \(e.faultCode), \(e.trapped),
                            \(incoming.deviceTime))
                    ON CONFLICT (device_id, seq) DO NOTHING
                )
                INSERT INTO elevator_status (device_id, code, community_id, state, floor, door_open, fault_code, trapped, reported_at)
                SELECT id, \(e.elevatorCode), community_id, \(state), \(floor), \(e.doorOpen), \(e.faultCode), \(e.trapped), \(incoming.deviceTime)
                FROM devices WHERE id = \(device.uuid)
                ON CONFLICT (device_id, code) DO UPDATE SET state = EXCLUDED.state, floor = EXCLUDED.floor, door_open = EXCLUDED.door_open,
                    fault_code = EXCLUDED.fault_code, trapped = EXCLUDED.trapped, reported_at = EXCLUDED.reported_at
                WHERE elevator_status.reported_at <= EXCLUDED.reported_at
                """, logger: logger)
            if e.trapped,
                let raised = try await FireHandler.raiseNew(
                    type: "elevator.trapped", severity: "critical", point: e.elevatorCode, detail: "\(e.elevatorCode) \(e.floor)层困人",
                    device: device, on: connection, logger: logger), raised.new
            {
                let order = try await Self.fileWorkOrder(
                    community: CommunityID(raised.community), code: e.elevatorCode, floor: Int(clamping: floor), on: connection, logger: logger)
                try await connection.run("UPDATE device_alarms SET work_order_id = \(order) WHERE id = \(raised.id)", logger: logger)
            }
            if !e.faultCode.isEmpty {
                _ = try await FireHandler.raise(
                    type: "elevator.fault", severity: "major", point: e.elevatorCode, detail: "\(e.elevatorCode) 故障码 \(e.faultCode)",
                    device: device, on: connection, logger: logger)
            }
        }
        return []
    }

    /// An emergency work order for a trapped passenger, filed on behalf of the community's manager.
    static func fileWorkOrder(community: CommunityID, code: String, floor: Int, on connection: PostgresConnection, logger: Logger)
        async throws -> UUID?
    {
        let managers = try await connection.run(
            """
            SELECT u.id FROM users u JOIN user_communities uc ON uc.user_id = u.id
            WHERE uc.community_id = \(community.uuid) AND u.role = 'manager' AND u.status = 'active' ORDER BY u.id LIMIT 1
            """, logger: logger)
        var manager: UUID?
        for try await id in managers.decode(UUID.self) { manager = id }
        guard let manager else { return nil }
        let store = WorkOrderStore()
        let known = try await connection.run(
            "SELECT 1 FROM repair_categories WHERE community_id = \(community.uuid) AND code = \(category)", logger: logger)
        var exists = false
        for try await _ in known { exists = true }
        if !exists {
            try await store.configure(
                .init(community: community, code: category, name: "电梯困人", mode: .manual, normalMinutes: 240, emergencyMinutes: arrivalMinutes),
                on: connection, logger: logger)
        }
        let principal = Principal(
            tenantID: nil, subjectID: UserID(manager), displayName: "电梯监测", role: .manager, communityIDs: [community], buildingIDs: [])
        let order = try await store.file(
            .init(
                community: community, category: category, emergency: true, channel: "phone", building: nil,
                location: "电梯 \(code) \(floor)层", description: "电梯困人：维保人员须 \(arrivalMinutes) 分钟内到达；到达与原因在告警中记录",
                photoRefs: [], preferredAt: nil, onBehalfOf: nil),
            by: principal, on: connection, logger: logger)
        return order.id.uuid
    }
}
