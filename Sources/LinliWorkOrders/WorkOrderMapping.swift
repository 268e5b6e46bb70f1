import Foundation
import LinliAPI
import LinliCore
import SwiftProtobuf

// Domain ⇄ protobuf. The proto enums list states and actions in the order of
// `WorkOrderFlow.State.allCases` and `WorkOrderFlow.Action.allCases`, starting at 1.

extension WorkOrderFlow.State {
    init(_ proto: Linli_Property_V1_WorkOrderState) throws(LinliError) {
        let index = proto.rawValue - 1
        guard Self.allCases.indices.contains(index) else { throw .invalid("state", "is not a work order state") }
        self = Self.allCases[index]
    }

    var proto: Linli_Property_V1_WorkOrderState {
        Linli_Property_V1_WorkOrderState(rawValue: (Self.allCases.firstIndex(of: self) ?? -1) + 1) ?? .unspecified
    }
}

extension WorkOrderFlow.Action {
    init?(_ proto: Linli_Property_V1_WorkOrderAction) {
        let index = proto.rawValue - 1
        guard Self.allCases.indices.contains(index) else { return nil }
        self = Self.allCases[index]
    }

    var proto: Linli_Property_V1_WorkOrderAction {
        Linli_Property_V1_WorkOrderAction(rawValue: (Self.allCases.firstIndex(of: self) ?? -1) + 1) ?? .unspecified
    }
}

extension Linli_Property_V1_WorkOrder {
    init(_ order: WorkOrderStore.WorkOrder) {
        self.init()
        id = order.id.description
        communityID = order.community.description
        category = order.category
        priority = order.emergency ? .emergency : .normal
        channel =
            switch order.channel {
            case "phone": .phone
            case "front_desk": .frontDesk
            default: .app
            }
        state = order.state.proto
        buildingID = order.building?.description ?? ""
        location = order.location
        description_p = order.description
        photoRefs = order.photoRefs
        if let preferred = order.preferredAt { preferredAt = Google_Protobuf_Timestamp(date: preferred) }
        requesterID = order.requester.description
        filedBy = order.filedBy.description
        assigneeID = order.assignee?.description ?? ""
        createdAt = Google_Protobuf_Timestamp(date: order.createdAt)
        dueAt = Google_Protobuf_Timestamp(date: order.dueAt)
        overdue = order.overdue
        reopenCount = Int32(order.reopenCount)
        if let done = order.completion {
            completion.labourMinutes = Int32(done.labourMinutes)
            completion.materials = done.materials
            completion.chargeFen = done.chargeFen
        }
        if let score = order.rating {
            rating.speed = Int32(score.speed)
            rating.attitude = Int32(score.attitude)
            rating.quality = Int32(score.quality)
            rating.comment = score.comment
        }
        events = order.events.map { event in
            var row = Linli_Property_V1_WorkOrderEvent()
            row.action = WorkOrderFlow.Action(rawValue: event.action)?.proto ?? .unspecified
            row.fromState = event.from?.proto ?? .unspecified
            row.toState = event.to.proto
            row.actorID = event.actor.description
            row.assigneeID = event.assignee?.description ?? ""
            row.note = event.note
            row.at = Google_Protobuf_Timestamp(date: event.at)
            return row
        }
        roomID = order.room?.description ?? ""
        roomLabel = order.roomLabel
        returnVisits = order.returnVisits.map { visit in
            var row = Linli_Property_V1_ReturnVisit()
            row.visitedBy = visit.visitedBy.description
            row.reached = visit.reached
            row.satisfaction = Int32(visit.satisfaction ?? 0)
            row.note = visit.note
            row.at = Google_Protobuf_Timestamp(date: visit.at)
            return row
        }
    }
}
