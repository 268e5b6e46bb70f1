import Foundation
import LinliCore
import Logging
import PostgresNIO

/// "May this principal act on community / building / room X": the one place that answers.
///
/// Staff act within the communities of their scope; residents on the rooms they live in today
/// (`Residency`) and on their community's shared things. Services check the shape of input;
/// stores call these before reading or writing.
public enum Scope {
    /// Throws `permissionDenied` unless `principal` may act in `community`.
    public static func requireCommunity(_ principal: Principal, _ community: CommunityID) throws(LinliError) {
        try principal.requireScope(community)
    }

    /// Staff: the room's community is theirs. Residents: besides, they live in the room today.
    /// Returns the room's community.
    @discardableResult
    public static func requireRoom(
        _ principal: Principal, _ room: RoomID, on connection: PostgresConnection, logger: Logger
    ) async throws -> CommunityID {
        let community = try await communityOf(room: room, on: connection, logger: logger)
        try principal.requireScope(community)
        if principal.role == .resident, try await !Residency.userLivesIn(principal.subjectID, room, on: connection, logger: logger) {
            throw LinliError(.permissionDenied, "room_id: you do not live in this room", field: "room_id")
        }
        return community
    }

    /// The building's community, if it is the principal's. Returns it.
    @discardableResult
    public static func requireBuilding(
        _ principal: Principal, _ building: BuildingID, on connection: PostgresConnection, logger: Logger
    ) async throws -> CommunityID {
        let community = try await communityOf(building: building, on: connection, logger: logger)
        try principal.requireScope(community)
        return community
    }

    // MARK: Base facts

    /// The community a room belongs to; `notFound` for an unknown room.
    public static func communityOf(room: RoomID, on connection: PostgresConnection, logger: Logger) async throws -> CommunityID {
        let rows = try await connection.run("SELECT community_id FROM rooms WHERE id = \(room.uuid)", logger: logger)
        for try await id in rows.decode(UUID.self) { return CommunityID(id) }
        throw LinliError.notFound("room")
    }

    /// The building of `room` when the room is in `community`; nil otherwise.
    public static func building(of room: RoomID, in community: CommunityID, on connection: PostgresConnection, logger: Logger)
        async throws -> BuildingID?
    {
        let rows = try await connection.run(
            "SELECT building_id FROM community_rooms(\(community.uuid)) WHERE room_id = \(room.uuid)", logger: logger)
        for try await building in rows.decode(UUID.self) { return BuildingID(building) }
        return nil
    }

    /// The community a building belongs to; `notFound` for an unknown building.
    public static func communityOf(building: BuildingID, on connection: PostgresConnection, logger: Logger) async throws -> CommunityID {
        let rows = try await connection.run("SELECT community_id FROM buildings WHERE id = \(building.uuid)", logger: logger)
        for try await id in rows.decode(UUID.self) { return CommunityID(id) }
        throw LinliError.notFound("building")
    }

    /// `notFound` unless the community exists.
    public static func requireExists(_ community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.run("SELECT 1 FROM communities WHERE id = \(community.uuid)", logger: logger)
        for try await _ in rows { return }
        throw LinliError.notFound("community")
    }

    /// Whether `user` is an active member (staff or resident account) of `community`.
    public static func isMember(_ user: UserID, of community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.run(
            """
            SELECT 1 FROM users u JOIN user_communities uc ON uc.user_id = u.id
            WHERE u.id = \(user.uuid) AND uc.community_id = \(community.uuid) AND u.status = 'active'
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }
}
