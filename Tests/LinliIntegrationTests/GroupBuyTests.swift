import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCommerce
import LinliCore
import SwiftProtobuf
import Testing

typealias GroupBuyClient = Linli_Commerce_V1_GroupBuyService.Client<HTTP2ClientTransport.Posix>

extension CommerceFixture {
    var groups: GroupBuyClient { .init(wrapping: server.client) }

    /// A new user of the tenant (a resident living in a new room of 1栋 when `role` is resident).
    func newUser(_ username: String, role: Linli_Common_V1_Role, room: String = "") async throws -> (id: String, session: Metadata) {
        let created = try await server.identity.createUser(
            .with {
                $0.requestID = UUID().uuidString
                $0.username = username
                $0.displayName = username
                $0.password = "test-password-1"
                $0.role = role
                $0.communityIds = [community]
                if role == .resident { $0.buildingIds = [demo.buildings[0].description] }
            }, metadata: manager)
        if role == .resident {
            _ = try await makeResident(server, demo, manager: manager, name: username, number: room, userID: created.userID)
        }
        return (created.userID, try await server.login(demo, username))
    }

    /// A campaign of `size` in the community, its deal on the 12-pack at 89.90, approved.
    func groupDeal(size: Int32, endsIn seconds: TimeInterval = 86_400) async throws -> Linli_Commerce_V1_GroupBuyDeal {
        let campaign = try await groups.publishGroupBuy(
            .with {
                $0.requestID = UUID().uuidString
                $0.communityID = community
                $0.title = "水蜜桃三人团"
                $0.groupSize = size
                $0.formHours = 24
                $0.endsAt = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(seconds))
            }, metadata: manager)
        let applied = try await groups.applyGroupBuyDeal(
            .with {
                $0.requestID = UUID().uuidString; $0.campaignID = campaign.id; $0.skuID = goods.skus[1].id; $0.groupPriceFen = 8_990
            }, metadata: merchant)
        #expect(applied.state == .requested && applied.priceFen == 10_990)
        return try await groups.reviewGroupBuyDeal(
            .with {
                $0.requestID = UUID().uuidString; $0.dealID = applied.id; $0.approve = true
            }, metadata: manager)
    }

    func join(_ deal: Linli_Commerce_V1_GroupBuyDeal, group: String = "", points: Int64 = 0, as caller: Metadata) async throws
        -> Linli_Commerce_V1_Order
    {
        try await groups.joinGroupBuy(
            .with {
                $0.requestID = UUID().uuidString; $0.dealID = deal.id; $0.groupBuyID = group; $0.quantity = 1; $0.points = points
            }, metadata: caller)
    }

    func pay(_ order: Linli_Commerce_V1_Order, as caller: Metadata) async throws {
        let intent = try await orders.payOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = order.id; $0.channel = "sim"
            }, metadata: caller)
        _ = try await orders.simulateChannelPayment(
            .with {
                $0.requestID = UUID().uuidString; $0.intentID = intent.id
            }, metadata: caller)
    }

    func waitState(_ order: Linli_Commerce_V1_Order, as caller: Metadata, _ state: Linli_Commerce_V1_OrderState) async throws
        -> Linli_Commerce_V1_Order
    {
        for _ in 0..<100 {
            let now = try await orders.getOrder(.with { $0.orderID = order.id }, metadata: caller)
            if now.state == state { return now }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await orders.getOrder(.with { $0.orderID = order.id }, metadata: caller)
    }
}

