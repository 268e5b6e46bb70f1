import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliServer
import LinliTenancy
import PostgresNIO
import SwiftProtobuf
import Testing

@Suite("Patrol and inspection")
struct PatrolTests {
    typealias Client = Linli_Property_V1_PatrolService.Client<HTTP2ClientTransport.Posix>

    /// Three checkpoints on one route; returns the route id and the point codes in order.
    func route(_ patrol: Client, _ demo: DemoTenant, _ manager: Metadata) async throws -> (String, [String]) {
        var ids: [String] = []
        var codes: [String] = []
        for (index, name) in ["东门岗亭", "地下车库 B1", "3 号配电房"].enumerated() {
            var point = Linli_Property_V1_CreateCheckpointRequest()
            point.requestID = UUID().uuidString
            point.communityID = demo.community.description
            point.name = name
            point.code = "NFC-\(index)-\(UUID().uuidString.prefix(6))"
            let made = try await patrol.createCheckpoint(point, metadata: manager).checkpoint
            ids.append(made.id)
            codes.append(made.code)
        }
        var route = Linli_Property_V1_CreateRouteRequest()
        route.requestID = UUID().uuidString
        route.communityID = demo.community.description
        route.name = "夜间巡更 \(UUID().uuidString.prefix(4))"
        route.kind = .patrol
        route.pointIds = ids
        let made = try await patrol.createRoute(route, metadata: manager).route
        #expect(made.points.map(\.code) == codes)
        return (made.id, codes)
    }

