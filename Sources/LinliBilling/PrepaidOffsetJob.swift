import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import ServiceLifecycle

/// Offsets bills that have fallen due from the rooms' prepaid balances (预存款自动抵扣).
///
/// Oldest due first, partial offsets allowed, frozen accounts skipped. Safe with several
/// servers: each pass claims prepaid accounts and due bills `FOR UPDATE SKIP LOCKED` (a payment
/// in progress keeps its bills; another pass keeps its accounts), then computes what is still
/// open in a fresh statement, so a bill is never offset twice and a balance never overdrawn
/// (the ledger's CHECK is the last guard).
public struct PrepaidOffsetJob: Service, Sendable {
    let database: Database
    let interval: Duration
    let batch: Int
    let logger: Logger

    public init(database: Database, interval: Duration = .seconds(3600), batch: Int = 2_000, logger: Logger) {
        self.database = database
        self.interval = interval
        self.batch = batch
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicJob.run(every: interval, first: .afterInterval, name: "prepaid offset", logger: logger) {
            let offset = try await runAll()
            if offset.count > 0 {
                logger.info("prepaid offsets", metadata: ["billing.offsets": "\(offset.count)", "billing.offset_fen": "\(offset.fen)"])
            }
        }
    }

    /// One pass over every active tenant: the number of offsets and the fen they moved.
    @discardableResult
    public func runAll() async throws(LinliError) -> (count: Int, fen: Int64) {
        var total = (count: 0, fen: Int64(0))
        try await database.forEachActiveTenant("prepaid offset", logger: logger) { tenant throws(LinliError) in
            let done = try await run(tenant)
            total.count += done.count
            total.fen += done.fen
        }
        return total
    }

    /// Offsets in `tenant` until no claimable account with a due bill is left: rooms' accounts
    /// before residents' own, and typed accounts first (property, then utilities, each on its
    /// own category), then general accounts.
    /// `communities` limits the pass to those (a manager's run reaches only their communities);
    /// nil runs every community of the tenant (the background job).
    public func run(_ tenant: TenantRef, communities: [CommunityID]? = nil) async throws(LinliError) -> (count: Int, fen: Int64) {
        var total = (count: 0, fen: Int64(0))
        let types: [PaymentStore.PrepaidType] = [.property, .utilities, .general]
        for (residents, type) in [false, true].flatMap({ residents in types.map { (residents, $0) } }) {
            var after = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
            while true {
                let pass = try await database.tenantTransaction(tenant) { connection in
                    try await Self.offsetBatch(
                        type, residents: residents, after: after, limit: batch,
                        communities: communities?.map(\.uuid), connection, logger)
                }
                total.count += pass.count
                total.fen += pass.fen
                guard let last = pass.last else { break }
                after = last
            }
        }
        return total
    }

