import ArgumentParser
import Foundation
import LinliCore
import LinliDevices
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
            return "demo tenant created (\(demo.tenant.id)); community 阳光花园 \(demo.community)"
        }
        print(
            """
            \(summary)
            accounts (password \(password)):
              operator                           platform operator (tenant_slug empty)
              manager cashier technician guard   staff of 阳光花园 (tenant_slug demo)
              resident1 resident2                residents of 1栋 and 2栋 (tenant_slug demo)
            door device "DEMO-DOOR-1" on doors gate (大门) and b1 (1栋单元门); guard card DEMO0001;
              its credentials: \(deviceFile) ("tenant device_id secret", for linli-device --credentials)
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
        let url = URL(fileURLWithPath: deviceFile)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(line.utf8).write(to: url, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
    }
}
