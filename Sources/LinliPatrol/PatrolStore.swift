import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Checkpoints, routes, plans and tasks of patrols and inspections, in the caller's tenant transaction.
public struct PatrolStore: Sendable {
    public init() {}

    public enum RouteKind: String, Sendable, CaseIterable { case patrol, inspection }
    public enum TaskState: String, Sendable, CaseIterable { case pending, inProgress = "in_progress", finished }
    public enum CheckResult: String, Sendable, CaseIterable { case normal, abnormal }
    public enum Review: String, Sendable, CaseIterable { case passed, failed }

    public struct Checkpoint: Sendable, Equatable {
        public var id: UUID
        public var name: String
        public var location: String
        public var code: String
    }

    public struct Route: Sendable, Equatable {
        public var id: UUID
        public var community: CommunityID
        public var name: String
        public var kind: RouteKind
        public var points: [Checkpoint]
    }

    public struct Plan: Sendable {
        public var route: UUID
        public var staff: UserID
        public var times: [String]
        public var weekdays: [Int]
        public var everyDays: Int
        public var startsOn: String
        public var endsOn: String?
        public var windowMinutes: Int
        public init(
            route: UUID, staff: UserID, times: [String], weekdays: [Int], everyDays: Int, startsOn: String, endsOn: String?,
            windowMinutes: Int
        ) {
            self.route = route
            self.staff = staff
            self.times = times
            self.weekdays = weekdays
            self.everyDays = everyDays
            self.startsOn = startsOn
            self.endsOn = endsOn
            self.windowMinutes = windowMinutes
        }
    }

    public struct CheckIn: Sendable, Equatable {
        public var point: UUID
        public var pointName: String
        public var position: Int
        public var result: CheckResult
        public var note: String
        public var photoRefs: [String]
        public var at: Date
    }

    public struct Task: Sendable, Equatable {
        public var id: UUID
        public var community: CommunityID
        public var plan: UUID?
        public var route: UUID
        public var routeName: String
        public var staff: UserID
        public var startsAt: Date
        public var dueAt: Date
        public var state: TaskState
        public var finishedAt: Date?
        public var pointCount: Int
        public var checkedCount: Int
        public var abnormalCount: Int
        public var late: Bool
        /// Finished, or its window has closed: what is unchecked now stays missed.
        public var closed: Bool
        public var review: Review?
        public var reviewNote: String
        public var checkIns: [CheckIn] = []
        public var missedPoints: [UUID] = []
        public var missedCount: Int { closed ? pointCount - checkedCount : 0 }
        public var hasProblems: Bool { late || missedCount > 0 || abnormalCount > 0 }
    }

    /// How early before its start a task may be checked in.
    public static let earlyMinutes = 10

    // MARK: Set-up

