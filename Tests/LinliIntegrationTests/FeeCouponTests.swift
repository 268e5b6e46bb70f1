import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCommerce
import LinliCore
import Testing

/// Coupons the property issues for its fees and for parking: spent at the cashier's Pay and on a
/// stay's PaySession, on the property's coupon cost account, given back by a void.
@Suite("Fee and parking coupons: at the cashier and at the lane", .serialized)
struct FeeCouponTests {
    typealias Coupons = Linli_Commerce_V1_CouponService.Client<HTTP2ClientTransport.Posix>

    static func template(
        _ community: String, _ scope: Linli_Commerce_V1_CouponScope, offFen: Int64, thresholdFen: Int64 = 0, perPerson: Int32 = 1
    ) -> Linli_Commerce_V1_CreateCouponTemplateRequest {
        .with {
            $0.requestID = UUID().uuidString
            $0.template = .with {
                $0.communityID = community; $0.name = "物业券"; $0.kind = .amountOff; $0.amountOffFen = offFen; $0.thresholdFen = thresholdFen
                $0.scope = scope; $0.stock = 10; $0.perPerson = perPerson; $0.validDays = 30
                $0.claimUntil = .init(date: Date().addingTimeInterval(86_400))
            }
        }
    }

    static func claim(_ coupons: Coupons, _ template: String, as resident: Metadata) async throws -> Linli_Commerce_V1_Coupon {
        try await coupons.claimCoupon(
            .with {
                $0.requestID = UUID().uuidString; $0.templateID = template
            }, metadata: resident)
    }

