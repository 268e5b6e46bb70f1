import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Refunds (退款) with approval, invoices (发票) split from a payment, and the community's
/// allocation setting, in the caller's tenant transaction.
public struct RefundStore: Sendable {
    public init() {}

    public enum State: String, Sendable, CaseIterable { case requested, approved, rejected }

    public struct Line: Sendable, Equatable {
        public var bill: UUID
        public var amountFen: Int64
        public init(bill: UUID, amountFen: Int64) {
            self.bill = bill
            self.amountFen = amountFen
        }
    }

    public struct Refund: Sendable, Equatable {
        public var id: UUID
        public var payment: UUID
        public var receiptNo: String
        public var state: State
        public var amountFen: Int64
        public var reason: String
        public var waive: Bool
        public var lines: [Line]
        public var requestedBy: UserID
        public var requestedAt: Date
        public var decidedBy: UserID?
        public var decidedAt: Date?
        public var decisionNote: String
        public var payouts: [PaymentStore.Allocation]
    }

    public struct InvoiceRequest: Sendable, Equatable {
        public var title: String
        public var taxNo: String
        public var bills: [UUID]
        public init(title: String, taxNo: String, bills: [UUID]) {
            self.title = title
            self.taxNo = taxNo
            self.bills = bills
        }
    }

    public struct Invoice: Sendable, Equatable {
        public var id: UUID
        public var payment: UUID
        public var invoiceNo: String
        public var title: String
        public var taxNo: String
        public var amountFen: Int64
        public var bills: [UUID]
        public var voidReason: String?
        public var issuedAt: Date
    }

    // MARK: Settings

