import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Complaints and suggestions in the tenant schema; runs inside the caller's transaction.
public struct ComplaintStore: Sendable {
    public init() {}

    public enum State: String, Sendable, CaseIterable { case open, handling, resolved, closed, withdrawn }
    public enum Action: String, Sendable { case staffReply, resolve, rate, withdraw }

    public static let flow = Transitions<State, Action>([
        .staffReply: (from: [.open, .handling], to: .handling),
        .resolve: (from: [.open, .handling], to: .resolved),
        .rate: (from: [.resolved], to: .closed),
        .withdraw: (from: [.open, .handling], to: .withdrawn),
    ])

    public struct Message: Sendable, Equatable {
        public var author: UserID
        public var body: String
        public var at: Date
        public var fromStaff: Bool
    }

    public struct Complaint: Sendable, Equatable {
        public var id: UUID
        public var community: CommunityID
        public var suggestion: Bool
        public var subject: String
        public var content: String
        public var photoRefs: [String]
        public var filedBy: UserID
        public var state: State
        public var resolution: String
        public var satisfaction: Int?
        public var satisfactionComment: String
        public var createdAt: Date
        public var resolvedAt: Date?
        public var messages: [Message] = []
    }

    /// A resident files a complaint or suggestion in one of their communities.
    public func file(
        community: CommunityID, suggestion: Bool, subject: String, content: String, photoRefs: [String],
        by principal: Principal, on connection: PostgresConnection, logger: Logger
    ) async throws -> Complaint {
        try Scope.requireCommunity(principal, community)
        let id = UUIDv7.make()
        try await connection.run(
            """
            INSERT INTO complaints (id, community_id, kind, subject, content, photo_refs, filed_by, state)
            VALUES (\(id), \(community.uuid), \(suggestion ? "suggestion" : "complaint"), \(subject), \(content), \(photoRefs),
                    \(principal.subjectID.uuid), 'open')
            """, logger: logger)
        if !suggestion {
            try await MetricDelta.record(.complaintsFiled, delta: 1, community: community, on: connection, logger: logger)
        }
        return try await load(id, connection, logger)
    }

