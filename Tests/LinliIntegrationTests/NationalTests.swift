import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliServer
import PostgresNIO
import Testing

@Suite("National layer")
struct NationalTests {
    @Test("publishing records a delta in the same transaction; the rollup folds it once into the operator overview")
    func overview() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        _ = try await server.notices.publishNotice(demo.publishRequest(title: "垃圾分类宣传周"), metadata: try await server.login(demo, "manager"))
        #expect(try await pendingDeltas(server, demo) == 4)  // 1 community, 3 notices

        try await server.app.rollup.foldAll()
        #expect(try await pendingDeltas(server, demo) == 0)
        try await server.app.rollup.foldAll()  // folding again adds nothing

        let overview = try await server.platform.getNationalOverview(.init(), metadata: try await server.operatorLogin())
        let mine = try #require(overview.perTenant.first { $0.tenantSlug == demo.tenant.slug })
        #expect(mine.communities == 1)
        #expect(mine.noticesPublished == 3)
        #expect(overview.noticesPublished == overview.perTenant.reduce(0) { $0 + $1.noticesPublished })
        #expect(overview.tenants >= Int64(overview.perTenant.count))
    }

    @Test("rooms, residents and complaints reach the operators as a complaint rate per 1,000 rooms, per tenant and per community")
    func complaintRate() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let rooms = try await importCSV(
            BaseDataClient(wrapping: server.client), demo, .rooms,
            [
                "building,number,area_m2,kind", "1栋,101,80,residence", "1栋,102,80,residence",
                "2栋,101,80,residence", "2栋,102,80,residence",
            ], metadata: manager)
        #expect(rooms.committed)
        let complaints = Linli_Property_V1_ComplaintService.Client(wrapping: server.client)
        for subject in ["楼道堆物", "夜间噪音"] {
            var file = Linli_Property_V1_FileComplaintRequest()
            file.requestID = UUID().uuidString
            file.communityID = demo.community.description
            file.kind = .complaint
            file.subject = subject
            file.content = "请物业尽快处理。"
            _ = try await complaints.fileComplaint(file, metadata: try await server.login(demo, "resident1"))
        }
        try await server.app.rollup.foldAll()
        let overview = try await server.platform.getNationalOverview(.init(), metadata: try await server.operatorLogin())
        let mine = try #require(overview.perTenant.first { $0.tenantSlug == demo.tenant.slug })
        #expect(mine.rooms == 4 && mine.complaintsFiled == 2 && mine.complaintsPerThousandRooms == 500)
        // The watch list spans every tenant of the shared test server: highest rate first, and ours is
        // on it unless ten communities rate at least as high.
        let rates = overview.highestComplaintRates.map(\.complaintsPerThousandRooms)
        #expect(rates == rates.sorted(by: >) && rates.count <= 10)
        if let watched = overview.highestComplaintRates.first(where: { $0.communityID == demo.community.description }) {
            #expect(watched.complaintsFiled == 2 && watched.rooms == 4 && watched.complaintsPerThousandRooms == 500)
        } else {
            #expect(rates.count == 10 && rates.allSatisfy { $0 >= 500 })
        }
        #expect(overview.rooms == overview.perTenant.reduce(0) { $0 + $1.rooms })
    }

    func pendingDeltas(_ server: TestServer, _ demo: DemoTenant) async throws -> Int {
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            let rows = try await connection.query("SELECT coalesce(sum(delta), 0)::int8 FROM metric_deltas", logger: server.app.database.logger)
            for try await count in rows.decode(Int.self) { return count }
            return -1
        }
    }
}
