import Foundation
import LinliCore
import LinliIdentity
import LinliNotices
import LinliPlatform
import LinliTenancy

/// A tenant filled with one community and the people of a small property office: what
/// `linli seed-demo` creates, and what each integration test starts from.
public struct DemoTenant: Sendable {
    public var tenant: TenantRef
    public var community: CommunityID
    /// 1栋, 2栋, 3栋.
    public var buildings: [BuildingID]
    /// Username to user id: manager, cashier, technician, guard, merchant (a shop owner's account),
    /// resident1 (1栋), resident2 (2栋).
    public var users: [String: UserID]
    /// A pinned notice to everyone, then one to 1栋 only.
    public var notices: [NoticeID]
    public var password: String

    static let staff: [(String, String, Role)] = [
        ("manager", "王经理", .manager), ("cashier", "李出纳", .cashier),
        ("technician", "张师傅", .technician), ("guard", "赵保安", .guardian), ("merchant", "陈老板", .merchant),
    ]
}

extension LinliApplication {
    /// Provisions tenant `slug` and fills it; every account gets `password`.
    public func seedDemoTenant(slug: String, name: String, password: String) async throws -> DemoTenant {
        let tenant = try await provisioner.create(slug: slug, name: name).ref
        let logger = database.logger
        return try await database.tenantTransaction(tenant) { connection in
            let made = try await PlatformService.createCommunity(
                name: "阳光花园", address: "上海市浦东新区阳光路 88 号", timeZone: BusinessDay.defaultTimeZone,
                buildings: ["1栋", "2栋", "3栋"], on: connection, logger: logger)
            let community: CommunityID = try Input.id(made.id, field: "community_id")
            let buildings: [BuildingID] = try Input.ids(made.buildings.map(\.id), field: "building_ids")
            var users: [String: UserID] = [:]
            for (username, displayName, role) in DemoTenant.staff {
                users[username] = try await self.users.create(
                    .init(
                        username: username, displayName: displayName, password: password, role: role,
                        communityIDs: [community]),
                    on: connection, logger: logger)
            }
            for index in 0..<2 {
                users["resident\(index + 1)"] = try await self.users.create(
                    .init(
                        username: "resident\(index + 1)", displayName: "住户\(index + 1)", password: password,
                        role: .resident, communityIDs: [community], buildingIDs: [buildings[index]]),
                    on: connection, logger: logger)
            }
            let board = NoticeStore(database: database)
            let drafts = [
                try NoticeStore.Draft(
                    communityID: made.id, title: "欢迎使用邻里", body: "物业服务中心电话 021-5555 0100。",
                    category: 1, pinned: true, buildingIDs: [], expiresAt: nil),
                try NoticeStore.Draft(
                    communityID: made.id, title: "1栋周三停水", body: "周三 9:00-12:00 更换水泵。",
                    category: 3, pinned: false, buildingIDs: [made.buildings[0].id], expiresAt: nil),
            ]
            guard let author = users["manager"] else { throw LinliError(.internal, "demo manager was not created") }
            var notices: [NoticeID] = []
            for draft in drafts {
                notices.append(try await board.publish(draft, by: author, on: connection, logger: logger).id)
            }
            return DemoTenant(
                tenant: tenant, community: community, buildings: buildings, users: users,
                notices: notices, password: password)
        }
    }
}
