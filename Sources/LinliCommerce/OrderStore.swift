import Foundation
import LinliBilling
import LinliCore
import LinliPoints
import LinliTenancy
import Logging
import PostgresNIO

/// Orders from checkout to settlement, in the caller's tenant transaction. Each order row is
/// locked (`FOR UPDATE`) by whatever changes it, and each change is a compare-and-set on its
/// state, so a payment notice, the unpaid timer and a cancel never both win; stock moves
/// between `stock`, `reserved` and `sold` in guarded UPDATEs, so it is never oversold.
public struct OrderStore: Sendable {
    let merchants = MerchantStore()
    let points = PointsStore()

    public init() {}

    public enum State: String, Sendable, CaseIterable { case unpaid, paid, shipped, received, done, cancelled, returning, returned }
    public enum Actor: String, Sendable { case resident, merchant, staff, job, channel }

    /// Who acts on an order: the role it acts in, and the user when there is one.
    public struct By: Sendable {
        public var actor: Actor
        public var user: UserID?

        public init(actor: Actor, user: UserID?) {
            self.actor = actor
            self.user = user
        }

        public static let job = By(actor: .job, user: nil)
        public static let channel = By(actor: .channel, user: nil)

        public init(_ principal: Principal) {
            let actor: Actor =
                switch principal.role {
                case .resident: .resident
                case .merchant: .merchant
                default: .staff
                }
            self.init(actor: actor, user: principal.subjectID)
        }

        /// The points ledger's view of this actor: the order module has checked the scope.
        var pointsPrincipal: Principal { PointsEarning.system(user) }
    }

    public struct Line: Sendable {
        public var id: UUID
        public var sku: UUID
        public var goods: UUID
        public var name: String
        public var spec: String
        public var priceFen: Int64
        public var quantity: Int32
        public var amountFen: Int64
        public var reviewed: Bool
    }

    public struct Event: Sendable {
        public var from: State?
        public var to: State
        public var actor: String
        public var note: String
        public var at: Date
    }

    public struct Order: Sendable {
        public var id: UUID
        public var orderNo: String
        public var community: CommunityID
        public var merchant: UUID
        public var merchantName: String
        public var resident: UUID
        public var state: State
        public var goodsFen: Int64
        public var points: Int64
        public var pointsValueFen: Int64
        public var payFen: Int64
        public var pointsHold: UUID?
        public var address: String
        public var contactPhone: String
        public var note: String
        public var createdAt: Date
        public var payDeadline: Date
        public var paidAt: Date?
        public var shippedAt: Date?
        public var receivedAt: Date?
        public var cancelReason: String
        public var refundedFen: Int64
        public var settledFen: Int64
        public var commissionFen: Int64
        public var tracking: String
        public var returnFrom: State?
        public var returnState: String?
        public var returnReason: String
        public var returnImageRefs: [String]
        public var coupon: UUID?
        public var couponFen: Int64
        public var couponByProperty: Bool
        public var groupBuy: UUID?
        public var lines: [Line] = []
        public var events: [Event] = []
        public var shares: [Share] = []

        /// What the merchant's escrow holds for the order once paid: the goods, less a coupon the
        /// merchant issued (a property coupon, like points, is paid in by the property).
        public var settledBaseFen: Int64 { goodsFen - (couponByProperty ? 0 : couponFen) }
    }

    public struct Draft: Sendable {
        public var community: CommunityID
        public var lines: [(sku: UUID, quantity: Int32)]
        public var points: Int64
        public var room: RoomID?
        public var contactPhone: String
        public var note: String
        public var coupon: UUID?
        /// The group the order joins, and the prices it pays there (by SKU) instead of the shop's.
        public var groupBuy: UUID?
        public var prices: [UUID: Int64] = [:]
        /// Take the ordered lines out of the resident's cart.
        public var fromCart = false

        public init(
            community: CommunityID, lines: [(sku: UUID, quantity: Int32)], points: Int64, room: RoomID?, contactPhone: String, note: String,
            coupon: UUID? = nil
        ) {
            self.community = community
            self.lines = lines
            self.points = points
            self.room = room
            self.contactPhone = contactPhone
            self.note = note
            self.coupon = coupon
        }
    }

