import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliPoints
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

/// The `linli.commerce.v1.OrderService` RPCs (commerce.proto): shapes checked here, the order in
/// `OrderStore` inside the caller's tenant transaction; the unpaid timer set after COMMIT.
public struct OrderService: Sendable {
    let store = OrderStore()
    let merchants = MerchantStore()
    let channels: PaymentChannels
    let timers: OrderTimers
    let cache: PointsCache
    let handler: Handler

    public init(database: Database, channels: PaymentChannels, timers: OrderTimers, cache: PointsCache, logger: Logger) {
        handler = Handler(database: database, logger: logger)
        self.channels = channels
        self.timers = timers
        self.cache = cache
    }

    /// The resident's balance at the end of a transaction that changed their points, when the
    /// order holds points: written to the cache once that transaction committed.
    static func balance(after order: Linli_Commerce_V1_Order, _ call: Call) async throws -> PointsStore.Balance? {
        guard order.points > 0, let resident = UUID(uuidString: order.residentID) else { return nil }
        return try await PointsStore().balance(resident, on: call.connection, logger: call.logger)
    }

    /// Runs a write of an order; once it committed, the resident's points balance into the cache
    /// (a newer version there wins).
    func orderWrite<M: IdempotentRequest & Sendable>(
        _ request: ServerRequest<M>, _ context: ServerContext, _ body: (Call) async throws -> Linli_Commerce_V1_Order
    ) async throws -> ServerResponse<Linli_Commerce_V1_Order> {
        var balance: PointsStore.Balance?
        let response = try await handler.write(request, context) { call in
            let order = try await body(call)
            balance = try await Self.balance(after: order, call)
            return order
        }
        if let balance, let tenant = try? handler.context(request.metadata).tenant { _ = await cache.write(balance, tenant: tenant.id) }
        return response
    }

    static func orderID(_ raw: String) throws(LinliError) -> UUID { try Input.id(raw, field: "order_id", as: IDTag.Commerce.self).uuid }

    static func draft(community raw: String, lines: [Linli_Commerce_V1_OrderLineDraft], points: Int64) throws(LinliError) -> OrderStore.Draft {
        let community: CommunityID = try Input.id(raw, field: "community_id")
        guard (1...50).contains(lines.count) else { throw LinliError.invalid("lines", "must hold 1 to 50 lines") }
        var seen: Set<UUID> = []
        var parsed: [(sku: UUID, quantity: Int32)] = []
        for line in lines {
            let sku = try Input.id(line.skuID, field: "lines.sku_id", as: IDTag.Commerce.self).uuid
            guard seen.insert(sku).inserted else { throw LinliError.invalid("lines.sku_id", "each SKU once per order") }
            guard (1...999).contains(line.quantity) else { throw LinliError.invalid("lines.quantity", "must be 1 to 999") }
            parsed.append((sku, line.quantity))
        }
        guard (0...1_000_000).contains(points) else { throw LinliError.invalid("points", "must be 0 to 1000000") }
        return OrderStore.Draft(community: community, lines: parsed, points: points, room: nil, contactPhone: "", note: "")
    }

    /// The caller's own resident record, for the resident-only calls.
    static func ownResident(_ call: Call, community: CommunityID) async throws -> UUID {
        guard call.principal.role == .resident else { throw LinliError(.permissionDenied, "only residents place orders") }
        try Scope.requireCommunity(call.principal, community)
        return try await OwnResident.of(call.principal.subjectID, community: community, on: call.connection, logger: call.logger)
    }

