import Crypto
import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Repair requests and work orders in the tenant schema. Every method runs inside the
/// caller's tenant transaction; every state change goes through `WorkOrderFlow`, is recorded
/// in `work_order_events`, and queues its notifications in `outbox` in the same transaction.
public struct WorkOrderStore: Sendable {
    public init() {}

    // MARK: Types

    public enum DispatchMode: String, Sendable { case manual, grab, roundRobin = "round_robin" }

    public struct Category: Sendable, Equatable {
        public var community: CommunityID
        public var code: String
        public var name: String
        public var mode: DispatchMode
        public var normalMinutes: Int
        public var emergencyMinutes: Int

        /// The sequence that deals round-robin turns in this category.
        public var rotationSequence: String {
            let digest = Insecure.MD5.hash(data: Data("\(community):\(code)".utf8))
            return "rotation_" + digest.hexString.prefix(20)
        }

        public init(community: CommunityID, code: String, name: String, mode: DispatchMode, normalMinutes: Int, emergencyMinutes: Int) {
            self.community = community
            self.code = code
            self.name = name
            self.mode = mode
            self.normalMinutes = normalMinutes
            self.emergencyMinutes = emergencyMinutes
        }
    }

    public struct Repair: Sendable {
        public var community: CommunityID
        public var category: String
        public var emergency: Bool
        public var channel: String
        public var building: BuildingID?
        public var location: String
        public var description: String
        public var photoRefs: [String]
        public var preferredAt: Date?
        public var onBehalfOf: UserID?
        public var room: RoomID?

        public init(
            community: CommunityID, category: String, emergency: Bool, channel: String, building: BuildingID?,
            location: String, description: String, photoRefs: [String], preferredAt: Date?, onBehalfOf: UserID?,
            room: RoomID? = nil
        ) {
            self.room = room
            self.community = community
            self.category = category
            self.emergency = emergency
            self.channel = channel
            self.building = building
            self.location = location
            self.description = description
            self.photoRefs = photoRefs
            self.preferredAt = preferredAt
            self.onBehalfOf = onBehalfOf
        }
    }

    public struct Completion: Sendable, Equatable {
        public var labourMinutes: Int
        public var materials: String
        public var chargeFen: Int64
        public init(labourMinutes: Int, materials: String, chargeFen: Int64) {
            self.labourMinutes = labourMinutes
            self.materials = materials
            self.chargeFen = chargeFen
        }
    }

    public struct Rating: Sendable, Equatable {
        public var speed: Int
        public var attitude: Int
        public var quality: Int
        public var comment: String
        public init(speed: Int, attitude: Int, quality: Int, comment: String) {
            self.speed = speed
            self.attitude = attitude
            self.quality = quality
            self.comment = comment
        }
    }

    public struct Event: Sendable, Equatable {
        public var action: String
        public var from: WorkOrderFlow.State?
        public var to: WorkOrderFlow.State
        public var actor: UserID
        public var assignee: UserID?
        public var note: String
        public var at: Date
    }

    public struct WorkOrder: Sendable, Equatable {
        public var id: WorkOrderID
        public var community: CommunityID
        public var category: String
        public var emergency: Bool
        public var channel: String
        public var state: WorkOrderFlow.State
        public var building: BuildingID?
        public var location: String
        public var description: String
        public var photoRefs: [String]
        public var preferredAt: Date?
        public var requester: UserID
        public var filedBy: UserID
        public var assignee: UserID?
        public var createdAt: Date
        public var dueAt: Date
        public var overdue: Bool
        public var reopenCount: Int
        public var completion: Completion?
        public var rating: Rating?
        public var room: RoomID?
        public var roomLabel: String
        public var events: [Event] = []
        public var returnVisits: [ReturnVisit] = []
    }

    public struct ReturnVisit: Sendable, Equatable {
        public var visitedBy: UserID
        public var reached: Bool
        public var satisfaction: Int?
        public var note: String
        public var at: Date
    }

