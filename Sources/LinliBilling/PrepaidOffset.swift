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
public struct PrepaidOffset: Service, Sendable {
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
        for tenant in try await database.allTenants() where tenant.isActive {
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
        let types: [Cashier.PrepaidType] = [.property, .utilities, .general]
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
        _ type: Cashier.PrepaidType, residents: Bool = false, after: UUID, limit: Int,
        communities: [UUID]? = nil, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> (count: Int, fen: Int64, last: UUID?) {
        let claimed = try await connection.query(
            """
            SELECT a.id FROM ledger_accounts a
            WHERE a.kind = 'prepaid' AND a.subtype = \(type.rawValue) AND NOT a.frozen
              AND (\(communities == nil) OR a.community_id = ANY(\(communities ?? [])))
              AND CASE WHEN \(residents) THEN a.resident_id IS NOT NULL ELSE a.room_id IS NOT NULL END
              AND a.credits_fen > a.debits_fen AND a.id > \(after)
            ORDER BY a.id LIMIT \(Int32(limit)) FOR UPDATE SKIP LOCKED
            """, logger: logger)
        var accounts: [UUID] = []
        for try await id in claimed.decode(UUID.self) { accounts.append(id) }
        guard let last = accounts.last else { return (0, 0, nil) }
        let category: String? =
            switch type {
            case .general: nil
            case .property: FeeDesk.Category.property.rawValue
            case .utilities: FeeDesk.Category.utilities.rawValue
            }
        // Which account pays which bill: a room's account its room's bills; a resident's account the
        // bills of the rooms they live in today, one account a bill (the first by id) in a pass.
        let rooms =
            residents
            ? """
            JOIN residencies rs ON rs.resident_id = a.resident_id AND resides_on(rs.move_in, rs.move_out, community_today(a.community_id))
            JOIN bills b ON b.room_id = rs.room_id AND b.community_id = a.community_id
            """ : "JOIN bills b ON b.room_id = a.room_id AND b.community_id = a.community_id"
        let claims = """
            SELECT DISTINCT ON (b.id) b.id AS bill, a.id AS account
            FROM ledger_accounts a
            \(rooms)
            JOIN fee_items i ON i.id = b.fee_item_id
            WHERE a.id = ANY($1::uuid[]) AND b.due_on <= community_today(b.community_id)
              AND ($2::text IS NULL OR i.category = $2::text)
            ORDER BY b.id, a.id
            """
        var binds = PostgresBindings()
        binds.append(accounts)
        binds.append(category)
        let locked = try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT id FROM bills WHERE id IN (SELECT bill FROM (\(claims)) c) ORDER BY id FOR UPDATE SKIP LOCKED
                    """, binds: binds), logger: logger)
        var bills: [UUID] = []
        for try await id in locked.decode(UUID.self) { bills.append(id) }
        guard !bills.isEmpty else { return (0, 0, last) }
        // The revenue accounts late fees go to, for items that charge them.
        try await connection.query(
            """
            INSERT INTO ledger_accounts (id, community_id, kind, subtype, fee_item_id, normal)
            SELECT uuid_v7(), i.community_id, 'revenue', 'late_fee', i.id, 'credit'
            FROM fee_items i WHERE i.late_fee_per_10k_daily > 0 AND i.id IN (SELECT fee_item_id FROM bills WHERE id = ANY(\(bills)::uuid[]))
            ON CONFLICT DO NOTHING
            """, logger: logger)
        let entry = UUIDv7.make()
        let lateEntry = UUIDv7.make()
        // What is open now with the late fee accrued, running totals per room in the community's
        // allocation order, each bill's share of the balance; a bill's late fee is charged when it gets a share.
        binds.append(bills)
        binds.append(entry)
        binds.append(lateEntry)
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    WITH claims AS (\(claims)),
                    open_bills AS (
                        SELECT b.id, c.account, b.room_id, b.community_id, b.fee_item_id, b.due_on, b.period_start,
                               bill_open_fen(b.id) AS open, CASE WHEN i.late_fee_per_10k_daily > 0 THEN bill_late_fee_fen(b.id, community_today(b.community_id)) ELSE 0 END AS late,
                               CASE WHEN s.allocation = 'item_priority' THEN i.priority ELSE 0 END AS rank
                        FROM bills b JOIN claims c ON c.bill = b.id JOIN fee_items i ON i.id = b.fee_item_id
                        LEFT JOIN billing_settings s ON s.community_id = b.community_id
                        WHERE b.id = ANY($3::uuid[])),
                    running AS (
                        SELECT o.*, o.open + o.late AS need,
                               sum(o.open + o.late) OVER (PARTITION BY o.account ORDER BY o.rank, o.due_on, o.period_start, o.id) AS through
                        FROM open_bills o WHERE o.open + o.late > 0),
                    shares AS (
                        SELECT r.id AS bill, r.community_id, r.fee_item_id, r.late, p.id AS prepaid, ra.id AS receivable,
                               least(r.need, greatest(0, (p.credits_fen - p.debits_fen) - (r.through - r.need))) AS take
                        FROM running r
                        JOIN ledger_accounts p ON p.id = r.account
                        JOIN ledger_accounts ra ON ra.community_id = r.community_id AND ra.kind = 'receivable' AND ra.subtype = ''
                             AND ra.room_id = r.room_id AND ra.resident_id IS NULL AND ra.fee_item_id = r.fee_item_id),
                    fees AS (
                        INSERT INTO ledger_transfers (entry_id, debit_account, credit_account, amount_fen, kind, bill_id, memo)
                        SELECT $5::uuid, s.receivable, rv.id, s.late, 'late_fee', s.bill, 'auto offset'
                        FROM shares s JOIN ledger_accounts rv ON rv.community_id = s.community_id AND rv.kind = 'revenue' AND rv.subtype = 'late_fee'
                             AND rv.room_id IS NULL AND rv.resident_id IS NULL AND rv.fee_item_id = s.fee_item_id
                        WHERE s.take > 0 AND s.late > 0
                        RETURNING 1)
                    INSERT INTO ledger_transfers (entry_id, debit_account, credit_account, amount_fen, kind, bill_id, memo)
                    SELECT $4::uuid, prepaid, receivable, take, 'offset', bill, 'auto offset' FROM shares WHERE take > 0
                    RETURNING amount_fen
                    """, binds: binds), logger: logger)
        var count = 0
        var fen: Int64 = 0
        for try await amount in rows.decode(Int64.self) {
            count += 1
            fen += amount
        }
        if count > 0 {
            let perCommunity = try await connection.query(
                """
                SELECT a.community_id, t.entry_id = \(lateEntry), sum(t.amount_fen)::int8
                FROM ledger_transfers t JOIN ledger_accounts a ON a.id = t.debit_account
                WHERE t.entry_id IN (\(entry), \(lateEntry)) GROUP BY 1, 2
                """, logger: logger)
            for try await (community, isLateFee, sum) in perCommunity.decode((UUID, Bool, Int64).self) {
                try await MetricDelta.record(
                    isLateFee ? .billingChargedFen : .billingCollectedFen, delta: sum, community: CommunityID(community),
                    on: connection, logger: logger)
            }
        }
        return (count, fen, last)
    }
}
