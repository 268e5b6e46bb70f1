import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

enum PatrolSQL {
    static func requireStaff(_ user: UserID, in community: CommunityID, _ connection: PostgresConnection, _ logger: Logger) async throws {
        let rows = try await connection.run(
            """
            SELECT 1 FROM users u JOIN user_communities uc ON uc.user_id = u.id AND uc.community_id = \(community.uuid)
            WHERE u.id = \(user.uuid) AND u.status = 'active' AND u.role IN ('manager', 'technician', 'guard')
            """, logger: logger)
        for try await _ in rows { return }
        throw LinliError.invalid("staff_id", "is not an active guard, technician or manager of this community")
    }
}
