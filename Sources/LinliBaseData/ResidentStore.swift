import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Residents, the rooms they live in over time, their vehicles and parking spaces, in the
/// caller's tenant transaction. Phone and ID numbers leave here masked unless a read is
/// revealed, and every revealed read is written to `personal_data_reads` in the same transaction.
public struct ResidentStore: Sendable {
    let rooms = RoomStore()
    public init() {}

    public enum Relation: String, Sendable, CaseIterable { case owner, renter, family }
    public enum ParkingKind: String, Sendable, CaseIterable { case owned, rented, temporary }

    public struct Residency: Sendable, Equatable {
        public var id: UUID
        public var room: RoomStore.Room
        public var relation: Relation
        public var moveIn: String
        public var moveOut: String?
    }

    public struct Vehicle: Sendable, Equatable {
        public var id: UUID
        public var resident: ResidentID
        public var plate: String
        public var space: UUID?
        public var spaceCode: String?
    }

    public struct Resident: Sendable, Equatable {
        public var id: ResidentID
        public var community: CommunityID
        public var name: String
        public var phone: String
        public var idNumber: String
        public var user: UserID?
        public var verified: Bool
        public var residencies: [Residency]
        public var vehicles: [Vehicle]

        /// The same resident as people without personal.reveal see it.
        public var masked: Resident {
            var copy = self
            copy.phone = phone.isEmpty ? "" : PersonalData.maskPhone(phone)
            copy.idNumber = idNumber.isEmpty ? "" : PersonalData.maskIDNumber(idNumber)
            return copy
        }
    }

    public struct NewResident: Sendable {
        public var community: CommunityID
        public var name: String
        public var phone: String
        public var idNumber: String
        public var user: UserID?
        public var room: RoomID
        public var relation: Relation
        public var moveIn: String
        public init(
            community: CommunityID, name: String, phone: String, idNumber: String, user: UserID?, room: RoomID,
            relation: Relation, moveIn: String
        ) {
            self.community = community
            self.name = name
            self.phone = phone
            self.idNumber = idNumber
            self.user = user
            self.room = room
            self.relation = relation
            self.moveIn = moveIn
        }
    }

    public struct ParkingSpace: Sendable, Equatable {
        public var id: UUID
        public var community: CommunityID
        public var code: String
        public var kind: ParkingKind
        public var room: RoomID?
    }

    public struct StaffMember: Sendable, Equatable {
        public var user: UserID
        public var displayName: String
        public var role: Role
        public var onDuty: Bool
        public var categories: [String]
        public var phone: String
    }

    public struct Read: Sendable, Equatable {
        public var id: Int64
        public var reader: UserID
        public var resident: ResidentID
        public var fields: [String]
        public var reason: String
        public var at: Date
    }

    // MARK: Residents and residencies