    /// One batch of prepaid accounts of `type` (rooms' or residents') after `after` (by id);
    /// returns the offsets and the last account claimed.
    static func offsetBatch(
        _ type: PaymentStore.PrepaidType, residents: Bool = false, after: UUID, limit: Int,
        communities: [UUID]? = nil, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> (count: Int, fen: Int64, last: UUID?) {
        let claimed = try await connection.run(
            """
            SELECT a.id FROM ledger_accounts a
            WHERE a.kind = 'prepaid' AND a.subtype = \(type.rawValue) AND NOT a.frozen
              AND (\(communities == nil) OR a.community_id = ANY(\(communities ?? [])))
              AND CASE WHEN \(residents) THEN a.resident_id IS NOT NULL ELSE a.room_id IS NOT NULL END
              AND a.credits_fen > a.debits_fen AND a.id > \(after)
            ORDER BY a.id LIMIT \(Int32(clamping: limit)) FOR UPDATE SKIP LOCKED
            """, logger: logger)
        var accounts: [UUID] = []
        for try await id in claimed.decode(UUID.self) { accounts.append(id) }
        guard let last = accounts.last else { return (0, 0, nil) }
        let category: String? =
            switch type {
            case .general: nil
            case .property: FeeStore.Category.property.rawValue
            case .utilities: FeeStore.Category.utilities.rawValue
            }
        // Which account pays which bill: a room's account its room's bills; a resident's account the
        // bills of the rooms they live in today, one account a bill (the first by id) in a pass.
        let rooms =
            residents
            ? """
            JOIN residencies rs ON rs.resident_id = a.resident_id AND resides_on(rs.move_in, rs.move_out, local_today(cm.time_zone))
            JOIN bills b ON b.room_id = rs.room_id AND b.community_id = a.community_id
            """ : "JOIN bills b ON b.room_id = a.room_id AND b.community_id = a.community_id"
        let claims = """
            SELECT DISTINCT ON (b.id) b.id AS bill, a.id AS account
            FROM ledger_accounts a
            JOIN communities cm ON cm.id = a.community_id  -- today in each community: local_today inlines, per row
            \(rooms)
            JOIN fee_items i ON i.id = b.fee_item_id
            WHERE a.id = ANY($1::uuid[]) AND b.due_on <= local_today(cm.time_zone)
              AND ($2::text IS NULL OR i.category = $2::text)
            ORDER BY b.id, a.id
            """
        var binds = PostgresBindings()
        binds.append(accounts)
        binds.append(category)
        let locked = try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    SELECT id FROM bills WHERE id IN (SELECT bill FROM (\(claims)) c) ORDER BY id FOR UPDATE SKIP LOCKED
                    """, binds: binds), logger: logger)
        var bills: [UUID] = []
        for try await id in locked.decode(UUID.self) { bills.append(id) }
        guard !bills.isEmpty else { return (0, 0, last) }
        try await Ledger.openLateFeeRevenue(bills: bills, connection, logger)
        // What is open now with the late fee accrued, per claiming account; the allocation order
        // and the shares come from PaymentAllocation, the same rule as Pay.
        binds.append(bills)
        let rows = try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    WITH claims AS (\(claims))
                    SELECT b.id, c.account, p.credits_fen - p.debits_fen, b.community_id, coalesce(s.allocation, 'oldest_due_first'),
                           bill_open_fen(b.id), b.amount_fen, coalesce(l.late_fee_fen, 0), coalesce(l.settled_fen, 0),
                           coalesce(l.waived_fen, 0), i.late_fee_per_10k_daily, i.grace_days, l.late_fee_through::text,
                           local_today(cm.time_zone)::text,
                           i.priority, b.due_on::text, b.period_start::text, i.name, ra.id, rv.id
                    FROM bills b JOIN claims c ON c.bill = b.id JOIN fee_items i ON i.id = b.fee_item_id
                    JOIN communities cm ON cm.id = b.community_id
                    -- The late fee's inputs only for items that charge one.
                    LEFT JOIN LATERAL (SELECT * FROM bill_ledger(b.id) WHERE i.late_fee_per_10k_daily > 0) l ON true
                    JOIN ledger_accounts p ON p.id = c.account
                    JOIN ledger_accounts ra ON ra.community_id = b.community_id AND ra.kind = 'receivable' AND ra.subtype = ''
                         AND ra.room_id = b.room_id AND ra.resident_id IS NULL AND ra.fee_item_id = b.fee_item_id
                    LEFT JOIN ledger_accounts rv ON rv.community_id = b.community_id AND rv.kind = 'revenue' AND rv.subtype = 'late_fee'
                         AND rv.room_id IS NULL AND rv.resident_id IS NULL AND rv.fee_item_id = b.fee_item_id
                    LEFT JOIN billing_settings s ON s.community_id = b.community_id
                    WHERE b.id = ANY($3::uuid[])
                    """, binds: binds), logger: logger)
        struct Open {
            var due: PaymentAllocation.Due
            var community: CommunityID
            var late: Int64
            var receivable: UUID
            var lateRevenue: UUID?
        }
        var byAccount: [UUID: (balance: Int64, order: PaymentStore.AllocationOrder, bills: [Open])] = [:]
        for try await (
            bill, account, balance, community, order, open, amount, charged, settled, waived, rate, grace, through, today, priority, dueOn,
            periodStart, item, receivable, revenue
        )
            in rows.decode(
                (
                    UUID, UUID, Int64, UUID, String, Int64, Int64, Int64, Int64, Int64, Int32, Int32, String?, String, Int32, String, String,
                    String, UUID, UUID?
                ).self)
        {
            // (the revenue account was opened above for every item with late fees)
            let late =
                revenue == nil
                ? 0
                : LateFee.due(
                    .init(
                        amountFen: amount, lateFeeChargedFen: charged, settledFen: settled, waivedFen: waived, per10kDaily: Int(clamping: rate),
                        graceDays: Int(clamping: grace), dueOn: dueOn, chargedThrough: through), today: today)
            guard open + late > 0 else { continue }
            let due = PaymentAllocation.Due(
                bill: bill, fen: open + late, priority: Int(clamping: priority), dueOn: dueOn, periodStart: periodStart, itemName: item)
            byAccount[account, default: (balance, PaymentStore.AllocationOrder(rawValue: order) ?? .oldestDueFirst, [])].bills.append(
                Open(due: due, community: CommunityID(community), late: late, receivable: receivable, lateRevenue: revenue))
        }
        var offsets: [Ledger.Leg] = []
        var lateFees: [Ledger.Leg] = []
        var collected: [CommunityID: Int64] = [:]
        var charged: [CommunityID: Int64] = [:]
        for (account, claim) in byAccount {
            let bySID = Dictionary(claim.bills.map { ($0.due.bill, $0) }, uniquingKeysWith: { first, _ in first })
            let ordered = PaymentAllocation.ordered(claim.bills.map(\.due), claim.order)
            for share in PaymentAllocation.allocate(ordered, tenders: [claim.balance]).shares {
                guard let bill = bySID[share.bill] else { continue }
                if bill.late > 0, let revenue = bill.lateRevenue {
                    lateFees.append(
                        .init(debit: bill.receivable, credit: revenue, amount: bill.late, kind: .lateFee, bill: bill.due.bill, memo: "auto offset"))
                    charged[bill.community, default: 0] += bill.late
                }
                offsets.append(
                    .init(debit: account, credit: bill.receivable, amount: share.fen, kind: .offset, bill: bill.due.bill, memo: "auto offset"))
                collected[bill.community, default: 0] += share.fen
            }
        }
        try await Ledger.post(entry: UUIDv7.make(), lateFees, by: nil, connection, logger)
        try await Ledger.post(entry: UUIDv7.make(), offsets, by: nil, connection, logger)
        for (community, fen) in charged {
            try await MetricDelta.record(.billingChargedFen, delta: fen, community: community, on: connection, logger: logger)
        }
        for (community, fen) in collected {
            try await MetricDelta.record(.billingCollectedFen, delta: fen, community: community, on: connection, logger: logger)
        }
        let count = offsets.count
        let fen = offsets.reduce(0) { $0 + $1.amount }
        return (count, fen, last)
    }
}
