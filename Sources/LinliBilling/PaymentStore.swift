import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

/// Payments, prepaid top-ups and the ledger check, in the caller's tenant transaction.
public struct PaymentStore: Sendable {
    /// Coupons for fees (the commerce module's); without them a coupon is refused.
    let coupons: (any FeeCoupons)?

    public init(coupons: (any FeeCoupons)? = nil) { self.coupons = coupons }

    /// How a bill was settled; `coupon` is never a tender a client names (it comes from `coupon_id`).
    public enum Method: String, Sendable, CaseIterable { case cash, wechat, alipay, bankCard = "bank_card", prepaid, deposit, coupon }

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
        public var lateFeeFen: Int64
        public var couponFen: Int64 = 0
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

    /// Prepaid accounts are typed: property and utilities accounts pay only items of their category.
    public enum PrepaidType: String, Sendable, CaseIterable {
        case general, property, utilities
        /// Whether money of this type may pay a bill of `category`.
        func pays(_ category: FeeStore.Category) -> Bool {
            switch self {
            case .general: true
            case .property: category == .property
            case .utilities: category == .utilities
            }
        }
    }

    /// The order in which a payment or an offset covers open bills.
    public enum AllocationOrder: String, Sendable, CaseIterable {
        case oldestDueFirst = "oldest_due_first", itemPriority = "item_priority", asListed = "as_listed"
    }

    /// Whose a prepaid account is: a room's, or a resident's own (paying any room they live in).
    public enum PrepaidOwner: Sendable, Equatable {
        case room(RoomID)
        case resident(ResidentID)

        var room: RoomID? { if case .room(let room) = self { room } else { nil } }
        var resident: ResidentID? { if case .resident(let resident) = self { resident } else { nil } }

        /// The owner's community, once `principal` may act on it.
        func community(for principal: Principal, _ connection: PostgresConnection, _ logger: Logger) async throws -> CommunityID {
            let community: CommunityID
            switch self {
            case .room(let room): community = try await FeeStore.community(ofRoom: room, connection, logger)
            case .resident(let resident):
                let rows = try await connection.run("SELECT community_id FROM residents WHERE id = \(resident.uuid)", logger: logger)
                var found: CommunityID?
                for try await id in rows.decode(UUID.self) { found = CommunityID(id) }
                guard let found else { throw LinliError.notFound("resident") }
                community = found
            }
            try Scope.requireCommunity(principal, community)
            return community
        }

        /// The owner's prepaid account of `type`, opened when missing.
        func account(_ community: CommunityID, _ type: PrepaidType, _ connection: PostgresConnection, _ logger: Logger) async throws -> UUID {
            try await Ledger.account(community, .prepaid, subtype: type.rawValue, room: room, resident: resident, connection, logger)
        }
    }

    /// One way of paying: a method, its amount, and for prepaid the account's type and, for a
    /// resident's own account, the resident.
    public struct Tender: Sendable, Equatable {
        public var method: Method
        public var amountFen: Int64
        public var prepaidType: PrepaidType
        public var resident: ResidentID?
        public init(_ method: Method, _ amountFen: Int64, prepaidType: PrepaidType = .general, resident: ResidentID? = nil) {
            self.method = method
            self.amountFen = amountFen
            self.prepaidType = prepaidType
            self.resident = resident
        }
    }

    /// The community's allocation order (oldest due first unless set).
    static func allocationOrder(_ community: CommunityID, _ connection: PostgresConnection, _ logger: Logger) async throws -> AllocationOrder {
        let rows = try await connection.run("SELECT allocation FROM billing_settings WHERE community_id = \(community.uuid)", logger: logger)
        for try await raw in rows.decode(String.self) { return AllocationOrder(rawValue: raw) ?? .oldestDueFirst }
        return .oldestDueFirst
    }

