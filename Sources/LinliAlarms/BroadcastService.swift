import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliDevices
import LinliTenancy
import Logging
import SwiftProtobuf

/// The `linli.device.v1.BroadcastService` RPCs (broadcast.proto).
public struct BroadcastService: Sendable {
    let store: BroadcastStore
    let handler: Handler

    public init(database: Database, logger: Logger) {
        store = BroadcastStore(database: database)
        handler = Handler(database: database, logger: logger)
    }

    static func status(_ t: BroadcastStore.Task, _ deliveries: [(UUID, String, Date?)]) -> Linli_Device_V1_BroadcastTaskStatus {
        .with {
            $0.id = t.id.uuidString.lowercased()
            $0.communityID = t.community.description
            $0.priority = UInt32(clamping: t.priority)
            $0.source = BroadcastStore.sources[t.source] ?? .unspecified
            $0.content = t.content
            $0.repeat = BroadcastStore.repeats[t.repeatMode] ?? .unspecified
            if let at = t.startsAt { $0.startsAt = Google_Protobuf_Timestamp(date: at) }
            $0.minuteOfDay = UInt32(clamping: t.minuteOfDay)
            $0.weekdays = UInt32(clamping: t.weekdays)
            $0.durationSeconds = UInt32(clamping: t.durationSeconds)
            $0.cancelled = t.cancelled
            $0.version = UInt32(clamping: t.version)
            $0.deliveries = deliveries.map { d in
                .with {
                    $0.deviceID = d.0.uuidString.lowercased()
                    $0.state = d.1
                    if let at = d.2 { $0.acknowledgedAt = Google_Protobuf_Timestamp(date: at) }
                }
            }
        }
    }
}

