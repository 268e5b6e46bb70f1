import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Tickets forwarded by the city's 12345 hotline; runs inside the caller's tenant transaction.
public struct HotlineStore: Sendable {
    public init() {}

    public enum State: String, Sendable, CaseIterable { case received, handling, replied, closed }
    public enum Action: String, Sendable { case step, reply, close }

    public static let flow = Transitions<State, Action>([
        .step: (from: [.received, .handling], to: .handling),
        .reply: (from: [.received, .handling], to: .replied),
        .close: (from: [.replied], to: .closed),
    ])

    public struct Incoming: Sendable {
        public var community: CommunityID
        public var externalID: String
        public var receivedAt: Date
        public var deadline: Date
        public var category: String
        public var content: String
        public var callerName: String
        public var callerPhone: String
        public init(
            community: CommunityID, externalID: String, receivedAt: Date, deadline: Date, category: String, content: String,
            callerName: String, callerPhone: String
        ) {
            self.community = community
            self.externalID = externalID
            self.receivedAt = receivedAt
            self.deadline = deadline
            self.category = category
            self.content = content
            self.callerName = callerName
            self.callerPhone = callerPhone
        }
    }

    public struct Step: Sendable, Equatable {
        public var actor: UUID
        public var note: String
        public var at: Date
    }

    public struct Ticket: Sendable, Equatable {
        public var id: UUID
        public var community: CommunityID
        public var externalID: String
        public var receivedAt: Date
        public var deadline: Date
        public var category: String
        public var content: String
        public var callerName: String
        public var callerPhone: String
        public var state: State
        public var reply: String
        public var repliedAt: Date?
        public var overdue: Bool
        public var steps: [Step] = []
    }