    /// Adds a message: staff of the community, or the resident who filed it.
    public func reply(_ id: UUID, body: String, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Complaint
    {
        let complaint = try await load(id, connection, logger, lock: true)
        try visible(complaint, to: principal)
        let staff = principal.role.isStaff
        if staff {
            _ = try Self.flow.next(.staffReply, from: complaint.state)
        } else if ![.open, .handling].contains(complaint.state) {
            throw LinliError(.failedPrecondition, "the complaint is \(complaint.state.rawValue); replies are closed")
        }
        try await connection.run(
            """
            INSERT INTO complaint_messages (complaint_id, author_id, from_staff, body) VALUES (\(id), \(principal.subjectID.uuid), \(staff), \(body))
            """, logger: logger)
        if staff { try await set(id, .handling, connection, logger) }
        return try await load(id, connection, logger, messages: true)
    }

    /// Staff record the resolution.
    public func resolve(
        _ id: UUID, resolution: String, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Complaint {
        let complaint = try await load(id, connection, logger, lock: true)
        try visible(complaint, to: principal)
        guard principal.role == .manager else { throw LinliError(.permissionDenied, "only a manager resolves complaints") }
        _ = try Self.flow.next(.resolve, from: complaint.state)
        try await connection.run(
            """
            UPDATE complaints SET state = 'resolved', resolution = \(resolution), resolved_at = now() WHERE id = \(id)
            """, logger: logger)
        try await notify(complaint.filedBy, id, connection, logger)
        return try await load(id, connection, logger, messages: true)
    }

    /// The resident who filed it rates the resolution, which closes it.
    public func rate(
        _ id: UUID, satisfaction: Int, comment: String, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Complaint {
        let complaint = try await load(id, connection, logger, lock: true)
        try visible(complaint, to: principal)
        guard complaint.filedBy == principal.subjectID else { throw LinliError(.permissionDenied, "only the resident who filed it rates it") }
        _ = try Self.flow.next(.rate, from: complaint.state)
        try await connection.run(
            """
            UPDATE complaints SET state = 'closed', satisfaction = \(Int16(satisfaction)), satisfaction_comment = \(comment) WHERE id = \(id)
            """, logger: logger)
        return try await load(id, connection, logger, messages: true)
    }

    /// The resident who filed it withdraws it before it is resolved.
    public func withdraw(_ id: UUID, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Complaint {
        let complaint = try await load(id, connection, logger, lock: true)
        try visible(complaint, to: principal)
        guard complaint.filedBy == principal.subjectID else { throw LinliError(.permissionDenied, "only the resident who filed it withdraws it") }
        try await set(id, try Self.flow.next(.withdraw, from: complaint.state), connection, logger)
        return try await load(id, connection, logger, messages: true)
    }

    public func get(_ id: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Complaint {
        let complaint = try await load(id, connection, logger, messages: true)
        try visible(complaint, to: principal)
        return complaint
    }

    public func list(
        community: CommunityID, state: State?, after: (Date, UUID)?, limit: Int, for principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [Complaint] {
        try Scope.requireCommunity(principal, community)
        let own = principal.role == .resident
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) FROM complaints
            WHERE community_id = \(community.uuid) AND (NOT \(own) OR filed_by = \(principal.subjectID.uuid))
              AND (\(state?.rawValue)::text IS NULL OR state = \(state?.rawValue)::text)
              AND (\(after == nil) OR (created_at, id) < (\(after?.0 ?? Date()), \(after?.1 ?? UUID())))
            ORDER BY created_at DESC, id DESC LIMIT \(limit)
            """, logger: logger)
        var result: [Complaint] = []
        for try await row in rows { result.append(try Self.decode(row)) }
        return result
    }

    private func visible(_ complaint: Complaint, to principal: Principal) throws(LinliError) {
        let allowed =
            principal.role == .resident
            ? complaint.filedBy == principal.subjectID
            : principal.role.isStaff && principal.canAct(in: complaint.community)
        if !allowed { throw LinliError.notFound("complaint") }
    }

    private func set(_ id: UUID, _ state: State, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.run("UPDATE complaints SET state = \(state.rawValue) WHERE id = \(id)", logger: logger)
    }

    private func notify(_ recipient: UserID, _ id: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws {
        var resolved = Linli_Events_V1_ComplaintResolved()
        resolved.complaintID = id.uuidString.lowercased()
        try await Outbox.enqueue(Topic.complaintResolved, resolved, to: recipient, on: connection, logger: logger)
    }

    static let columns = """
        id, community_id, kind, subject, content, photo_refs, filed_by, state, resolution, satisfaction,
        satisfaction_comment, created_at, resolved_at
        """

    private func load(
        _ id: UUID, _ connection: PostgresConnection, _ logger: Logger, lock: Bool = false,
        messages: Bool = false
    ) async throws -> Complaint {
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) FROM complaints WHERE id = \(id) \(unescaped: lock ? "FOR UPDATE" : "")
            """, logger: logger)
        var found: Complaint?
        for try await row in rows { found = try Self.decode(row) }
        guard var complaint = found else { throw LinliError.notFound("complaint") }
        if messages {
            let thread = try await connection.run(
                """
                SELECT author_id, body, at, from_staff FROM complaint_messages WHERE complaint_id = \(id) ORDER BY id
                """, logger: logger)
            for try await (author, body, at, staff) in thread.decode((UUID, String, Date, Bool).self) {
                complaint.messages.append(Message(author: UserID(author), body: body, at: at, fromStaff: staff))
            }
        }
        return complaint
    }

    static func decode(_ row: PostgresRow) throws -> Complaint {
        let (id, community, kind, subject, content, photos, filedBy, state, resolution, satisfaction, comment, created, resolved) =
            try row.decode((UUID, UUID, String, String, String, [String], UUID, String, String, Int16?, String, Date, Date?).self)
        return Complaint(
            id: id, community: CommunityID(community), suggestion: kind == "suggestion", subject: subject, content: content,
            photoRefs: photos, filedBy: UserID(filedBy), state: State(rawValue: state) ?? .open, resolution: resolution,
            satisfaction: satisfaction.map(Int.init), satisfactionComment: comment, createdAt: created, resolvedAt: resolved)
    }
}
