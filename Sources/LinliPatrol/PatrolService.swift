import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import SwiftProtobuf

/// The `linli.property.v1.PatrolService` RPCs.
public struct PatrolService: Sendable {
    let store = PatrolStore()
    let handler: Handler

    public init(database: Database, logger: Logger) {
        handler = Handler(database: database, logger: logger)
    }
}

extension PatrolService: Linli_Property_V1_PatrolService.ServiceProtocol {
    public func createCheckpoint(request: ServerRequest<Linli_Property_V1_CreateCheckpointRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_CreateCheckpointResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let name = try Input.text(m.name, field: "name", max: 50)
        let location = try Input.text(m.location, field: "location", min: 0, max: 200)
        let code = try Input.text(m.code, field: "code", max: 64)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_CreateCheckpointResponse()
            response.checkpoint = .init(
                try await store.createCheckpoint(
                    community: community, name: name, location: location, code: code,
                    by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func createRoute(request: ServerRequest<Linli_Property_V1_CreateRouteRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_CreateRouteResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let name = try Input.text(m.name, field: "name", max: 50)
        let kind = try ProtoEnum.decode(m.kind, PatrolStore.RouteKind.self, field: "kind")
        guard !m.pointIds.isEmpty else { throw LinliError.invalid("point_ids", "a route needs at least one checkpoint") }
        guard m.pointIds.count <= 100 else { throw LinliError.invalid("point_ids", "at most 100 checkpoints") }
        let points = try Input.ids(m.pointIds, field: "point_ids", as: IDTag.PatrolPoint.self).map(\.uuid)
        guard points.count == m.pointIds.count else { throw LinliError.invalid("point_ids", "each checkpoint may appear once") }
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_CreateRouteResponse()
            response.route = .init(
                try await store.createRoute(
                    community: community, name: name, kind: kind, points: points, by: call.principal,
                    on: call.connection, logger: call.logger))
            return response
        }
    }

    public func createPlan(request: ServerRequest<Linli_Property_V1_CreatePlanRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_CreatePlanResponse>
    {
        let m = request.message
        guard !m.times.isEmpty, m.times.count <= 48 else { throw LinliError.invalid("times", "give 1 to 48 start times") }
        for (index, time) in m.times.enumerated() {
            let parts = time.split(separator: ":")
            guard time.count == 5, parts.count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]), (0...23).contains(hour),
                (0...59).contains(minute)
            else {
                throw LinliError.invalid("times[\(index)]", "must be a time HH:MM")
            }
        }
        guard Set(m.times).count == m.times.count else { throw LinliError.invalid("times", "each time may appear once") }
        guard m.weekdays.allSatisfy({ (1...7).contains($0) }), Set(m.weekdays).count == m.weekdays.count else {
            throw LinliError.invalid("weekdays", "must be distinct days 1 (Monday) to 7 (Sunday)")
        }
        guard (0...365).contains(m.everyDays) else { throw LinliError.invalid("every_days", "must be from 1 to 365") }
        guard (5...1440).contains(m.windowMinutes) else { throw LinliError.invalid("window_minutes", "must be from 5 to 1440") }
        let startsOn = try Input.localDate(m.startsOn, field: "starts_on")
        let endsOn = m.endsOn.isEmpty ? nil : try Input.localDate(m.endsOn, field: "ends_on")
        if let endsOn, endsOn < startsOn { throw LinliError.invalid("ends_on", "must not be before starts_on") }
        let plan = PatrolStore.Plan(
            route: try Input.id(m.routeID, field: "route_id", as: IDTag.PatrolRoute.self).uuid,
            staff: try Input.id(m.staffID, field: "staff_id"), times: m.times, weekdays: m.weekdays.map(Int.init),
            everyDays: max(1, Int(m.everyDays)), startsOn: startsOn, endsOn: endsOn, windowMinutes: Int(m.windowMinutes))
        return try await handler.write(request, context) { [store] call in
            let (id, generated) = try await store.createPlan(plan, by: call.principal, on: call.connection, logger: call.logger)
            return Linli_Property_V1_CreatePlanResponse.with {
                $0.planID = id.uuidString.lowercased()
                $0.tasksGenerated = Int32(clamping: generated)
            }
        }
    }

    public func stopPlan(request: ServerRequest<Linli_Property_V1_StopPlanRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_StopPlanResponse>
    {
        let m = request.message
        let plan = try Input.id(m.planID, field: "plan_id", as: IDTag.PatrolPlan.self).uuid
        return try await handler.write(request, context) { [store] call in
            try await store.stopPlan(plan, by: call.principal, on: call.connection, logger: call.logger)
            return Linli_Property_V1_StopPlanResponse()
        }
    }

    public func createTemporaryTask(request: ServerRequest<Linli_Property_V1_CreateTemporaryTaskRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_CreateTemporaryTaskResponse>
    {
        let m = request.message
        let route = try Input.id(m.routeID, field: "route_id", as: IDTag.PatrolRoute.self).uuid
        let staff: UserID = try Input.id(m.staffID, field: "staff_id")
        guard (5...1440).contains(m.windowMinutes) else { throw LinliError.invalid("window_minutes", "must be from 5 to 1440") }
        let startsAt = m.hasStartsAt ? m.startsAt.date : Date()
        guard startsAt > Date().addingTimeInterval(-3600) else { throw LinliError.invalid("starts_at", "must not be in the past") }
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_CreateTemporaryTaskResponse()
            response.task = .init(
                try await store.createTemporaryTask(
                    route: route, staff: staff, startsAt: startsAt, windowMinutes: Int(m.windowMinutes),
                    by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func listPatrolTasks(request: ServerRequest<Linli_Property_V1_ListPatrolTasksRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListPatrolTasksResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        return try await handler.read(request) { [store] call in
            // Without `from`: the community's today, from its own time zone.
            let from = m.hasFrom ? m.from.date : try await BusinessDay.of(community, on: call.connection, logger: call.logger).startOfToday()
            let until = m.hasUntil ? m.until.date : from.addingTimeInterval(86400)
            guard until > from else { throw LinliError.invalid("until", "must be after from") }
            guard until.timeIntervalSince(from) <= 31 * 86400 else { throw LinliError.invalid("until", "at most 31 days after from") }
            let tasks = try await store.list(
                community: community, from: from, until: until, problemsOnly: m.problemsOnly, for: call.principal,
                on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ListPatrolTasksResponse()
            response.tasks = tasks.map(Linli_Property_V1_PatrolTask.init)
            return response
        }
    }

    public func getPatrolTask(request: ServerRequest<Linli_Property_V1_GetPatrolTaskRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_GetPatrolTaskResponse>
    {
        let id = try Input.id(request.message.taskID, field: "task_id", as: IDTag.PatrolTask.self).uuid
        return try await handler.read(request) { [store] call in
            let task = try await store.get(id, for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_GetPatrolTaskResponse()
            response.task = .init(task)
            return response
        }
    }

    public func checkIn(request: ServerRequest<Linli_Property_V1_CheckInRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_CheckInResponse>
    {
        let m = request.message
        let task = try Input.id(m.taskID, field: "task_id", as: IDTag.PatrolTask.self).uuid
        let code = try Input.text(m.pointCode, field: "point_code", max: 64)
        let result = try ProtoEnum.decode(m.result, PatrolStore.CheckResult.self, field: "result")
        let note = try Input.text(m.note, field: "note", min: result == .abnormal ? 2 : 0, max: 500)
        guard m.photoRefs.count <= 9 else { throw LinliError.invalid("photo_refs", "at most 9 photos") }
        let photos = try m.photoRefs.enumerated().map { index, ref throws(LinliError) in try Input.text(ref, field: "photo_refs[\(index)]", max: 200)
        }
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_CheckInResponse()
            response.task = .init(
                try await store.checkIn(
                    task: task, pointCode: code, result: result, note: note, photoRefs: photos,
                    by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func finishPatrolTask(request: ServerRequest<Linli_Property_V1_FinishPatrolTaskRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_FinishPatrolTaskResponse>
    {
        let m = request.message
        let task = try Input.id(m.taskID, field: "task_id", as: IDTag.PatrolTask.self).uuid
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_FinishPatrolTaskResponse()
            response.task = .init(try await store.finish(task: task, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func reviewPatrolTask(request: ServerRequest<Linli_Property_V1_ReviewPatrolTaskRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ReviewPatrolTaskResponse>
    {
        let m = request.message
        let task = try Input.id(m.taskID, field: "task_id", as: IDTag.PatrolTask.self).uuid
        let result = try ProtoEnum.decode(m.result, PatrolStore.Review.self, field: "result")
        let note = try Input.text(m.note, field: "note", min: result == .failed ? 2 : 0, max: 500)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_ReviewPatrolTaskResponse()
            response.task = .init(
                try await store.review(
                    task: task, result: result, note: note, by: call.principal, on: call.connection,
                    logger: call.logger))
            return response
        }
    }
}

extension Linli_Property_V1_CreateCheckpointRequest: IdempotentRequest {}
extension Linli_Property_V1_CreateRouteRequest: IdempotentRequest {}
extension Linli_Property_V1_CreatePlanRequest: IdempotentRequest {}
extension Linli_Property_V1_StopPlanRequest: IdempotentRequest {}
extension Linli_Property_V1_CreateTemporaryTaskRequest: IdempotentRequest {}
extension Linli_Property_V1_CheckInRequest: IdempotentRequest {}
extension Linli_Property_V1_FinishPatrolTaskRequest: IdempotentRequest {}
extension Linli_Property_V1_ReviewPatrolTaskRequest: IdempotentRequest {}

extension Linli_Property_V1_Checkpoint {
    init(_ p: PatrolStore.Checkpoint) {
        self.init()
        id = p.id.uuidString.lowercased()
        name = p.name
        location = p.location
        code = p.code
    }
}

extension Linli_Property_V1_Route {
    init(_ r: PatrolStore.Route) {
        self.init()
        id = r.id.uuidString.lowercased()
        communityID = r.community.description
        name = r.name
        kind = ProtoEnum.encode(r.kind)
        points = r.points.map(Linli_Property_V1_Checkpoint.init)
    }
}

extension Linli_Property_V1_PatrolTask {
    init(_ t: PatrolStore.Task) {
        self.init()
        id = t.id.uuidString.lowercased()
        communityID = t.community.description
        planID = t.plan?.uuidString.lowercased() ?? ""
        routeID = t.route.uuidString.lowercased()
        routeName = t.routeName
        staffID = t.staff.description
        startsAt = Google_Protobuf_Timestamp(date: t.startsAt)
        dueAt = Google_Protobuf_Timestamp(date: t.dueAt)
        state = ProtoEnum.encode(t.state)
        if let at = t.finishedAt { finishedAt = Google_Protobuf_Timestamp(date: at) }
        pointCount = Int32(clamping: t.pointCount)
        checkedCount = Int32(clamping: t.checkedCount)
        missedCount = Int32(clamping: t.missedCount)
        abnormalCount = Int32(clamping: t.abnormalCount)
        late = t.late
        review = t.review.map(ProtoEnum.encode) ?? .unspecified
        reviewNote = t.reviewNote
        checkIns = t.checkIns.map { c in
            .with {
                $0.pointID = c.point.uuidString.lowercased()
                $0.pointName = c.pointName
                $0.position = Int32(clamping: c.position)
                $0.result = ProtoEnum.encode(c.result)
                $0.note = c.note
                $0.photoRefs = c.photoRefs
                $0.at = Google_Protobuf_Timestamp(date: c.at)
            }
        }
        missedPointIds = t.missedPoints.map { $0.uuidString.lowercased() }
    }
}