    /// A bill as allocation sees it.
    static func due(_ bill: FeeStore.Bill) -> PaymentAllocation.Due {
        PaymentAllocation.Due(
            bill: bill.id, fen: bill.totalDueFen, priority: bill.priority, dueOn: bill.dueOn, periodStart: bill.periodStart,
            itemName: bill.itemName)
    }

    /// Settles the room's open bills (or the chosen ones) in the allocation order with the tenders
    /// in their order; a bill's accrued late fee is charged when the payment reaches it and is
    /// settled first; an overpayment goes to the room's general prepaid account. The receipt
    /// number is the community's next of the year, gap-free: the counter moves inside this
    /// transaction, so a failed payment rolls it back.
    public func pay(
        room: RoomID, bills chosen: [UUID], tenders given: [Tender], order requested: AllocationOrder? = nil, depositKind: String = "",
        coupon: UUID? = nil, by principal: Principal, on connection: PostgresConnection, logger: Logger
    ) async throws -> Payment {
        let community = try await FeeStore.community(ofRoom: room, connection, logger)
        try Scope.requireCommunity(principal, community)
        if requested == .asListed, chosen.isEmpty { throw LinliError.invalid("allocation", "as listed needs bill_ids") }
        var order = requested ?? .oldestDueFirst
        if requested == nil { order = try await Self.allocationOrder(community, connection, logger) }
        let bills = try await FeeStore.bills(room: room, ids: chosen.isEmpty ? nil : chosen, openOnly: false, lock: true, connection, logger)
        if !chosen.isEmpty {
            for id in chosen where !bills.contains(where: { $0.id == id }) {
                throw LinliError.invalid("bill_ids", "\(id.uuidString.lowercased()) is not a bill of this room")
            }
        }
        let byID = Dictionary(bills.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let open = PaymentAllocation.ordered(bills.filter { $0.totalDueFen > 0 }.map(Self.due), order, listed: chosen).compactMap { byID[$0.bill] }
        if !chosen.isEmpty, open.count < bills.count {
            throw LinliError(.failedPrecondition, "bill_ids: a chosen bill is already settled", field: "bill_ids")
        }
        let openTotal = open.reduce(0) { $0 + $1.totalDueFen }
        let id = UUIDv7.make()
        // A coupon settles the bills in its scope before any method.
        var tenders = given
        var couponUse: CouponUse?
        if let coupon {
            (couponUse, tenders) = try await spend(coupon, on: id, room: room, community: community, open: open, tenders: given, connection, logger)
        }
        let couponFen = couponUse == nil ? 0 : tenders[0].amountFen
        let total = tenders.reduce(0) { $0 + $1.amountFen }
        // The accounts the tenders draw on, locked and checked when they hold stored money.
        var accounts: [UUID] = []
        for tender in tenders {
            switch tender.method {
            case .prepaid:
                if let resident = tender.resident { try await Self.requireLivesIn(resident, room, connection, logger) }
                let owner = tender.resident.map(PrepaidOwner.resident) ?? .room(room)
                let account = try await owner.account(community, tender.prepaidType, connection, logger)
                let (balance, frozen) = try await Ledger.lockBalance(account, connection, logger)
                if frozen {
                    throw LinliError(.failedPrecondition, "methods: the \(tender.prepaidType.rawValue) prepaid account is frozen", field: "methods")
                }
                if tender.amountFen > balance {
                    throw LinliError(
                        .failedPrecondition,
                        "methods: the \(tender.prepaidType.rawValue) prepaid balance is \(balance) fen, less than \(tender.amountFen)",
                        field: "methods")
                }
                accounts.append(account)
            case .deposit:
                let account = try await Ledger.account(community, .deposit, subtype: depositKind, room: room, connection, logger)
                let (balance, _) = try await Ledger.lockBalance(account, connection, logger)
                if tender.amountFen > balance {
                    throw LinliError(
                        .failedPrecondition, "methods: the \(depositKind) deposit is \(balance) fen, less than \(tender.amountFen)",
                        field: "methods")
                }
                accounts.append(account)
            case .coupon:
                accounts.append(try await Ledger.couponCost(community, connection, logger))
            default:
                accounts.append(try await Ledger.account(community, .channel, subtype: tender.method.rawValue, connection, logger))
            }
        }
        let prepaid = try await Ledger.account(community, .prepaid, subtype: PrepaidType.general.rawValue, room: room, connection, logger)
        let plan = PaymentAllocation.allocate(open.map(Self.due), tenders: tenders.map(\.amountFen)) { tender, index in
            switch tenders[tender].method {
            case .prepaid: tenders[tender].prepaidType.pays(open[index].category)
            case .coupon: couponUse?.covers(open[index].category) == true
            default: true
            }
        }
        let left = plan.left
        var legs: [Ledger.Leg] = []
        var lateFees: [Ledger.Leg] = []
        var allocations: [Allocation] = []
        var receivables: [UUID: UUID] = [:]
        let sharesByBill = Dictionary(grouping: plan.shares, by: \.bill)
        for bill in open {
            guard let shares = sharesByBill[bill.id] else { continue }
            let receivable: UUID
            if let known = receivables[bill.item] {
                receivable = known
            } else {
                receivable = try await Ledger.account(community, .receivable, room: room, feeItem: bill.item, connection, logger)
                receivables[bill.item] = receivable
            }
            if bill.lateFeeDueFen > 0 {
                let revenue = try await Ledger.account(community, .revenue, subtype: "late_fee", feeItem: bill.item, connection, logger)
                lateFees.append(.init(debit: receivable, credit: revenue, amount: bill.lateFeeDueFen, kind: .lateFee, bill: bill.id))
            }
            for share in shares {
                let method = tenders[share.tender].method
                legs.append(
                    .init(
                        debit: accounts[share.tender], credit: receivable, amount: share.fen,
                        kind: method == .deposit || method == .coupon ? .offset : .settle,
                        bill: bill.id))
                allocations.append(Allocation(bill: bill.id, method: method, amountFen: share.fen))
            }
        }
        let settled = allocations.reduce(0) { $0 + $1.amountFen }
        var toPrepaid: Int64 = 0
        for index in tenders.indices where left[index] > 0 {
            guard ![.prepaid, .deposit, .coupon].contains(tenders[index].method) else {
                // Stored money never turns into change: it may cover only what the methods before it leave open.
                throw LinliError.invalid(
                    "methods",
                    "\(left[index]) fen of the \(tenders[index].method.rawValue) amount would be left over; "
                        + "open is \(openTotal) fen")
            }
            legs.append(.init(debit: accounts[index], credit: prepaid, amount: left[index], kind: .topup, bill: nil, memo: "overpayment"))
            toPrepaid += left[index]
        }
        guard settled > 0 || toPrepaid > 0 else { throw LinliError(.failedPrecondition, "bill_ids: nothing is open to pay", field: "bill_ids") }
        let lateFeeFen = lateFees.reduce(0) { $0 + $1.amount }
        if lateFeeFen > 0 {
            // Their own entry (the payment's id): a void reverses what was paid, not the late fee owed by then.
            try await Ledger.post(entry: id, lateFees, by: principal.subjectID, connection, logger)
            try await MetricDelta.record(.billingChargedFen, delta: lateFeeFen, community: community, on: connection, logger: logger)
        }
        // The hot rows (the channel account the transfers post to, and the community's receipt
        // counter) are taken last, so their locks are held for as few statements as possible.
        if settled > 0 {
            try await MetricDelta.record(.billingCollectedFen, delta: settled, community: community, on: connection, logger: logger)
        }
        let entry = UUIDv7.make()
        try await Ledger.post(entry: entry, legs, by: principal.subjectID, connection, logger)
        let stored = try await connection.run(
            """
            INSERT INTO payments (id, community_id, room_id, entry_id, total_fen, settled_fen, to_prepaid_fen, cashier_id, receipt_no, coupon_fen)
            VALUES (\(id), \(community.uuid), \(room.uuid), \(entry), \(total), \(settled), \(toPrepaid), \(principal.subjectID.uuid),
                    next_document_no(\(community.uuid), 'receipt'), \(couponFen))
            RETURNING receipt_no, created_at
            """, logger: logger)
        var receipt = ""
        var paidAt = Date()
        for try await (number, at) in stored.decode((String, Date).self) { (receipt, paidAt) = (number, at) }
        if settled > couponFen {
            // Points earned on the money (the fee-paid rule, not on a coupon) once this payment commits.
            try await Outbox.enqueue(
                Topic.billPaid,
                .with {
                    $0.paymentID = id.uuidString.lowercased()
                    $0.communityID = community.description
                    $0.roomID = room.description
                    $0.settledFen = settled - couponFen
                    $0.payerUserID = principal.subjectID.description
                    $0.paidAt = paidAt.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
                }, to: nil, on: connection, logger: logger)
        }
        return Payment(
            id: id, receiptNo: receipt, totalFen: total, settledFen: settled, toPrepaidFen: toPrepaid, allocations: allocations,
            paidAt: paidAt, lateFeeFen: lateFeeFen, couponFen: couponFen)
    }

    /// The coupon spent on payment `id`: its scope's open bills, its value as the first tender
    /// (a tender that settles only those bills), checked to belong to someone living in the room.
    private func spend(
        _ coupon: UUID, on id: UUID, room: RoomID, community: CommunityID, open: [FeeStore.Bill], tenders: [Tender],
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (CouponUse, [Tender]) {
        guard let coupons else { throw LinliError(.failedPrecondition, "coupon_id: coupons are not served here", field: "coupon_id") }
        let use = try await coupons.use(of: coupon, community: community, on: connection, logger: logger)
        let inScope = open.filter { use.covers($0.category) }.reduce(Int64(0)) { $0 + $1.totalDueFen }
        guard inScope > 0 else {
            throw LinliError(.failedPrecondition, "coupon_id: none of the bills paid is in the coupon's scope", field: "coupon_id")
        }
        let (fen, resident) = try await coupons.redeem(
            coupon, for: use, community: community, inScopeFen: inScope, payment: id, on: connection, logger: logger)
        guard try await Residency.residentLivesIn(resident, room, on: connection, logger: logger) else {
            throw LinliError(.failedPrecondition, "coupon_id: the coupon's holder does not live in this room", field: "coupon_id")
        }
        return (use, [Tender(.coupon, fen)] + tenders)
    }

    /// Refuses a resident's own prepaid money for a room they do not live in today.
    static func requireLivesIn(_ resident: ResidentID, _ room: RoomID, _ connection: PostgresConnection, _ logger: Logger) async throws {
        if try await Residency.residentLivesIn(resident, room, on: connection, logger: logger) { return }
        throw LinliError(.failedPrecondition, "methods: the resident does not live in this room", field: "methods")
    }

    /// Money into a prepaid account of `type`; returns the new balance.
    public func topUp(
        _ owner: PrepaidOwner, type: PrepaidType = .general, method: Method, amountFen: Int64, by principal: Principal,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64 {
        let community = try await owner.community(for: principal, connection, logger)
        let prepaid = try await owner.account(community, type, connection, logger)
        let channel = try await Ledger.account(community, .channel, subtype: method.rawValue, connection, logger)
        try await Ledger.post(
            entry: UUIDv7.make(), [.init(debit: channel, credit: prepaid, amount: amountFen, kind: .topup, bill: nil)],
            by: principal.subjectID, connection, logger)
        return try await Ledger.lockBalance(prepaid, connection, logger).balance
    }

    public struct PrepaidAccount: Sendable, Equatable {
        public var type: PrepaidType
        public var balanceFen: Int64
        public var frozen: Bool
    }

    /// Every prepaid account of the room or resident, general first.
    public func prepaidAccounts(
        _ owner: PrepaidOwner, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [PrepaidAccount] {
        let community = try await owner.community(for: principal, connection, logger)
        let rows = try await connection.run(
            """
            SELECT subtype, credits_fen - debits_fen, frozen FROM ledger_accounts
            WHERE community_id = \(community.uuid) AND kind = 'prepaid' AND fee_item_id IS NULL
              AND room_id IS NOT DISTINCT FROM \(owner.room?.uuid) AND resident_id IS NOT DISTINCT FROM \(owner.resident?.uuid)
            """, logger: logger)
        var result: [PrepaidAccount] = []
        for try await (subtype, balance, frozen) in rows.decode((String, Int64, Bool).self) {
            if let type = PrepaidType(rawValue: subtype) { result.append(.init(type: type, balanceFen: balance, frozen: frozen)) }
        }
        let rank = Dictionary(uniqueKeysWithValues: PrepaidType.allCases.enumerated().map { ($1, $0) })
        return result.sorted { (rank[$0.type] ?? 0) < (rank[$1.type] ?? 0) }
    }

    /// Proves the community's books from the transfers themselves.
    public func check(community: CommunityID, for principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Check {
        try Scope.requireCommunity(principal, community)
        let rows = try await connection.run(
            """
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
                       coalesce(sum(t.amount_fen) FILTER (WHERE t.kind = 'late_fee'), 0)::int8 AS late,
                       coalesce(sum(t.amount_fen) FILTER (WHERE t.kind IN ('settle', 'offset')), 0)::int8
                         - coalesce(sum(t.amount_fen) FILTER (WHERE t.kind IN ('reversal', 'refund')), 0)::int8 AS settled,
                       coalesce(sum(t.amount_fen) FILTER (WHERE t.kind = 'write_off'), 0)::int8 AS waived
                FROM bills b LEFT JOIN ledger_transfers t ON t.bill_id = b.id
                WHERE b.community_id = \(community.uuid) GROUP BY b.id),
            open_by_account AS (
                SELECT room_id, fee_item_id, sum(charged + late - settled - waived)::int8 AS open FROM bill_figures GROUP BY 1, 2)
            SELECT (SELECT coalesce(sum(debits_fen), 0)::int8 FROM accounts),
                   (SELECT coalesce(sum(credits_fen), 0)::int8 FROM accounts),
                   (SELECT count(*)::int4 FROM accounts a LEFT JOIN per_account p ON p.account = a.id
                     WHERE a.debits_fen <> coalesce(p.debits, 0) OR a.credits_fen <> coalesce(p.credits, 0)),
                   (SELECT count(*)::int4 FROM bill_figures WHERE charged <> amount_fen OR late > amount_fen OR settled < 0 OR settled + waived > charged + late),
                   (SELECT count(*)::int4 FROM accounts a FULL JOIN open_by_account o ON o.room_id = a.room_id AND o.fee_item_id = a.fee_item_id
                     WHERE (a.kind = 'receivable' OR a.id IS NULL) AND coalesce(a.debits_fen - a.credits_fen, 0) <> coalesce(o.open, 0)),
                   (SELECT count(*)::int4 FROM legs) / 2,
                   (SELECT count(*)::int4 FROM bill_figures)
            """, logger: logger)
        for try await (debits, credits, accountsOff, billsOff, receivablesOff, transfers, bills) in rows.decode(
            (Int64, Int64, Int32, Int32, Int32, Int32, Int32).self)
        {
            return Check(
                debitsFen: debits, creditsFen: credits, accountsOff: Int(clamping: accountsOff), billsOff: Int(clamping: billsOff),
                receivablesOff: Int(clamping: receivablesOff), transfers: Int(clamping: transfers), bills: Int(clamping: bills))
        }
        throw LinliError(.internal, "ledger check returned nothing")
    }
}
