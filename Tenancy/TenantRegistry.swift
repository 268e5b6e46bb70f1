import Foundation
import LinliCore
import PostgresNIO
import Synchronization

/// Looks tenants up by id or slug, with an in-process cache.
///
/// The cache saves every call a platform transaction (three round trips), which matters once
/// calls spread over many tenants. A serving process runs `TenantChangeListener`, which drops
/// the cache the moment any process commits a change to a tenant; entries also expire after
/// `ttl`, which bounds staleness while that listener is reconnecting (and in processes that
/// do not listen, such as CLI commands).
public final class TenantRegistry: Sendable {
    private let database: Database
    private let ttl: Duration
    private let cache = Mutex<[String: (TenantRef, ContinuousClock.Instant)]>([:])

    /// Creates a registry.
    public init(database: Database, ttl: Duration = .seconds(30)) {
        self.database = database
        self.ttl = ttl
    }

    /// The tenant with `id`, or `notFound`.
    public func tenant(id: TenantID) async throws(LinliError) -> TenantRef {
        try await lookup(key: "id:\(id)", query: "SELECT id, slug, status FROM platform.tenants WHERE id = \(id.uuid)")
    }

    /// The tenant with `slug`, or `notFound`.
    public func tenant(slug: String) async throws(LinliError) -> TenantRef {
        guard TenantRef.isValidSlug(slug) else { throw LinliError.notFound("tenant") }
        return try await lookup(key: "slug:\(slug)", query: "SELECT id, slug, status FROM platform.tenants WHERE slug = \(slug)")
    }

    /// The tenant with `slug`, or nil when there is none.
    public func find(slug: String) async throws(LinliError) -> TenantRef? {
        do {
            return try await tenant(slug: slug)
        } catch {
            if error.code == .notFound { return nil }
            throw error
        }
    }

    /// Forgets cached entries, after a change made by this process.
    public func invalidate() { cache.withLock { $0.removeAll() } }

    private func lookup(key: String, query: PostgresQuery) async throws(LinliError) -> TenantRef {
        let now = ContinuousClock.now
        if let hit = cache.withLock({ $0[key] }), now - hit.1 < ttl { return hit.0 }
        let found: TenantRef? = try await database.platformTransaction { connection in
            let rows = try await connection.run(query, logger: database.logger)
            for try await (id, slug, status) in rows.decode((UUID, String, String).self) {
                return try TenantRef(id: TenantID(id), slug: slug, isActive: status == "active")
            }
            return nil
        }
        guard let found else { throw LinliError.notFound("tenant") }
        cache.withLock { $0[key] = (found, now) }
        return found
    }
}

extension Database {
    /// Every tenant, active or not, in id order: what background jobs walk over.
    public func allTenants() async throws(LinliError) -> [TenantRef] {
        try await platformTransaction { connection in
            var result: [TenantRef] = []
            let rows = try await connection.run("SELECT id, slug, status FROM platform.tenants ORDER BY id", logger: logger)
            for try await (id, slug, status) in rows.decode((UUID, String, String).self) {
                result.append(try TenantRef(id: TenantID(id), slug: slug, isActive: status == "active"))
            }
            return result
        }
    }
}
