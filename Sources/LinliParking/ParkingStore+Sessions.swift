import Foundation
import LinliBilling
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

extension ParkingStore {
    public struct Session: Sendable {
        public var id: UUID
        public var community: CommunityID
        public var lot: UUID
        public var plate: String
        public var carClass: GateDecision.CarClass
        public var enteredAt: Date?
        public var exitedAt: Date?
        public var ruleVersion: Int
        public var grossFen: Int64
        public var paidFen: Int64
        public var couponOffFen: Int64
        public var paidAt: Date?
        public var closeNote: String
    }

    static let sessionColumns = """
        s.id, s.community_id, s.lot_id, s.plate, s.car_class, s.entered_at, s.exited_at,
        coalesce((SELECT version FROM parking_fee_rules r WHERE r.id = s.rule_id), 0), s.gross_fen, s.paid_fen, s.coupon_off_fen,
        s.paid_at, s.close_note
        """

    static func sessions(_ rows: PostgresRowSequence) async throws -> [Session] {
        var result: [Session] = []
        for try await r in rows.decode((UUID, UUID, UUID, String, String, Date?, Date?, Int32, Int64, Int64, Int64, Date?, String).self) {
            result.append(
                Session(
                    id: r.0, community: CommunityID(r.1), lot: r.2, plate: r.3, carClass: GateDecision.CarClass(rawValue: r.4) ?? .temp,
                    enteredAt: r.5, exitedAt: r.6, ruleVersion: Int(clamping: r.7), grossFen: r.8, paidFen: r.9, couponOffFen: r.10, paidAt: r.11,
                    closeNote: r.12))
        }
        return result
    }

