import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Payments, prepaid top-ups and the ledger check, in the caller's tenant transaction.
public struct Cashier: Sendable {
    public init() {}

    public enum Method: String, Sendable, CaseIterable { case cash, wechat, alipay, bankCard = "bank_card", prepaid, deposit }

    public struct Allocation: Sendable, Equatable {
        public var bill: UUID
        public var method: Method
        public var amountFen: Int64
    }

    public struct Payment: Sendable, Equatable {
        public var id: UUID
        public var receiptNo: String
        public var totalFen: Int64
        public var settledFen: Int64
        public var toPrepaidFen: Int64
        public var allocations: [Allocation]
        public var paidAt: Date
    }

    public struct Check: Sendable, Equatable {
        public var debitsFen: Int64
        public var creditsFen: Int64
        public var accountsOff: Int
        public var billsOff: Int
        public var receivablesOff: Int
        public var transfers: Int
        public var bills: Int
        public var balanced: Bool { debitsFen == creditsFen && accountsOff == 0 && billsOff == 0 && receivablesOff == 0 }
    }

    /// The prepaid account of a room: general purpose.
    static let prepaidSubtype = "general"

    /// Settles the room's open bills (or the chosen ones) oldest due first with the methods in
    /// their order; an overpayment goes to the room's prepaid account. The receipt number is the
    /// community's next of the year, gap-free: the counter moves inside this transaction, so a
    /// failed payment rolls it back.
    public func pay(room: RoomID, bills chosen: [UUID], methods: [(Method, Int64)], depositKind: String = "", by principal: Principal,
                    on connection: PostgresConnection, logger: Logger) async throws -> Payment {
        let community = try await FeeDesk.community(ofRoom: room, connection, logger)
        try principal.requireScope(community)
        let bills = try await FeeDesk.bills(room: room, ids: chosen.isEmpty ? nil : chosen, openOnly: false, lock: true, connection, logger)
        if !chosen.isEmpty {
            for id in chosen where !bills.contains(where: { $0.id == id }) {
                throw LinliError.invalid("bill_ids", "\(id.uuidString.lowercased()) is not a bill of this room")
            }
        }
        let open = bills.filter { $0.openFen > 0 }
        if !chosen.isEmpty, open.count < bills.count { throw LinliError(.failedPrecondition, "bill_ids: a chosen bill is already settled", field: "bill_ids") }
        let openTotal = open.reduce(0) { $0 + $1.openFen }
        let total = methods.reduce(0) { $0 + $1.1 }
        let prepaid = try await Ledger.account(community, .prepaid, subtype: Self.prepaidSubtype, room: room, connection, logger)
        if let fromPrepaid = methods.first(where: { $0.0 == .prepaid })?.1 {
            let (balance, frozen) = try await Ledger.lockBalance(prepaid, connection, logger)
            if frozen { throw LinliError(.failedPrecondition, "methods: the prepaid account is frozen", field: "methods") }
            if fromPrepaid > balance {
                throw LinliError(.failedPrecondition, "methods: the prepaid balance is \(balance) fen, less than \(fromPrepaid)", field: "methods")
            }
        }
        var deposit: UUID?
        if let fromDeposit = methods.first(where: { $0.0 == .deposit })?.1 {
            let account = try await Ledger.account(community, .deposit, subtype: depositKind, room: room, connection, logger)
            let (balance, _) = try await Ledger.lockBalance(account, connection, logger)
            if fromDeposit > balance {
                throw LinliError(.failedPrecondition, "methods: the \(depositKind) deposit is \(balance) fen, less than \(fromDeposit)", field: "methods")
            }
            deposit = account
        }
        // Allocation: bills oldest due first, methods in the caller's order.
        var remaining = methods.map { (method: $0.0, left: $0.1) }
        var legs: [Ledger.Leg] = []
        var allocations: [Allocation] = []
        var methodAccounts: [Method: UUID] = [:]
        for method in Set(methods.map(\.0)) {
            switch method {
            case .prepaid: methodAccounts[method] = prepaid
            case .deposit: methodAccounts[method] = deposit
            default: methodAccounts[method] = try await Ledger.account(community, .channel, subtype: method.rawValue, connection, logger)
            }
        }
        var receivables: [UUID: UUID] = [:]
        for bill in open {
            var need = bill.openFen
            for index in remaining.indices where need > 0 && remaining[index].left > 0 {
                let take = min(need, remaining[index].left)
                remaining[index].left -= take
                need -= take
                if receivables[bill.item] == nil {
                    receivables[bill.item] = try await Ledger.account(community, .receivable, room: room, feeItem: bill.item, connection, logger)
                }
                legs.append(.init(debit: methodAccounts[remaining[index].method]!, credit: receivables[bill.item]!, amount: take,
                                  kind: remaining[index].method == .deposit ? "offset" : "settle", bill: bill.id))
                allocations.append(Allocation(bill: bill.id, method: remaining[index].method, amountFen: take))
            }
        }
        let settled = allocations.reduce(0) { $0 + $1.amountFen }
        var toPrepaid: Int64 = 0
        for left in remaining where left.left > 0 {
            if left.method == .prepaid || left.method == .deposit { continue }  // checked below: stored money never turns into change
            legs.append(.init(debit: methodAccounts[left.method]!, credit: prepaid, amount: left.left, kind: "topup", bill: nil,
                              memo: "overpayment"))
            toPrepaid += left.left
        }
        for left in remaining where (left.method == .prepaid || left.method == .deposit) && left.left > 0 {
            // Stored money never turns into change: it may cover only what the methods before it leave open.
            throw LinliError.invalid("methods", "\(left.left) fen of the \(left.method.rawValue) amount would be left over; open is \(openTotal) fen")
        }
        guard settled > 0 || toPrepaid > 0 else { throw LinliError(.failedPrecondition, "bill_ids: nothing is open to pay", field: "bill_ids") }
        // The hot rows (the channel account the transfers post to, and the community's receipt
        // counter) are taken last, so their locks are held for as few statements as possible.
        if settled > 0 {
            try await MetricDelta.record(.billingCollectedFen, delta: settled, community: community, on: connection, logger: logger)
        }
        let entry = UUIDv7.make()
        try await Ledger.post(entry: entry, legs, by: principal.subjectID, connection, logger)
        let id = UUIDv7.make()
        let stored = try await connection.query("""
            WITH counter AS (
                INSERT INTO receipt_counters (community_id, year, last_number)
                VALUES (\(community.uuid), extract(year FROM now() AT TIME ZONE 'Asia/Shanghai')::int4, 1)
                ON CONFLICT (community_id, year) DO UPDATE SET last_number = receipt_counters.last_number + 1
                RETURNING year, last_number)
            INSERT INTO payments (id, community_id, room_id, entry_id, total_fen, settled_fen, to_prepaid_fen, cashier_id, receipt_no)
            SELECT \(id), \(community.uuid), \(room.uuid), \(entry), \(total), \(settled), \(toPrepaid), \(principal.subjectID.uuid),
                   to_char(year, 'FM0000') || '-' || to_char(last_number, 'FM000000')
            FROM counter
            RETURNING receipt_no, created_at
            """, logger: logger)
        var receipt = ""
        var paidAt = Date()
        for try await (number, at) in stored.decode((String, Date).self) { (receipt, paidAt) = (number, at) }
        return Payment(id: id, receiptNo: receipt, totalFen: total, settledFen: settled, toPrepaidFen: toPrepaid, allocations: allocations,
                       paidAt: paidAt)
    }

