import Foundation
import LinliCore
import Logging
import PostgresNIO

/// Workload figures for a community and a period (orders filed in `[from, to)`).
public struct WorkloadStats: Sendable, Equatable {
    public struct Technician: Sendable, Equatable {
        public var user: UserID
        public var name: String
        public var assigned: Int64
        public var accepted: Int64
        public var completed: Int64
        public var labourMinutes: Int64
        public var averageResponseMinutes: Double
        public var averageCompletionMinutes: Double
        public var overdue: Int64
        public var averageRating: Double
    }

    public struct Category: Sendable, Equatable {
        public var code: String
        public var filed: Int64
        public var completed: Int64
    }

    public var technicians: [Technician]
    public var categories: [Category]
    public var filed: Int64
    public var completed: Int64
    public var completedOnTime: Int64
    public var overdueOpen: Int64

    /// Completed work orders are those that reached COMPLETED at some point and were not
    /// reopened since: states completed, rated and closed.
    static let done = "('completed', 'rated', 'closed')"
    static let open = "('pending', 'dispatched', 'accepted', 'in_progress', 'paused')"

    /// Per technician, for orders of community $1 filed in [$2, $3). `Deploy/bench` runs this
    /// SQL under pgbench as the reference.
    public static let perTechnicianSQL = """
        WITH period AS (
            SELECT * FROM work_orders WHERE community_id = $1 AND created_at >= $2 AND created_at < $3),
        handed AS (
            SELECT e.assignee_id AS user_id, count(DISTINCT e.work_order_id) AS assigned
            FROM work_order_events e JOIN period p ON p.id = e.work_order_id
            WHERE e.action IN ('dispatch', 'transfer', 'claim') GROUP BY 1),
        taken AS (
            SELECT e.actor_id AS user_id, count(DISTINCT e.work_order_id) AS accepted
            FROM work_order_events e JOIN period p ON p.id = e.work_order_id
            WHERE e.action IN ('accept', 'claim') GROUP BY 1),
        held AS (
            SELECT assignee_id AS user_id,
                   count(*) FILTER (WHERE state IN \(done)) AS completed,
                   coalesce(sum(labour_minutes) FILTER (WHERE state IN \(done)), 0) AS labour,
                   coalesce(avg(extract(epoch FROM accepted_at - dispatched_at) / 60) FILTER (WHERE accepted_at IS NOT NULL), 0) AS response,
                   coalesce(avg(extract(epoch FROM completed_at - created_at) / 60) FILTER (WHERE state IN \(done)), 0) AS completion,
                   count(*) FILTER (WHERE (state IN \(open) AND due_at < now())
                                     OR (state IN \(done) AND completed_at > due_at)) AS overdue,
                   coalesce(avg((rating_speed + rating_attitude + rating_quality) / 3.0) FILTER (WHERE rating_speed IS NOT NULL), 0) AS rating
            FROM period WHERE assignee_id IS NOT NULL GROUP BY 1)
        SELECT u.id, u.display_name, coalesce(h.assigned, 0), coalesce(t.accepted, 0), coalesce(d.completed, 0),
               coalesce(d.labour, 0)::int8, coalesce(d.response, 0)::float8, coalesce(d.completion, 0)::float8,
               coalesce(d.overdue, 0), coalesce(d.rating, 0)::float8
        FROM users u
        LEFT JOIN handed h ON h.user_id = u.id LEFT JOIN taken t ON t.user_id = u.id LEFT JOIN held d ON d.user_id = u.id
        WHERE u.id IN (SELECT user_id FROM handed UNION SELECT user_id FROM taken UNION SELECT user_id FROM held)
        ORDER BY u.display_name, u.id
        """

    /// Per category, same parameters.
    public static let perCategorySQL = """
        SELECT category, count(*), count(*) FILTER (WHERE state IN \(done)),
               count(*) FILTER (WHERE state IN \(done) AND completed_at <= due_at),
               count(*) FILTER (WHERE state IN \(open) AND due_at < now())
        FROM work_orders WHERE community_id = $1 AND created_at >= $2 AND created_at < $3
        GROUP BY category ORDER BY category
        """

    /// Reads the figures in the caller's tenant transaction.
    public static func read(
        community: CommunityID, from: Date, to: Date, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> WorkloadStats {
        var stats = WorkloadStats(technicians: [], categories: [], filed: 0, completed: 0, completedOnTime: 0, overdueOpen: 0)
        var binds = PostgresBindings(capacity: 3)
        binds.append(community.uuid)
        binds.append(from)
        binds.append(to)
        let perTechnician = try await connection.run(PostgresQuery(unsafeSQL: Self.perTechnicianSQL, binds: binds), logger: logger)
        for try await (id, name, assigned, accepted, completed, labour, response, completion, overdue, rating) in perTechnician.decode(
            (UUID, String, Int64, Int64, Int64, Int64, Double, Double, Int64, Double).self)
        {
            stats.technicians.append(
                Technician(
                    user: UserID(id), name: name, assigned: assigned, accepted: accepted, completed: completed,
                    labourMinutes: labour, averageResponseMinutes: response, averageCompletionMinutes: completion,
                    overdue: overdue, averageRating: rating))
        }
        let perCategory = try await connection.run(PostgresQuery(unsafeSQL: Self.perCategorySQL, binds: binds), logger: logger)
        for try await (code, filed, completed, onTime, overdue) in perCategory.decode((String, Int64, Int64, Int64, Int64).self) {
            stats.categories.append(Category(code: code, filed: filed, completed: completed))
            stats.filed += filed
            stats.completed += completed
            stats.completedOnTime += onTime
            stats.overdueOpen += overdue
        }
        return stats
    }
}