@Suite("Group buys, the cart, brands and community prices, shop staff", .serialized)
struct GroupBuyTests {
    @Test("a group of three forms when its third member pays; the merchant ships only then; a full group and a second seat are refused")
    func groupSucceeds() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        // The group price must be below the SKU's own; the merchant's application is reviewed.
        let campaign = try await f.groups.publishGroupBuy(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = f.community; $0.title = "团"; $0.groupSize = 3; $0.formHours = 24
                $0.endsAt = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(3600))
            }, metadata: f.manager)
        let tooDear = try await rpcError {
            try await f.groups.applyGroupBuyDeal(
                .with {
                    $0.requestID = UUID().uuidString; $0.campaignID = campaign.id; $0.skuID = f.goods.skus[1].id; $0.groupPriceFen = 10_990
                }, metadata: f.merchant)
        }
        #expect(tooDear?.code == .invalidArgument && tooDear?.message.contains("group_price_fen") == true)
        let deal = try await f.groupDeal(size: 3)
        #expect(deal.state == .approved)

        let (_, second) = try await f.newUser("gb_second_\(UUID().uuidString.prefix(6))", role: .resident, room: "311")
        let (_, third) = try await f.newUser("gb_third_\(UUID().uuidString.prefix(6))", role: .resident, room: "312")
        let (_, fourth) = try await f.newUser("gb_fourth_\(UUID().uuidString.prefix(6))", role: .resident, room: "313")

        // resident1 opens the group with 100 points off the group price.
        let first = try await f.join(deal, points: 100, as: f.resident)
        #expect(first.goodsFen == 8_990 && first.payFen == 8_890 && !first.groupBuyID.isEmpty && first.lines[0].priceFen == 8_990)
        #expect(await rpcCode { try await f.join(deal, group: first.groupBuyID, as: f.resident) } == .alreadyExists)
        let listed = try await f.groups.listGroupBuyDeals(.with { $0.communityID = f.community }, metadata: second)
        let visible = try #require(listed.deals.first { $0.id == deal.id })
        #expect(visible.forming.map(\.id) == [first.groupBuyID] && visible.forming[0].joined == 1)

        let two = try await f.join(deal, group: first.groupBuyID, as: second)
        let three = try await f.join(deal, group: first.groupBuyID, as: third)
        #expect(await rpcCode { try await f.join(deal, group: first.groupBuyID, as: fourth) } == .resourceExhausted)

        try await f.pay(first, as: f.resident)
        try await f.pay(two, as: second)
        _ = try await f.waitState(two, as: second, .paid)
        var group = try await f.groups.getGroupBuy(.with { $0.groupBuyID = first.groupBuyID }, metadata: f.resident)
        #expect(group.state == .forming && group.joined == 3 && group.paid == 2)
        // Paid, but the group has not formed: the merchant cannot ship yet.
        #expect(
            await rpcCode {
                try await f.orders.shipOrder(
                    .with {
                        $0.requestID = UUID().uuidString; $0.orderID = first.id; $0.tracking = "送货上门"
                    }, metadata: f.merchant)
            } == .failedPrecondition)

        try await f.pay(three, as: third)
        _ = try await f.waitState(three, as: third, .paid)
        group = try await f.groups.getGroupBuy(.with { $0.groupBuyID = first.groupBuyID }, metadata: f.manager)
        #expect(group.state == .succeeded && group.paid == 3 && group.hasClosedAt)
        let shipped = try await f.orders.shipOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = first.id; $0.tracking = "送货上门"
            }, metadata: f.merchant)
        #expect(shipped.state == .shipped)
        // A succeeded group takes no one; the fourth opens a group of their own.
        #expect(await rpcCode { try await f.join(deal, group: first.groupBuyID, as: fourth) } == .failedPrecondition)
        let own = try await f.join(deal, as: fourth)
        #expect(own.groupBuyID != first.groupBuyID)
        // Three sold, one reserved by the fourth's unpaid order.
        let sku = try #require(try await f.sku(f.goods.skus[1].id))
        #expect(sku.sold == 3 && sku.reserved == 1)
        // Other tenants and other roles see nothing of it.
        let other = try await CommerceFixture.make(try await TestServer.shared.value)
        #expect(await rpcCode { try await f.groups.getGroupBuy(.with { $0.groupBuyID = first.groupBuyID }, metadata: other.resident) } == .notFound)
        #expect(await rpcCode { try await f.join(deal, as: other.resident) } == .notFound)
    }

    @Test("a group short of its size at its deadline fails: the paid member refunded with points back, the unpaid one released, stock restored")
    func groupFails() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        let deal = try await f.groupDeal(size: 3, endsIn: 4)
        let (_, second) = try await f.newUser("gb_late_\(UUID().uuidString.prefix(6))", role: .resident, room: "321")
        let before = try await f.available()
        let paid = try await f.join(deal, points: 200, as: f.resident)
        let unpaid = try await f.join(deal, group: paid.groupBuyID, as: second)
        try await f.pay(paid, as: f.resident)
        _ = try await f.waitState(paid, as: f.resident, .paid)
        #expect(try await f.available() == before - 200)
        // The group's deadline is the campaign's end, 4 s away: its timer fails it then.
        let refunded = try await f.waitState(paid, as: f.resident, .cancelled)
        #expect(refunded.cancelReason == "拼团失败" && refunded.refundedFen == paid.payFen)
        #expect(refunded.events.last?.actor == "job")
        let released = try await f.waitState(unpaid, as: second, .cancelled)
        #expect(released.refundedFen == 0)
        let group = try await f.groups.getGroupBuy(.with { $0.groupBuyID = paid.groupBuyID }, metadata: f.manager)
        #expect(group.state == .failed)
        #expect(try await f.available() == before)
        let sku = try #require(try await f.sku(f.goods.skus[1].id))
        #expect(sku.stock == 50 && sku.reserved == 0 && sku.sold == 0)
        #expect(try await f.liability("merchant_escrow:") == 0)
        // The campaign is over: no new groups.
        #expect(await rpcCode { try await f.join(deal, as: f.resident) } == .failedPrecondition)
    }

    @Test("a member who cancels while the group forms gives the seat back")
    func memberLeaves() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        let deal = try await f.groupDeal(size: 2)
        let (_, second) = try await f.newUser("gb_leave_\(UUID().uuidString.prefix(6))", role: .resident, room: "331")
        let (_, third) = try await f.newUser("gb_take_\(UUID().uuidString.prefix(6))", role: .resident, room: "332")
        let first = try await f.join(deal, as: f.resident)
        let leaving = try await f.join(deal, group: first.groupBuyID, as: second)
        #expect(await rpcCode { try await f.join(deal, group: first.groupBuyID, as: third) } == .resourceExhausted)
        try await f.pay(leaving, as: second)
        _ = try await f.waitState(leaving, as: second, .paid)
        let cancelled = try await f.orders.cancelOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.orderID = leaving.id
            }, metadata: second)
        #expect(cancelled.state == .cancelled && cancelled.refundedFen == leaving.payFen)
        var group = try await f.groups.getGroupBuy(.with { $0.groupBuyID = first.groupBuyID }, metadata: f.manager)
        #expect(group.joined == 1 && group.paid == 0 && group.state == .forming)
        let taker = try await f.join(deal, group: first.groupBuyID, as: third)
        try await f.pay(first, as: f.resident)
        try await f.pay(taker, as: third)
        _ = try await f.waitState(taker, as: third, .paid)
        _ = try await f.waitState(first, as: f.resident, .paid)
        group = try await f.groups.getGroupBuy(.with { $0.groupBuyID = first.groupBuyID }, metadata: f.manager)
        #expect(group.state == .succeeded && group.joined == 2 && group.paid == 2)
    }

    @Test("the cart keeps SKUs per resident, prices them in the community, and PlaceOrder from_cart empties what was ordered")
    func cart() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        let six = f.goods.skus[0].id
        let twelve = f.goods.skus[1].id
        _ = try await f.orders.setCartItem(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = f.community; $0.skuID = six; $0.quantity = 2
            }, metadata: f.resident)
        var cart = try await f.orders.setCartItem(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = f.community; $0.skuID = twelve; $0.quantity = 1
            }, metadata: f.resident)
        #expect(cart.shops.count == 1 && cart.shops[0].items.map(\.skuID) == [six, twelve] && cart.shops[0].goodsFen == 2 * 5_990 + 10_990)
        // The community's own price shows in the cart and is what the order charges.
        let priced = try await f.shop.setCommunityPrice(
            .with {
                $0.requestID = UUID().uuidString; $0.skuID = six; $0.communityID = f.community; $0.priceFen = 4_990
            }, metadata: f.merchant)
        #expect(priced.priceFen == 4_990 && priced.basePriceFen == 5_990 && priced.communityPrices.map(\.priceFen) == [4_990])
        cart = try await f.orders.getCart(.with { $0.communityID = f.community }, metadata: f.resident)
        #expect(cart.shops[0].items[0].priceFen == 4_990 && cart.shops[0].items[0].amountFen == 9_980)
        let goods = try await f.shop.getGoods(
            .with {
                $0.goodsID = f.goods.id; $0.communityID = f.community
            }, metadata: f.resident)
        #expect(goods.minPriceFen == 4_990 && goods.skus.allSatisfy { $0.communityPrices.isEmpty })
        let order = try await f.orders.placeOrder(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = f.community; $0.fromCart = true
                $0.lines = [
                    .with {
                        $0.skuID = six; $0.quantity = 2
                    }
                ]
            }, metadata: f.resident)
        #expect(order.goodsFen == 9_980)
        cart = try await f.orders.getCart(.with { $0.communityID = f.community }, metadata: f.resident)
        #expect(cart.shops[0].items.map(\.skuID) == [twelve])
        // Quantity 0 takes it out; bad input names the field; other residents' carts are their own.
        cart = try await f.orders.setCartItem(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = f.community; $0.skuID = twelve; $0.quantity = 0
            }, metadata: f.resident)
        #expect(cart.shops.isEmpty)
        let bad = try await rpcError {
            try await f.orders.setCartItem(
                .with {
                    $0.requestID = UUID().uuidString; $0.communityID = f.community; $0.skuID = six; $0.quantity = 1000
                }, metadata: f.resident)
        }
        #expect(bad?.code == .invalidArgument && bad?.message.contains("quantity") == true)
        #expect(
            await rpcCode {
                try await f.orders.setCartItem(
                    .with {
                        $0.requestID = UUID().uuidString; $0.communityID = f.community; $0.skuID = six; $0.quantity = 1
                    }, metadata: f.merchant)
            } == .permissionDenied)
        // Removing the community price brings the SKU's own back.
        let removed = try await f.shop.setCommunityPrice(
            .with {
                $0.requestID = UUID().uuidString; $0.skuID = six; $0.communityID = f.community; $0.priceFen = 0
            }, metadata: f.merchant)
        #expect(removed.priceFen == 5_990 && removed.communityPrices.isEmpty)
    }

    @Test("brands: the platform's and a shop's own; goods name one and list by it")
    func brands() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        let platform = try await f.shop.saveBrand(
            .with {
                $0.requestID = UUID().uuidString; $0.name = "阳山"
            }, metadata: f.manager)
        let own = try await f.shop.saveBrand(
            .with {
                $0.requestID = UUID().uuidString; $0.name = "鲜丰自营"
            }, metadata: f.merchant)
        #expect(platform.merchantID.isEmpty && own.merchantID == f.merchantID)
        #expect(
            await rpcCode {
                try await f.shop.saveBrand(
                    .with {
                        $0.requestID = UUID().uuidString; $0.name = "阳山"
                    }, metadata: f.manager)
            }
                == .alreadyExists)
        #expect(
            await rpcCode {
                try await f.shop.saveBrand(
                    .with {
                        $0.requestID = UUID().uuidString; $0.name = "x"
                    }, metadata: f.resident)
            } == .permissionDenied)
        var draft = Linli_Commerce_V1_SaveGoodsRequest.with {
            $0.requestID = UUID().uuidString; $0.goodsID = f.goods.id; $0.categoryID = f.goods.categoryID; $0.name = f.goods.name
            $0.brandID = platform.id
            $0.skus = [
                .with {
                    $0.skuID = f.goods.skus[0].id; $0.spec = "6 只装"; $0.priceFen = 5_990
                }
            ]
        }
        let saved = try await f.shop.saveGoods(draft, metadata: f.merchant)
        #expect(saved.brandID == platform.id && saved.brandName == "阳山")
        let byBrand = try await f.shop.listGoods(
            .with {
                $0.communityID = f.community; $0.brandID = platform.id
            }, metadata: f.resident)
        #expect(byBrand.goods.map(\.id) == [f.goods.id])
        #expect(
            try await f.shop.listGoods(
                .with {
                    $0.communityID = f.community; $0.brandID = own.id
                }, metadata: f.resident
            ).goods.isEmpty)
        // Another shop's brand is not this shop's to use.
        let other = try await CommerceFixture.make(try await TestServer.shared.value)
        let foreign = try await other.shop.saveBrand(
            .with {
                $0.requestID = UUID().uuidString; $0.name = "别家"
            }, metadata: other.merchant)
        draft.requestID = UUID().uuidString
        draft.brandID = foreign.id
        #expect(await rpcCode { try await f.shop.saveGoods(draft, metadata: f.merchant) } == .notFound)
        let brands = try await f.shop.listBrands(.init(), metadata: f.merchant)
        #expect(Set(brands.brands.map(\.id)) == [platform.id, own.id])
        // Managers and residents see every brand of the tenant (the other tenant's are not in it).
        let all = try await f.shop.listBrands(.init(), metadata: f.resident)
        #expect(Set(all.brands.map(\.id)) == [platform.id, own.id])
        #expect(Set(try await f.shop.listBrands(.init(), metadata: f.manager).brands.map(\.id)) == [platform.id, own.id])
    }

    @Test("the owner adds a merchant-role user to the shop's staff, who then works the shop; staff cannot add staff; removal takes effect at once")
    func staff() async throws {
        let f = try await CommerceFixture.make(try await TestServer.shared.value)
        let (clerkID, clerk) = try await f.newUser("clerk_\(UUID().uuidString.prefix(6))", role: .merchant)
        let (residentUser, _) = try await f.newUser("not_clerk_\(UUID().uuidString.prefix(6))", role: .resident, room: "341")
        #expect(
            await rpcCode {
                try await f.shop.addMerchantStaff(
                    .with {
                        $0.requestID = UUID().uuidString; $0.userID = residentUser
                    }, metadata: f.merchant)
            } == .failedPrecondition)
        let added = try await f.shop.addMerchantStaff(
            .with {
                $0.requestID = UUID().uuidString; $0.userID = clerkID
            }, metadata: f.merchant)
        #expect(added.userID == clerkID && !added.owner && added.merchantID == f.merchantID)
        let staff = try await f.shop.listMerchantStaff(.init(), metadata: clerk)
        #expect(staff.staff.map(\.owner) == [true, false])
        // The clerk adjusts the shop's stock and ships its orders, but manages no staff.
        let sku = try await f.shop.adjustStock(
            .with {
                $0.requestID = UUID().uuidString; $0.skuID = f.goods.skus[0].id; $0.delta = 5
            }, metadata: clerk)
        #expect(sku.stock == 55)
        #expect(
            await rpcCode {
                try await f.shop.removeMerchantStaff(
                    .with {
                        $0.requestID = UUID().uuidString; $0.userID = clerkID
                    }, metadata: clerk)
            } == .permissionDenied)
        // Another shop's owner cannot take the clerk.
        let other = try await CommerceFixture.make(try await TestServer.shared.value)
        #expect(
            await rpcCode {
                try await other.shop.addMerchantStaff(
                    .with {
                        $0.requestID = UUID().uuidString; $0.userID = clerkID
                    }, metadata: other.merchant)
            } == .notFound)
        _ = try await f.shop.removeMerchantStaff(
            .with {
                $0.requestID = UUID().uuidString; $0.userID = clerkID
            }, metadata: f.merchant)
        #expect(
            await rpcCode {
                try await f.shop.adjustStock(
                    .with {
                        $0.requestID = UUID().uuidString; $0.skuID = f.goods.skus[0].id; $0.delta = 1
                    }, metadata: clerk)
            } == .permissionDenied)
    }
}
