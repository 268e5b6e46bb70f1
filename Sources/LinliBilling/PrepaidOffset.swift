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

    /// Offsets in `tenant` until no claimable account with a due bill is left.
    public func run(_ tenant: TenantRef) async throws(LinliError) -> (count: Int, fen: Int64) {
        var total = (count: 0, fen: Int64(0))
        var after = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        while true {
            let pass = try await database.tenantTransaction(tenant) { connection in
                try await Self.offsetBatch(after: after, limit: batch, connection, logger)
            }
            total.count += pass.count
            total.fen += pass.fen
            guard let last = pass.last else { break }
            after = last
        }
        return total
    }

    /// One batch of prepaid accounts after `after` (by id); returns the offsets and the last account claimed.
    static func offsetBatch(after: UUID, limit: Int, _ connection: PostgresConnection,
                            _ logger: Logger) async throws -> (count: Int, fen: Int64, last: UUID?) {
        let claimed = try await connection.query("""
            SELECT a.id FROM ledger_accounts a
            WHERE a.kind = 'prepaid' AND a.subtype = \(Cashier.prepaidSubtype) AND a.room_id IS NOT NULL AND NOT a.frozen
              AND a.credits_fen > a.debits_fen AND a.id > \(after)
            ORDER BY a.id LIMIT \(Int32(limit)) FOR UPDATE SKIP LOCKED
            """, logger: logger)
        var accounts: [UUID] = []
        for try await id in claimed.decode(UUID.self) { accounts.append(id) }
        guard let last = accounts.last else { return (0, 0, nil) }
        let locked = try await connection.query("""
            SELECT b.id FROM bills b JOIN ledger_accounts a ON a.room_id = b.room_id AND a.community_id = b.community_id
            WHERE a.id = ANY(\(accounts)::uuid[]) AND b.due_on <= (now() AT TIME ZONE 'Asia/Shanghai')::date
            ORDER BY b.id FOR UPDATE OF b SKIP LOCKED
            """, logger: logger)
        var bills: [UUID] = []
        for try await id in locked.decode(UUID.self) { bills.append(id) }
        guard !bills.isEmpty else { return (0, 0, last) }
        let entry = UUIDv7.make()
        // What is open now, running totals per room oldest due first, and each bill's share of the balance.
        let rows = try await connection.query("""
            WITH open_bills AS (
                SELECT b.id, b.room_id, b.community_id, b.fee_item_id, b.due_on, b.period_start,
                       b.amount_fen - bill_settled_fen(b.id) AS open
                FROM bills b WHERE b.id = ANY(\(bills)::uuid[])),
            running AS (
                SELECT o.*, sum(o.open) OVER (PARTITION BY o.room_id ORDER BY o.due_on, o.period_start, o.id) AS through
                FROM open_bills o WHERE o.open > 0),
            shares AS (
                SELECT r.id AS bill, p.id AS prepaid, ra.id AS receivable,
                       least(r.open, greatest(0, (p.credits_fen - p.debits_fen) - (r.through - r.open))) AS take
                FROM running r
                JOIN ledger_accounts p ON p.id = ANY(\(accounts)::uuid[]) AND p.room_id = r.room_id
                JOIN ledger_accounts ra ON ra.community_id = r.community_id AND ra.kind = 'receivable' AND ra.subtype = ''
                     AND ra.room_id = r.room_id AND ra.resident_id IS NULL AND ra.fee_item_id = r.fee_item_id)
            INSERT INTO ledger_transfers (entry_id, debit_account, credit_account, amount_fen, kind, bill_id, memo)
            SELECT \(entry), prepaid, receivable, take, 'offset', bill, 'auto offset' FROM shares WHERE take > 0
            RETURNING amount_fen
            """, logger: logger)
        var count = 0
        var fen: Int64 = 0
        for try await amount in rows.decode(Int64.self) {
            count += 1
            fen += amount
        }
        if count > 0 {
            let perCommunity = try await connection.query("""
                SELECT a.community_id, sum(t.amount_fen)::int8 FROM ledger_transfers t JOIN ledger_accounts a ON a.id = t.debit_account
                WHERE t.entry_id = \(entry) GROUP BY 1
                """, logger: logger)
            for try await (community, sum) in perCommunity.decode((UUID, Int64).self) {
                try await MetricDelta.record(.billingCollectedFen, delta: sum, community: CommunityID(community), on: connection, logger: logger)
            }
        }
        return (count, fen, last)
    }
}
