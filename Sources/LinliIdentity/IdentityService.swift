import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf
import Synchronization

/// The `linli.identity.v1.IdentityService` RPCs.
public struct IdentityService: Sendable {
    let database: Database
    let tenants: TenantRegistry
    let users: UserStore
    let sessions: SessionStore
    let apiKeys: ApiKeyStore
    let throttle: (any LoginThrottle)?
    let logger: Logger

    /// Creates the service.
    public init(
        database: Database, tenants: TenantRegistry, users: UserStore, sessions: SessionStore,
        apiKeys: ApiKeyStore, throttle: (any LoginThrottle)? = nil, logger: Logger
    ) {
        self.database = database
        self.tenants = tenants
        self.users = users
        self.sessions = sessions
        self.apiKeys = apiKeys
        self.throttle = throttle
        self.logger = logger
    }
}

/// Slows down guessing one account's password from many addresses: failed sign-ins are
/// counted per account, and while an account is over its budget every attempt is refused with
/// `RESOURCE_EXHAUSTED` and a retry delay — a back-off that drains by itself, never a lock.
public protocol LoginThrottle: Sendable {
    /// Throws `resourceExhausted` while the account has failed too often.
    func checkAccount(tenantSlug: String, username: String) async throws(LinliError)
    /// Counts one failed sign-in.
    func recordFailure(tenantSlug: String, username: String) async
}

extension IdentityService {
    /// The same answer for an unknown tenant, a suspended one and a wrong password, after the
    /// same work (a password hash), so sign-in tells nobody which tenants exist.
    static let badCredentials = LinliError(.unauthenticated, "wrong tenant, username or password")

    /// The active tenant a login names.
    func loginTenant(slug: String, password: String) async throws(LinliError) -> TenantRef {
        let tenant: TenantRef? = try await tenants.find(slug: slug)
        guard let tenant, tenant.isActive else {
            users.hasher.burn(password)
            throw Self.badCredentials
        }
        return tenant
    }

    /// The principal and tenant slug behind a login, with the account's failures throttled.
    func signIn(_ message: Linli_Identity_V1_LoginRequest) async throws(LinliError) -> (Principal, String) {
        if let throttle { try await throttle.checkAccount(tenantSlug: message.tenantSlug, username: message.username) }
        do {
            if message.tenantSlug.isEmpty {
                let principal = try await users.authenticateOperator(username: message.username, password: message.password)
                return (principal, "")
            }
            let tenant = try await loginTenant(slug: message.tenantSlug, password: message.password)
            let principal = try await users.authenticate(tenant: tenant, username: message.username, password: message.password)
            return (principal, tenant.slug)
        } catch {
            guard error.code == .unauthenticated else { throw error }
            if let throttle { await throttle.recordFailure(tenantSlug: message.tenantSlug, username: message.username) }
            throw Self.badCredentials
        }
    }
}

