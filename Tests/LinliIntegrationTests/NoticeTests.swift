import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliServer
import PostgresNIO
import SwiftProtobuf
import Testing

@Suite("Notices end to end over TLS")
struct NoticeTests {
    typealias Publish = Linli_Property_V1_PublishNoticeRequest

    func list(_ server: TestServer, _ demo: DemoTenant, as session: Metadata, pageSize: Int32 = 0, token: String = "")
        async throws -> Linli_Property_V1_ListNoticesResponse
    {
        var request = Linli_Property_V1_ListNoticesRequest()
        request.communityID = demo.community.description
        request.page.pageSize = pageSize
        request.page.pageToken = token
        return try await server.notices.listNotices(request, metadata: session)
    }

    @Test("residents see whole-community notices and their building's, pinned first, newest first")
    func audienceAndOrder() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        _ = try await server.notices.publishNotice(demo.publishRequest(title: "2栋专属", buildings: [demo.buildings[1]]), metadata: manager)
        _ = try await server.notices.publishNotice(demo.publishRequest(title: "全体最新"), metadata: manager)

        let one = try await list(server, demo, as: try await server.login(demo, "resident1"))
        #expect(one.notices.map(\.title) == ["欢迎使用邻里", "全体最新", "1栋周三停水"])
        let two = try await list(server, demo, as: try await server.login(demo, "resident2"))
        #expect(two.notices.map(\.title) == ["欢迎使用邻里", "全体最新", "2栋专属"])
        let staff = try await list(server, demo, as: manager)
        #expect(staff.notices.count == 4)
    }

    @Test("a move reaches the feed on its day, in the same session: in, not before the move-in day, out")
    func moveReachesFeed() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        _ = try await server.notices.publishNotice(demo.publishRequest(title: "2栋专属", buildings: [demo.buildings[1]]), metadata: manager)
        let session = try await server.login(demo, "resident1")
        let user = try #require(demo.users["resident1"])
        #expect(try await !list(server, demo, as: session).notices.contains { $0.title == "2栋专属" })

        let base = BaseDataClient(wrapping: server.client)
        func room(_ number: String) async throws -> String {
            var room = Linli_Property_V1_CreateRoomRequest()
            room.requestID = UUID().uuidString
            room.buildingID = demo.buildings[1].description
            room.number = number
            room.areaCentiM2 = 9_000
            room.kind = .residence
            return try await base.createRoom(room, metadata: manager).room.id
        }
        let later = try await room("808")
        let now = try await room("809")
        // Moving in tomorrow: not yet.
        var register = Linli_Property_V1_RegisterResidentRequest()
        register.requestID = UUID().uuidString
        register.communityID = demo.community.description
        register.name = "搬家的住户"
        register.userID = user.description
        register.roomID = later
        register.relation = .renter
        register.moveIn = AccessFixture.day(offset: 1)
        let resident = try await base.registerResident(register, metadata: manager).resident
        #expect(try await !list(server, demo, as: session).notices.contains { $0.title == "2栋专属" })

        // Moving into another room of 2栋 today: seen at once, and it may be marked read.
        var move = Linli_Property_V1_MoveInRequest()
        move.requestID = UUID().uuidString
        move.residentID = resident.id
        move.roomID = now
        move.relation = .renter
        move.moveIn = AccessFixture.today
        let moved = try await base.moveIn(move, metadata: manager).resident
        let feed = try await list(server, demo, as: session).notices
        let notice = try #require(feed.first { $0.title == "2栋专属" }, "\(feed.map(\.title))")
        _ = try await server.notices.markNoticeRead(
            .with {
                $0.requestID = UUID().uuidString
                $0.noticeID = notice.id
            }, metadata: session)

        // Out of both (the later one before it began): gone again.
        #expect(moved.residencies.count == 2)
        for residency in moved.residencies {
            var out = Linli_Property_V1_MoveOutRequest()
            out.requestID = UUID().uuidString
            out.residencyID = residency.id
            out.moveOut = residency.moveIn
            _ = try await base.moveOut(out, metadata: manager)
        }
        #expect(try await !list(server, demo, as: session).notices.contains { $0.title == "2栋专属" })
    }

    @Test("expired notices leave the resident feed")
    func expiry() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        var request = demo.publishRequest(title: "马上过期")
        request.expiresAt = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(1))
        _ = try await server.notices.publishNotice(request, metadata: manager)
        let resident = try await server.login(demo, "resident1")
        #expect(try await list(server, demo, as: resident).notices.contains { $0.title == "马上过期" })
        try await Task.sleep(for: .milliseconds(1300))
        #expect(try await !list(server, demo, as: resident).notices.contains { $0.title == "马上过期" })
    }

    @Test("paging walks the whole feed once, in order")
    func paging() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        for index in 0..<7 {
            _ = try await server.notices.publishNotice(demo.publishRequest(title: "通知 \(index)", pinned: index == 3), metadata: manager)
        }
        var titles: [String] = []
        var token = ""
        repeat {
            let page = try await list(server, demo, as: manager, pageSize: 3, token: token)
            #expect(page.notices.count <= 3)
            titles += page.notices.map(\.title)
            token = page.nextPageToken
        } while !token.isEmpty
        #expect(titles == ["通知 3", "欢迎使用邻里", "通知 6", "通知 5", "通知 4", "通知 2", "通知 1", "通知 0", "1栋周三停水"])
    }

    @Test("mark read is idempotent and read counts follow the audience")
    func readStats() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let resident = try await server.login(demo, "resident1")
        var mark = Linli_Property_V1_MarkNoticeReadRequest()
        mark.requestID = UUID().uuidString
        mark.noticeID = demo.notices[1].description
        let first = try await server.notices.markNoticeRead(mark, metadata: resident)
        let again = try await server.notices.markNoticeRead(mark, metadata: resident)
        #expect(first.readAt == again.readAt)

        // resident2 lives in 2栋: the 1栋 notice does not reach them.
        let other = try await server.login(demo, "resident2")
        #expect(await rpcCode { try await server.notices.markNoticeRead(mark, metadata: other) } == .notFound)

        var stats = Linli_Property_V1_GetNoticeReadStatsRequest()
        stats.noticeID = demo.notices[1].description
        let manager = try await server.login(demo, "manager")
        let reply = try await server.notices.getNoticeReadStats(stats, metadata: manager)
        #expect(reply.readCount == 1)
        #expect(reply.audienceCount == 1)
        stats.noticeID = demo.notices[0].description
        #expect(try await server.notices.getNoticeReadStats(stats, metadata: manager).audienceCount == 2)
        #expect(await rpcCode { try await server.notices.getNoticeReadStats(stats, metadata: resident) } == .permissionDenied)
    }

    @Test("a retried publish returns the first notice; the same id with other input is refused")
    func idempotentPublish() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let request = demo.publishRequest()
        let first = try await server.notices.publishNotice(request, metadata: manager)
        let retry = try await server.notices.publishNotice(request, metadata: manager)
        #expect(first.notice == retry.notice)
        var changed = request
        changed.title = "换了标题"
        #expect(await rpcCode { try await server.notices.publishNotice(changed, metadata: manager) } == .failedPrecondition)

        let stored = try await server.app.database.tenantTransaction(demo.tenant) { connection in
            let rows = try await connection.query("SELECT count(*) FROM notices WHERE title = '电梯年检'", logger: server.app.database.logger)
            for try await count in rows.decode(Int.self) { return count }
            return -1
        }
        #expect(stored == 1)
    }

    @Test(
        "every notices RPC names the bad field",
        arguments: [
            ("request_id", { @Sendable (r: inout Publish) in r.requestID = "" }),
            ("community_id", { @Sendable (r: inout Publish) in r.communityID = "not-a-uuid" }),
            ("title", { @Sendable (r: inout Publish) in r.title = "" }),
            ("title", { @Sendable (r: inout Publish) in r.title = String(repeating: "长", count: 201) }),
            ("body", { @Sendable (r: inout Publish) in r.body = "   " }),
            ("category", { @Sendable (r: inout Publish) in r.category = .unspecified }),
            ("building_ids", { @Sendable (r: inout Publish) in r.buildingIds = ["x"] }),
            ("building_ids", { @Sendable (r: inout Publish) in r.buildingIds = [UUIDv7.make().uuidString] }),
            ("expires_at", { @Sendable (r: inout Publish) in r.expiresAt = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(-60)) }),
        ] as [(String, @Sendable (inout Publish) -> Void)])
    func badPublish(field: String, mutate: @Sendable (inout Publish) -> Void) async throws {
        let server = try await TestServer.shared.value
        let demo = try await Self.sharedTenant.value
        var request = demo.publishRequest()
        mutate(&request)
        let error = await rpcError { try await server.notices.publishNotice(request, metadata: try await server.login(demo, "manager")) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.hasPrefix(field) == true, "\(error?.message ?? "")")
        #expect(error?.metadata[stringValues: "invalid-field"].first { _ in true }?.hasPrefix(field) == true)
    }

    @Test("list, mark read and read stats name their bad fields")
    func badOtherRPCs() async throws {
        let server = try await TestServer.shared.value
        let demo = try await Self.sharedTenant.value
        let manager = try await server.login(demo, "manager")
        var list = Linli_Property_V1_ListNoticesRequest()
        list.communityID = "nope"
        #expect(await rpcError { try await server.notices.listNotices(list, metadata: manager) }?.message.hasPrefix("community_id") == true)
        list.communityID = demo.community.description
        list.page.pageSize = 1000
        #expect(await rpcError { try await server.notices.listNotices(list, metadata: manager) }?.message.hasPrefix("page.page_size") == true)
        list.page.pageSize = 10
        list.page.pageToken = "garbage!"
        #expect(await rpcError { try await server.notices.listNotices(list, metadata: manager) }?.message.hasPrefix("page.page_token") == true)

        var mark = Linli_Property_V1_MarkNoticeReadRequest()
        mark.noticeID = demo.notices[0].description
        #expect(await rpcError { try await server.notices.markNoticeRead(mark, metadata: manager) }?.message.hasPrefix("request_id") == true)
        mark.requestID = UUID().uuidString
        mark.noticeID = ""
        #expect(await rpcError { try await server.notices.markNoticeRead(mark, metadata: manager) }?.message.hasPrefix("notice_id") == true)

        var stats = Linli_Property_V1_GetNoticeReadStatsRequest()
        stats.noticeID = "123"
        #expect(await rpcError { try await server.notices.getNoticeReadStats(stats, metadata: manager) }?.message.hasPrefix("notice_id") == true)
        stats.noticeID = UUIDv7.make().uuidString
        #expect(await rpcCode { try await server.notices.getNoticeReadStats(stats, metadata: manager) } == .notFound)
    }

    static let sharedTenant = Task { try await TestServer.shared.value.newTenant() }
}