    public struct Quote: Sendable {
        public var merchant: UUID
        public var lines: [Line]
        public var goodsFen: Int64
        public var points: Int64
        public var pointsValueFen: Int64
        public var payFen: Int64
        public var maxPoints: Int64
        public var available: Int64
        public var fenPerPoint: Int32
        public var coupon: UUID?
        public var couponFen: Int64 = 0
        public var couponByProperty = false
    }

    // MARK: reading

    static let columns = """
        o.id, o.order_no, o.community_id, o.merchant_id, m.name, o.resident_id, o.state, o.goods_fen, o.points, o.points_value_fen, o.pay_fen,
        o.points_hold_id, o.address, o.contact_phone, o.note, o.created_at, o.pay_deadline, o.paid_at, o.shipped_at, o.received_at,
        o.cancel_reason, o.refunded_fen, o.settled_fen, o.commission_fen, o.tracking, o.return_from, o.return_state, o.return_reason,
        o.return_image_refs, o.coupon_id, o.coupon_fen, o.coupon_property, o.group_buy_id
        """

    func orders(_ query: PostgresQuery, details: Bool, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Order] {
        var result: [Order] = []
        for try await row in try await connection.run(query, logger: logger) {
            var c = row.makeRandomAccess()
            func v<T: PostgresDecodable>(_ i: Int, _: T.Type = T.self) throws -> T { try c[i].decode(T.self, context: .default) }
            result.append(
                Order(
                    id: try v(0), orderNo: try v(1), community: CommunityID(try v(2, UUID.self)), merchant: try v(3), merchantName: try v(4),
                    resident: try v(5), state: State(rawValue: try v(6, String.self)) ?? .unpaid, goodsFen: try v(7), points: try v(8),
                    pointsValueFen: try v(9), payFen: try v(10), pointsHold: try v(11), address: try v(12), contactPhone: try v(13), note: try v(14),
                    createdAt: try v(15), payDeadline: try v(16), paidAt: try v(17), shippedAt: try v(18), receivedAt: try v(19),
                    cancelReason: try v(20), refundedFen: try v(21), settledFen: try v(22), commissionFen: try v(23), tracking: try v(24),
                    returnFrom: (try v(25, String?.self)).flatMap(State.init(rawValue:)), returnState: try v(26), returnReason: try v(27),
                    returnImageRefs: try v(28), coupon: try v(29), couponFen: try v(30), couponByProperty: try v(31),
                    groupBuy: try v(32)))
            _ = c
        }
        guard !result.isEmpty else { return result }
        var index: [UUID: Int] = [:]
        for (i, o) in result.enumerated() { index[o.id] = i }
        let ids = result.map(\.id)
        for try await r in try await connection.run(
            """
            SELECT id, order_id, sku_id, goods_id, name, spec, price_fen, quantity, amount_fen, reviewed FROM order_lines
            WHERE order_id = ANY(\(ids)::uuid[]) ORDER BY order_id, id
            """, logger: logger
        ).decode((UUID, UUID, UUID, UUID, String, String, Int64, Int32, Int64, Bool).self) {
            if let i = index[r.1] {
                result[i].lines.append(
                    Line(id: r.0, sku: r.2, goods: r.3, name: r.4, spec: r.5, priceFen: r.6, quantity: r.7, amountFen: r.8, reviewed: r.9))
            }
        }
        if details {
            for share in try await shares(
                "SELECT \(unescaped: Self.shareColumns) FROM profit_shares WHERE order_id = ANY(\(ids)::uuid[]) ORDER BY created_at, id", connection,
                logger)
            {
                if let i = index[share.order] { result[i].shares.append(share) }
            }
            for try await r in try await connection.run(
                "SELECT order_id, from_state, to_state, actor, note, at FROM order_events WHERE order_id = ANY(\(ids)::uuid[]) ORDER BY id",
                logger: logger
            ).decode((UUID, String?, String, String, String, Date).self) {
                if let i = index[r.0] {
                    result[i].events.append(
                        Event(from: r.1.flatMap(State.init(rawValue:)), to: State(rawValue: r.2) ?? .unpaid, actor: r.3, note: r.4, at: r.5))
                }
            }
        }
        return result
    }

