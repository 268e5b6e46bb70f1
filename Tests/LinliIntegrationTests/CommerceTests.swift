import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCommerce
import LinliCore
import LinliPoints
import LinliServer
import LinliTenancy
import PostgresNIO
import Testing

typealias MerchantClient = Linli_Commerce_V1_MerchantService.Client<HTTP2ClientTransport.Posix>
typealias OrderClient = Linli_Commerce_V1_OrderService.Client<HTTP2ClientTransport.Posix>
typealias CouponClient = Linli_Commerce_V1_CouponService.Client<HTTP2ClientTransport.Posix>

/// A demo tenant whose merchant has an active shop in the community with one listed goods of
/// two SKUs, and resident1 (a registered resident) with 1,000 points.
struct CommerceFixture {
    let server: TestServer
    let demo: DemoTenant
    let manager: Metadata
    let merchant: Metadata
    let resident: Metadata
    let residentID: String
    let merchantID: String
    let goods: Linli_Commerce_V1_Goods
    var shop: MerchantClient { .init(wrapping: server.client) }
    var orders: OrderClient { .init(wrapping: server.client) }
    var points: PointsClient { .init(wrapping: server.client) }
    var community: String { demo.community.description }

    static func make(_ server: TestServer, stock: Int32 = 50) async throws -> CommerceFixture {
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let merchant = try await server.login(demo, "merchant")
        let residentID = try await makeResident(server, demo, manager: manager, name: "业主丁", number: "301", user: "resident1")
        let resident = try await server.login(demo, "resident1")
        let shop = MerchantClient(wrapping: server.client)
        let applied = try await shop.applyMerchant(
            .with {
                $0.requestID = UUID().uuidString
                $0.communityID = demo.community.description
                $0.name = "鲜丰水果"
                $0.shopType = .greengrocer
                $0.licenceNo = "91310115MA1K4XXXX" + "1"
                $0.contactName = "陈老板"
                $0.contactPhone = "13812345678"
                $0.address = "阳光花园南门商铺 3 号"
                $0.hours = "08:00-21:00"
                $0.deliveryRadiusTenthsKm = 30
            }, metadata: merchant)
        _ = try await shop.reviewMerchant(
            .with {
                $0.requestID = UUID().uuidString; $0.merchantID = applied.id; $0.approve = true; $0.useDefaultCommission = true
                $0.depositFen = 500_000
            }, metadata: manager)
        _ = try await shop.collectMerchantDeposit(
            .with {
                $0.requestID = UUID().uuidString; $0.merchantID = applied.id; $0.method = "bank_card"
            }, metadata: manager)
        let top = try await shop.saveCategory(
            .with {
                $0.requestID = UUID().uuidString; $0.name = "生鲜"; $0.enabled = true
            }, metadata: manager)
        let fruit = try await shop.saveCategory(
            .with {
                $0.requestID = UUID().uuidString; $0.name = "水果"; $0.parentID = top.id; $0.enabled = true; $0.sortOrder = 1
            }, metadata: manager)
        var goods = try await shop.saveGoods(
            .with {
                $0.requestID = UUID().uuidString
                $0.categoryID = fruit.id
                $0.name = "阳山水蜜桃"
                $0.description_p = "当日到店，坏果包赔"
                $0.skus = [
                    .with {
                        $0.spec = "6 只装"; $0.priceFen = 5_990; $0.stock = stock
                    },
                    .with {
                        $0.spec = "12 只装"; $0.priceFen = 10_990; $0.stock = stock
                    },
                ]
            }, metadata: merchant)
        goods = try await shop.setGoodsListed(
            .with {
                $0.requestID = UUID().uuidString; $0.goodsID = goods.id; $0.listed = true
            }, metadata: merchant)
        let points = PointsClient(wrapping: server.client)
        _ = try await points.fundPointsBudget(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = demo.community.description; $0.points = 100_000
            }, metadata: manager)
        _ = try await points.grantPoints(
            .with {
                $0.requestID = UUID().uuidString; $0.residentID = residentID; $0.points = 1_000; $0.reason = "缴费奖励"; $0.operationKey = "seed"
            }, metadata: manager)
        return CommerceFixture(
            server: server, demo: demo, manager: manager, merchant: merchant, resident: resident, residentID: residentID, merchantID: applied.id,
            goods: goods)
    }

    func place(_ sku: String? = nil, quantity: Int32 = 1, points: Int64 = 0, as caller: Metadata? = nil) async throws -> Linli_Commerce_V1_Order {
        try await orders.placeOrder(
            .with {
                $0.requestID = UUID().uuidString
                $0.communityID = community
                $0.lines = [
                    .with {
                        $0.skuID = sku ?? goods.skus[0].id; $0.quantity = quantity
                    }
                ]
                $0.points = points
            }, metadata: caller ?? resident)
    }

    func get(_ order: Linli_Commerce_V1_Order) async throws -> Linli_Commerce_V1_Order {
        try await orders.getOrder(.with { $0.orderID = order.id }, metadata: resident)
    }

    func sku(_ id: String) async throws -> Linli_Commerce_V1_Sku? {
        try await shop.getGoods(.with { $0.goodsID = goods.id }, metadata: merchant).skus.first { $0.id == id }
    }

    /// Pays through the simulated channel and waits for its notice to land.
    func pay(_ order: Linli_Commerce_V1_Order, delayMs: Int32 = 0) async throws -> Linli_Commerce_V1_PaymentIntent {
        let intent = try await orders.payOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.channel = "sim"
            }, metadata: resident)
        return try await orders.simulateChannelPayment(
            .with {
                $0.requestID = UUID().uuidString; $0.intentID = intent.id; $0.notifyDelayMs = delayMs
            }, metadata: resident)
    }

    func wait(_ order: Linli_Commerce_V1_Order, until done: (Linli_Commerce_V1_Order) -> Bool) async throws -> Linli_Commerce_V1_Order {
        for _ in 0..<100 {
            let now = try await get(order)
            if done(now) { return now }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await get(order)
    }

    func ledger(_ sql: String) async throws -> Int64 {
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            var value: Int64 = 0
            for try await v in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: server.app.logger).decode(Int64.self) { value = v }
            return value
        }
    }

    /// A deposit-kind account's balance (credits less debits) by subtype prefix.
    func liability(_ prefix: String) async throws -> Int64 {
        try await ledger(
            "SELECT coalesce(sum(credits_fen - debits_fen), 0)::int8 FROM ledger_accounts WHERE subtype LIKE '\(prefix)%'")
    }

    func available() async throws -> Int64 {
        try await points.getPointsBalance(.with { $0.communityID = community }, metadata: resident).available
    }
}

