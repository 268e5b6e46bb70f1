import Foundation
import LinliAPI
import LinliCore
import Logging
import PostgresNIO
import SwiftProtobuf

/// Who acts on an outbox topic after the writing transaction commits. Each topic has exactly one.
public enum OutboxConsumerName: String, Sendable, CaseIterable {
    /// The in-app inbox of the message's recipient (`LinliInbox`).
    case inbox
    /// Billing: a charged repair becomes a bill (`LinliBilling`).
    case billing
    /// The 12345 hotline bridge (`LinliCases`).
    case hotlineBridge = "hotline_bridge"
    /// Points earned on what happened (`LinliPoints`).
    case points
}

/// A topic of the transactional outbox: its name, its payload type and its one consumer.
public struct OutboxTopic<Payload: SwiftProtobuf.Message>: Sendable {
    public let name: String
    public let consumer: OutboxConsumerName
    /// Whether a message of this topic must name a recipient user.
    public let needsRecipient: Bool
}

/// The topics, declared once. A new topic is added here and nowhere else; the unit test
/// `OutboxTopicsTests` fails until its consumer handles it.
public enum Topic {
    public static let workOrderAssigned = OutboxTopic<Linli_Events_V1_WorkOrderAssigned>(
        name: "work_order.assigned", consumer: .inbox, needsRecipient: true)
    public static let workOrderCompleted = OutboxTopic<Linli_Events_V1_WorkOrderCompleted>(
        name: "work_order.completed", consumer: .inbox, needsRecipient: true)
    public static let workOrderCharged = OutboxTopic<Linli_Events_V1_WorkOrderCharged>(
        name: "billing.work_order_charge", consumer: .billing, needsRecipient: true)
    public static let parcelArrived = OutboxTopic<Linli_Events_V1_ParcelArrived>(
        name: "parcel.arrived", consumer: .inbox, needsRecipient: true)
    public static let itemReleaseReviewed = OutboxTopic<Linli_Events_V1_ItemReleaseReviewed>(
        name: "item_release.reviewed", consumer: .inbox, needsRecipient: true)
    public static let complaintResolved = OutboxTopic<Linli_Events_V1_ComplaintResolved>(
        name: "complaint.resolved", consumer: .inbox, needsRecipient: true)
    public static let hotlineReplied = OutboxTopic<Linli_Events_V1_HotlineReplied>(
        name: "hotline.reply", consumer: .hotlineBridge, needsRecipient: false)
    public static let deviceAlarmRaised = OutboxTopic<Linli_Events_V1_DeviceAlarmRaised>(
        name: "device.alarm", consumer: .inbox, needsRecipient: true)
    public static let billPaid = OutboxTopic<Linli_Events_V1_BillPaid>(name: "billing.paid", consumer: .points, needsRecipient: false)

    /// Every topic with its consumer.
    public static let all: [(name: String, consumer: OutboxConsumerName)] = [
        entry(workOrderAssigned), entry(workOrderCompleted), entry(workOrderCharged), entry(parcelArrived),
        entry(itemReleaseReviewed), entry(complaintResolved), entry(hotlineReplied), entry(deviceAlarmRaised), entry(billPaid),
    ]

    /// The names of the topics `consumer` handles.
    public static func names(of consumer: OutboxConsumerName) -> [String] {
        all.filter { $0.consumer == consumer }.map(\.name)
    }

    private static func entry<P>(_ topic: OutboxTopic<P>) -> (name: String, consumer: OutboxConsumerName) {
        (topic.name, topic.consumer)
    }
}

/// The one way to write to the outbox: inside the caller's transaction, so the message exists
/// exactly when the change that caused it commits.
public enum Outbox {
    static let json: JSONEncodingOptions = {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return options
    }()

    /// Queues `payload` on `topic` for `recipient`.
    public static func enqueue<P>(
        _ topic: OutboxTopic<P>, _ payload: P, to recipient: UserID?, on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard !topic.needsRecipient || recipient != nil else { throw LinliError(.internal, "outbox topic \(topic.name) needs a recipient") }
        let body = try payload.jsonString(options: json)
        try await connection.run(
            """
            INSERT INTO outbox (topic, recipient_id, payload) VALUES (\(topic.name), \(recipient?.uuid), \(body)::jsonb)
            """, logger: logger)
        OutboxWake.noteQueued()
    }

    /// Decodes a stored payload of `topic`.
    public static func decode<P>(_ topic: OutboxTopic<P>, _ payload: String) throws -> P {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        return try P(jsonString: payload, options: options)
    }

    /// Claims up to `limit` undelivered messages of `topics`, oldest first, locked for this
    /// transaction (others skip them), and marks them delivered; the caller acts on them in
    /// the same transaction, so a failure puts them back.
    public static func claim(
        _ topics: [String], limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> [Message] {
        let rows = try await connection.run(
            """
            WITH claimed AS (
                SELECT id FROM outbox WHERE delivered_at IS NULL AND topic = ANY(\(topics)::text[])
                ORDER BY id LIMIT \(Int32(clamping: limit)) FOR UPDATE SKIP LOCKED)
            UPDATE outbox o SET delivered_at = now() FROM claimed WHERE o.id = claimed.id
            RETURNING o.id, o.topic, o.recipient_id, o.payload::text
            """, logger: logger)
        var messages: [Message] = []
        for try await (id, topic, recipient, payload) in rows.decode((Int64, String, UUID?, String).self) {
            messages.append(Message(id: id, topic: topic, recipient: recipient.map(UserID.init), payload: payload))
        }
        return messages.sorted { $0.id < $1.id }
    }

    /// Messages of `topics` not yet delivered.
    public static func pending(_ topics: [String], on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.run(
            "SELECT count(*)::int8 FROM outbox WHERE delivered_at IS NULL AND topic = ANY(\(topics)::text[])", logger: logger)
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }

    /// A claimed message.
    public struct Message: Sendable {
        public var id: Int64
        public var topic: String
        public var recipient: UserID?
        public var payload: String
    }
}

/// A consumer of outbox topics, run by the relay for each tenant after commits.
public protocol OutboxConsumer: Sendable {
    /// Which topics it handles (`Topic.names(of:)`).
    var name: OutboxConsumerName { get }
    /// Acts on claimed messages inside the claiming transaction; must be idempotent.
    func consume(_ messages: [Outbox.Message], tenant: TenantRef, on connection: PostgresConnection, logger: Logger) async throws
}