    /// Money into a room's prepaid account; returns the new balance.
    public func topUp(room: RoomID, method: Method, amountFen: Int64, by principal: Principal, on connection: PostgresConnection,
                      logger: Logger) async throws -> Int64 {
        let community = try await FeeDesk.community(ofRoom: room, connection, logger)
        try principal.requireScope(community)
        let prepaid = try await Ledger.account(community, .prepaid, subtype: Self.prepaidSubtype, room: room, connection, logger)
        let channel = try await Ledger.account(community, .channel, subtype: method.rawValue, connection, logger)
        try await Ledger.post(entry: UUIDv7.make(), [.init(debit: channel, credit: prepaid, amount: amountFen, kind: "topup", bill: nil)],
                              by: principal.subjectID, connection, logger)
        return try await Ledger.lockBalance(prepaid, connection, logger).balance
    }

    public func prepaidBalance(room: RoomID, for principal: Principal, on connection: PostgresConnection,
                               logger: Logger) async throws -> (Int64, Bool) {
        let community = try await FeeDesk.community(ofRoom: room, connection, logger)
        try principal.requireScope(community)
        let rows = try await connection.query("""
            SELECT credits_fen - debits_fen, frozen FROM ledger_accounts
            WHERE community_id = \(community.uuid) AND kind = 'prepaid' AND subtype = \(Self.prepaidSubtype) AND room_id = \(room.uuid)
              AND resident_id IS NULL AND fee_item_id IS NULL
            """, logger: logger)
        for try await row in rows.decode((Int64, Bool).self) { return row }
        return (0, false)
    }