    public func order(_ id: UUID, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger) async throws -> Order {
        var b = PostgresBindings()
        b.append(id)
        let lock = forUpdate ? " FOR UPDATE OF o" : ""
        guard
            let found = try await orders(
                PostgresQuery(
                    unsafeSQL: "SELECT \(Self.columns) FROM orders o JOIN merchants m ON m.id = o.merchant_id WHERE o.id = $1\(lock)", binds: b),
                details: true, connection, logger
            ).first
        else { throw LinliError.notFound("order") }
        return found
    }

    /// The order when `principal` may see it: its resident, its merchant, staff of its community.
    public func visible(_ id: UUID, to principal: Principal, forUpdate: Bool = false, on connection: PostgresConnection, logger: Logger)
        async throws -> Order
    {
        let order = try await order(id, forUpdate: forUpdate, on: connection, logger: logger)
        switch principal.role {
        case .resident:
            let own = try? await OwnResident.of(principal.subjectID, community: order.community, on: connection, logger: logger)
            guard own == order.resident else { throw LinliError.notFound("order") }
        case .merchant:
            guard try await merchants.merchantID(of: principal.subjectID, on: connection, logger: logger) == order.merchant else {
                throw LinliError.notFound("order")
            }
        default:
            guard principal.canAct(in: order.community) else { throw LinliError.notFound("order") }
        }
        return order
    }

    public func list(
        for principal: Principal, community: CommunityID?, state: State?, after: (Date, UUID)?, limit: Int, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Order] {
        var b = PostgresBindings()
        var sql = "SELECT \(Self.columns) FROM orders o JOIN merchants m ON m.id = o.merchant_id WHERE "
        switch principal.role {
        case .resident:
            guard let community else { throw LinliError.invalid("community_id", "is required") }
            b.append(try await OwnResident.of(principal.subjectID, community: community, on: connection, logger: logger))
            sql += "o.resident_id = $1"
        case .merchant:
            b.append(try await merchants.ownMerchant(principal, on: connection, logger: logger))
            sql += "o.merchant_id = $1"
            if let community {
                b.append(community.uuid)
                sql += " AND o.community_id = $2"
            }
        default:
            guard let community else { throw LinliError.invalid("community_id", "is required") }
            try Scope.requireCommunity(principal, community)
            b.append(community.uuid)
            sql += "o.community_id = $1"
        }
        if let state {
            b.append(state.rawValue)
            sql += " AND o.state = $\(b.count)"
        }
        if let (time, id) = after {
            b.append(time)
            b.append(id)
            sql += " AND (o.created_at, o.id) < ($\(b.count - 1), $\(b.count))"
        }
        sql += " ORDER BY o.created_at DESC, o.id DESC LIMIT \(limit)"
        return try await orders(PostgresQuery(unsafeSQL: sql, binds: b), details: false, connection, logger)
    }

    // MARK: checkout

