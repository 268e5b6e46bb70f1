import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Summaries and the cashiers' daily close, computed from the ledger in the caller's tenant transaction.
public struct BillingReportStore: Sendable {
    public init() {}

    public struct Summary: Sendable, Equatable {
        public var from: String
        public var to: String
        public var receivableFen: Int64
        public var collectedForPeriodFen: Int64
        public var receivedFen: Int64
        public var prepaidInFen: Int64
        public var prepaidBalanceFen: Int64
        public var paidOutFen: Int64
        public var arrearsFen: Int64
        public var refundedFen: Int64
        public var waivedFen: Int64
        public var lateFeeFen: Int64
        /// Collected ÷ receivable in basis points, rounded down: 9734 is 97.34%.
        public var collectionRateBasisPoints: Int { receivableFen > 0 ? Int(collectedForPeriodFen * 10_000 / receivableFen) : 0 }
    }

    public struct CloseRow: Sendable, Equatable {
        public var cashier: UserID
        public var cashierName: String
        public var method: String
        public var takenFen: Int64
        public var paidOutFen: Int64
        public var voidedFen: Int64
        public var receipts: Int
    }

    /// The first day and the number of months of "2026-03", "2026-Q1" or "2026".
    public static func period(_ raw: String, field: String) throws(LinliError) -> (first: String, months: Int) {
        let parts = raw.split(separator: "-").map(String.init)
        guard let yearText = parts.first, yearText.count == 4, let year = Int(yearText), (2000...2100).contains(year) else {
            throw .invalid(field, "must be a month 2026-03, a quarter 2026-Q1 or a year 2026")
        }
        if parts.count == 1 { return (String(format: "%04d-01-01", year), 12) }
        if parts.count == 2, parts[1].count == 2, parts[1].hasPrefix("Q"), let quarter = Int(parts[1].dropFirst()), (1...4).contains(quarter) {
            return (String(format: "%04d-%02d-01", year, (quarter - 1) * 3 + 1), 3)
        }
        if parts.count == 2, parts[1].count == 2, let month = Int(parts[1]), (1...12).contains(month) {
            return (String(format: "%04d-%02d-01", year, month), 1)
        }
        throw .invalid(field, "must be a month 2026-03, a quarter 2026-Q1 or a year 2026")
    }

