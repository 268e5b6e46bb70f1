import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import SwiftProtobuf

/// The `linli.device.v1.AlarmService` RPCs (alarms.proto).
public struct AlarmService: Sendable {
    let store = AlarmStore()
    let handler: Handler

    public init(database: Database, logger: Logger) {
        handler = Handler(database: database, logger: logger)
    }

    static let pointKinds: [Linli_Device_V1_FirePointKind: String] = [
        .smoke: "smoke", .heat: "heat", .manualCallPoint: "manual_call_point", .hydrantButton: "hydrant_button",
    ]
}

extension AlarmService: Linli_Device_V1_AlarmService.ServiceProtocol {
    public func listAlarms(request: ServerRequest<Linli_Device_V1_ListAlarmsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_ListAlarmsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        guard m.typePrefix.count <= 32, m.typePrefix.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || $0 == ".") })
        else { throw LinliError.invalid("type_prefix", "up to 32 letters and dots") }
        let limit = try Input.pageSize(m.page.pageSize)
        let before = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let rows = try await store.alarms(
                community: community, activeOnly: m.activeOnly, typePrefix: m.typePrefix, before: before, limit: limit + 1,
                on: call.connection, logger: call.logger)
            let page = PageToken.page(rows, limit: limit) { ($0.raisedAt, $0.id) }
            return .with {
                $0.alarms = page.rows.map(Linli_Device_V1_Alarm.init)
                $0.nextPageToken = page.next
            }
        }
    }

    public func acknowledgeAlarm(request: ServerRequest<Linli_Device_V1_AcknowledgeAlarmRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_Alarm>
    {
        let id = try Input.id(request.message.alarmID, field: "alarm_id", as: IDTag.Alarm.self).uuid
        return try await handler.write(request, context) { [store] call in
            let alarm = try await store.alarm(id, for: call.principal, lock: true, on: call.connection, logger: call.logger)
            try await store.acknowledge(alarm, by: call.principal.subjectID, on: call.connection, logger: call.logger)
            return .init(try await store.alarm(id, for: call.principal, on: call.connection, logger: call.logger))
        }
    }

    public func assignAlarm(request: ServerRequest<Linli_Device_V1_AssignAlarmRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_Alarm>
    {
        let id = try Input.id(request.message.alarmID, field: "alarm_id", as: IDTag.Alarm.self).uuid
        let user: UserID = try Input.id(request.message.userID, field: "user_id")
        return try await handler.write(request, context) { [store] call in
            let alarm = try await store.alarm(id, for: call.principal, lock: true, on: call.connection, logger: call.logger)
            try await store.assign(alarm, to: user, on: call.connection, logger: call.logger)
            return .init(try await store.alarm(id, for: call.principal, on: call.connection, logger: call.logger))
        }
    }

    public func clearAlarm(request: ServerRequest<Linli_Device_V1_ClearAlarmRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_Alarm>
    {
        let m = request.message
        let id = try Input.id(m.alarmID, field: "alarm_id", as: IDTag.Alarm.self).uuid
        let reason = m.reason.isEmpty ? "" : try Input.text(m.reason, field: "reason", max: 500)
        if m.falseAlarm, reason.isEmpty { throw LinliError.invalid("reason", "a false alarm needs its cause") }
        return try await handler.write(request, context) { [store] call in
            let alarm = try await store.alarm(id, for: call.principal, lock: true, on: call.connection, logger: call.logger)
            try await store.clear(
                alarm, falseAlarm: m.falseAlarm, reason: reason, by: call.principal.subjectID, on: call.connection, logger: call.logger)
            return .init(try await store.alarm(id, for: call.principal, on: call.connection, logger: call.logger))
        }
    }

    public func createFirePoint(request: ServerRequest<Linli_Device_V1_CreateFirePointRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_FirePoint>
    {
        let m = request.message
        let device: DeviceID = try Input.id(m.deviceID, field: "device_id")
        guard (1...32).contains(m.code.count),
            m.code.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") })
        else { throw LinliError.invalid("code", "1 to 32 letters, digits, '-' or '_'") }
        guard let kind = Self.pointKinds[m.kind] else { throw LinliError.invalid("kind", "must be SMOKE, HEAT, MANUAL_CALL_POINT or HYDRANT_BUTTON") }
        let building: BuildingID? = m.buildingID.isEmpty ? nil : try Input.id(m.buildingID, field: "building_id")
        guard (-10...200).contains(m.floor) else { throw LinliError.invalid("floor", "must be -10 to 200") }
        let location = m.location.isEmpty ? "" : try Input.text(m.location, field: "location", max: 100)
        return try await handler.write(request, context) { [store] call in
            let point = AlarmStore.FirePoint(
                id: UUIDv7.make(), device: device.uuid, code: m.code, kind: kind, building: building?.uuid, floor: Int(m.floor),
                location: location, disabled: false, remediationFlaggedAt: nil)
            return .init(try await store.createPoint(point, for: call.principal, on: call.connection, logger: call.logger))
        }
    }

    public func listFirePoints(request: ServerRequest<Linli_Device_V1_ListFirePointsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_ListFirePointsResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let points = try await store.points(community: community, on: call.connection, logger: call.logger)
            return .with { $0.points = points.map(Linli_Device_V1_FirePoint.init) }
        }
    }

    public func getFireSettings(request: ServerRequest<Linli_Device_V1_GetFireSettingsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_FireSettings>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let (escalate, limit) = try await store.settings(community: community, on: call.connection, logger: call.logger)
            return .with {
                $0.communityID = community.description
                $0.escalateAfterSeconds = Int32(clamping: escalate)
                $0.falseAlarmDailyLimit = Int32(clamping: limit)
            }
        }
    }

    public func setFireSettings(request: ServerRequest<Linli_Device_V1_SetFireSettingsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_FireSettings>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        guard (30...3_600).contains(m.escalateAfterSeconds) else { throw LinliError.invalid("escalate_after_seconds", "must be 30 to 3600") }
        guard (1...100).contains(m.falseAlarmDailyLimit) else { throw LinliError.invalid("false_alarm_daily_limit", "must be 1 to 100") }
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            try await store.setSettings(
                community: community, escalate: Int(m.escalateAfterSeconds), limit: Int(m.falseAlarmDailyLimit), on: call.connection,
                logger: call.logger)
            return .with {
                $0.communityID = community.description
                $0.escalateAfterSeconds = m.escalateAfterSeconds
                $0.falseAlarmDailyLimit = m.falseAlarmDailyLimit
            }
        }
    }

    public func getFireReport(request: ServerRequest<Linli_Device_V1_GetFireReportRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_FireReport>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let from = try Input.localDate(m.from, field: "from")
        let to = try Input.localDate(m.to, field: "to")
        guard from <= to else { throw LinliError.invalid("to", "must not be before from") }
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let report = try await store.report(community: community, from: from, to: to, on: call.connection, logger: call.logger)
            return .with {
                $0.fireAlarms = Int32(clamping: report.fireAlarms)
                $0.falseAlarms = Int32(clamping: report.falseAlarms)
                $0.faults = Int32(clamping: report.faults)
                $0.escalated = Int32(clamping: report.escalated)
                $0.medianAckSeconds = Int32(clamping: report.medianAckSeconds)
                $0.pointsFlagged = Int32(clamping: report.pointsFlagged)
                $0.alarms = report.alarms.map(Linli_Device_V1_Alarm.init)
            }
        }
    }
}

