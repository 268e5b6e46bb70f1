import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Testing

extension BillingTests.Books {
    /// A new fee item of the community, `configure`d from a monthly fixed item.
    func item(_ name: String, _ configure: (inout Linli_Billing_V1_CreateFeeItemRequest) -> Void) async throws -> String {
        var request = Linli_Billing_V1_CreateFeeItemRequest()
        request.requestID = UUID().uuidString
        request.communityID = demo.community.description
        request.name = name
        request.kind = .monthly
        request.rule = .fixed
        configure(&request)
        return try await billing.createFeeItem(request, metadata: manager).feeItem.id
    }

    func bind(_ item: String, rooms: [String] = [], spaces: [String] = [], from: String, amount: Int64 = 0) async throws -> Int32 {
        var request = Linli_Billing_V1_BindFeeItemRequest()
        request.requestID = UUID().uuidString
        request.feeItemID = item
        request.roomIds = rooms
        request.parkingSpaceIds = spaces
        request.startsOn = from
        request.amountFen = amount
        return try await billing.bindFeeItem(request, metadata: manager).bound
    }

    func pay(
        _ room: Int, _ tenders: [Linli_Billing_V1_MethodAmount], bills: [String] = [],
        allocation: Linli_Billing_V1_AllocationOrder = .unspecified
    ) async throws -> Linli_Billing_V1_PayResponse {
        var request = Linli_Billing_V1_PayRequest()
        request.requestID = UUID().uuidString
        request.roomID = rooms[room]
        request.billIds = bills
        request.methods = tenders
        request.allocation = allocation
        return try await billing.pay(request, metadata: cashier)
    }

    func topUp(_ room: Int, _ fen: Int64, _ type: Linli_Billing_V1_PrepaidType) async throws -> Int64 {
        var request = Linli_Billing_V1_TopUpPrepaidRequest()
        request.requestID = UUID().uuidString
        request.roomID = rooms[room]
        request.method = .cash
        request.amountFen = fen
        request.prepaidType = type
        return try await billing.topUpPrepaid(request, metadata: cashier).balanceFen
    }

    func offset() async throws -> Linli_Billing_V1_RunPrepaidOffsetResponse {
        try await billing.runPrepaidOffset(.with { $0.requestID = UUID().uuidString }, metadata: manager)
    }

    /// A resident of the community living in `rooms` (index, move-in day) as owner, linked to an app `user` when given.
    func resident(
        _ name: String, phone: String = "", user: String = "",
        rooms moves: [(room: Int, moveIn: String)]
    ) async throws -> Linli_Property_V1_Resident {
        let base = BaseDataClient(wrapping: server.client)
        var register = Linli_Property_V1_RegisterResidentRequest()
        register.requestID = UUID().uuidString
        register.communityID = demo.community.description
        register.name = name
        register.phone = phone
        register.userID = user
        register.roomID = rooms[moves[0].room]
        register.relation = .owner
        register.moveIn = moves[0].moveIn
        var resident = try await base.registerResident(register, metadata: manager).resident
        for (room, day) in moves.dropFirst() {
            var move = Linli_Property_V1_MoveInRequest()
            move.requestID = UUID().uuidString
            move.residentID = resident.id
            move.roomID = rooms[room]
            move.relation = .owner
            move.moveIn = day
            resident = try await base.moveIn(move, metadata: manager).resident
        }
        return resident
    }

    func bill(_ room: Int, _ itemID: String, _ periodStart: String) async throws -> Linli_Billing_V1_Bill {
        try #require(try await bills(room).bills.first { $0.feeItemID == itemID && $0.periodStart == periodStart })
    }
}

func tender(_ method: Linli_Billing_V1_PaymentMethod, _ fen: Int64, _ type: Linli_Billing_V1_PrepaidType = .unspecified)
    -> Linli_Billing_V1_MethodAmount
{
    .with {
        $0.method = method; $0.amountFen = fen; $0.prepaidType = type
    }
}

