import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging

/// The `linli.property.v1.PetService` RPCs.
public struct PetService: Sendable {
    let pets = PetStore()
    let handler: Handler

    public init(database: Database, logger: Logger) {
        handler = Handler(database: database, logger: logger)
    }
}

extension PetService: Linli_Property_V1_PetService.ServiceProtocol {
    public func registerPet(request: ServerRequest<Linli_Property_V1_RegisterPetRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_RegisterPetResponse>
    {
        let m = request.message
        let room: RoomID = try Input.id(m.roomID, field: "room_id")
        let name = try Input.text(m.name, field: "name", max: 30)
        let species = try ProtoEnum.decode(m.species, PetStore.Species.self, field: "species")
        let breed = try Input.text(m.breed, field: "breed", min: 0, max: 30)
        return try await handler.write(request, context) { [pets] call in
            var response = Linli_Property_V1_RegisterPetResponse()
            response.pet = .init(
                try await pets.register(
                    room: room, name: name, species: species, breed: breed, by: call.principal,
                    on: call.connection, logger: call.logger))
            return response
        }
    }

    public func recordVaccination(request: ServerRequest<Linli_Property_V1_RecordVaccinationRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_RecordVaccinationResponse>
    {
        let m = request.message
        let pet = try Input.id(m.petID, field: "pet_id", as: IDTag.Pet.self).uuid
        let vaccine = try Input.text(m.vaccine, field: "vaccine", max: 40).lowercased()
        let given = try Input.localDate(m.givenOn, field: "given_on")
        let next = try Input.localDate(m.nextDueOn, field: "next_due_on")
        return try await handler.write(request, context) { [pets] call in
            var response = Linli_Property_V1_RecordVaccinationResponse()
            response.pet = .init(
                try await pets.vaccinate(
                    pet: pet, vaccine: vaccine, givenOn: given, nextDueOn: next, by: call.principal,
                    on: call.connection, logger: call.logger))
            return response
        }
    }

    public func listPets(request: ServerRequest<Linli_Property_V1_ListPetsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListPetsResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [pets] call in
            let found = try await pets.list(community: community, for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ListPetsResponse()
            response.pets = found.map(Linli_Property_V1_Pet.init)
            return response
        }
    }

    public func listDueVaccinations(request: ServerRequest<Linli_Property_V1_ListDueVaccinationsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListDueVaccinationsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let dueBy = m.dueBy.isEmpty ? nil : try Input.localDate(m.dueBy, field: "due_by")
        return try await handler.read(request) { [pets] call in
            let found = try await pets.due(community: community, by: dueBy, for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ListDueVaccinationsResponse()
            response.due = found.map { due in
                .with {
                    $0.pet = .init(due.pet)
                    $0.vaccine = due.vaccine
                    $0.nextDueOn = due.nextDueOn
                    $0.overdue = due.overdue
                }
            }
            return response
        }
    }
}

extension Linli_Property_V1_RegisterPetRequest: IdempotentRequest {}
extension Linli_Property_V1_RecordVaccinationRequest: IdempotentRequest {}

extension Linli_Property_V1_Pet {
    init(_ p: PetStore.Pet) {
        self.init()
        id = p.id.uuidString.lowercased()
        roomID = p.room.description
        roomLabel = p.roomLabel
        name = p.name
        species = ProtoEnum.encode(p.species)
        breed = p.breed
        vaccinations = p.vaccinations.map { v in
            .with {
                $0.vaccine = v.vaccine; $0.givenOn = v.givenOn; $0.nextDueOn = v.nextDueOn
            }
        }
    }
}
