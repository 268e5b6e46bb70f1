import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO

/// The consumer of `hotline.reply`: hands a reply to the 12345 hotline platform.
///
/// Linli has no connection to a city's 12345 platform yet (each city exposes its own API);
/// `send` is where it plugs in. Until then a reply is logged with its ticket's external id
/// and marked delivered; the reply text stays on the ticket for the bridge to re-send.
public struct HotlineBridge: OutboxConsumer {
    public let name = OutboxConsumerName.hotlineBridge
    let send: @Sendable (_ tenant: TenantRef, _ reply: Linli_Events_V1_HotlineReplied) async throws -> Void

    public init(send: @escaping @Sendable (_ tenant: TenantRef, _ reply: Linli_Events_V1_HotlineReplied) async throws -> Void = { _, _ in }) {
        self.send = send
    }

    public func consume(_ messages: [Outbox.Message], tenant: TenantRef, on connection: PostgresConnection, logger: Logger) async throws {
        for message in messages where message.topic == Topic.hotlineReplied.name {
            let reply = try Outbox.decode(Topic.hotlineReplied, message.payload)
            try await send(tenant, reply)
            logger.info("hotline reply handed to the 12345 bridge", metadata: ["hotline.external_id": "\(reply.externalID)"])
        }
    }
}
