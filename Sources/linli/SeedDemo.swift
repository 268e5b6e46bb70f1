import ArgumentParser
import LinliServer

/// `linli seed-demo`: a demo tenant to try the API against. Safe to run again: what exists
/// is kept, and the credentials are printed each time.
struct SeedDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed-demo",
        abstract: "Create the demo tenant (community, buildings, staff, residents, notices) and a platform operator.")

    @Option(help: "Password given to every demo account.") var password = "linli-demo-2026"

    func run() async throws {
        let app = try Runtime.application()
        let password = password
        let summary: String = try await app.withStorage {
            _ = try await app.users.upsertOperator(username: "operator", displayName: "平台运营", password: password)
            if let existing = try await app.tenants.find(slug: "demo") {
                return "demo tenant exists (\(existing.id)); kept as it is"
            }
            let demo = try await app.seedDemoTenant(slug: "demo", name: "邻里示范物业", password: password)
            return "demo tenant created (\(demo.tenant.id)); community 阳光花园 \(demo.community)"
        }
        print(
            """
            \(summary)
            accounts (password \(password)):
              operator                           platform operator (tenant_slug empty)
              manager cashier technician guard   staff of 阳光花园 (tenant_slug demo)
              resident1 resident2                residents of 1栋 and 2栋 (tenant_slug demo)
            """)
    }
}
