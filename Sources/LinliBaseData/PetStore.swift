import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Pets per room and their vaccinations, in the caller's tenant transaction. Residents act
/// for the rooms they live in now; staff for any room of their communities.
public struct PetStore: Sendable {
    let rooms = RoomStore()
    public init() {}

    public enum Species: String, Sendable, CaseIterable { case dog, cat, other }

    public struct Vaccination: Sendable, Equatable {
        public var vaccine: String
        public var givenOn: String
        public var nextDueOn: String
    }

    public struct Pet: Sendable, Equatable {
        public var id: UUID
        public var room: RoomID
        public var roomLabel: String
        public var name: String
        public var species: Species
        public var breed: String
        /// The latest of each vaccine.
        public var vaccinations: [Vaccination]
    }

    public struct Due: Sendable, Equatable {
        public var pet: Pet
        /// Empty for a pet with no vaccination recorded at all.
        public var vaccine: String
        public var nextDueOn: String
        public var overdue: Bool
    }

    public func register(
        room id: RoomID, name: String, species: Species, breed: String, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Pet {
        let room = try await rooms.load(id, connection, logger)
        try await requireRoom(room, principal, connection, logger)
        let pet = UUIDv7.make()
        try await connection.run(
            """
            INSERT INTO pets (id, community_id, room_id, name, species, breed, registered_by)
            VALUES (\(pet), \(room.community.uuid), \(id.uuid), \(name), \(species.rawValue), \(breed), \(principal.subjectID.uuid))
            """, logger: logger)
        return try await load(pet, connection, logger)
    }

    public func vaccinate(
        pet id: UUID, vaccine: String, givenOn: String, nextDueOn: String, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Pet {
        let pet = try await load(id, connection, logger)
        try await requireRoom(try await rooms.load(pet.room, connection, logger), principal, connection, logger)
        guard nextDueOn > givenOn else { throw LinliError.invalid("next_due_on", "must be after given_on") }
        try await connection.run(
            """
            INSERT INTO pet_vaccinations (id, pet_id, vaccine, given_on, next_due_on, recorded_by)
            VALUES (\(UUIDv7.make()), \(id), \(vaccine), \(givenOn)::date, \(nextDueOn)::date, \(principal.subjectID.uuid))
            """, logger: logger)
        return try await load(id, connection, logger)
    }

    public func list(community: CommunityID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> [Pet] {
        try Scope.requireCommunity(principal, community)
        let rows = try await connection.run(
            """
            SELECT p.id FROM pets p WHERE p.community_id = \(community.uuid) AND p.removed_at IS NULL
              AND (NOT \(principal.role == .resident) OR p.room_id IN (\(unescaped: Self.ownRooms(principal))))
            ORDER BY p.id LIMIT 1000
            """, logger: logger)
        var ids: [UUID] = []
        for try await id in rows.decode(UUID.self) { ids.append(id) }
        let pets = try await load(ids, connection, logger)
        return ids.compactMap { pets[$0] }
    }

    /// The latest dose of each vaccine that falls due by `dueBy` (default: 30 days after the
    /// community's today), and pets never vaccinated; soonest first.
    public func due(
        community: CommunityID, by dueBy: String?, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Due] {
        try Scope.requireCommunity(principal, community)
        // A resident sees only the pets of rooms they live in, as in `list`.
        let resident = principal.role == .resident
        let rows = try await connection.run(
            """
            WITH latest AS (
                SELECT DISTINCT ON (v.pet_id, v.vaccine) v.pet_id, v.vaccine, v.next_due_on
                FROM pet_vaccinations v JOIN pets p ON p.id = v.pet_id
                WHERE p.community_id = \(community.uuid) AND p.removed_at IS NULL
                  AND (NOT \(resident) OR p.room_id IN (\(unescaped: Self.ownRooms(principal))))
                ORDER BY v.pet_id, v.vaccine, v.given_on DESC, v.id DESC)
            SELECT pet_id, vaccine, next_due_on::text, next_due_on < community_today(\(community.uuid)) FROM latest
            WHERE next_due_on <= coalesce(\(dueBy)::date, community_today(\(community.uuid)) + 30)
            UNION ALL
            SELECT p.id, '', local_day(community_zone(p.community_id), p.created_at)::text, true FROM pets p
            WHERE p.community_id = \(community.uuid) AND p.removed_at IS NULL
              AND (NOT \(resident) OR p.room_id IN (\(unescaped: Self.ownRooms(principal))))
              AND NOT EXISTS (SELECT 1 FROM pet_vaccinations v WHERE v.pet_id = p.id)
            ORDER BY 3, 1 LIMIT 1000
            """, logger: logger)
        var found: [(UUID, String, String, Bool)] = []
        for try await row in rows.decode((UUID, String, String, Bool).self) { found.append(row) }
        let pets = try await load(found.map(\.0), connection, logger)
        return found.compactMap { pet, vaccine, dueOn, overdue in
            pets[pet].map { Due(pet: $0, vaccine: vaccine, nextDueOn: dueOn, overdue: overdue) }
        }
    }

    /// Residents may act for rooms they live in now; staff within their communities.
    private func requireRoom(_ room: RoomStore.Room, _ principal: Principal, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await Scope.requireRoom(principal, room.id, on: connection, logger: logger)
    }

    /// The rooms a resident account lives in today, as a subquery.
    static func ownRooms(_ principal: Principal) -> String { Residency.roomsSQL(of: principal.subjectID) }

    func load(_ id: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Pet {
        guard let pet = try await load([id], connection, logger)[id] else { throw LinliError.notFound("pet") }
        return pet
    }

    /// Pets with the latest dose of each vaccine, in two queries however many.
    func load(_ ids: [UUID], _ connection: PostgresConnection, _ logger: Logger) async throws -> [UUID: Pet] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await connection.run(
            """
            SELECT p.id, p.room_id, room_label(b.name, r.unit, r.number), p.name, p.species, p.breed FROM pets p
            JOIN rooms r ON r.id = p.room_id JOIN buildings b ON b.id = r.building_id WHERE p.id = ANY(\(ids)::uuid[])
            """, logger: logger)
        var pets: [UUID: Pet] = [:]
        for try await (id, room, label, name, species, breed) in rows.decode((UUID, UUID, String, String, String, String).self) {
            pets[id] = Pet(
                id: id, room: RoomID(room), roomLabel: label, name: name, species: Species(rawValue: species) ?? .other,
                breed: breed, vaccinations: [])
        }
        let doses = try await connection.run(
            """
            SELECT DISTINCT ON (pet_id, vaccine) pet_id, vaccine, given_on::text, next_due_on::text FROM pet_vaccinations
            WHERE pet_id = ANY(\(ids)::uuid[]) ORDER BY pet_id, vaccine, given_on DESC, id DESC
            """, logger: logger)
        for try await (pet, vaccine, given, next) in doses.decode((UUID, String, String, String).self) {
            pets[pet]?.vaccinations.append(Vaccination(vaccine: vaccine, givenOn: given, nextDueOn: next))
        }
        return pets
    }
}
