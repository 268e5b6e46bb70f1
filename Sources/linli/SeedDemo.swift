import ArgumentParser
import Foundation
import LinliCore
import LinliIdentity
import LinliNotices
import LinliPlatform
import LinliServer
import PostgresNIO

/// `linli seed-demo`: a demo tenant to try the API against. Safe to run again: what exists
/// is kept, and the credentials are printed each time.
struct SeedDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed-demo",
        abstract: "Create the demo tenant (community, buildings, staff, residents, notices) and a platform operator.")

    @Option(help: "Password given to every demo account.") var password = "linli-demo-2026"

    static let staff: [(String, String, Role)] = [
        ("manager", "王经理", .manager), ("cashier", "李出纳", .cashier),
        ("technician", "张师傅", .technician), ("guard", "赵保安", .guardian),
    ]

    func run() async throws {
        let app = try Runtime.application()
        let logger = app.database.logger
        let password = password
        let summary: String = try await app.withStorage {
            _ = try await app.users.upsertOperator(username: "operator", displayName: "平台运营", password: password)
            if let existing = try await app.tenants.find(slug: "demo") {
                return "demo tenant exists (\(existing.id)); kept as it is"
            }
            let tenant = try await app.provisioner.create(slug: "demo", name: "邻里示范物业", plan: "standard").ref
            return try await app.database.tenantTransaction(tenant) { connection in
                let community = try await PlatformService.createCommunity(
                    name: "阳光花园", address: "上海市浦东新区阳光路 88 号", timeZone: "Asia/Shanghai",
                    buildings: ["1栋", "2栋", "3栋"], on: connection, logger: logger)
                let communityID: CommunityID = try Input.id(community.id, field: "community_id")
                let buildings: [BuildingID] = try Input.ids(community.buildings.map(\.id), field: "building_ids")
                var staffIDs: [UserID] = []
                for (username, name, role) in Self.staff {
                    staffIDs += [try await app.users.create(
                        .init(username: username, displayName: name, password: password, role: role, communityIDs: [communityID]),
                        on: connection, logger: logger)]
                }
                let manager = staffIDs[0]  // `staff` lists the manager first
                for (index, building) in buildings.prefix(2).enumerated() {
                    _ = try await app.users.create(
                        .init(username: "resident\(index + 1)", displayName: "住户\(index + 1)", password: password,
                              role: .resident, communityIDs: [communityID], buildingIDs: [building]),
                        on: connection, logger: logger)
                }
                let board = NoticeBoard(database: app.database)
                let drafts = [
                    try NoticeBoard.Draft(communityID: community.id, title: "欢迎使用邻里", body: "物业服务中心电话 021-5555 0100。",
                                          category: 1, pinned: true, buildingIDs: [], expiresAt: nil),
                    try NoticeBoard.Draft(communityID: community.id, title: "1栋周三停水", body: "周三 9:00-12:00 更换水泵。",
                                          category: 3, pinned: false, buildingIDs: [community.buildings[0].id], expiresAt: nil),
                ]
                for draft in drafts { _ = try await board.publish(draft, by: manager, on: connection, logger: logger) }
                return "demo tenant created (\(tenant.id)); community \(community.id)"
            }
        }
        print("""
            \(summary)
            accounts (password \(password)):
              operator                       platform operator (tenant_slug empty)
              manager cashier technician guard   staff of 阳光花园 (tenant_slug demo)
              resident1 resident2            residents of 1栋 and 2栋 (tenant_slug demo)
            """)
    }
}
