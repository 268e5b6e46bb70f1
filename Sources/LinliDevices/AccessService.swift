import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import NIOCore
import SwiftProtobuf

/// The `linli.device.v1.AccessService` RPCs (access.proto).
public struct AccessService: Sendable {
    let access = AccessStore()
    let devices: DeviceStore
    let whitelists: WhitelistStore
    let handler: Handler

    public init(database: Database, logger: Logger) {
        devices = DeviceStore(database: database)
        whitelists = WhitelistStore(database: database)
        handler = Handler(database: database, logger: logger)
    }

    /// A remote opening that has not reached the door in this time never happens.
    static let openTTL: Duration = .seconds(10)

    static let credentialKinds: [Linli_Device_V1_CredentialKind: String] = [.card: "card", .pin: "pin", .face: "face"]

    /// The holder named by exactly one of the two ids.
    static func holder(resident: String, staff: String) throws(LinliError) -> AccessStore.Holder {
        switch (resident.isEmpty, staff.isEmpty) {
        case (false, true): return .resident(try Input.id(resident, field: "resident_id"))
        case (true, false): return .staff(try Input.id(staff, field: "staff_user_id"))
        default: throw LinliError.invalid("resident_id", "give exactly one of resident_id and staff_user_id")
        }
    }

    /// Checks a credential's value by kind: cards 4–32 letters or digits, PINs 4–8 digits, face
    /// references 1–64 characters.
    static func value(_ raw: String, kind: String) throws(LinliError) -> String {
        let ascii = raw.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }
        switch kind {
        case "card":
            guard (4...32).contains(raw.count), ascii else { throw .invalid("value", "a card number is 4 to 32 letters or digits") }
        case "pin":
            guard (4...8).contains(raw.count), raw.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }) else {
                throw .invalid("value", "a PIN is 4 to 8 digits")
            }
        default:
            return try Input.text(raw, field: "value", max: 64)
        }
        return raw
    }
}

extension AccessService: Linli_Device_V1_AccessService.ServiceProtocol {
    public func createDoor(request: ServerRequest<Linli_Device_V1_CreateDoorRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_CreateDoorResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let building: BuildingID? = m.buildingID.isEmpty ? nil : try Input.id(m.buildingID, field: "building_id")
        _ = try Input.code(m.code)
        let name = try Input.text(m.name, field: "name", max: 100)
        return try await handler.write(request, context) { [access] call in
            try Scope.requireCommunity(call.principal, community)
            let door = try await access.createDoor(
                community: community, building: building, code: m.code, name: name, on: call.connection, logger: call.logger)
            return .with { $0.door = .init(door) }
        }
    }

