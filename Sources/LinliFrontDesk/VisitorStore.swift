import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Visitor passes and the gate log, in the caller's tenant transaction.
public struct VisitorStore: Sendable {
    public init() {}

    public enum State: String, Sendable, CaseIterable { case active, used, revoked }

    public struct Registration: Sendable {
        public var community: CommunityID
        public var visitorName: String
        public var visitorPhone: String
        public var plate: String
        public var validFrom: Date
        public var validUntil: Date
        public var singleUse: Bool
        public var host: UserID?
        public init(
            community: CommunityID, visitorName: String, visitorPhone: String, plate: String, validFrom: Date,
            validUntil: Date, singleUse: Bool, host: UserID?
        ) {
            self.community = community
            self.visitorName = visitorName
            self.visitorPhone = visitorPhone
            self.plate = plate
            self.validFrom = validFrom
            self.validUntil = validUntil
            self.singleUse = singleUse
            self.host = host
        }
    }

    public struct Pass: Sendable, Equatable {
        public var id: UUID
        public var community: CommunityID
        public var host: UserID
        public var visitorName: String
        public var visitorPhone: String
        public var plate: String
        public var validFrom: Date
        public var validUntil: Date
        public var singleUse: Bool
        public var code: String
        public var state: State
        public var walkIn: Bool
        public var createdAt: Date
        public var entries: Int
        public var lastEntryAt: Date?
        public var lastExitAt: Date?
    }

