import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

/// The `linli.property.v1.BaseDataService` RPCs.
public struct BaseDataService: Sendable {
    let rooms = RoomStore()
    let residents = ResidentStore()
    let importer = BaseDataImport()
    let handler: Handler

    public init(database: Database, logger: Logger) {
        handler = Handler(database: database, logger: logger)
    }
}

extension BaseDataService: Linli_Property_V1_BaseDataService.ServiceProtocol {
    public func createBuilding(request: ServerRequest<Linli_Property_V1_CreateBuildingRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_CreateBuildingResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let name = try Input.text(m.name, field: "name", max: 40)
        return try await handler.write(request, context) { [rooms] call in
            var response = Linli_Property_V1_CreateBuildingResponse()
            response.buildingID = try await rooms.createBuilding(
                community: community, name: name, by: call.principal, on: call.connection,
                logger: call.logger
            ).description
            return response
        }
    }

    public func createRoom(request: ServerRequest<Linli_Property_V1_CreateRoomRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_CreateRoomResponse>
    {
        let m = request.message
        guard m.areaCentiM2 > 0 else { throw LinliError.invalid("area_centi_m2", "must be greater than 0 (89.50 m² is 8950)") }
        guard m.areaCentiM2 <= 10_000_00 else { throw LinliError.invalid("area_centi_m2", "must be at most 1,000,000 (10,000 m²)") }
        guard (-10...200).contains(m.floor) else { throw LinliError.invalid("floor", "must be from -10 to 200 (0: unknown)") }
        let room = RoomStore.NewRoom(
            building: try Input.id(m.buildingID, field: "building_id"),
            unit: try Input.text(m.unit, field: "unit", min: 0, max: 20),
            number: try Input.text(m.number, field: "number", max: 20),
            floor: m.floor == 0 ? nil : Int(m.floor), areaCentiM2: m.areaCentiM2,
            kind: try ProtoEnum.decode(m.kind, RoomStore.Kind.self, field: "kind"))
        return try await handler.write(request, context) { [rooms] call in
            var response = Linli_Property_V1_CreateRoomResponse()
            response.room = .init(try await rooms.create(room, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func setRoomState(request: ServerRequest<Linli_Property_V1_SetRoomStateRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_SetRoomStateResponse>
    {
        let m = request.message
        let id: RoomID = try Input.id(m.roomID, field: "room_id")
        return try await handler.write(request, context) { [rooms] call in
            var response = Linli_Property_V1_SetRoomStateResponse()
            response.room = .init(try await rooms.setRenovating(id, m.renovating, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func listRooms(request: ServerRequest<Linli_Property_V1_ListRoomsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListRoomsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let building: BuildingID? = m.buildingID.isEmpty ? nil : try Input.id(m.buildingID, field: "building_id")
        let limit = try Input.pageSize(m.page.pageSize, max: 500)
        let after = try PageToken.decode(m.page.pageToken)?.1
        return try await handler.read(request) { [rooms] call in
            let rows = try await rooms.list(
                community: community, building: building, after: after, limit: limit + 1, for: call.principal,
                on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ListRoomsResponse()
            let page = PageToken.page(rows, limit: limit) { (Date(timeIntervalSince1970: 0), $0.id.uuid) }
            response.rooms = page.rows.map(Linli_Property_V1_Room.init)
            response.nextPageToken = page.next
            return response
        }
    }

    public func registerResident(request: ServerRequest<Linli_Property_V1_RegisterResidentRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_RegisterResidentResponse>
    {
        let m = request.message
        let new = ResidentStore.NewResident(
            community: try Input.id(m.communityID, field: "community_id"),
            name: try Input.text(m.name, field: "name", max: 50),
            phone: try Input.mobile(m.phone, field: "phone"),
            idNumber: try Input.idNumber(m.idNumber, field: "id_number"),
            user: m.userID.isEmpty ? nil : try Input.id(m.userID, field: "user_id"),
            room: try Input.id(m.roomID, field: "room_id"),
            relation: try ProtoEnum.decode(m.relation, ResidentStore.Relation.self, field: "relation"),
            moveIn: try Input.localDate(m.moveIn, field: "move_in"))
        return try await handler.write(request, context) { [residents] call in
            var response = Linli_Property_V1_RegisterResidentResponse()
            response.resident = .init(try await residents.register(new, by: call.principal, on: call.connection, logger: call.logger).masked)
            return response
        }
    }

    public func moveIn(request: ServerRequest<Linli_Property_V1_MoveInRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_MoveInResponse>
    {
        let m = request.message
        let resident: ResidentID = try Input.id(m.residentID, field: "resident_id")
        let room: RoomID = try Input.id(m.roomID, field: "room_id")
        let relation = try ProtoEnum.decode(m.relation, ResidentStore.Relation.self, field: "relation")
        let date = try Input.localDate(m.moveIn, field: "move_in")
        return try await handler.write(request, context) { [residents] call in
            var response = Linli_Property_V1_MoveInResponse()
            response.resident = .init(
                try await residents.moveIn(
                    resident, room: room, relation: relation, on: date, by: call.principal,
                    on: call.connection, logger: call.logger
                ).masked)
            return response
        }
    }

    public func moveOut(request: ServerRequest<Linli_Property_V1_MoveOutRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_MoveOutResponse>
    {
        let m = request.message
        let residency = try Input.id(m.residencyID, field: "residency_id", as: IDTag.Residency.self).uuid
        let date = try Input.localDate(m.moveOut, field: "move_out")
        return try await handler.write(request, context) { [residents] call in
            var response = Linli_Property_V1_MoveOutResponse()
            response.resident = .init(
                try await residents.moveOut(
                    residency: residency, on: date, by: call.principal, on: call.connection,
                    logger: call.logger
                ).masked)
            return response
        }
    }

    public func verifyResident(request: ServerRequest<Linli_Property_V1_VerifyResidentRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_VerifyResidentResponse>
    {
        let m = request.message
        let resident: ResidentID = try Input.id(m.residentID, field: "resident_id")
        return try await handler.write(request, context) { [residents] call in
            var response = Linli_Property_V1_VerifyResidentResponse()
            response.resident = .init(try await residents.verify(resident, by: call.principal, on: call.connection, logger: call.logger).masked)
            return response
        }
    }

    public func getResident(request: ServerRequest<Linli_Property_V1_GetResidentRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_GetResidentResponse>
    {
        let m = request.message
        let id: ResidentID = try Input.id(m.residentID, field: "resident_id")
        let reason = m.reveal ? try Input.text(m.reason, field: "reason", min: 2, max: 200) : nil
        return try await handler.read(request) { [residents] call in
            if m.reveal, !Permission.personalReveal.isGranted(to: call.principal.role) {
                throw LinliError(.permissionDenied, "reveal: needs the \(Permission.personalReveal.rawValue) permission", field: "reveal")
            }
            var response = Linli_Property_V1_GetResidentResponse()
            response.resident = .init(try await residents.get(id, revealFor: reason, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func search(request: ServerRequest<Linli_Property_V1_SearchRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_SearchResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let query = try Input.text(m.query, field: "query", max: 50)
        return try await handler.read(request) { [residents] call in
            let found = try await residents.search(community: community, query: query, for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_SearchResponse()
            response.rooms = found.rooms.map(Linli_Property_V1_Room.init)
            response.residents = found.residents.map(Linli_Property_V1_Resident.init)
            return response
        }
    }

    public func createParkingSpace(request: ServerRequest<Linli_Property_V1_CreateParkingSpaceRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_CreateParkingSpaceResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let code = try Input.text(m.code, field: "code", max: 20).uppercased()
        let kind = try ProtoEnum.decode(m.kind, ResidentStore.ParkingKind.self, field: "kind")
        let room: RoomID? = m.roomID.isEmpty ? nil : try Input.id(m.roomID, field: "room_id")
        return try await handler.write(request, context) { [residents] call in
            var response = Linli_Property_V1_CreateParkingSpaceResponse()
            let space = try await residents.createParkingSpace(
                community: community, code: code, kind: kind, room: room, by: call.principal,
                on: call.connection, logger: call.logger)
            response.space = .with {
                $0.id = space.id.uuidString.lowercased()
                $0.communityID = space.community.description
                $0.code = space.code
                $0.kind = ProtoEnum.encode(space.kind)
                $0.roomID = space.room?.description ?? ""
            }
            return response
        }
    }

    public func registerVehicle(request: ServerRequest<Linli_Property_V1_RegisterVehicleRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_RegisterVehicleResponse>
    {
        let m = request.message
        let resident: ResidentID = try Input.id(m.residentID, field: "resident_id")
        let plate = try Input.plate(m.plate, field: "plate")
        let space = m.parkingSpaceID.isEmpty ? nil : try Input.id(m.parkingSpaceID, field: "parking_space_id", as: IDTag.ParkingSpace.self).uuid
        return try await handler.write(request, context) { [residents] call in
            var response = Linli_Property_V1_RegisterVehicleResponse()
            response.vehicle = .init(
                try await residents.registerVehicle(
                    resident: resident, plate: plate, space: space, by: call.principal,
                    on: call.connection, logger: call.logger))
            return response
        }
    }

    public func listStaff(request: ServerRequest<Linli_Property_V1_ListStaffRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListStaffResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [residents] call in
            let staff = try await residents.staff(community: community, for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ListStaffResponse()
            response.staff = staff.map { member in
                .with {
                    $0.userID = member.user.description
                    $0.displayName = member.displayName
                    $0.role = Linli_Common_V1_Role(rawValue: member.role.rawValue) ?? .unspecified
                    $0.onDuty = member.onDuty
                    $0.repairCategories = member.categories
                    $0.phone = member.phone
                }
            }
            return response
        }
    }

    public func importBaseData(request: StreamingServerRequest<Linli_Property_V1_ImportBaseDataRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ImportBaseDataResponse>
    {
        let whole = try await LineStream.collect(request.messages)
        let community: CommunityID = try Input.id(whole.communityID, field: "community_id")
        let kind = try ProtoEnum.decode(whole.kind, BaseDataImport.Kind.self, field: "kind")
        let lines = whole.lines
        return try await handler.write(whole, metadata: request.metadata, method: context.descriptor.method) { [importer] call in
            let report = try await importer.run(
                kind: kind, community: community, lines: lines, by: call.principal, on: call.connection,
                logger: call.logger)
            call.logger.info(
                "base data import",
                metadata: [
                    "import.kind": "\(kind.rawValue)", "import.rows": "\(report.rows)",
                    "import.errors": "\(report.errorCount)", "import.committed": "\(report.committed)",
                ])
            return Linli_Property_V1_ImportBaseDataResponse.with {
                $0.committed = report.committed
                $0.rows = Int32(clamping: report.rows)
                $0.created = Int32(clamping: report.created)
                $0.errorCount = Int32(clamping: report.errorCount)
                $0.errors = report.errors.map { e in
                    .with {
                        $0.line = Int32(clamping: e.line); $0.column = e.column; $0.message = e.message
                    }
                }
            }
        }
    }

    public func listPersonalDataReads(request: ServerRequest<Linli_Property_V1_ListPersonalDataReadsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListPersonalDataReadsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [residents] call in
            let rows = try await residents.reads(
                community: community, after: after, limit: limit + 1, for: call.principal, on: call.connection,
                logger: call.logger)
            var response = Linli_Property_V1_ListPersonalDataReadsResponse()
            let page = PageToken.page(rows, limit: limit) { ($0.at, ResidentStore.tokenID($0.id)) }
            response.reads = page.rows.map { read in
                .with {
                    $0.readerID = read.reader.description
                    $0.residentID = read.resident.description
                    $0.fields = read.fields
                    $0.reason = read.reason
                    $0.at = Google_Protobuf_Timestamp(date: read.at)
                }
            }
            response.nextPageToken = page.next
            return response
        }
    }
}

extension Linli_Property_V1_CreateBuildingRequest: IdempotentRequest {}
extension Linli_Property_V1_CreateRoomRequest: IdempotentRequest {}
extension Linli_Property_V1_SetRoomStateRequest: IdempotentRequest {}
extension Linli_Property_V1_RegisterResidentRequest: IdempotentRequest {}
extension Linli_Property_V1_MoveInRequest: IdempotentRequest {}
extension Linli_Property_V1_MoveOutRequest: IdempotentRequest {}
extension Linli_Property_V1_VerifyResidentRequest: IdempotentRequest {}
extension Linli_Property_V1_CreateParkingSpaceRequest: IdempotentRequest {}
extension Linli_Property_V1_RegisterVehicleRequest: IdempotentRequest {}
extension Linli_Property_V1_ImportBaseDataRequest: IdempotentRequest, LineStreamMessage {
    public var namesTheImport: Bool { !requestID.isEmpty || !communityID.isEmpty || kind != .unspecified }
}

extension Linli_Property_V1_Room {
    init(_ r: RoomStore.Room) {
        self.init()
        id = r.id.description
        communityID = r.community.description
        buildingID = r.building.description
        buildingName = r.buildingName
        unit = r.unit
        number = r.number
        floor = Int32(clamping: r.floor ?? 0)
        areaCentiM2 = r.areaCentiM2
        kind = ProtoEnum.encode(r.kind)
        state = ProtoEnum.encode(r.state)
        label = r.label
    }
}

extension Linli_Property_V1_Vehicle {
    init(_ v: ResidentStore.Vehicle) {
        self.init()
        id = v.id.uuidString.lowercased()
        residentID = v.resident.description
        plate = v.plate
        parkingSpaceID = v.space?.uuidString.lowercased() ?? ""
        parkingSpaceCode = v.spaceCode ?? ""
    }
}

extension Linli_Property_V1_Resident {
    /// The resident as given: pass `.masked` unless the caller revealed it.
    init(_ r: ResidentStore.Resident) {
        self.init()
        id = r.id.description
        communityID = r.community.description
        name = r.name
        phone = r.phone
        idNumber = r.idNumber
        userID = r.user?.description ?? ""
        verified = r.verified
        residencies = r.residencies.map { h in
            .with {
                $0.id = h.id.uuidString.lowercased()
                $0.room = .init(h.room)
                $0.relation = ProtoEnum.encode(h.relation)
                $0.moveIn = h.moveIn
                $0.moveOut = h.moveOut ?? ""
            }
        }
        vehicles = r.vehicles.map(Linli_Property_V1_Vehicle.init)
    }
}
