import Foundation
import LinliCore
import Logging
import PostgresNIO

/// Profit sharing (分账): the commission split out of an order's channel payment to the
/// platform's receiver, as a persisted state machine (pending → processing → succeeded; failed
/// and retried with backoff; rejected before sending when beyond the limits; returned before a
/// refund, or cancelled when never sent).
extension OrderStore {
    public struct Share: Sendable, Equatable {
        public enum State: String, Sendable, CaseIterable { case pending, processing, succeeded, failed, rejected, returned, cancelled }
        public var id: UUID
        public var order: UUID
        public var payment: UUID
        public var channel: String
        public var transaction: String
        public var receiver: String
        public var amountFen: Int64
        public var paidFen: Int64
        public var state: State
        public var attempts: Int32
        public var lastError: String
    }

    /// The receiver of the platform's commission at the channel.
    public static let platformReceiver = "platform"
    /// The channel's fee on a payment, in basis points (WeChat Pay's 0.6 %), rounded up.
    public static let channelFeeBP: Int64 = 60
    /// A channel takes shares no sooner than this after the payment.
    public static let shareDelay: TimeInterval = 60
    static let maxShareAttempts: Int32 = 10

    /// Whether `amount` may be shared out of `paid`: at most 30 % of it and never above the net
    /// after the channel's fee. The reason when not.
    public static func shareRefusal(_ amount: Int64, of paid: Int64) -> String? {
        let fee = (paid * channelFeeBP + 9_999) / 10_000
        if amount * 10 > paid * 3 { return "share \(amount) fen is above 30% of the \(paid) fen paid" }
        if amount > paid - fee { return "share \(amount) fen is above the \(paid - fee) fen net of the channel's fee" }
        return nil
    }

    static let shareColumns = "id, order_id, payment_id, channel, channel_txn, receiver, amount_fen, paid_fen, state, attempts, last_error"

    func shares(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Share] {
        var result: [Share] = []
        for try await r in try await connection.run(query, logger: logger).decode(
            (UUID, UUID, UUID, String, String, String, Int64, Int64, String, Int32, String).self)
        {
            result.append(
                Share(
                    id: r.0, order: r.1, payment: r.2, channel: r.3, transaction: r.4, receiver: r.5, amountFen: r.6, paidFen: r.7,
                    state: Share.State(rawValue: r.8) ?? .pending, attempts: r.9, lastError: r.10))
        }
        return result
    }

    public func shares(order: UUID, on connection: PostgresConnection, logger: Logger) async throws -> [Share] {
        try await shares(
            "SELECT \(unescaped: Self.shareColumns) FROM profit_shares WHERE order_id = \(order) ORDER BY created_at, id", connection, logger)
    }

    /// The commission's share of a channel payment, persisted (or rejected with its reason).
    func createShare(_ order: Order, payment: Payment, transaction: String, _ connection: PostgresConnection, _ logger: Logger) async throws {
        var bp: Int64 = 0
        for try await value in try await connection.run("SELECT commission_bp FROM merchants WHERE id = \(order.merchant)", logger: logger)
            .decode(Int32.self)
        { bp = Int64(value) }
        let amount = (order.settledBaseFen * bp + 5_000) / 10_000
        guard amount > 0 else { return }
        let refusal = Self.shareRefusal(amount, of: payment.amountFen)
        let now = Date()
        try await connection.run(
            """
            INSERT INTO profit_shares (id, order_id, payment_id, channel, channel_txn, receiver, amount_fen, paid_fen, state, not_before,
                                       next_attempt_at, last_error)
            VALUES (\(UUIDv7.make()), \(order.id), \(payment.id), \(payment.channel), \(transaction), \(Self.platformReceiver), \(amount),
                    \(payment.amountFen), \(refusal == nil ? "pending" : "rejected"), \(now.addingTimeInterval(Self.shareDelay)),
                    \(now.addingTimeInterval(Self.shareDelay)), \(refusal ?? ""))
            ON CONFLICT (payment_id) DO NOTHING
            """, logger: logger)
    }

