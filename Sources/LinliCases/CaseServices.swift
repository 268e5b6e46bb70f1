import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

func photoRefs(_ refs: [String]) throws(LinliError) -> [String] {
    if refs.count > 9 { throw .invalid("photo_refs", "at most 9 photos") }
    for (index, ref) in refs.enumerated() { _ = try Input.text(ref, field: "photo_refs[\(index)]", max: 500) }
    return refs
}

/// The `linli.property.v1.ComplaintService` RPCs.
public struct ComplaintService: Sendable {
    let store = ComplaintStore()
    let handler: Handler

    public init(database: Database, logger: Logger) {
        handler = Handler(database: database, logger: logger)
    }
}

extension ComplaintService: Linli_Property_V1_ComplaintService.ServiceProtocol {
    public func fileComplaint(request: ServerRequest<Linli_Property_V1_FileComplaintRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_FileComplaintResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        guard m.kind == .complaint || m.kind == .suggestion else { throw LinliError.invalid("kind", "is required") }
        let subject = try Input.text(m.subject, field: "subject", max: 200)
        let content = try Input.text(m.content, field: "content", max: 5000)
        let photos = try photoRefs(m.photoRefs)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_FileComplaintResponse()
            response.complaint = .init(
                try await store.file(
                    community: community, suggestion: m.kind == .suggestion, subject: subject,
                    content: content, photoRefs: photos, by: call.principal, on: call.connection,
                    logger: call.logger))
            return response
        }
    }

    public func replyComplaint(request: ServerRequest<Linli_Property_V1_ReplyComplaintRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ReplyComplaintResponse>
    {
        let m = request.message
        let id = try Input.id(m.complaintID, field: "complaint_id", as: IDTag.Complaint.self).uuid
        let body = try Input.text(m.body, field: "body", max: 5000)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_ReplyComplaintResponse()
            response.complaint = .init(try await store.reply(id, body: body, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func resolveComplaint(request: ServerRequest<Linli_Property_V1_ResolveComplaintRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ResolveComplaintResponse>
    {
        let m = request.message
        let id = try Input.id(m.complaintID, field: "complaint_id", as: IDTag.Complaint.self).uuid
        let resolution = try Input.text(m.resolution, field: "resolution", max: 5000)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_ResolveComplaintResponse()
            response.complaint = .init(
                try await store.resolve(id, resolution: resolution, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func rateComplaint(request: ServerRequest<Linli_Property_V1_RateComplaintRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_RateComplaintResponse>
    {
        let m = request.message
        let id = try Input.id(m.complaintID, field: "complaint_id", as: IDTag.Complaint.self).uuid
        guard (1...5).contains(m.satisfaction) else { throw LinliError.invalid("satisfaction", "must be 1 to 5") }
        let comment = try Input.text(m.comment, field: "comment", min: 0, max: 1000)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_RateComplaintResponse()
            response.complaint = .init(
                try await store.rate(
                    id, satisfaction: Int(clamping: m.satisfaction), comment: comment, by: call.principal,
                    on: call.connection, logger: call.logger))
            return response
        }
    }

    public func withdrawComplaint(request: ServerRequest<Linli_Property_V1_WithdrawComplaintRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_WithdrawComplaintResponse>
    {
        let m = request.message
        let id = try Input.id(m.complaintID, field: "complaint_id", as: IDTag.Complaint.self).uuid
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_WithdrawComplaintResponse()
            response.complaint = .init(try await store.withdraw(id, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func getComplaint(request: ServerRequest<Linli_Property_V1_GetComplaintRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_GetComplaintResponse>
    {
        let id = try Input.id(request.message.complaintID, field: "complaint_id", as: IDTag.Complaint.self).uuid
        return try await handler.read(request) { [store] call in
            let complaint = try await store.get(id, for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_GetComplaintResponse()
            response.complaint = .init(complaint)
            return response
        }
    }

    public func listComplaints(request: ServerRequest<Linli_Property_V1_ListComplaintsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListComplaintsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        let state: ComplaintStore.State?
        switch m.state {
        case .unspecified: state = nil
        case .UNRECOGNIZED: throw LinliError.invalid("state", "is not a complaint state")
        default: state = ComplaintStore.State.allCases[m.state.rawValue - 1]
        }
        return try await handler.read(request) { [store] call in
            let rows = try await store.list(
                community: community, state: state, after: after, limit: limit + 1, for: call.principal,
                on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ListComplaintsResponse()
            let page = PageToken.page(rows, limit: limit) { ($0.createdAt, $0.id) }
            response.complaints = page.rows.map(Linli_Property_V1_Complaint.init)
            response.nextPageToken = page.next
            return response
        }
    }
}

/// The `linli.property.v1.HotlineService` RPCs.
public struct HotlineService: Sendable {
    let store = HotlineStore()
    let handler: Handler

    public init(database: Database, logger: Logger) {
        handler = Handler(database: database, logger: logger)
    }
}

extension HotlineService: Linli_Property_V1_HotlineService.ServiceProtocol {
    public func importHotlineTicket(request: ServerRequest<Linli_Property_V1_ImportHotlineTicketRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ImportHotlineTicketResponse>
    {
        let m = request.message
        guard m.hasReceivedAt else { throw LinliError.invalid("received_at", "is required") }
        guard m.hasDeadline else { throw LinliError.invalid("deadline", "is required") }
        guard m.deadline.date > m.receivedAt.date else { throw LinliError.invalid("deadline", "must be after received_at") }
        let incoming = HotlineStore.Incoming(
            community: try Input.id(m.communityID, field: "community_id"),
            externalID: try Input.text(m.externalID, field: "external_id", max: 64),
            receivedAt: m.receivedAt.date, deadline: m.deadline.date,
            category: try Input.text(m.category, field: "category", min: 0, max: 100),
            content: try Input.text(m.content, field: "content", max: 10_000),
            callerName: try Input.text(m.callerName, field: "caller_name", min: 0, max: 100),
            callerPhone: try Input.text(m.callerPhone, field: "caller_phone", min: 0, max: 30))
        // The external id is the idempotency key: a re-import returns the stored ticket.
        return try await handler.read(request) { [store] call in
            let (ticket, created) = try await store.importTicket(incoming, by: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ImportHotlineTicketResponse()
            response.ticket = .init(ticket)
            response.created = created
            return response
        }
    }

    public func addHotlineStep(request: ServerRequest<Linli_Property_V1_AddHotlineStepRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_AddHotlineStepResponse>
    {
        let m = request.message
        let id = try Input.id(m.ticketID, field: "ticket_id", as: IDTag.HotlineTicket.self).uuid
        let note = try Input.text(m.note, field: "note", max: 2000)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_AddHotlineStepResponse()
            response.ticket = .init(try await store.step(id, note: note, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func replyHotlineTicket(request: ServerRequest<Linli_Property_V1_ReplyHotlineTicketRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ReplyHotlineTicketResponse>
    {
        let m = request.message
        let id = try Input.id(m.ticketID, field: "ticket_id", as: IDTag.HotlineTicket.self).uuid
        let reply = try Input.text(m.reply, field: "reply", max: 5000)
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_ReplyHotlineTicketResponse()
            response.ticket = .init(try await store.reply(id, reply: reply, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func closeHotlineTicket(request: ServerRequest<Linli_Property_V1_CloseHotlineTicketRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_CloseHotlineTicketResponse>
    {
        let m = request.message
        let id = try Input.id(m.ticketID, field: "ticket_id", as: IDTag.HotlineTicket.self).uuid
        return try await handler.write(request, context) { [store] call in
            var response = Linli_Property_V1_CloseHotlineTicketResponse()
            response.ticket = .init(try await store.close(id, by: call.principal, on: call.connection, logger: call.logger))
            return response
        }
    }

    public func getHotlineTicket(request: ServerRequest<Linli_Property_V1_GetHotlineTicketRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_GetHotlineTicketResponse>
    {
        let id = try Input.id(request.message.ticketID, field: "ticket_id", as: IDTag.HotlineTicket.self).uuid
        return try await handler.read(request) { [store] call in
            let ticket = try await store.get(id, for: call.principal, on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_GetHotlineTicketResponse()
            response.ticket = .init(ticket)
            return response
        }
    }

    public func listHotlineTickets(request: ServerRequest<Linli_Property_V1_ListHotlineTicketsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Property_V1_ListHotlineTicketsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [store] call in
            let rows = try await store.list(
                community: community, overdueOnly: m.overdueOnly, after: after, limit: limit + 1, for: call.principal,
                on: call.connection, logger: call.logger)
            var response = Linli_Property_V1_ListHotlineTicketsResponse()
            let page = PageToken.page(rows, limit: limit) { ($0.receivedAt, $0.id) }
            response.tickets = page.rows.map(Linli_Property_V1_HotlineTicket.init)
            response.nextPageToken = page.next
            return response
        }
    }
}

extension Linli_Property_V1_FileComplaintRequest: IdempotentRequest {}
extension Linli_Property_V1_ReplyComplaintRequest: IdempotentRequest {}
extension Linli_Property_V1_ResolveComplaintRequest: IdempotentRequest {}
extension Linli_Property_V1_RateComplaintRequest: IdempotentRequest {}
extension Linli_Property_V1_WithdrawComplaintRequest: IdempotentRequest {}
extension Linli_Property_V1_AddHotlineStepRequest: IdempotentRequest {}
extension Linli_Property_V1_ReplyHotlineTicketRequest: IdempotentRequest {}
extension Linli_Property_V1_CloseHotlineTicketRequest: IdempotentRequest {}

extension Linli_Property_V1_Complaint {
    init(_ c: ComplaintStore.Complaint) {
        self.init()
        id = c.id.uuidString.lowercased()
        communityID = c.community.description
        kind = c.suggestion ? .suggestion : .complaint
        subject = c.subject
        content = c.content
        photoRefs = c.photoRefs
        filedBy = c.filedBy.description
        state = Linli_Property_V1_ComplaintState(rawValue: (ComplaintStore.State.allCases.firstIndex(of: c.state) ?? -1) + 1) ?? .unspecified
        resolution = c.resolution
        satisfaction = Int32(clamping: c.satisfaction ?? 0)
        satisfactionComment = c.satisfactionComment
        createdAt = Google_Protobuf_Timestamp(date: c.createdAt)
        if let resolved = c.resolvedAt { resolvedAt = Google_Protobuf_Timestamp(date: resolved) }
        messages = c.messages.map { message in
            var row = Linli_Property_V1_CaseMessage()
            row.authorID = message.author.description
            row.body = message.body
            row.at = Google_Protobuf_Timestamp(date: message.at)
            row.fromStaff = message.fromStaff
            return row
        }
    }
}

extension Linli_Property_V1_HotlineTicket {
    init(_ t: HotlineStore.Ticket) {
        self.init()
        id = t.id.uuidString.lowercased()
        communityID = t.community.description
        externalID = t.externalID
        receivedAt = Google_Protobuf_Timestamp(date: t.receivedAt)
        deadline = Google_Protobuf_Timestamp(date: t.deadline)
        category = t.category
        content = t.content
        callerName = t.callerName
        callerPhone = PersonalData.maskPhone(t.callerPhone)
        state = Linli_Property_V1_HotlineState(rawValue: (HotlineStore.State.allCases.firstIndex(of: t.state) ?? -1) + 1) ?? .unspecified
        reply = t.reply
        if let replied = t.repliedAt { repliedAt = Google_Protobuf_Timestamp(date: replied) }
        overdue = t.overdue
        steps = t.steps.map { step in
            var row = Linli_Property_V1_HotlineStep()
            row.actorID = step.actor.uuidString.lowercased()
            row.note = step.note
            row.at = Google_Protobuf_Timestamp(date: step.at)
            return row
        }
    }
}
