import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Parking money on the community's ledger, in the caller's transaction (the parking module
/// owns sessions and coupons; the ledger's accounts and transfers stay here):
/// - a temporary stay or a monthly renewal: channel ← revenue `parking_temp` / `parking_monthly`
///   (kind `collect`, so the cashiers' daily close counts it); a property coupon's part from the
///   property's coupon cost (kind `offset`);
/// - a refund: the same revenue → channel (kind `refund`);
/// - a merchant buying coupons: channel ← the merchant's coupon deposit (a liability);
/// - a coupon redeemed: the merchant's coupon deposit → revenue `parking_coupon` (kind `offset`).
public enum ParkingLedger {
    public enum Revenue: String, Sendable { case temp = "parking_temp", monthly = "parking_monthly", coupon = "parking_coupon" }

    /// Money taken; returns the ledger entry and the receipt number of the community's parking
    /// series (gap-free: the counter moves in this transaction).
    public static func collect(
        _ amountFen: Int64, couponFen: Int64 = 0, method: PaymentStore.Method, into revenue: Revenue, community: CommunityID, memo: String,
        by user: UserID, on connection: PostgresConnection, logger: Logger
    ) async throws -> (entry: UUID, receiptNo: String) {
        let account = try await Ledger.account(community, .revenue, subtype: revenue.rawValue, connection, logger)
        var legs: [Ledger.Leg] = []
        if amountFen > 0 {
            let channel = try await Ledger.account(community, .channel, subtype: method.rawValue, connection, logger)
            legs.append(.init(debit: channel, credit: account, amount: amountFen, kind: .collect, bill: nil, memo: memo))
        }
        if couponFen > 0 {
            let cost = try await Ledger.couponCost(community, connection, logger)
            legs.append(.init(debit: cost, credit: account, amount: couponFen, kind: .offset, bill: nil, memo: memo + ": coupon"))
        }
        let entry = UUIDv7.make()
        try await Ledger.post(entry: entry, legs, by: user, connection, logger)
        let rows = try await connection.run("SELECT next_document_no(\(community.uuid), 'parking')", logger: logger)
        for try await number in rows.decode(String.self) { return (entry, "P" + number) }
        throw LinliError(.internal, "no parking receipt number")
    }

    /// Money given back through `method`; returns the ledger entry.
    public static func refund(
        _ amountFen: Int64, method: PaymentStore.Method, from revenue: Revenue, community: CommunityID, memo: String, by user: UserID,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> UUID {
        let channel = try await Ledger.account(community, .channel, subtype: method.rawValue, connection, logger)
        let account = try await Ledger.account(community, .revenue, subtype: revenue.rawValue, connection, logger)
        let entry = UUIDv7.make()
        try await Ledger.post(
            entry: entry, [.init(debit: account, credit: channel, amount: amountFen, kind: .refund, bill: nil, memo: memo)], by: user,
            connection, logger)
        return entry
    }

    static func couponAccount(_ merchant: UUID) -> String { "parking_coupon:\(merchant.uuidString.lowercased())" }

    /// A merchant's prepayment for coupons; returns the ledger entry.
    public static func buyCoupons(
        _ amountFen: Int64, method: PaymentStore.Method, merchant: UUID, community: CommunityID, by user: UserID,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> UUID {
        try await Ledger.collectLiability(
            amountFen, method: method, subtype: couponAccount(merchant), community: community, memo: "parking coupons", by: user, connection, logger)
    }

    /// Coupons redeemed: their prices move from the merchants' liabilities to revenue, one
    /// entry for all of them; the guarded liability account cannot go below zero.
    public static func redeemCoupons(
        _ prices: [(merchant: UUID, fen: Int64)], community: CommunityID, memo: String, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> UUID? {
        let priced = prices.filter { $0.fen > 0 }
        guard !priced.isEmpty else { return nil }
        let revenue = try await Ledger.account(community, .revenue, subtype: Revenue.coupon.rawValue, connection, logger)
        var legs: [Ledger.Leg] = []
        for (merchant, fen) in priced {
            let liability = try await Ledger.account(community, .deposit, subtype: couponAccount(merchant), connection, logger)
            legs.append(.init(debit: liability, credit: revenue, amount: fen, kind: .offset, bill: nil, memo: memo))
        }
        let entry = UUIDv7.make()
        try await Ledger.post(entry: entry, legs, by: nil, connection, logger)
        return entry
    }

    /// What `merchant` has prepaid for coupons and not yet redeemed.
    public static func couponBalance(merchant: UUID, community: CommunityID, on connection: PostgresConnection, logger: Logger)
        async throws -> Int64
    {
        let rows = try await connection.run(
            """
            SELECT credits_fen - debits_fen FROM ledger_accounts
            WHERE community_id = \(community.uuid) AND kind = 'deposit' AND subtype = \(couponAccount(merchant))
              AND room_id IS NULL AND resident_id IS NULL AND fee_item_id IS NULL
            """, logger: logger)
        for try await balance in rows.decode(Int64.self) { return balance }
        return 0
    }
}

/// Prepaid meter credit on the ledger: bought → channel ← the meter's credit liability
/// (`deposit` account `meter_credit:<meter>`, kind `collect`); delivered (the meter
/// acknowledged) → the liability → revenue `meter_credit` (kind `offset`).
public enum MeterCreditLedger {
    static func account(_ meter: UUID) -> String { "meter_credit:\(meter.uuidString.lowercased())" }

    public static func bought(
        _ amountFen: Int64, method: PaymentStore.Method, meter: UUID, community: CommunityID, by user: UserID,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> UUID {
        let channel = try await Ledger.account(community, .channel, subtype: method.rawValue, connection, logger)
        let liability = try await Ledger.account(community, .deposit, subtype: account(meter), connection, logger)
        let entry = UUIDv7.make()
        try await Ledger.post(
            entry: entry, [.init(debit: channel, credit: liability, amount: amountFen, kind: .collect, bill: nil, memo: "meter credit")],
            by: user, connection, logger)
        return entry
    }

    public static func delivered(_ amountFen: Int64, meter: UUID, community: CommunityID, on connection: PostgresConnection, logger: Logger)
        async throws -> UUID
    {
        let liability = try await Ledger.account(community, .deposit, subtype: account(meter), connection, logger)
        let revenue = try await Ledger.account(community, .revenue, subtype: "meter_credit", connection, logger)
        let entry = UUIDv7.make()
        try await Ledger.post(
            entry: entry, [.init(debit: liability, credit: revenue, amount: amountFen, kind: .offset, bill: nil, memo: "meter credit delivered")],
            by: nil, connection, logger)
        return entry
    }
}
