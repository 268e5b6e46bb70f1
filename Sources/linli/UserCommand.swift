import ArgumentParser
import Foundation
import LinliCore
import LinliIdentity
import LinliServer

/// `linli user create`: a tenant user (staff, resident, merchant, government).
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Create tenant users.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a user in a tenant. The password is read from LINLI_NEW_PASSWORD or --password.")
        @Option(help: "Tenant slug.") var tenant: String
        @Option(help: "Login name.") var username: String
        @Option(help: "Name shown to others.") var name: String
        @Option(help: "resident, manager, cashier, technician, guard, merchant or government.") var role: String
        @Option(help: "Password (prefer LINLI_NEW_PASSWORD: arguments show in ps).") var password: String?
        @Option(help: "Mobile number.") var phone: String?
        @Option(help: "Community id the user belongs to (repeatable).") var community: [String] = []
        @Option(help: "Building id, for residents (repeatable).") var building: [String] = []

        func run() async throws {
            guard let role = Role(name: role), role != .operator, role != .partner else {
                throw ValidationError("--role: one of resident, manager, cashier, technician, guard, merchant, government")
            }
            guard let password = password ?? ProcessInfo.processInfo.environment["LINLI_NEW_PASSWORD"] else {
                throw ValidationError("--password or LINLI_NEW_PASSWORD is required")
            }
            let user = UserStore.NewUser(
                username: username, displayName: name, password: password, role: role, phone: phone,
                communityIDs: try Input.ids(community, field: "community"),
                buildingIDs: try Input.ids(building, field: "building"))
            let app = try Runtime.application()
            let id = try await app.withStorage {
                let ref = try await app.tenants.tenant(slug: tenant)
                return try await app.database.tenantTransaction(ref) { connection in
                    try await app.users.create(user, on: connection, logger: app.database.logger)
                }
            }
            print("user \(username) created: id \(id)")
        }
    }
}

/// `linli operator create`: a national platform operator.
struct OperatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operator", abstract: "Create platform operators.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an operator, or reset its password. The password is read from LINLI_NEW_PASSWORD or --password.")
        @Option(help: "Login name.") var username: String
        @Option(help: "Name shown to others.") var name: String?
        @Option(help: "Password (prefer LINLI_NEW_PASSWORD).") var password: String?

        func run() async throws {
            guard let password = password ?? ProcessInfo.processInfo.environment["LINLI_NEW_PASSWORD"] else {
                throw ValidationError("--password or LINLI_NEW_PASSWORD is required")
            }
            let app = try Runtime.application()
            let id = try await app.withStorage {
                try await app.users.upsertOperator(username: username, displayName: name ?? username, password: password)
            }
            print("operator \(username) saved: id \(id)")
        }
    }
}