    /// Proves the community's books from the transfers themselves.
    public func check(community: CommunityID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Check {
        try principal.requireScope(community)
        let rows = try await connection.query("""
            WITH accounts AS (SELECT * FROM ledger_accounts WHERE community_id = \(community.uuid)),
            legs AS (
                SELECT t.debit_account AS account, t.amount_fen AS debit, 0::int8 AS credit FROM ledger_transfers t
                JOIN accounts a ON a.id = t.debit_account
                UNION ALL
                SELECT t.credit_account, 0, t.amount_fen FROM ledger_transfers t JOIN accounts a ON a.id = t.credit_account),
            per_account AS (SELECT account, sum(debit)::int8 AS debits, sum(credit)::int8 AS credits FROM legs GROUP BY account),
            bill_figures AS (
                SELECT b.id, b.room_id, b.fee_item_id, b.amount_fen,
                       coalesce(sum(t.amount_fen) FILTER (WHERE t.kind = 'charge'), 0)::int8 AS charged,
                       coalesce(sum(t.amount_fen) FILTER (WHERE t.kind IN ('settle', 'offset')), 0)::int8
                         - coalesce(sum(t.amount_fen) FILTER (WHERE t.kind = 'reversal'), 0)::int8 AS settled
                FROM bills b LEFT JOIN ledger_transfers t ON t.bill_id = b.id
                WHERE b.community_id = \(community.uuid) GROUP BY b.id),
            open_by_account AS (
                SELECT room_id, fee_item_id, sum(charged - settled)::int8 AS open FROM bill_figures GROUP BY 1, 2)
            SELECT (SELECT coalesce(sum(debits_fen), 0)::int8 FROM accounts),
                   (SELECT coalesce(sum(credits_fen), 0)::int8 FROM accounts),
                   (SELECT count(*)::int4 FROM accounts a LEFT JOIN per_account p ON p.account = a.id
                     WHERE a.debits_fen <> coalesce(p.debits, 0) OR a.credits_fen <> coalesce(p.credits, 0)),
                   (SELECT count(*)::int4 FROM bill_figures WHERE charged <> amount_fen OR settled < 0 OR settled > amount_fen),
                   (SELECT count(*)::int4 FROM accounts a FULL JOIN open_by_account o ON o.room_id = a.room_id AND o.fee_item_id = a.fee_item_id
                     WHERE (a.kind = 'receivable' OR a.id IS NULL) AND coalesce(a.debits_fen - a.credits_fen, 0) <> coalesce(o.open, 0)),
                   (SELECT count(*)::int4 FROM legs) / 2,
                   (SELECT count(*)::int4 FROM bill_figures)
            """, logger: logger)
        for try await (debits, credits, accountsOff, billsOff, receivablesOff, transfers, bills) in rows.decode(
            (Int64, Int64, Int32, Int32, Int32, Int32, Int32).self) {
            return Check(debitsFen: debits, creditsFen: credits, accountsOff: Int(accountsOff), billsOff: Int(billsOff),
                         receivablesOff: Int(receivablesOff), transfers: Int(transfers), bills: Int(bills))
        }
        throw LinliError(.internal, "ledger check returned nothing")
    }
}
