import Foundation
import LinliCore
import Logging
import PostgresNIO

/// Space reservations (预约车位): a plate expected in a lot in a window, on a held space or on any
/// space of the lot. Reservations of one lot are made one at a time under a lock on the lot row,
/// so the checks below (a space never reserved twice at once, never more reservations at once
/// than the lot has spaces, one plate one reservation at a time) hold under concurrency.
extension ParkingStore {
    public struct Reservation: Sendable {
        public enum Kind: String, Sendable, CaseIterable { case visitor, nonVisitor = "non_visitor" }
        public enum State: String, Sendable, CaseIterable { case reserved, used, cancelled, expired }

        public var id: UUID
        public var community: CommunityID
        public var lot: UUID
        public var plate: String
        public var kind: Kind
        public var space: UUID?
        public var resident: UUID
        public var startsAt: Date
        public var endsAt: Date
        public var session: UUID?
        public var usedAt: Date?
        public var cancelledAt: Date?
        public var createdAt: Date

        public func state(at time: Date = Date()) -> State {
            if cancelledAt != nil { return .cancelled }
            if usedAt != nil { return .used }
            return endsAt <= time ? .expired : .reserved
        }
    }

    /// A reserved car is let in this long before its window starts.
    public static let reservationEarlySeconds: TimeInterval = 30 * 60

    static let reservationColumns = """
        id, community_id, lot_id, plate, kind, space_id, resident_id, starts_at, ends_at, session_id, used_at, cancelled_at, created_at
        """

    static func reservations(_ rows: PostgresRowSequence) async throws -> [Reservation] {
        var result: [Reservation] = []
        for try await r in rows.decode((UUID, UUID, UUID, String, String, UUID?, UUID, Date, Date, UUID?, Date?, Date?, Date).self) {
            result.append(
                Reservation(
                    id: r.0, community: CommunityID(r.1), lot: r.2, plate: r.3, kind: Reservation.Kind(rawValue: r.4) ?? .nonVisitor, space: r.5,
                    resident: r.6, startsAt: r.7, endsAt: r.8, session: r.9, usedAt: r.10, cancelledAt: r.11, createdAt: r.12))
        }
        return result
    }

    public struct NewReservation: Sendable {
        public var plate: String
        public var kind: Reservation.Kind
        public var space: UUID?
        public var resident: UUID
        public var startsAt: Date
        public var endsAt: Date

        public init(plate: String, kind: Reservation.Kind, space: UUID?, resident: UUID, startsAt: Date, endsAt: Date) {
            self.plate = plate
            self.kind = kind
            self.space = space
            self.resident = resident
            self.startsAt = startsAt
            self.endsAt = endsAt
        }
    }

    public func reserve(_ new: NewReservation, lot: Lot, by user: UserID, on connection: PostgresConnection, logger: Logger) async throws
        -> Reservation
    {
        try await connection.run("SELECT 1 FROM parking_lots WHERE id = \(lot.id) FOR UPDATE", logger: logger)
        // The resident row too: their visitor quota is counted under it, as RegisterVisitorCar does.
        let resident: PostgresQuery = "SELECT 1 FROM residents WHERE id = \(new.resident) AND community_id = \(lot.community.uuid) FOR UPDATE"
        guard try await exists(resident, connection, logger)
        else { throw LinliError.notFound("resident") }
        let (starts, ends) = (new.startsAt, new.endsAt)
        let overlapping: PostgresQuery = """
            SELECT 1 FROM parking_reservations
            WHERE lot_id = \(lot.id) AND plate = \(new.plate) AND cancelled_at IS NULL AND used_at IS NULL AND starts_at < \(ends) AND ends_at > \(starts)
            """
        guard try await !exists(overlapping, connection, logger) else {
            throw LinliError(.alreadyExists, "plate: already has a reservation in this lot in that window", field: "plate")
        }
        if let space = new.space {
            guard try await exists("SELECT 1 FROM parking_spaces WHERE id = \(space) AND lot_id = \(lot.id)", connection, logger) else {
                throw LinliError.notFound("space in this lot")
            }
            let held: PostgresQuery = """
                SELECT 1 FROM parking_permits
                WHERE space_id = \(space) AND revoked_at IS NULL AND valid_from < \(ends) AND (valid_until IS NULL OR valid_until > \(starts))
                """
            guard try await !exists(held, connection, logger) else {
                throw LinliError(.failedPrecondition, "space_id: the space is a permit holder's in that window", field: "space_id")
            }
            let taken: PostgresQuery = """
                SELECT 1 FROM parking_reservations
                WHERE space_id = \(space) AND cancelled_at IS NULL AND starts_at < \(ends) AND ends_at > \(starts)
                """
            guard try await !exists(taken, connection, logger) else {
                throw LinliError(.alreadyExists, "space_id: the space is already reserved in that window", field: "space_id")
            }
        }
        let counted = try await connection.run(
            """
            SELECT count(*) FROM parking_reservations
            WHERE lot_id = \(lot.id) AND cancelled_at IS NULL AND starts_at < \(ends) AND ends_at > \(starts)
            """, logger: logger)
        var atOnce: Int64 = 0
        for try await n in counted.decode(Int64.self) { atOnce = n }
        guard atOnce < lot.capacity else {
            throw LinliError(.resourceExhausted, "the lot's \(lot.capacity) spaces are all reserved in that window")
        }
        if new.kind == .visitor {
            try await requireVisitorQuota(resident: new.resident, lot: lot, on: connection, logger: logger)
        }
        let made = Reservation(
            id: UUIDv7.make(), community: lot.community, lot: lot.id, plate: new.plate, kind: new.kind, space: new.space, resident: new.resident,
            startsAt: starts, endsAt: ends, session: nil, usedAt: nil, cancelledAt: nil, createdAt: Date())
        try await connection.run(
            """
            INSERT INTO parking_reservations (id, community_id, lot_id, plate, kind, space_id, resident_id, starts_at, ends_at, created_by,
                                              created_at)
            VALUES (\(made.id), \(lot.community.uuid), \(lot.id), \(new.plate), \(new.kind.rawValue), \(new.space), \(new.resident),
                    \(starts), \(ends), \(user.uuid), \(made.createdAt))
            """, logger: logger)
        return made
    }