    func temporaryTask(
        _ patrol: Client, route: String, staff: UserID, startsIn minutes: Double, window: Int32,
        _ manager: Metadata
    ) async throws -> Linli_Property_V1_PatrolTask {
        var request = Linli_Property_V1_CreateTemporaryTaskRequest()
        request.requestID = UUID().uuidString
        request.routeID = route
        request.staffID = staff.description
        request.startsAt = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(minutes * 60))
        request.windowMinutes = window
        return try await patrol.createTemporaryTask(request, metadata: manager).task
    }

    func checkIn(
        _ patrol: Client, _ task: String, _ code: String, abnormal: Bool = false, note: String = "",
        _ who: Metadata
    ) async throws -> Linli_Property_V1_PatrolTask {
        var request = Linli_Property_V1_CheckInRequest()
        request.requestID = UUID().uuidString
        request.taskID = task
        request.pointCode = code
        request.result = abnormal ? .abnormal : .normal
        request.note = note
        request.photoRefs = abnormal ? ["oss://linli/patrol/leak.jpg"] : []
        return try await patrol.checkIn(request, metadata: who).task
    }

    @Test("guards check in point by point; unchecked points are missed, late tasks flagged, and a manager reviews")
    func checkIns() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let patrol = Client(wrapping: server.client)
        let manager = try await server.login(demo, "manager")
        let guardSession = try await server.login(demo, "guard")
        let technician = try await server.login(demo, "technician")
        let guardID = try #require(demo.users["guard"])
        let (route, codes) = try await self.route(patrol, demo, manager)

        let task = try await temporaryTask(patrol, route: route, staff: guardID, startsIn: 0, window: 60, manager)
        #expect(task.state == .pending && task.pointCount == 3 && !task.late)
        #expect(await rpcCode { try await checkIn(patrol, task.id, codes[0], technician) } == .permissionDenied)
        #expect(await rpcError { try await checkIn(patrol, task.id, "NFC-unknown", guardSession) }?.message.hasPrefix("point_code:") == true)
        #expect(await rpcError { try await checkIn(patrol, task.id, codes[1], abnormal: true, guardSession) }?.message.hasPrefix("note:") == true)
        var progress = try await checkIn(patrol, task.id, codes[0], guardSession)
        #expect(progress.state == .inProgress && progress.checkedCount == 1)
        #expect(await rpcCode { try await checkIn(patrol, task.id, codes[0], guardSession) } == .alreadyExists)
        progress = try await checkIn(patrol, task.id, codes[1], abnormal: true, note: "B1 排水沟渗水", guardSession)
        #expect(progress.abnormalCount == 1 && progress.missedCount == 0)

        // A review waits for the task to finish.
        var review = Linli_Property_V1_ReviewPatrolTaskRequest()
        review.requestID = UUID().uuidString
        review.taskID = task.id
        review.result = .failed
        review.note = "未完成"
        #expect(await rpcCode { try await patrol.reviewPatrolTask(review, metadata: manager) } == .failedPrecondition)
        review.note = ""

        var finish = Linli_Property_V1_FinishPatrolTaskRequest()
        finish.requestID = UUID().uuidString
        finish.taskID = task.id
        let finished = try await patrol.finishPatrolTask(finish, metadata: guardSession).task
        #expect(finished.state == .finished && finished.missedCount == 1 && !finished.late)
        var get = Linli_Property_V1_GetPatrolTaskRequest()
        get.taskID = task.id
        let detail = try await patrol.getPatrolTask(get, metadata: manager).task
        #expect(detail.checkIns.map(\.position) == [1, 2] && detail.missedPointIds.count == 1 && detail.checkIns[1].photoRefs.count == 1)

        review.requestID = UUID().uuidString
        #expect(await rpcError { try await patrol.reviewPatrolTask(review, metadata: manager) }?.message.hasPrefix("note:") == true)
        review.requestID = UUID().uuidString
        review.note = "漏检配电房"
        #expect(try await patrol.reviewPatrolTask(review, metadata: manager).task.review == .failed)
        review.requestID = UUID().uuidString
        #expect(await rpcCode { try await patrol.reviewPatrolTask(review, metadata: manager) } == .failedPrecondition)

        // Every point checked: the task finishes by itself.
        let full = try await temporaryTask(patrol, route: route, staff: guardID, startsIn: 0, window: 60, manager)
        for code in codes { progress = try await checkIn(patrol, full.id, code, guardSession) }
        #expect(progress.state == .finished && progress.checkedCount == 3 && progress.hasFinishedAt)

        // Too early to start; a closed window takes no check-ins and counts every point missed.
        let later = try await temporaryTask(patrol, route: route, staff: guardID, startsIn: 120, window: 60, manager)
        #expect(await rpcCode { try await checkIn(patrol, later.id, codes[0], guardSession) } == .failedPrecondition)
        let lapsed = try await temporaryTask(patrol, route: route, staff: guardID, startsIn: -30, window: 5, manager)
        #expect(lapsed.late && lapsed.missedCount == 3)
        #expect(await rpcCode { try await checkIn(patrol, lapsed.id, codes[0], guardSession) } == .failedPrecondition)

        var list = Linli_Property_V1_ListPatrolTasksRequest()
        list.communityID = demo.community.description
        list.from = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(-3600))
        list.until = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(3 * 3600))
        list.problemsOnly = true
        let problems = try await patrol.listPatrolTasks(list, metadata: manager).tasks
        #expect(Set(problems.map(\.id)) == [task.id, lapsed.id])
        list.problemsOnly = false
        // The technician has no tasks; the guard sees their four.
        #expect(try await patrol.listPatrolTasks(list, metadata: technician).tasks.isEmpty)
        #expect(try await patrol.listPatrolTasks(list, metadata: guardSession).tasks.count == 4)
    }

    @Test("plans become tasks for the coming days by weekday and every N days, exactly once with several schedulers at once")
    func scheduler() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let patrol = Client(wrapping: server.client)
        let manager = try await server.login(demo, "manager")
        let guardID = try #require(demo.users["guard"])
        let (route, _) = try await self.route(patrol, demo, manager)
        let today = BusinessDay.demo.today()

        var plan = Linli_Property_V1_CreatePlanRequest()
        plan.requestID = UUID().uuidString
        plan.routeID = route
        plan.staffID = guardID.description
        plan.times = ["00:00", "12:00"]
        plan.startsOn = today
        plan.windowMinutes = 1440
        // Today, tomorrow and the day after, twice a day; every window is still open.
        #expect(try await patrol.createPlan(plan, metadata: manager).tasksGenerated == 6)

        plan.requestID = UUID().uuidString
        plan.times = ["00:00"]
        plan.everyDays = 2
        #expect(try await patrol.createPlan(plan, metadata: manager).tasksGenerated == 2)

        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = BusinessDay.demo.timeZone
        let tomorrow = Date().addingTimeInterval(86400)
        let isoWeekday = (calendar.component(.weekday, from: tomorrow) + 5) % 7 + 1
        plan.requestID = UUID().uuidString
        plan.everyDays = 0
        plan.weekdays = [Int32(isoWeekday)]
        #expect(try await patrol.createPlan(plan, metadata: manager).tasksGenerated == 1)

        plan.requestID = UUID().uuidString
        plan.times = ["25:00"]
        #expect(await rpcError { try await patrol.createPlan(plan, metadata: manager) }?.message.hasPrefix("times[0]:") == true)
        plan.times = ["08:00"]
        plan.staffID = try #require(demo.users["resident1"]).description
        #expect(await rpcError { try await patrol.createPlan(plan, metadata: manager) }?.message.hasPrefix("staff_id:") == true)

        // A plan written without generating (as if every scheduler had been down), then four passes at once.
        let planID = UUIDv7.make()
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await connection.query(
                """
                INSERT INTO patrol_plans (id, community_id, route_id, staff_id, times, starts_on, window_minutes, created_by)
                VALUES (\(planID), \(demo.community.uuid), \(UUID(uuidString: route)!), \(guardID.uuid), ARRAY['00:00', '06:00', '18:00'],
                        \(today)::date, 1440, \(guardID.uuid))
                """, logger: server.app.database.logger)
        }
        let passes = try await withThrowingTaskGroup(of: Int?.self) { group in
            for _ in 0..<4 { group.addTask { try await server.app.patrolScheduler.run(demo.tenant) } }
            var all: [Int?] = []
            for try await pass in group { all.append(pass) }
            return all
        }
        #expect(passes.compactMap { $0 }.reduce(0, +) == 9)
        #expect(try await server.app.patrolScheduler.run(demo.tenant) == 0)
        let count = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            var count: Int64 = 0
            for try await n in try await connection.query(
                "SELECT count(*) FROM patrol_tasks WHERE plan_id = \(planID)",
                logger: server.app.database.logger
            ).decode(Int64.self) { count = n }
            return count
        }
        #expect(count == 9)

        // A stopped plan gets no further tasks.
        var stop = Linli_Property_V1_StopPlanRequest()
        stop.requestID = UUID().uuidString
        stop.planID = planID.uuidString
        _ = try await patrol.stopPlan(stop, metadata: manager)
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await connection.query("DELETE FROM patrol_tasks WHERE plan_id = \(planID)", logger: server.app.database.logger)
        }
        #expect(try await server.app.patrolScheduler.run(demo.tenant) == 0)
    }
}
