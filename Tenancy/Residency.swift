import Foundation
import LinliCore
import Logging
import PostgresNIO

/// Who lives in a room, on which day: the one definition every module uses.
///
/// **Rule.** Person P lives in room R on day D when P has a residency in R that moved in on or
/// before D and had not moved out on or before D: `move_in <= D AND (move_out IS NULL OR
/// move_out > D)`. A move-in dated next week takes effect on its day; the move-out day is the
/// first day P no longer lives there. Days are the community's business days (`BusinessDay`).
/// SQL states the same rule once, as `resides_on(move_in, move_out, day)` (migration 0017).
public enum Residency {
    /// The rule on `YYYY-MM-DD` days (which order as strings).
    public static func livesIn(moveIn: String, moveOut: String?, on day: String) -> Bool {
        moveIn <= day && (moveOut.map { $0 > day } ?? true)
    }

    /// SQL: residency alias `h` is current on its community's today (needs `h` and a `community_id` expression).
    public static func currentSQL(_ alias: String = "h", community: String) -> String {
        "resides_on(\(alias).move_in, \(alias).move_out, community_today(\(community)))"
    }

    /// The rooms resident-user `user` lives in today, as a subquery (the id is a UUID, never caller text).
    public static func roomsSQL(of user: UserID) -> String {
        """
        SELECT h.room_id FROM residencies h JOIN residents r ON r.id = h.resident_id JOIN rooms rm ON rm.id = h.room_id
        WHERE r.user_id = '\(user.uuid.uuidString)' AND resides_on(h.move_in, h.move_out, community_today(rm.community_id))
        """
    }

    /// Whether resident-user `user` lives in `room` today.
    public static func userLivesIn(_ user: UserID, _ room: RoomID, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.run(
            """
            SELECT 1 FROM residencies h JOIN residents r ON r.id = h.resident_id JOIN rooms rm ON rm.id = h.room_id
            WHERE r.user_id = \(user.uuid) AND h.room_id = \(room.uuid) AND resides_on(h.move_in, h.move_out, community_today(rm.community_id))
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Whether resident `resident` lives in `room` today.
    public static func residentLivesIn(
        _ resident: ResidentID, _ room: RoomID, on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        let rows = try await connection.run(
            """
            SELECT 1 FROM residencies h JOIN rooms rm ON rm.id = h.room_id
            WHERE h.resident_id = \(resident.uuid) AND h.room_id = \(room.uuid)
              AND resides_on(h.move_in, h.move_out, community_today(rm.community_id))
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// The room resident-user `user` lives in today in `community` (the longest-standing one), if any.
    public static func homeOf(
        _ user: UserID, in community: CommunityID, on connection: PostgresConnection, logger: Logger
    ) async throws -> RoomID? {
        let rows = try await connection.run(
            """
            SELECT h.room_id FROM residencies h JOIN residents r ON r.id = h.resident_id JOIN rooms rm ON rm.id = h.room_id
            WHERE r.user_id = \(user.uuid) AND rm.community_id = \(community.uuid)
              AND resides_on(h.move_in, h.move_out, community_today(rm.community_id))
            ORDER BY h.move_in, h.id LIMIT 1
            """, logger: logger)
        for try await room in rows.decode(UUID.self) { return RoomID(room) }
        return nil
    }
}

/// A room's printed label, "3栋2单元1201": building name, unit and number, as SQL's
/// `room_label(building, unit, number)` builds it.
public enum RoomLabel {
    public static func make(building: String, unit: String, number: String) -> String { building + unit + number }
}
