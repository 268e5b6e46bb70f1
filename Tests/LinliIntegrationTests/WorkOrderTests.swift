import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliIdentity
import LinliServer
import PostgresNIO
import SwiftProtobuf
import Testing

/// A demo tenant with four extra technicians and three repair categories, one per dispatch mode.
struct Workshop {
    let server: TestServer
    let demo: DemoTenant
    let technicians: [UserID]  // tech1...tech4
    let manager: Metadata
    var service: Linli_Property_V1_WorkOrderService.Client<HTTP2ClientTransport.Posix> { .init(wrapping: server.client) }

    static func open() async throws -> Workshop {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let technicians = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            var ids: [UserID] = []
            for index in 1...4 {
                ids.append(
                    try await server.app.users.create(
                        .init(
                            username: "tech\(index)", displayName: "师傅\(index)", password: demo.password, role: .technician,
                            communityIDs: [demo.community]), on: connection, logger: server.app.database.logger))
            }
            return ids
        }
        let workshop = Workshop(server: server, demo: demo, technicians: technicians, manager: try await server.login(demo, "manager"))
        for (code, mode) in [("plumbing", Linli_Property_V1_DispatchMode.manual), ("electrical", .grab), ("elevator", .roundRobin)] {
            var request = Linli_Property_V1_ConfigureCategoryRequest()
            request.requestID = UUID().uuidString
            request.category.communityID = demo.community.description
            request.category.code = code
            request.category.name = code
            request.category.dispatchMode = mode
            request.category.normalDeadlineMinutes = 240
            request.category.emergencyDeadlineMinutes = 30
            _ = try await workshop.service.configureCategory(request, metadata: workshop.manager)
        }
        for (index, technician) in technicians.enumerated() {
            var request = Linli_Property_V1_SetTechnicianRequest()
            request.requestID = UUID().uuidString
            request.userID = technician.description
            request.communityID = demo.community.description
            request.categoryCodes = ["plumbing", "electrical", "elevator"]
            request.onDuty = index < 3  // tech4 is off duty
            _ = try await workshop.service.setTechnician(request, metadata: workshop.manager)
        }
        return workshop
    }

    func login(_ username: String) async throws -> Metadata { try await server.login(demo, username) }

    func file(
        _ category: String, as session: Metadata, building: Int? = 0, onBehalfOf: UserID? = nil,
        emergency: Bool = false
    ) async throws -> Linli_Property_V1_WorkOrder {
        var request = Linli_Property_V1_FileRepairRequest()
        request.requestID = UUID().uuidString
        request.communityID = demo.community.description
        request.category = category
        request.priority = emergency ? .emergency : .normal
        request.channel = onBehalfOf == nil ? .app : .phone
        if let building { request.buildingID = demo.buildings[building].description }
        request.location = "302 室卫生间"
        request.description_p = "水管漏水，地面有积水"
        request.photoRefs = ["oss://photos/leak-1.jpg"]
        if let onBehalfOf { request.onBehalfOf = onBehalfOf.description }
        return try await service.fileRepair(request, metadata: session).workOrder
    }

    @discardableResult
    func act(
        _ order: Linli_Property_V1_WorkOrder, _ action: Linli_Property_V1_WorkOrderAction, as session: Metadata,
        requestID: String = UUID().uuidString, _ adjust: (inout Linli_Property_V1_TransitionWorkOrderRequest) -> Void = { _ in }
    )
        async throws -> Linli_Property_V1_WorkOrder
    {
        var request = Linli_Property_V1_TransitionWorkOrderRequest()
        request.requestID = requestID
        request.workOrderID = order.id
        request.action = action
        adjust(&request)
        return try await service.transitionWorkOrder(request, metadata: session).workOrder
    }

    func outbox(_ topic: String) async throws -> [String] {
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            var recipients: [String] = []
            let rows = try await connection.query(
                "SELECT recipient_id FROM outbox WHERE topic = \(topic) ORDER BY id",
                logger: server.app.database.logger)
            for try await id in rows.decode(UUID.self) { recipients.append(id.uuidString.lowercased()) }
            return recipients
        }
    }
}

