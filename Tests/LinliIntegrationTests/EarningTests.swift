import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliPoints
import LinliServer
import LinliTenancy
import PostgresNIO
import Testing

@Suite("Points earning: rules in force, the fee paid in Pay, the budget, reports", .serialized)
struct EarningTests {
    @Test("a rule's arithmetic: per fen rounded down, up or to nearest, the threshold, the cap, the window")
    func arithmetic() {
        var rule = PointsEarning.Rule(
            id: UUID(), community: CommunityID(UUID()), kind: .feePaid, name: "缴费积分", points: 1, perFen: 100, rounding: .down, minFen: 1_000,
            capPoints: 500, startsAt: Date(timeIntervalSince1970: 1_000), endsAt: Date(timeIntervalSince1970: 2_000), enabled: true,
            lifetimeDays: 0)
        #expect(rule.earns(22_033) == 220)
        rule.rounding = .up
        #expect(rule.earns(22_033) == 221 && rule.earns(22_000) == 220)
        rule.rounding = .nearest
        #expect(rule.earns(22_049) == 220 && rule.earns(22_050) == 221)
        #expect(rule.earns(999) == 0, "below the threshold")
        #expect(rule.earns(1_000_000) == 500, "capped")
        rule.capPoints = 0
        rule.points = 1_000_000
        rule.perFen = 1
        #expect(rule.earns(Int64.max) == PointsEarning.maxPerEvent, "overflow is capped, never a trap")
        #expect(rule.holds(at: Date(timeIntervalSince1970: 1_500)) && !rule.holds(at: Date(timeIntervalSince1970: 2_000)))
        rule.kind = .activity
        rule.points = 20
        #expect(rule.earns(0) == 0, "activities still meet the threshold")
        rule.minFen = 0
        #expect(rule.earns(0) == 20)
    }