    public func allocation(
        community: CommunityID, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> PaymentStore.AllocationOrder {
        try Scope.requireCommunity(principal, community)
        try await FeeStore.requireCommunity(community, connection, logger)
        return try await PaymentStore.allocationOrder(community, connection, logger)
    }

    public func setAllocation(
        _ order: PaymentStore.AllocationOrder, community: CommunityID, by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        try Scope.requireCommunity(principal, community)
        try await FeeStore.requireCommunity(community, connection, logger)
        try await connection.run(
            """
            INSERT INTO billing_settings (community_id, allocation, updated_by) VALUES (\(community.uuid), \(order.rawValue), \(principal.subjectID.uuid))
            ON CONFLICT (community_id) DO UPDATE SET allocation = EXCLUDED.allocation, updated_by = EXCLUDED.updated_by, updated_at = now()
            """, logger: logger)
    }

    // MARK: Refunds

    /// What a payment settled on each bill, per paying account, less what approved refunds gave
    /// back: newest leg first. A coupon's part is not money and is never refunded (voiding the
    /// receipt gives the coupon back).
    struct Refundable {
        var bill: UUID
        var payer: UUID  // the account that paid: a channel, prepaid or deposit
        var receivable: UUID
        var method: PaymentStore.Method
        var fen: Int64
    }

    static func refundable(payment: UUID, entry: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Refundable] {
        let rows = try await connection.run(
            """
            WITH paid AS (
                SELECT t.bill_id, t.debit_account AS payer, t.credit_account AS receivable, sum(t.amount_fen) AS fen, max(t.id) AS newest
                FROM ledger_transfers t WHERE t.entry_id = \(entry) AND t.kind IN ('settle', 'offset') GROUP BY 1, 2, 3),
            refunded AS (
                SELECT t.bill_id, t.credit_account AS payer, sum(t.amount_fen) AS fen
                FROM ledger_transfers t JOIN refunds r ON r.entry_id = t.entry_id
                WHERE r.payment_id = \(payment) AND t.kind = 'refund' GROUP BY 1, 2)
            SELECT p.bill_id, p.payer, p.receivable, CASE a.kind WHEN 'channel' THEN a.subtype ELSE a.kind END,
                   (p.fen - coalesce(r.fen, 0))::int8
            FROM paid p JOIN ledger_accounts a ON a.id = p.payer AND a.kind <> 'write_off'
            LEFT JOIN refunded r ON r.bill_id = p.bill_id AND r.payer = p.payer
            ORDER BY p.newest DESC
            """, logger: logger)
        var result: [Refundable] = []
        for try await (bill, payer, receivable, method, fen) in rows.decode((UUID, UUID, UUID, String, Int64).self) where fen > 0 {
            result.append(
                Refundable(bill: bill, payer: payer, receivable: receivable, method: PaymentStore.Method(rawValue: method) ?? .cash, fen: fen))
        }
        return result
    }

    /// The payment, locked: its community, ledger entry and whether it is void.
    static func lockPayment(_ payment: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> (CommunityID, UUID, Bool) {
        let rows = try await connection.run(
            """
            SELECT community_id, entry_id, voided_at IS NOT NULL FROM payments WHERE id = \(payment) FOR UPDATE
            """, logger: logger)
        for try await (community, entry, voided) in rows.decode((UUID, UUID, Bool).self) { return (CommunityID(community), entry, voided) }
        throw LinliError.notFound("payment")
    }

    /// Requests a refund of what `payment` settled on some of its bills (all of it when `lines` is empty).
    public func request(
        payment: UUID, lines requested: [Line], reason: String, waive: Bool, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Refund {
        let (community, entry, voided) = try await Self.lockPayment(payment, connection, logger)
        try Scope.requireCommunity(principal, community)
        if voided { throw LinliError(.failedPrecondition, "payment_id: the receipt is void", field: "payment_id") }
        let pending = try await connection.run("SELECT 1 FROM refunds WHERE payment_id = \(payment) AND state = 'requested'", logger: logger)
        for try await _ in pending {
            throw LinliError(.failedPrecondition, "payment_id: a refund of this payment is waiting for approval", field: "payment_id")
        }
        var perBill: [UUID: Int64] = [:]
        for leg in try await Self.refundable(payment: payment, entry: entry, connection, logger) { perBill[leg.bill, default: 0] += leg.fen }
        var lines = requested
        if lines.isEmpty {
            lines = perBill.sorted { $0.key.uuidString < $1.key.uuidString }.map { Line(bill: $0.key, amountFen: $0.value) }
            if lines.isEmpty {
                throw LinliError(.failedPrecondition, "payment_id: nothing this payment settled is left to refund", field: "payment_id")
            }
        }
        for (index, line) in lines.enumerated() {
            guard let left = perBill[line.bill] else {
                throw LinliError.invalid("lines[\(index)].bill_id", "is not a bill this payment settled")
            }
            guard line.amountFen <= left else {
                throw LinliError(
                    .failedPrecondition, "lines[\(index)].amount_fen: \(left) fen of this bill is left to refund",
                    field: "lines[\(index)].amount_fen")
            }
        }
        let id = UUIDv7.make()
        let total = lines.reduce(0) { $0 + $1.amountFen }
        try await connection.run(
            """
            INSERT INTO refunds (id, community_id, payment_id, state, amount_fen, reason, waive, requested_by)
            VALUES (\(id), \(community.uuid), \(payment), 'requested', \(total), \(reason), \(waive), \(principal.subjectID.uuid))
            """, logger: logger)
        try await connection.run(
            """
            INSERT INTO refund_lines (refund_id, bill_id, amount_fen)
            SELECT \(id), bill, amount FROM unnest(\(lines.map(\.bill))::uuid[], \(lines.map(\.amountFen))::int8[]) AS l (bill, amount)
            """, logger: logger)
        return try await refund(id, for: principal, on: connection, logger: logger)
    }

    /// Approves a requested refund: the settlements are reversed through the accounts that paid
    /// them, newest first; with `waive` the bills are written off; invoices for them are voided.
    public func approve(_ id: UUID, note: String, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Refund {
        let (refund, community) = try await lockRequested(id, by: principal, connection, logger)
        if refund.requestedBy == principal.subjectID {
            throw LinliError(.permissionDenied, "refund_id: a refund is approved by someone other than who requested it", field: "refund_id")
        }
        let (_, entry, voided) = try await Self.lockPayment(refund.payment, connection, logger)
        if voided { throw LinliError(.failedPrecondition, "refund_id: the receipt has been voided since", field: "refund_id") }
        try await connection.run(
            """
            SELECT 1 FROM bills WHERE id = ANY(\(refund.lines.map(\.bill))::uuid[]) ORDER BY id FOR UPDATE
            """, logger: logger)
        var available = try await Self.refundable(payment: refund.payment, entry: entry, connection, logger)
        var legs: [Ledger.Leg] = []
        for line in refund.lines {
            var need = line.amountFen
            for index in available.indices where available[index].bill == line.bill && need > 0 && available[index].fen > 0 {
                let take = min(need, available[index].fen)
                available[index].fen -= take
                need -= take
                legs.append(.init(debit: available[index].receivable, credit: available[index].payer, amount: take, kind: .refund, bill: line.bill))
            }
            if need > 0 {
                throw LinliError(
                    .failedPrecondition,
                    "refund_id: only \(line.amountFen - need) fen of bill \(line.bill.uuidString.lowercased()) is left to refund",
                    field: "refund_id")
            }
            if refund.waive {
                guard let receivable = legs.last?.debit else { continue }
                let item = try await Self.feeItem(ofBill: line.bill, connection, logger)
                let writeOff = try await Ledger.account(community, .writeOff, feeItem: item, connection, logger)
                legs.append(
                    .init(
                        debit: writeOff, credit: receivable, amount: line.amountFen, kind: .writeOff, bill: line.bill,
                        memo: "refund: " + refund.reason))
            }
        }
        let refundEntry = UUIDv7.make()
        try await Ledger.post(entry: refundEntry, legs, by: principal.subjectID, connection, logger)
        try await MetricDelta.record(.billingCollectedFen, delta: -refund.amountFen, community: community, on: connection, logger: logger)
        if refund.waive {
            try await MetricDelta.record(.billingChargedFen, delta: -refund.amountFen, community: community, on: connection, logger: logger)
        }
        try await connection.run(
            """
            UPDATE refunds SET state = 'approved', decided_by = \(principal.subjectID.uuid), decided_at = now(), decision_note = \(note),
                               entry_id = \(refundEntry)
            WHERE id = \(id)
            """, logger: logger)
        // Invoices for refunded bills are voided (红冲); issue new ones for what remains.
        try await connection.run(
            """
            UPDATE invoices SET voided_at = now(), void_reason = 'refunded'
            WHERE payment_id = \(refund.payment) AND voided_at IS NULL AND bill_ids && \(refund.lines.map(\.bill))::uuid[]
            """, logger: logger)
        return try await self.refund(id, for: principal, on: connection, logger: logger)
    }

    public func reject(_ id: UUID, note: String, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Refund {
        _ = try await lockRequested(id, by: principal, connection, logger)
        try await connection.run(
            """
            UPDATE refunds SET state = 'rejected', decided_by = \(principal.subjectID.uuid), decided_at = now(), decision_note = \(note)
            WHERE id = \(id)
            """, logger: logger)
        return try await refund(id, for: principal, on: connection, logger: logger)
    }

    private func lockRequested(
        _ id: UUID, by principal: Principal, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> (Refund, CommunityID) {
        try await connection.run("SELECT 1 FROM refunds WHERE id = \(id) FOR UPDATE", logger: logger)
        let refund = try await refund(id, for: principal, on: connection, logger: logger)
        guard refund.state == .requested else {
            throw LinliError(.failedPrecondition, "refund_id: the refund is already \(refund.state.rawValue)", field: "refund_id")
        }
        let community = try await Self.community(ofPayment: refund.payment, connection, logger)
        return (refund, community)
    }

    public func refund(_ id: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Refund {
        let found = try await refunds(where: "r.id = $1", id, for: principal, connection, logger)
        guard let refund = found.first else { throw LinliError.notFound("refund") }
        return refund
    }

    public func list(
        community: CommunityID, state: State?, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Refund] {
        try Scope.requireCommunity(principal, community)
        if let state {
            return try await refunds(
                where: "r.community_id = $1 AND r.state = '\(state.rawValue)'", community.uuid, for: principal, connection, logger)
        }
        return try await refunds(where: "r.community_id = $1", community.uuid, for: principal, connection, logger)
    }

    private func refunds(
        where condition: String, _ key: UUID, for principal: Principal, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> [Refund] {
        var binds = PostgresBindings()
        binds.append(key)
        let rows = try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    SELECT r.id, r.community_id, r.payment_id, p.receipt_no, r.state, r.amount_fen, r.reason, r.waive, r.requested_by, r.requested_at,
                           r.decided_by, r.decided_at, coalesce(r.decision_note, ''), r.entry_id,
                           (SELECT array_agg(bill_id ORDER BY bill_id) FROM refund_lines WHERE refund_id = r.id),
                           (SELECT array_agg(amount_fen ORDER BY bill_id) FROM refund_lines WHERE refund_id = r.id)
                    FROM refunds r JOIN payments p ON p.id = r.payment_id
                    WHERE \(condition) ORDER BY r.requested_at DESC, r.id LIMIT 500
                    """, binds: binds), logger: logger)
        var result: [Refund] = []
        var entries: [UUID: Int] = [:]
        for try await (id, community, payment, receipt, state, amount, reason, waive, by, at, decidedBy, decidedAt, note, entry, bills, amounts)
            in rows.decode((UUID, UUID, UUID, String, String, Int64, String, Bool, UUID, Date, UUID?, Date?, String, UUID?, [UUID], [Int64]).self)
        {
            try Scope.requireCommunity(principal, CommunityID(community))
            if let entry { entries[entry] = result.count }
            result.append(
                Refund(
                    id: id, payment: payment, receiptNo: receipt, state: State(rawValue: state) ?? .requested, amountFen: amount,
                    reason: reason, waive: waive, lines: zip(bills, amounts).map { Line(bill: $0, amountFen: $1) },
                    requestedBy: UserID(by), requestedAt: at, decidedBy: decidedBy.map(UserID.init), decidedAt: decidedAt,
                    decisionNote: note, payouts: []))
        }
        guard !entries.isEmpty else { return result }
        let payouts = try await connection.run(
            """
            SELECT t.entry_id, t.bill_id, CASE a.kind WHEN 'channel' THEN a.subtype ELSE a.kind END, t.amount_fen
            FROM ledger_transfers t JOIN ledger_accounts a ON a.id = t.credit_account
            WHERE t.entry_id = ANY(\(Array(entries.keys))::uuid[]) AND t.kind = 'refund' ORDER BY t.id
            """, logger: logger)
        for try await (entry, bill, method, amount) in payouts.decode((UUID, UUID, String, Int64).self) {
            guard let index = entries[entry], let method = PaymentStore.Method(rawValue: method) else { continue }
            result[index].payouts.append(PaymentStore.Allocation(bill: bill, method: method, amountFen: amount))
        }
        return result
    }

    static func community(ofPayment payment: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> CommunityID {
        for try await id in try await connection.run("SELECT community_id FROM payments WHERE id = \(payment)", logger: logger).decode(UUID.self) {
            return CommunityID(id)
        }
        throw LinliError.notFound("payment")
    }

    static func feeItem(ofBill bill: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> UUID {
        for try await id in try await connection.run("SELECT fee_item_id FROM bills WHERE id = \(bill)", logger: logger).decode(UUID.self) {
            return id
        }
        throw LinliError.notFound("bill")
    }

    // MARK: Write-offs

    /// Writes off `amountFen` of a bill's open amount and, with `waiveLateFee`, the late fee
    /// accrued so far (charged and written off in one entry, so accrual restarts today).
    /// Returns the bill afterwards and what was written off.
    public func writeOff(
        bill id: UUID, amountFen: Int64, waiveLateFee: Bool, reason: String, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> (FeeStore.Bill, Int64) {
        let rows = try await connection.run("SELECT room_id, community_id FROM bills WHERE id = \(id)", logger: logger)
        var found: (RoomID, CommunityID)?
        for try await (room, community) in rows.decode((UUID, UUID).self) { found = (RoomID(room), CommunityID(community)) }
        guard let (room, community) = found else { throw LinliError.notFound("bill") }
        try Scope.requireCommunity(principal, community)
        guard let bill = try await FeeStore.bills(room: room, ids: [id], openOnly: false, lock: true, connection, logger).first else {
            throw LinliError.notFound("bill")
        }
        let lateFee = waiveLateFee ? bill.lateFeeDueFen : 0
        if waiveLateFee, lateFee == 0, amountFen == 0 {
            throw LinliError(.failedPrecondition, "waive_late_fee: no late fee has accrued on this bill", field: "waive_late_fee")
        }
        guard amountFen <= bill.openFen else {
            throw LinliError(.failedPrecondition, "amount_fen: \(bill.openFen) fen of this bill is open", field: "amount_fen")
        }
        let receivable = try await Ledger.account(community, .receivable, room: room, feeItem: bill.item, connection, logger)
        let writeOff = try await Ledger.account(community, .writeOff, feeItem: bill.item, connection, logger)
        var legs: [Ledger.Leg] = []
        if lateFee > 0 {
            let revenue = try await Ledger.account(community, .revenue, subtype: "late_fee", feeItem: bill.item, connection, logger)
            legs.append(.init(debit: receivable, credit: revenue, amount: lateFee, kind: .lateFee, bill: id))
        }
        let total = amountFen + lateFee
        if total > 0 {
            legs.append(.init(debit: writeOff, credit: receivable, amount: total, kind: .writeOff, bill: id, memo: reason))
        }
        try await Ledger.post(entry: UUIDv7.make(), legs, by: principal.subjectID, connection, logger)
        if amountFen > 0 {
            try await MetricDelta.record(.billingChargedFen, delta: -amountFen, community: community, on: connection, logger: logger)
        }
        let after = try await FeeStore.bills(room: room, ids: [id], openOnly: false, lock: false, connection, logger)
        return (after[0], total)
    }

    // MARK: Invoices

    /// Issues invoices for a payment, each for what it settled (less refunds) on the bills named;
    /// a bill is on one live invoice at most. Numbers are the community's next of the year, gap-free.
    public func issueInvoices(
        payment: UUID, _ requests: [InvoiceRequest], by principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Invoice] {
        let (community, entry, voided) = try await Self.lockPayment(payment, connection, logger)
        try Scope.requireCommunity(principal, community)
        if voided { throw LinliError(.failedPrecondition, "payment_id: the receipt is void", field: "payment_id") }
        var perBill: [UUID: Int64] = [:]
        for leg in try await Self.refundable(payment: payment, entry: entry, connection, logger) { perBill[leg.bill, default: 0] += leg.fen }
        var invoiced = Set<UUID>()
        let live = try await connection.run(
            """
            SELECT unnest(bill_ids) FROM invoices WHERE payment_id = \(payment) AND voided_at IS NULL
            """, logger: logger)
        for try await bill in live.decode(UUID.self) { invoiced.insert(bill) }
        var amounts: [Int64] = []
        for (index, request) in requests.enumerated() {
            var amount: Int64 = 0
            for (position, bill) in request.bills.enumerated() {
                let field = "invoices[\(index)].bill_ids[\(position)]"
                guard let fen = perBill[bill] else { throw LinliError.invalid(field, "is not a bill this payment settled (or it was refunded)") }
                guard invoiced.insert(bill).inserted else {
                    throw LinliError(.alreadyExists, "\(field): the bill is already on an invoice of this payment", field: field)
                }
                amount += fen
            }
            amounts.append(amount)
        }
        var result: [Invoice] = []
        for (request, amount) in zip(requests, amounts) {
            let id = UUIDv7.make()
            let rows = try await connection.run(
                """
                INSERT INTO invoices (id, community_id, payment_id, invoice_no, title, tax_no, amount_fen, bill_ids, created_by)
                VALUES (\(id), \(community.uuid), \(payment), next_document_no(\(community.uuid), 'invoice'), \(request.title), \(request.taxNo),
                        \(amount), \(request.bills)::uuid[], \(principal.subjectID.uuid))
                RETURNING invoice_no, created_at
                """, logger: logger)
            for try await (number, at) in rows.decode((String, Date).self) {
                result.append(
                    Invoice(
                        id: id, payment: payment, invoiceNo: number, title: request.title, taxNo: request.taxNo, amountFen: amount,
                        bills: request.bills, voidReason: nil, issuedAt: at))
            }
        }
        return result
    }

    public func invoices(payment: UUID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> [Invoice] {
        try Scope.requireCommunity(principal, try await Self.community(ofPayment: payment, connection, logger))
        let rows = try await connection.run(
            """
            SELECT id, invoice_no, title, tax_no, amount_fen, bill_ids, void_reason, created_at FROM invoices
            WHERE payment_id = \(payment) ORDER BY invoice_no
            """, logger: logger)
        var result: [Invoice] = []
        for try await (id, number, title, taxNo, amount, bills, reason, at) in rows.decode(
            (UUID, String, String, String, Int64, [UUID], String?, Date).self)
        {
            result.append(
                Invoice(
                    id: id, payment: payment, invoiceNo: number, title: title, taxNo: taxNo, amountFen: amount, bills: bills,
                    voidReason: reason, issuedAt: at))
        }
        return result
    }
}