    /// The address an order is delivered to: the named room of the caller's, or the room they
    /// live in, as "小区 楼栋-单元-房号".
    static func deliveryAddress(room named: RoomID?, community: CommunityID, _ call: Call) async throws -> String {
        let room: RoomID
        if let named {
            guard try await Scope.requireRoom(call.principal, named, on: call.connection, logger: call.logger) == community else {
                throw LinliError(.invalidArgument, "room_id: the room is in another community", field: "room_id")
            }
            room = named
        } else {
            guard let home = try await Residency.homeOf(call.principal.subjectID, in: community, on: call.connection, logger: call.logger) else {
                throw LinliError(.failedPrecondition, "room_id: you live in no room of this community today", field: "room_id")
            }
            room = home
        }
        var address = ""
        for try await label in try await call.connection.run(
            "SELECT c.name || ' ' || room_label_of(\(room.uuid)) FROM communities c WHERE c.id = \(community.uuid)", logger: call.logger
        ).decode(String.self) { address = label }
        return address
    }

    /// The order for a change by the caller, locked: the merchant's own for merchant actions, the
    /// resident's own for resident actions.
    func locked(_ id: UUID, _ call: Call, as role: Role) async throws -> OrderStore.Order {
        let order = try await store.visible(id, to: call.principal, forUpdate: true, on: call.connection, logger: call.logger)
        guard call.principal.role == role || (role == .merchant && call.principal.role == .manager) else {
            throw LinliError(.permissionDenied, "order_id: this is the \(role.name)'s step")
        }
        return order
    }

    func scheduled(_ response: ServerResponse<Linli_Commerce_V1_Order>, _ metadata: Metadata) -> ServerResponse<Linli_Commerce_V1_Order> {
        if let message = try? response.message, message.state == .unpaid, let tenant = try? handler.context(metadata).tenant,
            let id = UUID(uuidString: message.id)
        {
            timers.schedule(id, of: tenant, at: message.payDeadline.date)
        }
        return response
    }
}

extension Linli_Commerce_V1_Order {
    init(_ o: OrderStore.Order) {
        self.init()
        id = o.id.uuidString.lowercased()
        orderNo = o.orderNo
        communityID = o.community.description
        merchantID = o.merchant.uuidString.lowercased()
        merchantName = o.merchantName
        residentID = o.resident.uuidString.lowercased()
        state = ProtoEnum.encode(o.state)
        lines = o.lines.map { l in
            .with {
                $0.id = l.id.uuidString.lowercased()
                $0.skuID = l.sku.uuidString.lowercased()
                $0.goodsID = l.goods.uuidString.lowercased()
                $0.name = l.name
                $0.spec = l.spec
                $0.priceFen = l.priceFen
                $0.quantity = l.quantity
                $0.amountFen = l.amountFen
                $0.reviewed = l.reviewed
            }
        }
        goodsFen = o.goodsFen
        points = o.points
        pointsValueFen = o.pointsValueFen
        payFen = o.payFen
        address = o.address
        contactPhone = o.contactPhone
        note = o.note
        createdAt = Google_Protobuf_Timestamp(date: o.createdAt)
        payDeadline = Google_Protobuf_Timestamp(date: o.payDeadline)
        if let t = o.paidAt { paidAt = Google_Protobuf_Timestamp(date: t) }
        if let t = o.shippedAt { shippedAt = Google_Protobuf_Timestamp(date: t) }
        if let t = o.receivedAt { receivedAt = Google_Protobuf_Timestamp(date: t) }
        cancelReason = o.cancelReason
        refundedFen = o.refundedFen
        settledFen = o.settledFen
        commissionFen = o.commissionFen
        tracking = o.tracking
        returnReason = o.returnReason
        returnImageRefs = o.returnImageRefs
        couponID = o.coupon?.uuidString.lowercased() ?? ""
        couponFen = o.couponFen
        groupBuyID = o.groupBuy?.uuidString.lowercased() ?? ""
        shares = o.shares.map { share in
            .with {
                $0.id = share.id.uuidString.lowercased()
                $0.receiver = share.receiver
                $0.amountFen = share.amountFen
                $0.paidFen = share.paidFen
                $0.state = share.state.rawValue
                $0.attempts = share.attempts
                $0.lastError = share.lastError
            }
        }
        events = o.events.map { e in
            .with {
                if let from = e.from { $0.from = ProtoEnum.encode(from) }
                $0.to = ProtoEnum.encode(e.to)
                $0.actor = e.actor
                $0.note = e.note
                $0.at = Google_Protobuf_Timestamp(date: e.at)
            }
        }
    }
}

