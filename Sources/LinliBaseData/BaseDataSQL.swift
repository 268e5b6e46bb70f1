import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// SQL shared by the base-data stores.
enum BaseDataSQL {
    /// A room's state from its residencies, for `UPDATE rooms ... WHERE id = ...` (renovating is set apart).
    static let occupancy = """
        CASE WHEN EXISTS (SELECT 1 FROM residencies h WHERE h.room_id = rooms.id AND resides_on(h.move_in, h.move_out, community_today(rooms.community_id)))
             THEN 'occupied' ELSE 'vacant' END
        """

    /// Puts a room's state in line with its residencies, unless it is being renovated.
    static func refreshOccupancy(_ room: RoomID, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE rooms SET state = \(unescaped: occupancy) WHERE id = \(room.uuid) AND state <> 'renovating'
            """, logger: logger)
    }

    static func requireCommunity(_ community: CommunityID, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await Scope.requireExists(community, on: connection, logger: logger)
    }

    static func community(ofBuilding building: BuildingID, _ connection: PostgresConnection, _ logger: Logger) async throws -> CommunityID {
        try await Scope.communityOf(building: building, on: connection, logger: logger)
    }
}

extension BaseDataSQL {
    /// A new current residency; the room becomes occupied unless it is being renovated.
    static func addResidency(
        resident: ResidentID, room: RoomID, relation: ResidentStore.Relation, moveIn: String,
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        try await connection.run(
            """
            INSERT INTO residencies (id, resident_id, room_id, relation, move_in)
            VALUES (\(UUIDv7.make()), \(resident.uuid), \(room.uuid), \(relation.rawValue), \(moveIn)::date)
            """, logger: logger)
        try await refreshOccupancy(room, connection, logger)
    }
}
