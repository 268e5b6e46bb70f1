import Foundation
import LinliBilling
import LinliCore
import LinliPoints
import Logging
import PostgresNIO

/// The payment channels a server knows, by name.
public struct PaymentChannels: Sendable {
    public let simulated: SimulatedChannel
    let byName: [String: any PaymentChannel]

    public init(simulated: SimulatedChannel = SimulatedChannel()) {
        self.simulated = simulated
        byName = [simulated.name: simulated]
    }

    public func channel(_ name: String) throws(LinliError) -> any PaymentChannel {
        guard let channel = byName[name] else {
            throw LinliError.invalid("channel", "must be one of \(byName.keys.sorted().joined(separator: ", "))")
        }
        return channel
    }
}

extension OrderStore {
    public struct Payment: Sendable {
        public enum State: String, Sendable, CaseIterable { case pending, paid, refunded, closed }
        public var id: UUID
        public var order: UUID
        public var channel: String
        public var amountFen: Int64
        public var state: State
        public var transaction: String?
        public var expiresAt: Date
        public var payload: String = ""
    }

    static let paymentColumns = "id, order_id, channel, amount_fen, state, channel_txn, expires_at"

    func payments(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Payment] {
        var result: [Payment] = []
        for try await r in try await connection.run(query, logger: logger).decode((UUID, UUID, String, Int64, String, String?, Date).self) {
            result.append(
                Payment(
                    id: r.0, order: r.1, channel: r.2, amountFen: r.3, state: Payment.State(rawValue: r.4) ?? .pending, transaction: r.5,
                    expiresAt: r.6))
        }
        return result
    }