    public func createCheckpoint(
        community: CommunityID, name: String, location: String, code: String, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Checkpoint {
        try Scope.requireCommunity(principal, community)
        let id = UUIDv7.make()
        let rows = try await connection.run(
            """
            INSERT INTO patrol_points (id, community_id, name, location, code)
            SELECT \(id), id, \(name), \(location), \(code) FROM communities WHERE id = \(community.uuid)
            ON CONFLICT (community_id, code) DO NOTHING RETURNING 1
            """, logger: logger)
        for try await _ in rows { return Checkpoint(id: id, name: name, location: location, code: code) }
        throw LinliError(.alreadyExists, "code: another checkpoint of this community has this code", field: "code")
    }

    public func createRoute(
        community: CommunityID, name: String, kind: RouteKind, points: [UUID], by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Route {
        try Scope.requireCommunity(principal, community)
        let known = try await connection.run(
            """
            SELECT count(*)::int4 FROM patrol_points WHERE community_id = \(community.uuid) AND id = ANY(\(points)::uuid[])
            """, logger: logger)
        for try await count in known.decode(Int32.self) where Int(count) != points.count {
            throw LinliError.invalid("point_ids", "every point must be a checkpoint of this community")
        }
        let id = UUIDv7.make()
        let inserted = try await connection.run(
            """
            INSERT INTO patrol_routes (id, community_id, name, kind) VALUES (\(id), \(community.uuid), \(name), \(kind.rawValue))
            ON CONFLICT (community_id, name) DO NOTHING RETURNING 1
            """, logger: logger)
        var created = false
        for try await _ in inserted { created = true }
        guard created else { throw LinliError(.alreadyExists, "name: this community already has a route with this name", field: "name") }
        try await connection.run(
            """
            INSERT INTO patrol_route_points (route_id, position, point_id)
            SELECT \(id), ordinality, point FROM unnest(\(points)::uuid[]) WITH ORDINALITY AS t (point, ordinality)
            """, logger: logger)
        return try await route(id, connection, logger)
    }

    /// Saves a plan and generates its tasks for the scheduler's horizon at once.
    public func createPlan(_ plan: Plan, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> (UUID, Int) {
        let route = try await route(plan.route, connection, logger)
        try Scope.requireCommunity(principal, route.community)
        try await PatrolSQL.requireStaff(plan.staff, in: route.community, connection, logger)
        let id = UUIDv7.make()
        try await connection.run(
            """
            INSERT INTO patrol_plans (id, community_id, route_id, staff_id, times, weekdays, every_days, starts_on, ends_on,
                                      window_minutes, created_by)
            VALUES (\(id), \(route.community.uuid), \(plan.route), \(plan.staff.uuid), \(plan.times), \(plan.weekdays.map { Int32($0) }),
                    \(Int32(plan.everyDays)), \(plan.startsOn)::date, \(plan.endsOn)::date, \(Int32(plan.windowMinutes)),
                    \(principal.subjectID.uuid))
            """, logger: logger)
        let generated = try await PatrolSchedulerJob.generate(plan: id, horizonDays: PatrolSchedulerJob.defaultHorizonDays, connection, logger)
        return (id, generated)
    }

    public func stopPlan(_ id: UUID, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.run("UPDATE patrol_plans SET active = false WHERE id = \(id) RETURNING community_id", logger: logger)
        for try await community in rows.decode(UUID.self) { return try Scope.requireCommunity(principal, CommunityID(community)) }
        throw LinliError.notFound("plan")
    }

    public func createTemporaryTask(
        route routeID: UUID, staff: UserID, startsAt: Date, windowMinutes: Int, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Task {
        let route = try await route(routeID, connection, logger)
        try Scope.requireCommunity(principal, route.community)
        try await PatrolSQL.requireStaff(staff, in: route.community, connection, logger)
        let id = UUIDv7.make()
        try await connection.run(
            """
            INSERT INTO patrol_tasks (id, community_id, route_id, staff_id, starts_at, due_at)
            VALUES (\(id), \(route.community.uuid), \(routeID), \(staff.uuid), \(startsAt),
                    \(startsAt) + make_interval(mins => \(Int32(windowMinutes))))
            """, logger: logger)
        return try await task(id, detailed: true, connection, logger)
    }

    // MARK: Work

    public func checkIn(
        task id: UUID, pointCode: String, result: CheckResult, note: String, photoRefs: [String], by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Task {
        // The row lock orders concurrent check-ins on one task, so the last point finishes it exactly once.
        let locked = try await connection.run(
            """
            SELECT community_id, route_id, staff_id, state, starts_at, due_at, now() FROM patrol_tasks WHERE id = \(id) FOR UPDATE
            """, logger: logger)
        var found: (UUID, UUID, UUID, String, Date, Date, Date)?
        for try await row in locked.decode((UUID, UUID, UUID, String, Date, Date, Date).self) { found = row }
        guard let (community, route, staff, state, startsAt, dueAt, now) = found else { throw LinliError.notFound("patrol task") }
        try Scope.requireCommunity(principal, CommunityID(community))
        guard UserID(staff) == principal.subjectID else {
            throw LinliError(.permissionDenied, "task_id: this task is assigned to someone else", field: "task_id")
        }
        if state == TaskState.finished.rawValue {
            throw LinliError(.failedPrecondition, "task_id: the task is finished", field: "task_id")
        }
        if now < startsAt.addingTimeInterval(-Double(Self.earlyMinutes) * 60) {
            throw LinliError(
                .failedPrecondition, "task_id: the task starts at \(Self.iso(startsAt)); check in from \(Self.earlyMinutes) minutes before",
                field: "task_id")
        }
        if now > dueAt {
            throw LinliError(
                .failedPrecondition, "task_id: the task's window closed at \(Self.iso(dueAt)); its unchecked points are missed",
                field: "task_id")
        }
        let points = try await connection.run(
            """
            SELECT p.id, rp.position FROM patrol_points p JOIN patrol_route_points rp ON rp.point_id = p.id AND rp.route_id = \(route)
            WHERE p.community_id = \(community) AND p.code = \(pointCode)
            """, logger: logger)
        var point: (UUID, Int32)?
        for try await row in points.decode((UUID, Int32).self) { point = row }
        guard let (pointID, position) = point else { throw LinliError.invalid("point_code", "is not a checkpoint on this task's route") }
        let inserted = try await connection.run(
            """
            INSERT INTO patrol_checkins (task_id, point_id, position, result, note, photo_refs, by_id)
            VALUES (\(id), \(pointID), \(position), \(result.rawValue), \(note), \(photoRefs), \(principal.subjectID.uuid))
            ON CONFLICT DO NOTHING RETURNING 1
            """, logger: logger)
        var fresh = false
        for try await _ in inserted { fresh = true }
        guard fresh else { throw LinliError(.alreadyExists, "point_code: this point is already checked on this task", field: "point_code") }
        try await connection.run(
            """
            UPDATE patrol_tasks t SET started_at = coalesce(started_at, now()),
                state = CASE WHEN (SELECT count(*) FROM patrol_checkins c WHERE c.task_id = t.id)
                                  = (SELECT count(*) FROM patrol_route_points rp WHERE rp.route_id = t.route_id)
                             THEN 'finished' ELSE 'in_progress' END,
                finished_at = CASE WHEN (SELECT count(*) FROM patrol_checkins c WHERE c.task_id = t.id)
                                        = (SELECT count(*) FROM patrol_route_points rp WHERE rp.route_id = t.route_id)
                                   THEN now() END
            WHERE t.id = \(id)
            """, logger: logger)
        return try await task(id, detailed: true, connection, logger)
    }

    public func finish(task id: UUID, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Task {
        let current = try await task(id, detailed: false, connection, logger)
        try Scope.requireCommunity(principal, current.community)
        guard current.staff == principal.subjectID || principal.role == .manager else {
            throw LinliError(.permissionDenied, "task_id: this task is assigned to someone else", field: "task_id")
        }
        let rows = try await connection.run(
            """
            UPDATE patrol_tasks SET state = 'finished', finished_at = now(), started_at = coalesce(started_at, now())
            WHERE id = \(id) AND state <> 'finished' RETURNING 1
            """, logger: logger)
        for try await _ in rows { return try await task(id, detailed: true, connection, logger) }
        throw LinliError(.failedPrecondition, "task_id: the task is already finished", field: "task_id")
    }

    public func review(
        task id: UUID, result: Review, note: String, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Task {
        let current = try await task(id, detailed: false, connection, logger)
        try Scope.requireCommunity(principal, current.community)
        guard current.closed else {
            throw LinliError(.failedPrecondition, "task_id: the task is neither finished nor past its window", field: "task_id")
        }
        let rows = try await connection.run(
            """
            UPDATE patrol_tasks SET review = \(result.rawValue), review_note = \(note), reviewed_by = \(principal.subjectID.uuid), reviewed_at = now()
            WHERE id = \(id) AND review IS NULL RETURNING 1
            """, logger: logger)
        for try await _ in rows { return try await task(id, detailed: true, connection, logger) }
        throw LinliError(.failedPrecondition, "task_id: the task is already reviewed", field: "task_id")
    }

    // MARK: Reading

    /// Tasks starting in [from, until): a manager's whole community, or the caller's own; by start time.
    public func list(
        community: CommunityID, from: Date, until: Date, problemsOnly: Bool, for principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [Task] {
        try Scope.requireCommunity(principal, community)
        let own = principal.role != .manager
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) WHERE t.community_id = \(community.uuid) AND t.starts_at >= \(from) AND t.starts_at < \(until)
              AND (NOT \(own) OR t.staff_id = \(principal.subjectID.uuid))
            ORDER BY t.starts_at, t.id LIMIT 2000
            """, logger: logger)
        var tasks: [Task] = []
        for try await row in rows { tasks.append(try Self.decode(row)) }
        return problemsOnly ? tasks.filter(\.hasProblems) : tasks
    }

    public func get(_ id: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Task {
        let found = try await task(id, detailed: true, connection, logger)
        try Scope.requireCommunity(principal, found.community)
        guard principal.role == .manager || found.staff == principal.subjectID else { throw LinliError.notFound("patrol task") }
        return found
    }

    func task(_ id: UUID, detailed: Bool, _ connection: PostgresConnection, _ logger: Logger) async throws -> Task {
        let rows = try await connection.run("SELECT \(unescaped: Self.columns) WHERE t.id = \(id)", logger: logger)
        var found: Task?
        for try await row in rows { found = try Self.decode(row) }
        guard var task = found else { throw LinliError.notFound("patrol task") }
        guard detailed else { return task }
        let checks = try await connection.run(
            """
            SELECT c.point_id, p.name, c.position, c.result, c.note, c.photo_refs, c.at
            FROM patrol_checkins c JOIN patrol_points p ON p.id = c.point_id WHERE c.task_id = \(id) ORDER BY c.at, c.position
            """, logger: logger)
        for try await (point, name, position, result, note, photos, at) in checks.decode((UUID, String, Int32, String, String, [String], Date).self) {
            task.checkIns.append(
                CheckIn(
                    point: point, pointName: name, position: Int(position), result: CheckResult(rawValue: result) ?? .normal,
                    note: note, photoRefs: photos, at: at))
        }
        if task.closed {
            let missed = try await connection.run(
                """
                SELECT rp.point_id FROM patrol_route_points rp WHERE rp.route_id = \(task.route)
                  AND NOT EXISTS (SELECT 1 FROM patrol_checkins c WHERE c.task_id = \(id) AND c.point_id = rp.point_id)
                ORDER BY rp.position
                """, logger: logger)
            for try await point in missed.decode(UUID.self) { task.missedPoints.append(point) }
        }
        return task
    }

    func route(_ id: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Route {
        let rows = try await connection.run("SELECT community_id, name, kind FROM patrol_routes WHERE id = \(id)", logger: logger)
        var found: Route?
        for try await (community, name, kind) in rows.decode((UUID, String, String).self) {
            found = Route(id: id, community: CommunityID(community), name: name, kind: RouteKind(rawValue: kind) ?? .patrol, points: [])
        }
        guard var route = found else { throw LinliError.notFound("route") }
        let points = try await connection.run(
            """
            SELECT p.id, p.name, p.location, p.code FROM patrol_route_points rp JOIN patrol_points p ON p.id = rp.point_id
            WHERE rp.route_id = \(id) ORDER BY rp.position
            """, logger: logger)
        for try await (point, name, location, code) in points.decode((UUID, String, String, String).self) {
            route.points.append(Checkpoint(id: point, name: name, location: location, code: code))
        }
        return route
    }

    static let columns = """
        t.id, t.community_id, t.plan_id, t.route_id, rt.name, t.staff_id, t.starts_at, t.due_at, t.state, t.finished_at,
        (SELECT count(*) FROM patrol_route_points rp WHERE rp.route_id = t.route_id)::int4,
        (SELECT count(*) FROM patrol_checkins c WHERE c.task_id = t.id)::int4,
        (SELECT count(*) FROM patrol_checkins c WHERE c.task_id = t.id AND c.result = 'abnormal')::int4,
        coalesce(t.finished_at > t.due_at, now() > t.due_at), t.state = 'finished' OR now() > t.due_at, t.review, t.review_note
        FROM patrol_tasks t JOIN patrol_routes rt ON rt.id = t.route_id
        """

    static func decode(_ row: PostgresRow) throws -> Task {
        let c = row.makeRandomAccess()
        return Task(
            id: try c[0].decode(UUID.self), community: CommunityID(try c[1].decode(UUID.self)), plan: try c[2].decode(UUID?.self),
            route: try c[3].decode(UUID.self), routeName: try c[4].decode(String.self), staff: UserID(try c[5].decode(UUID.self)),
            startsAt: try c[6].decode(Date.self), dueAt: try c[7].decode(Date.self),
            state: TaskState(rawValue: try c[8].decode(String.self)) ?? .pending, finishedAt: try c[9].decode(Date?.self),
            pointCount: Int(try c[10].decode(Int32.self)), checkedCount: Int(try c[11].decode(Int32.self)),
            abnormalCount: Int(try c[12].decode(Int32.self)), late: try c[13].decode(Bool.self), closed: try c[14].decode(Bool.self),
            review: try c[15].decode(String?.self).flatMap(Review.init(rawValue:)), reviewNote: try c[16].decode(String.self))
    }

    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }
}
