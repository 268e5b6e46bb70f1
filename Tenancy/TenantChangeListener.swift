import LinliCore
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

    public init(database: Database, registry: TenantRegistry) {
        self.database = database
        self.registry = registry
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await database.listen(on: Self.channel, connected: { registry.invalidate() }) { _ in registry.invalidate() }
        }
    }
}