    @Test("a coupon's value: amount off, percent off with its cap, the threshold, never more than what is in scope")
    func value() {
        let template = CouponStore.Template(
            id: UUID(), community: CommunityID(UUID()), merchant: nil, name: "物业费九折", kind: .percentOff, amountOffFen: 0, percentOff: 10,
            capFen: 3_000, thresholdFen: 10_000, scope: .propertyFees, scopeIDs: [], stock: 1, claimed: 0, perPerson: 1, claimFrom: Date(),
            claimUntil: Date(), validDays: 1)
        #expect(template.value(on: 9_999) == nil, "below the threshold")
        #expect(template.value(on: 22_033) == 2_203 && template.value(on: 50_000) == 3_000)
        var amount = template
        amount.kind = .amountOff
        amount.amountOffFen = 50_000
        #expect(amount.value(on: 22_033) == 22_033, "never more than the bills")
        #expect(
            template.discount(merchant: UUID(), lines: [(goods: UUID(), category: UUID(), parent: nil, amountFen: 50_000)]) == nil,
            "a fee coupon takes nothing off an order")
    }

    @Test("the cashier takes a resident's 20 元 property coupon on 220.33 元 of fees; the ledger names it; a refund leaves it; a void gives it back")
    func atTheCashier() async throws {
        let books = try await BillingTests.Books.open()
        let server = books.server
        let community = books.demo.community.description
        _ = try await BaseDataClient(wrapping: server.client).registerResident(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = community; $0.name = "业主甲"; $0.roomID = books.rooms[0]
                $0.relation = .owner; $0.userID = books.demo.users["resident1"]?.description ?? ""; $0.moveIn = "2026-01-01"
            }, metadata: books.manager)
        let resident = try await server.login(books.demo, "resident1")
        let coupons = Coupons(wrapping: server.client)
        let fees = try await coupons.createCouponTemplate(
            Self.template(community, .propertyFees, offFen: 2_000, thresholdFen: 10_000, perPerson: 2), metadata: books.manager)
        let parking = try await coupons.createCouponTemplate(Self.template(community, .parking, offFen: 500), metadata: books.manager)
        let badScope = await rpcError {
            var request = Self.template(community, .propertyFees, offFen: 100)
            request.template.scopeIds = [books.propertyFee]
            return try await coupons.createCouponTemplate(request, metadata: books.manager)
        }
        #expect(badScope?.code == .invalidArgument && badScope?.message.contains("template.scope_ids") == true)
        let mine = try await Self.claim(coupons, fees.id, as: resident)
        let forParking = try await Self.claim(coupons, parking.id, as: resident)
        _ = try await books.generate("2026-01")
        let open = try await books.bills(0, openOnly: true).bills.reduce(Int64(0)) { $0 + $1.totalDueFen }
        #expect(open == 21_033 + 1_000)

        func pay(_ room: Int, coupon: String, cash: Int64?) async throws -> Linli_Billing_V1_PayResponse {
            try await books.billing.pay(
                .with {
                    $0.requestID = UUID().uuidString; $0.roomID = books.rooms[room]; $0.couponID = coupon
                    if let cash {
                        $0.methods = [
                            .with {
                                $0.method = .cash; $0.amountFen = cash
                            }
                        ]
                    }
                }, metadata: books.cashier)
        }
        // Wrong uses are refused whole and name the field.
        let wrongScope = await rpcError { try await pay(0, coupon: forParking.id, cash: open) }
        #expect(wrongScope?.code == .failedPrecondition && wrongScope?.message.contains("coupon_id") == true, "\(String(describing: wrongScope))")
        let notHere = await rpcError { try await pay(1, coupon: mine.id, cash: 30_000) }
        #expect(notHere?.code == .failedPrecondition && notHere?.message.contains("does not live") == true, "\(String(describing: notHere))")
        let named = await rpcError {
            try await books.billing.pay(
                .with {
                    $0.requestID = UUID().uuidString; $0.roomID = books.rooms[0]
                    $0.methods = [
                        .with {
                            $0.method = .coupon; $0.amountFen = 100
                        }
                    ]
                }, metadata: books.cashier)
        }
        #expect(named?.code == .invalidArgument && named?.message.contains("methods[0].method") == true)
        #expect(await rpcCode { try await pay(0, coupon: UUID().uuidString, cash: open) } == .notFound)

        let paid = try await pay(0, coupon: mine.id, cash: open - 2_000)
        #expect(paid.couponFen == 2_000 && paid.settledFen == open && paid.totalFen == open && paid.toPrepaidFen == 0)
        let byCoupon: Int64 = paid.allocations.filter { $0.method == .coupon }.map(\.amountFen).reduce(0, +)
        #expect(byCoupon == 2_000)
        #expect(try await books.bills(0, openOnly: true).bills.isEmpty)
        let used = try #require(try await held(coupons, mine.id, community, resident))
        #expect(used.state == .used && used.paymentID == paid.paymentID && used.discountFen == 2_000)
        #expect(await rpcCode { try await pay(0, coupon: mine.id, cash: 100) } == .failedPrecondition, "used once")
        let receipt = try await books.billing.getReceipt(.with { $0.paymentID = paid.paymentID }, metadata: books.cashier).receipt
        let couponLines: Int64 = receipt.lines.filter { $0.method == "coupon" }.map(\.amountFen).reduce(0, +)
        #expect(couponLines == 2_000, "\(receipt.lines)")
        #expect(try await cost(books) == 2_000)
        #expect(try await books.check().balanced)

        // A refund gives back money, never the coupon's part.
        let billing = books.billing
        let refund = try await billing.requestRefund(
            .with {
                $0.requestID = UUID().uuidString; $0.paymentID = paid.paymentID; $0.reason = "多收"
            }, metadata: books.cashier)
        #expect(refund.refund.amountFen == open - 2_000, "\(refund)")
        _ = try await billing.rejectRefund(
            .with {
                $0.requestID = UUID().uuidString; $0.refundID = refund.refund.id; $0.note = "改为作废"
            }, metadata: books.manager)

        // The void reopens the bills and gives the coupon back; it pays them again.
        _ = try await billing.voidReceipt(
            .with {
                $0.requestID = UUID().uuidString; $0.paymentID = paid.paymentID; $0.reason = "收错房间"
            }, metadata: books.manager)
        let back = try #require(try await held(coupons, mine.id, community, resident))
        #expect(back.state == .available && back.paymentID.isEmpty)
        #expect(try await cost(books) == 0)
        let again = try await books.billing.pay(
            .with {
                $0.requestID = UUID().uuidString; $0.roomID = books.rooms[0]; $0.couponID = mine.id
                $0.methods = [
                    .with {
                        $0.method = .wechat; $0.amountFen = open - 2_000
                    }
                ]
            }, metadata: books.cashier)
        let spent = try await cost(books)
        #expect(again.couponFen == 2_000 && again.settledFen == open && spent == 2_000)
        #expect(try await books.check().balanced)
    }

    @Test("a resident's parking coupon takes 5 元 off a stay, another covers a stay whole; someone else's is not theirs")
    func atTheLane() async throws {
        let f = try await ParkingFixture.make(try await TestServer.shared.value)
        let community = f.demo.community.description
        _ = try await makeResident(f.server, f.demo, manager: f.manager, name: "业主乙", number: "901", user: "resident1")
        _ = try await makeResident(f.server, f.demo, manager: f.manager, name: "业主丙", number: "902", user: "resident2")
        let resident = try await f.server.login(f.demo, "resident1")
        let other = try await f.server.login(f.demo, "resident2")
        let coupons = Coupons(wrapping: f.server.client)
        let five = try await coupons.createCouponTemplate(Self.template(community, .parking, offFen: 500), metadata: f.manager)
        let whole = try await coupons.createCouponTemplate(Self.template(community, .parking, offFen: 5_000), metadata: f.manager)
        let mine = try await Self.claim(coupons, five.id, as: resident)
        let theirs = try await Self.claim(coupons, five.id, as: other)
        let free = try await Self.claim(coupons, whole.id, as: resident)

        func pay(_ session: String, _ fen: Int64, coupon: String, as caller: Metadata) async throws -> Linli_Parking_V1_PaySessionResponse {
            try await f.parking.paySession(
                .with {
                    $0.requestID = UUID().uuidString; $0.sessionID = session; $0.amountFen = fen; $0.method = .wechat; $0.couponID = coupon
                }, metadata: caller)
        }
        _ = try await f.read(["沪C·11111"], at: "in")
        try await f.backdate("沪C11111", minutes: 149)
        let quote = try await f.quote("沪C11111", as: resident)
        #expect(quote.dueFen == 1_100)
        #expect(await rpcCode { try await pay(quote.session.id, 600, coupon: theirs.id, as: resident) } == .notFound, "not theirs")
        let stale = await rpcError { try await pay(quote.session.id, 1_100, coupon: mine.id, as: resident) }
        #expect(stale?.code == .failedPrecondition && stale?.message.contains("600 fen is due now") == true, "\(String(describing: stale))")
        let paid = try await pay(quote.session.id, 600, coupon: mine.id, as: resident)
        #expect(paid.payment.amountFen == 600 && paid.payment.couponFen == 500 && paid.quote.dueFen == 0)
        let leave = try await f.read(["沪C11111"], at: "out")
        #expect(leave.count == 1 && leave[0].contains("OPEN paid"), "\(leave)")

        // The booth takes a resident's coupon that covers the whole stay: no money changes hands.
        _ = try await f.read(["沪C·22222"], at: "in")
        try await f.backdate("沪C22222", minutes: 149)
        let second = try await f.quote("沪C22222")
        let covered = try await pay(second.session.id, 0, coupon: free.id, as: f.manager)
        #expect(covered.payment.amountFen == 0 && covered.payment.couponFen == 1_100 && covered.quote.dueFen == 0)
        #expect(await rpcCode { try await f.pay(second.session.id, 0) } == .invalidArgument, "no coupon, no zero")

        let cost = try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            var sums = (cost: Int64(0), all: Int64(1))
            for try await row in try await connection.query(
                """
                SELECT coalesce(sum(debits_fen - credits_fen) FILTER (WHERE subtype = 'coupon_redemption'), 0)::int8,
                       (sum(debits_fen) - sum(credits_fen))::int8
                FROM ledger_accounts
                """, logger: f.server.app.logger
            ).decode((Int64, Int64).self) { sums = (row.0, row.1) }
            return sums
        }
        #expect(cost.cost == 500 + 1_100 && cost.all == 0)
    }

    func held(_ coupons: Coupons, _ id: String, _ community: String, _ resident: Metadata) async throws -> Linli_Commerce_V1_Coupon? {
        let request = Linli_Commerce_V1_ListMyCouponsRequest.with { $0.communityID = community }
        return try await coupons.listMyCoupons(request, metadata: resident).coupons.first { $0.id == id }
    }

    /// What the property's coupon cost account holds.
    func cost(_ books: BillingTests.Books) async throws -> Int64 {
        try await books.server.app.database.tenantTransaction(books.demo.tenant) { connection in
            for try await fen in try await connection.query(
                "SELECT coalesce(sum(debits_fen - credits_fen), 0)::int8 FROM ledger_accounts WHERE subtype = 'coupon_redemption'",
                logger: books.server.app.logger
            ).decode(Int64.self) { return fen }
            return 0
        }
    }
}