extension Linli_Commerce_V1_PaymentIntent {
    init(_ p: OrderStore.Payment) {
        self.init()
        id = p.id.uuidString.lowercased()
        orderID = p.order.uuidString.lowercased()
        channel = p.channel
        amountFen = p.amountFen
        state = ProtoEnum.encode(p.state)
        expiresAt = Google_Protobuf_Timestamp(date: p.expiresAt)
        channelPayload = p.payload
        channelTransaction = p.transaction ?? ""
    }
}

extension Linli_Commerce_V1_Review {
    init(_ r: OrderStore.Review) {
        self.init()
        id = r.id.uuidString.lowercased()
        orderID = r.order.uuidString.lowercased()
        lineID = r.line.uuidString.lowercased()
        goodsID = r.goods.uuidString.lowercased()
        score = r.score
        text = r.text
        imageRefs = r.imageRefs
        reply = r.reply ?? ""
        createdAt = Google_Protobuf_Timestamp(date: r.createdAt)
        if let t = r.repliedAt { repliedAt = Google_Protobuf_Timestamp(date: t) }
    }
}

extension Linli_Commerce_V1_Cart {
    /// The items grouped by shop, in the order each shop first appears.
    init(_ items: [OrderStore.CartItem]) {
        self.init()
        var index: [UUID: Int] = [:]
        for item in items {
            let i: Int
            if let found = index[item.merchant] {
                i = found
            } else {
                i = shops.count
                index[item.merchant] = i
                shops.append(
                    .with {
                        $0.merchantID = item.merchant.uuidString.lowercased()
                        $0.merchantName = item.merchantName
                    })
            }
            let amount = item.priceFen * Int64(item.quantity)
            shops[i].items.append(
                .with {
                    $0.skuID = item.sku.uuidString.lowercased()
                    $0.goodsID = item.goods.uuidString.lowercased()
                    $0.name = item.name
                    $0.spec = item.spec
                    $0.priceFen = item.priceFen
                    $0.quantity = item.quantity
                    $0.amountFen = amount
                    $0.available = item.available
                    $0.stock = item.stock
                })
            if item.available { shops[i].goodsFen += amount }
        }
    }
}

extension OrderService: Linli_Commerce_V1_OrderService.ServiceProtocol {
    public func setCartItem(request: ServerRequest<Linli_Commerce_V1_SetCartItemRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Cart>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let sku = try Input.id(m.skuID, field: "sku_id", as: IDTag.Commerce.self).uuid
        guard (0...999).contains(m.quantity) else { throw LinliError.invalid("quantity", "must be 0 (take out) to 999") }
        return try await handler.write(request, context) { [store] call in
            let resident = try await Self.ownResident(call, community: community)
            try await store.setCartItem(
                resident: resident, community: community, sku: sku, quantity: m.quantity, on: call.connection, logger: call.logger)
            return .init(try await store.cart(resident: resident, community: community, on: call.connection, logger: call.logger))
        }
    }