    public func reservation(_ id: UUID, for principal: Principal, lock: Bool = false, on connection: PostgresConnection, logger: Logger)
        async throws -> Reservation
    {
        let sql = "SELECT \(Self.reservationColumns) FROM parking_reservations WHERE id = $1" + (lock ? " FOR UPDATE" : "")
        let rows = try await connection.run(PostgresQuery(unsafeSQL: sql, binds: binds(id)), logger: logger)
        guard let found = try await Self.reservations(rows).first, principal.canAct(in: found.community) else {
            throw LinliError.notFound("reservation")
        }
        return found
    }

    public func cancelReservation(_ reservation: Reservation, on connection: PostgresConnection, logger: Logger) async throws -> Reservation {
        switch reservation.state() {
        case .cancelled: return reservation
        case .used: throw LinliError(.failedPrecondition, "the reserved car has already come in")
        case .expired: throw LinliError(.failedPrecondition, "the reservation's window has ended")
        case .reserved: break
        }
        let rows = try await connection.run(
            """
            UPDATE parking_reservations SET cancelled_at = now() WHERE id = \(reservation.id) AND cancelled_at IS NULL AND used_at IS NULL
            RETURNING \(unescaped: Self.reservationColumns)
            """, logger: logger)
        guard let cancelled = try await Self.reservations(rows).first else {
            throw LinliError(.failedPrecondition, "the reserved car has already come in")
        }
        return cancelled
    }

    /// A lot's reservations, newest first; `resident` narrows to one resident's.
    public func reservations(
        lot: UUID, resident: UUID?, activeOnly: Bool, before: UUID?, limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> [Reservation] {
        var b = binds(lot)
        var sql = "SELECT \(Self.reservationColumns) FROM parking_reservations WHERE lot_id = $1"
        if let resident {
            b.append(resident)
            sql += " AND resident_id = $\(b.count)"
        }
        if activeOnly { sql += " AND cancelled_at IS NULL AND used_at IS NULL AND ends_at > now()" }
        if let before {
            b.append(before)
            sql += " AND id < $\(b.count)"
        }
        b.append(Int32(clamping: limit))
        sql += " ORDER BY id DESC LIMIT $\(b.count)"
        return try await Self.reservations(try await connection.run(PostgresQuery(unsafeSQL: sql, binds: b), logger: logger))
    }

    /// A resident's visitor cars made today (registrations and visitor reservations) stay under
    /// the lot's daily limit. The caller holds a lock that serialises the resident's registrations.
    func requireVisitorQuota(resident: UUID, lot: Lot, on connection: PostgresConnection, logger: Logger) async throws {
        let today = try await connection.run(
            """
            SELECT (SELECT count(*) FROM parking_visitor_cars
                    WHERE resident_id = \(resident) AND cancelled_at IS NULL
                      AND (created_at AT TIME ZONE community_zone(community_id))::date = community_today(community_id))
                 + (SELECT count(*) FROM parking_reservations
                    WHERE resident_id = \(resident) AND kind = 'visitor' AND cancelled_at IS NULL
                      AND (created_at AT TIME ZONE community_zone(community_id))::date = community_today(community_id))
            """, logger: logger)
        var made: Int64 = 0
        for try await n in today.decode(Int64.self) { made = n }
        guard made < lot.visitorDailyLimit else {
            throw LinliError(
                .resourceExhausted, "resident_id: at most \(lot.visitorDailyLimit) visitor cars a day per resident", field: "resident_id")
        }
    }

    private func exists(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        for try await _ in try await connection.run(query, logger: logger) { return true }
        return false
    }
}