    public func register(_ new: NewResident, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Resident {
        try Scope.requireCommunity(principal, new.community)
        let room = try await rooms.load(new.room, connection, logger)
        guard room.community == new.community else { throw LinliError.invalid("room_id", "is not in this community") }
        if let user = new.user {
            let rows = try await connection.run(
                """
                SELECT 1 FROM users u JOIN user_communities uc ON uc.user_id = u.id
                WHERE u.id = \(user.uuid) AND u.role = 'resident' AND uc.community_id = \(new.community.uuid)
                """, logger: logger)
            var found = false
            for try await _ in rows { found = true }
            guard found else { throw LinliError.invalid("user_id", "is not a resident account of this community") }
        }
        let id = ResidentID.make()
        let inserted = try await connection.run(
            """
            INSERT INTO residents (id, community_id, name, phone, id_number, user_id)
            VALUES (\(id.uuid), \(new.community.uuid), \(new.name), \(new.phone), \(new.idNumber), \(new.user?.uuid))
            ON CONFLICT DO NOTHING RETURNING 1
            """, logger: logger)
        var created = false
        for try await _ in inserted { created = true }
        guard created else {
            if new.phone.isEmpty { throw LinliError(.alreadyExists, "user_id: already linked to another resident", field: "user_id") }
            throw LinliError(.alreadyExists, "phone: a resident of this community already has this phone number", field: "phone")
        }
        try await BaseDataSQL.addResidency(resident: id, room: new.room, relation: new.relation, moveIn: new.moveIn, connection, logger)
        try await MetricDelta.record(.residents, delta: 1, community: new.community, on: connection, logger: logger)
        return try await load(id, connection, logger)
    }

    public func moveIn(
        _ id: ResidentID, room roomID: RoomID, relation: Relation, on date: String, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Resident {
        let resident = try await load(id, connection, logger)
        try Scope.requireCommunity(principal, resident.community)
        let room = try await rooms.load(roomID, connection, logger)
        guard room.community == resident.community else { throw LinliError.invalid("room_id", "is not in the resident's community") }
        guard !resident.residencies.contains(where: { $0.room.id == roomID && $0.moveOut == nil }) else {
            throw LinliError(.alreadyExists, "room_id: the resident already lives in this room", field: "room_id")
        }
        try await BaseDataSQL.addResidency(resident: id, room: roomID, relation: relation, moveIn: date, connection, logger)
        return try await load(id, connection, logger)
    }

    public func moveOut(
        residency: UUID, on date: String, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Resident {
        let rows = try await connection.run(
            """
            SELECT h.resident_id, h.room_id, r.community_id, h.move_in::text, h.move_out IS NOT NULL
            FROM residencies h JOIN residents r ON r.id = h.resident_id WHERE h.id = \(residency) FOR UPDATE OF h
            """, logger: logger)
        for try await (resident, room, community, moveIn, ended) in rows.decode((UUID, UUID, UUID, String, Bool).self) {
            try Scope.requireCommunity(principal, CommunityID(community))
            if ended { throw LinliError(.failedPrecondition, "residency_id: this residency has already ended", field: "residency_id") }
            guard date >= moveIn else { throw LinliError.invalid("move_out", "is before the move-in date \(moveIn)") }
            try await connection.run("UPDATE residencies SET move_out = \(date)::date WHERE id = \(residency)", logger: logger)
            try await BaseDataSQL.refreshOccupancy(RoomID(room), connection, logger)
            return try await load(ResidentID(resident), connection, logger)
        }
        throw LinliError.notFound("residency")
    }

    public func verify(_ id: ResidentID, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Resident {
        let resident = try await load(id, connection, logger)
        try Scope.requireCommunity(principal, resident.community)
        try await connection.run(
            """
            UPDATE residents SET verified_at = coalesce(verified_at, now()), verified_by = coalesce(verified_by, \(principal.subjectID.uuid))
            WHERE id = \(id.uuid)
            """, logger: logger)
        return try await load(id, connection, logger)
    }

    /// A resident, masked; in full with `revealFor` (a reason), which is recorded.
    public func get(
        _ id: ResidentID, revealFor reason: String?, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Resident {
        let resident = try await load(id, connection, logger)
        try Scope.requireCommunity(principal, resident.community)
        guard let reason else { return resident.masked }
        let fields = [resident.phone.isEmpty ? nil : "phone", resident.idNumber.isEmpty ? nil : "id_number"].compactMap { $0 }
        if !fields.isEmpty {
            try await connection.run(
                """
                INSERT INTO personal_data_reads (community_id, reader_id, resident_id, fields, reason)
                VALUES (\(resident.community.uuid), \(principal.subjectID.uuid), \(id.uuid), \(fields), \(reason))
                """, logger: logger)
        }
        return resident
    }

    /// The front-desk search box: room numbers, names, full phone numbers or their last four digits. Masked.
    public func search(
        community: CommunityID, query: String, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (rooms: [RoomStore.Room], residents: [Resident]) {
        try Scope.requireCommunity(principal, community)
        let parts = query.split(whereSeparator: { $0 == "-" || $0 == " " }).map(String.init)
        let number = parts.last ?? query
        let building = parts.count >= 2 ? parts[0] : ""
        let unit = parts.count >= 3 ? parts[1] : ""
        let roomRows = try await connection.run(
            """
            SELECT \(unescaped: RoomStore.columns)
            WHERE r.community_id = \(community.uuid) AND r.number = \(number)
              AND b.name LIKE \(Self.likePrefix(building)) AND r.unit LIKE \(Self.likePrefix(unit))
            ORDER BY b.name, r.unit, r.number LIMIT 20
            """, logger: logger)
        let foundRooms = try await RoomStore.decodeAll(roomRows)
        let digits = query.allSatisfy { $0.isASCII && $0.isNumber }
        let residentRows = try await connection.run(
            """
            SELECT id FROM residents
            WHERE community_id = \(community.uuid)
              AND ((\(digits && query.count == 11) AND phone = \(query))
                OR (\(digits && query.count == 4) AND right(phone, 4) = \(query) AND phone <> '')
                OR (NOT \(digits) AND name LIKE \(Self.likeContains(query))))
            ORDER BY name, id LIMIT 20
            """, logger: logger)
        var residents: [Resident] = []
        for try await id in residentRows.decode(UUID.self) {
            residents.append(try await load(ResidentID(id), connection, logger).masked)
        }
        return (foundRooms, residents)
    }

    // MARK: Parking and vehicles

    public func createParkingSpace(
        community: CommunityID, code: String, kind: ParkingKind, room: RoomID?, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> ParkingSpace {
        try Scope.requireCommunity(principal, community)
        try await BaseDataSQL.requireCommunity(community, connection, logger)
        if let room {
            guard try await rooms.load(room, connection, logger).community == community else {
                throw LinliError.invalid("room_id", "is not in this community")
            }
        }
        let id = UUIDv7.make()
        let rows = try await connection.run(
            """
            INSERT INTO parking_spaces (id, community_id, code, kind, room_id)
            VALUES (\(id), \(community.uuid), \(code), \(kind.rawValue), \(room?.uuid)) ON CONFLICT DO NOTHING RETURNING 1
            """, logger: logger)
        for try await _ in rows { return ParkingSpace(id: id, community: community, code: code, kind: kind, room: room) }
        throw LinliError(.alreadyExists, "code: this community already has a parking space with this code", field: "code")
    }

    public func registerVehicle(
        resident id: ResidentID, plate: String, space: UUID?, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Vehicle {
        let resident = try await load(id, connection, logger)
        try Scope.requireCommunity(principal, resident.community)
        if let space {
            let rows = try await connection.run(
                """
                SELECT community_id, EXISTS (SELECT 1 FROM vehicles WHERE parking_space_id = \(space))
                FROM parking_spaces WHERE id = \(space)
                """, logger: logger)
            var known = false
            for try await (community, taken) in rows.decode((UUID, Bool).self) {
                known = true
                guard CommunityID(community) == resident.community else {
                    throw LinliError.invalid("parking_space_id", "is not in the resident's community")
                }
                if taken { throw LinliError(.alreadyExists, "parking_space_id: another vehicle holds this space", field: "parking_space_id") }
            }
            guard known else { throw LinliError.notFound("parking space") }
        }
        let vehicle = UUIDv7.make()
        let rows = try await connection.run(
            """
            INSERT INTO vehicles (id, community_id, resident_id, plate, parking_space_id)
            VALUES (\(vehicle), \(resident.community.uuid), \(id.uuid), \(plate), \(space)) ON CONFLICT DO NOTHING RETURNING 1
            """, logger: logger)
        for try await _ in rows {
            if let added = try await load(id, connection, logger).vehicles.first(where: { $0.id == vehicle }) { return added }
        }
        throw LinliError(.alreadyExists, "plate: this vehicle is already registered in this community", field: "plate")
    }

    // MARK: Staff and the audit trail

    public func staff(
        community: CommunityID, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [StaffMember] {
        try Scope.requireCommunity(principal, community)
        let rows = try await connection.run(
            """
            SELECT u.id, u.display_name, u.role, coalesce(d.on_duty, false), coalesce(u.phone, ''),
                   ARRAY(SELECT s.code FROM technician_skills s WHERE s.user_id = u.id AND s.community_id = \(community.uuid) ORDER BY s.code)
            FROM users u JOIN user_communities uc ON uc.user_id = u.id AND uc.community_id = \(community.uuid)
            LEFT JOIN staff_duty d ON d.user_id = u.id
            WHERE u.role IN ('manager', 'cashier', 'technician', 'guard') AND u.status = 'active'
            ORDER BY u.role, u.display_name
            """, logger: logger)
        var result: [StaffMember] = []
        for try await (id, name, role, onDuty, phone, categories) in rows.decode((UUID, String, String, Bool, String, [String]).self) {
            result.append(
                StaffMember(
                    user: UserID(id), displayName: name, role: Role(name: role) ?? .manager, onDuty: onDuty,
                    categories: categories, phone: phone.isEmpty ? "" : PersonalData.maskPhone(phone)))
        }
        return result
    }

    public func reads(
        community: CommunityID, after: (Date, UUID)?, limit: Int, for principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [Read] {
        try Scope.requireCommunity(principal, community)
        // The audit trail's ids are a sequence; the page token carries the last one in its uuid's low bits.
        let afterID = after.map { Int64(bitPattern: UInt64(Self.low64($0.1))) }
        let rows = try await connection.run(
            """
            SELECT id, reader_id, resident_id, fields, reason, at FROM personal_data_reads
            WHERE community_id = \(community.uuid) AND (\(afterID)::int8 IS NULL OR id < \(afterID))
            ORDER BY id DESC LIMIT \(Int32(clamping: limit))
            """, logger: logger)
        var result: [Read] = []
        for try await (id, reader, resident, fields, reason, at) in rows.decode((Int64, UUID, UUID, [String], String, Date).self) {
            result.append(Read(id: id, reader: UserID(reader), resident: ResidentID(resident), fields: fields, reason: reason, at: at))
        }
        return result
    }

    /// A sequence number carried in a UUID, for `PageToken`.
    public static func tokenID(_ id: Int64) -> UUID {
        let v = UInt64(bitPattern: id)
        return UUID(
            uuid: (
                0, 0, 0, 0, 0, 0, 0, 0, UInt8(truncatingIfNeeded: v >> 56), UInt8(truncatingIfNeeded: v >> 48),
                UInt8(truncatingIfNeeded: v >> 40), UInt8(truncatingIfNeeded: v >> 32), UInt8(truncatingIfNeeded: v >> 24),
                UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)
            ))
    }

    static func low64(_ uuid: UUID) -> UInt64 {
        let b = uuid.uuid
        return [b.8, b.9, b.10, b.11, b.12, b.13, b.14, b.15].reduce(0) { $0 << 8 | UInt64($1) }
    }

    // MARK: Loading

    public func load(_ id: ResidentID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Resident {
        let rows = try await connection.run(
            """
            SELECT community_id, name, phone, id_number, user_id, verified_at IS NOT NULL FROM residents WHERE id = \(id.uuid)
            """, logger: logger)
        var found: Resident?
        for try await (community, name, phone, idNumber, user, verified) in rows.decode((UUID, String, String, String, UUID?, Bool).self) {
            found = Resident(
                id: id, community: CommunityID(community), name: name, phone: phone, idNumber: idNumber,
                user: user.map(UserID.init), verified: verified, residencies: [], vehicles: [])
        }
        guard var resident = found else { throw LinliError.notFound("resident") }
        let stays = try await connection.run(
            """
            SELECT h.id, h.relation, h.move_in::text, h.move_out::text, \(unescaped: RoomStore.columns)
            JOIN residencies h ON h.room_id = r.id WHERE h.resident_id = \(id.uuid) ORDER BY h.move_out IS NOT NULL, h.move_in DESC
            """, logger: logger)
        for try await row in stays {
            let columns = row.makeRandomAccess()
            let room = try RoomStore.decode(row, offset: 4)
            resident.residencies.append(
                Residency(
                    id: try columns[0].decode(UUID.self), room: room,
                    relation: Relation(rawValue: try columns[1].decode(String.self)) ?? .owner,
                    moveIn: try columns[2].decode(String.self), moveOut: try columns[3].decode(String?.self)))
        }
        let cars = try await connection.run(
            """
            SELECT v.id, v.plate, v.parking_space_id, p.code FROM vehicles v LEFT JOIN parking_spaces p ON p.id = v.parking_space_id
            WHERE v.resident_id = \(id.uuid) ORDER BY v.id
            """, logger: logger)
        for try await (vehicle, plate, space, code) in cars.decode((UUID, String, UUID?, String?).self) {
            resident.vehicles.append(Vehicle(id: vehicle, resident: id, plate: plate, space: space, spaceCode: code))
        }
        return resident
    }

    static func likePrefix(_ text: String) -> String { escapeLike(text) + "%" }
    static func likeContains(_ text: String) -> String { "%" + escapeLike(text) + "%" }
    static func escapeLike(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }
}
