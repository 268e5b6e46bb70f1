import Foundation
import LinliBilling
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

extension ParkingStore {
    public struct Permit: Sendable {
        public var id: UUID
        public var community: CommunityID
        public var lot: UUID?
        public var plate: String
        public var kind: GateDecision.Permit.Kind
        public var space: UUID?
        public var resident: UUID?
        public var validFrom: Date
        public var validUntil: Date?
        public var monthlyFeeFen: Int64
        public var revoked: Bool

        public init(
            id: UUID, community: CommunityID, lot: UUID?, plate: String, kind: GateDecision.Permit.Kind, space: UUID?, resident: UUID?,
            validFrom: Date, validUntil: Date?, monthlyFeeFen: Int64, revoked: Bool
        ) {
            self.id = id
            self.community = community
            self.lot = lot
            self.plate = plate
            self.kind = kind
            self.space = space
            self.resident = resident
            self.validFrom = validFrom
            self.validUntil = validUntil
            self.monthlyFeeFen = monthlyFeeFen
            self.revoked = revoked
        }
    }

    static let permitColumns =
        "id, community_id, lot_id, plate, kind, space_id, resident_id, valid_from, valid_until, monthly_fee_fen, revoked_at IS NOT NULL"

    static func permits(_ rows: PostgresRowSequence) async throws -> [Permit] {
        var result: [Permit] = []
        for try await r in rows.decode((UUID, UUID, UUID?, String, String, UUID?, UUID?, Date, Date?, Int64, Bool).self) {
            result.append(
                Permit(
                    id: r.0, community: CommunityID(r.1), lot: r.2, plate: r.3, kind: GateDecision.Permit.Kind(rawValue: r.4) ?? .monthly,
                    space: r.5, resident: r.6, validFrom: r.7, validUntil: r.8, monthlyFeeFen: r.9, revoked: r.10))
        }
        return result
    }

    public func permit(_ id: UUID, for principal: Principal, lock: Bool = false, on connection: PostgresConnection, logger: Logger)
        async throws -> Permit
    {
        let sql = "SELECT \(Self.permitColumns) FROM parking_permits WHERE id = $1" + (lock ? " FOR UPDATE" : "")
        let rows = try await connection.run(PostgresQuery(unsafeSQL: sql, binds: binds(id)), logger: logger)
        guard let permit = try await Self.permits(rows).first, principal.canAct(in: permit.community) else {
            throw LinliError.notFound("permit")
        }
        return permit
    }

    public func issuePermit(_ p: Permit, by user: UserID, on connection: PostgresConnection, logger: Logger) async throws -> Permit {
        if let space = p.space {
            let rows = try await connection.run(
                "SELECT 1 FROM parking_spaces WHERE id = \(space) AND community_id = \(p.community.uuid)", logger: logger)
            var found = false
            for try await _ in rows { found = true }
            guard found else { throw LinliError.notFound("parking space") }
        }
        if let resident = p.resident {
            let rows = try await connection.run(
                "SELECT 1 FROM residents WHERE id = \(resident) AND community_id = \(p.community.uuid)", logger: logger)
            var found = false
            for try await _ in rows { found = true }
            guard found else { throw LinliError.notFound("resident") }
        }
        try await connection.run(
            """
            INSERT INTO parking_permits (id, community_id, lot_id, plate, kind, space_id, resident_id, valid_from, valid_until,
                                         monthly_fee_fen, created_by)
            VALUES (\(p.id), \(p.community.uuid), \(p.lot), \(p.plate), \(p.kind.rawValue), \(p.space), \(p.resident), \(p.validFrom),
                    \(p.validUntil), \(p.monthlyFeeFen), \(user.uuid))
            """, logger: logger)
        return p
    }

    /// Pays `months` of a monthly permit and moves its end: from its current end, or from now
    /// when it has lapsed. Returns the permit and the payment.
    public func renew(
        _ permit: Permit, months: Int, method: PaymentStore.Method, by user: UserID, on connection: PostgresConnection, logger: Logger
    ) async throws -> (Permit, Payment) {
        guard permit.kind == .monthly else {
            throw LinliError(.failedPrecondition, "permit_id: only a monthly permit is renewed", field: "permit_id")
        }
        guard !permit.revoked else { throw LinliError(.failedPrecondition, "permit_id: the permit is revoked", field: "permit_id") }
        guard permit.monthlyFeeFen > 0 else {
            throw LinliError(.failedPrecondition, "permit_id: the permit has no monthly fee; set one when issuing it", field: "permit_id")
        }
        let amount = permit.monthlyFeeFen * Int64(clamping: months)
        let (entry, receipt) = try await ParkingLedger.collect(
            amount, method: method, into: .monthly, community: permit.community, memo: "monthly permit \(permit.plate)", by: user,
            on: connection, logger: logger)
        let rows = try await connection.run(
            """
            UPDATE parking_permits SET valid_until = GREATEST(coalesce(valid_until, now()), now()) + make_interval(months => \(Int32(clamping: months)))
            WHERE id = \(permit.id) RETURNING valid_until
            """, logger: logger)
        var renewed = permit
        for try await until in rows.decode(Date.self) { renewed.validUntil = until }
        let payment = try await recordPayment(
            community: permit.community, session: nil, permit: permit.id, amount: amount, method: method, entry: entry, receipt: receipt,
            ruleVersion: nil, by: user, on: connection, logger: logger)
        try await MetricDelta.record(.parkingRevenueFen, delta: amount, community: permit.community, on: connection, logger: logger)
        return (renewed, payment)
    }

