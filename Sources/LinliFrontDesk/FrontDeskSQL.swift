import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// SQL shared by the front-desk stores.
enum FrontDeskSQL {
    static func isResident(_ user: UserID, of community: CommunityID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        let rows = try await connection.run(
            """
            SELECT 1 FROM users u JOIN user_communities uc ON uc.user_id = u.id
            WHERE u.id = \(user.uuid) AND u.role = 'resident' AND u.status = 'active' AND uc.community_id = \(community.uuid)
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Runs a write that returns a row only when its fresh random 6-digit code was free (an
    /// `INSERT … ON CONFLICT DO NOTHING RETURNING 1`, or a guarded UPDATE), with new codes until one
    /// is free; partial unique indexes keep live codes unique.
    static func writeWithFreshCode(
        _ connection: PostgresConnection, _ logger: Logger,
        _ insert: (String) -> PostgresQuery
    ) async throws {
        for _ in 0..<8 {
            let code = String(format: "%06d", Int.random(in: 0..<1_000_000))
            for try await _ in try await connection.run(insert(code), logger: logger) { return }
        }
        throw LinliError(.unavailable, "no free code found; retry")
    }
}