    public func getCart(request: ServerRequest<Linli_Commerce_V1_GetCartRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Cart>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [store] call in
            let resident = try await Self.ownResident(call, community: community)
            return .init(try await store.cart(resident: resident, community: community, on: call.connection, logger: call.logger))
        }
    }

    public func quoteOrder(request: ServerRequest<Linli_Commerce_V1_QuoteOrderRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_OrderQuote>
    {
        let m = request.message
        var draft = try Self.draft(community: m.communityID, lines: m.lines, points: m.points)
        draft.coupon = m.couponID.isEmpty ? nil : try Input.id(m.couponID, field: "coupon_id", as: IDTag.Commerce.self).uuid
        return try await handler.read(request) { [store] call in
            let resident = try await Self.ownResident(call, community: draft.community)
            let q = try await store.quote(draft, resident: resident, on: call.connection, logger: call.logger)
            return .with {
                $0.goodsFen = q.goodsFen
                $0.points = q.points
                $0.pointsValueFen = q.pointsValueFen
                $0.payFen = q.payFen
                $0.maxPoints = q.maxPoints
                $0.pointsAvailable = q.available
                $0.fenPerPoint = q.fenPerPoint
                $0.couponFen = q.couponFen
            }
        }
    }

    public func placeOrder(request: ServerRequest<Linli_Commerce_V1_PlaceOrderRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Order>
    {
        let m = request.message
        var draft = try Self.draft(community: m.communityID, lines: m.lines, points: m.points)
        draft.room = m.roomID.isEmpty ? nil : try Input.id(m.roomID, field: "room_id")
        draft.contactPhone = try Input.mobile(m.contactPhone, field: "contact_phone")
        draft.note = try Input.text(m.note, field: "note", min: 0, max: 200)
        draft.coupon = m.couponID.isEmpty ? nil : try Input.id(m.couponID, field: "coupon_id", as: IDTag.Commerce.self).uuid
        draft.fromCart = m.fromCart
        let response = try await orderWrite(request, context) { [store] call in
            let resident = try await Self.ownResident(call, community: draft.community)
            let address = try await Self.deliveryAddress(room: draft.room, community: draft.community, call)
            let order = try await store.place(
                draft, resident: resident, address: address, by: .init(call.principal), on: call.connection, logger: call.logger)
            return Linli_Commerce_V1_Order(order)
        }
        return scheduled(response, request.metadata)
    }

    public func payOrder(request: ServerRequest<Linli_Commerce_V1_PayOrderRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_PaymentIntent>
    {
        let m = request.message
        let id = try Self.orderID(m.orderID)
        let channel = try channels.channel(m.channel.isEmpty ? "sim" : m.channel)
        return try await handler.write(request, context) { [store] call in
            let order = try await locked(id, call, as: .resident)
            return .init(
                try await store.intent(
                    for: order, channel: channel, tenant: call.tenant.id, by: .init(call.principal), on: call.connection, logger: call.logger))
        }
    }

    public func simulateChannelPayment(
        request: ServerRequest<Linli_Commerce_V1_SimulateChannelPaymentRequest>, context: ServerContext
    ) async throws -> ServerResponse<Linli_Commerce_V1_PaymentIntent> {
        let m = request.message
        let id = try Input.id(m.intentID, field: "intent_id", as: IDTag.Commerce.self).uuid
        guard (0...60_000).contains(m.notifyDelayMs) else { throw LinliError.invalid("notify_delay_ms", "must be 0 to 60000") }
        // The intent must be the caller's (read in a transaction); the payment itself is the channel's.
        let payment = try await handler.read(request) { [store] call in
            let payment = try await store.payment(id, on: call.connection, logger: call.logger)
            _ = try await store.visible(payment.order, to: call.principal, on: call.connection, logger: call.logger)
            guard payment.channel == channels.simulated.name else {
                throw LinliError.invalid("intent_id", "is not an intent of the simulated channel")
            }
            return Linli_Commerce_V1_PaymentIntent(payment)
        }
        var intent = try payment.message
        let notice = try await channels.simulated.pay(intent: id, delay: .milliseconds(Int64(m.notifyDelayMs)))
        intent.channelTransaction = notice.transaction
        return ServerResponse(message: intent)
    }

    public func cancelOrder(request: ServerRequest<Linli_Commerce_V1_CancelOrderRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Order>
    {
        let m = request.message
        let id = try Self.orderID(m.orderID)
        let reason = try Input.text(m.reason, field: "reason", min: 0, max: 200)
        return try await orderWrite(request, context) { [store, channels] call in
            // Staff who may see every order (a cashier, say) do not cancel one: the buyer, the shop or a manager does.
            let role = call.principal.role
            guard role == .resident || role == .merchant || Permission.commerceManage.isGranted(to: role) else {
                throw LinliError(.permissionDenied, "order_id: the buyer, the shop or a manager cancels an order", field: "order_id")
            }
            let order = try await store.visible(id, to: call.principal, forUpdate: true, on: call.connection, logger: call.logger)
            let why = reason.isEmpty ? (call.principal.role == .resident ? "用户取消" : "商家取消") : reason
            return .init(
                try await store.cancel(order, reason: why, by: .init(call.principal), channels: channels, on: call.connection, logger: call.logger))
        }
    }

    public func shipOrder(request: ServerRequest<Linli_Commerce_V1_ShipOrderRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Order>
    {
        let m = request.message
        let id = try Self.orderID(m.orderID)
        let tracking = try Input.text(m.tracking, field: "tracking", max: 60)
        return try await handler.write(request, context) { [store] call in
            let order = try await locked(id, call, as: .merchant)
            return .init(try await store.ship(order, tracking: tracking, by: .init(call.principal), on: call.connection, logger: call.logger))
        }
    }

    public func confirmReceipt(request: ServerRequest<Linli_Commerce_V1_ConfirmReceiptRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Order>
    {
        let id = try Self.orderID(request.message.orderID)
        return try await handler.write(request, context) { [store] call in
            let order = try await locked(id, call, as: .resident)
            return .init(try await store.confirm(order, by: .init(call.principal), on: call.connection, logger: call.logger))
        }
    }

    public func listOrders(request: ServerRequest<Linli_Commerce_V1_ListOrdersRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_ListOrdersResponse>
    {
        let m = request.message
        let community: CommunityID? = m.communityID.isEmpty ? nil : try Input.id(m.communityID, field: "community_id")
        let state = m.state == .unspecified ? nil : try ProtoEnum.decode(m.state, OrderStore.State.self, field: "state")
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [store] call in
            let rows = try await store.list(
                for: call.principal, community: community, state: state, after: after, limit: limit + 1, on: call.connection, logger: call.logger)
            let page = PageToken.page(rows, limit: limit) { ($0.createdAt, $0.id) }
            return .with {
                $0.orders = page.rows.map(Linli_Commerce_V1_Order.init)
                $0.nextPageToken = page.next
            }
        }
    }

    public func getOrder(request: ServerRequest<Linli_Commerce_V1_GetOrderRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Order>
    {
        let id = try Self.orderID(request.message.orderID)
        return try await handler.read(request) { [store] call in
            .init(try await store.visible(id, to: call.principal, on: call.connection, logger: call.logger))
        }
    }

    public func reviewOrderLine(request: ServerRequest<Linli_Commerce_V1_ReviewOrderLineRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Review>
    {
        let m = request.message
        let id = try Self.orderID(m.orderID)
        let line = try Input.id(m.lineID, field: "line_id", as: IDTag.Commerce.self).uuid
        guard (1...5).contains(m.score) else { throw LinliError.invalid("score", "must be 1 to 5") }
        let text = try Input.text(m.text, field: "text", min: 0, max: 500)
        let images = try ImageUpload.checkRefs(m.imageRefs, field: "image_refs")
        return try await handler.write(request, context) { [store] call in
            let order = try await locked(id, call, as: .resident)
            try await MerchantService.requireImages(images, field: "image_refs", call)
            return .init(
                try await store.review(order, line: line, score: m.score, text: text, imageRefs: images, on: call.connection, logger: call.logger))
        }
    }

    public func replyToReview(request: ServerRequest<Linli_Commerce_V1_ReplyToReviewRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Review>
    {
        let m = request.message
        let id = try Input.id(m.reviewID, field: "review_id", as: IDTag.Commerce.self).uuid
        let text = try Input.text(m.text, field: "text", max: 500)
        return try await handler.write(request, context) { [store, merchants] call in
            let merchant = try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger)
            return .init(try await store.reply(id, text: text, merchant: merchant, on: call.connection, logger: call.logger))
        }
    }

    public func listReviews(request: ServerRequest<Linli_Commerce_V1_ListReviewsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_ListReviewsResponse>
    {
        let m = request.message
        let goods = try Input.id(m.goodsID, field: "goods_id", as: IDTag.Commerce.self).uuid
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [store, merchants] call in
            // Visible where the goods are: a shop of one of the caller's communities, or the merchant's own.
            let owner = try await CatalogueStore().goods(goods, on: call.connection, logger: call.logger).merchant
            var visible = try await merchants.merchantID(of: call.principal.subjectID, on: call.connection, logger: call.logger) == owner
            for community in call.principal.communityIDs where !visible {
                visible = try await merchants.sells(owner, in: community, on: call.connection, logger: call.logger)
            }
            guard visible else { throw LinliError.notFound("goods") }
            let rows = try await store.reviews(goods: goods, after: after, limit: limit + 1, on: call.connection, logger: call.logger)
            let page = PageToken.page(rows, limit: limit) { ($0.createdAt, $0.id) }
            return .with {
                $0.reviews = page.rows.map(Linli_Commerce_V1_Review.init)
                $0.nextPageToken = page.next
            }
        }
    }

    public func requestReturn(request: ServerRequest<Linli_Commerce_V1_RequestReturnRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Order>
    {
        let m = request.message
        let id = try Self.orderID(m.orderID)
        let reason = try Input.text(m.reason, field: "reason", max: 200)
        let images = try ImageUpload.checkRefs(m.imageRefs, field: "image_refs")
        return try await handler.write(request, context) { [store] call in
            let order = try await locked(id, call, as: .resident)
            try await MerchantService.requireImages(images, field: "image_refs", call)
            return .init(
                try await store.requestReturn(
                    order, reason: reason, imageRefs: images, by: .init(call.principal), on: call.connection, logger: call.logger))
        }
    }

    public func reviewReturn(request: ServerRequest<Linli_Commerce_V1_ReviewReturnRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Order>
    {
        let m = request.message
        let id = try Self.orderID(m.orderID)
        let reason = try Input.text(m.reason, field: "reason", min: m.accept ? 0 : 1, max: 200)
        return try await handler.write(request, context) { [store] call in
            let order = try await locked(id, call, as: .merchant)
            return .init(
                try await store.reviewReturn(
                    order, accept: m.accept, reason: reason, by: .init(call.principal), on: call.connection, logger: call.logger))
        }
    }

    public func receiveReturnedGoods(
        request: ServerRequest<Linli_Commerce_V1_ReceiveReturnedGoodsRequest>, context: ServerContext
    ) async throws -> ServerResponse<Linli_Commerce_V1_Order> {
        let id = try Self.orderID(request.message.orderID)
        return try await orderWrite(request, context) { [store, channels] call in
            let order = try await locked(id, call, as: .merchant)
            return .init(
                try await store.receiveReturned(order, by: .init(call.principal), channels: channels, on: call.connection, logger: call.logger))
        }
    }
}

extension Linli_Commerce_V1_PlaceOrderRequest: IdempotentRequest {}
extension Linli_Commerce_V1_SetCartItemRequest: IdempotentRequest {}
extension Linli_Commerce_V1_PayOrderRequest: IdempotentRequest {}
extension Linli_Commerce_V1_CancelOrderRequest: IdempotentRequest {}
extension Linli_Commerce_V1_ShipOrderRequest: IdempotentRequest {}
extension Linli_Commerce_V1_ConfirmReceiptRequest: IdempotentRequest {}
extension Linli_Commerce_V1_ReviewOrderLineRequest: IdempotentRequest {}
extension Linli_Commerce_V1_ReplyToReviewRequest: IdempotentRequest {}
extension Linli_Commerce_V1_RequestReturnRequest: IdempotentRequest {}
extension Linli_Commerce_V1_ReviewReturnRequest: IdempotentRequest {}
extension Linli_Commerce_V1_ReceiveReturnedGoodsRequest: IdempotentRequest {}
