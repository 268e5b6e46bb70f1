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
        _ = try Input.code(m.code)
        guard let kind = Self.pointKinds[m.kind] else { throw LinliError.invalid("kind", "must be SMOKE, HEAT, MANUAL_CALL_POINT or HYDRANT_BUTTON") }
        let building: BuildingID? = m.buildingID.isEmpty ? nil : try Input.id(m.buildingID, field: "building_id")
        guard (-10...200).contains(m.floor) else { throw LinliError.invalid("floor", "must be -10 to 200") }
        let location = m.location.isEmpty ? "" : try Input.text(m.location, field: "location", max: 100)
        return try await handler.write(request, context) { [store] call in
            let point = AlarmStore.FirePoint(
                id: UUIDv7.make(), device: device.uuid, code: m.code, kind: kind, building: building?.uuid, floor: Int(clamping: m.floor),
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
                community: community, escalate: Int(clamping: m.escalateAfterSeconds), limit: Int(clamping: m.falseAlarmDailyLimit),
                on: call.connection,
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

extension AlarmService {
    static let severities: [Linli_Device_V1_AlarmSeverity: String] = [.critical: "critical", .major: "major", .minor: "minor", .warning: "warning"]

    public func setAlarmRule(request: ServerRequest<Linli_Device_V1_SetAlarmRuleRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_AlarmRule>
    {
        let r = request.message.rule
        let community: CommunityID = try Input.id(r.communityID, field: "rule.community_id")
        let kinds: Set<String> = ["door", "face_terminal", "barrier", "meter", "detector", "broadcast", "elevator", "energy"]
        guard kinds.contains(r.deviceKind) else {
            throw LinliError.invalid("rule.device_kind", "must be one of \(kinds.sorted().joined(separator: ", "))")
        }
        let lowerDigits = { (text: String) in
            text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "." }
        }
        guard (1...32).contains(r.metric.count), lowerDigits(r.metric) else {
            throw LinliError.invalid("rule.metric", "1 to 32 lower-case letters, digits, '.' or '_'")
        }
        guard (1...32).contains(r.name.count), lowerDigits(r.name), !r.name.contains(".") else {
            throw LinliError.invalid("rule.name", "1 to 32 lower-case letters, digits or '_'")
        }
        guard r.comparison != .unspecified else { throw LinliError.invalid("rule.comparison", "must be ABOVE or BELOW") }
        let above = r.comparison == .above
        guard above ? r.recoveryThresholdMilli <= r.thresholdMilli : r.recoveryThresholdMilli >= r.thresholdMilli else {
            throw LinliError.invalid("rule.recovery_threshold_milli", above ? "must not be above the threshold" : "must not be below the threshold")
        }
        guard (0...86_400).contains(r.durationSeconds) else { throw LinliError.invalid("rule.duration_seconds", "must be 0 to 86400") }
        guard (0...1_000).contains(r.repeatCount) else { throw LinliError.invalid("rule.repeat_count", "must be 0 to 1000") }
        guard r.durationSeconds == 0 || r.repeatCount == 0 else {
            throw LinliError.invalid("rule.repeat_count", "a rule is either for a duration or repeating, not both")
        }
        guard let severity = Self.severities[r.severity] else { throw LinliError.invalid("rule.severity", "is required") }
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let rule = try await store.setRule(
                .init(
                    id: UUIDv7.make(), community: community, deviceKind: r.deviceKind, metric: r.metric, above: above, threshold: r.thresholdMilli,
                    durationSeconds: Int(clamping: r.durationSeconds), repeatCount: Int(clamping: r.repeatCount),
                    clearThreshold: r.recoveryThresholdMilli,
                    severity: severity, name: r.name), on: call.connection, logger: call.logger)
            return .init(rule)
        }
    }

    public func listAlarmRules(request: ServerRequest<Linli_Device_V1_ListAlarmRulesRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_ListAlarmRulesResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let rules = try await store.rules(community: community, on: call.connection, logger: call.logger)
            return .with { $0.rules = rules.map(Linli_Device_V1_AlarmRule.init) }
        }
    }

    public func getTelemetry(request: ServerRequest<Linli_Device_V1_GetTelemetryRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_GetTelemetryResponse>
    {
        let m = request.message
        let device: DeviceID = try Input.id(m.deviceID, field: "device_id")
        guard (1...32).contains(m.metric.count) else { throw LinliError.invalid("metric", "is required") }
        guard m.hasFrom, m.hasTo else { throw LinliError.invalid("from", "from and to are required") }
        let from = m.from.date
        let to = m.to.date
        guard to > from, to.timeIntervalSince(from) <= 92 * 86_400 else { throw LinliError.invalid("to", "after from, at most 92 days later") }
        let bucket = m.bucketSeconds == 0 ? 300 : Int(clamping: m.bucketSeconds)
        guard (60...86_400).contains(bucket) else { throw LinliError.invalid("bucket_seconds", "must be 60 to 86400") }
        guard to.timeIntervalSince(from) / Double(bucket) <= 10_000 else { throw LinliError.invalid("bucket_seconds", "at most 10,000 buckets") }
        return try await handler.read(request) { [store] call in
            let (buckets, uptime) = try await store.telemetry(
                device: device, metric: m.metric, from: from, to: to, bucket: bucket, for: call.principal, on: call.connection,
                logger: call.logger)
            return .with {
                $0.points = buckets.map { b in
                    .with {
                        $0.at = Google_Protobuf_Timestamp(date: b.at)
                        $0.avgMilli = b.avg
                        $0.minMilli = b.min
                        $0.maxMilli = b.max
                        $0.samples = Int32(clamping: b.samples)
                    }
                }
                $0.uptimeBasisPoints = Int32(clamping: uptime)
            }
        }
    }
}

extension Linli_Device_V1_SetAlarmRuleRequest: IdempotentRequest {}

extension Linli_Device_V1_AlarmRule {
    init(_ r: AlarmStore.Rule) {
        self.init()
        id = r.id.uuidString.lowercased()
        communityID = r.community.description
        deviceKind = r.deviceKind
        metric = r.metric
        comparison = r.above ? .above : .below
        thresholdMilli = r.threshold
        durationSeconds = Int32(clamping: r.durationSeconds)
        repeatCount = Int32(clamping: r.repeatCount)
        recoveryThresholdMilli = r.clearThreshold
        severity = AlarmService.severities.first { $0.value == r.severity }?.key ?? .unspecified
        name = r.name
    }
}
