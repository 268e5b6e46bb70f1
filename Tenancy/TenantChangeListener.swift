import LinliCore
import Logging
import PostgresNIO
import ServiceLifecycle

/// Keeps `TenantRegistry`'s cache honest across server processes: a trigger on
/// `platform.tenants` sends `NOTIFY linli_tenants` when a tenant changes (suspended, resumed,
/// renamed, deleted), PostgreSQL delivers it on commit, and every listening process forgets
/// its cached tenants. While the listener has no connection, the cache's own expiry bounds
/// how stale an entry can be; on every (re)connection the cache is dropped, since changes
/// may have been missed meanwhile.
public struct TenantChangeListener: Service, Sendable {
    public static let channel = "linli_tenants"

    let database: Database
    let registry: TenantRegistry
    let logger: Logger

    public init(database: Database, registry: TenantRegistry, logger: Logger) {
        self.database = database
        self.registry = registry
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await database.client.withConnection { connection in
                        try await connection.listen(on: Self.channel) { notifications in
                            registry.invalidate()
                            for try await _ in notifications { registry.invalidate() }
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("tenant change listener lost its connection; reconnecting", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }
}