    public struct Transition: Sendable {
        public var action: WorkOrderFlow.Action
        public var assignee: UserID?
        public var note: String
        public var completion: Completion?
        public var rating: Rating?
        public init(action: WorkOrderFlow.Action, assignee: UserID? = nil, note: String = "", completion: Completion? = nil, rating: Rating? = nil) {
            self.action = action
            self.assignee = assignee
            self.note = note
            self.completion = completion
            self.rating = rating
        }
    }

    // MARK: Configuration

    /// Creates or replaces a category of `community`.
    public func configure(_ category: Category, on connection: PostgresConnection, logger: Logger) async throws {
        guard try await exists("SELECT 1 FROM communities WHERE id = \(category.community.uuid)", connection, logger) else {
            throw LinliError.notFound("community")
        }
        try await connection.run(
            """
            INSERT INTO repair_categories (community_id, code, name, dispatch_mode, normal_minutes, emergency_minutes)
            VALUES (\(category.community.uuid), \(category.code), \(category.name), \(category.mode.rawValue),
                    \(category.normalMinutes), \(category.emergencyMinutes))
            ON CONFLICT (community_id, code) DO UPDATE SET name = EXCLUDED.name, dispatch_mode = EXCLUDED.dispatch_mode,
                normal_minutes = EXCLUDED.normal_minutes, emergency_minutes = EXCLUDED.emergency_minutes
            """, logger: logger)
        // The name is "rotation_" + 20 hex digits: safe to interpolate.
        try await connection.run(
            PostgresQuery(unsafeSQL: "CREATE SEQUENCE IF NOT EXISTS \(category.rotationSequence) AS bigint CYCLE"),
            logger: logger)
    }

    /// Sets a technician's categories in `community` and their duty.
    public func setTechnician(
        _ user: UserID, community: CommunityID, categories: [String], onDuty: Bool,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard
            try await exists(
                """
                SELECT 1 FROM users u JOIN user_communities uc ON uc.user_id = u.id
                WHERE u.id = \(user.uuid) AND u.role = 'technician' AND uc.community_id = \(community.uuid)
                """, connection, logger)
        else {
            throw LinliError.invalid("user_id", "is not a technician of this community")
        }
        let rows = try await connection.run(
            """
            SELECT count(*) FROM repair_categories WHERE community_id = \(community.uuid) AND code = ANY(\(categories))
            """, logger: logger)
        for try await known in rows.decode(Int.self) where known != Set(categories).count {
            throw LinliError.invalid("category_codes", "unknown category in this community")
        }
        try await connection.run("DELETE FROM technician_skills WHERE user_id = \(user.uuid) AND community_id = \(community.uuid)", logger: logger)
        try await connection.run(
            """
            INSERT INTO technician_skills (user_id, community_id, code)
            SELECT \(user.uuid), \(community.uuid), unnest(\(categories)::text[]) ON CONFLICT DO NOTHING
            """, logger: logger)
        try await setDuty(user, onDuty: onDuty, on: connection, logger: logger)
    }

