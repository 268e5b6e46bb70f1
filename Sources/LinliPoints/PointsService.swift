import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliRedis
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

/// The `linli.commerce.v1.PointsService` RPCs (points.proto): shapes checked here, the ledger
/// in `PointsStore` inside the caller's tenant transaction, the balance cache after COMMIT.
public struct PointsService: Sendable {
    let store = PointsStore()
    let cache: PointsCache
    let handler: Handler

    public init(database: Database, redis: RedisClient?, logger: Logger) {
        handler = Handler(database: database, logger: logger)
        cache = PointsCache(redis: redis, logger: logger)
    }

    /// How many points one call may move.
    static let maxPoints: Int64 = 1_000_000
    /// A lot's default and longest life.
    static let defaultLifetime: TimeInterval = 365 * 86_400
    static let longestLifetime: TimeInterval = 3 * 366 * 86_400

    static func points(_ value: Int64) throws(LinliError) -> Int64 {
        guard (1...maxPoints).contains(value) else { throw LinliError.invalid("points", "must be 1 to \(maxPoints)") }
        return value
    }

    static func key(_ raw: String) throws(LinliError) -> String {
        let key = raw.trimmingCharacters(in: .whitespaces)
        guard (1...64).contains(key.count), key.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }) else {
            throw LinliError.invalid("operation_key", "must be 1 to 64 printable ASCII characters")
        }
        return key
    }

    /// The resident a call is about: a resident themselves (in `community`), staff the one they name.
    static func resident(_ named: String, community: String, _ principal: Principal, on connection: PostgresConnection, logger: Logger)
        async throws -> UUID
    {
        if principal.role == .resident {
            let community: CommunityID = try Input.id(community, field: "community_id")
            let own = try await OwnResident.of(principal.subjectID, community: community, on: connection, logger: logger)
            if !named.isEmpty, (try? Input.id(named, field: "resident_id", as: IDTag.Resident.self).uuid) != own {
                throw LinliError(.permissionDenied, "resident_id: residents see their own points")
            }
            return own
        }
        return try Input.id(named, field: "resident_id", as: IDTag.Resident.self).uuid
    }

    /// After a change committed: the new balance into the cache (newer versions only).
    func cached<R>(_ response: ServerResponse<R>, _ balance: (R) -> Linli_Commerce_V1_PointsBalance, tenant: TenantID?) async
        -> ServerResponse<R>
    {
        guard let tenant, let message = try? response.message else { return response }
        await cache.write(.init(balance(message)), tenant: tenant)
        return response
    }

    func tenant(_ metadata: Metadata) -> TenantID? { (try? handler.context(metadata))?.tenant?.id }
}

extension PointsStore.Balance {
    init(_ b: Linli_Commerce_V1_PointsBalance) {
        self.init(
            resident: UUID(uuidString: b.residentID) ?? UUID(), available: b.available, frozen: b.frozen, version: b.version,
            nextExpiry: b.hasNextExpiry ? b.nextExpiry.date : nil, nextExpiryPoints: b.nextExpiryPoints)
    }
}

extension Linli_Commerce_V1_PointsBalance {
    init(_ b: PointsStore.Balance, source: String) {
        self.init()
        residentID = b.resident.uuidString.lowercased()
        available = b.available
        frozen = b.frozen
        version = b.version
        self.source = source
        if let next = b.nextExpiry { nextExpiry = Google_Protobuf_Timestamp(date: next) }
        nextExpiryPoints = b.nextExpiryPoints
    }
}

extension Linli_Commerce_V1_PointsBudget {
    init(_ b: PointsStore.Budget) {
        self.init()
        communityID = b.community.description
        funded = b.funded
        left = b.left
        granted = b.granted
        spent = b.spent
        expired = b.expired
        outstanding = b.outstanding
    }
}

