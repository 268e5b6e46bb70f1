import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging

/// The `linli.property.v1.PetService` RPCs.
public struct PetService: Sendable {
    let pets = PetRegistry()
    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }
}

extension PetService: Linli_Property_V1_PetService.ServiceProtocol {
    public func registerPet(request: ServerRequest<Linli_Property_V1_RegisterPetRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_RegisterPetResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let m = request.message
        let room: RoomID = try Input.id(m.roomID, field: "room_id")
        let name = try Input.text(m.name, field: "name", max: 30)
        let species = try ProtoEnum.decode(m.species, PetRegistry.Species.self, field: "species")
        let breed = try Input.text(m.breed, field: "breed", min: 0, max: 30)
        let response = try await database.once(ctx, "RegisterPet", m) { [pets] connection in
            var response = Linli_Property_V1_RegisterPetResponse()
            response.pet = .init(
                try await pets.register(
                    room: room, name: name, species: species, breed: breed, by: ctx.principal,
                    on: connection, logger: ctx.logger))
            return response
        }
        return ServerResponse(message: response)
    }

    public func recordVaccination(request: ServerRequest<Linli_Property_V1_RecordVaccinationRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_RecordVaccinationResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let m = request.message
        let pet = try Input.id(m.petID, field: "pet_id", as: IDTag.Pet.self).uuid
        let vaccine = try Input.text(m.vaccine, field: "vaccine", max: 40).lowercased()
        let given = try Input.localDate(m.givenOn, field: "given_on")
        let next = try Input.localDate(m.nextDueOn, field: "next_due_on")
        let response = try await database.once(ctx, "RecordVaccination", m) { [pets] connection in
            var response = Linli_Property_V1_RecordVaccinationResponse()
            response.pet = .init(
                try await pets.vaccinate(
                    pet: pet, vaccine: vaccine, givenOn: given, nextDueOn: next, by: ctx.principal,
                    on: connection, logger: ctx.logger))
            return response
        }
        return ServerResponse(message: response)
    }

    public func listPets(request: ServerRequest<Linli_Property_V1_ListPetsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListPetsResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        let found = try await database.tenantTransaction(try ctx.requireTenant()) { [pets] connection in
            try await pets.list(community: community, for: ctx.principal, on: connection, logger: ctx.logger)
        }
        var response = Linli_Property_V1_ListPetsResponse()
        response.pets = found.map(Linli_Property_V1_Pet.init)
        return ServerResponse(message: response)
    }

    public func listDueVaccinations(request: ServerRequest<Linli_Property_V1_ListDueVaccinationsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListDueVaccinationsResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let dueBy = m.dueBy.isEmpty ? nil : try Input.localDate(m.dueBy, field: "due_by")
        let found = try await database.tenantTransaction(try ctx.requireTenant()) { [pets] connection in
            try await pets.due(community: community, by: dueBy, for: ctx.principal, on: connection, logger: ctx.logger)
        }
        var response = Linli_Property_V1_ListDueVaccinationsResponse()
        response.due = found.map { due in
            .with {
                $0.pet = .init(due.pet)
                $0.vaccine = due.vaccine
                $0.nextDueOn = due.nextDueOn
                $0.overdue = due.overdue
            }
        }
        return ServerResponse(message: response)
    }
}

extension Linli_Property_V1_RegisterPetRequest: IdempotentRequest {}
extension Linli_Property_V1_RecordVaccinationRequest: IdempotentRequest {}

extension Linli_Property_V1_Pet {
    init(_ p: PetRegistry.Pet) {
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
