import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Receipts (reprint and void), prepaid freeze and withdrawal, and arrears, in the caller's tenant transaction.
extension PaymentStore {
    public struct Receipt: Sendable, Equatable {
        public struct Line: Sendable, Equatable {
            public var bill: UUID?
            public var itemName: String
            public var period: String
            public var method: String
            public var amountFen: Int64
            public var kind: String
        }
        public var payment: UUID
        public var receiptNo: String
        public var room: RoomID
        public var roomLabel: String
        public var cashier: UserID
        public var totalFen: Int64
        public var settledFen: Int64
        public var toPrepaidFen: Int64
        public var paidAt: Date
        public var voidedAt: Date?
        public var voidReason: String
        public var lines: [Line]
        public var lateFeeFen: Int64 = 0
        public var refundedFen: Int64 = 0
    }

    public struct Arrears: Sendable, Equatable {
        public var key: String  // a room label or a building name
        public var id: UUID  // the room or the building
        public var bucketsFen: [Int64]  // days overdue 1–30, 31–90, 91–180, 181–365, over 365
        public var totalFen: Int64 { bucketsFen.reduce(0, +) }
    }

    /// A receipt's data, for reprinting; lines are what each method settled (and put on prepaid).
    public func receipt(_ payment: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Receipt {
        let rows = try await connection.run(
            """
            SELECT p.receipt_no, p.community_id, p.room_id, room_label(bd.name, r.unit, r.number), p.cashier_id, p.total_fen, p.settled_fen,
                   p.to_prepaid_fen, p.created_at, p.voided_at, coalesce(p.void_reason, ''), p.entry_id,
                   coalesce(p.reversal_entry_id, p.entry_id)
            FROM payments p JOIN rooms r ON r.id = p.room_id JOIN buildings bd ON bd.id = r.building_id WHERE p.id = \(payment)
            """, logger: logger)
        var found: (Receipt, CommunityID, UUID, UUID)?
        for try await (number, community, room, label, cashier, total, settled, toPrepaid, at, voided, reason, entry, reversal) in rows.decode(
            (String, UUID, UUID, String, UUID, Int64, Int64, Int64, Date, Date?, String, UUID, UUID).self)
        {
            found = (
                Receipt(
                    payment: payment, receiptNo: number, room: RoomID(room), roomLabel: label, cashier: UserID(cashier), totalFen: total,
                    settledFen: settled, toPrepaidFen: toPrepaid, paidAt: at, voidedAt: voided, voidReason: reason, lines: []),
                CommunityID(community), entry, reversal
            )
        }
        guard let found else { throw LinliError.notFound("payment") }
        var receipt = found.0
        let (community, entry, reversal) = (found.1, found.2, found.3)
        try Scope.requireCommunity(principal, community)
        let lines = try await connection.run(
            """
            SELECT t.bill_id, coalesce(i.name, '预存款'), coalesce(to_char(b.period_start, 'YYYY-MM'), ''),
                   CASE WHEN t.kind = 'late_fee' THEN '' WHEN m.kind = 'channel' THEN m.subtype
                        WHEN m.kind = 'write_off' AND m.subtype = \(CommerceLedger.couponCost) THEN 'coupon' ELSE m.kind END,
                   CASE WHEN t.kind IN ('reversal', 'refund') THEN -t.amount_fen ELSE t.amount_fen END, t.kind
            FROM ledger_transfers t
            JOIN ledger_accounts m ON m.id = CASE WHEN t.kind IN ('reversal', 'refund') THEN t.credit_account ELSE t.debit_account END
            LEFT JOIN bills b ON b.id = t.bill_id LEFT JOIN fee_items i ON i.id = b.fee_item_id
            WHERE t.entry_id IN (\(entry), \(reversal), \(payment))
               OR t.entry_id IN (SELECT entry_id FROM refunds WHERE payment_id = \(payment) AND state = 'approved')
            ORDER BY t.id
            """, logger: logger)
        for try await (bill, item, period, method, amount, kind) in lines.decode((UUID?, String, String, String, Int64, String).self) {
            switch kind {
            case "write_off": continue
            case "late_fee": receipt.lateFeeFen += amount  // charged, not paid: the settle lines carry the money
            default:
                receipt.lines.append(.init(bill: bill, itemName: item, period: period, method: method, amountFen: amount, kind: kind))
                if kind == "refund" { receipt.refundedFen -= amount }
            }
        }
        return receipt
    }

    /// Voids a receipt: every transfer of its payment is reversed by a new one, so the bills are
    /// open again and an overpayment leaves the prepaid account (refused if it has been spent).
    public func void(
        _ payment: UUID, reason: String, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Receipt {
        let rows = try await connection.run(
            """
            SELECT community_id, entry_id, voided_at IS NOT NULL FROM payments WHERE id = \(payment) FOR UPDATE
            """, logger: logger)
        var found: (UUID, UUID, Bool)?
        for try await row in rows.decode((UUID, UUID, Bool).self) { found = row }
        guard let (community, entry, voided) = found else { throw LinliError.notFound("payment") }
        try Scope.requireCommunity(principal, CommunityID(community))
        if voided { throw LinliError(.failedPrecondition, "payment_id: the receipt is already void", field: "payment_id") }
        let refunded = try await connection.run(
            """
            SELECT state FROM refunds WHERE payment_id = \(payment) AND state IN ('requested', 'approved') LIMIT 1
            """, logger: logger)
        for try await state in refunded.decode(String.self) {
            throw LinliError(
                .failedPrecondition,
                state == "requested"
                    ? "payment_id: a refund of this payment is waiting for approval; reject it first"
                    : "payment_id: part of this payment has been refunded; refund the rest instead of voiding",
                field: "payment_id")
        }
        let reversal = UUIDv7.make()
        do {
            try await Ledger.reverse(entry: entry, as: reversal, memo: "void: " + reason, by: principal.subjectID, connection, logger)
        } catch {
            if Database.sqlState(error) == "23514" {
                throw LinliError(
                    .failedPrecondition, "payment_id: the prepaid money this payment added has been spent; it cannot be voided",
                    field: "payment_id")
            }
            throw error
        }
        let settled = try await connection.run("SELECT settled_fen FROM payments WHERE id = \(payment)", logger: logger)
        for try await fen in settled.decode(Int64.self) where fen > 0 {
            try await MetricDelta.record(.billingCollectedFen, delta: -fen, community: CommunityID(community), on: connection, logger: logger)
        }
        try await connection.run(
            """
            UPDATE invoices SET voided_at = now(), void_reason = 'receipt voided' WHERE payment_id = \(payment) AND voided_at IS NULL
            """, logger: logger)
        try await connection.run(
            """
            UPDATE payments SET voided_at = now(), voided_by = \(principal.subjectID.uuid), void_reason = \(reason),
                                reversal_entry_id = \(reversal)
            WHERE id = \(payment)
            """, logger: logger)
        // A coupon spent on it can be spent again.
        try await coupons?.giveBack(payment: payment, on: connection, logger: logger)
        return try await receipt(payment, for: principal, on: connection, logger: logger)
    }

    public func setFrozen(
        _ owner: PrepaidOwner, type: PrepaidType = .general, frozen: Bool, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        let community = try await owner.community(for: principal, connection, logger)
        let prepaid = try await owner.account(community, type, connection, logger)
        try await connection.run("UPDATE ledger_accounts SET frozen = \(frozen) WHERE id = \(prepaid)", logger: logger)
    }

    /// Money out of a room's prepaid account through `method`; returns the new balance.
    public func withdraw(
        _ owner: PrepaidOwner, type: PrepaidType = .general, method: Method, amountFen: Int64, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64 {
        let community = try await owner.community(for: principal, connection, logger)
        let prepaid = try await owner.account(community, type, connection, logger)
        let (balance, frozen) = try await Ledger.lockBalance(prepaid, connection, logger)
        let field = owner.room == nil ? "resident_id" : "room_id"
        if frozen { throw LinliError(.failedPrecondition, "\(field): the prepaid account is frozen", field: field) }
        guard amountFen <= balance else {
            throw LinliError(.failedPrecondition, "amount_fen: the prepaid balance is \(balance) fen", field: "amount_fen")
        }
        let channel = try await Ledger.account(community, .channel, subtype: method.rawValue, connection, logger)
        try await Ledger.post(
            entry: UUIDv7.make(), [.init(debit: prepaid, credit: channel, amount: amountFen, kind: .withdraw, bill: nil)],
            by: principal.subjectID, connection, logger)
        return balance - amountFen
    }

    /// Open amounts past due, by room or by building, in age buckets as of the community's today.
    public func arrears(
        community: CommunityID, byBuilding: Bool, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Arrears] {
        try Scope.requireCommunity(principal, community)
        let rows = try await connection.run(
            """
            WITH open_bills AS (
                SELECT b.room_id, (SELECT community_today(\(community.uuid))) - b.due_on AS late,
                       bill_open_fen(b.id) AS open
                FROM bills b WHERE b.community_id = \(community.uuid) AND b.due_on < (SELECT community_today(\(community.uuid)))),
            keyed AS (
                SELECT CASE WHEN \(byBuilding) THEN bd.id ELSE r.id END AS id,
                       CASE WHEN \(byBuilding) THEN bd.name ELSE room_label(bd.name, r.unit, r.number) END AS key, o.late, o.open
                FROM open_bills o JOIN rooms r ON r.id = o.room_id JOIN buildings bd ON bd.id = r.building_id WHERE o.open > 0)
            SELECT id, key,
                   coalesce(sum(open) FILTER (WHERE late <= 30), 0)::int8,
                   coalesce(sum(open) FILTER (WHERE late BETWEEN 31 AND 90), 0)::int8,
                   coalesce(sum(open) FILTER (WHERE late BETWEEN 91 AND 180), 0)::int8,
                   coalesce(sum(open) FILTER (WHERE late BETWEEN 181 AND 365), 0)::int8,
                   coalesce(sum(open) FILTER (WHERE late > 365), 0)::int8
            FROM keyed GROUP BY id, key ORDER BY sum(open) DESC, key LIMIT 1000
            """, logger: logger)
        var result: [Arrears] = []
        for try await (id, key, a, b, c, d, e) in rows.decode((UUID, String, Int64, Int64, Int64, Int64, Int64).self) {
            result.append(Arrears(key: key, id: id, bucketsFen: [a, b, c, d, e]))
        }
        return result
    }
}

extension PaymentStore {
    public enum DepositMove: Sendable { case collect(Method), convert, refund(Method) }

    /// Moves money into or out of a room's deposit of `kind`; returns that deposit's balance afterwards.
    public func deposit(
        _ move: DepositMove, room: RoomID, kind: String, amountFen: Int64, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64 {
        let community = try await FeeStore.community(ofRoom: room, connection, logger)
        try Scope.requireCommunity(principal, community)
        let account = try await Ledger.account(community, .deposit, subtype: kind, room: room, connection, logger)
        let (balance, _) = try await Ledger.lockBalance(account, connection, logger)
        let leg: Ledger.Leg
        switch move {
        case .collect(let method):
            let channel = try await Ledger.account(community, .channel, subtype: method.rawValue, connection, logger)
            leg = .init(debit: channel, credit: account, amount: amountFen, kind: .collect, bill: nil)
        case .convert, .refund:
            guard amountFen <= balance else {
                throw LinliError(.failedPrecondition, "amount_fen: the \(kind) deposit is \(balance) fen", field: "amount_fen")
            }
            if case .refund(let method) = move {
                let channel = try await Ledger.account(community, .channel, subtype: method.rawValue, connection, logger)
                leg = .init(debit: account, credit: channel, amount: amountFen, kind: .refund, bill: nil)
            } else {
                let prepaid = try await PrepaidOwner.room(room).account(community, .general, connection, logger)
                leg = .init(debit: account, credit: prepaid, amount: amountFen, kind: .convert, bill: nil)
            }
        }
        try await Ledger.post(entry: UUIDv7.make(), [leg], by: principal.subjectID, connection, logger)
        return try await Ledger.lockBalance(account, connection, logger).balance
    }

    public func deposits(
        room: RoomID, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [(kind: String, balanceFen: Int64)] {
        let community = try await FeeStore.community(ofRoom: room, connection, logger)
        try Scope.requireCommunity(principal, community)
        let rows = try await connection.run(
            """
            SELECT subtype, credits_fen - debits_fen FROM ledger_accounts
            WHERE community_id = \(community.uuid) AND kind = 'deposit' AND room_id = \(room.uuid) ORDER BY subtype
            """, logger: logger)
        var result: [(kind: String, balanceFen: Int64)] = []
        for try await (kind, balance) in rows.decode((String, Int64).self) { result.append((kind, balance)) }
        return result
    }
}