extension Linli_Commerce_V1_PointsHold {
    init(_ h: PointsStore.Hold, balance: PointsStore.Balance) {
        self.init()
        id = h.id.uuidString.lowercased()
        residentID = h.resident.uuidString.lowercased()
        points = h.points
        state = ProtoEnum.encode(h.state)
        operationKey = h.operationKey
        lots = h.lots.map { share in
            .with {
                $0.lotID = share.lot.uuidString.lowercased()
                $0.points = share.points
                $0.expiresAt = Google_Protobuf_Timestamp(date: share.expiresAt)
            }
        }
        self.balance = .init(balance, source: "ledger")
    }
}

extension PointsService: Linli_Commerce_V1_PointsService.ServiceProtocol {
    public func fundPointsBudget(request: ServerRequest<Linli_Commerce_V1_FundPointsBudgetRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_PointsBudget>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let points = try Self.points(m.points)
        let memo = try Input.text(m.memo, field: "memo", min: 0, max: 200)
        return try await handler.write(request, context) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            try await Scope.requireExists(community, on: call.connection, logger: call.logger)
            let budget = try await store.fund(
                points, community: community, memo: memo, key: "fund:\(m.requestID)", by: call.principal.subjectID, on: call.connection,
                logger: call.logger)
            return .init(budget)
        }
    }

    public func getPointsBudget(request: ServerRequest<Linli_Commerce_V1_GetPointsBudgetRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_PointsBudget>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [store] call in
            try Scope.requireCommunity(call.principal, community)
            return .init(try await store.budget(community, on: call.connection, logger: call.logger))
        }
    }

    public func grantPoints(request: ServerRequest<Linli_Commerce_V1_GrantPointsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_PointsMovement>
    {
        let m = request.message
        let resident = try Input.id(m.residentID, field: "resident_id", as: IDTag.Resident.self).uuid
        let points = try Self.points(m.points)
        let reason = try Input.text(m.reason, field: "reason", max: 100)
        let key = try Self.key(m.operationKey)
        let now = Date()
        let expires = m.hasExpiresAt ? m.expiresAt.date : now.addingTimeInterval(Self.defaultLifetime)
        guard expires > now else { throw LinliError.invalid("expires_at", "must be in the future") }
        guard expires <= now.addingTimeInterval(Self.longestLifetime) else { throw LinliError.invalid("expires_at", "at most 3 years ahead") }
        let response = try await handler.write(request, context) { [store, cache] call in
            let grant = try await store.grant(
                points, to: resident, reason: reason, expiresAt: expires, key: key, for: call.principal, on: call.connection, logger: call.logger)
            await cache.forget(resident, tenant: call.tenant.id)
            let balance = try await store.balance(resident, on: call.connection, logger: call.logger)
            return Linli_Commerce_V1_PointsMovement.with {
                $0.residentID = resident.uuidString.lowercased()
                $0.points = grant.points
                $0.lotID = grant.lot.uuidString.lowercased()
                $0.expiresAt = Google_Protobuf_Timestamp(date: grant.expiresAt)
                $0.balance = .init(balance, source: "ledger")
            }
        }
        return await cached(response, \.balance, tenant: tenant(request.metadata))
    }

    public func freezePoints(request: ServerRequest<Linli_Commerce_V1_FreezePointsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_PointsHold>
    {
        let m = request.message
        let resident = try Input.id(m.residentID, field: "resident_id", as: IDTag.Resident.self).uuid
        let points = try Self.points(m.points)
        let key = try Self.key(m.operationKey)
        let response = try await handler.write(request, context) { [store, cache] call in
            let hold = try await store.freeze(points, of: resident, key: key, for: call.principal, on: call.connection, logger: call.logger)
            await cache.forget(resident, tenant: call.tenant.id)
            return Linli_Commerce_V1_PointsHold(hold, balance: try await store.balance(resident, on: call.connection, logger: call.logger))
        }
        return await cached(response, \.balance, tenant: tenant(request.metadata))
    }

    func settle(_ request: ServerRequest<Linli_Commerce_V1_PointsHoldRequest>, _ context: ServerContext, commit: Bool) async throws
        -> ServerResponse<Linli_Commerce_V1_PointsHold>
    {
        let id = try Input.id(request.message.holdID, field: "hold_id", as: IDTag.Points.self).uuid
        let response = try await handler.write(request, context) { [store, cache] call in
            let hold = try await store.settle(id, commit: commit, for: call.principal, on: call.connection, logger: call.logger)
            await cache.forget(hold.resident, tenant: call.tenant.id)
            return Linli_Commerce_V1_PointsHold(hold, balance: try await store.balance(hold.resident, on: call.connection, logger: call.logger))
        }
        return await cached(response, \.balance, tenant: tenant(request.metadata))
    }

    public func commitPointsHold(request: ServerRequest<Linli_Commerce_V1_PointsHoldRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_PointsHold>
    {
        try await settle(request, context, commit: true)
    }

    public func releasePointsHold(request: ServerRequest<Linli_Commerce_V1_PointsHoldRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_PointsHold>
    {
        try await settle(request, context, commit: false)
    }

    /// From the cache when it holds the balance, otherwise from the ledger (then cached). The
    /// resident's scope is checked against the ledger either way.
    public func getPointsBalance(request: ServerRequest<Linli_Commerce_V1_GetPointsBalanceRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_PointsBalance>
    {
        let m = request.message
        let ctx = try handler.context(request.metadata)
        let tenant = try ctx.requireTenant()
        // Staff naming a resident: the cache answers once the resident is known to be theirs,
        // which the ledger read below checks; a resident's own id is found the same way.
        let (resident, community) = try await handler.database.tenantTransaction(tenant) { connection in
            let resident = try await Self.resident(m.residentID, community: m.communityID, ctx.principal, on: connection, logger: ctx.logger)
            var community: CommunityID?
            for try await id in try await connection.run("SELECT community_id FROM residents WHERE id = \(resident)", logger: ctx.logger)
                .decode(UUID.self)
            {
                community = CommunityID(id)
            }
            return (resident, community)
        }
        guard let community, ctx.principal.canAct(in: community) else { throw LinliError.notFound("resident") }
        if let hit = await cache.read(resident, tenant: tenant.id) {
            return ServerResponse(message: .init(hit, source: "cache"))
        }
        let balance = try await handler.database.tenantTransaction(tenant) { connection in
            try await store.balance(resident, on: connection, logger: ctx.logger)
        }
        await cache.write(balance, tenant: tenant.id)
        return ServerResponse(message: .init(balance, source: "ledger"))
    }

    public func checkPointsCache(request: ServerRequest<Linli_Commerce_V1_CheckPointsCacheRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_CheckPointsCacheResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        let ctx = try handler.context(request.metadata)
        let tenant = try ctx.requireTenant()
        try Scope.requireCommunity(ctx.principal, community)
        let (balances, balanced) = try await handler.database.tenantTransaction(tenant) { connection in
            let residents = try await store.residents(community: community, on: connection, logger: ctx.logger)
            return (
                try await store.balances(residents: residents, on: connection, logger: ctx.logger),
                try await store.ledgerBalanced(community: community, on: connection, logger: ctx.logger)
            )
        }
        var mismatched: Int32 = 0
        var missing: Int32 = 0
        for balance in balances {
            guard let cached = await cache.read(balance.resident, tenant: tenant.id) else {
                missing += 1
                await cache.write(balance, tenant: tenant.id)
                continue
            }
            if !cached.matches(balance) {
                mismatched += 1
                await cache.replace(balance, tenant: tenant.id)
            }
        }
        return ServerResponse(
            message: .with {
                $0.residents = Int32(clamping: balances.count)
                $0.mismatched = mismatched
                $0.missing = missing
                $0.ledgerBalanced = balanced
            })
    }
}

extension Linli_Commerce_V1_FundPointsBudgetRequest: IdempotentRequest {}
extension Linli_Commerce_V1_GrantPointsRequest: IdempotentRequest {}
extension Linli_Commerce_V1_FreezePointsRequest: IdempotentRequest {}
extension Linli_Commerce_V1_PointsHoldRequest: IdempotentRequest {}