@Suite("Repair work orders")
struct WorkOrderTests {
    @Test("a repair runs from filing to closed; every step is recorded with its actor; wrong steps are refused")
    func lifecycle() async throws {
        let shop = try await Workshop.open()
        let resident = try await shop.login("resident1")
        let tech1 = try await shop.login("tech1")
        var order = try await shop.file("plumbing", as: resident)
        #expect(order.state == .pending)
        #expect(order.dueAt.date.timeIntervalSince(order.createdAt.date) == 240 * 60)

        #expect(await rpcCode { try await shop.act(order, .start, as: tech1) } == .failedPrecondition)
        order = try await shop.act(order, .dispatch, as: shop.manager) { $0.assigneeID = shop.technicians[0].description }
        #expect(order.state == .dispatched && order.assigneeID == shop.technicians[0].description)
        #expect(try await shop.outbox("work_order.assigned") == [shop.technicians[0].description])
        #expect(await rpcCode { try await shop.act(order, .accept, as: try await shop.login("tech2")) } == .permissionDenied)

        let acceptID = UUID().uuidString
        order = try await shop.act(order, .accept, as: tech1, requestID: acceptID)
        #expect(try await shop.act(order, .accept, as: tech1, requestID: acceptID).state == .accepted)  // a retry replays
        #expect(await rpcCode { try await shop.act(order, .start, as: tech1, requestID: acceptID) } == .failedPrecondition)
        order = try await shop.act(order, .start, as: tech1)
        let noNote = await rpcError { try await shop.act(order, .pause, as: tech1) }
        #expect(noNote?.code == .invalidArgument && noNote?.message.hasPrefix("note") == true)
        order = try await shop.act(order, .pause, as: tech1) { $0.note = "等配件" }
        order = try await shop.act(order, .resume, as: tech1)
        // A charge needs a room to bill: this repair has none and its requester lives nowhere yet.
        let unbillable = await rpcError {
            try await shop.act(order, .complete, as: tech1) {
                $0.completion.labourMinutes = 45
                $0.completion.chargeFen = 3000
            }
        }
        #expect(unbillable?.code == .invalidArgument && unbillable?.message.hasPrefix("completion.charge_fen") == true)
        order = try await shop.act(order, .complete, as: tech1) {
            $0.completion.labourMinutes = 45
            $0.completion.materials = "三通阀 1 个"
        }
        #expect(order.state == .completed && order.completion.chargeFen == 0)
        #expect(try await shop.outbox("billing.work_order_charge").isEmpty)
        #expect(try await shop.outbox("work_order.completed") == [order.requesterID])

        let badRating = await rpcError { try await shop.act(order, .rate, as: resident) { $0.rating.speed = 6 } }
        #expect(badRating?.message.hasPrefix("rating.speed") == true)
        #expect(await rpcCode { try await shop.act(order, .rate, as: shop.manager) { $0.rating.speed = 5 } } == .permissionDenied)
        order = try await shop.act(order, .rate, as: resident) {
            $0.rating.speed = 5
            $0.rating.attitude = 4
            $0.rating.quality = 5
            $0.rating.comment = "很及时"
        }
        order = try await shop.act(order, .close, as: shop.manager) { $0.note = "回访满意" }
        #expect(order.state == .closed)
        #expect(await rpcCode { try await shop.act(order, .reopen, as: resident) } == .failedPrecondition)

        var get = Linli_Property_V1_GetWorkOrderRequest()
        get.workOrderID = order.id
        let history = try await shop.service.getWorkOrder(get, metadata: resident).workOrder.events
        #expect(history.map(\.action) == [.unspecified, .dispatch, .accept, .start, .pause, .resume, .complete, .rate, .close])
        #expect(history.map(\.actorID).filter { $0 == shop.technicians[0].description }.count == 5)
        #expect(await rpcCode { try await shop.service.getWorkOrder(get, metadata: try await shop.login("resident2")) } == .notFound)

        var stats = Linli_Property_V1_GetWorkloadStatsRequest()
        stats.communityID = shop.demo.community.description
        stats.from = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(-3600))
        stats.to = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(60))
        let figures = try await shop.service.getWorkloadStats(stats, metadata: shop.manager)
        let tech = try #require(figures.technicians.first { $0.userID == shop.technicians[0].description })
        #expect(tech.assigned == 1 && tech.accepted == 1 && tech.completed == 1 && tech.labourMinutes == 45)
        #expect(abs(tech.averageRating - 14.0 / 3.0) < 0.001)
        #expect(figures.filed == 1 && figures.completed == 1 && figures.completionRate == 1 && figures.slaRate == 1)
    }

    @Test("in a grab category, of four technicians claiming at once exactly one wins")
    func grab() async throws {
        let shop = try await Workshop.open()
        let order = try await shop.file("electrical", as: try await shop.login("resident1"))
        var pool = Linli_Property_V1_ListWorkOrdersRequest()
        pool.communityID = shop.demo.community.description
        pool.poolOnly = true
        let tech3 = try await shop.login("tech3")
        #expect(try await shop.service.listWorkOrders(pool, metadata: tech3).workOrders.map(\.id) == [order.id])

        var sessions: [Metadata] = []
        for index in 1...4 { sessions.append(try await shop.login("tech\(index)")) }
        let outcomes = await withTaskGroup(of: RPCError.Code?.self) { group in
            for session in sessions {
                group.addTask {
                    do { _ = try await shop.act(order, .claim, as: session); return nil } catch let error as RPCError { return error.code } catch {
                        return .unknown
                    }
                }
            }
            var all: [RPCError.Code?] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.filter { $0 == nil }.count == 1)
        #expect(outcomes.compactMap { $0 }.allSatisfy { $0 == .failedPrecondition })
        #expect(try await shop.service.listWorkOrders(pool, metadata: tech3).workOrders.isEmpty)
        // Claiming is for grab categories only.
        let manual = try await shop.file("plumbing", as: try await shop.login("resident1"))
        #expect(await rpcCode { try await shop.act(manual, .claim, as: tech3) } == .permissionDenied)
    }

    @Test("round robin deals orders in turn to on-duty technicians only, and follows duty changes")
    func roundRobin() async throws {
        let shop = try await Workshop.open()
        let resident = try await shop.login("resident1")
        var dealt: [String] = []
        for _ in 0..<6 { dealt.append(try await shop.file("elevator", as: resident, emergency: true).assigneeID) }
        let onDuty = shop.technicians.prefix(3).map(\.description)
        #expect(Dictionary(grouping: dealt, by: { $0 }).mapValues(\.count) == Dictionary(uniqueKeysWithValues: onDuty.map { ($0, 2) }))
        #expect(dealt[0..<3].sorted() == onDuty.sorted())  // one each before anyone gets a second

        var off = Linli_Property_V1_SetMyDutyRequest()
        off.requestID = UUID().uuidString
        off.onDuty = false
        _ = try await shop.service.setMyDuty(off, metadata: try await shop.login("tech2"))
        var next: Set<String> = []
        for _ in 0..<4 { next.insert(try await shop.file("elevator", as: resident).assigneeID) }
        #expect(next == [shop.technicians[0].description, shop.technicians[2].description])
        #expect(try await shop.outbox("work_order.assigned").count == 10)
    }

    @Test("cancel before work, return, transfer and reopen")
    func sideRoads() async throws {
        let shop = try await Workshop.open()
        let resident = try await shop.login("resident1")
        let tech1 = try await shop.login("tech1")
        let first = try await shop.file("plumbing", as: resident)
        #expect(try await shop.act(first, .cancel, as: resident).state == .cancelled)

        var order = try await shop.file("plumbing", as: resident)
        order = try await shop.act(order, .dispatch, as: shop.manager) { $0.assigneeID = shop.technicians[0].description }
        order = try await shop.act(order, .return, as: tech1) { $0.note = "不是我的片区" }
        #expect(order.state == .pending && order.assigneeID.isEmpty)
        order = try await shop.act(order, .dispatch, as: shop.manager) { $0.assigneeID = shop.technicians[0].description }
        order = try await shop.act(order, .transfer, as: shop.manager) { $0.assigneeID = shop.technicians[1].description }
        #expect(order.state == .dispatched && order.assigneeID == shop.technicians[1].description)
        let tech2 = try await shop.login("tech2")
        order = try await shop.act(order, .accept, as: tech2)
        order = try await shop.act(order, .start, as: tech2)
        #expect(await rpcCode { try await shop.act(order, .cancel, as: resident) } == .failedPrecondition)
        order = try await shop.act(order, .complete, as: tech2) { $0.completion.labourMinutes = 20 }
        order = try await shop.act(order, .reopen, as: resident) { $0.note = "又漏了" }
        #expect(order.state == .pending && order.reopenCount == 1 && order.assigneeID.isEmpty)
    }

    @Test("staff file on a resident's behalf; bad input names the field; overdue orders are listed and counted")
    func filingRulesAndOverdue() async throws {
        let shop = try await Workshop.open()
        let resident1 = try #require(shop.demo.users["resident1"])
        let phoned = try await shop.file("plumbing", as: shop.manager, onBehalfOf: resident1)
        #expect(phoned.requesterID == resident1.description && phoned.channel == .phone)
        let resident = try await shop.login("resident1")
        #expect(await rpcError { try await shop.file("plumbing", as: resident, onBehalfOf: resident1) }?.message.hasPrefix("on_behalf_of") == true)
        // resident1 lives in 1栋, not 2栋.
        #expect(await rpcError { try await shop.file("plumbing", as: resident, building: 1) }?.message.hasPrefix("building_id") == true)
        #expect(await rpcError { try await shop.file("gardening", as: resident) }?.message.hasPrefix("category") == true)

        var bad = Linli_Property_V1_FileRepairRequest()
        bad.requestID = UUID().uuidString
        bad.communityID = shop.demo.community.description
        bad.category = "plumbing"
        for (field, mutate) in [
            ("priority", { (r: inout Linli_Property_V1_FileRepairRequest) in r.channel = .app }),
            (
                "channel",
                { (r: inout Linli_Property_V1_FileRepairRequest) in
                    r.priority = .normal; r.channel = .unspecified
                }
            ),
            ("location", { (r: inout Linli_Property_V1_FileRepairRequest) in r.channel = .app }),
            ("description", { (r: inout Linli_Property_V1_FileRepairRequest) in r.location = "大堂" }),
        ] {
            mutate(&bad)
            #expect(await rpcError { try await shop.service.fileRepair(bad, metadata: resident) }?.message.hasPrefix(field) == true, "\(field)")
        }

        let late = try await shop.file("plumbing", as: resident)
        try await shop.server.app.database.tenantTransaction(shop.demo.tenant) { connection in
            try await connection.query(
                "UPDATE work_orders SET due_at = now() - interval '1 minute' WHERE id = \(UUID(uuidString: late.id))",
                logger: shop.server.app.database.logger)
        }
        var overdue = Linli_Property_V1_ListWorkOrdersRequest()
        overdue.communityID = shop.demo.community.description
        overdue.overdueOnly = true
        let listed = try await shop.service.listWorkOrders(overdue, metadata: shop.manager).workOrders
        #expect(listed.map(\.id) == [late.id] && listed[0].overdue)
        var stats = Linli_Property_V1_GetWorkloadStatsRequest()
        stats.communityID = shop.demo.community.description
        stats.from = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(-3600))
        stats.to = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(60))
        let figures = try await shop.service.getWorkloadStats(stats, metadata: shop.manager)
        #expect(figures.filed == 2 && figures.overdueOpen == 1)
        // Residents see only what they requested.
        var mine = Linli_Property_V1_ListWorkOrdersRequest()
        mine.communityID = shop.demo.community.description
        #expect(try await shop.service.listWorkOrders(mine, metadata: try await shop.login("resident2")).workOrders.isEmpty)
        #expect(try await shop.service.listWorkOrders(mine, metadata: resident).workOrders.count == 2)
    }
}