    public func session(_ id: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Session {
        let rows = try await connection.run(
            PostgresQuery(unsafeSQL: "SELECT \(Self.sessionColumns) FROM parking_sessions s WHERE s.id = $1", binds: binds(id)), logger: logger)
        guard let session = try await Self.sessions(rows).first, principal.canAct(in: session.community) else {
            throw LinliError.notFound("session")
        }
        return session
    }

    public func openSession(lot: UUID, plate: String, on connection: PostgresConnection, logger: Logger) async throws -> Session? {
        var b = binds(lot)
        b.append(plate)
        let rows = try await connection.run(
            PostgresQuery(
                unsafeSQL: "SELECT \(Self.sessionColumns) FROM parking_sessions s WHERE s.lot_id = $1 AND s.plate = $2 AND s.exited_at IS NULL",
                binds: b), logger: logger)
        return try await Self.sessions(rows).first
    }

    public func sessions(
        lot: UUID, openOnly: Bool, plate: String?, before: UUID?, limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> [Session] {
        var b = binds(lot)
        var sql = "SELECT \(Self.sessionColumns) FROM parking_sessions s WHERE s.lot_id = $1"
        if openOnly { sql += " AND s.exited_at IS NULL" }
        if let plate {
            b.append(plate)
            sql += " AND s.plate = $\(b.count)"
        }
        if let before {
            b.append(before)
            sql += " AND s.id < $\(b.count)"
        }
        b.append(Int32(clamping: limit))
        sql += " ORDER BY s.id DESC LIMIT $\(b.count)"
        return try await Self.sessions(try await connection.run(PostgresQuery(unsafeSQL: sql, binds: b), logger: logger))
    }

    public struct Quote: Sendable {
        public var minutes: Int
        public var grossFen: Int64
        public var couponOffFen: Int64
        public var dueFen: Int64
        public var leaveBy: Date?
        var used: [(id: UUID, offFen: Int64)]
    }

    /// What the open session owes at `time`, as its exit lane would see it (a charging lane),
    /// with the plate's coupons; locks the session and the coupons.
    public func quote(_ session: Session, lot: Lot, at time: Date, on connection: PostgresConnection, logger: Logger) async throws -> Quote {
        let facts = try await ParkingFacts.load(
            plate: session.plate, lot: lot.id, community: lot.community, at: time, direction: .exit, on: connection, logger: logger)
        guard let open = facts.session, open.id == session.id else {
            return Quote(minutes: 0, grossFen: session.grossFen, couponOffFen: session.couponOffFen, dueFen: 0, leaveBy: nil, used: [])
        }
        let offset = try await BusinessDay.of(lot.community, on: connection, logger: logger).timeZone.secondsFromGMT(for: time)
        let outcome = GateDecision.decide(
            GateDecision.Facts(
                direction: .exit, at: time, plate: session.plate, blacklisted: facts.blacklisted, whitelisted: facts.whitelisted,
                permit: facts.permit?.decision, session: open.decision, rule: facts.rule?.rule, coupons: facts.coupons.map(\.fee),
                payWindowMinutes: lot.payWindowMinutes, utcOffsetSeconds: offset))
        let minutes = ParkingFee.minutes(from: open.enteredAt, to: time)
        let leaveBy = open.decision.paidAt.map { $0.addingTimeInterval(TimeInterval(lot.payWindowMinutes * 60)) }
        if outcome.reason == .noFeeRule {
            throw LinliError(.failedPrecondition, "lot_id: the lot has no fee rule; staff decide at the booth", field: "lot_id")
        }
        let used = outcome.quote?.used ?? []
        return Quote(
            minutes: minutes, grossFen: outcome.quote?.grossFen ?? session.grossFen,
            couponOffFen: session.couponOffFen + used.reduce(0) { $0 + $1.offFen }, dueFen: outcome.dueFen, leaveBy: leaveBy, used: used)
    }

    public struct Payment: Sendable {
        public var id: UUID
        public var receiptNo: String
        public var amountFen: Int64
        public var method: PaymentStore.Method
        public var refundedFen: Int64
        public var paidAt: Date
        public var couponFen: Int64 = 0
    }

    /// A parking coupon to spend on a stay, and whose it must be (nil: staff take anyone's).
    public struct CouponSpent: Sendable {
        public var coupon: UUID
        public var holder: ResidentID?
        public init(coupon: UUID, holder: ResidentID?) {
            self.coupon = coupon
            self.holder = holder
        }
    }

    func recordPayment(
        id: UUID = UUIDv7.make(), community: CommunityID, session: UUID?, permit: UUID?, amount: Int64, couponFen: Int64 = 0,
        method: PaymentStore.Method, entry: UUID, receipt: String, ruleVersion: Int?, refunded: Int64 = 0, refundEntry: UUID? = nil,
        by user: UserID, on connection: PostgresConnection, logger: Logger
    ) async throws -> Payment {
        let rows = try await connection.run(
            """
            INSERT INTO parking_payments (id, community_id, session_id, permit_id, amount_fen, coupon_fen, method, entry_id, receipt_no,
                                          refunded_fen, refund_entry_id, rule_version, paid_by)
            VALUES (\(id), \(community.uuid), \(session), \(permit), \(amount), \(couponFen), \(method.rawValue), \(entry), \(receipt),
                    \(refunded), \(refundEntry), \(ruleVersion.map { Int32(clamping: $0) }), \(user.uuid))
            RETURNING created_at
            """, logger: logger)
        var at = Date()
        for try await created in rows.decode(Date.self) { at = created }
        return Payment(id: id, receiptNo: receipt, amountFen: amount, method: method, refundedFen: refunded, paidAt: at, couponFen: couponFen)
    }

    /// Pays the open session's due now: `amount` must be exactly that, less what a coupon takes
    /// off (a stale quote is refused, never half-applied). A payment that reaches a closed
    /// session is taken and refunded at once, so the money is never lost and never kept (a
    /// coupon is not spent on it).
    public func pay(
        _ session: Session, lot: Lot, amount: Int64, method: PaymentStore.Method, coupon: CouponSpent? = nil, by user: UserID,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> (Payment, Quote) {
        let now = Date()
        let quote = try await self.quote(session, lot: lot, at: now, on: connection, logger: logger)
        let stillOpen = try await openSession(lot: lot.id, plate: session.plate, on: connection, logger: logger)?.id == session.id
        let memo = "parking \(session.plate)"
        guard stillOpen else {
            guard amount > 0 else { throw LinliError(.failedPrecondition, "session_id: the car has left; nothing is due", field: "session_id") }
            let (entry, receipt) = try await ParkingLedger.collect(
                amount, method: method, into: .temp, community: lot.community, memo: memo, by: user, on: connection, logger: logger)
            let refund = try await ParkingLedger.refund(
                amount, method: method, from: .temp, community: lot.community, memo: "\(memo): the car had left", by: user, on: connection,
                logger: logger)
            let payment = try await recordPayment(
                community: lot.community, session: session.id, permit: nil, amount: amount, method: method, entry: entry, receipt: receipt,
                ruleVersion: session.ruleVersion, refunded: amount, refundEntry: refund, by: user, on: connection, logger: logger)
            return (payment, Quote(minutes: 0, grossFen: session.grossFen, couponOffFen: session.couponOffFen, dueFen: 0, leaveBy: nil, used: []))
        }
        guard quote.dueFen > 0 else {
            throw LinliError(.failedPrecondition, "amount_fen: nothing is due now", field: "amount_fen")
        }
        let id = UUIDv7.make()
        var couponFen: Int64 = 0
        if let coupon { couponFen = try await spend(coupon, on: id, dueFen: quote.dueFen, community: lot.community, connection, logger) }
        guard amount == quote.dueFen - couponFen else {
            let coupon = couponFen > 0 ? " (\(quote.dueFen) less the coupon's \(couponFen))" : ""
            throw LinliError(
                .failedPrecondition, "amount_fen: \(quote.dueFen - couponFen) fen is due now\(coupon), not \(amount)", field: "amount_fen")
        }
        let (entry, receipt) = try await ParkingLedger.collect(
            amount, couponFen: couponFen, method: method, into: .temp, community: lot.community, memo: memo, by: user, on: connection,
            logger: logger)
        let off = try await ParkingGate.redeem(quote.used, session: session.id, community: lot.community, at: now, on: connection, logger: logger)
        try await connection.run(
            """
            UPDATE parking_sessions SET paid_fen = paid_fen + \(amount + couponFen), coupon_off_fen = coupon_off_fen + \(off), paid_at = \(now),
                                        gross_fen = GREATEST(gross_fen, \(quote.grossFen))
            WHERE id = \(session.id)
            """, logger: logger)
        let payment = try await recordPayment(
            id: id, community: lot.community, session: session.id, permit: nil, amount: amount, couponFen: couponFen, method: method,
            entry: entry, receipt: receipt, ruleVersion: session.ruleVersion, by: user, on: connection, logger: logger)
        try await MetricDelta.record(.parkingRevenueFen, delta: amount, community: lot.community, on: connection, logger: logger)
        var after = quote
        after.dueFen = 0
        after.leaveBy = now.addingTimeInterval(TimeInterval(lot.payWindowMinutes * 60))
        return (payment, after)
    }

    /// The coupon spent on parking payment `id`: what it takes off `dueFen`.
    private func spend(
        _ spent: CouponSpent, on id: UUID, dueFen: Int64, community: CommunityID, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> Int64 {
        guard let coupons else { throw LinliError(.failedPrecondition, "coupon_id: coupons are not served here", field: "coupon_id") }
        guard try await coupons.use(of: spent.coupon, community: community, on: connection, logger: logger) == .parking else {
            throw LinliError(.failedPrecondition, "coupon_id: the coupon is not for parking", field: "coupon_id")
        }
        let (fen, resident) = try await coupons.redeem(
            spent.coupon, for: .parking, community: community, inScopeFen: dueFen, payment: id, on: connection, logger: logger)
        if let holder = spent.holder, holder != resident {
            throw LinliError(.notFound, "coupon_id: no such coupon of yours", field: "coupon_id")
        }
        return fen
    }

    /// Staff close an open session by hand.
    public func close(_ session: Session, note: String, by user: UserID, on connection: PostgresConnection, logger: Logger) async throws -> Session {
        let rows = try await connection.run(
            """
            UPDATE parking_sessions SET exited_at = now(), closed_by = \(user.uuid), close_note = \(note)
            WHERE id = \(session.id) AND exited_at IS NULL RETURNING exited_at
            """, logger: logger)
        var closed = session
        closed.exitedAt = nil
        for try await at in rows.decode(Date.self) { closed.exitedAt = at }
        guard closed.exitedAt != nil else {
            throw LinliError(.failedPrecondition, "session_id: the session is already closed", field: "session_id")
        }
        try await MetricDelta.record(.parkingExits, delta: 1, community: session.community, on: connection, logger: logger)
        closed.closeNote = note
        return closed
    }
}