@Suite("Commerce: merchants, catalogue, orders with stock, a payment channel, points, reviews and returns", .serialized)
struct CommerceTests {
    @Test("a merchant applies, is reviewed, pays a deposit on the ledger, lists goods; every bad field is named; scopes hold")
    func onboarding() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        let merchant = try await f.shop.getMerchant(.with { $0.merchantID = f.merchantID }, metadata: f.manager)
        #expect(merchant.state == .active && merchant.commissionBp == 500 && merchant.depositFen == 500_000)
        #expect(merchant.communities.map(\.state) == [.approved] && merchant.contactPhone == "13812345678")
        #expect(try await f.liability("merchant_deposit:") == 500_000)
        // One shop per account, one shop per licence.
        #expect(
            await rpcCode {
                try await f.shop.applyMerchant(
                    .with {
                        $0.requestID = UUID().uuidString; $0.communityID = f.community; $0.name = "又一家"; $0.shopType = .other
                        $0.licenceNo = "91310115MA1K4XXXX1"; $0.contactName = "陈"; $0.contactPhone = "13812345678"; $0.address = "南门"
                    }, metadata: f.merchant)
            } == .alreadyExists)
        // Residents see the listed goods of the community, not the shop's contact, not the review calls.
        let listed = try await f.shop.listGoods(.with { $0.communityID = f.community }, metadata: f.resident)
        #expect(listed.goods.map(\.id) == [f.goods.id] && listed.goods[0].minPriceFen == 5_990)
        #expect(await rpcCode { try await f.shop.getMerchant(.with { $0.merchantID = f.merchantID }, metadata: f.resident) } == .permissionDenied)
        #expect(
            await rpcCode {
                try await f.shop.reviewMerchant(
                    .with {
                        $0.requestID = UUID().uuidString; $0.merchantID = f.merchantID; $0.approve = true
                    }, metadata: f.merchant)
            } == .permissionDenied)
        // Delisted goods vanish for residents and cannot be ordered.
        _ = try await f.shop.setGoodsListed(
            .with {
                $0.requestID = UUID().uuidString; $0.goodsID = f.goods.id; $0.listed = false
            }, metadata: f.merchant)
        #expect(try await f.shop.listGoods(.with { $0.communityID = f.community }, metadata: f.resident).goods.isEmpty)
        #expect(await rpcCode { try await f.place() } == .failedPrecondition)
        _ = try await f.shop.setGoodsListed(
            .with {
                $0.requestID = UUID().uuidString; $0.goodsID = f.goods.id; $0.listed = true
            }, metadata: f.merchant)
        // Bad input names its field.
        let badLicence = await rpcError {
            try await f.shop.applyMerchant(
                .with {
                    $0.requestID = UUID().uuidString; $0.communityID = f.community; $0.name = "店"; $0.shopType = .other; $0.licenceNo = "123"
                }, metadata: f.merchant)
        }
        #expect(badLicence?.code == .invalidArgument && badLicence?.message.contains("licence_no") == true)
        let badPrice = await rpcError {
            try await f.shop.saveGoods(
                .with {
                    $0.requestID = UUID().uuidString; $0.categoryID = f.goods.categoryID; $0.name = "桃"
                    $0.skus = [
                        .with {
                            $0.spec = "1 只"; $0.priceFen = 0
                        }
                    ]
                }, metadata: f.merchant)
        }
        #expect(badPrice?.message.contains("skus.price_fen") == true)
        let badQuantity = await rpcError { try await f.place(quantity: 1_000) }
        #expect(badQuantity?.code == .invalidArgument && badQuantity?.message.contains("lines.quantity") == true)
        let tooManyPoints = await rpcError { try await f.place(points: 1_500) }
        #expect(tooManyPoints?.code == .failedPrecondition && tooManyPoints?.message.contains("points") == true)
        // Another tenant's staff and residents see none of it.
        let other = try await f.server.newTenant()
        let stranger = try await f.server.login(other, "manager")
        #expect(await rpcCode { try await f.shop.getMerchant(.with { $0.merchantID = f.merchantID }, metadata: stranger) } == .notFound)
        #expect(await rpcCode { try await f.shop.getGoods(.with { $0.goodsID = f.goods.id }, metadata: stranger) } == .notFound)
        let otherMerchant = try await f.server.login(other, "merchant")
        #expect(
            await rpcCode {
                try await f.shop.adjustStock(
                    .with {
                        $0.requestID = UUID().uuidString; $0.skuID = f.goods.skus[0].id; $0.delta = 5
                    }, metadata: otherMerchant)
            } == .permissionDenied)
    }

    @Test("C-2: 10 units, 20 concurrent checkouts → exactly 10 orders; a cancel gives its stock back once")
    func stockNeverOversold() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value, stock: 10)
        // 20 residents' accounts would each need a room; one resident placing 20 orders races the same rows.
        let results = await withTaskGroup(of: Result<Linli_Commerce_V1_Order, any Error>.self) { group in
            for _ in 0..<20 { group.addTask { do { return .success(try await f.place()) } catch { return .failure(error) } } }
            var all: [Result<Linli_Commerce_V1_Order, any Error>] = []
            for await r in group { all.append(r) }
            return all
        }
        let placed = results.compactMap { try? $0.get() }
        #expect(placed.count == 10)
        let refused = results.compactMap { r -> RPCError.Code? in
            if case .failure(let e) = r { return (e as? RPCError)?.code }
            return nil
        }
        #expect(refused == Array(repeating: .resourceExhausted, count: 10))
        var sku = try await f.sku(f.goods.skus[0].id)
        #expect(sku?.stock == 0 && sku?.reserved == 10)
        let cancel = Linli_Commerce_V1_CancelOrderRequest.with {
            $0.requestID = UUID().uuidString; $0.orderID = placed[0].id
        }
        let cancelled = try await f.orders.cancelOrder(cancel, metadata: f.resident)
        #expect(cancelled.state == .cancelled && cancelled.cancelReason == "用户取消")
        // The same cancel again (a retry, and a new request) restores nothing more.
        _ = try await f.orders.cancelOrder(cancel, metadata: f.resident)
        _ = try await f.orders.cancelOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = placed[0].id
            }, metadata: f.resident)
        sku = try await f.sku(f.goods.skus[0].id)
        #expect(sku?.stock == 1 && sku?.reserved == 9)
        // A resident cannot cancel someone else's order; the merchant can cancel their shop's.
        let other = try await makeResident(f.server, f.demo, manager: f.manager, name: "业主戊", number: "302", user: "resident2")
        #expect(!other.isEmpty)
        let resident2 = try await f.server.login(f.demo, "resident2")
        #expect(
            await rpcCode {
                try await f.orders.cancelOrder(
                    .with {
                        $0.requestID = UUID().uuidString; $0.orderID = placed[1].id
                    }, metadata: resident2)
            } == .notFound)
        let byShop = try await f.orders.cancelOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = placed[1].id; $0.reason = "缺货"
            }, metadata: f.merchant)
        #expect(byShop.state == .cancelled && byShop.events.last?.actor == "merchant")
    }

    @Test("C-1: the timer cancels at the deadline; a payment landing after it is refunded; a concurrent cancel and payment: one wins")
    func payVersusCancel() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            try await connection.query("UPDATE commerce_settings SET unpaid_seconds = 2", logger: f.server.app.logger)
        }
        let order = try await f.place(quantity: 2, points: 100)
        #expect(order.payFen == 2 * 5_990 - 100 && order.pointsValueFen == 100)
        #expect(try await f.available() == 900)
        // Paid at the channel just before the deadline; its notice arrives 1.5 s after it.
        let intent = try await f.pay(order, delayMs: 3_500)
        #expect(!intent.channelTransaction.isEmpty)
        let cancelled = try await f.wait(order) { $0.state == .cancelled }
        #expect(cancelled.state == .cancelled && cancelled.cancelReason == "超时未支付" && cancelled.events.last?.actor == "job")
        let late = cancelled.createdAt.date.addingTimeInterval(2)
        #expect(abs(cancelled.events.last.map { $0.at.date.timeIntervalSince(late) } ?? 9) < 1.5, "cancelled at its deadline, not a sweep later")
        #expect(try await f.available() == 1_000, "the held points are back")
        let refunded = try await f.wait(order) { $0.refundedFen > 0 }
        #expect(refunded.state == .cancelled && refunded.refundedFen == order.payFen)
        #expect(refunded.events.last?.actor == "channel" && refunded.events.last?.note.contains("refunded") == true)
        #expect(try await f.liability("order_escrow:") == 0, "nothing of the late payment stays with the shop")
        var sku = try await f.sku(f.goods.skus[0].id)
        #expect(sku?.stock == 50 && sku?.reserved == 0 && sku?.sold == 0)

        // Cancel and payment at once, ten times: each order ends paid, or cancelled with its money back.
        for _ in 0..<10 {
            let raced = try await f.place()
            let intent = try await f.orders.payOrder(
                .with {
                    $0.requestID = UUID().uuidString; $0.orderID = raced.id; $0.channel = "sim"
                }, metadata: f.resident)
            async let pay = f.orders.simulateChannelPayment(
                .with {
                    $0.requestID = UUID().uuidString; $0.intentID = intent.id
                }, metadata: f.resident)
            async let cancel = f.orders.cancelOrder(
                .with {
                    $0.requestID = UUID().uuidString; $0.orderID = raced.id
                }, metadata: f.resident)
            _ = try? await (pay, cancel)
            let end = try await f.wait(raced) { ($0.state == .paid) || ($0.state == .cancelled && $0.refundedFen == $0.payFen) }
            #expect(end.state == .paid || (end.state == .cancelled && end.refundedFen == end.payFen))
        }
        sku = try await f.sku(f.goods.skus[0].id)
        let paid = try await f.orders.listOrders(
            .with {
                $0.communityID = f.community; $0.state = .paid
            }, metadata: f.resident
        ).orders.count
        #expect(Int(sku?.sold ?? -1) == paid && (sku?.stock ?? 0) + (sku?.sold ?? 0) == 50)
        #expect(try await f.liability("order_escrow:") == Int64(paid) * 5_990)
    }

    @Test("an order paid partly with points: paid → shipped → received → one review per line, one reply → settled less 5 % commission")
    func orderToSettlement() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        let quote = try await f.orders.quoteOrder(
            .with {
                $0.communityID = f.community;
                $0.lines = [
                    .with {
                        $0.skuID = f.goods.skus[1].id; $0.quantity = 1
                    }
                ]; $0.points = 300
            },
            metadata: f.resident)
        #expect(quote.goodsFen == 10_990 && quote.pointsValueFen == 300 && quote.payFen == 10_690 && quote.maxPoints == 1_000)
        let order = try await f.place(f.goods.skus[1].id, points: 300)
        #expect(order.state == .unpaid && order.address.contains("301") && order.orderNo.hasPrefix("D"))
        _ = try await f.pay(order)
        let paid = try await f.wait(order) { $0.state == .paid }
        #expect(paid.state == .paid && paid.events.last?.actor == "channel")
        #expect(try await f.available() == 700)
        #expect(try await f.liability("order_escrow:") == 10_990)
        // A second notice of the same transaction is the first one.
        let shipped = try await f.orders.shipOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.tracking = "送货上门"
            }, metadata: f.merchant)
        #expect(shipped.state == .shipped)
        #expect(
            await rpcCode {
                try await f.orders.shipOrder(
                    .with {
                        $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.tracking = "x"
                    }, metadata: f.resident)
            } == .permissionDenied)
        let received = try await f.orders.confirmReceipt(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id
            }, metadata: f.resident)
        #expect(received.state == .received)
        let review = try await f.orders.reviewOrderLine(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.lineID = received.lines[0].id; $0.score = 5; $0.text = "很甜"
            },
            metadata: f.resident)
        #expect(review.score == 5)
        #expect(
            await rpcCode {
                try await f.orders.reviewOrderLine(
                    .with {
                        $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.lineID = received.lines[0].id; $0.score = 1
                    },
                    metadata: f.resident)
            } == .alreadyExists)
        let badScore = await rpcError {
            try await f.orders.reviewOrderLine(
                .with {
                    $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.lineID = received.lines[0].id; $0.score = 6
                }, metadata: f.resident)
        }
        #expect(badScore?.message.contains("score") == true)
        let replied = try await f.orders.replyToReview(
            .with {
                $0.requestID = UUID().uuidString; $0.reviewID = review.id; $0.text = "谢谢惠顾"
            }, metadata: f.merchant)
        #expect(replied.reply == "谢谢惠顾")
        #expect(
            await rpcCode {
                try await f.orders.replyToReview(
                    .with {
                        $0.requestID = UUID().uuidString; $0.reviewID = review.id; $0.text = "再说一句"
                    }, metadata: f.merchant)
            } == .alreadyExists)
        let goods = try await f.shop.getGoods(.with { $0.goodsID = f.goods.id }, metadata: f.resident)
        #expect(goods.reviews == 1 && goods.scoreHundredths == 500)
        // The order rule: a point per 元 paid, at most 50 an order, earned when the order is done.
        _ = try await f.points.saveEarningRule(
            .with {
                $0.requestID = UUID().uuidString
                $0.rule = .with {
                    $0.communityID = f.community; $0.kind = .orderDone; $0.name = "购物 1 元 1 分"; $0.points = 1; $0.perFen = 100
                    $0.capPoints = 50; $0.enabled = true
                }
            }, metadata: f.manager)
        // Settlement waits out the after-sale window (7 days); the sweep is run as of then.
        try await f.server.app.orderTimers.sweep(f.demo.tenant, at: Date().addingTimeInterval(6 * 86_400))
        #expect(try await f.get(order).state == .received)
        try await f.server.app.orderTimers.sweep(f.demo.tenant, at: Date().addingTimeInterval(8 * 86_400))
        let done = try await f.get(order)
        #expect(done.state == .done && done.commissionFen == 550 && done.settledFen == 10_440)
        #expect(try await f.liability("order_escrow:") == 0)
        #expect(try await f.liability("merchant_payable:") == 10_440)
        #expect(try await f.ledger("SELECT (sum(debits_fen) - sum(credits_fen))::int8 FROM ledger_accounts") == 0)
        #expect(try await f.available() == 750, "700 left after the order, 50 earned by it (capped)")
        let today = BusinessDay.demo.today()
        let report = try await f.points.getPointsReport(
            .with {
                $0.communityID = f.community; $0.from = today; $0.to = BusinessDay.demo.adding(1, to: today) ?? today
            }, metadata: f.manager)
        #expect(report.spent == 300 && report.granted == 1_050 && report.outstanding == 750)
        #expect(report.merchants.map(\.points) == [300] && report.merchants.first?.merchantName == "鲜丰水果")
        // The merchant sees it among their shop's orders; the manager among the community's.
        #expect(try await f.orders.listOrders(.with { $0.state = .done }, metadata: f.merchant).orders.map(\.id) == [order.id])
        #expect(try await f.orders.listOrders(.with { $0.communityID = f.community }, metadata: f.manager).orders.map(\.id) == [order.id])
    }

    @Test("a return: requested, refused once, requested again, accepted, goods back → money and points refunded, stock restored")
    func returns() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        let order = try await f.place(quantity: 3, points: 200)
        _ = try await f.pay(order)
        _ = try await f.wait(order) { $0.state == .paid }
        _ = try await f.orders.shipOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.tracking = "SF1234567"
            }, metadata: f.merchant)
        let asked = try await f.orders.requestReturn(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.reason = "有坏果"
            }, metadata: f.resident)
        #expect(asked.state == .returning)
        let refused = try await f.orders.reviewReturn(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.accept = false; $0.reason = "请提供照片"
            }, metadata: f.merchant)
        #expect(refused.state == .shipped)
        let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + Data(repeating: 7, count: 64)
        let image = try await f.shop.uploadImage(
            .with {
                $0.requestID = UUID().uuidString; $0.contentType = "image/png"; $0.data = png
            }, metadata: f.resident)
        #expect(image.ref.hasPrefix("img/") && image.ref.hasSuffix(".png"))
        let notPNG = await rpcError {
            try await f.shop.uploadImage(
                .with {
                    $0.requestID = UUID().uuidString; $0.contentType = "image/png"; $0.data = Data("GIF89a".utf8)
                }, metadata: f.resident)
        }
        #expect(notPNG?.message.contains("data") == true)
        _ = try await f.orders.requestReturn(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.reason = "有坏果，见照片"; $0.imageRefs = [image.ref]
            }, metadata: f.resident)
        _ = try await f.orders.reviewReturn(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.accept = true
            }, metadata: f.merchant)
        let back = try await f.orders.receiveReturnedGoods(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id
            }, metadata: f.merchant)
        #expect(back.state == .returned && back.refundedFen == order.payFen && back.returnImageRefs == [image.ref])
        let points = try await f.available()
        let ledger = try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            try await PointsStore().balance(UUID(uuidString: f.residentID) ?? UUID(), on: connection, logger: f.server.app.logger)
        }
        #expect(points == 1_000 && ledger.available == 1_000, "the points spent are given back: \(points), ledger \(ledger)")
        let sku = try await f.sku(f.goods.skus[0].id)
        #expect(sku?.stock == 50 && sku?.sold == 0)
        #expect(try await f.liability("order_escrow:") == 0)
        #expect(try await f.ledger("SELECT (sum(debits_fen) - sum(credits_fen))::int8 FROM ledger_accounts") == 0)
    }

    @Test(
        "C-5: the commission's share is persisted, sent a minute after payment, retried through FAILED and PROCESSING, returned before a refund; beyond 30 % it is never sent"
    )
    func profitSharing() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        let channel = f.server.app.paymentChannels.simulated
        let order = try await f.place(f.goods.skus[1].id, points: 200)
        _ = try await f.pay(order)
        var paid = try await f.wait(order) { $0.state == .paid }
        #expect(paid.shares.map(\.state) == ["pending"] && paid.shares.first?.amountFen == 550 && paid.shares.first?.paidFen == 10_790)
        let start = Date()
        await channel.scriptShares([.failed(reason: "SYSTEM_ERROR"), .processing(id: "")])
        try await f.server.app.orderTimers.sweep(f.demo.tenant, at: start.addingTimeInterval(30))
        #expect(try await f.get(order).shares.first?.state == "pending", "not before a minute after the payment")
        try await f.server.app.orderTimers.sweep(f.demo.tenant, at: start.addingTimeInterval(61))
        paid = try await f.get(order)
        #expect(paid.shares.first?.state == "failed" && paid.shares.first?.lastError == "SYSTEM_ERROR" && paid.shares.first?.attempts == 1)
        try await f.server.app.orderTimers.sweep(f.demo.tenant, at: start.addingTimeInterval(200))
        #expect(try await f.get(order).shares.first?.state == "processing")
        try await f.server.app.orderTimers.sweep(f.demo.tenant, at: start.addingTimeInterval(400))
        paid = try await f.get(order)
        #expect(paid.shares.first?.state == "succeeded" && paid.shares.first?.attempts == 3)
        let unreconciled = try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            try await OrderStore().unreconciledShares(channel: channel, on: connection, logger: f.server.app.logger)
        }
        #expect(unreconciled.isEmpty)
        // A full refund returns the share first (the channel refuses to refund shared money).
        let cancelled = try await f.orders.cancelOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id
            }, metadata: f.resident)
        #expect(cancelled.state == .cancelled && cancelled.refundedFen == 10_790 && cancelled.shares.first?.state == "returned")
        let intent = try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            var txn = ""
            for try await t in try await connection.query(
                "SELECT channel_txn FROM commerce_payments WHERE order_id = \(UUID(uuidString: order.id) ?? UUID())", logger: f.server.app.logger
            ).decode(String.self) { txn = t }
            return txn
        }
        #expect(await channel.shared(transaction: intent) == 0)
        // Beyond the limits: never sent.
        #expect(OrderStore.shareRefusal(3_001, of: 10_000) != nil && OrderStore.shareRefusal(3_000, of: 10_000) == nil)
        try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            try await connection.query("UPDATE merchants SET commission_bp = 3000", logger: f.server.app.logger)
        }
        let heavy = try await f.place(points: 1_000)
        _ = try await f.pay(heavy)
        let rejected = try await f.wait(heavy) { $0.state == .paid }
        #expect(rejected.shares.first?.state == "rejected" && rejected.shares.first?.lastError.contains("30%") == true)
        try await f.server.app.orderTimers.sweep(f.demo.tenant, at: start.addingTimeInterval(3_600))
        #expect(try await f.get(heavy).shares.first?.state == "rejected")
    }

    @Test("coupons: the property's 10 元 off above 50 元, a merchant's 20 % off its goods (cap 5 元); limits hold; used once; a cancel gives it back")
    func coupons() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        let coupons = CouponClient(wrapping: f.server.client)
        func template(_ build: (inout Linli_Commerce_V1_CouponTemplate) -> Void) -> Linli_Commerce_V1_CreateCouponTemplateRequest {
            .with {
                $0.requestID = UUID().uuidString
                $0.template = .with {
                    $0.communityID = f.community; $0.name = "新人券"; $0.kind = .amountOff; $0.amountOffFen = 1_000; $0.thresholdFen = 5_000
                    $0.scope = .shop; $0.stock = 1; $0.perPerson = 1; $0.validDays = 7
                    $0.claimUntil = .init(date: Date().addingTimeInterval(86_400))
                    build(&$0)
                }
            }
        }
        let property = try await coupons.createCouponTemplate(template { _ in }, metadata: f.manager)
        #expect(property.merchantID.isEmpty)
        let shop = try await coupons.createCouponTemplate(
            template {
                $0.name = "水蜜桃八折"; $0.kind = .percentOff; $0.amountOffFen = 0; $0.percentOff = 20; $0.capFen = 500; $0.thresholdFen = 0
                $0.scope = .goods; $0.scopeIds = [f.goods.id]; $0.stock = 10; $0.perPerson = 2
            }, metadata: f.merchant)
        #expect(shop.merchantID == f.merchantID)
        let bad = await rpcError {
            try await coupons.createCouponTemplate(
                template {
                    $0.kind = .percentOff; $0.percentOff = 120
                }, metadata: f.manager)
        }
        #expect(bad?.code == .invalidArgument && bad?.message.contains("template.") == true)
        #expect(try await coupons.listCouponTemplates(.with { $0.communityID = f.community }, metadata: f.resident).templates.count == 2)
        let mine = try await coupons.claimCoupon(
            .with {
                $0.requestID = UUID().uuidString; $0.templateID = property.id
            }, metadata: f.resident)
        #expect(mine.state == .available)
        #expect(
            await rpcCode {
                try await coupons.claimCoupon(
                    .with {
                        $0.requestID = UUID().uuidString; $0.templateID = property.id
                    }, metadata: f.resident)
            }
                == .failedPrecondition, "one per person")
        _ = try await makeResident(f.server, f.demo, manager: f.manager, name: "业主戊", number: "302", user: "resident2")
        let resident2 = try await f.server.login(f.demo, "resident2")
        #expect(
            await rpcCode {
                try await coupons.claimCoupon(
                    .with {
                        $0.requestID = UUID().uuidString; $0.templateID = property.id
                    }, metadata: resident2)
            }
                == .resourceExhausted, "the stock of 1 is gone")
        // The quote shows it; the order takes it once.
        let line = Linli_Commerce_V1_OrderLineDraft.with {
            $0.skuID = f.goods.skus[0].id; $0.quantity = 1
        }
        let quote = try await f.orders.quoteOrder(
            .with {
                $0.communityID = f.community; $0.lines = [line]; $0.points = 100; $0.couponID = mine.id
            }, metadata: f.resident)
        #expect(quote.couponFen == 1_000 && quote.payFen == 5_990 - 1_000 - 100)
        func place() async throws -> Linli_Commerce_V1_Order {
            try await f.orders.placeOrder(
                .with {
                    $0.requestID = UUID().uuidString; $0.communityID = f.community; $0.lines = [line]; $0.points = 100; $0.couponID = mine.id
                },
                metadata: f.resident)
        }
        let first = try await place()
        #expect(first.couponFen == 1_000 && first.payFen == 4_890 && first.couponID == mine.id)
        #expect(await rpcCode { try await place() } == .failedPrecondition, "a used coupon is not used twice")
        let cashier = try await f.server.login(f.demo, "cashier")
        #expect(
            await rpcCode {
                try await f.orders.cancelOrder(
                    .with {
                        $0.requestID = UUID().uuidString; $0.orderID = first.id
                    }, metadata: cashier)
            } == .permissionDenied, "a cashier sees orders, and cancels none")
        _ = try await f.orders.cancelOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = first.id
            }, metadata: f.resident)
        let back = try await coupons.listMyCoupons(
            .with {
                $0.communityID = f.community; $0.state = .available
            }, metadata: f.resident)
        #expect(back.coupons.map(\.id) == [mine.id], "the cancel gave it back")
        let second = try await place()
        _ = try await f.pay(second)
        _ = try await f.wait(second) { $0.state == .paid }
        #expect(try await f.liability("order_escrow:") == 5_990, "the shop is owed the whole price: the property bears its coupon")
        #expect(
            try await f.ledger("SELECT (debits_fen - credits_fen)::int8 FROM ledger_accounts WHERE subtype = 'coupon_redemption'") == 1_000)
        // The merchant's coupon: 20 % of 109.90 capped at 5 元, borne by the shop.
        let theirs = try await coupons.claimCoupon(
            .with {
                $0.requestID = UUID().uuidString; $0.templateID = shop.id
            }, metadata: f.resident)
        let big = try await f.orders.placeOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = f.community
                $0.lines = [
                    .with {
                        $0.skuID = f.goods.skus[1].id; $0.quantity = 1
                    }
                ]; $0.couponID = theirs.id
            }, metadata: f.resident)
        #expect(big.couponFen == 500 && big.payFen == 10_490)
        _ = try await f.pay(big)
        _ = try await f.wait(big) { $0.state == .paid }
        #expect(try await f.liability("order_escrow:") == 5_990 + 10_490)
        #expect(try await f.ledger("SELECT (sum(debits_fen) - sum(credits_fen))::int8 FROM ledger_accounts") == 0)
    }

    @Test("a forged or altered payment notice is refused; the same notice twice is applied once")
    func notices() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        let order = try await f.place()
        let intent = try await f.orders.payOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.channel = "sim"
            }, metadata: f.resident)
        let channel = f.server.app.paymentChannels.simulated
        let intentID = UUID(uuidString: intent.id) ?? UUID()
        var forged = PaymentNotice(
            tenant: f.demo.tenant.id, intent: intentID, transaction: "FAKE1", amountFen: intent.amountFen, paidAt: Date(),
            signature: String(repeating: "0", count: 64))
        await #expect(throws: LinliError.self) { try await f.server.app.orderTimers.receive(forged, tenant: f.demo.tenant) }
        forged = channel.signed(forged)
        forged.amountFen = 1
        await #expect(throws: LinliError.self) { try await f.server.app.orderTimers.receive(forged, tenant: f.demo.tenant) }
        #expect(try await f.get(order).state == .unpaid)
        let paid = try await channel.pay(intent: intentID, delay: .seconds(3_600))
        #expect(try await f.server.app.orderTimers.receive(paid, tenant: f.demo.tenant) == .paid)
        #expect(try await f.server.app.orderTimers.receive(paid, tenant: f.demo.tenant) == .duplicate)
        #expect(try await f.liability("order_escrow:") == 5_990)
    }
}