    public func revoke(_ permit: Permit, on connection: PostgresConnection, logger: Logger) async throws -> Permit {
        try await connection.run("UPDATE parking_permits SET revoked_at = now() WHERE id = \(permit.id) AND revoked_at IS NULL", logger: logger)
        var revoked = permit
        revoked.revoked = true
        return revoked
    }

    public func permits(community: CommunityID, plate: String?, after: (Date, UUID)?, limit: Int, on connection: PostgresConnection, logger: Logger)
        async throws -> [Permit]
    {
        var b = PostgresBindings()
        b.append(community.uuid)
        var sql = "SELECT \(Self.permitColumns) FROM parking_permits WHERE community_id = $1"
        if let plate {
            b.append(plate)
            sql += " AND plate = $\(b.count)"
        }
        if let (_, id) = after {
            b.append(id)
            sql += " AND id < $\(b.count)"
        }
        b.append(Int32(clamping: limit))
        sql += " ORDER BY id DESC LIMIT $\(b.count)"
        return try await Self.permits(try await connection.run(PostgresQuery(unsafeSQL: sql, binds: b), logger: logger))
    }

    public struct ListEntry: Sendable {
        public var id: UUID
        public var community: CommunityID
        public var lot: UUID?
        public var plate: String
        public var list: String
        public var validFrom: Date
        public var validUntil: Date?
        public var reason: String
        public var removed: Bool
    }

    static let listColumns = "id, community_id, lot_id, plate, list, valid_from, valid_until, reason, removed_at IS NOT NULL"

    static func entries(_ rows: PostgresRowSequence) async throws -> [ListEntry] {
        var result: [ListEntry] = []
        for try await r in rows.decode((UUID, UUID, UUID?, String, String, Date, Date?, String, Bool).self) {
            result.append(
                ListEntry(
                    id: r.0, community: CommunityID(r.1), lot: r.2, plate: r.3, list: r.4, validFrom: r.5, validUntil: r.6, reason: r.7,
                    removed: r.8))
        }
        return result
    }

    public func addEntry(_ e: ListEntry, by user: UserID, on connection: PostgresConnection, logger: Logger) async throws -> ListEntry {
        try await connection.run(
            """
            INSERT INTO parking_lists (id, community_id, lot_id, plate, list, valid_from, valid_until, reason, created_by)
            VALUES (\(e.id), \(e.community.uuid), \(e.lot), \(e.plate), \(e.list), \(e.validFrom), \(e.validUntil), \(e.reason), \(user.uuid))
            """, logger: logger)
        return e
    }

    public func removeEntry(_ id: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> ListEntry {
        let rows = try await connection.run(
            PostgresQuery(unsafeSQL: "SELECT \(Self.listColumns) FROM parking_lists WHERE id = $1 FOR UPDATE", binds: binds(id)), logger: logger)
        guard var entry = try await Self.entries(rows).first, principal.canAct(in: entry.community) else {
            throw LinliError.notFound("list entry")
        }
        try await connection.run("UPDATE parking_lists SET removed_at = now() WHERE id = \(id) AND removed_at IS NULL", logger: logger)
        entry.removed = true
        return entry
    }

    public func entries(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> [ListEntry] {
        let rows = try await connection.run(
            PostgresQuery(
                unsafeSQL: "SELECT \(Self.listColumns) FROM parking_lists WHERE community_id = $1 AND removed_at IS NULL ORDER BY plate, id",
                binds: binds(community.uuid)), logger: logger)
        return try await Self.entries(rows)
    }

    /// Registers a visitor's car for `resident`, within the lot's daily limit per resident.
    public func registerVisitor(
        lot: Lot, plate: String, resident: UUID, from: Date, until: Date, by user: UserID, on connection: PostgresConnection, logger: Logger
    ) async throws -> UUID {
        // One resident's registrations are counted under a lock on the resident row.
        let owner = try await connection.run(
            "SELECT 1 FROM residents WHERE id = \(resident) AND community_id = \(lot.community.uuid) FOR UPDATE", logger: logger)
        var found = false
        for try await _ in owner { found = true }
        guard found else { throw LinliError.notFound("resident") }
        try await requireVisitorQuota(resident: resident, lot: lot, on: connection, logger: logger)
        let id = UUIDv7.make()
        try await connection.run(
            """
            INSERT INTO parking_visitor_cars (id, community_id, lot_id, plate, resident_id, valid_from, valid_until, created_by)
            VALUES (\(id), \(lot.community.uuid), \(lot.id), \(plate), \(resident), \(from), \(until), \(user.uuid))
            """, logger: logger)
        return id
    }
}
