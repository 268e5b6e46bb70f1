import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliServer
import PostgresNIO
import SwiftProtobuf
import Testing

@Suite("Complaints and 12345 hotline tickets")
struct CaseTests {
    @Test("a complaint runs open → handling → resolved → closed with its thread; others cannot see it; wrong steps are refused")
    func complaint() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let complaints = Linli_Property_V1_ComplaintService.Client(wrapping: server.client)
        let resident = try await server.login(demo, "resident1")
        let manager = try await server.login(demo, "manager")

        var file = Linli_Property_V1_FileComplaintRequest()
        file.requestID = UUID().uuidString
        file.communityID = demo.community.description
        file.kind = .complaint
        file.subject = "夜间施工噪音"
        file.content = "3栋装修每晚十点后仍在施工。"
        let filed = try await complaints.fileComplaint(file, metadata: resident).complaint
        #expect(filed.state == .open)
        #expect(try await complaints.fileComplaint(file, metadata: resident).complaint.id == filed.id)  // retry replays

        func reply(_ body: String, as session: Metadata) async throws -> Linli_Property_V1_Complaint {
            var request = Linli_Property_V1_ReplyComplaintRequest()
            request.requestID = UUID().uuidString
            request.complaintID = filed.id
            request.body = body
            return try await complaints.replyComplaint(request, metadata: session).complaint
        }
        #expect(try await reply("已联系业主，今晚起十点前停工。", as: manager).state == .handling)
        let thread = try await reply("谢谢，今晚看看效果。", as: resident)
        #expect(thread.messages.map(\.fromStaff) == [true, false])
        #expect(await rpcCode { try await reply("我也要说", as: try await server.login(demo, "resident2")) } == .notFound)

        var rate = Linli_Property_V1_RateComplaintRequest()
        rate.requestID = UUID().uuidString
        rate.complaintID = filed.id
        rate.satisfaction = 5
        #expect(await rpcCode { try await complaints.rateComplaint(rate, metadata: resident) } == .failedPrecondition)

        var resolve = Linli_Property_V1_ResolveComplaintRequest()
        resolve.requestID = UUID().uuidString
        resolve.complaintID = filed.id
        resolve.resolution = "已与施工方约定作业时间。"
        #expect(try await complaints.resolveComplaint(resolve, metadata: manager).complaint.state == .resolved)
        let closed = try await complaints.rateComplaint(rate, metadata: resident).complaint
        #expect(closed.state == .closed && closed.satisfaction == 5)

        var withdraw = Linli_Property_V1_WithdrawComplaintRequest()
        withdraw.requestID = UUID().uuidString
        withdraw.complaintID = filed.id
        #expect(await rpcCode { try await complaints.withdrawComplaint(withdraw, metadata: resident) } == .failedPrecondition)

        rate.requestID = UUID().uuidString
        rate.satisfaction = 9
        #expect(await rpcError { try await complaints.rateComplaint(rate, metadata: resident) }?.message.hasPrefix("satisfaction") == true)
        file.requestID = UUID().uuidString
        file.subject = ""
        #expect(await rpcError { try await complaints.fileComplaint(file, metadata: resident) }?.message.hasPrefix("subject") == true)

        var list = Linli_Property_V1_ListComplaintsRequest()
        list.communityID = demo.community.description
        #expect(try await complaints.listComplaints(list, metadata: manager).complaints.map(\.id) == [filed.id])
        #expect(try await complaints.listComplaints(list, metadata: try await server.login(demo, "resident2")).complaints.isEmpty)
    }

    @Test("a 12345 ticket is imported once, handled, replied through the outbox and closed; overdue ones are listed")
    func hotline() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let hotline = Linli_Property_V1_HotlineService.Client(wrapping: server.client)
        let manager = try await server.login(demo, "manager")

        var ticket = Linli_Property_V1_ImportHotlineTicketRequest()
        ticket.communityID = demo.community.description
        ticket.externalID = "12345-2026-112500017"
        ticket.receivedAt = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(-3 * 86400))
        ticket.deadline = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(-3600))
        ticket.category = "物业服务"
        ticket.content = "小区电梯频繁故障，物业不处理。"
        ticket.callerName = "陈女士"
        ticket.callerPhone = "13812345678"
        let first = try await hotline.importHotlineTicket(ticket, metadata: manager)
        #expect(first.created && first.ticket.callerPhone == "138****5678" && first.ticket.overdue)
        ticket.content = "重复推送，内容略有不同"
        let again = try await hotline.importHotlineTicket(ticket, metadata: manager)
        #expect(!again.created && again.ticket.id == first.ticket.id && again.ticket.content == first.ticket.content)

        var overdue = Linli_Property_V1_ListHotlineTicketsRequest()
        overdue.communityID = demo.community.description
        overdue.overdueOnly = true
        #expect(try await hotline.listHotlineTickets(overdue, metadata: manager).tickets.map(\.id) == [first.ticket.id])

        var close = Linli_Property_V1_CloseHotlineTicketRequest()
        close.requestID = UUID().uuidString
        close.ticketID = first.ticket.id
        #expect(await rpcCode { try await hotline.closeHotlineTicket(close, metadata: manager) } == .failedPrecondition)

        var step = Linli_Property_V1_AddHotlineStepRequest()
        step.requestID = UUID().uuidString
        step.ticketID = first.ticket.id
        step.note = "已通知电梯维保单位上门检修"
        #expect(try await hotline.addHotlineStep(step, metadata: manager).ticket.state == .handling)
        var reply = Linli_Property_V1_ReplyHotlineTicketRequest()
        reply.requestID = UUID().uuidString
        reply.ticketID = first.ticket.id
        reply.reply = "已更换曳引机部件，电梯恢复运行。"
        let replied = try await hotline.replyHotlineTicket(reply, metadata: manager).ticket
        #expect(replied.state == .replied && replied.steps.count == 2)
        #expect(try await hotline.listHotlineTickets(overdue, metadata: manager).tickets.isEmpty)
        #expect(try await hotline.closeHotlineTicket(close, metadata: manager).ticket.state == .closed)

        let queued = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            let rows = try await connection.query(
                "SELECT payload->>'external_id' FROM outbox WHERE topic = 'hotline.reply'",
                logger: server.app.database.logger)
            var ids: [String] = []
            for try await id in rows.decode(String.self) { ids.append(id) }
            return ids
        }
        #expect(queued == ["12345-2026-112500017"])
        // Residents have no access to hotline tickets.
        #expect(
            await rpcCode { try await hotline.listHotlineTickets(overdue, metadata: try await server.login(demo, "resident1")) } == .permissionDenied)
        ticket.externalID = "12345-x"
        ticket.deadline = ticket.receivedAt
        #expect(await rpcError { try await hotline.importHotlineTicket(ticket, metadata: manager) }?.message.hasPrefix("deadline") == true)
    }
}
