import Foundation
import LinliCore
import Logging
import PostgresNIO

/// A signed-in resident's own resident record in a community: residents act on their own
/// (their visitors, parking reservations, points, door access). One query, one refusal text.
public enum OwnResident {
    public static func of(_ user: UserID, community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> UUID {
        let rows = try await connection.run(
            "SELECT id FROM residents WHERE user_id = \(user.uuid) AND community_id = \(community.uuid)", logger: logger)
        for try await id in rows.decode(UUID.self) { return id }
        throw LinliError(.permissionDenied, "you are not a registered resident of this community")
    }
}
