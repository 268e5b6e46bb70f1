import Foundation
import LinliCore
import Logging
import PostgresNIO

/// Reviews (one per order line, one merchant reply) and returns (request → the merchant accepts
/// or refuses → the goods back → refunded, points given back, stock restored).
extension OrderStore {
    public struct Review: Sendable {
        public var id: UUID
        public var order: UUID
        public var line: UUID
        public var goods: UUID
        public var score: Int32
        public var text: String
        public var imageRefs: [String]
        public var reply: String?
        public var createdAt: Date
        public var repliedAt: Date?
    }

    static let reviewColumns = "id, order_id, line_id, goods_id, score, text, image_refs, reply, created_at, replied_at"

    func reviews(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Review] {
        var result: [Review] = []
        for try await r in try await connection.run(query, logger: logger).decode(
            (UUID, UUID, UUID, UUID, Int32, String, [String], String?, Date, Date?).self)
        {
            result.append(
                Review(id: r.0, order: r.1, line: r.2, goods: r.3, score: r.4, text: r.5, imageRefs: r.6, reply: r.7, createdAt: r.8, repliedAt: r.9))
        }
        return result
    }

    /// The resident reviews a line of a received order within the review window; once per line.
    public func review(
        _ order: Order, line: UUID, score: Int32, text: String, imageRefs: [String], on connection: PostgresConnection, logger: Logger
    ) async throws -> Review {
        guard let target = order.lines.first(where: { $0.id == line }) else {
            throw LinliError(.notFound, "line_id: not a line of this order", field: "line_id")
        }
        if let existing = try await reviews(
            "SELECT \(unescaped: Self.reviewColumns) FROM reviews WHERE line_id = \(line)", connection, logger
        ).first {
            guard existing.score == score, existing.text == text, existing.imageRefs == imageRefs else {
                throw LinliError(.alreadyExists, "line_id: this line is already reviewed", field: "line_id")
            }
            return existing
        }
        let settings = try await merchants.settings(on: connection, logger: logger)
        guard [.received, .done].contains(order.state), let received = order.receivedAt else {
            throw LinliError(.failedPrecondition, "order_id: reviews open once the order is received (it is \(order.state.rawValue))")
        }
        guard Date() < received.addingTimeInterval(TimeInterval(settings.reviewDays) * 86_400) else {
            throw LinliError(.failedPrecondition, "order_id: the \(settings.reviewDays)-day review window is over")
        }
        let id = UUIDv7.make()
        try await connection.run(
            """
            INSERT INTO reviews (id, order_id, line_id, goods_id, merchant_id, resident_id, score, text, image_refs)
            VALUES (\(id), \(order.id), \(line), \(target.goods), \(order.merchant), \(order.resident), \(score), \(text), \(imageRefs)::text[])
            """, logger: logger)
        try await connection.run("UPDATE order_lines SET reviewed = true WHERE id = \(line)", logger: logger)
        try await connection.run(
            "UPDATE goods SET review_count = review_count + 1, score_sum = score_sum + \(score) WHERE id = \(target.goods)", logger: logger)
        return try await reviews("SELECT \(unescaped: Self.reviewColumns) FROM reviews WHERE id = \(id)", connection, logger)[0]
    }

    /// The merchant's one reply to a review of their goods.
    public func reply(_ review: UUID, text: String, merchant: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Review {
        let updated = try await connection.run(
            """
            UPDATE reviews SET reply = \(text), replied_at = now() WHERE id = \(review) AND merchant_id = \(merchant) AND reply IS NULL RETURNING 1
            """, logger: logger)
        var fresh = false
        for try await _ in updated { fresh = true }
        guard
            let found = try await reviews(
                "SELECT \(unescaped: Self.reviewColumns) FROM reviews WHERE id = \(review) AND merchant_id = \(merchant)", connection, logger
            ).first
        else { throw LinliError.notFound("review") }
        if !fresh, found.reply != text { throw LinliError(.alreadyExists, "review_id: the review already has its reply", field: "review_id") }
        return found
    }

    public func reviews(goods: UUID, after: (Date, UUID)?, limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [Review] {
        if let (time, id) = after {
            return try await reviews(
                """
                SELECT \(unescaped: Self.reviewColumns) FROM reviews WHERE goods_id = \(goods) AND (created_at, id) < (\(time), \(id))
                ORDER BY created_at DESC, id DESC LIMIT \(Int32(clamping: limit))
                """, connection, logger)
        }
        return try await reviews(
            """
            SELECT \(unescaped: Self.reviewColumns) FROM reviews WHERE goods_id = \(goods)
            ORDER BY created_at DESC, id DESC LIMIT \(Int32(clamping: limit))
            """, connection, logger)
    }

    // MARK: returns

    public func requestReturn(
        _ order: Order, reason: String, imageRefs: [String], by: By, on connection: PostgresConnection, logger: Logger
    ) async throws -> Order {
        if order.state == .returning, order.returnReason == reason { return order }
        guard [.shipped, .received].contains(order.state) else {
            let hint = order.state == .paid ? "; cancel it instead (refunded at once)" : ""
            throw LinliError(.failedPrecondition, "order_id: a \(order.state.rawValue) order cannot be returned\(hint)")
        }
        try await move(
            order, to: .returning,
            set: [("return_from", order.state.rawValue), ("return_state", "requested"), ("return_reason", reason), ("return_image_refs", imageRefs)],
            by: by, note: reason, connection, logger)
        return try await self.order(order.id, on: connection, logger: logger)
    }

    /// The merchant accepts (the goods are to come back) or refuses (the order goes back where
    /// it was, with the reason).
    public func reviewReturn(
        _ order: Order, accept: Bool, reason: String, by: By, on connection: PostgresConnection, logger: Logger
    ) async throws -> Order {
        guard order.state == .returning, let from = order.returnFrom else {
            throw LinliError(.failedPrecondition, "order_id: no return is requested (the order is \(order.state.rawValue))")
        }
        let wanted = accept ? "accepted" : "rejected"
        if order.returnState == wanted { return order }
        guard order.returnState == "requested" else {
            throw LinliError(.failedPrecondition, "order_id: the return was already \(order.returnState ?? "")")
        }
        if accept {
            try await connection.run(
                "UPDATE orders SET return_state = 'accepted' WHERE id = \(order.id) AND state = 'returning'", logger: logger)
            try await record(order.id, from: .returning, to: .returning, by: by, note: "return accepted \(reason)", connection, logger)
        } else {
            try await move(order, to: from, set: [("return_state", "rejected")], by: by, note: "return refused: \(reason)", connection, logger)
        }
        return try await self.order(order.id, on: connection, logger: logger)
    }

    /// The goods are back: everything refunded (money through its channel, points to their lots)
    /// and the stock restored.
    public func receiveReturned(
        _ order: Order, by: By, channels: PaymentChannels, on connection: PostgresConnection, logger: Logger
    ) async throws -> Order {
        if order.state == .returned { return order }
        guard order.state == .returning, order.returnState == "accepted" else {
            throw LinliError(.failedPrecondition, "order_id: accept the return before taking the goods back")
        }
        try await move(order, to: .returned, by: by, note: "goods back, refunded", connection, logger)
        try await refund(order, restock: true, by: by, channels: channels, connection, logger)
        return try await self.order(order.id, on: connection, logger: logger)
    }
}
