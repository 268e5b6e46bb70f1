import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Buildings and rooms of a community, in the caller's tenant transaction.
public struct RoomStore: Sendable {
    public init() {}

    public enum Kind: String, Sendable, CaseIterable { case residence, shop, office, storage }
    public enum State: String, Sendable, CaseIterable { case vacant, occupied, renovating }

    public struct Room: Sendable, Equatable {
        public var id: RoomID
        public var community: CommunityID
        public var building: BuildingID
        public var buildingName: String
        public var unit: String
        public var number: String
        public var floor: Int?
        public var areaCentiM2: Int64
        public var kind: Kind
        public var state: State
        /// "1栋2单元1201": how people name the room.
        public var label: String { buildingName + unit + number }
    }

    public struct NewRoom: Sendable {
        public var building: BuildingID
        public var unit: String
        public var number: String
        public var floor: Int?
        public var areaCentiM2: Int64
        public var kind: Kind
        public init(building: BuildingID, unit: String, number: String, floor: Int?, areaCentiM2: Int64, kind: Kind) {
            self.building = building
            self.unit = unit
            self.number = number
            self.floor = floor
            self.areaCentiM2 = areaCentiM2
            self.kind = kind
        }
    }

    public func createBuilding(
        community: CommunityID, name: String, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> BuildingID {
        try Scope.requireCommunity(principal, community)
        let id = BuildingID.make()
        let rows = try await connection.run(
            """
            INSERT INTO buildings (id, community_id, name) SELECT \(id.uuid), id, \(name) FROM communities WHERE id = \(community.uuid)
            ON CONFLICT (community_id, name) DO NOTHING RETURNING 1
            """, logger: logger)
        for try await _ in rows { return id }
        try await BaseDataSQL.requireCommunity(community, connection, logger)
        throw LinliError(.alreadyExists, "name: this community already has a building with this name", field: "name")
    }

    public func create(_ new: NewRoom, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Room {
        let community = try await BaseDataSQL.community(ofBuilding: new.building, connection, logger)
        try Scope.requireCommunity(principal, community)
        let id = RoomID.make()
        let rows = try await connection.run(
            """
            INSERT INTO rooms (id, community_id, building_id, unit, number, floor, area_centi_m2, kind)
            VALUES (\(id.uuid), \(community.uuid), \(new.building.uuid), \(new.unit), \(new.number), \(new.floor.map { Int32($0) }),
                    \(Int32(new.areaCentiM2)), \(new.kind.rawValue))
            ON CONFLICT (building_id, unit, number) DO NOTHING RETURNING 1
            """, logger: logger)
        for try await _ in rows {
            try await MetricDelta.record(.rooms, delta: 1, community: community, on: connection, logger: logger)
            return try await load(id, connection, logger)
        }
        throw LinliError(.alreadyExists, "number: this building already has this room in this unit", field: "number")
    }

    /// Renovating, or back to what the residencies say.
    public func setRenovating(
        _ id: RoomID, _ renovating: Bool, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Room {
        let room = try await load(id, connection, logger)
        try Scope.requireCommunity(principal, room.community)
        try await connection.run(
            """
            UPDATE rooms SET state = CASE WHEN \(renovating) THEN 'renovating' ELSE \(unescaped: BaseDataSQL.occupancy) END WHERE id = \(id.uuid)
            """, logger: logger)
        return try await load(id, connection, logger)
    }

    /// Rooms by building, unit and number (numbers in numeric order where they are numeric).
    public func list(
        community: CommunityID, building: BuildingID?, after: UUID?, limit: Int, for principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [Room] {
        try Scope.requireCommunity(principal, community)
        // The page key is the room id: a stable order that a page token can resume from.
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) WHERE r.community_id = \(community.uuid)
              AND (\(building?.uuid)::uuid IS NULL OR r.building_id = \(building?.uuid))
              AND (\(after)::uuid IS NULL OR r.id > \(after))
            ORDER BY r.id LIMIT \(Int32(clamping: limit))
            """, logger: logger)
        return try await Self.decodeAll(rows)
    }

    public func load(_ id: RoomID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Room {
        let rows = try await connection.run("SELECT \(unescaped: Self.columns) WHERE r.id = \(id.uuid)", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        throw LinliError.notFound("room")
    }

    static let columns = """
        r.id, r.community_id, r.building_id, b.name, r.unit, r.number, r.floor, r.area_centi_m2, r.kind, r.state
        FROM rooms r JOIN buildings b ON b.id = r.building_id
        """

    static func decodeAll(_ rows: PostgresRowSequence) async throws -> [Room] {
        var result: [Room] = []
        for try await row in rows { result.append(try decode(row)) }
        return result
    }

    /// A room from `columns`, starting at column `offset` of the row.
    static func decode(_ row: PostgresRow, offset: Int = 0) throws -> Room {
        let c = row.makeRandomAccess()
        func column<T: PostgresDecodable>(_ index: Int, _: T.Type) throws -> T { try c[offset + index].decode(T.self) }
        return Room(
            id: RoomID(try column(0, UUID.self)), community: CommunityID(try column(1, UUID.self)),
            building: BuildingID(try column(2, UUID.self)), buildingName: try column(3, String.self),
            unit: try column(4, String.self), number: try column(5, String.self),
            floor: try column(6, Int32?.self).map(Int.init), areaCentiM2: Int64(try column(7, Int32.self)),
            kind: Kind(rawValue: try column(8, String.self)) ?? .residence,
            state: State(rawValue: try column(9, String.self)) ?? .vacant)
    }
}