    /// Prices the lines (all of one merchant selling in the community, listed) and the points.
    public func quote(
        _ draft: Draft, resident: UUID, lockingCoupon: Bool = false, on connection: PostgresConnection, logger: Logger
    ) async throws -> Quote {
        let settings = try await merchants.settings(on: connection, logger: logger)
        let skus = draft.lines.map(\.sku)
        var found: [UUID: (goods: UUID, name: String, spec: String, price: Int64, merchant: UUID, listed: Bool, category: UUID, parent: UUID?)] =
            [:]
        for try await r in try await connection.run(
            """
            SELECT s.id, s.goods_id, g.name, s.spec, coalesce(cp.price_fen, s.price_fen), g.merchant_id, g.listed, g.category_id, c.parent_id
            FROM skus s JOIN goods g ON g.id = s.goods_id JOIN categories c ON c.id = g.category_id
            LEFT JOIN sku_community_prices cp ON cp.sku_id = s.id AND cp.community_id = \(draft.community.uuid)
            WHERE s.id = ANY(\(skus)::uuid[])
            """, logger: logger
        ).decode((UUID, UUID, String, String, Int64, UUID, Bool, UUID, UUID?).self) {
            found[r.0] = (r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8)
        }
        var lines: [Line] = []
        var merchant: UUID?
        var goodsFen: Int64 = 0
        for (sku, quantity) in draft.lines {
            guard let s = found[sku] else {
                throw LinliError(.notFound, "lines.sku_id: no such SKU \(sku.uuidString.lowercased())", field: "lines.sku_id")
            }
            guard s.listed else { throw LinliError(.failedPrecondition, "lines.sku_id: \(s.name) is not on sale", field: "lines.sku_id") }
            if let merchant, merchant != s.merchant {
                throw LinliError.invalid("lines", "an order holds the goods of one shop; place one order per shop")
            }
            merchant = s.merchant
            let price = draft.prices[sku] ?? s.price
            let amount = price * Int64(quantity)
            goodsFen += amount
            lines.append(
                Line(
                    id: UUIDv7.make(), sku: sku, goods: s.goods, name: s.name, spec: s.spec, priceFen: price, quantity: quantity, amountFen: amount,
                    reviewed: false))
        }
        guard let merchant else { throw LinliError.invalid("lines", "is required") }
        guard try await merchants.sells(merchant, in: draft.community, on: connection, logger: logger) else {
            throw LinliError(.failedPrecondition, "lines: the shop does not sell in this community", field: "lines")
        }
        // The coupon first: points are capped on what is left after it.
        var couponFen: Int64 = 0
        var couponByProperty = false
        if let id = draft.coupon {
            let coupon = try await CouponStore().coupon(id, of: resident, lock: lockingCoupon, on: connection, logger: logger)
            guard coupon.state() == .available else {
                throw LinliError(.failedPrecondition, "coupon_id: the coupon is \(coupon.state().rawValue)", field: "coupon_id")
            }
            let shares = lines.compactMap { line in
                found[line.sku].map { (goods: $0.goods, category: $0.category, parent: $0.parent, amountFen: line.amountFen) }
            }
            guard coupon.template.community == draft.community, let off = coupon.template.discount(merchant: merchant, lines: shares) else {
                throw LinliError(
                    .failedPrecondition, "coupon_id: the coupon does not apply to this order (shop, goods or threshold)", field: "coupon_id")
            }
            couponFen = off
            couponByProperty = coupon.template.merchant == nil
        }
        let available = try await points.balance(resident, on: connection, logger: logger).available
        let fenPerPoint = Int64(settings.fenPerPoint)
        let capFen = (goodsFen - couponFen) * Int64(settings.maxPointsPercent) / 100
        let maxPoints = min(available, capFen / fenPerPoint)
        guard draft.points <= maxPoints else {
            throw LinliError(
                .failedPrecondition,
                "points: this order takes at most \(maxPoints) points (\(settings.maxPointsPercent)% of the goods; \(available) available)",
                field: "points")
        }
        let pointsValue = draft.points * fenPerPoint
        return Quote(
            merchant: merchant, lines: lines, goodsFen: goodsFen, points: draft.points, pointsValueFen: pointsValue,
            payFen: goodsFen - couponFen - pointsValue, maxPoints: maxPoints, available: available, fenPerPoint: settings.fenPerPoint,
            coupon: draft.coupon, couponFen: couponFen, couponByProperty: couponByProperty)
    }