@Suite("Billing rules: periods, late fees, allocation, typed prepaid, refunds and invoices")
struct BillingRulesTests {
    @Test("quarterly, yearly, one-time and non-calendar periods, rent rising yearly, tiered water and parking spaces are billed once each")
    func periods() async throws {
        let books = try await BillingTests.Books.open()
        let quarterly = try await books.item("电梯维护费") {
            $0.kind = .quarterly; $0.unitPriceFen = 3_000
        }
        let yearly = try await books.item("公共维修基金") {
            $0.kind = .yearly; $0.rule = .area; $0.unitPriceFen = 10
        }
        let cycle = try await books.item("保洁费") {
            $0.cycleDay = 15; $0.unitPriceFen = 3_100
        }
        let once = try await books.item("装修垃圾清运费") {
            $0.kind = .oneTime; $0.unitPriceFen = 50_000; $0.dueDay = 3
        }
        let rent = try await books.item("商铺租金") {
            $0.rule = .rent; $0.yearlyIncreaseBp = 500
        }
        let water = try await books.item("水费") {
            $0.rule = .metered
            $0.meterKind = .water
            $0.tiers = [
                .with {
                    $0.upToCenti = 1_000; $0.unitPriceFen = 300
                },
                .with {
                    $0.upToCenti = 2_000; $0.unitPriceFen = 450
                },
                .with { $0.unitPriceFen = 600 },
            ]
        }
        #expect(try await books.bind(quarterly, rooms: [books.rooms[0]], from: "2026-02-15") == 1)
        #expect(try await books.bind(yearly, rooms: [books.rooms[1]], from: "2026-01-01") == 1)
        #expect(try await books.bind(cycle, rooms: [books.rooms[2]], from: "2026-01-20") == 1)
        #expect(try await books.bind(once, rooms: [books.rooms[0]], from: "2026-03-05") == 1)
        #expect(try await books.bind(rent, rooms: [books.rooms[1]], from: "2025-06-01", amount: 300_000) == 1)
        #expect(try await books.bind(water, rooms: [books.rooms[0]], from: "2026-01-01") == 1)
        #expect(await rpcError { try await books.bind(rent, rooms: [books.rooms[0]], from: "2026-01-01") }?.message.hasPrefix("amount_fen:") == true)
        #expect(
            await rpcError {
                try await books.item("错误") {
                    $0.rule = .area; $0.unitPriceFen = 1; $0.tiers = [.with { $0.unitPriceFen = 1 }]
                }
            }?
            .message.hasPrefix("tiers:") == true)
        #expect(
            await rpcError {
                try await books.item("错误") {
                    $0.rule = .rent; $0.unitPriceFen = 100
                }
            }?.message.hasPrefix("unit_price_fen:") == true)

        // A parking space billed to its room.
        let base = BaseDataClient(wrapping: books.server.client)
        var space = Linli_Property_V1_CreateParkingSpaceRequest()
        space.requestID = UUID().uuidString
        space.communityID = books.demo.community.description
        space.code = "B1-023"
        space.kind = .rented
        space.roomID = books.rooms[2]
        let spaceID = try await base.createParkingSpace(space, metadata: books.manager).space.id
        let parking = try await books.item("车位管理费") {
            $0.unitPriceFen = 15_000; $0.category = .parking
        }
        #expect(try await books.bind(parking, spaces: [spaceID], from: "2026-01-01") == 1)
        #expect(await rpcCode { try await books.bind(parking, spaces: [spaceID], from: "2026-01-05") } == .alreadyExists)

        // Water: 25 m³ in January = 10 × 3.00 + 10 × 4.50 + 5 × 6.00 = 105.00 元.
        let meters = try await books.billing.recordMeterReading(
            .with {
                $0.requestID = UUID().uuidString; $0.roomID = books.rooms[0]; $0.kind = .water; $0.readOn = "2025-12-31"; $0.valueCenti = 10_000
            }, metadata: books.manager)
        #expect(meters.reading.usageCenti == 0)
        _ = try await books.billing.recordMeterReading(
            .with {
                $0.requestID = UUID().uuidString; $0.roomID = books.rooms[0]; $0.kind = .water; $0.readOn = "2026-01-31"; $0.valueCenti = 12_500
            }, metadata: books.manager)

        let january = try await books.generate("2026-01")
        #expect(try await books.generate("2026-01").created == 0)
        let quarter = try await books.bill(0, quarterly, "2026-01-01")
        // 45 of the quarter's 90 days: 3,000 × 45 / 90.
        #expect(quarter.periodEnd == "2026-03-31" && quarter.billedDays == 45 && quarter.periodDays == 90 && quarter.amountFen == 1_500)
        // 120.05 m² × 0.10 元 × 12 months.
        let year = try await books.bill(1, yearly, "2026-01-01")
        #expect(year.periodEnd == "2026-12-31" && year.periodDays == 365 && year.amountFen == 14_406)
        // The 15th to the 14th: 26 of 31 days from the 20th.
        let cleaning = try await books.bill(2, cycle, "2026-01-15")
        #expect(cleaning.periodEnd == "2026-02-14" && cleaning.billedDays == 26 && cleaning.amountFen == 2_600 && cleaning.dueOn == "2026-01-15")
        #expect(try await books.bill(1, rent, "2026-01-01").amountFen == 300_000)
        #expect(try await books.bill(0, water, "2026-01-01").amountFen == 10_500)
        let parked = try await books.bill(2, parking, "2026-01-01")
        #expect(parked.parkingSpaceID == spaceID && parked.amountFen == 15_000)
        #expect(january.created == 4 + 6)

        let february = try await books.generate("2026-02")
        #expect(try await books.bills(0).bills.filter { $0.feeItemID == quarterly }.count == 1)
        #expect(try await books.bills(1).bills.filter { $0.feeItemID == yearly }.count == 1 && february.created > 0)
        _ = try await books.generate("2026-03")
        let removal = try await books.bill(0, once, "2026-03-05")
        #expect(removal.periodEnd == "2026-03-05" && removal.amountFen == 50_000 && removal.dueOn == "2026-03-07")
        _ = try await books.generate("2026-04")
        #expect(try await books.bills(0).bills.filter { $0.feeItemID == once }.count == 1)
        #expect(try await books.bill(0, quarterly, "2026-04-01").amountFen == 3_000)
        // The rent rises 5% on the binding's anniversary, June 1st.
        _ = try await books.generate("2026-05")
        _ = try await books.generate("2026-06")
        #expect(try await books.bill(1, rent, "2026-05-01").amountFen == 300_000)
        #expect(try await books.bill(1, rent, "2026-06-01").amountFen == 315_000)
        #expect(try await books.check().balanced)
    }

    @Test("late fees accrue after the grace days, are charged and settled first when paid or offset, and stop with the principal")
    func lateFees() async throws {
        let books = try await BillingTests.Books.open()
        let fee = try await books.item("停车费") {
            $0.unitPriceFen = 10_000; $0.lateFeePer10KDaily = 5; $0.graceDays = 10
        }
        #expect(try await books.bind(fee, rooms: [books.rooms[1], books.rooms[2]], from: "2026-01-01") == 2)
        _ = try await books.generate("2026-01")
        // Due January 1st, ten days' grace: late from the 11th, 万分之五 a day on 100 元, at most 100 元.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = BusinessDay.demo.timeZone
        let graceEnds = try #require(calendar.date(from: DateComponents(year: 2026, month: 1, day: 11)))
        let days = Int64(try #require(calendar.dateComponents([.day], from: graceEnds, to: BusinessDay.demo.startOfToday()).day))
        let expected = min(10_000, (10_000 * 5 * days + 5_000) / 10_000)
        let bill = try await books.bill(1, fee, "2026-01-01")
        #expect(bill.lateFeeDueFen == expected && bill.totalDueFen == 10_000 + expected && bill.openFen == 10_000)

        // A partial payment: the late fee is charged and paid first, the rest goes to the principal.
        let partial = try await books.pay(1, [tender(.cash, 5_000)], bills: [bill.id])
        #expect(partial.lateFeeFen == expected && partial.settledFen == 5_000)
        let after = try await books.bill(1, fee, "2026-01-01")
        #expect(after.lateFeeChargedFen == expected && after.lateFeeDueFen == 0 && after.openFen == 10_000 + expected - 5_000)
        let rest = try await books.pay(1, [tender(.wechat, after.totalDueFen)], bills: [bill.id])
        let settled = try await books.bill(1, fee, "2026-01-01")
        #expect(rest.lateFeeFen == 0 && settled.totalDueFen == 0)
        var get = Linli_Billing_V1_GetReceiptRequest()
        get.paymentID = partial.paymentID
        #expect(try await books.billing.getReceipt(get, metadata: books.cashier).receipt.lateFeeFen == expected)

        // The offset pays the late fee too.
        #expect(try await books.topUp(2, 50_000, .general) == 50_000)
        let offset = try await books.offset()
        let offsetBill = try await books.bill(2, fee, "2026-01-01")
        #expect(offsetBill.lateFeeChargedFen == expected && offsetBill.totalDueFen == 0)
        #expect(offset.offsetFen >= 10_000 + expected)
        #expect(try await books.check().balanced)
    }

    @Test("a manager forgives a bill's accrued late fee or writes part of it off, with a reason; the books and summaries show it")
    func writeOffs() async throws {
        let books = try await BillingTests.Books.open()
        let fee = try await books.item("停车费") {
            $0.unitPriceFen = 10_000; $0.lateFeePer10KDaily = 5; $0.graceDays = 10
        }
        #expect(try await books.bind(fee, rooms: [books.rooms[1]], from: "2026-01-01") == 1)
        _ = try await books.generate("2026-01")
        let bill = try await books.bill(1, fee, "2026-01-01")
        let late = bill.lateFeeDueFen
        #expect(late > 0)
        func writeOff(_ fen: Int64, waive: Bool, as who: Metadata? = nil) async throws -> Linli_Billing_V1_WriteOffBillResponse {
            var request = Linli_Billing_V1_WriteOffBillRequest()
            request.requestID = UUID().uuidString
            request.billID = bill.id
            request.amountFen = fen
            request.waiveLateFee = waive
            request.reason = "空置房减免"
            return try await books.billing.writeOffBill(request, metadata: who ?? books.manager)
        }
        #expect(await rpcCode { try await writeOff(0, waive: true, as: books.cashier) } == .permissionDenied)
        #expect(await rpcError { try await writeOff(0, waive: false) }?.message.hasPrefix("amount_fen:") == true)
        let forgiven = try await writeOff(0, waive: true)
        #expect(
            forgiven.writtenOffFen == late && forgiven.bill.lateFeeDueFen == 0 && forgiven.bill.lateFeeChargedFen == late
                && forgiven.bill.waivedFen == late && forgiven.bill.openFen == 10_000)
        #expect(await rpcCode { try await writeOff(0, waive: true) } == .failedPrecondition)
        let part = try await writeOff(2_500, waive: false)
        #expect(part.bill.openFen == 7_500 && part.bill.waivedFen == late + 2_500)
        #expect(await rpcError { try await writeOff(8_000, waive: false) }?.message.hasPrefix("amount_fen:") == true)
        var summary = Linli_Billing_V1_GetBillingSummaryRequest()
        summary.communityID = books.demo.community.description
        summary.period = String(BusinessDay.demo.today().prefix(4))
        let figures = try await books.billing.getBillingSummary(summary, metadata: books.manager)
        #expect(figures.waivedFen == late + 2_500 && figures.lateFeeFen == late)
        #expect(try await books.check().balanced)
    }

    @Test("allocation follows the community's setting (item priority) or the payment's order, and offsets follow the setting too")
    func allocation() async throws {
        let books = try await BillingTests.Books.open()
        let parking = try await books.item("车位费") {
            $0.unitPriceFen = 500; $0.priority = 10
        }
        #expect(try await books.bind(parking, rooms: [books.rooms[0]], from: "2026-01-01") == 1)
        _ = try await books.generate("2026-01")
        _ = try await books.generate("2026-02")
        var settings = Linli_Billing_V1_SetBillingSettingsRequest()
        settings.requestID = UUID().uuidString
        settings.communityID = books.demo.community.description
        settings.allocation = .itemPriority
        #expect(try await books.billing.setBillingSettings(settings, metadata: books.manager).allocation == .itemPriority)
        #expect(await rpcCode { try await books.billing.setBillingSettings(settings, metadata: books.cashier) } == .permissionDenied)
        let first = try await books.pay(0, [tender(.cash, 1_000)])
        let paid = Set(first.allocations.map(\.billID))
        let januaryParking = try await books.bill(0, parking, "2026-01-01").id
        let februaryParking = try await books.bill(0, parking, "2026-02-01").id
        #expect(paid == [januaryParking, februaryParking])

        let januaryGarbage = try await books.bill(0, books.garbageFee, "2026-01-01").id
        let februaryGarbage = try await books.bill(0, books.garbageFee, "2026-02-01").id
        let listed = try await books.pay(0, [tender(.cash, 1_000)], bills: [februaryGarbage, januaryGarbage], allocation: .asListed)
        #expect(listed.allocations.map(\.billID) == [februaryGarbage])
        #expect(await rpcError { try await books.pay(0, [tender(.cash, 1_000)], allocation: .asListed) }?.message.hasPrefix("allocation:") == true)

        // The offset, by priority: March's parking fee before January's property fee.
        _ = try await books.generate("2026-03")
        #expect(try await books.topUp(0, 500, .general) == 500)
        #expect(try await books.offset().offsetFen == 500)
        #expect(try await books.bill(0, parking, "2026-03-01").totalDueFen == 0)
        #expect(try await books.bill(0, books.propertyFee, "2026-01-01").openFen == 21_033)
        #expect(try await books.check().balanced)
    }

    @Test("typed prepaid accounts pay only their category, typed before general in offsets; a payment from one refuses other bills")
    func typedPrepaid() async throws {
        let books = try await BillingTests.Books.open()
        let energy = try await books.item("公共能耗分摊") {
            $0.unitPriceFen = 800; $0.category = .utilities
        }
        #expect(try await books.bind(energy, rooms: [books.rooms[0]], from: "2026-01-01") == 1)
        _ = try await books.generate("2026-01")
        #expect(try await books.topUp(0, 5_000, .utilities) == 5_000)
        #expect(try await books.topUp(0, 21_000, .property) == 21_000)
        #expect(try await books.topUp(0, 2_000, .general) == 2_000)
        _ = try await books.offset()
        // Utilities pays the 800 energy bill; property 21,000 of the property fee; general the last
        // 33 of it and the garbage fee.
        var balance = Linli_Billing_V1_GetPrepaidBalanceRequest()
        balance.roomID = books.rooms[0]
        let accounts = try await books.billing.getPrepaidBalance(balance, metadata: books.cashier).accounts
        #expect(accounts.map(\.prepaidType) == [.general, .property, .utilities])
        #expect(accounts.map(\.balanceFen) == [2_000 - 33 - 1_000, 0, 4_200])
        #expect(try await books.bills(0, openOnly: true).bills.isEmpty)

        _ = try await books.generate("2026-02")
        let property = try await books.bill(0, books.propertyFee, "2026-02-01")
        #expect(
            await rpcError { try await books.pay(0, [tender(.prepaid, 1_000, .utilities)], bills: [property.id]) }?.message.hasPrefix("methods:")
                == true)
        let energyBill = try await books.bill(0, energy, "2026-02-01")
        #expect(try await books.pay(0, [tender(.prepaid, 800, .utilities)], bills: [energyBill.id]).settledFen == 800)
        #expect(try await books.check().balanced)
    }

    @Test("a resident's own prepaid account pays the rooms they live in, after the rooms' own accounts, and no other room")
    func residentPrepaid() async throws {
        let books = try await BillingTests.Books.open()
        _ = try await books.generate("2026-01")
        let resident = try await books.resident("李四", phone: "13800001111", rooms: [(0, "2025-01-01"), (1, "2025-06-01")]).id

        var topUp = Linli_Billing_V1_TopUpPrepaidRequest()
        topUp.requestID = UUID().uuidString
        topUp.residentID = resident
        topUp.method = .wechat
        topUp.amountFen = 60_000
        #expect(try await books.billing.topUpPrepaid(topUp, metadata: books.cashier).balanceFen == 60_000)
        topUp.roomID = books.rooms[0]
        topUp.requestID = UUID().uuidString
        #expect(await rpcError { try await books.billing.topUpPrepaid(topUp, metadata: books.cashier) }?.message.hasPrefix("resident_id:") == true)
        // Room 101's own account pays first; the resident's covers the rest of 101 and all of 102.
        #expect(try await books.topUp(0, 2_033, .general) == 2_033)
        let offset = try await books.offset()
        #expect(offset.offsetFen == 22_033 + 28_212)
        var balance = Linli_Billing_V1_GetPrepaidBalanceRequest()
        balance.residentID = resident
        #expect(try await books.billing.getPrepaidBalance(balance, metadata: books.cashier).balanceFen == 60_000 - 20_000 - 28_212)
        #expect(try await books.bills(2, openOnly: true).openFen == 7_277)  // 103 is not theirs

        // Paying with it: only for a room they live in.
        _ = try await books.generate("2026-02")
        let february = try await books.bill(1, books.propertyFee, "2026-02-01")
        let paid = try await books.pay(
            1,
            [
                .with {
                    $0.method = .prepaid; $0.amountFen = 10_000; $0.residentID = resident
                }
            ], bills: [february.id])
        #expect(paid.settledFen == 10_000)
        #expect(
            await rpcCode {
                try await books.pay(
                    2,
                    [
                        .with {
                            $0.method = .prepaid; $0.amountFen = 100; $0.residentID = resident
                        }
                    ])
            } == .failedPrecondition)
        #expect(try await books.check().balanced)
    }

    @Test("refunds: a cashier requests, another manager approves; money goes back through the methods that paid, newest first; waive writes off")
    func refunds() async throws {
        let books = try await BillingTests.Books.open()
        _ = try await books.generate("2026-01")
        let payment = try await books.pay(0, [tender(.wechat, 20_000), tender(.cash, 2_033)])
        let property = try await books.bill(0, books.propertyFee, "2026-01-01")
        let garbage = try await books.bill(0, books.garbageFee, "2026-01-01")

        func request(_ lines: [(String, Int64)], waive: Bool = false, as who: Metadata? = nil) async throws -> Linli_Billing_V1_Refund {
            var request = Linli_Billing_V1_RequestRefundRequest()
            request.requestID = UUID().uuidString
            request.paymentID = payment.paymentID
            request.lines = lines.map { bill, fen in
                .with {
                    $0.billID = bill; $0.amountFen = fen
                }
            }
            request.reason = "多收"
            request.waive = waive
            return try await books.billing.requestRefund(request, metadata: who ?? books.cashier).refund
        }
        func decide(_ id: String, approve: Bool, note: String = "", as who: Metadata? = nil) async throws -> Linli_Billing_V1_Refund {
            var request = Linli_Billing_V1_DecideRefundRequest()
            request.requestID = UUID().uuidString
            request.refundID = id
            request.note = note
            let metadata = who ?? books.manager
            return approve
                ? try await books.billing.approveRefund(request, metadata: metadata).refund
                : try await books.billing.rejectRefund(request, metadata: metadata).refund
        }

        #expect(await rpcCode { try await request([(property.id, 21_034)]) } == .failedPrecondition)
        let first = try await request([(property.id, 5_000)])
        #expect(first.state == .requested && first.amountFen == 5_000)
        #expect(await rpcCode { try await request([(garbage.id, 100)]) } == .failedPrecondition)  // one waiting at a time
        #expect(await rpcCode { try await decide(first.id, approve: true, as: books.cashier) } == .permissionDenied)
        let approved = try await decide(first.id, approve: true)
        // WeChat paid the garbage fee (垃 sorts first) and 19,000 of the property fee, cash the
        // last 2,033 of it: the cash goes back first.
        #expect(
            approved.state == .approved && approved.payouts.map(\.method) == [.cash, .wechat]
                && approved.payouts.map(\.amountFen) == [2_033, 2_967])
        #expect(try await books.bill(0, books.propertyFee, "2026-01-01").openFen == 5_000)
        #expect(await rpcCode { try await decide(first.id, approve: false, note: "晚了") } == .failedPrecondition)

        // Someone cannot approve their own request; a rejection needs a note and is recorded.
        let own = try await request([(garbage.id, 1_000)], waive: true, as: books.manager)
        #expect(await rpcCode { try await decide(own.id, approve: true) } == .permissionDenied)
        #expect(await rpcError { try await decide(own.id, approve: false) }?.message.hasPrefix("note:") == true)
        let rejected = try await decide(own.id, approve: false, note: "请走减免流程")
        #expect(rejected.state == .rejected && rejected.decisionNote == "请走减免流程")

        // Waived: the garbage fee was not owed; the money goes back and the bill stays closed.
        let waived = try await request([(garbage.id, 1_000)], waive: true)
        _ = try await decide(waived.id, approve: true)
        let closed = try await books.bill(0, books.garbageFee, "2026-01-01")
        #expect(closed.openFen == 0 && closed.waivedFen == 1_000 && closed.settledFen == 0)

        var void = Linli_Billing_V1_VoidReceiptRequest()
        void.requestID = UUID().uuidString
        void.paymentID = payment.paymentID
        void.reason = "作废"
        #expect(await rpcCode { try await books.billing.voidReceipt(void, metadata: books.manager) } == .failedPrecondition)
        var get = Linli_Billing_V1_GetReceiptRequest()
        get.paymentID = payment.paymentID
        let receipt = try await books.billing.getReceipt(get, metadata: books.cashier).receipt
        #expect(receipt.refundedFen == 6_000 && receipt.lines.filter { $0.kind == "refund" }.map(\.amountFen).reduce(0, +) == -6_000)

        var list = Linli_Billing_V1_ListRefundsRequest()
        list.communityID = books.demo.community.description
        #expect(try await books.billing.listRefunds(list, metadata: books.cashier).refunds.count == 3)
        list.state = .approved
        #expect(try await books.billing.listRefunds(list, metadata: books.cashier).refunds.map(\.id).sorted() == [first.id, waived.id].sorted())

        var close = Linli_Billing_V1_GetDailyCloseRequest()
        close.communityID = books.demo.community.description
        close.day = BusinessDay.demo.today()
        let day = try await books.billing.getDailyClose(close, metadata: books.cashier)
        let cashOut: Int64 = day.rows.filter { $0.method == "cash" }.map(\.paidOutFen).reduce(0, +)
        #expect(cashOut == 2_033)
        let wechatOut: Int64 = day.rows.filter { $0.method == "wechat" }.map(\.paidOutFen).reduce(0, +)
        #expect(wechatOut == 3_967)
        #expect(day.netFen == 22_033 - 6_000)
        var summary = Linli_Billing_V1_GetBillingSummaryRequest()
        summary.communityID = books.demo.community.description
        summary.period = String(BusinessDay.demo.today().prefix(4))
        let figures = try await books.billing.getBillingSummary(summary, metadata: books.manager)
        #expect(figures.refundedFen == 6_000 && figures.waivedFen == 1_000)
        #expect(try await books.check().balanced)
    }

    @Test("one payment splits into several invoices numbered without gaps; a bill is invoiced once; voiding the receipt voids them")
    func invoices() async throws {
        let books = try await BillingTests.Books.open()
        _ = try await books.generate("2026-01")
        let payment = try await books.pay(0, [tender(.cash, 22_033)])
        let property = try await books.bill(0, books.propertyFee, "2026-01-01")
        let garbage = try await books.bill(0, books.garbageFee, "2026-01-01")
        func issue(_ invoices: [(String, String, [String])]) async throws -> [Linli_Billing_V1_Invoice] {
            var request = Linli_Billing_V1_IssueInvoicesRequest()
            request.requestID = UUID().uuidString
            request.paymentID = payment.paymentID
            request.invoices = invoices.map { title, taxNo, bills in
                .with {
                    $0.title = title; $0.taxNo = taxNo; $0.billIds = bills
                }
            }
            return try await books.billing.issueInvoices(request, metadata: books.cashier).invoices
        }
        #expect(await rpcError { try await issue([("某公司", "12345", [property.id])]) }?.message.hasPrefix("invoices[0].tax_no:") == true)
        let issued = try await issue([("张三", "", [property.id]), ("上海某科技有限公司", "91310000ma1fl8xq3t", [garbage.id])])
        let year = String(BusinessDay.demo.today().prefix(4))
        #expect(issued.map(\.invoiceNo) == ["FP\(year)-000001", "FP\(year)-000002"] && issued.map(\.amountFen) == [21_033, 1_000])
        #expect(issued[1].taxNo == "91310000MA1FL8XQ3T")
        #expect(await rpcCode { try await issue([("张三", "", [property.id])]) } == .alreadyExists)

        var void = Linli_Billing_V1_VoidReceiptRequest()
        void.requestID = UUID().uuidString
        void.paymentID = payment.paymentID
        void.reason = "收错房间"
        _ = try await books.billing.voidReceipt(void, metadata: books.manager)
        var list = Linli_Billing_V1_ListInvoicesRequest()
        list.paymentID = payment.paymentID
        let after = try await books.billing.listInvoices(list, metadata: books.cashier).invoices
        #expect(after.count == 2 && after.allSatisfy { $0.void && $0.voidReason == "receipt voided" })
    }

    @Test("a resident sees only the rooms they live in now: bills, what is due, prepaid balances and their receipts")
    func residentView() async throws {
        let books = try await BillingTests.Books.open()
        let moved = try await books.resident(
            "住户1", user: try #require(books.demo.users["resident1"]).description,
            rooms: [(0, "2025-01-01"), (1, "2025-01-01")])
        let resident = moved.id
        var out = Linli_Property_V1_MoveOutRequest()
        out.requestID = UUID().uuidString
        out.residencyID = try #require(moved.residencies.first { $0.room.id == books.rooms[1] }).id
        out.moveOut = "2026-02-01"
        _ = try await BaseDataClient(wrapping: books.server.client).moveOut(out, metadata: books.manager)

        _ = try await books.generate("2026-01")
        let january = try await books.bill(0, books.propertyFee, "2026-01-01")
        let mine = try await books.pay(0, [(.wechat, 21_033)], bills: [january.id])
        let theirs = try await books.pay(2, [(.cash, 7_277)])
        var topUp = Linli_Billing_V1_TopUpPrepaidRequest()
        topUp.requestID = UUID().uuidString
        topUp.residentID = resident
        topUp.method = .cash
        topUp.amountFen = 500
        _ = try await books.billing.topUpPrepaid(topUp, metadata: books.cashier)

        let resident1 = try await books.server.login(books.demo, "resident1")
        var ask = Linli_Billing_V1_GetMyBillingRequest()
        let all = try await books.billing.getMyBilling(ask, metadata: resident1)
        // 1栋102 was theirs until February: no longer shown.
        #expect(all.rooms.map(\.roomID) == [books.rooms[0]])
        let room = try #require(all.rooms.first)
        #expect(room.roomLabel == "1栋101")
        #expect(room.bills.map(\.amountFen).sorted() == [1_000, 21_033])
        #expect(room.totalDueFen == 1_000)
        #expect(room.receipts.map(\.paymentID) == [mine.paymentID])
        #expect(room.receipts.first?.totalFen == 21_033)
        #expect(all.ownPrepaid.map(\.residentID) == [resident])
        #expect(all.ownPrepaid.first?.accounts.map(\.balanceFen) == [500])
        ask.openOnly = true
        #expect(try await books.billing.getMyBilling(ask, metadata: resident1).rooms.first?.bills.map(\.amountFen) == [1_000])

        var receipt = Linli_Billing_V1_GetReceiptRequest()
        receipt.paymentID = mine.paymentID
        let paper = try await books.billing.getMyReceipt(receipt, metadata: resident1).receipt
        #expect(paper.receiptNo == mine.receiptNo && paper.settledFen == 21_033)
        receipt.paymentID = theirs.paymentID
        #expect(await rpcCode { try await books.billing.getMyReceipt(receipt, metadata: resident1) } == .notFound)
        receipt.paymentID = "not-a-payment"
        #expect(await rpcError { try await books.billing.getMyReceipt(receipt, metadata: resident1) }?.message.hasPrefix("payment_id") == true)

        // Staff use the staff RPCs; residents cannot read other rooms through them.
        #expect(await rpcCode { try await books.billing.getMyBilling(ask, metadata: books.cashier) } == .permissionDenied)
        var list = Linli_Billing_V1_ListBillsRequest()
        list.roomID = books.rooms[2]
        #expect(await rpcCode { try await books.billing.listBills(list, metadata: resident1) } == .permissionDenied)
    }
}
