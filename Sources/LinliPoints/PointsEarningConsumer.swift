import Foundation
import LinliAPI
import LinliCore
import LinliRedis
import LinliTenancy
import Logging
import PostgresNIO

/// The consumer of `billing.paid`: the fee-paid earning rule applied to each payment, once
/// (operation key `pay:<payment>`), for the resident who paid or the room's owner. A payment the
/// budget cannot cover is still paid; its grant is recorded as refused (scenario C-3).
///
/// The relay runs this inside its own transaction, so the earner's cached balance is dropped
/// there and dropped again a moment after (when the transaction has committed): a reader that
/// refilled the cache from the ledger before the commit cannot leave the old balance behind.
public struct PointsEarningConsumer: OutboxConsumer {
    public let name = OutboxConsumerName.points
    let cache: PointsCache

    public init(redis: RedisClient?, logger: Logger) { cache = PointsCache(redis: redis, logger: logger) }

    public func consume(_ messages: [Outbox.Message], tenant: TenantRef, on connection: PostgresConnection, logger: Logger) async throws {
        let earning = PointsEarning()
        var events: [PointsEarning.Event] = []
        for message in messages where message.topic == Topic.billPaid.name {
            let paid = try Outbox.decode(Topic.billPaid, message.payload)
            guard let payment = UUID(uuidString: paid.paymentID), let community = UUID(uuidString: paid.communityID),
                let room = UUID(uuidString: paid.roomID), paid.settledFen > 0
            else {
                logger.error("malformed billing.paid left without points", metadata: ["outbox.id": "\(message.id)"])
                continue
            }
            let payer = UUID(uuidString: paid.payerUserID).map(UserID.init)
            guard let resident = try await earning.earner(room: RoomID(room), payer: payer, on: connection, logger: logger) else { continue }
            let at =
                (try? Date(paid.paidAt, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)))
                ?? ISO8601DateFormatter().date(from: paid.paidAt) ?? Date()
            events.append(
                .init(
                    kind: .feePaid, community: CommunityID(community), resident: resident, amountFen: paid.settledFen, reason: "缴费奖励",
                    key: "pay:\(payment.uuidString.lowercased())", at: at))
        }
        // One batch: the grants of the messages together (a payment run's hundreds in a few statements).
        let earned = try await earning.earnMany(events, on: connection, logger: logger)
        var earners: [UUID] = []
        for (event, result) in zip(events, earned) where result.outcome == .granted {
            earners.append(event.resident)
            await cache.forget(event.resident, tenant: tenant.id)
        }
        guard !earners.isEmpty else { return }
        let cache = cache
        Task {
            try? await Task.sleep(for: .seconds(2))
            for resident in earners { await cache.forget(resident, tenant: tenant.id) }
        }
    }
}
