import GRPCCore
import LinliCore
import LinliRedis
import LinliTenancy

/// Turns a call's credentials into a principal and its tenant.
public struct Authenticator: Sendable {
    /// Sessions.
    public let sessions: SessionStore
    /// API keys.
    public let apiKeys: ApiKeyStore
    /// The tenant registry.
    public let tenants: TenantRegistry

    /// Creates an authenticator.
    public init(sessions: SessionStore, apiKeys: ApiKeyStore, tenants: TenantRegistry) {
        self.sessions = sessions
        self.apiKeys = apiKeys
        self.tenants = tenants
    }

    /// The bearer token in `authorization`, if any.
    public static func bearerToken(_ metadata: Metadata) -> String? {
        for value in metadata[stringValues: "authorization"] {
            let trimmed = value.trimmingCharacters(in: .whitespaces)
            if trimmed.lowercased().hasPrefix("bearer ") { return String(trimmed.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    /// The principal and tenant of a session token, sliding the session, and in the same Redis
    /// round trip a slot of the rate-limit budget `budget(tag)` names (see `SessionStore.admit`);
    /// returns the microseconds the call must wait (0: go ahead).
    public func admitSession(
        _ token: String, budget: (_ tag: String) -> GCRA.Budget?
    ) async throws(LinliError) -> (principal: Principal, tenant: TenantRef?, waitMicros: Int64) {
        let (principal, wait) = try await sessions.admit(token, budget: budget)
        return (principal, try await activeTenant(principal.tenantID), wait)
    }

    /// The principal behind `metadata`; `unauthenticated` without valid credentials.
    public func authenticate(_ metadata: Metadata) async throws(LinliError) -> (Principal, TenantRef?) {
        if let token = Self.bearerToken(metadata) {
            let principal = try await sessions.resolve(token)
            return (principal, try await activeTenant(principal.tenantID))
        }
        if let secret = metadata[stringValues: "x-api-key"].first(where: { _ in true }) {
            guard let key = try await apiKeys.resolve(secret: secret) else {
                throw LinliError(.unauthenticated, "unknown or revoked API key")
            }
            let principal = Principal(
                tenantID: key.tenantID, subjectID: UserID(key.id.uuid), displayName: key.name,
                role: .partner, communityIDs: key.communityIDs, buildingIDs: [])
            return (principal, try await activeTenant(key.tenantID))
        }
        throw LinliError(.unauthenticated, "missing credentials: send authorization: Bearer <token> or x-api-key")
    }

    private func activeTenant(_ id: TenantID?) async throws(LinliError) -> TenantRef? {
        guard let id else { return nil }
        let tenant: TenantRef
        do { tenant = try await tenants.tenant(id: id) } catch  where error.code == .notFound {
            throw LinliError(.unauthenticated, "tenant no longer exists")
        }
        guard tenant.isActive else { throw LinliError(.permissionDenied, "tenant is suspended") }
        return tenant
    }
}