    public func listDoors(request: ServerRequest<Linli_Device_V1_ListDoorsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_ListDoorsResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [access] call in
            try Scope.requireCommunity(call.principal, community)
            let doors = try await access.doors(community: community, on: call.connection, logger: call.logger)
            return .with { $0.doors = doors.map(Linli_Device_V1_Door.init) }
        }
    }

    public func bindDoorDevice(request: ServerRequest<Linli_Device_V1_BindDoorDeviceRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_BindDoorDeviceResponse>
    {
        let m = request.message
        let doorID: UUID = try Input.id(m.doorID, field: "door_id", as: IDTag.Device.self).uuid
        let deviceID: DeviceID = try Input.id(m.deviceID, field: "device_id")
        return try await handler.write(request, context) { [access, devices] call in
            let door = try await access.door(doorID, on: call.connection, logger: call.logger)
            guard call.principal.canAct(in: door.communityID) else { throw LinliError.notFound("door") }
            let device = try await devices.device(deviceID, for: call.principal, on: call.connection, logger: call.logger)
            try await access.bind(door: door, device: device, bound: m.bound, on: call.connection, logger: call.logger)
            let bound = try await access.door(doorID, on: call.connection, logger: call.logger)
            return .with { $0.door = .init(bound) }
        }
    }

    public func issueCredential(request: ServerRequest<Linli_Device_V1_IssueCredentialRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_IssueCredentialResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let holder = try Self.holder(resident: m.residentID, staff: m.staffUserID)
        guard let kind = Self.credentialKinds[m.kind] else { throw LinliError.invalid("kind", "must be CARD, PIN or FACE") }
        let value = try Self.value(m.value, kind: kind)
        let validUntil = m.hasValidUntil ? m.validUntil.date : nil
        if let validUntil, validUntil <= Date() { throw LinliError.invalid("valid_until", "must be in the future") }
        var fingerprint = m
        fingerprint.value = kind == "pin" ? "" : m.value  // a PIN is not kept, even in the idempotency record
        return try await handler.write(fingerprint, metadata: request.metadata, method: context.descriptor.method) { [access] call in
            try Scope.requireCommunity(call.principal, community)
            let credential = try await access.issue(
                community: community, holder: holder, kind: kind, value: value, validUntil: validUntil, faceConsent: m.faceConsent,
                by: call.principal.subjectID, on: call.connection, logger: call.logger)
            return .with { $0.credential = .init(credential) }
        }
    }

    public func revokeCredential(request: ServerRequest<Linli_Device_V1_RevokeCredentialRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_RevokeCredentialResponse>
    {
        let m = request.message
        let id: UUID = try Input.id(m.credentialID, field: "credential_id", as: IDTag.Device.self).uuid
        let reason = try Input.text(m.reason, field: "reason", min: 0, max: 2000)
        return try await handler.write(request, context) { [access] call in
            let credential = try await access.revoke(id, reason: reason, for: call.principal, on: call.connection, logger: call.logger)
            return .with { $0.credential = .init(credential) }
        }
    }

    public func listCredentials(request: ServerRequest<Linli_Device_V1_ListCredentialsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_ListCredentialsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let holder = m.residentID.isEmpty && m.staffUserID.isEmpty ? nil : try Self.holder(resident: m.residentID, staff: m.staffUserID)
        let limit = try Input.pageSize(m.page.pageSize)
        let cursor = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [access] call in
            try Scope.requireCommunity(call.principal, community)
            let rows = try await access.credentials(
                community: community, holder: holder, after: cursor, limit: limit, on: call.connection, logger: call.logger)
            let page = PageToken.page(rows, limit: limit) { ($0.createdAt, $0.id) }
            return .with {
                $0.credentials = page.rows.map(Linli_Device_V1_AccessCredential.init)
                $0.nextPageToken = page.next
            }
        }
    }

    public func withdrawFaceConsent(request: ServerRequest<Linli_Device_V1_WithdrawFaceConsentRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_WithdrawFaceConsentResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let named: ResidentID? = m.residentID.isEmpty ? nil : try Input.id(m.residentID, field: "resident_id")
        return try await handler.write(request, context) { [access] call in
            try Scope.requireCommunity(call.principal, community)
            let own = try? await access.residentOf(user: call.principal.subjectID, community: community, on: call.connection, logger: call.logger)
            let resident: ResidentID
            if call.principal.role == .resident {
                // Residents withdraw their own consent only.
                guard let own, named == nil || named == own else {
                    throw LinliError(.permissionDenied, "resident_id: residents withdraw their own consent", field: "resident_id")
                }
                resident = own
            } else {
                guard let named else { throw LinliError.invalid("resident_id", "is required") }
                resident = named
            }
            let count = try await access.withdrawFaces(resident: resident, community: community, on: call.connection, logger: call.logger)
            return .with { $0.revoked = Int32(clamping: count) }
        }
    }

    public func issueQRCode(request: ServerRequest<Linli_Device_V1_IssueQRCodeRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_IssueQRCodeResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [access] call in
            try Scope.requireCommunity(call.principal, community)
            var buildings: [BuildingID]?
            if call.principal.role == .resident {
                let resident = try await access.residentOf(
                    user: call.principal.subjectID, community: community, on: call.connection, logger: call.logger)
                let homes = try await access.homeBuildings(of: resident, community: community, on: call.connection, logger: call.logger)
                guard !homes.isEmpty else {
                    throw LinliError(.failedPrecondition, "you do not live in this community today")
                }
                buildings = homes
            }
            let key = try await access.qrKey(community: community, on: call.connection, logger: call.logger)
            let expires = Date().addingTimeInterval(AccessStore.qrLifetime)
            let code = try AccessStore.qrCode(
                community: community, holder: call.principal.subjectID, buildings: buildings, expires: expires, key: key)
            return .with {
                $0.code = code
                $0.expiresAt = Google_Protobuf_Timestamp(date: expires)
            }
        }
    }

    public func openDoor(request: ServerRequest<Linli_Device_V1_OpenDoorRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_OpenDoorResponse>
    {
        let doorID: UUID = try Input.id(request.message.doorID, field: "door_id", as: IDTag.Device.self).uuid
        return try await handler.write(request, context) { [access, devices] call in
            let door = try await access.door(doorID, on: call.connection, logger: call.logger)
            guard call.principal.canAct(in: door.communityID) else { throw LinliError.notFound("door") }
            if call.principal.role == .resident {
                let resident = try await access.residentOf(
                    user: call.principal.subjectID, community: door.communityID, on: call.connection, logger: call.logger)
                let homes = try await access.homeBuildings(of: resident, community: door.communityID, on: call.connection, logger: call.logger)
                guard !homes.isEmpty, door.buildingID.map(homes.contains) ?? true else {
                    throw LinliError(.permissionDenied, "door_id: you may not open this door", field: "door_id")
                }
            }
            guard !door.deviceIDs.isEmpty else {
                throw LinliError(.failedPrecondition, "door_id: no device is bound to this door", field: "door_id")
            }
            var open = Linli_Device_V1_OpenDoor()
            open.doorCode = door.code
            var command = Linli_Device_V1_Command()
            command.openDoor = open
            var response = Linli_Device_V1_OpenDoorResponse()
            for id in door.deviceIDs {
                let device = try await devices.device(id, for: call.principal, on: call.connection, logger: call.logger)
                guard device.status == "active" else { continue }
                let row = try await devices.queue(
                    command, action: "open_door", to: device, ttl: Self.openTTL, by: call.principal.subjectID, on: call.connection,
                    logger: call.logger)
                response.commands.append(.init(row))
            }
            return response
        }
    }

    public func listAccessLog(request: ServerRequest<Linli_Device_V1_ListAccessLogRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_ListAccessLogResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let door: UUID? = m.doorID.isEmpty ? nil : try Input.id(m.doorID, field: "door_id", as: IDTag.Device.self).uuid
        let limit = try Input.pageSize(m.page.pageSize)
        let cursor = try PageToken.decodeSequenced(m.page.pageToken)
        return try await handler.read(request) { call in
            try Scope.requireCommunity(call.principal, community)
            return try await AccessLog.page(
                .community(community, door: door), after: cursor, limit: limit, on: call.connection, logger: call.logger)
        }
    }

    public func listMyAccessLog(request: ServerRequest<Linli_Device_V1_ListMyAccessLogRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_ListAccessLogResponse>
    {
        let m = request.message
        let limit = try Input.pageSize(m.page.pageSize)
        let cursor = try PageToken.decodeSequenced(m.page.pageToken)
        return try await handler.read(request) { call in
            try await AccessLog.page(.user(call.principal.subjectID), after: cursor, limit: limit, on: call.connection, logger: call.logger)
        }
    }

    public func getWhitelistStatus(request: ServerRequest<Linli_Device_V1_GetWhitelistStatusRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_GetWhitelistStatusResponse>
    {
        let id: DeviceID = try Input.id(request.message.deviceID, field: "device_id")
        return try await handler.read(request) { [devices, whitelists] call in
            _ = try await devices.device(id, for: call.principal, on: call.connection, logger: call.logger)
            let (version, acked, entries) = try await whitelists.status(device: id, on: call.connection, logger: call.logger)
            return .with {
                $0.version = UInt64(clamping: version)
                $0.ackedVersion = UInt64(clamping: acked)
                $0.entries = Int32(clamping: entries)
            }
        }
    }

    public func getAccessSettings(request: ServerRequest<Linli_Device_V1_GetAccessSettingsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_AccessSettings>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [access] call in
            try Scope.requireCommunity(call.principal, community)
            return .init(try await access.settings(community: community, on: call.connection, logger: call.logger), community: community)
        }
    }

    public func setAccessSettings(request: ServerRequest<Linli_Device_V1_SetAccessSettingsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Device_V1_AccessSettings>
    {
        let s = request.message.settings
        let community: CommunityID = try Input.id(s.communityID, field: "settings.community_id")
        guard (1...100).contains(s.strangerThreshold) else { throw LinliError.invalid("settings.stranger_threshold", "must be 1 to 100") }
        guard (1...1440).contains(s.strangerWindowMinutes) else {
            throw LinliError.invalid("settings.stranger_window_minutes", "must be 1 to 1440")
        }
        guard (1...365).contains(s.retentionDays) else { throw LinliError.invalid("settings.retention_days", "must be 1 to 365") }
        let settings = AccessStore.Settings(
            strangerThreshold: Int(clamping: s.strangerThreshold), strangerWindowMinutes: Int(clamping: s.strangerWindowMinutes),
            retentionDays: Int(clamping: s.retentionDays))
        return try await handler.write(request, context) { [access] call in
            try Scope.requireCommunity(call.principal, community)
            try await access.setSettings(settings, community: community, on: call.connection, logger: call.logger)
            return .init(settings, community: community)
        }
    }
}

extension Linli_Device_V1_Door {
    init(_ door: AccessStore.Door) {
        self.init()
        id = door.id.uuidString.lowercased()
        communityID = door.communityID.description
        buildingID = door.buildingID?.description ?? ""
        code = door.code
        name = door.name
        deviceIds = door.deviceIDs.map(\.description)
    }
}

extension Linli_Device_V1_AccessCredential {
    init(_ credential: AccessStore.Credential) {
        self.init()
        id = credential.id.uuidString.lowercased()
        communityID = credential.communityID.description
        residentID = credential.residentID?.description ?? ""
        staffUserID = credential.staffUserID?.description ?? ""
        kind = AccessService.credentialKinds.first { $0.value == credential.kind }?.key ?? .unspecified
        value = credential.value
        if let until = credential.validUntil { validUntil = Google_Protobuf_Timestamp(date: until) }
        revoked = credential.revoked
        createdAt = Google_Protobuf_Timestamp(date: credential.createdAt)
    }
}

extension Linli_Device_V1_AccessSettings {
    init(_ settings: AccessStore.Settings, community: CommunityID) {
        self.init()
        communityID = community.description
        strangerThreshold = Int32(clamping: settings.strangerThreshold)
        strangerWindowMinutes = Int32(clamping: settings.strangerWindowMinutes)
        retentionDays = Int32(clamping: settings.retentionDays)
    }
}

extension Linli_Device_V1_CreateDoorRequest: IdempotentRequest {}
extension Linli_Device_V1_BindDoorDeviceRequest: IdempotentRequest {}
extension Linli_Device_V1_IssueCredentialRequest: IdempotentRequest {}
extension Linli_Device_V1_RevokeCredentialRequest: IdempotentRequest {}
extension Linli_Device_V1_WithdrawFaceConsentRequest: IdempotentRequest {}
extension Linli_Device_V1_OpenDoorRequest: IdempotentRequest {}
extension Linli_Device_V1_SetAccessSettingsRequest: IdempotentRequest {}
