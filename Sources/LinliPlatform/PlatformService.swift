import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

/// The `linli.platform.v1.PlatformService` RPCs, for platform operators.
public struct PlatformService: Sendable {
    let database: Database
    let provisioner: TenantProvisioner
    let tenants: TenantRegistry
    let logger: Logger

    /// Creates the service.
    public init(database: Database, provisioner: TenantProvisioner, tenants: TenantRegistry, logger: Logger) {
        self.database = database
        self.provisioner = provisioner
        self.tenants = tenants
        self.logger = logger
    }

    /// Creates a community with its buildings in `tenant`, recording the national delta.
    public static func createCommunity(
        name: String, address: String, timeZone: String, buildings: [String],
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Linli_Platform_V1_Community {
        var community = Linli_Platform_V1_Community()
        let id = CommunityID.make()
        community.id = id.description
        community.name = name
        community.address = address
        community.timeZone = timeZone
        try await connection.run(
            """
            INSERT INTO communities (id, name, address, time_zone) VALUES (\(id.uuid), \(name), \(address), \(timeZone))
            """, logger: logger)
        for buildingName in buildings {
            let building = BuildingID.make()
            try await connection.run(
                """
                INSERT INTO buildings (id, community_id, name) VALUES (\(building.uuid), \(id.uuid), \(buildingName))
                """, logger: logger)
            var b = Linli_Platform_V1_Building()
            b.id = building.description
            b.name = buildingName
            community.buildings.append(b)
        }
        try await MetricDelta.record(.communities, delta: 1, community: id, on: connection, logger: logger)
        return community
    }
}

extension PlatformService: Linli_Platform_V1_PlatformService.ServiceProtocol {
    public func createTenant(request: ServerRequest<Linli_Platform_V1_CreateTenantRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Platform_V1_CreateTenantResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let m = request.message
        let requestID = try Input.requestID(m.requestID)
        guard TenantRef.isValidSlug(m.slug) else { throw LinliError.invalid("slug", "must be 1 to 40 of a-z, 0-9 and _") }
        let name = try Input.text(m.name, field: "name", max: 200)
        let plan = m.plan.isEmpty ? "standard" : try Input.text(m.plan, field: "plan", max: 40)
        let response = try await database.platformTransaction { connection in
            try await Idempotency.once(
                .platform, principal: ctx.principal.subjectID, requestID: requestID,
                method: "CreateTenant", fingerprint: m, on: connection, logger: ctx.logger
            ) {
                let tenant = try await provisioner.create(slug: m.slug, name: name, plan: plan, on: connection)
                var response = Linli_Platform_V1_CreateTenantResponse()
                response.tenant = .init(
                    id: tenant.ref.id, slug: tenant.ref.slug, name: name, status: "active", plan: plan,
                    createdAt: tenant.createdAt)
                return response
            }
        }
        ctx.logger.notice("tenant created", metadata: ["tenant.slug": "\(m.slug)"])
        return ServerResponse(message: response)
    }