    @Test("Pay settles bills, and the fee-paid rule grants the resident who lives there, once")
    func feePaidInPay() async throws {
        let books = try await BillingTests.Books.open()
        let server = books.server
        let base = BaseDataClient(wrapping: server.client)
        let resident = try await base.registerResident(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = books.demo.community.description; $0.name = "业主甲"
                $0.roomID = books.rooms[0]; $0.relation = .owner; $0.userID = books.demo.users["resident1"]?.description ?? ""
                $0.moveIn = "2026-01-01"
            }, metadata: books.manager
        ).resident.id
        let points = PointsClient(wrapping: server.client)
        _ = try await points.fundPointsBudget(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = books.demo.community.description; $0.points = 100_000
            },
            metadata: books.manager)
        let rule = try await points.saveEarningRule(
            .with {
                $0.requestID = UUID().uuidString
                $0.rule = .with {
                    $0.communityID = books.demo.community.description; $0.kind = .feePaid; $0.name = "缴费 1 元 1 分"; $0.points = 1
                    $0.perFen = 100; $0.rounding = .down; $0.enabled = true
                }
            }, metadata: books.manager)
        #expect(rule.kind == .feePaid && rule.rounding == .down)
        let bad = await rpcError {
            try await points.saveEarningRule(
                .with {
                    $0.requestID = UUID().uuidString
                    $0.rule = .with {
                        $0.communityID = books.demo.community.description; $0.kind = .feePaid; $0.name = "坏"; $0.points = 1
                    }
                }, metadata: books.manager)
        }
        #expect(bad?.code == .invalidArgument && bad?.message.contains("rule.per_fen") == true)
        _ = try await books.generate("2026-01")
        let open = try await books.bills(0, openOnly: true).bills.reduce(Int64(0)) { $0 + $1.totalDueFen }
        #expect(open > 0)
        let paid = try await books.pay(0, [(.cash, open)])
        #expect(paid.settledFen == open)
        var balance = Int64(0)
        for _ in 0..<100 where balance == 0 {
            try await Task.sleep(for: .milliseconds(100))
            balance = try await points.getPointsBalance(.with { $0.residentID = resident }, metadata: books.manager).available
        }
        #expect(balance == open / 100, "a point per whole 元 settled")
        // The message delivered again grants nothing more.
        try await server.app.database.tenantTransaction(books.demo.tenant) { connection in
            try await connection.query("UPDATE outbox SET delivered_at = NULL WHERE topic = 'billing.paid'", logger: server.app.logger)
        }
        try await Task.sleep(for: .seconds(2))
        #expect(try await points.getPointsBalance(.with { $0.residentID = resident }, metadata: books.manager).available == open / 100)
        let report = try await points.getPointsReport(
            .with {
                $0.communityID = books.demo.community.description; $0.from = "2026-01-01"; $0.to = "2100-01-01"
            }, metadata: books.manager)
        #expect(report.granted == open / 100 && report.outstanding == open / 100 && report.budgetLeft == 100_000 - open / 100)
    }

    @Test("C-3 by the rule: a budget of 10,000, 100 points a payment: the 101st payment's grant is refused and recorded; sums stay zero")
    func budgetRefusesTheGrantNotThePayment() async throws {
        let f = try await PointsFixture.make(try await TestServer.shared.value)
        _ = try await f.fund(10_000)
        _ = try await f.points.saveEarningRule(
            .with {
                $0.requestID = UUID().uuidString
                $0.rule = .with {
                    $0.communityID = f.demo.community.description; $0.kind = .feePaid; $0.name = "每笔 100 分"; $0.points = 1; $0.perFen = 100
                    $0.capPoints = 100; $0.enabled = true
                }
            }, metadata: f.manager)
        let resident = UUID(uuidString: f.resident) ?? UUID()
        let outcomes = try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            var outcomes: [PointsEarning.Outcome] = []
            for payment in 1...101 {
                outcomes.append(
                    try await PointsEarning().earn(
                        .feePaid, community: f.demo.community, resident: resident, amountFen: 50_000, reason: "", key: "pay:\(payment)",
                        on: connection, logger: f.server.app.logger
                    ).outcome)
            }
            // The same payment again answers what it got the first time.
            outcomes.append(
                try await PointsEarning().earn(
                    .feePaid, community: f.demo.community, resident: resident, amountFen: 50_000, reason: "", key: "pay:101", on: connection,
                    logger: f.server.app.logger
                ).outcome)
            return outcomes
        }
        #expect(outcomes.prefix(100).allSatisfy { $0 == .granted })
        #expect(outcomes.suffix(2) == [.budgetExhausted, .budgetExhausted])
        let check = try await f.points.checkPointsCache(.with { $0.communityID = f.demo.community.description }, metadata: f.manager)
        #expect(check.ledgerBalanced)
        #expect(try await f.balance().available == 10_000)
        let today = BusinessDay.demo.today()
        let report = try await f.points.getPointsReport(
            .with {
                $0.communityID = f.demo.community.description; $0.from = today; $0.to = BusinessDay.demo.adding(1, to: today) ?? today
            },
            metadata: f.manager)
        #expect(report.granted == 10_000 && report.refusedGrants == 1 && report.budgetLeft == 0)
        // An activity without a rule earns nothing; with one, its fixed points.
        let earn = Linli_Commerce_V1_EarnPointsRequest.with {
            $0.requestID = UUID().uuidString; $0.residentID = f.resident; $0.kind = .activity; $0.reason = "垃圾分类志愿活动"
            $0.operationKey = "activity:1"
        }
        #expect(try await f.points.earnPoints(earn, metadata: f.manager).outcome == .noRule)
        let bad = await rpcError {
            try await f.points.earnPoints(
                .with {
                    $0.requestID = UUID().uuidString; $0.residentID = f.resident; $0.kind = .feePaid; $0.reason = "x"; $0.operationKey = "k"
                }, metadata: f.manager)
        }
        #expect(bad?.code == .invalidArgument && bad?.message.contains("kind") == true)
    }

    @Test("batched earnings (the billing.paid consumer's path): many grants in one transaction, replays answered, a short budget earned one by one")
    func batchedEarnings() async throws {
        let f = try await PointsFixture.make(try await TestServer.shared.value)
        _ = try await f.fund(10_000)
        _ = try await f.points.saveEarningRule(
            .with {
                $0.requestID = UUID().uuidString
                $0.rule = .with {
                    $0.communityID = f.demo.community.description; $0.kind = .feePaid; $0.name = "每笔 100 分"; $0.points = 1; $0.perFen = 100
                    $0.capPoints = 100; $0.enabled = true
                }
            }, metadata: f.manager)
        let resident = UUID(uuidString: f.resident) ?? UUID()
        func events(_ payments: ClosedRange<Int>) -> [PointsEarning.Event] {
            payments.map {
                .init(kind: .feePaid, community: f.demo.community, resident: resident, amountFen: 50_000, reason: "", key: "pay:\($0)", at: Date())
            }
        }
        let app = f.server.app
        let first = try await app.database.tenantTransaction(f.demo.tenant) { connection in
            try await PointsEarning().earnMany(events(1...60), on: connection, logger: app.logger)
        }
        #expect(first.count == 60 && first.allSatisfy { $0.outcome == .granted && $0.points == 100 })
        // 6 replays and 45 new payments: 4,500 asked of the 4,000 left, so the batch goes one by one.
        let second = try await app.database.tenantTransaction(f.demo.tenant) { connection in
            try await PointsEarning().earnMany(events(55...105), on: connection, logger: app.logger)
        }
        #expect(second.prefix(6).allSatisfy { $0.outcome == .granted })
        #expect(second.filter { $0.outcome == .granted }.count == 46 && second.suffix(5).allSatisfy { $0.outcome == .budgetExhausted })
        let check = try await f.points.checkPointsCache(.with { $0.communityID = f.demo.community.description }, metadata: f.manager)
        #expect(check.ledgerBalanced)
        #expect(try await f.balance().available == 10_000)
        let (lots, earnings) = try await app.database.tenantTransaction(f.demo.tenant) { connection in
            var lots: Int64 = 0
            var earnings: Int64 = 0
            for try await (l, e) in try await connection.query(
                """
                SELECT (SELECT count(*) FROM points_lots WHERE resident_id = \(resident))::int8,
                       (SELECT count(*) FROM points_earnings WHERE community_id = \(f.demo.community.uuid))::int8
                """, logger: app.logger
            ).decode((Int64, Int64).self) { (lots, earnings) = (l, e) }
            return (lots, earnings)
        }
        #expect(lots == 100 && earnings == 105)
        // A key used again for another grant is refused, and moves nothing.
        let reused = await #expect(throws: LinliError.self) {
            try await app.database.tenantTransaction(f.demo.tenant) { connection in
                try await PointsStore().grantMany(
                    [.init(resident: resident, points: 7, reason: "", expiresAt: Date().addingTimeInterval(86_400), key: "pay:1")],
                    community: f.demo.community, by: nil, on: connection, logger: app.logger)
            }
        }
        #expect(reused?.code == .failedPrecondition)
    }
}
