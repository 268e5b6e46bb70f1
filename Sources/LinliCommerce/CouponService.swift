import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

/// The `linli.commerce.v1.CouponService` RPCs (commerce.proto): shapes checked here, the rows in
/// `CouponStore`; redemption happens in `PlaceOrder`.
public struct CouponService: Sendable {
    let store = CouponStore()
    let merchants = MerchantStore()
    let handler: Handler

    public init(database: Database, logger: Logger) { handler = Handler(database: database, logger: logger) }

    static func template(_ t: Linli_Commerce_V1_CouponTemplate) throws(LinliError) -> CouponStore.Template {
        let kind = try ProtoEnum.decode(t.kind, CouponStore.Kind.self, field: "template.kind")
        let scope = try ProtoEnum.decode(t.scope, CouponStore.Scope.self, field: "template.scope")
        switch kind {
        case .amountOff:
            guard (1...100_000_000).contains(t.amountOffFen) else { throw LinliError.invalid("template.amount_off_fen", "must be 1 to 100000000") }
            guard t.percentOff == 0 else { throw LinliError.invalid("template.percent_off", "must be 0 for an amount off") }
        case .percentOff:
            guard (1...99).contains(t.percentOff) else { throw LinliError.invalid("template.percent_off", "must be 1 to 99") }
            guard t.amountOffFen == 0 else { throw LinliError.invalid("template.amount_off_fen", "must be 0 for a percent off") }
        }
        guard (0...100_000_000).contains(t.capFen) else { throw LinliError.invalid("template.cap_fen", "must be 0 to 100000000") }
        guard (0...100_000_000).contains(t.thresholdFen) else { throw LinliError.invalid("template.threshold_fen", "must be 0 to 100000000") }
        let ids = try Input.ids(t.scopeIds, field: "template.scope_ids", as: IDTag.Commerce.self).map(\.uuid)
        guard ids.count <= 100 else { throw LinliError.invalid("template.scope_ids", "at most 100") }
        let named = scope == .category || scope == .goods
        guard named != ids.isEmpty else {
            throw LinliError.invalid("template.scope_ids", named ? "names the categories or goods" : "must be empty for a coupon of this scope")
        }
        guard (1...1_000_000).contains(t.stock) else { throw LinliError.invalid("template.stock", "must be 1 to 1000000") }
        guard (1...100).contains(t.perPerson) else { throw LinliError.invalid("template.per_person", "must be 1 to 100") }
        guard (1...365).contains(t.validDays) else { throw LinliError.invalid("template.valid_days", "must be 1 to 365") }
        let from = t.hasClaimFrom ? try Input.instant(t.claimFrom, field: "template.claim_from") : Date()
        guard t.hasClaimUntil else { throw LinliError.invalid("template.claim_until", "is required") }
        let until = try Input.instant(t.claimUntil, field: "template.claim_until")
        guard until > from else { throw LinliError.invalid("template.claim_until", "must be after claim_from") }
        return CouponStore.Template(
            id: UUIDv7.make(), community: try Input.id(t.communityID, field: "template.community_id"), merchant: nil,
            name: try Input.text(t.name, field: "template.name", max: 60), kind: kind, amountOffFen: t.amountOffFen, percentOff: t.percentOff,
            capFen: t.capFen, thresholdFen: t.thresholdFen, scope: scope, scopeIDs: ids, stock: t.stock, claimed: 0, perPerson: t.perPerson,
            claimFrom: from, claimUntil: until, validDays: t.validDays)
    }

}

extension Linli_Commerce_V1_CouponTemplate {
    init(_ t: CouponStore.Template) {
        self.init()
        id = t.id.uuidString.lowercased()
        communityID = t.community.description
        merchantID = t.merchant?.uuidString.lowercased() ?? ""
        name = t.name
        kind = ProtoEnum.encode(t.kind)
        amountOffFen = t.amountOffFen
        percentOff = t.percentOff
        capFen = t.capFen
        thresholdFen = t.thresholdFen
        scope = ProtoEnum.encode(t.scope)
        scopeIds = t.scopeIDs.map { $0.uuidString.lowercased() }
        stock = t.stock
        claimed = t.claimed
        perPerson = t.perPerson
        claimFrom = Google_Protobuf_Timestamp(date: t.claimFrom)
        claimUntil = Google_Protobuf_Timestamp(date: t.claimUntil)
        validDays = t.validDays
    }
}

