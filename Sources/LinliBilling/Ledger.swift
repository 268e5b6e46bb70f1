import Foundation
import LinliCore
import Logging
import PostgresNIO

/// The double-entry ledger of a tenant: accounts found or opened on first use, and transfers
/// posted in one statement; the `ledger_post` trigger moves the accounts' posted figures.
enum Ledger {
    enum Kind: String { case receivable, revenue, prepaid, deposit, channel, writeOff = "write_off" }

    /// What a transfer does; the `ledger_transfers.kind` check constraint lists the same values.
    enum TransferKind: String {
        case charge, settle, topup, offset, withdraw, reversal, refund, collect, convert
        case lateFee = "late_fee"
        case writeOff = "write_off"
    }

    /// One transfer: `amount` from the credit account to the debit account.
    struct Leg {
        var debit: UUID
        var credit: UUID
        var amount: Int64
        var kind: TransferKind
        var bill: UUID?
        var memo: String = ""
    }

    /// The account for (kind, subtype, room, fee item) in `community`, opened when missing.
    static func account(
        _ community: CommunityID, _ kind: Kind, subtype: String = "", room: RoomID? = nil, resident: ResidentID? = nil,
        feeItem: UUID? = nil, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> UUID {
        if let found = try await find(community, kind, subtype, room, resident, feeItem, connection, logger) { return found }
        let normal = kind == .receivable || kind == .channel || kind == .writeOff ? "debit" : "credit"
        let guarded = kind == .prepaid || kind == .deposit
        let inserted = try await connection.run(
            """
            INSERT INTO ledger_accounts (id, community_id, kind, subtype, room_id, resident_id, fee_item_id, normal, guarded)
            VALUES (\(UUIDv7.make()), \(community.uuid), \(kind.rawValue), \(subtype), \(room?.uuid), \(resident?.uuid), \(feeItem), \(normal),
                    \(guarded))
            ON CONFLICT DO NOTHING RETURNING id
            """, logger: logger)
        for try await opened in inserted.decode(UUID.self) { return opened }
        // Opened by a concurrent transaction that has committed since.
        if let found = try await find(community, kind, subtype, room, resident, feeItem, connection, logger) { return found }
        throw LinliError(.unavailable, "ledger account was opened concurrently; retry")
    }

    /// Equality or IS NULL per column, never IS NOT DISTINCT FROM, so the unique index serves the lookup.
    private static func find(
        _ community: CommunityID, _ kind: Kind, _ subtype: String, _ room: RoomID?, _ resident: ResidentID?,
        _ feeItem: UUID?, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> UUID? {
        var binds = PostgresBindings()
        binds.append(community.uuid)
        binds.append(kind.rawValue)
        binds.append(subtype)
        var sql = "SELECT id FROM ledger_accounts WHERE community_id = $1 AND kind = $2 AND subtype = $3"
        for (column, value) in [("room_id", room?.uuid), ("resident_id", resident?.uuid), ("fee_item_id", feeItem)] {
            if let value {
                binds.append(value)
                sql += " AND \(column) = $\(binds.count)"
            } else {
                sql += " AND \(column) IS NULL"
            }
        }
        for try await found in try await connection.run(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).decode(UUID.self) {
            return found
        }
        return nil
    }

    /// Posts `legs` as one business entry.
    static func post(entry: UUID, _ legs: [Leg], by user: UserID?, _ connection: PostgresConnection, _ logger: Logger) async throws {
        guard !legs.isEmpty else { return }
        try await connection.run(
            """
            INSERT INTO ledger_transfers (entry_id, debit_account, credit_account, amount_fen, kind, bill_id, memo, created_by)
            SELECT \(entry), debit, credit, amount, kind, NULLIF(bill, '')::uuid, memo, \(user?.uuid)
            FROM unnest(\(legs.map(\.debit))::uuid[], \(legs.map(\.credit))::uuid[], \(legs.map(\.amount))::int8[],
                        \(legs.map(\.kind.rawValue))::text[], \(legs.map { $0.bill?.uuidString ?? "" })::text[], \(legs.map(\.memo))::text[])
                 AS t (debit, credit, amount, kind, bill, memo)
            """, logger: logger)
    }

    /// Money taken through `method` that is owed back or still to be earned (a merchant's deposit,
    /// prepaid coupons): channel ← the liability `subtype`; returns the entry (nothing posted for 0).
    static func collectLiability(
        _ amountFen: Int64, method: PaymentStore.Method, subtype: String, community: CommunityID, memo: String, by user: UserID,
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> UUID {
        let entry = UUIDv7.make()
        guard amountFen > 0 else { return entry }
        let channel = try await account(community, .channel, subtype: method.rawValue, connection, logger)
        let liability = try await account(community, .deposit, subtype: subtype, connection, logger)
        try await post(
            entry: entry, [.init(debit: channel, credit: liability, amount: amountFen, kind: .collect, bill: nil, memo: memo)], by: user, connection,
            logger)
        return entry
    }

    /// A guarded account's balance on its normal side, locked for the rest of the transaction.
    static func lockBalance(_ account: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> (balance: Int64, frozen: Bool) {
        let rows = try await connection.run(
            """
            SELECT CASE normal WHEN 'debit' THEN debits_fen - credits_fen ELSE credits_fen - debits_fen END, frozen
            FROM ledger_accounts WHERE id = \(account) FOR UPDATE
            """, logger: logger)
        for try await row in rows.decode((Int64, Bool).self) { return row }
        throw LinliError.notFound("ledger account")
    }

    /// Inserts a bill run's bills and charges them in the same statement: receivable of room and
    /// item ← revenue of item. `bills` is a list of CTEs whose last one, `billed`, inserts the bills
    /// `RETURNING id, community_id, room_id, fee_item_id, amount_fen`; its binds come first. Binding
    /// an item opens its accounts (`openReceivables`), so every bill normally finds them here; the
    /// bills that found none (a binding older than that rule) get their accounts opened and are
    /// charged by a second statement. The charges come from the inserted rows, so the bills are
    /// not read back (30,000 fresh rows without statistics, which the planner took for one).
    static func insertCharged(
        bills: PostgresQuery, entry: UUID, community: CommunityID, by user: UserID?, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (bills: Int, chargedFen: Int64) {
        let offset = bills.binds.count
        var binds = bills.binds
        try binds.append(entry, context: .default)
        try binds.append(user?.uuid, context: .default)
        // The sort of the transfers and ledger_post's sums over every account fit in memory (at
        // the default 4 MB both spilled to disk for 30,000 bills), for the rest of this transaction.
        try await connection.run("SET LOCAL work_mem = '64MB'", logger: logger)
        let rows = try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    WITH \(bills.sql),
                    posted AS (
                        INSERT INTO ledger_transfers (entry_id, debit_account, credit_account, amount_fen, kind, bill_id, created_by)
                        SELECT $\(offset + 1), ra.id, rv.id, b.amount_fen, '\(TransferKind.charge.rawValue)', b.id, $\(offset + 2)
                        FROM billed b
                        \(chargeAccounts)
                        ORDER BY b.id
                        RETURNING 1)
                    SELECT (SELECT count(*) FROM billed)::int8, (SELECT coalesce(sum(amount_fen), 0) FROM billed)::int8,
                           (SELECT count(*) FROM posted)::int8
                    """, binds: binds), logger: logger)
        var (count, fen, posted) = (Int64(0), Int64(0), Int64(0))
        for try await row in rows.decode((Int64, Int64, Int64).self) { (count, fen, posted) = row }
        if posted < count {
            try await openAccounts(
                community: community,
                pairs: """
                    SELECT DISTINCT room_id, fee_item_id FROM bills b
                    WHERE b.entry_id = \(entry) AND NOT EXISTS (SELECT 1 FROM ledger_transfers t WHERE t.bill_id = b.id)
                    """, connection, logger)
            posted += Int64(try await postCharges(entry: entry, by: user, connection, logger))
        }
        guard posted == count else { throw LinliError(.internal, "a bill run charged \(posted) of its \(count) bills") }
        return (Int(clamping: count), fen)
    }

    /// The receivable (room and item) and revenue (item) accounts that charge bill `b`.
    private static let chargeAccounts = """
        JOIN ledger_accounts ra ON ra.community_id = b.community_id AND ra.kind = 'receivable' AND ra.subtype = ''
             AND ra.room_id = b.room_id AND ra.resident_id IS NULL AND ra.fee_item_id = b.fee_item_id
        JOIN ledger_accounts rv ON rv.community_id = b.community_id AND rv.kind = 'revenue' AND rv.subtype = ''
             AND rv.room_id IS NULL AND rv.resident_id IS NULL AND rv.fee_item_id = b.fee_item_id
        """

    /// The charge transfers of bill run `entry`'s bills not yet charged whose accounts are open;
    /// how many were posted.
    private static func postCharges(entry: UUID, by user: UserID?, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int {
        let rows = try await connection.run(
            """
            WITH posted AS (
                INSERT INTO ledger_transfers (entry_id, debit_account, credit_account, amount_fen, kind, bill_id, created_by)
                SELECT \(entry), ra.id, rv.id, b.amount_fen, \(TransferKind.charge.rawValue), b.id, \(user?.uuid)
                FROM bills b
                \(unescaped: chargeAccounts)
                WHERE b.entry_id = \(entry) AND NOT EXISTS (SELECT 1 FROM ledger_transfers t WHERE t.bill_id = b.id)
                ORDER BY b.id
                RETURNING 1)
            SELECT count(*)::int8 FROM posted
            """, logger: logger)
        for try await count in rows.decode(Int64.self) { return Int(clamping: count) }
        return 0
    }

    /// The receivable accounts of `item` on `rooms` and the item's revenue account, opened when
    /// the item is bound, so that a bill run only posts: opening 30,000 accounts inside the run
    /// cost 650 ms, and balances updated in the transaction that inserted their rows are
    /// re-checked against every key (PostgreSQL's rule for a row of one's own transaction).
    static func openReceivables(
        item: UUID, rooms: [UUID], community: CommunityID, _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        guard !rooms.isEmpty else { return }
        var binds = PostgresBindings()
        binds.append(rooms)
        binds.append(item)
        try await openAccounts(
            community: community,
            pairs: PostgresQuery(unsafeSQL: "SELECT DISTINCT unnest($1::uuid[]) AS room_id, $2::uuid AS fee_item_id", binds: binds),
            connection, logger)
    }

    /// The receivable account of each (room_id, fee_item_id) that `pairs` selects and the revenue
    /// account of each item, those not yet open (found by the unique key: an anti-join here was
    /// planned as a nested loop over fresh tables without statistics, 12 s for 10,000 rooms).
    private static func openAccounts(
        community: CommunityID, pairs: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        let offset = pairs.binds.count
        var binds = pairs.binds
        try binds.append(community.uuid, context: .default)
        try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    WITH pairs AS (\(pairs.sql)),
                    receivable AS (
                        INSERT INTO ledger_accounts (id, community_id, kind, room_id, fee_item_id, normal)
                        SELECT uuid_v7(), $\(offset + 1), 'receivable', n.room_id, n.fee_item_id, 'debit' FROM pairs n
                        ON CONFLICT DO NOTHING)
                    INSERT INTO ledger_accounts (id, community_id, kind, fee_item_id, normal)
                    SELECT uuid_v7(), $\(offset + 1), 'revenue', fee_item_id, 'credit' FROM (SELECT DISTINCT fee_item_id FROM pairs) n
                    ON CONFLICT DO NOTHING
                    """, binds: binds), logger: logger)
    }

    /// Opens the late-fee revenue accounts of the items of `bills` that charge late fees.
    static func openLateFeeRevenue(bills: [UUID], _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.run(
            """
            INSERT INTO ledger_accounts (id, community_id, kind, subtype, fee_item_id, normal)
            SELECT uuid_v7(), i.community_id, 'revenue', 'late_fee', i.id, 'credit'
            FROM fee_items i WHERE i.late_fee_per_10k_daily > 0 AND i.id IN (SELECT fee_item_id FROM bills WHERE id = ANY(\(bills)::uuid[]))
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }

    /// Reverses every transfer of `entry` as entry `reversal` (a voided payment).
    static func reverse(entry: UUID, as reversal: UUID, memo: String, by user: UserID?, _ connection: PostgresConnection, _ logger: Logger)
        async throws
    {
        try await connection.run(
            """
            INSERT INTO ledger_transfers (entry_id, debit_account, credit_account, amount_fen, kind, bill_id, reverses, memo, created_by)
            SELECT \(reversal), credit_account, debit_account, amount_fen, 'reversal', bill_id, id, \(memo), \(user?.uuid)
            FROM ledger_transfers WHERE entry_id = \(entry) ORDER BY id
            """, logger: logger)
    }
}