    /// A resident registers their visitor; staff register a walk-in for `host` (entry logged at once).
    public func register(_ r: Registration, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Pass {
        try Scope.requireCommunity(principal, r.community)
        let host: UserID
        let walkIn: Bool
        if principal.role == .resident {
            if r.host != nil { throw LinliError.invalid("host_id", "only staff register walk-in visitors") }
            host = principal.subjectID
            walkIn = false
        } else {
            guard let resident = r.host else { throw LinliError.invalid("host_id", "is required for a walk-in visitor") }
            guard try await FrontDeskSQL.isResident(resident, of: r.community, connection, logger) else {
                throw LinliError.invalid("host_id", "is not a resident of this community")
            }
            host = resident
            walkIn = true
        }
        let id = UUIDv7.make()
        try await FrontDeskSQL.writeWithFreshCode(connection, logger) { code in
            """
            INSERT INTO visitor_passes (id, community_id, host_id, visitor_name, visitor_phone, plate, valid_from, valid_until,
                                        single_use, code, state, walk_in, created_by)
            VALUES (\(id), \(r.community.uuid), \(host.uuid), \(r.visitorName), \(r.visitorPhone), \(r.plate), \(r.validFrom),
                    \(r.validUntil), \(r.singleUse), \(code), 'active', \(walkIn), \(principal.subjectID.uuid))
            ON CONFLICT (community_id, code) WHERE state = 'active' DO NOTHING RETURNING 1
            """
        }
        if walkIn { try await gate(id, "in", principal, connection, logger) }
        return try await load(id, connection, logger)
    }

    /// A guard checks a code at the gate and logs the entry.
    public func verify(
        community: CommunityID, code: String, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Pass {
        try Scope.requireCommunity(principal, community)
        let rows = try await connection.run(
            """
            SELECT id FROM visitor_passes WHERE community_id = \(community.uuid) AND code = \(code)
            ORDER BY (state = 'active') DESC, created_at DESC LIMIT 1 FOR UPDATE
            """, logger: logger)
        var found: UUID?
        for try await id in rows.decode(UUID.self) { found = id }
        guard let id = found else { throw LinliError.notFound("visitor pass") }
        let pass = try await load(id, connection, logger)
        switch pass.state {
        case .used: throw LinliError(.failedPrecondition, "the pass was for one entry and has been used")
        case .revoked: throw LinliError(.failedPrecondition, "the pass has been revoked by the host")
        case .active: break
        }
        let now = Date()
        if now < pass.validFrom { throw LinliError(.failedPrecondition, "the pass is not valid yet") }
        if now > pass.validUntil { throw LinliError(.failedPrecondition, "the pass has expired") }
        if pass.singleUse {
            try await connection.run("UPDATE visitor_passes SET state = 'used' WHERE id = \(id)", logger: logger)
        }
        try await gate(id, "in", principal, connection, logger)
        return try await load(id, connection, logger)
    }

    /// A guard logs the visitor leaving.
    public func exit(_ id: UUID, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Pass {
        let pass = try await load(id, connection, logger)
        guard principal.canAct(in: pass.community) else { throw LinliError.notFound("visitor pass") }
        guard pass.entries > 0 else { throw LinliError(.failedPrecondition, "the visitor has not entered") }
        try await gate(id, "out", principal, connection, logger)
        return try await load(id, connection, logger)
    }

    /// The host or staff revoke a live pass.
    public func revoke(_ id: UUID, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Pass {
        let pass = try await load(id, connection, logger)
        let allowed = pass.host == principal.subjectID || (principal.role.isStaff && principal.canAct(in: pass.community))
        guard allowed else { throw LinliError.notFound("visitor pass") }
        guard pass.state == .active else { throw LinliError(.failedPrecondition, "the pass is \(pass.state.rawValue)") }
        try await connection.run("UPDATE visitor_passes SET state = 'revoked' WHERE id = \(id)", logger: logger)
        return try await load(id, connection, logger)
    }

    public func list(
        community: CommunityID, activeOnly: Bool, after: (Date, UUID)?, limit: Int, for principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [Pass] {
        try Scope.requireCommunity(principal, community)
        let own = principal.role == .resident
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) FROM visitor_passes p
            WHERE p.community_id = \(community.uuid) AND (NOT \(own) OR p.host_id = \(principal.subjectID.uuid))
              AND (NOT \(activeOnly) OR (p.state = 'active' AND p.valid_until > now()))
              AND (\(after == nil) OR (p.created_at, p.id) < (\(after?.0 ?? Date()), \(after?.1 ?? UUID())))
            ORDER BY p.created_at DESC, p.id DESC LIMIT \(limit)
            """, logger: logger)
        var result: [Pass] = []
        for try await row in rows { result.append(try Self.decode(row)) }
        return result
    }

    private func gate(_ id: UUID, _ direction: String, _ principal: Principal, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.run(
            """
            INSERT INTO visitor_gate_log (pass_id, direction, guard_id) VALUES (\(id), \(direction), \(principal.subjectID.uuid))
            """, logger: logger)
    }

    static let columns = """
        p.id, p.community_id, p.host_id, p.visitor_name, p.visitor_phone, p.plate, p.valid_from, p.valid_until, p.single_use,
        p.code, p.state, p.walk_in, p.created_at,
        (SELECT count(*) FROM visitor_gate_log g WHERE g.pass_id = p.id AND g.direction = 'in'),
        (SELECT max(at) FROM visitor_gate_log g WHERE g.pass_id = p.id AND g.direction = 'in'),
        (SELECT max(at) FROM visitor_gate_log g WHERE g.pass_id = p.id AND g.direction = 'out')
        """

    private func load(_ id: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Pass {
        let rows = try await connection.run("SELECT \(unescaped: Self.columns) FROM visitor_passes p WHERE p.id = \(id)", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        throw LinliError.notFound("visitor pass")
    }

    static func decode(_ row: PostgresRow) throws -> Pass {
        let cells = row.makeRandomAccess()
        func at<T: PostgresDecodable>(_ index: Int, as type: T.Type = T.self) throws -> T { try cells[index].decode(T.self) }
        return Pass(
            id: try at(0), community: CommunityID(try at(1)), host: UserID(try at(2)), visitorName: try at(3),
            visitorPhone: try at(4), plate: try at(5), validFrom: try at(6), validUntil: try at(7), singleUse: try at(8),
            code: try at(9), state: State(rawValue: try at(10)) ?? .active, walkIn: try at(11), createdAt: try at(12),
            entries: Int(try at(13, as: Int64.self)), lastEntryAt: try at(14), lastExitAt: try at(15))
    }
}
