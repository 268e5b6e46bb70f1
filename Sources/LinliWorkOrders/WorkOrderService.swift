import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

/// The `linli.property.v1.WorkOrderService` RPCs.
public struct WorkOrderService: Sendable {
    let store = WorkOrderStore()
    let handler: Handler

    public init(database: Database, logger: Logger) {
        handler = Handler(database: database, logger: logger)
    }
}

extension WorkOrderService: Linli_Property_V1_WorkOrderService.ServiceProtocol {
    public func configureCategory(request: ServerRequest<Linli_Property_V1_ConfigureCategoryRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ConfigureCategoryResponse>
    {
        let m = request.message
        _ = try Input.requestID(m.requestID)  // named first, before the other fields
        let c = m.category
        let community: CommunityID = try Input.id(c.communityID, field: "category.community_id")
        let code = try Input.text(c.code, field: "category.code", max: 40)
        guard code.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }) else {
            throw LinliError.invalid("category.code", "must be a-z, 0-9 and _")
        }
        let mode: WorkOrderStore.DispatchMode
        switch c.dispatchMode {
        case .manual: mode = .manual
        case .grab: mode = .grab
        case .roundRobin: mode = .roundRobin
        default: throw LinliError.invalid("category.dispatch_mode", "is required")
        }
        let minutes = 1...(365 * 24 * 60)
        guard minutes.contains(Int(c.normalDeadlineMinutes)) else {
            throw LinliError.invalid("category.normal_deadline_minutes", "must be 1 to 525600")
        }
        guard minutes.contains(Int(c.emergencyDeadlineMinutes)) else {
            throw LinliError.invalid("category.emergency_deadline_minutes", "must be 1 to 525600")
        }
        let category = WorkOrderStore.Category(
            community: community, code: code, name: try Input.text(c.name, field: "category.name", max: 100),
            mode: mode, normalMinutes: Int(c.normalDeadlineMinutes), emergencyMinutes: Int(c.emergencyDeadlineMinutes))
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            try await store.configure(category, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ConfigureCategoryResponse()
            response.category = c
            response.category.code = code
            return response
        }
    }

    public func setTechnician(request: ServerRequest<Linli_Property_V1_SetTechnicianRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_SetTechnicianResponse>
    {
        let m = request.message
        _ = try Input.requestID(m.requestID)  // named first, before the other fields
        let user: UserID = try Input.id(m.userID, field: "user_id")
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            try await store.setTechnician(
                user, community: community, categories: m.categoryCodes, onDuty: m.onDuty,
                on: call.connection, logger: call.logger)
            return Linli_Property_V1_SetTechnicianResponse()
        }
    }

    public func setMyDuty(request: ServerRequest<Linli_Property_V1_SetMyDutyRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_SetMyDutyResponse>
    {
        _ = try Input.requestID(request.message.requestID)
        let onDuty = request.message.onDuty
        // Setting a duty flag twice has the same effect as once: naturally idempotent.
        return try await handler.read(request) { [store] call in
            try await store.setDuty(call.principal.subjectID, onDuty: onDuty, on: call.connection, logger: call.logger)
            return Linli_Property_V1_SetMyDutyResponse()
        }
    }

    public func fileRepair(request: ServerRequest<Linli_Property_V1_FileRepairRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_FileRepairResponse>
    {
        let m = request.message
        _ = try Input.requestID(m.requestID)  // named first, before the other fields
        let channel: String
        switch m.channel {
        case .app: channel = "app"
        case .phone: channel = "phone"
        case .frontDesk: channel = "front_desk"
        default: throw LinliError.invalid("channel", "is required")
        }
        guard m.priority == .normal || m.priority == .emergency else { throw LinliError.invalid("priority", "is required") }
        if m.photoRefs.count > 9 { throw LinliError.invalid("photo_refs", "at most 9 photos") }
        for (index, ref) in m.photoRefs.enumerated() { _ = try Input.text(ref, field: "photo_refs[\(index)]", max: 500) }
        let repair = WorkOrderStore.Repair(
            community: try Input.id(m.communityID, field: "community_id"),
            category: try Input.text(m.category, field: "category", max: 40),
            emergency: m.priority == .emergency, channel: channel,
            building: m.buildingID.isEmpty ? nil : try Input.id(m.buildingID, field: "building_id"),
            location: try Input.text(m.location, field: "location", max: 200),
            description: try Input.text(m.description_p, field: "description", max: 2000),
            photoRefs: m.photoRefs, preferredAt: m.hasPreferredAt ? m.preferredAt.date : nil,
            onBehalfOf: m.onBehalfOf.isEmpty ? nil : try Input.id(m.onBehalfOf, field: "on_behalf_of"),
            room: m.roomID.isEmpty ? nil : try Input.id(m.roomID, field: "room_id"))
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_FileRepairResponse()
            response.workOrder = .init(try await store.file(repair, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func getWorkOrder(request: ServerRequest<Linli_Property_V1_GetWorkOrderRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_GetWorkOrderResponse>
    {
        let id: WorkOrderID = try Input.id(request.message.workOrderID, field: "work_order_id")
        return try await handler.read(request) { [store] call in
            let order = try await store.get(id, for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_GetWorkOrderResponse()
            response.workOrder = .init(order)
            return response
        }
    }

    public func listWorkOrders(request: ServerRequest<Linli_Property_V1_ListWorkOrdersRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListWorkOrdersResponse>
    {
        let m = request.message
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        let state = m.state == .unspecified ? nil : try WorkOrderFlow.State(m.state)
        let filter = WorkOrderStore.Filter(
            community: try Input.id(m.communityID, field: "community_id"), state: state,
            assignedToMe: m.assignedToMe, overdueOnly: m.overdueOnly, poolOnly: m.poolOnly,
            after: after, limit: limit + 1)
        return try await handler.read(request) { [store] call in
            let orders = try await store.list(filter, for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ListWorkOrdersResponse()
            let page = PageToken.page(orders, limit: limit) { ($0.createdAt, $0.id.uuid) }
            response.workOrders = page.rows.map(Linli_Property_V1_WorkOrder.init)
            response.nextPageToken = page.next
            return response
        }
    }

    public func transitionWorkOrder(request: ServerRequest<Linli_Property_V1_TransitionWorkOrderRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_TransitionWorkOrderResponse>
    {
        let m = request.message
        _ = try Input.requestID(m.requestID)  // named first, before the other fields
        let id: WorkOrderID = try Input.id(m.workOrderID, field: "work_order_id")
        guard let action = WorkOrderFlow.Action(m.action) else { throw LinliError.invalid("action", "is required") }
        let transition = WorkOrderStore.Transition(
            action: action,
            assignee: m.assigneeID.isEmpty ? nil : try Input.id(m.assigneeID, field: "assignee_id"),
            note: try Input.text(m.note, field: "note", min: 0, max: 1000),
            completion: m.hasCompletion
                ? WorkOrderStore.Completion(
                    labourMinutes: Int(m.completion.labourMinutes),
                    materials: try Input.text(m.completion.materials, field: "completion.materials", min: 0, max: 2000),
                    chargeFen: m.completion.chargeFen) : nil,
            rating: m.hasRating
                ? WorkOrderStore.Rating(
                    speed: Int(m.rating.speed), attitude: Int(m.rating.attitude), quality: Int(m.rating.quality),
                    comment: try Input.text(m.rating.comment, field: "rating.comment", min: 0, max: 1000)) : nil)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_TransitionWorkOrderResponse()
            response.workOrder = .init(try await store.transition(id, transition, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func recordReturnVisit(request: ServerRequest<Linli_Property_V1_RecordReturnVisitRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_RecordReturnVisitResponse>
    {
        let m = request.message
        let id: WorkOrderID = try Input.id(m.workOrderID, field: "work_order_id")
        var satisfaction: Int?
        if m.reached {
            guard (1...5).contains(m.satisfaction) else {
                throw LinliError.invalid("satisfaction", "must be from 1 to 5 when the resident was reached")
            }
            satisfaction = Int(m.satisfaction)
        } else if m.satisfaction != 0 {
            throw LinliError.invalid("satisfaction", "must be 0 when the resident was not reached")
        }
        let note = try Input.text(m.note, field: "note", min: m.reached ? 0 : 2, max: 500)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_RecordReturnVisitResponse()
            response.workOrder = .init(
                try await store.recordReturnVisit(
                    id, reached: m.reached, satisfaction: satisfaction, note: note,
                    by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func getWorkloadStats(request: ServerRequest<Linli_Property_V1_GetWorkloadStatsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_GetWorkloadStatsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        guard m.hasFrom else { throw LinliError.invalid("from", "is required") }
        guard m.hasTo else { throw LinliError.invalid("to", "is required") }
        guard m.to.date > m.from.date else { throw LinliError.invalid("to", "must be after from") }
        return try await handler.read(request) { call in
            try Scope.requireCommunity(call.principal, community)
            let stats = try await WorkloadStats.read(community: community, from: m.from.date, to: m.to.date, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_GetWorkloadStatsResponse()
            response.technicians = stats.technicians.map { t in
                var row = Linli_Property_V1_TechnicianWorkload()
                row.userID = t.user.description
                row.displayName = t.name
                row.assigned = t.assigned
                row.accepted = t.accepted
                row.completed = t.completed
                row.labourMinutes = t.labourMinutes
                row.averageResponseMinutes = t.averageResponseMinutes
                row.averageCompletionMinutes = t.averageCompletionMinutes
                row.overdue = t.overdue
                row.averageRating = t.averageRating
                return row
            }
            response.categories = stats.categories.map { c in
                var row = Linli_Property_V1_CategoryVolume()
                row.category = c.code
                row.filed = c.filed
                row.completed = c.completed
                return row
            }
            response.filed = stats.filed
            response.completed = stats.completed
            response.completionRate = stats.filed == 0 ? 0 : Double(stats.completed) / Double(stats.filed)
            response.slaRate = stats.completed == 0 ? 0 : Double(stats.completedOnTime) / Double(stats.completed)
            response.overdueOpen = stats.overdueOpen
            return response
        }
    }
}

extension Linli_Property_V1_ConfigureCategoryRequest: IdempotentRequest {}
extension Linli_Property_V1_SetTechnicianRequest: IdempotentRequest {}
extension Linli_Property_V1_FileRepairRequest: IdempotentRequest {}
extension Linli_Property_V1_RecordReturnVisitRequest: IdempotentRequest {}
extension Linli_Property_V1_TransitionWorkOrderRequest: IdempotentRequest {}