extension BroadcastService: Linli_Device_V1_BroadcastService.ServiceProtocol {
    public func createZone(request: ServerRequest<Linli_Device_V1_CreateZoneRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_Zone>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let name = try Input.text(m.name, field: "name", max: 100)
        let devices: [DeviceID] = try Input.ids(m.deviceIds, field: "device_ids")
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let zone = try await store.createZone(
                community: community, name: name, devices: devices, for: call.principal, on: call.connection, logger: call.logger)
            return .with {
                $0.id = zone.uuidString.lowercased()
                $0.communityID = community.description
                $0.name = name
                $0.deviceIds = devices.map(\.description)
            }
        }
    }

    public func listZones(request: ServerRequest<Linli_Device_V1_ListZonesRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_ListZonesResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let zones = try await store.zones(community: community, on: call.connection, logger: call.logger)
            return .with {
                $0.zones = zones.map { z in
                    .with {
                        $0.id = z.0.uuidString.lowercased()
                        $0.communityID = community.description
                        $0.name = z.1
                        $0.deviceIds = z.2.map { $0.uuidString.lowercased() }
                    }
                }
            }
        }
    }

    public func scheduleBroadcast(request: ServerRequest<Linli_Device_V1_ScheduleBroadcastRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_BroadcastTaskStatus>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let zones = try Input.ids(m.zoneIds, field: "zone_ids", as: IDTag.Alarm.self).map(\.uuid)
        guard (2...8).contains(m.priority) else { throw LinliError.invalid("priority", "must be 2 to 8 (1 is PlayEmergency)") }
        guard let source = BroadcastStore.sources.first(where: { $0.value == m.source })?.key else {
            throw LinliError.invalid("source", "must be FILE, TTS or LIVE")
        }
        let content = try Input.text(m.content, field: "content", max: 500)
        guard let repeatMode = BroadcastStore.repeats.first(where: { $0.value == m.repeat })?.key else {
            throw LinliError.invalid("repeat", "must be ONCE, DAILY or WEEKLY")
        }
        let startsAt = m.hasStartsAt ? m.startsAt.date : nil
        if repeatMode == "once" {
            guard let startsAt, startsAt > Date().addingTimeInterval(-60) else {
                throw LinliError.invalid("starts_at", "a once task needs a start, not in the past")
            }
        }
        guard m.minuteOfDay < 1_440 else { throw LinliError.invalid("minute_of_day", "must be 0 to 1439") }
        if repeatMode == "weekly" {
            guard (1...127).contains(m.weekdays) else { throw LinliError.invalid("weekdays", "at least one day, bits Monday = 1") }
        }
        guard (1...7_200).contains(m.durationSeconds) else { throw LinliError.invalid("duration_seconds", "must be 1 to 7200") }
        let validUntil = m.hasValidUntil ? m.validUntil.date : nil
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let task = BroadcastStore.Task(
                id: UUIDv7.make(), community: community, priority: Int(clamping: m.priority), source: source, content: content,
                repeatMode: repeatMode,
                startsAt: startsAt, minuteOfDay: Int(clamping: m.minuteOfDay), weekdays: Int(clamping: m.weekdays),
                durationSeconds: Int(clamping: m.durationSeconds),
                validUntil: validUntil, version: 1, cancelled: false, emergency: false)
            _ = try await store.schedule(task, zones: zones, by: call.principal, on: call.connection, logger: call.logger)
            return Self.status(task, try await store.deliveries(task.id, on: call.connection, logger: call.logger))
        }
    }

    public func playEmergency(request: ServerRequest<Linli_Device_V1_PlayEmergencyRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_BroadcastTaskStatus>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let zones = try Input.ids(m.zoneIds, field: "zone_ids", as: IDTag.Alarm.self).map(\.uuid)
        let content = try Input.text(m.content, field: "content", max: 500)
        let duration = m.durationSeconds == 0 ? 120 : Int(clamping: m.durationSeconds)
        guard (1...7_200).contains(duration) else { throw LinliError.invalid("duration_seconds", "must be 1 to 7200") }
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let task = BroadcastStore.Task(
                id: UUIDv7.make(), community: community, priority: 1, source: "tts", content: content, repeatMode: "once", startsAt: Date(),
                minuteOfDay: 0, weekdays: 0, durationSeconds: duration, validUntil: nil, version: 1, cancelled: false, emergency: true)
            _ = try await store.schedule(task, zones: zones, by: call.principal, on: call.connection, logger: call.logger)
            call.logger.notice("emergency broadcast", metadata: ["task.id": "\(task.id)", "by": "\(call.principal.subjectID)"])
            return Self.status(task, try await store.deliveries(task.id, on: call.connection, logger: call.logger))
        }
    }

    public func cancelBroadcastTask(request: ServerRequest<Linli_Device_V1_CancelBroadcastTaskRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_BroadcastTaskStatus>
    {
        let id = try Input.id(request.message.taskID, field: "task_id", as: IDTag.Alarm.self).uuid
        return try await handler.write(request, context) { [store] call in
            let task = try await store.task(id, for: call.principal, lock: true, on: call.connection, logger: call.logger)
            let cancelled = try await store.cancel(task, by: call.principal, on: call.connection, logger: call.logger)
            return Self.status(cancelled, try await store.deliveries(id, on: call.connection, logger: call.logger))
        }
    }

    public func getBroadcastTask(request: ServerRequest<Linli_Device_V1_GetBroadcastTaskRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Device_V1_BroadcastTaskStatus>
    {
        let id = try Input.id(request.message.taskID, field: "task_id", as: IDTag.Alarm.self).uuid
        return try await handler.read(request) { [store] call in
            let task = try await store.task(id, for: call.principal, on: call.connection, logger: call.logger)
            return Self.status(task, try await store.deliveries(id, on: call.connection, logger: call.logger))
        }
    }
}

extension Linli_Device_V1_CreateZoneRequest: IdempotentRequest {}
extension Linli_Device_V1_ScheduleBroadcastRequest: IdempotentRequest {}
extension Linli_Device_V1_PlayEmergencyRequest: IdempotentRequest {}
extension Linli_Device_V1_CancelBroadcastTaskRequest: IdempotentRequest {}