    public func listTenants(request: ServerRequest<Linli_Platform_V1_ListTenantsRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Platform_V1_ListTenantsResponse>
    {
        _ = try RequestContext(admitted: request.metadata, logger: logger)
        let limit = try Input.pageSize(request.message.page.pageSize)
        let after = request.message.page.pageToken
        if !after.isEmpty && !TenantRef.isValidSlug(after) { throw LinliError.invalid("page.page_token", "is not a valid page token") }
        let rows: [Linli_Platform_V1_Tenant] = try await database.platformTransaction { connection in
            let rows = try await connection.run(
                """
                SELECT id, slug, name, status, plan, created_at FROM platform.tenants
                WHERE slug > \(after) ORDER BY slug LIMIT \(limit + 1)
                """, logger: logger)
            var result: [Linli_Platform_V1_Tenant] = []
            for try await (id, slug, name, status, plan, created) in rows.decode((UUID, String, String, String, String, Date).self) {
                result.append(.init(id: TenantID(id), slug: slug, name: name, status: status, plan: plan, createdAt: created))
            }
            return result
        }
        var response = Linli_Platform_V1_ListTenantsResponse()
        response.tenants = Array(rows.prefix(limit))
        if rows.count > limit { response.nextPageToken = response.tenants.last?.slug ?? "" }
        return ServerResponse(message: response)
    }

    public func suspendTenant(request: ServerRequest<Linli_Platform_V1_SuspendTenantRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Platform_V1_SuspendTenantResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let m = request.message
        let requestID = try Input.requestID(m.requestID)
        let id: TenantID = try Input.id(m.tenantID, field: "tenant_id")
        let reason = try Input.text(m.reason, field: "reason", max: 500)
        let response = try await database.platformTransaction { connection in
            try await Idempotency.once(
                .platform, principal: ctx.principal.subjectID, requestID: requestID,
                method: "SuspendTenant", fingerprint: m, on: connection, logger: ctx.logger
            ) {
                let rows = try await connection.run(
                    """
                    UPDATE platform.tenants SET status = 'suspended', suspended_reason = \(reason), updated_at = now()
                    WHERE id = \(id.uuid) RETURNING id, slug, name, status, plan, created_at
                    """, logger: ctx.logger)
                for try await (id, slug, name, status, plan, created) in rows.decode((UUID, String, String, String, String, Date).self) {
                    var response = Linli_Platform_V1_SuspendTenantResponse()
                    response.tenant = .init(id: TenantID(id), slug: slug, name: name, status: status, plan: plan, createdAt: created)
                    return response
                }
                throw LinliError.notFound("tenant")
            }
        }
        tenants.invalidate()
        ctx.logger.notice("tenant suspended", metadata: ["tenant.id": "\(id)"])
        return ServerResponse(message: response)
    }

    public func createCommunity(request: ServerRequest<Linli_Platform_V1_CreateCommunityRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Platform_V1_CreateCommunityResponse>
    {
        let ctx = try RequestContext(admitted: request.metadata, logger: logger)
        let m = request.message
        let requestID = try Input.requestID(m.requestID)
        let tenantID: TenantID = try Input.id(m.tenantID, field: "tenant_id")
        let name = try Input.text(m.name, field: "name", max: 200)
        let address = try Input.text(m.address, field: "address", min: 0, max: 500)
        let zone = m.timeZone.isEmpty ? BusinessDay.defaultTimeZone : m.timeZone
        guard TimeZone(identifier: zone) != nil else { throw LinliError.invalid("time_zone", "is not an IANA time zone") }
        var buildings: [String] = []
        for (index, raw) in m.buildingNames.enumerated() {
            let building = try Input.text(raw, field: "building_names[\(index)]", max: 100)
            if buildings.contains(building) { throw LinliError.invalid("building_names[\(index)]", "is a duplicate") }
            buildings.append(building)
        }
        let tenant = try await tenants.tenant(id: tenantID)
        guard tenant.isActive else { throw LinliError(.failedPrecondition, "tenant_id: tenant is suspended", field: "tenant_id") }
        let response = try await database.tenantTransaction(tenant) { connection in
            try await Idempotency.once(
                .tenant, principal: ctx.principal.subjectID, requestID: requestID,
                method: "CreateCommunity", fingerprint: m, on: connection, logger: ctx.logger
            ) {
                var community = try await Self.createCommunity(
                    name: name, address: address, timeZone: zone,
                    buildings: buildings, on: connection, logger: ctx.logger)
                community.tenantID = tenant.id.description
                var response = Linli_Platform_V1_CreateCommunityResponse()
                response.community = community
                return response
            }
        }
        return ServerResponse(message: response)
    }

    public func getNationalOverview(request: ServerRequest<Linli_Platform_V1_GetNationalOverviewRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Platform_V1_GetNationalOverviewResponse>
    {
        _ = try RequestContext(admitted: request.metadata, logger: logger)
        let response: Linli_Platform_V1_GetNationalOverviewResponse = try await database.platformTransaction { connection in
            var response = Linli_Platform_V1_GetNationalOverviewResponse()
            let rows = try await connection.run(
                """
                SELECT t.id, t.slug, t.status, r.folded_through,
                       coalesce(jsonb_object_agg(d.metric, d.total) FILTER (WHERE d.metric IS NOT NULL), '{}')::text
                FROM platform.tenants t
                LEFT JOIN (SELECT tenant_id, metric, sum(value)::bigint AS total FROM platform.national_daily GROUP BY 1, 2) d
                       ON d.tenant_id = t.id
                LEFT JOIN platform.rollup_state r ON r.tenant_id = t.id
                GROUP BY t.id, t.slug, t.status, r.folded_through ORDER BY t.slug
                """, logger: logger)
            for try await (id, slug, status, folded, json) in rows.decode((UUID, String, String, Date?, String).self) {
                let totals = (try? JSONDecoder().decode([String: Int64].self, from: Data(json.utf8))) ?? [:]
                func total(_ metric: MetricDelta.Metric) -> Int64 { totals[metric.rawValue] ?? 0 }
                var figures = Linli_Platform_V1_TenantFigures()
                figures.tenantID = id.uuidString.lowercased()
                figures.tenantSlug = slug
                figures.communities = total(.communities)
                figures.noticesPublished = total(.noticesPublished)
                figures.workOrdersFiled = total(.workOrdersFiled)
                figures.workOrdersCompleted = total(.workOrdersCompleted)
                figures.complaintsFiled = total(.complaintsFiled)
                figures.hotlineTickets = total(.hotlineTickets)
                figures.rooms = total(.rooms)
                figures.residents = total(.residents)
                figures.complaintsPerThousandRooms = Self.perThousand(figures.complaintsFiled, figures.rooms)
                figures.billingChargedFen = total(.billingChargedFen)
                figures.billingCollectedFen = total(.billingCollectedFen)
                figures.collectionRateBasisPoints = Self.basisPoints(figures.billingCollectedFen, figures.billingChargedFen)
                figures.parkingRevenueFen = total(.parkingRevenueFen)
                figures.parkingOccupied = max(0, total(.parkingEntries) - total(.parkingExits))
                if let folded { figures.foldedThrough = Google_Protobuf_Timestamp(date: folded) }
                response.perTenant.append(figures)
                response.tenants += 1
                if status == "active" { response.activeTenants += 1 }
                response.communities += figures.communities
                response.noticesPublished += figures.noticesPublished
                response.workOrdersFiled += figures.workOrdersFiled
                response.workOrdersCompleted += figures.workOrdersCompleted
                response.complaintsFiled += figures.complaintsFiled
                response.hotlineTickets += figures.hotlineTickets
                response.rooms += figures.rooms
                response.residents += figures.residents
                response.billingChargedFen += figures.billingChargedFen
                response.billingCollectedFen += figures.billingCollectedFen
                response.parkingRevenueFen += figures.parkingRevenueFen
                response.parkingOccupied += figures.parkingOccupied
            }
            response.collectionRateBasisPoints = Self.basisPoints(response.billingCollectedFen, response.billingChargedFen)
            response.complaintsPerThousandRooms = Self.perThousand(response.complaintsFiled, response.rooms)
            let watch = try await connection.run(
                """
                SELECT d.tenant_id, t.slug, d.community_id,
                       coalesce(sum(d.value) FILTER (WHERE d.metric = 'complaints_filed'), 0)::bigint AS complaints,
                       coalesce(sum(d.value) FILTER (WHERE d.metric = 'rooms'), 0)::bigint AS rooms
                FROM platform.national_daily d JOIN platform.tenants t ON t.id = d.tenant_id
                WHERE d.metric IN ('complaints_filed', 'rooms')
                GROUP BY 1, 2, 3
                HAVING coalesce(sum(d.value) FILTER (WHERE d.metric = 'rooms'), 0) > 0
                ORDER BY coalesce(sum(d.value) FILTER (WHERE d.metric = 'complaints_filed'), 0)::float8
                         / sum(d.value) FILTER (WHERE d.metric = 'rooms') DESC, d.community_id
                LIMIT 10
                """, logger: logger)
            for try await (tenant, slug, community, complaints, rooms) in watch.decode((UUID, String, UUID, Int64, Int64).self) {
                response.highestComplaintRates.append(
                    .with {
                        $0.tenantID = tenant.uuidString.lowercased()
                        $0.tenantSlug = slug
                        $0.communityID = community.uuidString.lowercased()
                        $0.complaintsFiled = complaints
                        $0.rooms = rooms
                        $0.complaintsPerThousandRooms = Self.perThousand(complaints, rooms)
                    })
            }
            response.generatedAt = Google_Protobuf_Timestamp(date: Date())
            return response
        }
        return ServerResponse(message: response)
    }
}

extension PlatformService {
    /// `count` per 1,000 of `base`, to one decimal; 0 without a base.
    static func perThousand(_ count: Int64, _ base: Int64) -> Double {
        base > 0 ? (Double(count) * 10_000 / Double(base)).rounded() / 10 : 0
    }

    /// `part` ÷ `whole` in basis points, rounded down; 0 without a whole.
    static func basisPoints(_ part: Int64, _ whole: Int64) -> Int32 {
        whole > 0 ? Int32(clamping: part * 10_000 / whole) : 0
    }
}

extension Linli_Platform_V1_Tenant {
    init(id: TenantID, slug: String, name: String, status: String, plan: String, createdAt: Date) {
        self.init()
        self.id = id.description
        self.slug = slug
        self.name = name
        self.status = status == "active" ? .active : .suspended
        self.plan = plan
        self.createdAt = Google_Protobuf_Timestamp(date: createdAt)
    }
}

extension Linli_Platform_V1_CreateTenantRequest: IdempotentRequest {}
extension Linli_Platform_V1_SuspendTenantRequest: IdempotentRequest {}
extension Linli_Platform_V1_CreateCommunityRequest: IdempotentRequest {}
