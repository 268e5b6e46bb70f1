import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Item release applications, in the caller's tenant transaction.
public struct ItemReleaseStore: Sendable {
    public init() {}

    public enum State: String, Sendable, CaseIterable { case pending, approved, rejected, released }
    public enum Action: String, Sendable { case approve, reject, release }

    public static let flow = Transitions<State, Action>([
        .approve: (from: [.pending], to: .approved),
        .reject: (from: [.pending], to: .rejected),
        .release: (from: [.approved], to: .released),
    ])

    public struct Release: Sendable, Equatable {
        public var id: UUID
        public var community: CommunityID
        public var resident: UserID
        public var items: String
        public var mover: String
        public var plannedDate: String
        public var state: State
        public var code: String?
        public var reviewNote: String
        public var createdAt: Date
        public var releasedAt: Date?
    }

    public func apply(
        community: CommunityID, items: String, mover: String, plannedDate: String, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Release {
        try Scope.requireCommunity(principal, community)
        let id = UUIDv7.make()
        try await connection.run(
            """
            INSERT INTO item_releases (id, community_id, resident_id, items, mover, planned_date, state)
            VALUES (\(id), \(community.uuid), \(principal.subjectID.uuid), \(items), \(mover), \(plannedDate)::date, 'pending')
            """, logger: logger)
        return try await load(id, connection, logger)
    }

    /// A manager approves (issuing the release code) or rejects with a note.
    public func review(
        _ id: UUID, approve: Bool, note: String, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Release {
        let release = try await load(id, connection, logger, lock: true)
        guard principal.role.isStaff, principal.canAct(in: release.community) else { throw LinliError.notFound("item release") }
        let next = try Self.flow.next(approve ? .approve : .reject, from: release.state)
        if approve {
            try await FrontDeskSQL.writeWithFreshCode(connection, logger) { code in
                """
                UPDATE item_releases SET state = \(next.rawValue), code = \(code), reviewed_by = \(principal.subjectID.uuid), review_note = \(note)
                WHERE id = \(id) AND NOT EXISTS (SELECT 1 FROM item_releases o WHERE o.community_id = item_releases.community_id
                                                 AND o.code = \(code) AND o.state = 'approved')
                RETURNING 1
                """
            }
        } else {
            try await connection.run(
                """
                UPDATE item_releases SET state = \(next.rawValue), reviewed_by = \(principal.subjectID.uuid), review_note = \(note) WHERE id = \(id)
                """, logger: logger)
        }
        var reviewed = Linli_Events_V1_ItemReleaseReviewed()
        reviewed.releaseID = id.uuidString.lowercased()
        reviewed.approved = approve
        try await Outbox.enqueue(Topic.itemReleaseReviewed, reviewed, to: release.resident, on: connection, logger: logger)
        return try await load(id, connection, logger)
    }

    /// A guard checks the code at the gate; a code works once.
    public func verify(
        community: CommunityID, code: String, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Release {
        try Scope.requireCommunity(principal, community)
        let rows = try await connection.run(
            """
            UPDATE item_releases SET state = 'released', released_by = \(principal.subjectID.uuid), released_at = now()
            WHERE community_id = \(community.uuid) AND code = \(code) AND state = 'approved' RETURNING id
            """, logger: logger)
        for try await id in rows.decode(UUID.self) { return try await load(id, connection, logger) }
        throw LinliError.notFound("approved item release with this code")
    }

    public func list(
        community: CommunityID, after: (Date, UUID)?, limit: Int, for principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [Release] {
        try Scope.requireCommunity(principal, community)
        let own = principal.role == .resident
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) FROM item_releases
            WHERE community_id = \(community.uuid) AND (NOT \(own) OR resident_id = \(principal.subjectID.uuid))
              AND (\(after == nil) OR (created_at, id) < (\(after?.0 ?? Date()), \(after?.1 ?? UUID())))
            ORDER BY created_at DESC, id DESC LIMIT \(limit)
            """, logger: logger)
        var result: [Release] = []
        for try await row in rows { result.append(try Self.decode(row)) }
        return result
    }

    static let columns = "id, community_id, resident_id, items, mover, planned_date::text, state, code, review_note, created_at, released_at"

    private func load(_ id: UUID, _ connection: PostgresConnection, _ logger: Logger, lock: Bool = false) async throws -> Release {
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) FROM item_releases WHERE id = \(id) \(unescaped: lock ? "FOR UPDATE" : "")
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        throw LinliError.notFound("item release")
    }

    static func decode(_ row: PostgresRow) throws -> Release {
        let (id, community, resident, items, mover, date, state, code, note, created, released) =
            try row.decode((UUID, UUID, UUID, String, String, String, String, String?, String, Date, Date?).self)
        return Release(
            id: id, community: CommunityID(community), resident: UserID(resident), items: items, mover: mover,
            plannedDate: date, state: State(rawValue: state) ?? .pending, code: code, reviewNote: note,
            createdAt: created, releasedAt: released)
    }
}