    /// Stores a forwarded ticket once: a second import of the same external id returns the
    /// stored ticket and `created == false`, whatever else it carries.
    public func importTicket(
        _ incoming: Incoming, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (Ticket, created: Bool) {
        try Scope.requireCommunity(principal, incoming.community)
        let id = UUIDv7.make()
        let inserted = try await connection.run(
            """
            INSERT INTO hotline_tickets (id, community_id, external_id, received_at, deadline, category, content, caller_name,
                                         caller_phone, state)
            VALUES (\(id), \(incoming.community.uuid), \(incoming.externalID), \(incoming.receivedAt), \(incoming.deadline),
                    \(incoming.category), \(incoming.content), \(incoming.callerName), \(incoming.callerPhone), 'received')
            ON CONFLICT (external_id) DO NOTHING RETURNING id
            """, logger: logger)
        var created = false
        for try await _ in inserted { created = true }
        if created {
            try await MetricDelta.record(.hotlineTickets, delta: 1, community: incoming.community, on: connection, logger: logger)
            return (try await load(id, connection, logger), true)
        }
        let existing = try await connection.run("SELECT id FROM hotline_tickets WHERE external_id = \(incoming.externalID)", logger: logger)
        for try await stored in existing.decode(UUID.self) {
            let ticket = try await load(stored, connection, logger)
            try visible(ticket, to: principal)
            return (ticket, false)
        }
        throw LinliError(.unavailable, "the ticket is being imported concurrently; retry")
    }

    /// Records a handling step (and starts handling).
    public func step(_ id: UUID, note: String, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Ticket {
        let ticket = try await load(id, connection, logger, lock: true)
        try visible(ticket, to: principal)
        let next = try Self.flow.next(.step, from: ticket.state)
        try await addStep(id, note, principal, connection, logger)
        try await connection.run("UPDATE hotline_tickets SET state = \(next.rawValue) WHERE id = \(id)", logger: logger)
        return try await load(id, connection, logger, steps: true)
    }

    /// Records the reply and queues it for the hotline in the outbox.
    public func reply(_ id: UUID, reply: String, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Ticket {
        let ticket = try await load(id, connection, logger, lock: true)
        try visible(ticket, to: principal)
        _ = try Self.flow.next(.reply, from: ticket.state)
        try await addStep(id, "回复：" + reply, principal, connection, logger)
        try await connection.run(
            """
            UPDATE hotline_tickets SET state = 'replied', reply = \(reply), replied_at = now() WHERE id = \(id)
            """, logger: logger)
        var replied = Linli_Events_V1_HotlineReplied()
        replied.externalID = ticket.externalID
        replied.reply = reply
        try await Outbox.enqueue(Topic.hotlineReplied, replied, to: nil, on: connection, logger: logger)
        return try await load(id, connection, logger, steps: true)
    }

    public func close(_ id: UUID, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Ticket {
        let ticket = try await load(id, connection, logger, lock: true)
        try visible(ticket, to: principal)
        let next = try Self.flow.next(.close, from: ticket.state)
        try await connection.run("UPDATE hotline_tickets SET state = \(next.rawValue) WHERE id = \(id)", logger: logger)
        return try await load(id, connection, logger, steps: true)
    }

    public func get(_ id: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Ticket {
        let ticket = try await load(id, connection, logger, steps: true)
        try visible(ticket, to: principal)
        return ticket
    }

    public func list(
        community: CommunityID, overdueOnly: Bool, after: (Date, UUID)?, limit: Int, for principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [Ticket] {
        try Scope.requireCommunity(principal, community)
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) FROM hotline_tickets
            WHERE community_id = \(community.uuid)
              AND (NOT \(overdueOnly) OR (state IN ('received', 'handling') AND deadline < now()))
              AND (\(after == nil) OR (received_at, id) < (\(after?.0 ?? Date()), \(after?.1 ?? UUID())))
            ORDER BY received_at DESC, id DESC LIMIT \(limit)
            """, logger: logger)
        var result: [Ticket] = []
        for try await row in rows { result.append(try Self.decode(row)) }
        return result
    }

    private func visible(_ ticket: Ticket, to principal: Principal) throws(LinliError) {
        if !principal.canAct(in: ticket.community) { throw LinliError.notFound("hotline ticket") }
    }

    private func addStep(_ id: UUID, _ note: String, _ principal: Principal, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.run(
            """
            INSERT INTO hotline_steps (ticket_id, actor_id, note) VALUES (\(id), \(principal.subjectID.uuid), \(note))
            """, logger: logger)
    }

    static let columns = """
        id, community_id, external_id, received_at, deadline, category, content, caller_name, caller_phone, state, reply, replied_at,
        (state IN ('received', 'handling') AND deadline < now()) OR (replied_at > deadline)
        """

    private func load(
        _ id: UUID, _ connection: PostgresConnection, _ logger: Logger, lock: Bool = false,
        steps: Bool = false
    ) async throws -> Ticket {
        let rows = try await connection.run(
            """
            SELECT \(unescaped: Self.columns) FROM hotline_tickets WHERE id = \(id) \(unescaped: lock ? "FOR UPDATE" : "")
            """, logger: logger)
        var found: Ticket?
        for try await row in rows { found = try Self.decode(row) }
        guard var ticket = found else { throw LinliError.notFound("hotline ticket") }
        if steps {
            let history = try await connection.run(
                "SELECT actor_id, note, at FROM hotline_steps WHERE ticket_id = \(id) ORDER BY id",
                logger: logger)
            for try await (actor, note, at) in history.decode((UUID, String, Date).self) {
                ticket.steps.append(Step(actor: actor, note: note, at: at))
            }
        }
        return ticket
    }

    static func decode(_ row: PostgresRow) throws -> Ticket {
        let (id, community, external, received, deadline, category, content, name, phone, state, reply, replied, overdue) =
            try row.decode((UUID, UUID, String, Date, Date, String, String, String, String, String, String, Date?, Bool?).self)
        return Ticket(
            id: id, community: CommunityID(community), externalID: external, receivedAt: received, deadline: deadline,
            category: category, content: content, callerName: name, callerPhone: phone,
            state: State(rawValue: state) ?? .received, reply: reply, repliedAt: replied, overdue: overdue ?? false)
    }
}
