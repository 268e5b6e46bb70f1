import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import NIOCore
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// The `linli.device.v1.DeviceService` RPCs: the registry, credentials, events and commands.
public struct DeviceService: Sendable {
    let store: DeviceStore
    let handler: Handler
    let database: Database

    public init(database: Database, logger: Logger) {
        self.store = DeviceStore(database: database)
        self.handler = Handler(database: database, logger: logger)
        self.database = database
    }

    /// The longest a WatchCommand stream runs.
    static let maxWatch: Duration = .seconds(600)
    static let kinds: [Linli_Device_V1_DeviceKind: String] = [
        .door: "door", .faceTerminal: "face_terminal", .barrier: "barrier", .meter: "meter", .detector: "detector",
        .broadcast: "broadcast", .elevator: "elevator", .energy: "energy",
    ]
    static let statuses: [Linli_Device_V1_DeviceStatus: String] = [.active: "active", .disabled: "disabled", .revoked: "revoked"]
    static let states: [String: Linli_Device_V1_CommandState] = [
        "queued": .queued, "sent": .sent, "delivered": .delivered, "succeeded": .succeeded, "failed": .failed,
        "timed_out": .timedOut, "expired": .expired,
    ]
}

extension DeviceService: Linli_Device_V1_DeviceService.ServiceProtocol {
    public func registerDevice(request: ServerRequest<Linli_Device_V1_RegisterDeviceRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_RegisterDeviceResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let serial = try Input.text(m.serial, field: "serial", max: 64)
        let name = try Input.text(m.name, field: "name", max: 100)
        guard let kind = Self.kinds[m.kind] else { throw LinliError.invalid("kind", "is required") }
        // A retry with the same request_id answers with the same device, without a secret: the
        // stored answer never holds it (RotateDeviceSecret issues a new one).
        let fresh = Mutex<String?>(nil)
        let replayed = try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let (device, secret) = try await store.register(
                community: community, serial: serial, kind: kind, name: name, by: call.principal.subjectID,
                on: call.connection, logger: call.logger)
            fresh.withLock { $0 = secret.hexString }
            var response = Linli_Device_V1_RegisterDeviceResponse()
            response.device = .init(device)
            response.tenant = call.tenant.slug
            return response
        }
        return Self.withSecret(replayed, fresh)
    }

    public func rotateDeviceSecret(request: ServerRequest<Linli_Device_V1_RotateDeviceSecretRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_RotateDeviceSecretResponse>
    {
        let id: DeviceID = try Input.id(request.message.deviceID, field: "device_id")
        let fresh = Mutex<String?>(nil)
        let replayed = try await handler.write(request, context) { [store] call in
            let secret = try await store.rotateSecret(id, for: call.principal, on: call.connection, logger: call.logger)
            fresh.withLock { $0 = secret.hexString }
            return Linli_Device_V1_RotateDeviceSecretResponse()
        }
        return Self.withSecret(replayed, fresh)
    }

    /// The answer with the secret made by this call, when it made one.
    static func withSecret<R: SecretCarrying>(_ response: ServerResponse<R>, _ fresh: borrowing Mutex<String?>) -> ServerResponse<R> {
        guard var message = try? response.message, let secret = fresh.withLock({ $0 }) else { return response }
        message.secret = secret
        return ServerResponse(message: message, metadata: response.metadata)
    }

    public func setDeviceStatus(request: ServerRequest<Linli_Device_V1_SetDeviceStatusRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_SetDeviceStatusResponse>
    {
        let id: DeviceID = try Input.id(request.message.deviceID, field: "device_id")
        guard let status = Self.statuses[request.message.status] else { throw LinliError.invalid("status", "is required") }
        return try await handler.write(request, context) { [store] call in
            let device = try await store.setStatus(id, to: status, for: call.principal, on: call.connection, logger: call.logger)
            return .with { $0.device = .init(device) }
        }
    }

    public func listDevices(request: ServerRequest<Linli_Device_V1_ListDevicesRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_ListDevicesResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let limit = try Input.pageSize(m.page.pageSize)
        let cursor = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            let rows = try await store.list(community: community, after: cursor, limit: limit, on: call.connection, logger: call.logger)
            let page = PageToken.page(rows, limit: limit) { ($0.createdAt, $0.id.uuid) }
            var response = Linli_Device_V1_ListDevicesResponse()
            response.devices = page.rows.map(Linli_Device_V1_Device.init)
            response.nextPageToken = page.next
            return response
        }
    }

    public func listDeviceEvents(request: ServerRequest<Linli_Device_V1_ListDeviceEventsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_ListDeviceEventsResponse>
    {
        let m = request.message
        let id: DeviceID = try Input.id(m.deviceID, field: "device_id")
        let limit = try Input.pageSize(m.page.pageSize)
        // The token holds the last sequence number of the page before.
        let before = try PageToken.decodeSequenced(m.page.pageToken).map(\.2)
        return try await handler.read(request) { [store] call in
            _ = try await store.device(id, for: call.principal, on: call.connection, logger: call.logger)
            let rows = try await store.events(of: id, before: before, limit: limit, on: call.connection, logger: call.logger)
            let rowsOfPage = Array(rows.prefix(limit))
            var response = Linli_Device_V1_ListDeviceEventsResponse()
            if rows.count > limit, let last = rowsOfPage.last {
                response.nextPageToken = PageToken.encode(Date(timeIntervalSince1970: 0), id.uuid, sequence: last.seq)
            }
            response.events = try rowsOfPage.map { row in
                var stored = Linli_Device_V1_StoredEvent()
                stored.deviceID = id.description
                stored.event = try Linli_Device_V1_Event(serializedBytes: Array(buffer: row.body))
                stored.receivedAt = Google_Protobuf_Timestamp(date: row.receivedAt)
                stored.late = row.late
                return stored
            }
            return response
        }
    }

    public func sendCommand(request: ServerRequest<Linli_Device_V1_SendCommandRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_SendCommandResponse>
    {
        let m = request.message
        let id: DeviceID = try Input.id(m.deviceID, field: "device_id")
        guard m.ttlSeconds <= 86_400 else { throw LinliError.invalid("ttl_seconds", "must be at most 86400") }
        let ttl = Duration.seconds(m.ttlSeconds == 0 ? 30 : Int64(clamping: m.ttlSeconds))
        var command = Linli_Device_V1_Command()
        let action: String
        switch m.action {
        case .openDoor(let open):
            command.openDoor = open
            action = "open_door"
        case .reboot(let reboot):
            command.reboot = reboot
            action = "reboot"
        case nil:
            throw LinliError.invalid("action", "is required: open_door or reboot")
        }
        return try await handler.write(request, context) { [store] call in
            let device = try await store.device(id, for: call.principal, on: call.connection, logger: call.logger)
            let row = try await store.queue(
                command, action: action, to: device, ttl: ttl, by: call.principal.subjectID, on: call.connection, logger: call.logger)
            return .with { $0.command = .init(row) }
        }
    }

    public func getCommand(request: ServerRequest<Linli_Device_V1_GetCommandRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_GetCommandResponse>
    {
        let id: DeviceCommandID = try Input.id(request.message.commandID, field: "command_id")
        return try await handler.read(request) { [store] call in
            let row = try await store.command(id, for: call.principal, on: call.connection, logger: call.logger)
            return .with { $0.command = .init(row) }
        }
    }

    public func watchCommand(request: ServerRequest<Linli_Device_V1_GetCommandRequest>, context: ServerContext)
        async throws -> StreamingServerResponse<Linli_Device_V1_DeviceCommand>
    {
        let id: DeviceCommandID = try Input.id(request.message.commandID, field: "command_id")
        let ctx = try handler.context(request.metadata)
        let tenant = try ctx.requireTenant()
        // The first read answers permission and existence before the stream starts.
        let first = try await database.tenantTransaction(tenant) { [store] connection in
            try await store.command(id, for: ctx.principal, on: connection, logger: ctx.logger)
        }
        let deadline = ContinuousClock.now + Self.maxWatch
        return StreamingServerResponse { [store, database] writer in
            try await writer.write(.init(first))
            try await cancelWhenGracefulShutdown {
                var row = first
                while !Self.isFinal(row.state), ContinuousClock.now < deadline {
                    do { try await Task.sleep(for: .milliseconds(200)) } catch { return }
                    let next = try await database.tenantTransaction(tenant) { connection in
                        try await store.command(id, for: ctx.principal, on: connection, logger: ctx.logger)
                    }
                    if next.state != row.state || next.updatedAt != row.updatedAt {
                        row = next
                        try await writer.write(.init(row))
                    }
                }
            }
            return [:]
        }
    }

    static func isFinal(_ state: String) -> Bool { ["succeeded", "failed", "timed_out", "expired"].contains(state) }
}

extension Linli_Device_V1_Device {
    init(_ device: DeviceStore.Device) {
        self.init()
        id = device.id.description
        communityID = device.communityID.description
        serial = device.serial
        kind = DeviceService.kinds.first { $0.value == device.kind }?.key ?? .unspecified
        name = device.name
        status = DeviceService.statuses.first { $0.value == device.status }?.key ?? .unspecified
        online = device.online
        if let seen = device.lastSeenAt { lastSeenAt = Google_Protobuf_Timestamp(date: seen) }
        commitPoint = UInt64(clamping: device.commitPoint)
        firmware = device.firmware
        createdAt = Google_Protobuf_Timestamp(date: device.createdAt)
    }
}

extension Linli_Device_V1_DeviceCommand {
    init(_ row: DeviceStore.CommandRow) {
        self.init()
        id = row.id.description
        deviceID = row.deviceID.description
        state = DeviceService.states[row.state] ?? .unspecified
        if let command = try? Linli_Device_V1_Command(serializedBytes: Array(buffer: row.body)) { self.command = command }
        createdAt = Google_Protobuf_Timestamp(date: row.createdAt)
        expiresAt = Google_Protobuf_Timestamp(date: row.expiresAt)
        updatedAt = Google_Protobuf_Timestamp(date: row.updatedAt)
        detail = row.detail
        createdBy = row.createdBy.description
    }
}

extension Linli_Device_V1_RegisterDeviceRequest: IdempotentRequest {}
extension Linli_Device_V1_RotateDeviceSecretRequest: IdempotentRequest {}
extension Linli_Device_V1_SetDeviceStatusRequest: IdempotentRequest {}
extension Linli_Device_V1_SendCommandRequest: IdempotentRequest {}

/// A response that carries a device secret.
protocol SecretCarrying: SwiftProtobuf.Message { var secret: String { get set } }
extension Linli_Device_V1_RegisterDeviceResponse: SecretCarrying {}
extension Linli_Device_V1_RotateDeviceSecretResponse: SecretCarrying {}
