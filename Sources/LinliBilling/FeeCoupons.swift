import Foundation
import LinliCore
import Logging
import PostgresNIO

/// Coupons spent on property fees and parking. Coupons are the commerce module's (it sits above
/// billing and parking), so billing and parking call them through this, in their own
/// transaction; the server wires the commerce implementation in.
public protocol FeeCoupons: Sendable {
    /// What the coupon of `community` is for (NOT_FOUND for another community's; a goods coupon
    /// is refused), read before it is spent so its scope picks what it pays.
    func use(of coupon: UUID, community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> CouponUse

    /// Spends the coupon on `payment`: it must be available, of `community` and of `use`'s
    /// scope, and `inScopeFen` (what the payment covers in that scope) must meet its threshold.
    /// Returns what it takes off (1 … `inScopeFen`) and whose it is, for the caller to check.
    func redeem(
        _ coupon: UUID, for use: CouponUse, community: CommunityID, inScopeFen: Int64, payment: UUID, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (fen: Int64, resident: ResidentID)

    /// The coupon spent on `payment` is available again (the payment was voided); an expired one
    /// stays expired.
    func giveBack(payment: UUID, on connection: PostgresConnection, logger: Logger) async throws
}

/// What a fee or parking coupon is spent on.
public enum CouponUse: Sendable, Equatable {
    /// Property fee bills at the cashier.
    case propertyFees
    /// Parking bills at the cashier, and temporary stays.
    case parking

    /// The bills of `category` a coupon for this use settles.
    func covers(_ category: FeeStore.Category) -> Bool {
        switch self {
        case .propertyFees: category == .property
        case .parking: category == .parking
        }
    }
}

extension Ledger {
    /// The property's cost account its coupons are paid from (on orders, fees and parking alike).
    static func couponCost(_ community: CommunityID, _ connection: PostgresConnection, _ logger: Logger) async throws -> UUID {
        try await account(community, .writeOff, subtype: CommerceLedger.couponCost, connection, logger)
    }
}
