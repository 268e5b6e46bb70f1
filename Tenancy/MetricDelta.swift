import Foundation
import LinliCore
import Logging
import PostgresNIO

/// A national figure that changed: recorded in the tenant schema in the same transaction as
/// the change, and folded into `platform` later by the rollup.
public struct MetricDelta: Sendable {
    /// Metric names, defined once.
    public enum Metric: String, Sendable, CaseIterable {
        case communities
        case noticesPublished = "notices_published"
        case workOrdersFiled = "work_orders_filed"
        case workOrdersCompleted = "work_orders_completed"
        case complaintsFiled = "complaints_filed"
        case hotlineTickets = "hotline_tickets"
        case rooms
        case residents
        /// Fen charged on bills, and fen settled on them (payments and prepaid offsets, less voids).
        case billingChargedFen = "billing_charged_fen"
        case billingCollectedFen = "billing_collected_fen"
        /// Parking: fen taken (stays, renewals and redeemed coupons, less refunds), cars in and out.
        case parkingRevenueFen = "parking_revenue_fen"
        case parkingEntries = "parking_entries"
        case parkingExits = "parking_exits"
    }

    /// Records `delta` of `metric` for `community` on the community's today.
    public static func record(
        _ metric: Metric, delta: Int64, community: CommunityID,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        try await connection.run(
            """
            INSERT INTO metric_deltas (community_id, day, metric, delta)
            VALUES (\(community.uuid), community_today(\(community.uuid)), \(metric.rawValue), \(delta))
            """, logger: logger)
    }
}
