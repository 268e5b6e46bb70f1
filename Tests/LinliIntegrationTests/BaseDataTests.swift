import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliServer
import SwiftProtobuf
import Testing

typealias BaseDataClient = Linli_Property_V1_BaseDataService.Client<HTTP2ClientTransport.Posix>

/// Streams `lines` in chunks of `chunk` as one import.
func importCSV(
    _ client: BaseDataClient, _ demo: DemoTenant, _ kind: Linli_Property_V1_ImportKind, _ lines: [String],
    chunk: Int = 2, requestID: String = UUID().uuidString, metadata: Metadata
) async throws -> Linli_Property_V1_ImportBaseDataResponse {
    let request = StreamingClientRequest<Linli_Property_V1_ImportBaseDataRequest>(metadata: metadata) { writer in
        var first = Linli_Property_V1_ImportBaseDataRequest()
        first.requestID = requestID
        first.communityID = demo.community.description
        first.kind = kind
        try await writer.write(first)
        for start in stride(from: 0, to: lines.count, by: chunk) {
            var part = Linli_Property_V1_ImportBaseDataRequest()
            part.lines = Array(lines[start..<min(start + chunk, lines.count)])
            try await writer.write(part)
        }
    }
    return try await client.importBaseData(request: request) { try $0.message }
}

@Suite("Base data: rooms, residents, imports, personal data")
struct BaseDataTests {
    @Test("CSV imports are all or nothing, report every bad line by number, and build rooms and residents that search finds")
    func imports() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let base = BaseDataClient(wrapping: server.client)
        let manager = try await server.login(demo, "manager")

        let buildings = try await importCSV(base, demo, .buildings, ["building", "5栋", "6栋"], metadata: manager)
        #expect(buildings.committed && buildings.created == 2 && buildings.errors.isEmpty)

        // Three bad lines among good ones: nothing is written, each is named.
        let bad = try await importCSV(
            base, demo, .rooms,
            [
                "building,unit,number,floor,area_m2,kind",
                "5栋,1单元,101,1,89.50,residence",
                "5栋,1单元,102,1,89.5x,residence",
                "9栋,1单元,101,1,70,residence",
                "5栋,1单元,101,1,89.50,residence",
                "5栋,1单元,103,1,120.25,\"shop\"",
            ], metadata: manager)
        #expect(!bad.committed && bad.created == 0 && bad.errorCount == 3)
        #expect(bad.errors.map(\.line) == [3, 4, 5])
        #expect(bad.errors.map(\.column) == ["area_m2", "building", "number"])
        var list = Linli_Property_V1_ListRoomsRequest()
        list.communityID = demo.community.description
        #expect(try await base.listRooms(list, metadata: manager).rooms.isEmpty)

        let header = try await importCSV(base, demo, .rooms, ["building,number,area,kind", "5栋,101,1,residence"], metadata: manager)
        #expect(!header.committed && header.errors.allSatisfy { $0.line == 1 } && header.errors.map(\.column).contains("area"))

        let rooms = try await importCSV(
            base, demo, .rooms,
            [
                "building,unit,number,floor,area_m2,kind",
                "5栋,1单元,101,1,89.50,residence",
                "5栋,1单元,102,1,89.5,residence",
                "6栋,,201,2,120.05,shop",
            ], chunk: 3, metadata: manager)
        #expect(rooms.committed && rooms.created == 3)
        let listed = try await base.listRooms(list, metadata: manager).rooms
        #expect(listed.map(\.areaCentiM2).sorted() == [8950, 8950, 12005])
        #expect(listed.allSatisfy { $0.state == .vacant } && listed.contains { $0.label == "5栋1单元101" })

        // One person on two lines is one resident in two rooms; an invalid ID number is named.
        let people = [
            "name,phone,id_number,building,unit,number,relation,move_in",
            "陈一,13800001111,11010519491231002X,5栋,1单元,101,owner,2024-03-01",
            "陈一,13800001111,11010519491231002X,5栋,1单元,102,owner,2024-03-01",
            "陈小一,,,5栋,1单元,101,family,",
        ]
        let wrongID = try await importCSV(
            base, demo, .residents, people + ["王二,13900002222,110105194912310021,6栋,,201,renter,2025-01-01"],
            metadata: manager)
        #expect(!wrongID.committed && wrongID.errors.map(\.line) == [5] && wrongID.errors.first?.column == "id_number")
        let requestID = UUID().uuidString
        let residents = try await importCSV(base, demo, .residents, people, requestID: requestID, metadata: manager)
        #expect(residents.committed && residents.created == 2)
        // A retry of the same import replays the first report and writes nothing more.
        let replay = try await importCSV(base, demo, .residents, people, chunk: 1, requestID: requestID, metadata: manager)
        #expect(replay == residents)
        let again = try await importCSV(base, demo, .residents, Array(people.prefix(2)), metadata: manager)
        #expect(!again.committed && again.errors.first?.column == "phone")

