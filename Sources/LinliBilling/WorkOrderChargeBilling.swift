import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// The consumer of `billing.work_order_charge`: a completed repair with a charge becomes a
/// one-time bill on its room (repair fee item, due on the completion day), charged on the
/// ledger (receivable of room and item ← revenue of the item). `bills.work_order_id` is unique,
/// so a message delivered twice bills once.
public struct WorkOrderChargeBilling: OutboxConsumer {
    public let name = OutboxConsumerName.billing
    /// The fee item repair charges are billed under, opened in each community on first use.
    public static let feeItemName = "维修费"

    public init() {}

    public func consume(_ messages: [Outbox.Message], tenant: TenantRef, on connection: PostgresConnection, logger: Logger) async throws {
        for message in messages where message.topic == Topic.workOrderCharged.name {
            let charge = try Outbox.decode(Topic.workOrderCharged, message.payload)
            guard let order = UUID(uuidString: charge.workOrderID), let community = UUID(uuidString: charge.communityID),
                let room = UUID(uuidString: charge.roomID), charge.chargeFen > 0,
                (try? Input.localDate(charge.completedOn, field: "completed_on")) != nil
            else {
                logger.error("malformed work order charge left unbilled", metadata: ["outbox.id": "\(message.id)"])
                continue
            }
            try await bill(
                order: WorkOrderID(order), community: CommunityID(community), room: RoomID(room), fen: charge.chargeFen,
                on: charge.completedOn, requester: message.recipient, connection, logger)
        }
    }

    private func bill(
        order: WorkOrderID, community: CommunityID, room: RoomID, fen: Int64, on day: String, requester: UserID?,
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        let item = try await repairFeeItem(community, connection, logger)
        let bill = UUIDv7.make()
        let entry = UUIDv7.make()
        let inserted = try await connection.run(
            """
            INSERT INTO bills (id, community_id, room_id, fee_item_id, period_start, period_end, billed_days, period_days,
                               amount_fen, due_on, entry_id, work_order_id)
            VALUES (\(bill), \(community.uuid), \(room.uuid), \(item), \(day)::date, \(day)::date, 1, 1, \(fen), \(day)::date, \(entry),
                    \(order.uuid))
            ON CONFLICT (work_order_id) WHERE work_order_id IS NOT NULL DO NOTHING RETURNING 1
            """, logger: logger)
        var fresh = false
        for try await _ in inserted { fresh = true }
        guard fresh else { return }
        let receivable = try await Ledger.account(community, .receivable, room: room, feeItem: item, connection, logger)
        let revenue = try await Ledger.account(community, .revenue, feeItem: item, connection, logger)
        try await Ledger.post(
            entry: entry, [.init(debit: receivable, credit: revenue, amount: fen, kind: .charge, bill: bill, memo: "work order \(order)")],
            by: requester, connection, logger)
        try await MetricDelta.record(.billingChargedFen, delta: fen, community: community, on: connection, logger: logger)
    }

    private func repairFeeItem(_ community: CommunityID, _ connection: PostgresConnection, _ logger: Logger) async throws -> UUID {
        try await connection.run(
            """
            INSERT INTO fee_items (id, community_id, name, kind, rule, unit_price_fen, category)
            VALUES (\(UUIDv7.make()), \(community.uuid), \(Self.feeItemName), 'one_time', 'fixed', 0, 'other')
            ON CONFLICT (community_id, name) DO NOTHING
            """, logger: logger)
        let rows = try await connection.run(
            "SELECT id FROM fee_items WHERE community_id = \(community.uuid) AND name = \(Self.feeItemName)", logger: logger)
        for try await id in rows.decode(UUID.self) { return id }
        throw LinliError(.internal, "repair fee item missing after insert")
    }
}
