import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Community notices in the tenant schema: publishing, the resident's feed, read marks and
/// read counts.
public struct NoticeStore: Sendable {
    let database: Database

    /// Creates the board.
    public init(database: Database) { self.database = database }

    /// A notice as stored.
    public struct Notice: Sendable, Equatable {
        public var id: NoticeID
        public var communityID: CommunityID
        public var title: String
        public var body: String
        public var category: Int
        public var pinned: Bool
        public var buildingIDs: [BuildingID]
        public var publishedAt: Date
        public var expiresAt: Date?
        public var publishedBy: UserID
        public var read: Bool
    }

    /// A notice to publish, validated.
    public struct Draft: Sendable {
        public var communityID: CommunityID
        public var title: String
        public var body: String
        public var category: Int
        public var pinned: Bool
        public var buildingIDs: [BuildingID]
        public var expiresAt: Date?

        /// Validates raw input; the error names the field.
        public init(
            communityID: String, title: String, body: String, category: Int, pinned: Bool,
            buildingIDs: [String], expiresAt: Date?, now: Date = Date()
        ) throws(LinliError) {
            self.communityID = try Input.id(communityID, field: "community_id")
            self.title = try Input.text(title, field: "title", max: 200)
            self.body = try Input.text(body, field: "body", max: 20_000)
            guard (1...6).contains(category) else { throw .invalid("category", "is required (one of the NoticeCategory values)") }
            self.category = category
            self.pinned = pinned
            self.buildingIDs = try Input.ids(buildingIDs, field: "building_ids")
            if buildingIDs.count > 500 { throw .invalid("building_ids", "at most 500 buildings") }
            if let expiresAt, expiresAt <= now { throw .invalid("expires_at", "must be in the future") }
            self.expiresAt = expiresAt
        }
    }

    /// Publishes inside the caller's tenant transaction and records the national delta there too.
    public func publish(_ draft: Draft, by author: UserID, on connection: PostgresConnection, logger: Logger) async throws -> Notice {
        let buildings = draft.buildingIDs.map(\.uuid)
        let check = try await connection.run(
            """
            SELECT (SELECT count(*) FROM communities WHERE id = \(draft.communityID.uuid)),
                   (SELECT count(*) FROM buildings WHERE id = ANY(\(buildings)) AND community_id = \(draft.communityID.uuid))
            """, logger: logger)
        for try await (communities, known) in check.decode((Int, Int).self) {
            if communities == 0 { throw LinliError.notFound("community") }
            if known != buildings.count { throw LinliError.invalid("building_ids", "unknown building, or not in this community") }
        }
        let id = NoticeID.make()
        let rows = try await connection.run(
            """
            INSERT INTO notices (id, community_id, title, body, category, pinned, audience_all, published_by, expires_at)
            VALUES (\(id.uuid), \(draft.communityID.uuid), \(draft.title), \(draft.body), \(Int16(draft.category)),
                    \(draft.pinned), \(buildings.isEmpty), \(author.uuid), \(draft.expiresAt))
            RETURNING published_at
            """, logger: logger)
        var publishedAt = Date()
        for try await at in rows.decode(Date.self) { publishedAt = at }
        if !buildings.isEmpty {
            try await connection.run(
                """
                INSERT INTO notice_buildings (notice_id, building_id) SELECT \(id.uuid), unnest(\(buildings)::uuid[])
                """, logger: logger)
        }
        try await MetricDelta.record(.noticesPublished, delta: 1, community: draft.communityID, on: connection, logger: logger)
        return Notice(
            id: id, communityID: draft.communityID, title: draft.title, body: draft.body, category: draft.category,
            pinned: draft.pinned, buildingIDs: draft.buildingIDs, publishedAt: publishedAt,
            expiresAt: draft.expiresAt, publishedBy: author, read: false)
    }

