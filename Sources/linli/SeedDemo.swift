import ArgumentParser
import Foundation
import LinliAlarms
import LinliBaseData
import LinliCommerce
import LinliCore
import LinliDevices
import LinliParking
import LinliPoints
import LinliServer
import LinliTenancy

/// `linli seed-demo`: a demo tenant to try the API against. Safe to run again: what exists
/// is kept, and the credentials are printed each time.
struct SeedDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed-demo",
        abstract: "Create the demo tenant (community, buildings, staff, residents, notices) and a platform operator.")

    @Option(help: "Password given to every demo account.") var password = "linli-demo-2026"
    @Option(help: "Where the demo door device's credentials are written (tenant, device id, secret).")
    var deviceFile = ".data/demo-device"
    @Option(help: "Where the demo barrier device's credentials are written.")
    var laneFile = ".data/demo-lane"
    @Option(help: "Where the demo fire panel's credentials are written.")
    var fireFile = ".data/demo-fire"
    @Option(help: "Where the demo meter concentrator's and broadcast terminal's credentials are written.")
    var meterFile = ".data/demo-meter"
    @Option var broadcastFile = ".data/demo-broadcast"

    func run() async throws {
        let app = try Runtime.application()
        let password = password
        let summary: String = try await app.withStorage {
            _ = try await app.users.upsertOperator(username: "operator", displayName: "平台运营", password: password)
            if let existing = try await app.tenants.find(slug: "demo") {
                return "demo tenant exists (\(existing.id)); kept as it is"
            }
            let demo = try await app.seedDemoTenant(slug: "demo", name: "邻里示范物业", password: password)
            try await seedDoors(app, demo)
            try await seedParking(app, demo)
            try await seedFirePanel(app, demo)
            try await seedMeterAndBroadcast(app, demo)
            try await seedCommerce(app, demo)
            return "demo tenant created (\(demo.tenant.id)); community 阳光花园 \(demo.community)"
        }
        print(
            """
            \(summary)
            accounts (password \(password)):
              operator                           platform operator (tenant_slug empty)
              manager cashier technician guard   staff of 阳光花园 (tenant_slug demo)
              merchant                           owner of the shop 鲜丰水果 (tenant_slug demo)
              resident1 resident2                residents of 1栋 and 2栋 (tenant_slug demo); resident1 lives in 1栋1单元101
                                                 and holds 1,000 points
            door device "DEMO-DOOR-1" on doors gate (大门) and b1 (1栋单元门); guard card DEMO0001;
              its credentials: \(deviceFile) ("tenant device_id secret", for linli-device --credentials)
            lot P1 (地面停车场, 200 spaces) with lanes in and out on barrier "DEMO-GATE-1", fee rule: 15 min free,
              first hour 5元, then 2元 per 30 min, 20元 per 24 h; monthly car 沪A12345; its credentials: \(laneFile)
            fire panel "DEMO-FIRE-1" with points 1-001 (smoke, 1栋3层电梯厅) and 1-002 (manual call point);
              its credentials: \(fireFile)
            meter concentrator "DEMO-METER-1" (\(meterFile)) and broadcast terminal "DEMO-PA-1" in zone 全区 (\(broadcastFile))
            shop 鲜丰水果 (active, 5% commission) selling 阳山水蜜桃 (6 只装 59.90元, 12 只装 109.90元, 100 each) under 生鲜 › 水果;
              points: budget 100,000, worth 1 fen each at checkout (at most 30% of an order); 1 point per 元 of fees paid and of goods;
              coupons 物业满50减5 (the property's, any goods of 50元 or more), 物业费满100减10 (fees, at the cashier), 停车券5元 (a stay);
              group buy 水蜜桃三人团 (12 只装 at 89.90元, 3 members, 24 h)
            """)
    }

    /// Two doors, one door device bound to both, and a card for the guard; the device's secret
    /// exists only now, so it is written to `deviceFile` for `linli-device --credentials`.
    private func seedDoors(_ app: LinliApplication, _ demo: DemoTenant) async throws {
        let logger = app.database.logger
        guard let manager = demo.users["manager"], let guardUser = demo.users["guard"] else { return }
        let line: String = try await app.database.tenantTransaction(demo.tenant) { connection in
            let (device, secret) = try await DeviceStore(database: app.database).register(
                community: demo.community, serial: "DEMO-DOOR-1", kind: "door", name: "大门门禁", by: manager,
                on: connection, logger: logger)
            let access = AccessStore()
            for (code, name, building) in [("gate", "大门", nil), ("b1", "1栋单元门", demo.buildings.first)] {
                let door = try await access.createDoor(
                    community: demo.community, building: building, code: code, name: name, on: connection, logger: logger)
                try await access.bind(door: door, device: device, bound: true, on: connection, logger: logger)
            }
            _ = try await access.issue(
                community: demo.community, holder: .staff(guardUser), kind: "card", value: "DEMO0001", validUntil: nil,
                faceConsent: false, by: manager, on: connection, logger: logger)
            return "\(demo.tenant.slug) \(device.id) \(secret.hexString)\n"
        }
        try Self.writeCredentials(line, to: deviceFile)
    }

    static func writeCredentials(_ line: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(line.utf8).write(to: url, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
    }

    /// resident1 registered in 1栋1单元101 with 1,000 points, and the merchant's shop, approved,
    /// with one listed goods of two SKUs under 生鲜 › 水果.
    private func seedCommerce(_ app: LinliApplication, _ demo: DemoTenant) async throws {
        let logger = app.database.logger
        guard let manager = demo.users["manager"], let owner = demo.users["merchant"], let user = demo.users["resident1"] else { return }
        let principal = Principal(
            tenantID: demo.tenant.id, subjectID: manager, displayName: "王经理", role: .manager, communityIDs: [demo.community], buildingIDs: [])
        try await app.database.tenantTransaction(demo.tenant) { connection in
            let room = try await RoomStore().create(
                .init(building: demo.buildings[0], unit: "1单元", number: "101", floor: 1, areaCentiM2: 8_950, kind: .residence), by: principal,
                on: connection, logger: logger)
            let day = try await BusinessDay.of(demo.community, on: connection, logger: logger).today()
            let resident = try await ResidentStore().register(
                .init(
                    community: demo.community, name: "住户1", phone: "13900000001", idNumber: "", user: user, room: room.id, relation: .owner,
                    moveIn: day), by: principal, on: connection, logger: logger)
            let points = PointsStore()
            _ = try await points.fund(
                100_000, community: demo.community, memo: "示范积分预算", key: "demo:fund", by: manager, on: connection, logger: logger)
            _ = try await points.grant(
                1_000, to: resident.id.uuid, reason: "缴费奖励", expiresAt: Date().addingTimeInterval(365 * 86_400), key: "demo:grant",
                for: principal, on: connection, logger: logger)
            let merchants = MerchantStore()
            let shop = try await merchants.apply(
                .init(
                    community: demo.community, name: "鲜丰水果", shopType: .greengrocer, licenceNo: "91310115MA1K4DEMO1", contactName: "陈老板",
                    contactPhone: "13812345678", address: "阳光花园南门商铺 3 号", hours: "08:00-21:00", radius: 30, logoRef: "", imageRefs: []),
                by: owner, on: connection, logger: logger)
            _ = try await merchants.review(
                shop.id, approve: true, reason: "", commissionBP: 500, depositFen: 0, by: principal, on: connection, logger: logger)
            let catalogue = CatalogueStore()
            let fresh = try await catalogue.saveCategory(
                id: nil, parent: nil, name: "生鲜", sortOrder: 0, enabled: true, on: connection, logger: logger)
            let fruit = try await catalogue.saveCategory(
                id: nil, parent: fresh.id, name: "水果", sortOrder: 0, enabled: true, on: connection, logger: logger)
            let goods = try await catalogue.save(
                nil,
                .init(
                    category: fruit.id, name: "阳山水蜜桃", description: "当日到店，坏果包赔", imageRefs: [],
                    skus: [
                        .init(id: nil, spec: "6 只装", priceFen: 5_990, stock: 100), .init(id: nil, spec: "12 只装", priceFen: 10_990, stock: 100),
                    ]), merchant: shop.id, on: connection, logger: logger)
            _ = try await catalogue.setListed(goods.id, listed: true, merchant: shop.id, on: connection, logger: logger)
            // A property coupon (满 50 减 5), a three-person group buy on the 12-pack at 89.90, and
            // the points rules: 1 point per 元 of fees paid, 1 per 元 of goods.
            let now = Date()
            _ = try await CouponStore().create(
                .init(
                    id: UUIDv7.make(), community: demo.community, merchant: nil, name: "物业满50减5", kind: .amountOff, amountOffFen: 500,
                    percentOff: 0, capFen: 0, thresholdFen: 5_000, scope: .shop, scopeIDs: [], stock: 1_000, claimed: 0, perPerson: 1,
                    claimFrom: now, claimUntil: now.addingTimeInterval(30 * 86_400), validDays: 30), by: manager, on: connection, logger: logger)
            for (name, scope, off, threshold) in [
                ("物业费满100减10", CouponStore.Scope.propertyFees, Int64(1_000), Int64(10_000)), ("停车券5元", .parking, 500, 0),
            ] {
                _ = try await CouponStore().create(
                    .init(
                        id: UUIDv7.make(), community: demo.community, merchant: nil, name: name, kind: .amountOff, amountOffFen: off, percentOff: 0,
                        capFen: 0, thresholdFen: threshold, scope: scope, scopeIDs: [], stock: 1_000, claimed: 0, perPerson: 1, claimFrom: now,
                        claimUntil: now.addingTimeInterval(30 * 86_400), validDays: 30), by: manager, on: connection, logger: logger)
            }
            let groups = GroupBuyStore()
            let campaign = try await groups.publish(
                .init(
                    id: UUIDv7.make(), community: demo.community, title: "水蜜桃三人团", description: "三人成团，团购价 89.90 元", groupSize: 3,
                    formHours: 24, startsAt: now, endsAt: now.addingTimeInterval(30 * 86_400)), by: manager, on: connection, logger: logger)
            let deal = try await groups.apply(
                campaign: campaign.id, sku: goods.skus[1].id, groupPriceFen: 8_990, merchant: shop.id, on: connection, logger: logger)
            _ = try await groups.review(deal.id, approve: true, reason: "", by: manager, on: connection, logger: logger)
            let earning = PointsEarning()
            for (kind, name) in [(PointsEarning.Kind.feePaid, "缴费每元1分"), (.orderDone, "购物每元1分")] {
                _ = try await earning.save(
                    .init(
                        id: UUIDv7.make(), community: demo.community, kind: kind, name: name, points: 1, perFen: 100, rounding: .down, minFen: 0,
                        capPoints: 10_000, startsAt: now, endsAt: nil, enabled: true, lifetimeDays: 365), new: true, on: connection, logger: logger)
            }
        }
    }

    /// A meter concentrator and a broadcast terminal in a zone of its own.
    private func seedMeterAndBroadcast(_ app: LinliApplication, _ demo: DemoTenant) async throws {
        let logger = app.database.logger
        guard let manager = demo.users["manager"] else { return }
        let principal = Principal(
            tenantID: demo.tenant.id, subjectID: manager, displayName: "王经理", role: .manager, communityIDs: [demo.community], buildingIDs: [])
        let lines: [String] = try await app.database.tenantTransaction(demo.tenant) { connection in
            let store = DeviceStore(database: app.database)
            let (meter, meterSecret) = try await store.register(
                community: demo.community, serial: "DEMO-METER-1", kind: "meter", name: "1栋抄表集中器", by: manager, on: connection,
                logger: logger)
            let (terminal, terminalSecret) = try await store.register(
                community: demo.community, serial: "DEMO-PA-1", kind: "broadcast", name: "大门广播终端", by: manager, on: connection,
                logger: logger)
            _ = try await BroadcastStore(database: app.database).createZone(
                community: demo.community, name: "全区", devices: [terminal.id], for: principal, on: connection, logger: logger)
            return [
                "\(demo.tenant.slug) \(meter.id) \(meterSecret.hexString)\n", "\(demo.tenant.slug) \(terminal.id) \(terminalSecret.hexString)\n",
            ]
        }
        try Self.writeCredentials(lines[0], to: meterFile)
        try Self.writeCredentials(lines[1], to: broadcastFile)
    }

    /// A fire panel with two points in building 1.
    private func seedFirePanel(_ app: LinliApplication, _ demo: DemoTenant) async throws {
        let logger = app.database.logger
        guard let manager = demo.users["manager"] else { return }
        let principal = Principal(
            tenantID: demo.tenant.id, subjectID: manager, displayName: "王经理", role: .manager, communityIDs: [demo.community], buildingIDs: [])
        let line: String = try await app.database.tenantTransaction(demo.tenant) { connection in
            let (device, secret) = try await DeviceStore(database: app.database).register(
                community: demo.community, serial: "DEMO-FIRE-1", kind: "detector", name: "1栋火灾报警控制器", by: manager,
                on: connection, logger: logger)
            for (code, kind, location) in [("1-001", "smoke", "3层电梯厅"), ("1-002", "manual_call_point", "1层大堂")] {
                _ = try await AlarmStore().createPoint(
                    .init(
                        id: UUIDv7.make(), device: device.id.uuid, code: code, kind: kind, building: demo.buildings.first?.uuid,
                        floor: code == "1-001" ? 3 : 1, location: location, disabled: false, remediationFlaggedAt: nil),
                    for: principal, on: connection, logger: logger)
            }
            return "\(demo.tenant.slug) \(device.id) \(secret.hexString)\n"
        }
        try Self.writeCredentials(line, to: fireFile)
    }

    /// A lot with an entry and an exit lane on one barrier camera, the fee table of the research
    /// note, a monthly car and a merchant's time coupons.
    private func seedParking(_ app: LinliApplication, _ demo: DemoTenant) async throws {
        let logger = app.database.logger
        guard let manager = demo.users["manager"] else { return }
        let principal = Principal(
            tenantID: demo.tenant.id, subjectID: manager, displayName: "王经理", role: .manager, communityIDs: [demo.community], buildingIDs: [])
        let line: String = try await app.database.tenantTransaction(demo.tenant) { connection in
            let (device, secret) = try await DeviceStore(database: app.database).register(
                community: demo.community, serial: "DEMO-GATE-1", kind: "barrier", name: "地面停车场道闸", by: manager,
                on: connection, logger: logger)
            let store = ParkingStore()
            let lot = try await store.createLot(
                .init(
                    community: demo.community, code: "P1", name: "地面停车场", kind: "above_ground", parent: nil, capacity: 200,
                    payWindowMinutes: 15, visitorFreeMinutes: 120, visitorDailyLimit: 3, duplicateReadSeconds: 10),
                for: principal, on: connection, logger: logger)
            for (code, name, direction) in [("in", "入口", "entry"), ("out", "出口", "exit")] {
                _ = try await store.addLane(
                    .init(
                        id: UUIDv7.make(), lot: lot.id, device: device.id.uuid, code: code, name: name, direction: direction,
                        tempCarsEnter: true, charges: true, reentry: false, exitWithoutEntry: false),
                    lot: lot, on: connection, logger: logger)
            }
            _ = try await store.setRule(
                ParkingFeeRule(
                    kind: .standard, freeMinutes: 15,
                    tariff: .init(firstBlockMinutes: 60, firstBlockFen: 500, stepMinutes: 30, stepFen: 200, capFen: 2_000)),
                name: "临时车标准", lot: lot, by: manager, on: connection, logger: logger)
            _ = try await store.issuePermit(
                .init(
                    id: UUIDv7.make(), community: demo.community, lot: nil, plate: "沪A12345", kind: .monthly, space: nil, resident: nil,
                    validFrom: Date(), validUntil: Date().addingTimeInterval(30 * 86_400), monthlyFeeFen: 30_000, revoked: false),
                by: manager, on: connection, logger: logger)
            let merchant = try await store.createMerchant(community: demo.community, name: "邻里超市", on: connection, logger: logger)
            _ = try await store.buyCoupons(
                .init(
                    id: UUIDv7.make(), community: demo.community, merchant: merchant.id, kind: .time, value: 60, priceFen: 300,
                    quantity: 10, issued: 0, validDays: 30),
                method: .wechat, by: manager, on: connection, logger: logger)
            return "\(demo.tenant.slug) \(device.id) \(secret.hexString)\n"
        }
        try Self.writeCredentials(line, to: laneFile)
    }
}