    /// Sends (or asks after) the shares due at `time`, one transaction for the batch: each
    /// answer moves its share; a failure is retried later with backoff. Returns how many moved.
    public func sendShares(at time: Date, channels: PaymentChannels, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let due = try await shares(
            """
            SELECT \(unescaped: Self.shareColumns) FROM profit_shares
            WHERE state IN ('pending', 'processing', 'failed') AND next_attempt_at <= \(time) AND not_before <= \(time)
            ORDER BY next_attempt_at LIMIT 100 FOR UPDATE SKIP LOCKED
            """, connection, logger)
        for share in due {
            let channel = try channels.channel(share.channel)
            let key = "share:\(share.id.uuidString.lowercased())"
            let answer =
                share.state == .processing
                ? await channel.queryShare(key: key)
                : await channel.share(transaction: share.transaction, amountFen: share.amountFen, receiver: share.receiver, key: key)
            let attempts = share.attempts + 1
            let backoff = time.addingTimeInterval(min(30 * pow(2, Double(min(attempts, 7))), 3_600))
            switch answer {
            case .succeeded(let id):
                try await moveShare(share.id, to: .succeeded, attempts: attempts, next: time, id: id, error: "", connection, logger)
            case .processing(let id):
                try await moveShare(share.id, to: .processing, attempts: attempts, next: backoff, id: id, error: "", connection, logger)
            case .failed(let reason):
                let next = attempts >= Self.maxShareAttempts ? time.addingTimeInterval(86_400) : backoff
                try await moveShare(share.id, to: .failed, attempts: attempts, next: next, id: nil, error: reason, connection, logger)
            case .unknown:
                try await moveShare(
                    share.id, to: .pending, attempts: attempts, next: backoff, id: nil, error: "unknown at the channel", connection, logger)
            }
        }
        return due.count
    }

    func moveShare(
        _ id: UUID, to state: Share.State, attempts: Int32, next: Date, id channelID: String?, error: String, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws {
        try await connection.run(
            """
            UPDATE profit_shares SET state = \(state.rawValue), attempts = \(attempts), next_attempt_at = \(next),
                channel_share_id = coalesce(\(channelID), channel_share_id), last_error = \(error), updated_at = now()
            WHERE id = \(id)
            """, logger: logger)
    }

    /// Before a payment is refunded: its share returned when the channel made it (分账回退),
    /// cancelled when it was never made.
    func returnShares(payment: UUID, channels: PaymentChannels, _ connection: PostgresConnection, _ logger: Logger) async throws {
        let found = try await shares(
            "SELECT \(unescaped: Self.shareColumns) FROM profit_shares WHERE payment_id = \(payment) FOR UPDATE", connection, logger)
        for share in found {
            let channel = try channels.channel(share.channel)
            let key = "share:\(share.id.uuidString.lowercased())"
            var made = share.state == .succeeded
            if share.state == .processing, case .succeeded = await channel.queryShare(key: key) { made = true }
            if made {
                try await channel.returnShare(key: key)
                try await moveShare(share.id, to: .returned, attempts: share.attempts, next: Date(), id: nil, error: "", connection, logger)
            } else if [.pending, .failed, .rejected, .processing].contains(share.state) {
                try await moveShare(
                    share.id, to: .cancelled, attempts: share.attempts, next: Date(), id: nil, error: share.lastError, connection, logger)
            }
        }
    }

    /// Shares the ledger of shares and the channel disagree on: succeeded here but not held
    /// there, or the amounts differ (reconciliation).
    public func unreconciledShares(channel: SimulatedChannel, on connection: PostgresConnection, logger: Logger) async throws -> [Share] {
        let succeeded = try await shares(
            "SELECT \(unescaped: Self.shareColumns) FROM profit_shares WHERE state = 'succeeded' AND channel = \(channel.name)", connection, logger)
        var result: [Share] = []
        for share in succeeded where await channel.shared(transaction: share.transaction) != share.amountFen { result.append(share) }
        return result
    }
}
