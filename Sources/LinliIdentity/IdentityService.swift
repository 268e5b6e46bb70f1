import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import SwiftProtobuf

/// The `linli.identity.v1.IdentityService` RPCs.
public struct IdentityService: Sendable {
    let database: Database
    let tenants: TenantRegistry
    let users: UserDirectory
    let sessions: SessionStore
    let apiKeys: ApiKeyStore
    let logger: Logger

    /// Creates the service.
    public init(database: Database, tenants: TenantRegistry, users: UserDirectory, sessions: SessionStore,
                apiKeys: ApiKeyStore, logger: Logger) {
        self.database = database
        self.tenants = tenants
        self.users = users
        self.sessions = sessions
        self.apiKeys = apiKeys
        self.logger = logger
    }
}

extension IdentityService {
    /// The active tenant a login names; an unknown slug reads like a wrong password.
    func loginTenant(slug: String) async throws(LinliError) -> TenantRef {
        let tenant: TenantRef? = try await tenants.find(slug: slug)
        guard let tenant else { throw LinliError(.unauthenticated, "wrong tenant, username or password") }
        guard tenant.isActive else { throw LinliError(.permissionDenied, "tenant is suspended") }
        return tenant
    }
}

extension IdentityService: Linli_Identity_V1_IdentityService.ServiceProtocol {
    public func login(request: ServerRequest<Linli_Identity_V1_LoginRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_LoginResponse> {
        let message = request.message
        if message.username.isEmpty { throw LinliError.invalid("username", "is required") }
        if message.password.isEmpty { throw LinliError.invalid("password", "is required") }
        let principal: Principal
        var slug = ""
        if message.tenantSlug.isEmpty {
            principal = try await users.authenticateOperator(username: message.username, password: message.password)
        } else {
            let tenant = try await loginTenant(slug: message.tenantSlug)
            principal = try await users.authenticate(tenant: tenant, username: message.username, password: message.password)
            slug = tenant.slug
        }
        let session = try await sessions.create(for: principal)
        var response = Linli_Identity_V1_LoginResponse()
        response.sessionToken = session.token
        response.expiresAt = Google_Protobuf_Timestamp(date: session.expiresAt)
        response.principal = .init(principal, slug: slug)
        return ServerResponse(message: response)
    }

    public func logout(request: ServerRequest<Linli_Identity_V1_LogoutRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_LogoutResponse> {
        _ = try RequestContext(admitted: request.metadata, logger: logger)
        if let token = Authenticator.bearerToken(request.metadata) { try await sessions.revoke(token) }
        return ServerResponse(message: .init())
    }

    public func whoAmI(request: ServerRequest<Linli_Identity_V1_WhoAmIRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_WhoAmIResponse> {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        var response = Linli_Identity_V1_WhoAmIResponse()
        response.principal = .init(ctx.principal, slug: ctx.tenant?.slug ?? "")
        return ServerResponse(message: response)
    }

    public func createUser(request: ServerRequest<Linli_Identity_V1_CreateUserRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_CreateUserResponse> {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let tenant = try ctx.requireTenant()
        let m = request.message
        let requestID = try Input.requestID(m.requestID)
        guard let role = Role(rawValue: m.role.rawValue) else { throw LinliError.invalid("role", "is required") }
        let user = try UserDirectory.NewUser(
            username: m.username, displayName: m.displayName, password: m.password, role: role,
            phone: m.phone.isEmpty ? nil : m.phone,
            communityIDs: Input.ids(m.communityIds, field: "community_ids"),
            buildingIDs: Input.ids(m.buildingIds, field: "building_ids")).validated()
        for community in user.communityIDs { try ctx.principal.requireScope(community) }
        var fingerprint = m
        fingerprint.password = ""  // never stored, not even hashed into the key
        let response = try await database.tenantTransaction(tenant) { connection in
            try await Idempotency.once(.tenant, principal: ctx.principal.subjectID, requestID: requestID,
                                       method: "CreateUser", fingerprint: fingerprint, on: connection, logger: ctx.logger) {
                var response = Linli_Identity_V1_CreateUserResponse()
                response.userID = try await users.create(user, on: connection, logger: ctx.logger).description
                return response
            }
        }
        return ServerResponse(message: response)
    }

    public func revokeUserSessions(request: ServerRequest<Linli_Identity_V1_RevokeUserSessionsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_RevokeUserSessionsResponse> {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let tenant = try ctx.requireTenant()
        _ = try Input.requestID(request.message.requestID)
        let user: UserID = try Input.id(request.message.userID, field: "user_id")
        // Revoking is naturally idempotent: a retry finds no sessions left.
        let exists: Bool = try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.query("SELECT 1 FROM users WHERE id = \(user.uuid)", logger: ctx.logger)
            for try await _ in rows { return true }
            return false
        }
        guard exists else { throw LinliError.notFound("user") }
        var response = Linli_Identity_V1_RevokeUserSessionsResponse()
        response.sessionsRevoked = Int32(try await sessions.revokeAll(tenant: tenant.id, user: user))
        ctx.logger.notice("sessions revoked", metadata: ["target.user": "\(user)", "count": "\(response.sessionsRevoked)"])
        return ServerResponse(message: response)
    }

    public func createApiKey(request: ServerRequest<Linli_Identity_V1_CreateApiKeyRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_CreateApiKeyResponse> {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let tenant = try ctx.requireTenant()
        _ = try Input.requestID(request.message.requestID)
        let communities: [CommunityID] = try Input.ids(request.message.communityIds, field: "community_ids")
        for community in communities { try ctx.principal.requireScope(community) }
        // Not replayable by design: the secret is never stored, so a retry makes a new key.
        let (key, secret) = try await apiKeys.create(tenant: tenant, name: request.message.name,
                                                     communityIDs: communities, createdBy: ctx.principal.subjectID)
        var response = Linli_Identity_V1_CreateApiKeyResponse()
        response.key = .init(key)
        response.secret = secret
        return ServerResponse(message: response)
    }

    public func listApiKeys(request: ServerRequest<Linli_Identity_V1_ListApiKeysRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_ListApiKeysResponse> {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        var response = Linli_Identity_V1_ListApiKeysResponse()
        response.keys = try await apiKeys.list(tenant: ctx.requireTenant()).map(Linli_Identity_V1_ApiKey.init)
        return ServerResponse(message: response)
    }

    public func revokeApiKey(request: ServerRequest<Linli_Identity_V1_RevokeApiKeyRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_RevokeApiKeyResponse> {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        _ = try Input.requestID(request.message.requestID)
        let id: ApiKeyID = try Input.id(request.message.apiKeyID, field: "api_key_id")
        var response = Linli_Identity_V1_RevokeApiKeyResponse()
        response.key = .init(try await apiKeys.revoke(tenant: ctx.requireTenant(), id: id))
        return ServerResponse(message: response)
    }
}

extension Linli_Identity_V1_Principal {
    init(_ p: Principal, slug: String) {
        self.init()
        tenantID = p.tenantID?.description ?? ""
        tenantSlug = slug
        userID = p.subjectID.description
        displayName = p.displayName
        role = Linli_Common_V1_Role(rawValue: p.role.rawValue) ?? .unspecified
        communityIds = p.communityIDs.map(\.description)
        buildingIds = p.buildingIDs.map(\.description)
    }
}

extension Linli_Identity_V1_ApiKey {
    init(_ key: ApiKeyStore.ApiKey) {
        self.init()
        id = key.id.description
        name = key.name
        prefix = key.prefix
        communityIds = key.communityIDs.map(\.description)
        createdAt = Google_Protobuf_Timestamp(date: key.createdAt)
        if let revoked = key.revokedAt { revokedAt = Google_Protobuf_Timestamp(date: revoked) }
    }
}

extension Linli_Identity_V1_CreateUserRequest: IdempotentRequest {}