extension IdentityService: Linli_Identity_V1_IdentityService.ServiceProtocol {
    public func login(request: ServerRequest<Linli_Identity_V1_LoginRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_LoginResponse>
    {
        let message = request.message
        if message.username.isEmpty { throw LinliError.invalid("username", "is required") }
        if message.password.isEmpty { throw LinliError.invalid("password", "is required") }
        let (principal, slug) = try await signIn(message)
        let session = try await sessions.create(for: principal)
        var response = Linli_Identity_V1_LoginResponse()
        response.sessionToken = session.token
        response.expiresAt = Google_Protobuf_Timestamp(date: session.expiresAt)
        response.principal = .init(principal, slug: slug)
        return ServerResponse(message: response)
    }

    public func logout(request: ServerRequest<Linli_Identity_V1_LogoutRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_LogoutResponse>
    {
        _ = try RequestContext(admitted: request.metadata, logger: logger)
        if let token = Authenticator.bearerToken(request.metadata) { try await sessions.revoke(token) }
        return ServerResponse(message: .init())
    }

    public func whoAmI(request: ServerRequest<Linli_Identity_V1_WhoAmIRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_WhoAmIResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        var response = Linli_Identity_V1_WhoAmIResponse()
        response.principal = .init(ctx.principal, slug: ctx.tenant?.slug ?? "")
        return ServerResponse(message: response)
    }

    public func createUser(request: ServerRequest<Linli_Identity_V1_CreateUserRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_CreateUserResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let tenant = try ctx.requireTenant()
        let m = request.message
        let requestID = try Input.requestID(m.requestID)
        guard let role = Role(rawValue: m.role.rawValue) else { throw LinliError.invalid("role", "is required") }
        let user = try UserStore.NewUser(
            username: m.username, displayName: m.displayName, password: m.password, role: role,
            phone: m.phone.isEmpty ? nil : m.phone,
            communityIDs: Input.ids(m.communityIds, field: "community_ids"),
            buildingIDs: Input.ids(m.buildingIds, field: "building_ids")
        ).validated()
        for community in user.communityIDs { try Scope.requireCommunity(ctx.principal, community) }
        var fingerprint = m
        fingerprint.password = ""  // never stored, not even hashed into the key
        let response = try await database.tenantTransaction(tenant) { connection in
            try await Idempotency.once(
                .tenant, principal: ctx.principal.subjectID, requestID: requestID,
                method: "CreateUser", fingerprint: fingerprint, on: connection, logger: ctx.logger
            ) {
                var response = Linli_Identity_V1_CreateUserResponse()
                response.userID = try await users.create(user, on: connection, logger: ctx.logger).description
                return response
            }
        }
        return ServerResponse(message: response)
    }

    public func revokeUserSessions(request: ServerRequest<Linli_Identity_V1_RevokeUserSessionsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_RevokeUserSessionsResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let tenant = try ctx.requireTenant()
        _ = try Input.requestID(request.message.requestID)
        let user: UserID = try Input.id(request.message.userID, field: "user_id")
        // Revoking is naturally idempotent: a retry finds no sessions left.
        let principal = ctx.principal
        try await database.tenantTransaction(tenant) { connection in
            try await users.requireWithin(user, of: principal, on: connection, logger: ctx.logger)
        }
        var response = Linli_Identity_V1_RevokeUserSessionsResponse()
        response.sessionsRevoked = Int32(clamping: try await sessions.revokeAll(tenant: tenant.id, user: user))
        ctx.logger.notice("sessions revoked", metadata: ["target.user": "\(user)", "count": "\(response.sessionsRevoked)"])
        return ServerResponse(message: response)
    }

    public func setUserStatus(request: ServerRequest<Linli_Identity_V1_SetUserStatusRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_SetUserStatusResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let m = request.message
        let user: UserID = try Input.id(m.userID, field: "user_id")
        if user == ctx.principal.subjectID && m.disabled {
            throw LinliError(.failedPrecondition, "user_id: you cannot disable yourself", field: "user_id")
        }
        var response = Linli_Identity_V1_SetUserStatusResponse()
        response.sessionsRevoked = try await changeAccess(ctx, "SetUserStatus", m, of: user, endSessions: m.disabled) { connection in
            try await users.setStatus(user, disabled: m.disabled, on: connection, logger: ctx.logger)
        }
        return ServerResponse(message: response)
    }

    public func setUserScope(request: ServerRequest<Linli_Identity_V1_SetUserScopeRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_SetUserScopeResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let m = request.message
        let user: UserID = try Input.id(m.userID, field: "user_id")
        let communities: [CommunityID] = try Input.ids(m.communityIds, field: "community_ids")
        let buildings: [BuildingID] = try Input.ids(m.buildingIds, field: "building_ids")
        for community in communities { try Scope.requireCommunity(ctx.principal, community) }
        var response = Linli_Identity_V1_SetUserScopeResponse()
        response.sessionsRevoked = try await changeAccess(ctx, "SetUserScope", m, of: user, endSessions: true) { connection in
            try await users.setScope(user, communities: communities, buildings: buildings, on: connection, logger: ctx.logger)
        }
        return ServerResponse(message: response)
    }

    /// Changes what `user` may do, once per request id, if every community of theirs is the
    /// caller's (else not found); with `endSessions`, their sessions end after the commit.
    /// Returns how many sessions ended.
    func changeAccess<Request: IdempotentRequest & Sendable>(
        _ ctx: RequestContext, _ method: String, _ request: Request, of user: UserID, endSessions: Bool,
        _ change: (PostgresConnection) async throws -> Void
    ) async throws -> Int32 {
        let principal = ctx.principal
        _ = try await database.once(ctx, method, request) { connection in
            try await users.requireWithin(user, of: principal, on: connection, logger: ctx.logger)
            try await change(connection)
            return Google_Protobuf_Empty()
        }
        ctx.logger.notice("user access changed", metadata: ["rpc": "\(method)", "target.user": "\(user)"])
        return endSessions ? try await self.endSessions(tenant: try ctx.requireTenant(), user: user) : 0
    }

    /// Ends `user`'s sessions after their access changed (committed), and once more a moment
    /// later: a sign-in that read the old access just before the commit cannot keep it.
    func endSessions(tenant: TenantRef, user: UserID) async throws(LinliError) -> Int32 {
        let count = try await sessions.revokeAll(tenant: tenant.id, user: user)
        Task { [sessions] in
            try? await Task.sleep(for: .seconds(2))
            _ = try? await sessions.revokeAll(tenant: tenant.id, user: user)
        }
        return Int32(clamping: count)
    }

    public func createApiKey(request: ServerRequest<Linli_Identity_V1_CreateApiKeyRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_CreateApiKeyResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let tenant = try ctx.requireTenant()
        let m = request.message
        let requestID = try Input.requestID(m.requestID)
        let communities: [CommunityID] = try Input.ids(m.communityIds, field: "community_ids")
        for community in communities { try Scope.requireCommunity(ctx.principal, community) }
        let name = try await apiKeys.validate(tenant: tenant, name: m.name, communityIDs: communities)
        // A retry with the same request_id returns the same key, never a second one; the
        // secret is never stored, so only the first answer carries it.
        let fresh = Mutex<String?>(nil)
        let store = apiKeys
        let creator = ctx.principal.subjectID
        var response: Linli_Identity_V1_CreateApiKeyResponse = try await database.platformTransaction { connection in
            let replayed: Linli_Identity_V1_CreateApiKeyResponse = try await Idempotency.once(
                .platform, principal: creator, requestID: requestID, method: "CreateApiKey", fingerprint: m,
                on: connection, logger: ctx.logger
            ) { () async throws -> Linli_Identity_V1_CreateApiKeyResponse in
                let (key, secret) = try await store.insert(
                    tenant: tenant, name: name, communityIDs: communities,
                    createdBy: creator, on: connection)
                fresh.withLock { $0 = secret }
                var first = Linli_Identity_V1_CreateApiKeyResponse()
                first.key = Linli_Identity_V1_ApiKey(key)
                return first
            }
            return replayed
        }
        if let secret = fresh.withLock({ $0 }) { response.secret = secret }
        return ServerResponse(message: response)
    }

    public func listApiKeys(request: ServerRequest<Linli_Identity_V1_ListApiKeysRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_ListApiKeysResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        var response = Linli_Identity_V1_ListApiKeysResponse()
        let keys: [ApiKeyStore.ApiKey] = try await apiKeys.list(tenant: ctx.requireTenant())
        let principal = ctx.principal
        response.keys = keys.filter { (key: ApiKeyStore.ApiKey) -> Bool in key.isWithin(principal) }
            .map { (key: ApiKeyStore.ApiKey) -> Linli_Identity_V1_ApiKey in Linli_Identity_V1_ApiKey(key) }
        return ServerResponse(message: response)
    }

    public func revokeApiKey(request: ServerRequest<Linli_Identity_V1_RevokeApiKeyRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Identity_V1_RevokeApiKeyResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        _ = try Input.requestID(request.message.requestID)
        let id: ApiKeyID = try Input.id(request.message.apiKeyID, field: "api_key_id")
        var response = Linli_Identity_V1_RevokeApiKeyResponse()
        response.key = .init(try await apiKeys.revoke(tenant: ctx.requireTenant(), id: id, by: ctx.principal))
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
extension Linli_Identity_V1_CreateApiKeyRequest: IdempotentRequest {}
extension Linli_Identity_V1_SetUserStatusRequest: IdempotentRequest {}
extension Linli_Identity_V1_SetUserScopeRequest: IdempotentRequest {}
