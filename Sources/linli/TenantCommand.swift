import ArgumentParser
import Foundation
import LinliCore
import LinliServer
import PostgresNIO

/// `linli tenant create|list`.
struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant", abstract: "Create and list tenants (property groups).",
        subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant with its own schema and role.")
        @Option(help: "Slug: 1 to 40 of a-z, 0-9 and _; the schema is t_<slug>.") var slug: String
        @Option(help: "Display name of the property group.") var name: String
        @Option(help: "Commercial plan.") var plan = "standard"

        func run() async throws {
            let app = try Runtime.application()
            let tenant = try await app.withStorage {
                try await app.provisioner.create(slug: slug, name: name, plan: plan)
            }
            print("tenant \(tenant.ref.slug) created: id \(tenant.ref.id), schema \(tenant.ref.schema)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")

        func run() async throws {
            let app = try Runtime.application()
            let rows: [(UUID, String, String, String)] = try await app.withStorage {
                try await app.database.platformTransaction { connection in
                    var result: [(UUID, String, String, String)] = []
                    let rows = try await connection.run(
                        "SELECT id, slug, name, status FROM platform.tenants ORDER BY slug", logger: app.database.logger)
                    for try await row in rows.decode((UUID, String, String, String).self) { result.append(row) }
                    return result
                }
            }
            for (id, slug, name, status) in rows {
                print([slug, status, TenantID(id).description, name].joined(separator: "\t"))
            }
        }
    }
}