    public func summary(
        community: CommunityID, first: String, months: Int, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Summary {
        try Scope.requireCommunity(principal, community)
        // Local days: [from, to] as dates; [start, end) as instants in the community's time zone.
        let rows = try await connection.run(
            """
            WITH range AS (
                SELECT \(first)::date AS from_day, (\(first)::date + make_interval(months => \(Int32(months))) - interval '1 day')::date AS to_day),
            instants AS (
                SELECT from_day, to_day, community_day_start(\(community.uuid), from_day) AS start_at,
                       community_day_start(\(community.uuid), to_day + 1) AS end_at FROM range),
            accounts AS (SELECT id, kind FROM ledger_accounts WHERE community_id = \(community.uuid)),
            period_bills AS (
                -- charged: the bill and its late fees
                SELECT b.id, l.charged_fen AS amount_fen FROM bills b CROSS JOIN LATERAL bill_ledger(b.id) l, instants i
                WHERE b.community_id = \(community.uuid) AND b.period_start BETWEEN i.from_day AND i.to_day),
            settled AS (
                SELECT t.bill_id, sum(CASE WHEN t.kind IN ('reversal', 'refund') THEN -t.amount_fen ELSE t.amount_fen END) AS fen
                FROM ledger_transfers t JOIN period_bills p ON p.id = t.bill_id
                WHERE t.kind IN ('settle', 'offset', 'reversal', 'refund') GROUP BY t.bill_id),
            moved AS (
                SELECT t.kind, d.kind AS debit_kind, c.kind AS credit_kind, t.amount_fen
                FROM ledger_transfers t JOIN accounts d ON d.id = t.debit_account JOIN accounts c ON c.id = t.credit_account, instants i
                WHERE t.created_at >= i.start_at AND t.created_at < i.end_at),
            open_due AS (
                SELECT bill_open_fen(b.id) AS open
                FROM bills b, instants i WHERE b.community_id = \(community.uuid) AND b.due_on <= i.to_day)
            SELECT (SELECT from_day::text FROM range), (SELECT to_day::text FROM range),
                   (SELECT coalesce(sum(amount_fen), 0)::int8 FROM period_bills),
                   (SELECT coalesce(sum(fen), 0)::int8 FROM settled),
                   (SELECT coalesce(sum(CASE WHEN kind IN ('settle', 'offset') THEN amount_fen
                                             WHEN kind = 'reversal' AND debit_kind = 'receivable' THEN -amount_fen ELSE 0 END), 0)::int8 FROM moved),
                   (SELECT coalesce(sum(amount_fen) FILTER (WHERE credit_kind = 'prepaid' AND kind = 'topup'), 0)::int8 FROM moved),
                   (SELECT coalesce(sum(credits_fen - debits_fen), 0)::int8 FROM ledger_accounts
                     WHERE community_id = \(community.uuid) AND kind = 'prepaid'),
                   (SELECT coalesce(sum(amount_fen) FILTER (WHERE kind = 'withdraw'), 0)::int8 FROM moved),
                   (SELECT coalesce(sum(open) FILTER (WHERE open > 0), 0)::int8 FROM open_due),
                   (SELECT coalesce(sum(amount_fen) FILTER (WHERE kind = 'refund' AND debit_kind = 'receivable'), 0)::int8 FROM moved),
                   (SELECT coalesce(sum(amount_fen) FILTER (WHERE kind = 'write_off'), 0)::int8 FROM moved),
                   (SELECT coalesce(sum(amount_fen) FILTER (WHERE kind = 'late_fee'), 0)::int8 FROM moved)
            """, logger: logger)
        for try await (from, to, receivable, collected, received, prepaidIn, prepaidBalance, paidOut, arrears, refunded, waived, lateFees)
            in rows.decode((String, String, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64).self)
        {
            return Summary(
                from: from, to: to, receivableFen: receivable, collectedForPeriodFen: collected, receivedFen: received,
                prepaidInFen: prepaidIn, prepaidBalanceFen: prepaidBalance, paidOutFen: paidOut, arrearsFen: arrears,
                refundedFen: refunded, waivedFen: waived, lateFeeFen: lateFees)
        }
        throw LinliError(.internal, "summary returned nothing")
    }

    /// What each cashier took, paid out and voided by method on a local day.
    public func dailyClose(
        community: CommunityID, day: String, for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [CloseRow] {
        try Scope.requireCommunity(principal, community)
        let rows = try await connection.run(
            """
            WITH day AS (SELECT community_day_start(\(community.uuid), \(day)::date) AS start_at,
                                community_day_start(\(community.uuid), \(day)::date + 1) AS end_at),
            channel AS (SELECT id, subtype FROM ledger_accounts WHERE community_id = \(community.uuid) AND kind = 'channel'),
            legs AS (
                SELECT t.created_by, ch.subtype, t.kind, t.entry_id,
                       CASE WHEN t.debit_account = ch.id AND t.kind IN ('settle', 'topup', 'collect') THEN t.amount_fen ELSE 0 END AS taken,
                       CASE WHEN t.credit_account = ch.id AND t.kind IN ('withdraw', 'refund') THEN t.amount_fen ELSE 0 END AS paid_out,
                       CASE WHEN t.credit_account = ch.id AND t.kind = 'reversal' THEN t.amount_fen ELSE 0 END AS voided
                FROM ledger_transfers t JOIN channel ch ON ch.id IN (t.debit_account, t.credit_account), day
                WHERE t.created_at >= day.start_at AND t.created_at < day.end_at AND t.created_by IS NOT NULL)
            SELECT l.created_by, coalesce(u.display_name, ''), l.subtype, sum(l.taken)::int8, sum(l.paid_out)::int8, sum(l.voided)::int8,
                   count(DISTINCT p.id)::int4
            FROM legs l LEFT JOIN users u ON u.id = l.created_by LEFT JOIN payments p ON p.entry_id = l.entry_id
            GROUP BY 1, 2, 3 ORDER BY 2, 3
            """, logger: logger)
        var result: [CloseRow] = []
        for try await (cashier, name, method, taken, paidOut, voided, receipts) in rows.decode(
            (UUID, String, String, Int64, Int64, Int64, Int32).self)
        {
            result.append(
                CloseRow(
                    cashier: UserID(cashier), cashierName: name, method: method, takenFen: taken, paidOutFen: paidOut,
                    voidedFen: voided, receipts: Int(clamping: receipts)))
        }
        return result
    }
}