    /// Places the order: the points held, then the stock reserved (last, so the hot SKU rows
    /// are locked for as little of the transaction as possible). Sold out refuses the whole order.
    public func place(
        _ draft: Draft, resident: UUID, address: String, by: By, on connection: PostgresConnection, logger: Logger
    ) async throws -> Order {
        let quote = try await quote(draft, resident: resident, lockingCoupon: true, on: connection, logger: logger)
        let settings = try await merchants.settings(on: connection, logger: logger)
        let id = UUIDv7.make()
        let deadline = Date().addingTimeInterval(TimeInterval(settings.unpaidSeconds))
        try await connection.run(
            """
            INSERT INTO orders (id, order_no, community_id, merchant_id, resident_id, placed_by, goods_fen, points, points_value_fen, pay_fen,
                                address, contact_phone, note, pay_deadline, coupon_id, coupon_fen, coupon_property, group_buy_id)
            VALUES (\(id), 'D' || to_char(community_today(\(draft.community.uuid)), 'YYYYMMDD') || lpad(nextval('order_numbers')::text, 8, '0'),
                    \(draft.community.uuid), \(quote.merchant), \(resident), \(by.user?.uuid), \(quote.goodsFen), \(quote.points),
                    \(quote.pointsValueFen), \(quote.payFen), \(address), \(draft.contactPhone), \(draft.note), \(deadline),
                    \(quote.coupon), \(quote.couponFen), \(quote.couponByProperty), \(draft.groupBuy))
            """, logger: logger)
        if draft.fromCart {
            try await connection.run(
                "DELETE FROM cart_items WHERE resident_id = \(resident) AND sku_id = ANY(\(draft.lines.map(\.sku))::uuid[])", logger: logger)
        }
        if let coupon = quote.coupon {
            try await CouponStore().use(coupon, order: id, discountFen: quote.couponFen, on: connection, logger: logger)
        }
        let lines = quote.lines
        try await connection.run(
            """
            INSERT INTO order_lines (id, order_id, sku_id, goods_id, name, spec, price_fen, quantity, amount_fen)
            SELECT l.id, \(id), l.sku, l.goods, l.name, l.spec, l.price, l.quantity, l.price * l.quantity
            FROM unnest(\(lines.map(\.id))::uuid[], \(lines.map(\.sku))::uuid[], \(lines.map(\.goods))::uuid[], \(lines.map(\.name))::text[],
                        \(lines.map(\.spec))::text[], \(lines.map(\.priceFen))::int8[], \(lines.map(\.quantity))::int4[])
                 AS l (id, sku, goods, name, spec, price, quantity)
            """, logger: logger)
        try await record(id, from: nil, to: .unpaid, by: by, note: "", connection, logger)
        if quote.points > 0 {
            let hold = try await points.freeze(
                quote.points, of: resident, key: "order:\(id.uuidString.lowercased())", for: by.pointsPrincipal, on: connection, logger: logger)
            try await connection.run("UPDATE orders SET points_hold_id = \(hold.id) WHERE id = \(id)", logger: logger)
        }
        try await reserve(lines, connection, logger)
        return try await order(id, on: connection, logger: logger)
    }

    private func reserve(_ lines: [Line], _ connection: PostgresConnection, _ logger: Logger) async throws {
        let ordered = lines.sorted { $0.sku.uuidString < $1.sku.uuidString }
        let rows = try await connection.run(
            """
            UPDATE skus s SET stock = s.stock - l.quantity, reserved = s.reserved + l.quantity
            FROM unnest(\(ordered.map(\.sku))::uuid[], \(ordered.map(\.quantity))::int4[]) AS l (sku, quantity)
            WHERE s.id = l.sku AND s.stock >= l.quantity
            RETURNING s.id
            """, logger: logger)
        var reserved: Set<UUID> = []
        for try await id in rows.decode(UUID.self) { reserved.insert(id) }
        if let short = ordered.first(where: { !reserved.contains($0.sku) }) {
            throw LinliError(
                .resourceExhausted, "lines: \(short.name) \(short.spec) is sold out or has fewer than \(short.quantity) left", field: "lines")
        }
    }