extension Linli_Commerce_V1_Coupon {
    init(_ c: CouponStore.Coupon) {
        self.init()
        id = c.id.uuidString.lowercased()
        template = .init(c.template)
        state = ProtoEnum.encode(c.state())
        claimedAt = Google_Protobuf_Timestamp(date: c.claimedAt)
        expiresAt = Google_Protobuf_Timestamp(date: c.expiresAt)
        orderID = c.order?.uuidString.lowercased() ?? ""
        discountFen = c.discountFen
        paymentID = c.payment?.uuidString.lowercased() ?? ""
    }
}

extension CouponService: Linli_Commerce_V1_CouponService.ServiceProtocol {
    public func createCouponTemplate(request: ServerRequest<Linli_Commerce_V1_CreateCouponTemplateRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Commerce_V1_CouponTemplate>
    {
        var template = try Self.template(request.message.template)
        return try await handler.write(request, context) { [store, merchants] call in
            if call.principal.role == .merchant {
                guard template.scope.use == nil else {
                    throw LinliError.invalid("template.scope", "coupons for fees or parking are issued by the property")
                }
                let own = try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger)
                guard try await merchants.sells(own, in: template.community, on: call.connection, logger: call.logger) else {
                    throw LinliError(.failedPrecondition, "template.community_id: your shop does not sell in this community")
                }
                template.merchant = own
            } else {
                try Scope.requireCommunity(call.principal, template.community)
                try await Scope.requireExists(template.community, on: call.connection, logger: call.logger)
            }
            return .init(try await store.create(template, by: call.principal.subjectID, on: call.connection, logger: call.logger))
        }
    }

    public func listCouponTemplates(request: ServerRequest<Linli_Commerce_V1_ListCouponTemplatesRequest>, context: ServerContext)
        async throws -> ServerResponse<Linli_Commerce_V1_ListCouponTemplatesResponse>
    {
        let community: CommunityID = try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [store, merchants] call in
            var merchant: UUID?
            var claimable: Date?
            switch call.principal.role {
            case .merchant: merchant = try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger)
            case .resident:
                try Scope.requireCommunity(call.principal, community)
                claimable = Date()
            default: try Scope.requireCommunity(call.principal, community)
            }
            let rows = try await store.templates(
                community: community, merchant: merchant, claimableAt: claimable, on: call.connection, logger: call.logger)
            return .with { $0.templates = rows.map(Linli_Commerce_V1_CouponTemplate.init) }
        }
    }

    public func claimCoupon(request: ServerRequest<Linli_Commerce_V1_ClaimCouponRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Coupon>
    {
        let id = try Input.id(request.message.templateID, field: "template_id", as: IDTag.Commerce.self).uuid
        return try await handler.write(request, context) { [store] call in
            guard call.principal.role == .resident else { throw LinliError(.permissionDenied, "residents claim coupons") }
            var community: CommunityID?
            for try await c in try await call.connection.run("SELECT community_id FROM coupon_templates WHERE id = \(id)", logger: call.logger)
                .decode(UUID.self)
            { community = CommunityID(c) }
            guard let community, call.principal.canAct(in: community) else { throw LinliError.notFound("coupon template") }
            let resident = try await OwnResident.of(call.principal.subjectID, community: community, on: call.connection, logger: call.logger)
            return .init(try await store.claim(id, resident: resident, community: community, on: call.connection, logger: call.logger))
        }
    }

    public func listMyCoupons(request: ServerRequest<Linli_Commerce_V1_ListMyCouponsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_ListMyCouponsResponse>
    {
        let m = request.message
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let state = m.state == .unspecified ? nil : try ProtoEnum.decode(m.state, CouponStore.State.self, field: "state")
        return try await handler.read(request) { [store] call in
            guard call.principal.role == .resident else { throw LinliError(.permissionDenied, "residents hold coupons") }
            try Scope.requireCommunity(call.principal, community)
            let resident = try await OwnResident.of(call.principal.subjectID, community: community, on: call.connection, logger: call.logger)
            let coupons = try await store.mine(resident, state: state, on: call.connection, logger: call.logger)
            return .with { $0.coupons = coupons.map(Linli_Commerce_V1_Coupon.init) }
        }
    }
}

extension Linli_Commerce_V1_CreateCouponTemplateRequest: IdempotentRequest {}
extension Linli_Commerce_V1_ClaimCouponRequest: IdempotentRequest {}