    /// Puts a staff member on or off duty.
    public func setDuty(_ user: UserID, onDuty: Bool, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            INSERT INTO staff_duty (user_id, on_duty) VALUES (\(user.uuid), \(onDuty))
            ON CONFLICT (user_id) DO UPDATE SET on_duty = EXCLUDED.on_duty, changed_at = now()
            """, logger: logger)
    }

    // MARK: Filing

    /// Files a repair for `principal`; dispatches at once in a round-robin category.
    public func file(_ repair: Repair, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> WorkOrder {
        try Scope.requireCommunity(principal, repair.community)
        let category = try await category(repair.community, repair.category, connection, logger)
        var repair = repair
        if let room = repair.room {
            // The room decides the building; a resident files only for a room they live in.
            guard let roomBuilding = try await Scope.building(of: room, in: repair.community, on: connection, logger: logger) else {
                throw LinliError.invalid("room_id", "is not a room of this community")
            }
            if let building = repair.building, building != roomBuilding {
                throw LinliError.invalid("building_id", "is not the building of room_id")
            }
            repair.building = roomBuilding
            if let resident = principal.role == .resident ? principal.subjectID : repair.onBehalfOf,
                try await !Residency.userLivesIn(resident, room, on: connection, logger: logger)
            {
                throw LinliError.invalid("room_id", principal.role == .resident ? "is not a room you live in" : "is not a room the resident lives in")
            }
        }
        let requester: UserID
        if principal.role == .resident {
            if repair.onBehalfOf != nil { throw LinliError.invalid("on_behalf_of", "only staff file on a resident's behalf") }
            if repair.room == nil, let building = repair.building, !principal.buildingIDs.contains(building) {
                throw LinliError.invalid("building_id", "is not one of your buildings")
            }
            requester = principal.subjectID
        } else if let resident = repair.onBehalfOf {
            guard
                try await exists(
                    """
                    SELECT 1 FROM users u JOIN user_communities uc ON uc.user_id = u.id
                    WHERE u.id = \(resident.uuid) AND u.role = 'resident' AND uc.community_id = \(repair.community.uuid)
                    """, connection, logger)
            else {
                throw LinliError.invalid("on_behalf_of", "is not a resident of this community")
            }
            requester = resident
        } else {
            requester = principal.subjectID
        }
        if let building = repair.building,
            try await !exists(
                "SELECT 1 FROM buildings WHERE id = \(building.uuid) AND community_id = \(repair.community.uuid)", connection, logger)
        {
            throw LinliError.invalid("building_id", "is not a building of this community")
        }
        let id = WorkOrderID.make()
        let minutes = repair.emergency ? category.emergencyMinutes : category.normalMinutes
        try await connection.run(
            """
            INSERT INTO work_orders (id, community_id, category, priority, channel, state, building_id, location, description,
                                     photo_refs, preferred_at, requester_id, filed_by, due_at, room_id)
            VALUES (\(id.uuid), \(repair.community.uuid), \(repair.category), \(repair.emergency ? "emergency" : "normal"),
                    \(repair.channel), 'pending', \(repair.building?.uuid), \(repair.location), \(repair.description),
                    \(repair.photoRefs), \(repair.preferredAt), \(requester.uuid), \(principal.subjectID.uuid),
                    now() + \(minutes) * interval '1 minute', \(repair.room?.uuid))
            """, logger: logger)
        try await record(
            id, action: "file", from: nil, to: .pending, actor: principal.subjectID, assignee: nil,
            note: "", connection, logger)
        try await MetricDelta.record(.workOrdersFiled, delta: 1, community: repair.community, on: connection, logger: logger)
        var order = try await load(id, connection, logger, events: false)
        if category.mode == .roundRobin, let technician = try await dispatchInTurn(id, category, actor: principal.subjectID, connection, logger) {
            order.state = .dispatched
            order.assignee = technician
        }
        return order
    }

    /// Dispatches a new order to the next on-duty technician of its category, in one statement.
    /// Turns come from the category's sequence: concurrent filings on any server take
    /// consecutive turns without waiting on a lock, and the rotation survives restarts. A
    /// filing that rolls back still spends its turn, so a technician may rarely be skipped once.
    /// Returns nil when nobody is on duty; the order then waits for a manager.
    private func dispatchInTurn(
        _ id: WorkOrderID, _ category: Category, actor: UserID,
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> UserID? {
        let rows = try await connection.run(
            """
            WITH pool AS (
                SELECT ts.user_id, row_number() OVER (ORDER BY ts.user_id) - 1 AS slot, count(*) OVER () AS size
                FROM technician_skills ts
                JOIN staff_duty d ON d.user_id = ts.user_id AND d.on_duty
                JOIN users u ON u.id = ts.user_id AND u.status = 'active'
                WHERE ts.community_id = \(category.community.uuid) AND ts.code = \(category.code)),
            turn AS (SELECT nextval(\(category.rotationSequence)::regclass) - 1 AS taken WHERE EXISTS (SELECT 1 FROM pool)),
            pick AS (SELECT pool.user_id FROM pool, turn WHERE pool.slot = turn.taken % pool.size),
            dispatched AS (
                UPDATE work_orders SET state = 'dispatched', assignee_id = pick.user_id, dispatched_at = now()
                FROM pick WHERE work_orders.id = \(id.uuid) RETURNING pick.user_id),
            event AS (
                INSERT INTO work_order_events (work_order_id, action, from_state, to_state, actor_id, assignee_id, note)
                SELECT \(id.uuid), 'dispatch', 'pending', 'dispatched', \(actor.uuid), user_id, 'round robin' FROM dispatched)
            SELECT user_id FROM dispatched
            """, logger: logger)
        var picked: UserID?
        for try await user in rows.decode(UUID.self) { picked = UserID(user) }
        if let picked { try await assigned(id, to: picked, connection, logger) }
        return picked
    }

    // MARK: Transitions

    /// Takes `transition` on work order `id` as `principal`.
    public func transition(
        _ id: WorkOrderID, _ transition: Transition, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> WorkOrder {
        let order = try await load(id, connection, logger, events: false, lock: true)
        try visible(order, to: principal)
        var actors: Set<WorkOrderFlow.Actor> = []
        if principal.role == .manager { actors.insert(.manager) }
        if order.assignee == principal.subjectID { actors.insert(.assignee) }
        if order.requester == principal.subjectID { actors.insert(.requester) }
        if principal.role == .technician, transition.action == .claim {
            let category = try await category(order.community, order.category, connection, logger)
            if category.mode == .grab, try await skilled(principal.subjectID, category, connection, logger) {
                actors.insert(.skilledTechnician)
            }
        }
        let next = try WorkOrderFlow.next(transition.action, from: order.state, as: actors)
        var transition = transition
        var billable: Linli_Events_V1_WorkOrderCharged?
        switch transition.action {
        case .dispatch, .transfer:
            guard let assignee = transition.assignee else { throw LinliError.invalid("assignee_id", "is required for \(transition.action.rawValue)") }
            if assignee == order.assignee { throw LinliError.invalid("assignee_id", "already holds this work order") }
            let category = try await category(order.community, order.category, connection, logger)
            guard try await skilled(assignee, category, connection, logger) else {
                throw LinliError.invalid("assignee_id", "is not a technician of this category in this community")
            }
        case .claim:
            transition.assignee = principal.subjectID
        case .pause, .return:
            if transition.note.isEmpty { throw LinliError.invalid("note", "is required for \(transition.action.rawValue)") }
        case .complete:
            guard let completion = transition.completion else { throw LinliError.invalid("completion", "is required") }
            if !(0...100_000).contains(completion.labourMinutes) { throw LinliError.invalid("completion.labour_minutes", "must be 0 to 100000") }
            if completion.chargeFen < 0 { throw LinliError.invalid("completion.charge_fen", "must not be negative") }
            if completion.chargeFen > 0 {
                // The bill goes to the work order's room, or to the room the requester lives in today.
                let home = try await Residency.homeOf(order.requester, in: order.community, on: connection, logger: logger)
                guard let room = order.room ?? home else {
                    throw LinliError.invalid("completion.charge_fen", "the work order has no room to bill; set its room or charge nothing")
                }
                var charge = Linli_Events_V1_WorkOrderCharged()
                charge.workOrderID = id.description
                charge.communityID = order.community.description
                charge.roomID = room.description
                charge.chargeFen = completion.chargeFen
                charge.completedOn = try await BusinessDay.of(order.community, on: connection, logger: logger).today()
                billable = charge
            }
        case .rate:
            guard let rating = transition.rating else { throw LinliError.invalid("rating", "is required") }
            for (field, score) in [("speed", rating.speed), ("attitude", rating.attitude), ("quality", rating.quality)]
            where !(1...5).contains(score) {
                throw LinliError.invalid("rating.\(field)", "must be 1 to 5")
            }
        default:
            break
        }
        try await apply(
            transition.action, to: id, from: order.state, to: next, actor: principal.subjectID,
            transition: transition, connection, logger)
        if transition.action == .complete {
            try await MetricDelta.record(.workOrdersCompleted, delta: 1, community: order.community, on: connection, logger: logger)
            if let charge = billable {
                try await Outbox.enqueue(Topic.workOrderCharged, charge, to: order.requester, on: connection, logger: logger)
            }
            var completed = Linli_Events_V1_WorkOrderCompleted()
            completed.workOrderID = id.description
            try await Outbox.enqueue(Topic.workOrderCompleted, completed, to: order.requester, on: connection, logger: logger)
        }
        return try await load(id, connection, logger, events: true)
    }

    /// Writes one state change: the row, its event and the assignee's notification.
    private func apply(
        _ action: WorkOrderFlow.Action, to id: WorkOrderID, from: WorkOrderFlow.State, to next: WorkOrderFlow.State,
        actor: UserID, transition: Transition, _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        let assigns = [.dispatch, .transfer, .claim].contains(action)
        let clears = [.return, .reopen].contains(action)
        let completion = transition.completion
        let rating = transition.rating
        try await connection.run(
            """
            UPDATE work_orders SET
                state = \(next.rawValue),
                assignee_id = CASE WHEN \(assigns) THEN \(transition.assignee?.uuid) WHEN \(clears) THEN NULL ELSE assignee_id END,
                dispatched_at = CASE WHEN \(assigns) THEN now() ELSE dispatched_at END,
                accepted_at = CASE WHEN \(action == .accept || action == .claim) THEN now() ELSE accepted_at END,
                completed_at = CASE WHEN \(action == .complete) THEN now() WHEN \(action == .reopen) THEN NULL ELSE completed_at END,
                closed_at = CASE WHEN \(action == .close) THEN now() ELSE closed_at END,
                reopen_count = reopen_count + CASE WHEN \(action == .reopen) THEN 1 ELSE 0 END,
                due_at = CASE WHEN \(action == .reopen)
                    THEN now() + make_interval(mins => (SELECT CASE WHEN priority = 'emergency' THEN c.emergency_minutes ELSE c.normal_minutes END
                         FROM repair_categories c WHERE c.community_id = work_orders.community_id AND c.code = work_orders.category))
                    ELSE due_at END,
                labour_minutes = coalesce(\(completion.map { $0.labourMinutes }), labour_minutes),
                materials = coalesce(\(completion?.materials), materials),
                charge_fen = coalesce(\(completion?.chargeFen), charge_fen),
                rating_speed = coalesce(\(rating.map { Int16($0.speed) }), rating_speed),
                rating_attitude = coalesce(\(rating.map { Int16($0.attitude) }), rating_attitude),
                rating_quality = coalesce(\(rating.map { Int16($0.quality) }), rating_quality),
                rating_comment = coalesce(\(rating?.comment), rating_comment)
            WHERE id = \(id.uuid)
            """, logger: logger)
        try await record(
            id, action: action.rawValue, from: from, to: next, actor: actor,
            assignee: assigns ? transition.assignee : nil, note: transition.note, connection, logger)
        if assigns, action != .claim, let assignee = transition.assignee {
            try await assigned(id, to: assignee, connection, logger)
        }
    }

    private func record(
        _ id: WorkOrderID, action: String, from: WorkOrderFlow.State?, to: WorkOrderFlow.State, actor: UserID,
        assignee: UserID?, note: String, _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        try await connection.run(
            """
            INSERT INTO work_order_events (work_order_id, action, from_state, to_state, actor_id, assignee_id, note)
            VALUES (\(id.uuid), \(action), \(from?.rawValue), \(to.rawValue), \(actor.uuid), \(assignee?.uuid), \(note))
            """, logger: logger)
    }

    private func assigned(_ id: WorkOrderID, to assignee: UserID, _ connection: PostgresConnection, _ logger: Logger) async throws {
        var message = Linli_Events_V1_WorkOrderAssigned()
        message.workOrderID = id.description
        try await Outbox.enqueue(Topic.workOrderAssigned, message, to: assignee, on: connection, logger: logger)
    }

    // MARK: Return visits

    /// Staff record a call back to the resident after the work is done.
    public func recordReturnVisit(
        _ id: WorkOrderID, reached: Bool, satisfaction: Int?, note: String, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> WorkOrder {
        let order = try await load(id, connection, logger, events: false)
        try Scope.requireCommunity(principal, order.community)
        guard [.completed, .rated, .closed].contains(order.state) else {
            throw LinliError(
                .failedPrecondition, "work_order_id: return visits follow completion; the order is \(order.state.rawValue)",
                field: "work_order_id")
        }
        try await connection.run(
            """
            INSERT INTO work_order_return_visits (id, work_order_id, visited_by, reached, satisfaction, note)
            VALUES (\(UUIDv7.make()), \(id.uuid), \(principal.subjectID.uuid), \(reached), \(satisfaction.map { Int16($0) }), \(note))
            """, logger: logger)
        return try await load(id, connection, logger, events: true)
    }

    // MARK: Reading

    /// A work order `principal` may see, with its history.
    public func get(_ id: WorkOrderID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> WorkOrder {
        let order = try await load(id, connection, logger, events: true)
        try visible(order, to: principal)
        return order
    }

    /// Residents see what they requested; staff see their communities' orders.
    private func visible(_ order: WorkOrder, to principal: Principal) throws(LinliError) {
        let allowed =
            principal.role == .resident
            ? order.requester == principal.subjectID
            : principal.canAct(in: order.community)
        if !allowed { throw LinliError.notFound("work order") }
    }

    public struct Filter: Sendable {
        public var community: CommunityID
        public var state: WorkOrderFlow.State?
        public var assignedToMe: Bool
        public var overdueOnly: Bool
        public var poolOnly: Bool
        public var after: (Date, UUID)?
        public var limit: Int
        public init(
            community: CommunityID, state: WorkOrderFlow.State?, assignedToMe: Bool, overdueOnly: Bool, poolOnly: Bool,
            after: (Date, UUID)?, limit: Int
        ) {
            self.community = community
            self.state = state
            self.assignedToMe = assignedToMe
            self.overdueOnly = overdueOnly
            self.poolOnly = poolOnly
            self.after = after
            self.limit = limit
        }
    }

    /// A page of orders, newest first.
    public func list(_ filter: Filter, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> [WorkOrder] {
        try Scope.requireCommunity(principal, filter.community)
        let me = principal.subjectID.uuid
        let residentOnly = principal.role == .resident
        let hasCursor = filter.after != nil
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) FROM work_orders w
            WHERE w.community_id = \(filter.community.uuid)
              AND (NOT \(residentOnly) OR w.requester_id = \(me))
              AND (\(filter.state?.rawValue)::text IS NULL OR w.state = \(filter.state?.rawValue)::text)
              AND (NOT \(filter.assignedToMe) OR w.assignee_id = \(me))
              AND (NOT \(filter.overdueOnly) OR (w.due_at < now() AND w.state IN ('pending', 'dispatched', 'accepted', 'in_progress', 'paused')))
              AND (NOT \(filter.poolOnly) OR (w.state = 'pending' AND EXISTS (
                    SELECT 1 FROM repair_categories c WHERE c.community_id = w.community_id AND c.code = w.category AND c.dispatch_mode = 'grab')
                    AND EXISTS (SELECT 1 FROM technician_skills ts WHERE ts.user_id = \(me) AND ts.community_id = w.community_id AND ts.code = w.category)))
              AND (NOT \(hasCursor) OR (w.created_at, w.id) < (\(filter.after?.0 ?? Date()), \(filter.after?.1 ?? UUID())))
            ORDER BY w.created_at DESC, w.id DESC
            LIMIT \(filter.limit)
            """, logger: logger)
        var result: [WorkOrder] = []
        for try await row in rows { result.append(try Self.decode(row)) }
        return result
    }

    // MARK: Helpers

    private func category(
        _ community: CommunityID, _ code: String, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> Category {
        let rows = try await connection.run(
            """
            SELECT name, dispatch_mode, normal_minutes, emergency_minutes FROM repair_categories
            WHERE community_id = \(community.uuid) AND code = \(code)
            """, logger: logger)
        for try await (name, mode, normal, emergency) in rows.decode((String, String, Int, Int).self) {
            return Category(
                community: community, code: code, name: name, mode: DispatchMode(rawValue: mode) ?? .manual,
                normalMinutes: normal, emergencyMinutes: emergency)
        }
        throw LinliError.invalid("category", "is not a repair category of this community")
    }

    private func skilled(_ user: UserID, _ category: Category, _ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        try await exists(
            """
            SELECT 1 FROM technician_skills ts JOIN users u ON u.id = ts.user_id AND u.status = 'active'
            WHERE ts.user_id = \(user.uuid) AND ts.community_id = \(category.community.uuid) AND ts.code = \(category.code)
            """, connection, logger)
    }

    private func exists(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        for try await _ in try await connection.run(query, logger: logger) { return true }
        return false
    }

    static let columns = """
        w.id, w.community_id, w.category, w.priority, w.channel, w.state, w.building_id, w.location, w.description,
        w.photo_refs, w.preferred_at, w.requester_id, w.filed_by, w.assignee_id, w.created_at, w.due_at,
        w.due_at < now() AND w.state IN ('pending', 'dispatched', 'accepted', 'in_progress', 'paused'),
        w.reopen_count, w.labour_minutes, w.materials, w.charge_fen,
        w.rating_speed, w.rating_attitude, w.rating_quality, w.rating_comment, w.room_id,
        coalesce(room_label_of(w.room_id), '')
        """

    private func load(
        _ id: WorkOrderID, _ connection: PostgresConnection, _ logger: Logger, events: Bool,
        lock: Bool = false
    ) async throws -> WorkOrder {
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) FROM work_orders w WHERE w.id = \(id.uuid) \(unescaped: lock ? "FOR UPDATE" : "")
            """, logger: logger)
        var found: WorkOrder?
        for try await row in rows { found = try Self.decode(row) }
        guard var order = found else { throw LinliError.notFound("work order") }
        if events {
            let history = try await connection.run(
                """
                SELECT action, from_state, to_state, actor_id, assignee_id, note, at FROM work_order_events
                WHERE work_order_id = \(id.uuid) ORDER BY id
                """, logger: logger)
            for try await (action, from, to, actor, assignee, note, at) in history.decode((String, String?, String, UUID, UUID?, String, Date).self) {
                order.events.append(
                    Event(
                        action: action, from: from.flatMap(WorkOrderFlow.State.init(rawValue:)),
                        to: WorkOrderFlow.State(rawValue: to) ?? .pending, actor: UserID(actor),
                        assignee: assignee.map(UserID.init), note: note, at: at))
            }
            let visits = try await connection.run(
                """
                SELECT visited_by, reached, satisfaction, note, at FROM work_order_return_visits WHERE work_order_id = \(id.uuid) ORDER BY at
                """, logger: logger)
            for try await (by, reached, satisfaction, note, at) in visits.decode((UUID, Bool, Int16?, String, Date).self) {
                order.returnVisits.append(
                    ReturnVisit(
                        visitedBy: UserID(by), reached: reached, satisfaction: satisfaction.map(Int.init),
                        note: note, at: at))
            }
        }
        return order
    }

    static func decode(_ row: PostgresRow) throws -> WorkOrder {
        let cells = row.makeRandomAccess()
        func at<T: PostgresDecodable>(_ index: Int, as type: T.Type = T.self) throws -> T { try cells[index].decode(T.self) }
        let completion = try at(18, as: Int?.self).map { labour in
            Completion(labourMinutes: labour, materials: try at(19, as: String?.self) ?? "", chargeFen: try at(20, as: Int64?.self) ?? 0)
        }
        let rating = try at(21, as: Int16?.self).map { speed in
            Rating(
                speed: Int(speed), attitude: Int(try at(22, as: Int16?.self) ?? 0), quality: Int(try at(23, as: Int16?.self) ?? 0),
                comment: try at(24, as: String?.self) ?? "")
        }
        return WorkOrder(
            id: WorkOrderID(try at(0)), community: CommunityID(try at(1)), category: try at(2),
            emergency: try at(3, as: String.self) == "emergency", channel: try at(4),
            state: WorkOrderFlow.State(rawValue: try at(5)) ?? .pending,
            building: try at(6, as: UUID?.self).map(BuildingID.init), location: try at(7), description: try at(8),
            photoRefs: try at(9), preferredAt: try at(10), requester: UserID(try at(11)), filedBy: UserID(try at(12)),
            assignee: try at(13, as: UUID?.self).map(UserID.init), createdAt: try at(14), dueAt: try at(15),
            overdue: try at(16), reopenCount: try at(17), completion: completion, rating: rating,
            room: try at(25, as: UUID?.self).map(RoomID.init), roomLabel: try at(26))
    }
}
