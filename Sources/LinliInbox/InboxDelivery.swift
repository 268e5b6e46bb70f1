import Foundation
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// The consumer of notification topics: each message becomes one row of its recipient's
/// inbox; `notifications.outbox_id` is unique, so a message delivered twice shows once.
public struct InboxDelivery: OutboxConsumer {
    public let name = OutboxConsumerName.inbox

    public init() {}

    public func consume(_ messages: [Outbox.Message], tenant: TenantRef, on connection: PostgresConnection, logger: Logger) async throws {
        let addressed = messages.filter { $0.recipient != nil }
        guard !addressed.isEmpty else { return }
        try await connection.run(
            """
            INSERT INTO notifications (id, outbox_id, recipient_id, topic, payload)
            SELECT uuid_v7(), m.id, m.recipient, m.topic, m.payload::jsonb
            FROM unnest(\(addressed.map(\.id))::int8[], \(addressed.compactMap(\.recipient?.uuid))::uuid[], \(addressed.map(\.topic))::text[],
                        \(addressed.map(\.payload))::text[]) AS m (id, recipient, topic, payload)
            ON CONFLICT (outbox_id) DO NOTHING
            """, logger: logger)
    }
}