extension Linli_Device_V1_AcknowledgeAlarmRequest: IdempotentRequest {}
extension Linli_Device_V1_AssignAlarmRequest: IdempotentRequest {}
extension Linli_Device_V1_ClearAlarmRequest: IdempotentRequest {}
extension Linli_Device_V1_CreateFirePointRequest: IdempotentRequest {}
extension Linli_Device_V1_SetFireSettingsRequest: IdempotentRequest {}

extension Linli_Device_V1_Alarm {
    init(_ a: AlarmStore.Alarm) {
        self.init()
        id = a.id.uuidString.lowercased()
        communityID = a.community.description
        deviceID = a.device.uuidString.lowercased()
        type = a.type
        source = a.source
        severity = ["critical": .critical, "major": .major, "minor": .minor, "warning": .warning][a.severity] ?? .unspecified
        status = ["active": .active, "acknowledged": .acknowledged, "cleared": .cleared][a.status] ?? .unspecified
        detail = a.detail
        occurrences = Int32(clamping: a.occurrences)
        raisedAt = Google_Protobuf_Timestamp(date: a.raisedAt)
        lastSeenAt = Google_Protobuf_Timestamp(date: a.lastSeenAt)
        if let at = a.acknowledgedAt { acknowledgedAt = Google_Protobuf_Timestamp(date: at) }
        acknowledgedBy = a.acknowledgedBy?.uuidString.lowercased() ?? ""
        assigneeID = a.assignee?.uuidString.lowercased() ?? ""
        if let at = a.clearedAt { clearedAt = Google_Protobuf_Timestamp(date: at) }
        clearedBy = a.clearedBy?.uuidString.lowercased() ?? ""
        falseAlarm = a.falseAlarm
        clearedReason = a.clearReason
        if let at = a.escalatedAt { escalatedAt = Google_Protobuf_Timestamp(date: at) }
        workOrderID = a.workOrder?.uuidString.lowercased() ?? ""
        location = a.type.hasPrefix("fire") ? a.detail : ""
    }
}

extension Linli_Device_V1_FirePoint {
    init(_ p: AlarmStore.FirePoint) {
        self.init()
        id = p.id.uuidString.lowercased()
        deviceID = p.device.uuidString.lowercased()
        code = p.code
        kind = AlarmService.pointKinds.first { $0.value == p.kind }?.key ?? .unspecified
        buildingID = p.building?.uuidString.lowercased() ?? ""
        floor = Int32(clamping: p.floor)
        location = p.location
        disabled = p.disabled
        if let at = p.remediationFlaggedAt { remediationFlaggedAt = Google_Protobuf_Timestamp(date: at) }
    }
}