    /// Where a page starts: after the last notice of the previous page, in feed order.
    public struct Cursor: Sendable, Equatable {
        public var pinned: Bool
        public var publishedAt: Date
        public var id: NoticeID

        /// The opaque token form.
        public var token: String {
            let micros = Int64((publishedAt.timeIntervalSince1970 * 1_000_000).rounded())
            return Data("\(pinned ? 1 : 0).\(micros).\(id)".utf8).base64EncodedString()
        }

        /// Parses a token; `invalidArgument` for anything that is not one.
        public init(token: String) throws(LinliError) {
            guard let data = Data(base64Encoded: token) else { throw .invalid("page.page_token", "is not a valid page token") }
            let parts = String(decoding: data, as: UTF8.self).split(separator: ".")
            guard parts.count == 3, let micros = Int64(parts[1]), let uuid = UUID(uuidString: String(parts[2])) else {
                throw .invalid("page.page_token", "is not a valid page token")
            }
            pinned = parts[0] == "1"
            publishedAt = Date(timeIntervalSince1970: TimeInterval(micros) / 1_000_000)
            id = NoticeID(uuid)
        }

        init(_ notice: Notice) {
            pinned = notice.pinned
            publishedAt = notice.publishedAt
            id = notice.id
        }
    }

    /// A page of the feed: pinned first, newest first. Residents see unexpired notices for
    /// the whole community or their buildings (`user_buildings_today`: their scope's and those they
    /// live in today, so a move counts from its day without a new sign-in); staff see everything.
    public func list(
        community: CommunityID, for principal: Principal, after cursor: Cursor?, limit: Int,
        tenant: TenantRef, logger: Logger
    ) async throws(LinliError) -> (notices: [Notice], next: Cursor?) {
        let audienceOnly = principal.role == .resident
        let hasCursor = cursor != nil
        let cPinned = cursor?.pinned ?? true
        let cAt = cursor?.publishedAt ?? Date.distantFuture
        let cID = cursor?.id.uuid ?? UUID()
        let query = FeedQuery(
            user: principal.subjectID.uuid, community: community.uuid, audienceOnly: audienceOnly,
            hasCursor: hasCursor, cursorPinned: cPinned, cursorAt: cAt,
            cursorID: cID, limit: limit + 1)
        let notices: [Notice] = try await database.tenantTransaction(tenant) { connection in
            try await connection.run(query, logger: logger)
        }
        if notices.count > limit {
            let page = Array(notices.prefix(limit))
            return (page, Cursor(page[page.count - 1]))
        }
        return (notices, nil)
    }

    /// Marks a notice read by `principal`; a notice that does not reach them is not found.
    public func markRead(_ id: NoticeID, by principal: Principal, tenant: TenantRef, logger: Logger) async throws(LinliError) -> Date {
        let communities = principal.communityIDs.map(\.uuid)
        let audienceOnly = principal.role == .resident
        let readAt: Date? = try await database.tenantTransaction(tenant) { connection in
            let visible = try await connection.run(
                """
                SELECT 1 FROM notices n
                WHERE n.id = \(id.uuid) AND n.community_id = ANY(\(communities))
                  AND (NOT \(audienceOnly) OR n.audience_all OR EXISTS (SELECT 1 FROM notice_buildings nb
                       WHERE nb.notice_id = n.id
                         AND nb.building_id IN (SELECT building_id FROM user_buildings_today(\(principal.subjectID.uuid), n.community_id))))
                """, logger: logger)
            var found = false
            for try await _ in visible { found = true }
            guard found else { return nil }
            let rows = try await connection.run(
                """
                WITH inserted AS (
                    INSERT INTO notice_reads (notice_id, user_id) VALUES (\(id.uuid), \(principal.subjectID.uuid))
                    ON CONFLICT DO NOTHING RETURNING read_at)
                SELECT read_at FROM inserted
                UNION ALL
                SELECT read_at FROM notice_reads WHERE notice_id = \(id.uuid) AND user_id = \(principal.subjectID.uuid)
                LIMIT 1
                """, logger: logger)
            for try await at in rows.decode(Date.self) { return at }
            return nil
        }
        guard let readAt else { throw LinliError.notFound("notice") }
        return readAt
    }

