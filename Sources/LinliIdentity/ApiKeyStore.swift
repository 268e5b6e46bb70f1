import Foundation
import LinliCore
import LinliTenancy
import PostgresNIO
import Synchronization

/// API keys for partner apps: the secret is shown once and stored only as its SHA-256.
///
/// Lookups are cached in-process for `ttl`, so a revocation reaches every server within it.
public final class ApiKeyStore: Sendable {
    private let database: Database
    private let ttl: Duration
    private let cache = Mutex<[Data: (ApiKey?, ContinuousClock.Instant)]>([:])

    /// A stored key, without its secret.
    public struct ApiKey: Sendable, Equatable {
        public var id: ApiKeyID
        public var tenantID: TenantID
        public var name: String
        public var prefix: String
        public var communityIDs: [CommunityID]
        public var createdAt: Date
        public var revokedAt: Date?

        /// Whether every community of the key is one `principal` may act in.
        public func isWithin(_ principal: Principal) -> Bool {
            communityIDs.allSatisfy(principal.canAct(in:))
        }
    }

    /// Creates a store.
    public init(database: Database, ttl: Duration = .seconds(5)) {
        self.database = database
        self.ttl = ttl
    }

    /// The checked name of a new key of `tenant`; every community must be one of the tenant's.
    public func validate(tenant: TenantRef, name: String, communityIDs: [CommunityID]) async throws(LinliError) -> String {
        let name = try Input.text(name, field: "name", max: 100)
        if communityIDs.isEmpty { throw .invalid("community_ids", "at least one community is required") }
        let uuids = communityIDs.map(\.uuid)
        let known: Int = try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run("SELECT count(*) FROM communities WHERE id = ANY(\(uuids))", logger: database.logger)
            for try await count in rows.decode(Int.self) { return count }
            return 0
        }
        if known != uuids.count { throw .invalid("community_ids", "unknown community") }
        return name
    }

    /// Stores a new key of `tenant` in the caller's platform transaction; returns it with the
    /// secret, which is never stored.
    public func insert(
        tenant: TenantRef, name: String, communityIDs: [CommunityID], createdBy: UserID,
        on connection: PostgresConnection
    ) async throws -> (ApiKey, String) {
        let secret = "llk_" + Secret.random()
        let key = ApiKey(
            id: .make(), tenantID: tenant.id, name: name, prefix: String(secret.prefix(12)),
            communityIDs: communityIDs, createdAt: Date(), revokedAt: nil)
        try await connection.run(
            """
            INSERT INTO platform.api_keys (id, tenant_id, name, prefix, secret_hash, community_ids, created_by, created_at)
            VALUES (\(key.id.uuid), \(tenant.id.uuid), \(name), \(key.prefix), \(Secret.hash(secret)), \(communityIDs.map(\.uuid)),
                    \(createdBy.uuid), \(key.createdAt))
            """, logger: database.logger)
        return (key, secret)
    }

    /// The keys of `tenant`, newest first.
    public func list(tenant: TenantRef) async throws(LinliError) -> [ApiKey] {
        try await database.platformTransaction { connection in
            try await Self.keys(connection, database.logger, where: "tenant_id = $1", tenant.id.uuid)
        }
    }

    /// Revokes a key of `tenant` whose communities are all within `principal`'s; revoking
    /// twice is harmless. Any other key is not found, as if it did not exist.
    public func revoke(tenant: TenantRef, id: ApiKeyID, by principal: Principal) async throws(LinliError) -> ApiKey {
        let key: ApiKey? = try await database.platformTransaction { (connection: PostgresConnection) async throws -> ApiKey? in
            let found: ApiKey? = try await Self.keys(connection, database.logger, where: "id = $1", id.uuid).first
            guard let found, found.tenantID == tenant.id, found.isWithin(principal) else { return nil }
            try await connection.run(
                """
                UPDATE platform.api_keys SET revoked_at = coalesce(revoked_at, now())
                WHERE id = \(id.uuid) AND tenant_id = \(tenant.id.uuid)
                """, logger: database.logger)
            return try await Self.keys(connection, database.logger, where: "id = $1", id.uuid).first
        }
        guard let key else { throw LinliError.notFound("api key") }
        cache.withLock { $0.removeAll() }
        return key
    }

    /// The live key behind `secret`, or nil.
    public func resolve(secret: String) async throws(LinliError) -> ApiKey? {
        guard secret.hasPrefix("llk_"), secret.count == 47 else { return nil }
        let hash = Secret.hash(secret)
        let now = ContinuousClock.now
        if let hit = cache.withLock({ $0[hash] }), now - hit.1 < ttl { return hit.0 }
        let key: ApiKey? = try await database.platformTransaction { connection in
            try await Self.keys(connection, database.logger, where: "secret_hash = $1 AND revoked_at IS NULL", hash).first
        }
        cache.withLock { entries in
            if entries.count > 10_000 { entries.removeAll() }
            entries[hash] = (key, now)
        }
        return key
    }

    private static func keys(
        _ connection: PostgresConnection, _ logger: Logger, where condition: String,
        _ value: some PostgresEncodable & Sendable
    ) async throws -> [ApiKey] {
        var bindings = PostgresBindings()
        try bindings.append(value)
        // `condition` is one of the constant predicates above, never input.
        let rows = try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    SELECT id, tenant_id, name, prefix, community_ids, created_at, revoked_at
                    FROM platform.api_keys WHERE \(condition) ORDER BY created_at DESC
                    """, binds: bindings), logger: logger)
        var result: [ApiKey] = []
        for try await (id, tenant, name, prefix, communities, created, revoked) in rows.decode((UUID, UUID, String, String, [UUID], Date, Date?).self)
        {
            result.append(
                ApiKey(
                    id: ApiKeyID(id), tenantID: TenantID(tenant), name: name, prefix: prefix,
                    communityIDs: communities.map(CommunityID.init), createdAt: created, revokedAt: revoked))
        }
        return result
    }
}
