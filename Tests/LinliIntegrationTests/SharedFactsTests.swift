import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import PostgresNIO
import Testing

@Suite("Shared facts on the database")
struct SharedFactsDatabaseTests {
    @Test("a completed repair charged 80.00 元 becomes one bill on the room, seen by the resident and paid with a receipt, even when delivered twice")
    func chargedRepairIsBilledOnce() async throws {
        let books = try await BillingTests.Books.open()
        let server = books.server
        let residentUser = try #require(books.demo.users["resident1"])
        _ = try await books.resident("住户1", user: residentUser.description, rooms: [(0, "2025-01-01")])
        let technician = try await server.app.database.tenantTransaction(books.demo.tenant) { connection in
            try await server.app.users.create(
                .init(
                    username: "plumber", displayName: "水电工", password: books.demo.password, role: .technician,
                    communityIDs: [books.demo.community]), on: connection, logger: server.app.database.logger)
        }
        let orders = Linli_Property_V1_WorkOrderService.Client(wrapping: server.client)
        var category = Linli_Property_V1_ConfigureCategoryRequest()
        category.requestID = UUID().uuidString
        category.category.communityID = books.demo.community.description
        category.category.code = "plumbing"
        category.category.name = "水管"
        category.category.dispatchMode = .manual
        category.category.normalDeadlineMinutes = 240
        category.category.emergencyDeadlineMinutes = 30
        _ = try await orders.configureCategory(category, metadata: books.manager)
        var skills = Linli_Property_V1_SetTechnicianRequest()
        skills.requestID = UUID().uuidString
        skills.userID = technician.description
        skills.communityID = books.demo.community.description
        skills.categoryCodes = ["plumbing"]
        skills.onDuty = true
        _ = try await orders.setTechnician(skills, metadata: books.manager)

        let resident = try await server.login(books.demo, "resident1")
        var file = Linli_Property_V1_FileRepairRequest()
        file.requestID = UUID().uuidString
        file.communityID = books.demo.community.description
        file.category = "plumbing"
        file.priority = .normal
        file.channel = .app
        file.roomID = books.rooms[0]
        file.location = "厨房"
        file.description_p = "水龙头漏水"
        var order = try await orders.fileRepair(file, metadata: resident).workOrder
        let tech = try await server.login(books.demo, "plumber")
        func act(
            _ action: Linli_Property_V1_WorkOrderAction, as who: Metadata,
            _ adjust: (inout Linli_Property_V1_TransitionWorkOrderRequest) -> Void = { _ in }
        )
            async throws
        {
            var request = Linli_Property_V1_TransitionWorkOrderRequest()
            request.requestID = UUID().uuidString
            request.workOrderID = order.id
            request.action = action
            adjust(&request)
            order = try await orders.transitionWorkOrder(request, metadata: who).workOrder
        }
        try await act(.dispatch, as: books.manager) { $0.assigneeID = technician.description }
        try await act(.accept, as: tech)
        try await act(.start, as: tech)
        try await act(.complete, as: tech) {
            $0.completion.labourMinutes = 30
            $0.completion.materials = "阀芯 1 个"
            $0.completion.chargeFen = 8_000
        }
        #expect(order.state == .completed)

        // Delivered, then delivered again (as after a replay): one bill.
        try await server.app.outboxRelay.relayAll()
        try await server.app.database.tenantTransaction(books.demo.tenant) { connection in
            try await connection.query(
                "UPDATE outbox SET delivered_at = NULL WHERE topic = 'billing.work_order_charge'", logger: server.app.database.logger)
        }
        try await server.app.outboxRelay.relayAll()
        let repairBills = try await books.bills(0).bills.filter { $0.amountFen == 8_000 }
        #expect(repairBills.count == 1)
        let bill = try #require(repairBills.first)
        #expect(bill.feeItemName == "维修费")

        let mine = try await books.billing.getMyBilling(Linli_Billing_V1_GetMyBillingRequest(), metadata: resident)
        #expect(mine.rooms.first?.bills.contains { $0.id == bill.id && $0.totalDueFen == 8_000 } == true)

        let paid = try await books.pay(0, [(.wechat, 8_000)], bills: [bill.id])
        #expect(paid.settledFen == 8_000 && !paid.receiptNo.isEmpty)
        #expect(try await books.bills(0, openOnly: true).bills.contains { $0.id == bill.id } == false)
        var check = Linli_Billing_V1_CheckLedgerRequest()
        check.communityID = books.demo.community.description
        #expect(try await books.billing.checkLedger(check, metadata: books.manager).balanced)
    }

    @Test("a community in Asia/Urumqi and one in Asia/Shanghai: the same instant is a different business day, each day starts at its own midnight")
    func businessDayPerCommunity() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let logger = server.app.database.logger
        let days = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            let west = UUIDv7.make()
            try await connection.query(
                """
                INSERT INTO communities (id, name, address, time_zone) VALUES (\(west), '天山小区', '乌鲁木齐市', 'Asia/Urumqi')
                """, logger: logger)
            // 17:30 UTC: 01:30 the next day in Shanghai, 23:30 the same day in Ürümqi.
            let rows = try await connection.query(
                """
                SELECT local_day(community_zone(\(demo.community.uuid)), '2026-02-28 17:30Z')::text,
                       local_day(community_zone(\(west)), '2026-02-28 17:30Z')::text,
                       community_day_start(\(demo.community.uuid), '2026-03-01') = '2026-02-28 16:00Z',
                       community_day_start(\(west), '2026-03-01') = '2026-02-28 18:00Z',
                       community_today(\(west)) = (now() AT TIME ZONE 'Asia/Urumqi')::date,
                       resides_on('2026-03-10', NULL, '2026-03-10'), resides_on('2026-03-10', '2026-03-20', '2026-03-20'),
                       resides_on('2026-03-10', NULL, '2026-03-09')
                """, logger: logger)
            for try await row in rows.decode((String, String, Bool, Bool, Bool, Bool, Bool, Bool).self) { return row }
            throw LinliError.notFound("row")
        }
        #expect(days.0 == "2026-03-01")
        #expect(days.1 == "2026-02-28")
        #expect(days.2 && days.3 && days.4)
        #expect(days.5 && !days.6 && !days.7)
    }
}