    /// How many residents a notice reaches and how many of them have read it.
    public func readStats(_ id: NoticeID, for principal: Principal, tenant: TenantRef, logger: Logger) async throws(LinliError) -> (
        read: Int64, audience: Int64
    ) {
        let communities = principal.communityIDs.map(\.uuid)
        let isOperator = principal.role == .operator
        let stats: (Int64, Int64)? = try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                SELECT (SELECT count(*) FROM notice_reads r WHERE r.notice_id = n.id),
                       (SELECT count(DISTINCT u.id) FROM users u
                          JOIN user_communities uc ON uc.user_id = u.id AND uc.community_id = n.community_id
                         WHERE u.role = 'resident' AND u.status = 'active'
                           AND (n.audience_all OR EXISTS (SELECT 1 FROM user_buildings_today(u.id, n.community_id) ub
                                JOIN notice_buildings nb ON nb.building_id = ub.building_id AND nb.notice_id = n.id)))
                FROM notices n WHERE n.id = \(id.uuid) AND (\(isOperator) OR n.community_id = ANY(\(communities)))
                """, logger: logger)
            for try await row in rows.decode((Int64, Int64).self) { return row }
            return nil
        }
        guard let stats else { throw LinliError.notFound("notice") }
        return stats
    }
}

/// The resident feed query, prepared once per connection: pinned first, newest first,
/// keyset-paged. `Deploy/bench` runs this very SQL under pgbench as the reference.
struct FeedQuery: PostgresPreparedStatement {
    static let sql = """
        SELECT n.id, n.community_id, n.title, n.body, n.category, n.pinned, n.published_at, n.expires_at,
               n.published_by,
               ARRAY(SELECT nb.building_id FROM notice_buildings nb WHERE nb.notice_id = n.id),
               EXISTS (SELECT 1 FROM notice_reads r WHERE r.notice_id = n.id AND r.user_id = $1)
        FROM notices n
        WHERE n.community_id = $2
          AND (NOT $3 OR (
                (n.expires_at IS NULL OR n.expires_at > now())
                AND (n.audience_all OR EXISTS (SELECT 1 FROM notice_buildings nb
                     WHERE nb.notice_id = n.id AND nb.building_id IN (SELECT building_id FROM user_buildings_today($1, $2))))))
          AND (NOT $4 OR (n.pinned, n.published_at, n.id) < ($5, $6, $7))
        ORDER BY n.pinned DESC, n.published_at DESC, n.id DESC
        LIMIT $8
        """
    typealias Row = NoticeStore.Notice

    var user: UUID
    var community: UUID
    var audienceOnly: Bool
    var hasCursor: Bool
    var cursorPinned: Bool
    var cursorAt: Date
    var cursorID: UUID
    var limit: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 8)
        bindings.append(user)
        bindings.append(community)
        bindings.append(audienceOnly)
        bindings.append(hasCursor)
        bindings.append(cursorPinned)
        bindings.append(cursorAt)
        bindings.append(cursorID)
        bindings.append(limit)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (id, communityID, title, body, category, pinned, publishedAt, expiresAt, by, buildingIDs, read) =
            try row.decode((UUID, UUID, String, String, Int16, Bool, Date, Date?, UUID, [UUID], Bool).self)
        return NoticeStore.Notice(
            id: NoticeID(id), communityID: CommunityID(communityID), title: title, body: body,
            category: Int(category), pinned: pinned, buildingIDs: buildingIDs.map(BuildingID.init),
            publishedAt: publishedAt, expiresAt: expiresAt, publishedBy: UserID(by), read: read)
    }
}