        var search = Linli_Property_V1_SearchRequest()
        search.communityID = demo.community.description
        search.query = "1111"
        let byTail = try await base.search(search, metadata: manager)
        #expect(byTail.residents.count == 1)
        let chen = try #require(byTail.residents.first)
        #expect(chen.phone == "138****1111" && chen.idNumber == "110***********002X" && chen.residencies.count == 2)
        search.query = "5-1-101"
        let byRoom = try await base.search(search, metadata: manager)
        #expect(byRoom.rooms.map(\.label) == ["5栋1单元101"] && byRoom.rooms.first?.state == .occupied)
        search.query = "小一"
        #expect(try await base.search(search, metadata: manager).residents.map(\.name) == ["陈小一"])
        search.query = "%"
        #expect(try await base.search(search, metadata: manager).residents.isEmpty)
    }

    @Test("residents move in and out, rooms follow; unmasked reads need the permission and a reason, and are audited")
    func residentsAndPersonalData() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let base = BaseDataClient(wrapping: server.client)
        let manager = try await server.login(demo, "manager")
        let cashier = try await server.login(demo, "cashier")

        var room = Linli_Property_V1_CreateRoomRequest()
        room.requestID = UUID().uuidString
        room.buildingID = demo.buildings[0].description
        room.unit = "1单元"
        room.number = "1201"
        room.floor = 12
        room.areaCentiM2 = 9_012
        room.kind = .residence
        let flat = try await base.createRoom(room, metadata: manager).room
        #expect(flat.label == "1栋1单元1201" && flat.state == .vacant)
        room.requestID = UUID().uuidString
        #expect(await rpcCode { try await base.createRoom(room, metadata: manager) } == .alreadyExists)
        room.requestID = UUID().uuidString
        room.areaCentiM2 = 0
        #expect(await rpcError { try await base.createRoom(room, metadata: manager) }?.message.hasPrefix("area_centi_m2:") == true)

        var register = Linli_Property_V1_RegisterResidentRequest()
        register.requestID = UUID().uuidString
        register.communityID = demo.community.description
        register.name = "林女士"
        register.phone = "138-0000-2222"
        register.idNumber = "11010519491231002x"
        register.roomID = flat.id
        register.relation = .renter
        register.moveIn = "2025-09-01"
        let resident = try await base.registerResident(register, metadata: manager).resident
        #expect(resident.phone == "138****2222" && resident.residencies.first?.room.state == .occupied)
        register.requestID = UUID().uuidString
        register.idNumber = ""
        #expect(await rpcCode { try await base.registerResident(register, metadata: manager) } == .alreadyExists)
        register.requestID = UUID().uuidString
        register.phone = "12345"
        #expect(await rpcError { try await base.registerResident(register, metadata: manager) }?.message.hasPrefix("phone:") == true)

        // The cashier sees masked data and may not reveal; the manager reveals with a reason.
        var get = Linli_Property_V1_GetResidentRequest()
        get.residentID = resident.id
        #expect(try await base.getResident(get, metadata: cashier).resident.phone == "138****2222")
        get.reveal = true
        get.reason = "联系住户处理漏水"
        #expect(await rpcCode { try await base.getResident(get, metadata: cashier) } == .permissionDenied)
        get.reason = ""
        #expect(await rpcError { try await base.getResident(get, metadata: manager) }?.message.hasPrefix("reason:") == true)
        get.reason = "联系住户处理漏水"
        let full = try await base.getResident(get, metadata: manager).resident
        #expect(full.phone == "13800002222" && full.idNumber == "11010519491231002X")
        var audit = Linli_Property_V1_ListPersonalDataReadsRequest()
        audit.communityID = demo.community.description
        let reads = try await base.listPersonalDataReads(audit, metadata: manager).reads
        #expect(
            reads.count == 1 && reads.first?.reason == "联系住户处理漏水" && reads.first?.fields == ["phone", "id_number"]
                && reads.first?.readerID == demo.users["manager"]?.description)

        // Renovating stays renovating through move-out; back from renovating, the room is what residencies say.
        var move = Linli_Property_V1_MoveOutRequest()
        move.requestID = UUID().uuidString
        move.residencyID = try #require(resident.residencies.first).id
        move.moveOut = "2025-08-01"
        #expect(await rpcError { try await base.moveOut(move, metadata: manager) }?.message.hasPrefix("move_out:") == true)
        move.moveOut = "2026-10-31"
        let left = try await base.moveOut(move, metadata: manager).resident
        #expect(left.residencies.first?.moveOut == "2026-10-31" && left.residencies.first?.room.state == .vacant)
        move.requestID = UUID().uuidString
        #expect(await rpcCode { try await base.moveOut(move, metadata: manager) } == .failedPrecondition)

        // Vehicles and parking spaces: one plate per community, one vehicle per space.
        var space = Linli_Property_V1_CreateParkingSpaceRequest()
        space.requestID = UUID().uuidString
        space.communityID = demo.community.description
        space.code = "b1-023"
        space.kind = .rented
        let made = try await base.createParkingSpace(space, metadata: manager).space
        #expect(made.code == "B1-023")
        var car = Linli_Property_V1_RegisterVehicleRequest()
        car.requestID = UUID().uuidString
        car.residentID = resident.id
        car.plate = "沪a·12345"
        car.parkingSpaceID = made.id
        let vehicle = try await base.registerVehicle(car, metadata: manager).vehicle
        #expect(vehicle.plate == "沪A12345" && vehicle.parkingSpaceCode == "B1-023")
        car.requestID = UUID().uuidString
        car.plate = "沪B54321"
        #expect(await rpcCode { try await base.registerVehicle(car, metadata: manager) } == .alreadyExists)
        car.plate = "ABC"
        car.requestID = UUID().uuidString
        #expect(await rpcError { try await base.registerVehicle(car, metadata: manager) }?.message.hasPrefix("plate:") == true)

        // Staff of the community with their roles; residents cannot read base data.
        var staff = Linli_Property_V1_ListStaffRequest()
        staff.communityID = demo.community.description
        let members = try await base.listStaff(staff, metadata: cashier).staff
        #expect(Set(members.map(\.role)) == [.manager, .cashier, .technician, .guard])
        let resident1 = try await server.login(demo, "resident1")
        #expect(await rpcCode { try await base.listStaff(staff, metadata: resident1) } == .permissionDenied)
    }

    @Test("pets per room: residents register their own, vaccinations fall due")
    func pets() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let base = BaseDataClient(wrapping: server.client)
        let pets = Linli_Property_V1_PetService.Client(wrapping: server.client)
        let manager = try await server.login(demo, "manager")
        let resident1 = try await server.login(demo, "resident1")

        var room = Linli_Property_V1_CreateRoomRequest()
        room.requestID = UUID().uuidString
        room.buildingID = demo.buildings[0].description
        room.number = "301"
        room.areaCentiM2 = 8_000
        room.kind = .residence
        let flat = try await base.createRoom(room, metadata: manager).room
        room.requestID = UUID().uuidString
        room.number = "302"
        let other = try await base.createRoom(room, metadata: manager).room
        var register = Linli_Property_V1_RegisterResidentRequest()
        register.requestID = UUID().uuidString
        register.communityID = demo.community.description
        register.name = "住户1"
        register.userID = try #require(demo.users["resident1"]).description
        register.roomID = flat.id
        register.relation = .owner
        register.moveIn = "2024-01-01"
        _ = try await base.registerResident(register, metadata: manager)

        var pet = Linli_Property_V1_RegisterPetRequest()
        pet.requestID = UUID().uuidString
        pet.roomID = other.id
        pet.name = "旺财"
        pet.species = .dog
        #expect(await rpcCode { try await pets.registerPet(pet, metadata: resident1) } == .permissionDenied)
        pet.requestID = UUID().uuidString
        pet.roomID = flat.id
        let dog = try await pets.registerPet(pet, metadata: resident1).pet
        #expect(dog.roomLabel == "1栋301")

        var listDue = Linli_Property_V1_ListDueVaccinationsRequest()
        listDue.communityID = demo.community.description
        // Never vaccinated: listed at once.
        #expect(try await pets.listDueVaccinations(listDue, metadata: manager).due.map(\.vaccine) == [""])

        var shot = Linli_Property_V1_RecordVaccinationRequest()
        shot.requestID = UUID().uuidString
        shot.petID = dog.id
        shot.vaccine = "Rabies"
        shot.givenOn = "2025-12-01"
        shot.nextDueOn = "2026-12-01"
        _ = try await pets.recordVaccination(shot, metadata: resident1)
        shot.requestID = UUID().uuidString
        shot.nextDueOn = "2025-11-01"
        #expect(await rpcError { try await pets.recordVaccination(shot, metadata: resident1) }?.message.hasPrefix("next_due_on:") == true)

        listDue.dueBy = "2026-12-31"
        let due = try await pets.listDueVaccinations(listDue, metadata: manager).due
        #expect(due.map(\.vaccine) == ["rabies"] && due.first?.nextDueOn == "2026-12-01")
        listDue.dueBy = "2026-11-30"
        #expect(try await pets.listDueVaccinations(listDue, metadata: manager).due.isEmpty)
        var list = Linli_Property_V1_ListPetsRequest()
        list.communityID = demo.community.description
        #expect(try await pets.listPets(list, metadata: resident1).pets.map(\.name) == ["旺财"])
    }
}