@Suite("Repairs for rooms, and return visits")
struct RoomRepairTests {
    @Test("a resident files for a room they live in (the building follows); staff call back after completion")
    func roomsAndVisits() async throws {
        let shop = try await Workshop.open()
        let base = BaseDataClient(wrapping: shop.server.client)
        let resident = try await shop.login("resident1")
        var rooms: [String] = []
        for number in ["601", "602"] {
            var room = Linli_Property_V1_CreateRoomRequest()
            room.requestID = UUID().uuidString
            room.buildingID = shop.demo.buildings[1].description
            room.number = number
            room.areaCentiM2 = 10_000
            room.kind = .residence
            rooms.append(try await base.createRoom(room, metadata: shop.manager).room.id)
        }
        var register = Linli_Property_V1_RegisterResidentRequest()
        register.requestID = UUID().uuidString
        register.communityID = shop.demo.community.description
        register.name = "住户1"
        register.userID = try #require(shop.demo.users["resident1"]).description
        register.roomID = rooms[0]
        register.relation = .owner
        register.moveIn = "2024-05-01"
        _ = try await base.registerResident(register, metadata: shop.manager)

        func file(room: String, building: Int?, as session: Metadata) async throws -> Linli_Property_V1_WorkOrder {
            var request = Linli_Property_V1_FileRepairRequest()
            request.requestID = UUID().uuidString
            request.communityID = shop.demo.community.description
            request.category = "plumbing"
            request.priority = .normal
            request.channel = .app
            request.roomID = room
            if let building { request.buildingID = shop.demo.buildings[building].description }
            request.location = "厨房"
            request.description_p = "水槽堵塞"
            return try await shop.service.fileRepair(request, metadata: session).workOrder
        }
        var order = try await file(room: rooms[0], building: nil, as: resident)
        #expect(order.roomLabel == "2栋601" && order.buildingID == shop.demo.buildings[1].description)
        #expect(await rpcError { try await file(room: rooms[1], building: nil, as: resident) }?.message == "room_id: is not a room you live in")
        #expect(await rpcError { try await file(room: rooms[0], building: 0, as: resident) }?.message.hasPrefix("building_id:") == true)

        var visit = Linli_Property_V1_RecordReturnVisitRequest()
        visit.requestID = UUID().uuidString
        visit.workOrderID = order.id
        visit.reached = true
        visit.satisfaction = 5
        #expect(await rpcCode { try await shop.service.recordReturnVisit(visit, metadata: shop.manager) } == .failedPrecondition)

        let tech1 = try await shop.login("tech1")
        order = try await shop.act(order, .dispatch, as: shop.manager) { $0.assigneeID = shop.technicians[0].description }
        order = try await shop.act(order, .accept, as: tech1)
        order = try await shop.act(order, .start, as: tech1)
        order = try await shop.act(order, .complete, as: tech1) { $0.completion.labourMinutes = 20 }

        var missed = visit
        missed.requestID = UUID().uuidString
        missed.reached = false
        missed.satisfaction = 0
        #expect(await rpcError { try await shop.service.recordReturnVisit(missed, metadata: shop.manager) }?.message.hasPrefix("note:") == true)
        missed.note = "无人接听"
        _ = try await shop.service.recordReturnVisit(missed, metadata: shop.manager)
        visit.requestID = UUID().uuidString
        let cashier = try await shop.login("cashier")
        let visited = try await shop.service.recordReturnVisit(visit, metadata: cashier).workOrder
        #expect(visited.returnVisits.map(\.reached) == [false, true] && visited.returnVisits.last?.satisfaction == 5)
        #expect(await rpcCode { try await shop.service.recordReturnVisit(visit, metadata: tech1) } == .permissionDenied)
    }
}
