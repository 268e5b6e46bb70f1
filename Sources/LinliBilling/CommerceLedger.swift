import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// Marketplace money on the community's ledger, in the caller's transaction (the commerce module
/// owns merchants and orders; the ledger's accounts and transfers stay here):
/// - an order paid: channel ← the merchant's escrow (the money paid, kind `collect`), and the
///   points' value: the property's points cost (`write_off` `points_redemption`) ← escrow (a
///   property coupon's discount likewise, from `coupon_redemption`);
/// - a refund: escrow → channel (kind `refund`) and escrow → points cost (kind `reversal`);
/// - settlement after receipt: escrow → the merchant's payable (net) and → commission revenue;
/// - a merchant's deposit: channel ← the merchant's deposit (a liability).
///
/// The escrow and the payable are guarded: neither can go below zero, so nothing is refunded or
/// settled twice over.
public enum CommerceLedger {
    static func escrow(_ merchant: UUID) -> String { "order_escrow:\(merchant.uuidString.lowercased())" }
    static func payable(_ merchant: UUID) -> String { "merchant_payable:\(merchant.uuidString.lowercased())" }
    static func deposit(_ merchant: UUID) -> String { "merchant_deposit:\(merchant.uuidString.lowercased())" }
    static let pointsCost = "points_redemption"
    static let couponCost = "coupon_redemption"
    static let commission = "commerce_commission"

    /// Money moved for an order in one entry; amounts of 0 post nothing.
    public struct OrderMoney: Sendable {
        public var community: CommunityID
        public var merchant: UUID
        public var order: UUID
        /// The channel's name: `sim`, `wechat`, `alipay`.
        public var channel: String
        public var cashFen: Int64
        public var pointsValueFen: Int64
        /// A property coupon's discount (the property's cost, like points).
        public var couponValueFen: Int64

        public init(
            community: CommunityID, merchant: UUID, order: UUID, channel: String, cashFen: Int64, pointsValueFen: Int64, couponValueFen: Int64 = 0
        ) {
            self.community = community
            self.merchant = merchant
            self.order = order
            self.channel = channel
            self.cashFen = cashFen
            self.pointsValueFen = pointsValueFen
            self.couponValueFen = couponValueFen
        }
    }

    /// The order's money arrived (cash through the channel, the rest as points).
    @discardableResult
    public static func paid(_ money: OrderMoney, on connection: PostgresConnection, logger: Logger) async throws -> UUID {
        try await move(money, refund: false, connection, logger)
    }

    /// The order's money given back.
    @discardableResult
    public static func refunded(_ money: OrderMoney, on connection: PostgresConnection, logger: Logger) async throws -> UUID {
        try await move(money, refund: true, connection, logger)
    }

    private static func move(_ money: OrderMoney, refund: Bool, _ connection: PostgresConnection, _ logger: Logger) async throws -> UUID {
        let escrow = try await Ledger.account(money.community, .deposit, subtype: escrow(money.merchant), connection, logger)
        let memo = "order \(money.order.uuidString.lowercased())"
        var legs: [Ledger.Leg] = []
        if money.cashFen > 0 {
            let channel = try await Ledger.account(money.community, .channel, subtype: money.channel, connection, logger)
            legs.append(
                refund
                    ? .init(debit: escrow, credit: channel, amount: money.cashFen, kind: .refund, bill: nil, memo: memo)
                    : .init(debit: channel, credit: escrow, amount: money.cashFen, kind: .collect, bill: nil, memo: memo))
        }
        // What the property pays in for the order (points, its coupons), from its cost accounts.
        for (fen, account) in [(money.pointsValueFen, pointsCost), (money.couponValueFen, couponCost)] where fen > 0 {
            let cost = try await Ledger.account(money.community, .writeOff, subtype: account, connection, logger)
            legs.append(
                refund
                    ? .init(debit: escrow, credit: cost, amount: fen, kind: .reversal, bill: nil, memo: memo)
                    : .init(debit: cost, credit: escrow, amount: fen, kind: .offset, bill: nil, memo: memo))
        }
        let entry = UUIDv7.make()
        try await Ledger.post(entry: entry, legs, by: nil, connection, logger)
        return entry
    }

    /// The order settled: the merchant's share into their payable, the commission to revenue.
    @discardableResult
    public static func settled(
        community: CommunityID, merchant: UUID, order: UUID, netFen: Int64, commissionFen: Int64, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> UUID {
        let escrow = try await Ledger.account(community, .deposit, subtype: escrow(merchant), connection, logger)
        let memo = "order \(order.uuidString.lowercased())"
        var legs: [Ledger.Leg] = []
        if netFen > 0 {
            let payable = try await Ledger.account(community, .deposit, subtype: payable(merchant), connection, logger)
            legs.append(.init(debit: escrow, credit: payable, amount: netFen, kind: .settle, bill: nil, memo: memo))
        }
        if commissionFen > 0 {
            let revenue = try await Ledger.account(community, .revenue, subtype: commission, connection, logger)
            legs.append(.init(debit: escrow, credit: revenue, amount: commissionFen, kind: .settle, bill: nil, memo: memo))
        }
        let entry = UUIDv7.make()
        try await Ledger.post(entry: entry, legs, by: nil, connection, logger)
        return entry
    }

    /// A merchant's deposit taken through `method`.
    public static func merchantDeposit(
        _ amountFen: Int64, method: PaymentStore.Method, merchant: UUID, community: CommunityID, by user: UserID,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> UUID {
        try await Ledger.collectLiability(
            amountFen, method: method, subtype: deposit(merchant), community: community, memo: "merchant deposit", by: user, connection, logger)
    }

    /// What the ledger holds for a merchant in `community`: escrow (paid, not settled) and payable.
    public static func balances(merchant: UUID, community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws
        -> (escrowFen: Int64, payableFen: Int64)
    {
        let rows = try await connection.run(
            """
            SELECT coalesce(sum(credits_fen - debits_fen) FILTER (WHERE subtype = \(escrow(merchant))), 0)::int8,
                   coalesce(sum(credits_fen - debits_fen) FILTER (WHERE subtype = \(payable(merchant))), 0)::int8
            FROM ledger_accounts WHERE community_id = \(community.uuid) AND kind = 'deposit'
            """, logger: logger)
        for try await row in rows.decode((Int64, Int64).self) { return (row.0, row.1) }
        return (0, 0)
    }
}