    public func payment(_ id: UUID, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> Payment {
        var b = PostgresBindings()
        b.append(id)
        let lock = forUpdate ? " FOR UPDATE" : ""
        guard
            let found = try await payments(
                PostgresQuery(unsafeSQL: "SELECT \(Self.paymentColumns) FROM commerce_payments WHERE id = $1\(lock)", binds: b), connection, logger
            ).first
        else { throw LinliError.notFound("payment intent") }
        return found
    }

    /// A payment intent for the unpaid order (the one still open, or a new one), or the order
    /// paid at once when points cover all of it.
    public func intent(
        for order: Order, channel: any PaymentChannel, tenant: TenantID, by: By, on connection: PostgresConnection, logger: Logger
    ) async throws -> Payment {
        guard order.state == .unpaid else {
            if let paid = try await payments(
                "SELECT \(unescaped: Self.paymentColumns) FROM commerce_payments WHERE order_id = \(order.id) AND state = 'paid'", connection, logger
            ).first {
                return paid
            }
            throw LinliError(.failedPrecondition, "order_id: the order is \(order.state.rawValue), not waiting for payment")
        }
        guard order.payDeadline > Date() else { throw LinliError(.failedPrecondition, "order_id: the time to pay is over") }
        if order.payFen == 0 {
            try await markPaid(order, payment: nil, channel: "", by: by, connection, logger)
            return Payment(id: order.id, order: order.id, channel: "", amountFen: 0, state: .paid, transaction: nil, expiresAt: order.payDeadline)
        }
        var open = try await payments(
            """
            SELECT \(unescaped: Self.paymentColumns) FROM commerce_payments
            WHERE order_id = \(order.id) AND state = 'pending' AND channel = \(channel.name) ORDER BY created_at DESC LIMIT 1
            """, connection, logger
        ).first
        if open == nil {
            let id = UUIDv7.make()
            try await connection.run(
                """
                INSERT INTO commerce_payments (id, order_id, channel, amount_fen, expires_at)
                VALUES (\(id), \(order.id), \(channel.name), \(order.payFen), \(order.payDeadline))
                """, logger: logger)
            open = Payment(
                id: id, order: order.id, channel: channel.name, amountFen: order.payFen, state: .pending, transaction: nil,
                expiresAt: order.payDeadline)
        }
        guard var payment = open else { throw LinliError(.internal, "payment intent missing") }
        payment.payload = try await channel.prepare(intent: payment.id, tenant: tenant, amountFen: payment.amountFen, expiresAt: payment.expiresAt)
        return payment
    }

    /// The order paid: reserved stock sold, the points spent, the money in the merchant's escrow.
    func markPaid(_ order: Order, payment: Payment?, channel: String, by: By, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await move(order, to: .paid, now: ["paid_at"], by: by, note: payment?.transaction ?? "points", connection, logger)
        if let group = order.groupBuy { try await GroupBuyStore().memberPaid(group, on: connection, logger: logger) }
        try await moveStock(order.lines, from: "reserved", to: "sold", connection, logger)
        if let hold = order.pointsHold {
            _ = try await points.settle(hold, to: .committed, for: by.pointsPrincipal, on: connection, logger: logger)
        }
        try await CommerceLedger.paid(
            .init(
                community: order.community, merchant: order.merchant, order: order.id, channel: channel, cashFen: payment?.amountFen ?? 0,
                pointsValueFen: order.pointsValueFen, couponValueFen: order.couponByProperty ? order.couponFen : 0), on: connection, logger: logger)
    }

    public enum NoticeOutcome: Sendable, Equatable {
        /// The order is paid by this notice.
        case paid
        /// The notice was applied before (the same transaction again).
        case duplicate
        /// The money arrived for an order no longer waiting for it: refunded at once.
        case refunded
    }

    /// Applies a verified channel notice once per channel transaction: the order paid, or (the
    /// order cancelled or paid otherwise meanwhile) the money taken and refunded at once, so no
    /// order ends "cancelled with money taken".
    public func apply(_ notice: PaymentNotice, channels: PaymentChannels, on connection: PostgresConnection, logger: Logger) async throws
        -> NoticeOutcome
    {
        var payment = try await payment(notice.intent, on: connection, logger: logger)
        // The order first, then the payment: the order every other change locks first.
        let order = try await order(payment.order, forUpdate: true, on: connection, logger: logger)
        payment = try await self.payment(notice.intent, forUpdate: true, on: connection, logger: logger)
        if payment.transaction == notice.transaction { return .duplicate }
        guard payment.transaction == nil else {
            throw LinliError(.failedPrecondition, "the intent was paid by another transaction (\(payment.transaction ?? ""))")
        }
        guard notice.amountFen == payment.amountFen else {
            throw LinliError(.failedPrecondition, "notice amount \(notice.amountFen) differs from the intent's \(payment.amountFen)")
        }
        try await connection.run(
            """
            UPDATE commerce_payments SET state = 'paid', channel_txn = \(notice.transaction), paid_at = \(notice.paidAt) WHERE id = \(payment.id)
            """, logger: logger)
        payment.transaction = notice.transaction
        payment.state = .paid
        if order.state == .unpaid {
            try await markPaid(order, payment: payment, channel: payment.channel, by: .channel, connection, logger)
            try await createShare(order, payment: payment, transaction: notice.transaction, connection, logger)
            return .paid
        }
        // Too late: the money is in, so it goes through the ledger in and straight back out.
        let money = CommerceLedger.OrderMoney(
            community: order.community, merchant: order.merchant, order: order.id, channel: payment.channel, cashFen: payment.amountFen,
            pointsValueFen: 0)
        try await CommerceLedger.paid(money, on: connection, logger: logger)
        let refund = try await channels.channel(payment.channel).refund(
            transaction: notice.transaction, amountFen: payment.amountFen, key: "refund:\(payment.id.uuidString.lowercased())")
        try await connection.run(
            "UPDATE commerce_payments SET state = 'refunded', refunded_at = now(), refund_txn = \(refund) WHERE id = \(payment.id)", logger: logger)
        try await CommerceLedger.refunded(money, on: connection, logger: logger)
        try await connection.run("UPDATE orders SET refunded_fen = refunded_fen + \(payment.amountFen) WHERE id = \(order.id)", logger: logger)
        try await record(
            order.id, from: order.state, to: order.state, by: .channel,
            note: "payment \(notice.transaction) arrived after the order was \(order.state.rawValue): refunded \(refund)", connection, logger)
        return .refunded
    }

    /// Pending intents of orders no longer unpaid, or past their deadline: asked of the channel,
    /// so a payment whose notice never came is still applied (or refunded).
    public func unsettledIntents(before time: Date, on connection: PostgresConnection, logger: Logger) async throws -> [(UUID, String)] {
        var result: [(UUID, String)] = []
        for try await r in try await connection.run(
            """
            SELECT p.id, p.channel FROM commerce_payments p JOIN orders o ON o.id = p.order_id
            WHERE p.channel_txn IS NULL AND p.expires_at > \(time) - interval '1 day'
              AND ((p.state = 'pending' AND (p.expires_at <= \(time) OR o.state <> 'unpaid')) OR p.state = 'closed')
            ORDER BY p.expires_at LIMIT 500
            """, logger: logger
        ).decode((UUID, String).self) { result.append(r) }
        return result
    }
}