    /// Moves the lines' quantities between the stock columns (`reserved` → `stock` on cancel,
    /// `reserved` → `sold` on payment, `sold` → `stock` on a refund).
    func moveStock(_ lines: [Line], from: String, to: String, _ connection: PostgresConnection, _ logger: Logger) async throws {
        let ordered = lines.sorted { $0.sku.uuidString < $1.sku.uuidString }
        try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    UPDATE skus s SET \(from) = s.\(from) - l.quantity, \(to) = s.\(to) + l.quantity
                    FROM unnest($1::uuid[], $2::int4[]) AS l (sku, quantity) WHERE s.id = l.sku
                    """,
                binds: {
                    var b = PostgresBindings()
                    b.append(ordered.map(\.sku))
                    b.append(ordered.map(\.quantity))
                    return b
                }()), logger: logger)
    }

    // MARK: transitions

    func record(_ order: UUID, from: State?, to: State, by: By, note: String, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.run(
            """
            INSERT INTO order_events (order_id, from_state, to_state, actor, actor_id, note)
            VALUES (\(order), \(from?.rawValue), \(to.rawValue), \(by.actor.rawValue), \(by.user?.uuid), \(note))
            """, logger: logger)
    }

    /// Compare-and-set of the order's state, with the columns set to now() and to values, and its event.
    func move(
        _ order: Order, to state: State, now columns: [String] = [], set values: [(String, any PostgresEncodable & Sendable)] = [], by: By,
        note: String = "", _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        var b = PostgresBindings()
        b.append(state.rawValue)
        b.append(order.id)
        b.append(order.state.rawValue)
        var sets = columns.map { ", \($0) = now()" }.joined()
        for (column, value) in values {
            try b.append(value)
            sets += ", \(column) = $\(b.count)"
        }
        let rows = try await connection.run(
            PostgresQuery(unsafeSQL: "UPDATE orders SET state = $1\(sets) WHERE id = $2 AND state = $3 RETURNING 1", binds: b), logger: logger)
        var moved = false
        for try await _ in rows { moved = true }
        guard moved else { throw LinliError(.unavailable, "order_id: the order changed meanwhile; retry") }
        try await record(order.id, from: order.state, to: state, by: by, note: note, connection, logger)
    }

    /// Cancels an unpaid order (stock and points given back) or a paid one not yet shipped (the
    /// money refunded too). Cancelling a cancelled order changes nothing.
    /// A job cancels a paid order only for a group buy that failed (`groupFailed`).
    public func cancel(
        _ order: Order, reason: String, by: By, groupFailed: Bool = false, channels: PaymentChannels, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Order {
        switch order.state {
        case .cancelled:
            return order
        case .unpaid:
            try await move(order, to: .cancelled, now: ["cancelled_at"], set: [("cancel_reason", reason)], by: by, note: reason, connection, logger)
            try await leaveGroup(order, connection, logger)
            try await moveStock(order.lines, from: "reserved", to: "stock", connection, logger)
            if let hold = order.pointsHold {
                _ = try await points.settle(hold, to: .released, for: by.pointsPrincipal, on: connection, logger: logger)
            }
            try await CouponStore().giveBack(order: order.id, on: connection, logger: logger)
            try await connection.run(
                "UPDATE commerce_payments SET state = 'closed' WHERE order_id = \(order.id) AND state = 'pending'", logger: logger)
        case .paid:
            guard by.actor != .job || groupFailed else { return order }
            try await move(order, to: .cancelled, now: ["cancelled_at"], set: [("cancel_reason", reason)], by: by, note: reason, connection, logger)
            try await leaveGroup(order, connection, logger)
            try await refund(order, restock: true, by: by, channels: channels, connection, logger)
        default:
            throw LinliError(.failedPrecondition, "order_id: a \(order.state.rawValue) order cannot be cancelled; request a return")
        }
        return try await self.order(order.id, on: connection, logger: logger)
    }

    /// A member cancelling gives their seat back while the group forms.
    private func leaveGroup(_ order: Order, _ connection: PostgresConnection, _ logger: Logger) async throws {
        guard let group = order.groupBuy else { return }
        try await GroupBuyStore().memberLeft(group, paid: order.state == .paid, on: connection, logger: logger)
    }

    /// Everything paid for `order` back: the channel's money, the points, the stock.
    func refund(_ order: Order, restock: Bool, by: By, channels: PaymentChannels, _ connection: PostgresConnection, _ logger: Logger) async throws {
        var refunded: Int64 = 0
        var paid: [(UUID, String, String, Int64)] = []
        for try await row in try await connection.run(
            """
            SELECT id, channel, channel_txn, amount_fen FROM commerce_payments WHERE order_id = \(order.id) AND state = 'paid' FOR UPDATE
            """, logger: logger
        ).decode((UUID, String, String, Int64).self) { paid.append(row) }
        for (payment, channel, txn, amount) in paid {
            try await returnShares(payment: payment, channels: channels, connection, logger)
            let refundTxn = try await channels.channel(channel).refund(
                transaction: txn, amountFen: amount, key: "refund:\(payment.uuidString.lowercased())")
            try await connection.run(
                "UPDATE commerce_payments SET state = 'refunded', refunded_at = now(), refund_txn = \(refundTxn) WHERE id = \(payment)",
                logger: logger)
            try await CommerceLedger.refunded(
                .init(community: order.community, merchant: order.merchant, order: order.id, channel: channel, cashFen: amount, pointsValueFen: 0),
                on: connection, logger: logger)
            refunded += amount
        }
        if order.pointsValueFen > 0, let hold = order.pointsHold {
            try await CommerceLedger.refunded(
                .init(
                    community: order.community, merchant: order.merchant, order: order.id, channel: "", cashFen: 0,
                    pointsValueFen: order.pointsValueFen),
                on: connection, logger: logger)
            _ = try await points.settle(hold, to: .reversed, for: by.pointsPrincipal, on: connection, logger: logger)
        }
        if order.couponFen > 0 {
            if order.couponByProperty {
                try await CommerceLedger.refunded(
                    .init(
                        community: order.community, merchant: order.merchant, order: order.id, channel: "", cashFen: 0, pointsValueFen: 0,
                        couponValueFen: order.couponFen), on: connection, logger: logger)
            }
            try await CouponStore().giveBack(order: order.id, on: connection, logger: logger)
        }
        if restock { try await moveStock(order.lines, from: "sold", to: "stock", connection, logger) }
        try await connection.run("UPDATE orders SET refunded_fen = refunded_fen + \(refunded) WHERE id = \(order.id)", logger: logger)
    }

    public func ship(_ order: Order, tracking: String, by: By, on connection: PostgresConnection, logger: Logger) async throws -> Order {
        if order.state == .shipped, order.tracking == tracking { return order }
        guard order.state == .paid else { throw LinliError(.failedPrecondition, "order_id: only a paid order ships (it is \(order.state.rawValue))") }
        if let group = order.groupBuy, try await GroupBuyStore().group(group, on: connection, logger: logger).state != .succeeded {
            throw LinliError(.failedPrecondition, "order_id: the order's group buy has not formed yet; it ships once the group succeeds")
        }
        try await move(order, to: .shipped, now: ["shipped_at"], set: [("tracking", tracking)], by: by, note: tracking, connection, logger)
        return try await self.order(order.id, on: connection, logger: logger)
    }

    /// The resident (or the timer, `confirm_days` after shipping) confirms receipt.
    public func confirm(_ order: Order, by: By, on connection: PostgresConnection, logger: Logger) async throws -> Order {
        if order.state == .received { return order }
        guard order.state == .shipped else {
            throw LinliError(.failedPrecondition, "order_id: only a shipped order is received (it is \(order.state.rawValue))")
        }
        try await move(order, to: .received, now: ["received_at"], by: by, connection, logger)
        return try await self.order(order.id, on: connection, logger: logger)
    }

    /// After the after-sale window (`review_days` from receipt) the order is done and its money
    /// settled: the merchant's share and the commission out of the escrow.
    public func settle(_ order: Order, on connection: PostgresConnection, logger: Logger) async throws -> Order {
        guard order.state == .received else { return order }
        var commissionBP: Int64 = 0
        for try await bp in try await connection.run("SELECT commission_bp FROM merchants WHERE id = \(order.merchant)", logger: logger).decode(
            Int32.self)
        { commissionBP = Int64(bp) }
        // Rounded half up to the fen; the parts sum to the goods' value.
        let base = order.settledBaseFen
        let commission = (base * commissionBP + 5_000) / 10_000
        let net = base - commission
        try await move(
            order, to: .done, set: [("settled_fen", net), ("commission_fen", commission)], by: .job,
            note: "settled", connection, logger)
        try await CommerceLedger.settled(
            community: order.community, merchant: order.merchant, order: order.id, netFen: net, commissionFen: commission, on: connection,
            logger: logger)
        // Points for the money paid, by the order rule in force (once per order).
        _ = try await PointsEarning().earn(
            .orderDone, community: order.community, resident: order.resident, amountFen: order.payFen, reason: "购物奖励",
            key: "order:\(order.id.uuidString.lowercased()):done", on: connection, logger: logger)
        return try await self.order(order.id, on: connection, logger: logger)
    }
}
