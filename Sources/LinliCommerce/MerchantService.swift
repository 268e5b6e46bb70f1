import Foundation
import GRPCCore
import LinliAPI
import LinliBilling
import LinliCore
import LinliTenancy
import Logging
import PostgresNIO
import SwiftProtobuf

/// The `linli.commerce.v1.MerchantService` RPCs (commerce.proto): shapes checked here, the
/// rows in `MerchantStore` and `CatalogueStore` inside the caller's tenant transaction.
public struct MerchantService: Sendable {
    let merchants = MerchantStore()
    let catalogue = CatalogueStore()
    let objects: any ObjectStore
    let handler: Handler

    public init(database: Database, objects: any ObjectStore, logger: Logger) {
        handler = Handler(database: database, logger: logger)
        self.objects = objects
    }

    static func within(_ value: Int32, _ range: ClosedRange<Int32>, field: String) throws(LinliError) -> Int32 {
        guard range.contains(value) else { throw LinliError.invalid(field, "must be \(range.lowerBound) to \(range.upperBound)") }
        return value
    }

    static func optionalID(_ raw: String, field: String) throws(LinliError) -> UUID? {
        raw.isEmpty ? nil : try Input.id(raw, field: field, as: IDTag.Commerce.self).uuid
    }

    /// `invalid` unless every reference is an image uploaded to this tenant.
    static func requireImages(_ refs: [String], field: String, _ call: Call) async throws {
        guard !refs.isEmpty else { return }
        let rows = try await call.connection.run("SELECT count(*)::int8 FROM images WHERE ref = ANY(\(refs)::text[])", logger: call.logger)
        for try await count in rows.decode(Int64.self) where count == Set(refs).count { return }
        throw LinliError.invalid(field, "names an image that was not uploaded")
    }

    func phoneVisible(_ merchant: MerchantStore.Merchant, to call: Call) -> Bool {
        call.principal.role == .manager || call.principal.subjectID.uuid == merchant.owner
    }

    func message(_ m: MerchantStore.Merchant, _ call: Call) -> Linli_Commerce_V1_Merchant {
        .with {
            $0.id = m.id.uuidString.lowercased()
            $0.name = m.name
            $0.shopType = ProtoEnum.encode(m.shopType)
            $0.licenceNo = m.licenceNo
            $0.contactName = m.contactName
            $0.contactPhone = phoneVisible(m, to: call) ? m.contactPhone : PersonalData.maskPhone(m.contactPhone)
            $0.address = m.address
            $0.hours = m.hours
            $0.deliveryRadiusTenthsKm = m.radius
            $0.logoRef = m.logoRef
            $0.imageRefs = m.imageRefs
            $0.state = ProtoEnum.encode(m.state)
            $0.rejectReason = m.rejectReason
            $0.commissionBp = m.commissionBP
            $0.depositFen = m.depositFen
            $0.communities = m.communities.map { c in
                .with {
                    $0.communityID = c.community.description
                    $0.state = ProtoEnum.encode(c.state)
                    $0.reason = c.reason
                }
            }
            $0.createdAt = Google_Protobuf_Timestamp(date: m.createdAt)
        }
    }
}

extension Linli_Commerce_V1_Goods {
    init(_ g: CatalogueStore.Goods) {
        self.init()
        id = g.id.uuidString.lowercased()
        merchantID = g.merchant.uuidString.lowercased()
        merchantName = g.merchantName
        categoryID = g.category.uuidString.lowercased()
        name = g.name
        description_p = g.description
        imageRefs = g.imageRefs
        listed = g.listed
        skus = g.skus.map(Linli_Commerce_V1_Sku.init)
        minPriceFen = g.skus.map(\.priceFen).min() ?? 0
        brandID = g.brand?.uuidString.lowercased() ?? ""
        brandName = g.brandName
        reviews = g.reviewCount
        scoreHundredths = g.reviewCount > 0 ? Int32((Int64(g.scoreSum) * 100 + Int64(g.reviewCount) / 2) / Int64(g.reviewCount)) : 0
    }
}

extension Linli_Commerce_V1_Sku {
    init(_ s: CatalogueStore.Sku) {
        self.init()
        id = s.id.uuidString.lowercased()
        goodsID = s.goods.uuidString.lowercased()
        spec = s.spec
        priceFen = s.priceFen
        stock = s.stock
        reserved = s.reserved
        sold = s.sold
        basePriceFen = s.basePriceFen
        communityPrices = s.communityPrices.map { p in
            .with {
                $0.communityID = p.community.description
                $0.priceFen = p.priceFen
            }
        }
    }
}

extension Linli_Commerce_V1_Goods {
    /// Residents see the prices of their community, not the others'.
    func forResidents(_ principal: Principal) -> Self {
        guard principal.role == .resident else { return self }
        var copy = self
        for i in copy.skus.indices { copy.skus[i].communityPrices = [] }
        return copy
    }
}

extension Linli_Commerce_V1_Brand {
    init(_ b: CatalogueStore.Brand) {
        self.init()
        id = b.id.uuidString.lowercased()
        merchantID = b.merchant?.uuidString.lowercased() ?? ""
        name = b.name
        logoRef = b.logoRef
    }
}

extension Linli_Commerce_V1_MerchantStaff {
    init(_ s: MerchantStore.Staff) {
        self.init()
        merchantID = s.merchant.uuidString.lowercased()
        userID = s.user.uuidString.lowercased()
        displayName = s.displayName
        owner = s.owner
    }
}

extension Linli_Commerce_V1_Category {
    init(_ c: CatalogueStore.Category) {
        self.init()
        id = c.id.uuidString.lowercased()
        parentID = c.parent?.uuidString.lowercased() ?? ""
        name = c.name
        sortOrder = c.sortOrder
        enabled = c.enabled
    }
}

extension Linli_Commerce_V1_CommerceSettings {
    init(_ s: MerchantStore.Settings) {
        self.init()
        unpaidMinutes = (s.unpaidSeconds + 59) / 60
        confirmDays = s.confirmDays
        reviewDays = s.reviewDays
        fenPerPoint = s.fenPerPoint
        maxPointsPercent = s.maxPointsPercent
        defaultCommissionBp = s.defaultCommissionBP
    }
}

extension MerchantService: Linli_Commerce_V1_MerchantService.ServiceProtocol {
    public func applyMerchant(request: ServerRequest<Linli_Commerce_V1_ApplyMerchantRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Merchant>
    {
        let m = request.message
        let application = MerchantStore.Application(
            community: try Input.id(m.communityID, field: "community_id"),
            name: try Input.text(m.name, field: "name", max: 60),
            shopType: try ProtoEnum.decode(m.shopType, MerchantStore.ShopType.self, field: "shop_type"),
            licenceNo: try Self.licence(m.licenceNo),
            contactName: try Input.text(m.contactName, field: "contact_name", max: 30),
            contactPhone: try Self.requiredMobile(m.contactPhone, field: "contact_phone"),
            address: try Input.text(m.address, field: "address", max: 200),
            hours: try Self.hours(m.hours),
            radius: try Self.within(m.deliveryRadiusTenthsKm, 0...500, field: "delivery_radius_tenths_km"),
            logoRef: m.logoRef.isEmpty ? "" : try ImageUpload.checkRefs([m.logoRef], field: "logo_ref")[0],
            imageRefs: try ImageUpload.checkRefs(m.imageRefs, field: "image_refs"))
        return try await handler.write(request, context) { [merchants] call in
            guard call.principal.role == .merchant else { throw LinliError(.permissionDenied, "only a merchant account applies for a shop") }
            try Scope.requireCommunity(call.principal, application.community)
            try await Scope.requireExists(application.community, on: call.connection, logger: call.logger)
            try await Self.requireImages(application.logoRef.isEmpty ? [] : [application.logoRef], field: "logo_ref", call)
            try await Self.requireImages(application.imageRefs, field: "image_refs", call)
            return message(try await merchants.apply(application, by: call.principal.subjectID, on: call.connection, logger: call.logger), call)
        }
    }

    static func licence(_ raw: String) throws(LinliError) -> String {
        let value = raw.trimmingCharacters(in: .whitespaces).uppercased()
        guard value.count == 18, value.allSatisfy({ $0.isASCII && ($0.isNumber || $0.isUppercase) }) else {
            throw LinliError.invalid("licence_no", "must be the 18-character unified social credit code")
        }
        return value
    }

    static func requiredMobile(_ raw: String, field: String) throws(LinliError) -> String {
        let phone = try Input.mobile(raw, field: field)
        guard !phone.isEmpty else { throw LinliError.invalid(field, "is required") }
        return phone
    }

    static func hours(_ raw: String) throws(LinliError) -> String {
        if raw.isEmpty { return "" }
        let parts = raw.split(separator: "-").map { $0.split(separator: ":") }
        guard parts.count == 2, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy { $0.count == 2 && $0.allSatisfy(\.isASCII) } }),
            parts.allSatisfy({ (Int($0[0]).map { (0...24).contains($0) } ?? false) && (Int($0[1]).map { (0...59).contains($0) } ?? false) })
        else { throw LinliError.invalid("hours", "must read like 08:00-21:00") }
        return raw
    }

    public func reviewMerchant(request: ServerRequest<Linli_Commerce_V1_ReviewMerchantRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Merchant>
    {
        let m = request.message
        let id = try Input.id(m.merchantID, field: "merchant_id", as: IDTag.Commerce.self).uuid
        let reason = try Input.text(m.reason, field: "reason", min: m.approve ? 0 : 1, max: 200)
        let commission = try Self.within(m.commissionBp, 0...3000, field: "commission_bp")
        guard (0...10_000_000).contains(m.depositFen) else { throw LinliError.invalid("deposit_fen", "must be 0 to 10000000") }
        return try await handler.write(request, context) { [merchants] call in
            let bp = m.useDefaultCommission ? try await merchants.settings(on: call.connection, logger: call.logger).defaultCommissionBP : commission
            let merchant = try await merchants.review(
                id, approve: m.approve, reason: reason, commissionBP: bp, depositFen: m.depositFen, by: call.principal, on: call.connection,
                logger: call.logger)
            return message(merchant, call)
        }
    }

    public func collectMerchantDeposit(
        request: ServerRequest<Linli_Commerce_V1_CollectMerchantDepositRequest>, context: ServerContext
    ) async throws -> ServerResponse<Linli_Commerce_V1_Merchant> {
        let m = request.message
        let id = try Input.id(m.merchantID, field: "merchant_id", as: IDTag.Commerce.self).uuid
        guard let method = PaymentStore.Method(rawValue: m.method), [.cash, .wechat, .alipay, .bankCard].contains(method) else {
            throw LinliError.invalid("method", "must be cash, wechat, alipay or bank_card")
        }
        return try await handler.write(request, context) { [merchants] call in
            message(try await merchants.collectDeposit(id, method: method, by: call.principal, on: call.connection, logger: call.logger), call)
        }
    }

    public func joinCommunity(request: ServerRequest<Linli_Commerce_V1_JoinCommunityRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Merchant>
    {
        let m = request.message
        let id = try Input.id(m.merchantID, field: "merchant_id", as: IDTag.Commerce.self).uuid
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        return try await handler.write(request, context) { [merchants] call in
            guard try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger) == id else {
                throw LinliError.notFound("merchant")
            }
            try await Scope.requireExists(community, on: call.connection, logger: call.logger)
            return message(try await merchants.requestJoin(id, community: community, on: call.connection, logger: call.logger), call)
        }
    }

    public func reviewCommunityJoin(
        request: ServerRequest<Linli_Commerce_V1_ReviewCommunityJoinRequest>, context: ServerContext
    ) async throws -> ServerResponse<Linli_Commerce_V1_Merchant> {
        let m = request.message
        let id = try Input.id(m.merchantID, field: "merchant_id", as: IDTag.Commerce.self).uuid
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        let reason = try Input.text(m.reason, field: "reason", min: m.approve ? 0 : 1, max: 200)
        return try await handler.write(request, context) { [merchants] call in
            try Scope.requireCommunity(call.principal, community)
            return message(
                try await merchants.reviewJoin(
                    id, community: community, approve: m.approve, reason: reason, by: call.principal.subjectID, on: call.connection,
                    logger: call.logger),
                call)
        }
    }

    public func listMerchants(request: ServerRequest<Linli_Commerce_V1_ListMerchantsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_ListMerchantsResponse>
    {
        let m = request.message
        let state = m.state == .unspecified ? nil : try ProtoEnum.decode(m.state, MerchantStore.State.self, field: "state")
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [merchants] call in
            let rows = try await merchants.list(
                for: call.principal, state: state, after: after, limit: limit + 1, on: call.connection, logger: call.logger)
            let page = PageToken.page(rows, limit: limit) { ($0.createdAt, $0.id) }
            return .with {
                $0.merchants = page.rows.map { message($0, call) }
                $0.nextPageToken = page.next
            }
        }
    }

    public func getMerchant(request: ServerRequest<Linli_Commerce_V1_GetMerchantRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Merchant>
    {
        let id = try Input.id(request.message.merchantID, field: "merchant_id", as: IDTag.Commerce.self).uuid
        return try await handler.read(request) { [merchants] call in
            message(try await merchants.visible(id, to: call.principal, on: call.connection, logger: call.logger), call)
        }
    }

    public func uploadImage(request: ServerRequest<Linli_Commerce_V1_UploadImageRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_ImageRef>
    {
        let m = request.message
        let ref = try ImageUpload.reference(m.data, contentType: m.contentType)
        // Stored before the row: a row always names bytes that exist (an orphan file is harmless).
        try await objects.put(m.data, name: ref)
        return try await handler.write(request, context) { call in
            try await call.connection.run(
                """
                INSERT INTO images (ref, size, content_type, created_by) VALUES (\(ref), \(Int32(clamping: m.data.count)), \(m.contentType), \(call.principal.subjectID.uuid))
                ON CONFLICT (ref) DO NOTHING
                """, logger: call.logger)
            return .with {
                $0.ref = ref
                $0.size = Int64(m.data.count)
                $0.contentType = m.contentType
            }
        }
    }

    public func saveCategory(request: ServerRequest<Linli_Commerce_V1_SaveCategoryRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Category>
    {
        let m = request.message
        let id = try Self.optionalID(m.categoryID, field: "category_id")
        let parent = try Self.optionalID(m.parentID, field: "parent_id")
        let name = try Input.text(m.name, field: "name", max: 30)
        let order = try Self.within(m.sortOrder, 0...9999, field: "sort_order")
        return try await handler.write(request, context) { [catalogue] call in
            .init(
                try await catalogue.saveCategory(
                    id: id, parent: parent, name: name, sortOrder: order, enabled: m.enabled, on: call.connection, logger: call.logger))
        }
    }

    public func listCategories(request: ServerRequest<Linli_Commerce_V1_ListCategoriesRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_ListCategoriesResponse>
    {
        try await handler.read(request) { [catalogue] call in
            let all = request.message.includeDisabled && call.principal.role != .resident
            let categories = try await catalogue.categories(includeDisabled: all, on: call.connection, logger: call.logger)
            return .with { $0.categories = categories.map(Linli_Commerce_V1_Category.init) }
        }
    }

    public func saveGoods(request: ServerRequest<Linli_Commerce_V1_SaveGoodsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Goods>
    {
        let m = request.message
        let id = try Self.optionalID(m.goodsID, field: "goods_id")
        guard (1...50).contains(m.skus.count) else { throw LinliError.invalid("skus", "must hold 1 to 50 SKUs") }
        var specs: Set<String> = []
        var skus: [CatalogueStore.SkuDraft] = []
        for sku in m.skus {
            let spec = try Input.text(sku.spec, field: "skus.spec", max: 40)
            guard specs.insert(spec).inserted else { throw LinliError.invalid("skus.spec", "\"\(spec)\" appears twice") }
            guard (1...100_000_000).contains(sku.priceFen) else { throw LinliError.invalid("skus.price_fen", "must be 1 to 100000000") }
            guard (0...1_000_000).contains(sku.stock) else { throw LinliError.invalid("skus.stock", "must be 0 to 1000000") }
            skus.append(.init(id: try Self.optionalID(sku.skuID, field: "skus.sku_id"), spec: spec, priceFen: sku.priceFen, stock: sku.stock))
        }
        let draft = CatalogueStore.GoodsDraft(
            category: try Input.id(m.categoryID, field: "category_id", as: IDTag.Commerce.self).uuid,
            name: try Input.text(m.name, field: "name", max: 60),
            description: try Input.text(m.description_p, field: "description", min: 0, max: 2000),
            imageRefs: try ImageUpload.checkRefs(m.imageRefs, field: "image_refs"), skus: skus,
            brand: try Self.optionalID(m.brandID, field: "brand_id"))
        return try await handler.write(request, context) { [merchants, catalogue] call in
            let merchant = try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger)
            try await Self.requireImages(draft.imageRefs, field: "image_refs", call)
            return .init(try await catalogue.save(id, draft, merchant: merchant, on: call.connection, logger: call.logger))
        }
    }

    public func setGoodsListed(request: ServerRequest<Linli_Commerce_V1_SetGoodsListedRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Goods>
    {
        let m = request.message
        let id = try Input.id(m.goodsID, field: "goods_id", as: IDTag.Commerce.self).uuid
        return try await handler.write(request, context) { [merchants, catalogue] call in
            let merchant = try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger)
            return .init(try await catalogue.setListed(id, listed: m.listed, merchant: merchant, on: call.connection, logger: call.logger))
        }
    }

    public func adjustStock(request: ServerRequest<Linli_Commerce_V1_AdjustStockRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Sku>
    {
        let m = request.message
        let id = try Input.id(m.skuID, field: "sku_id", as: IDTag.Commerce.self).uuid
        guard m.delta != 0, (-1_000_000...1_000_000).contains(m.delta) else {
            throw LinliError.invalid("delta", "must be -1000000 to 1000000, not 0")
        }
        return try await handler.write(request, context) { [merchants, catalogue] call in
            let merchant = try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger)
            return .init(try await catalogue.adjustStock(id, by: m.delta, merchant: merchant, on: call.connection, logger: call.logger))
        }
    }

    public func listGoods(request: ServerRequest<Linli_Commerce_V1_ListGoodsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_ListGoodsResponse>
    {
        let m = request.message
        let community: CommunityID? = m.communityID.isEmpty ? nil : try Input.id(m.communityID, field: "community_id")
        let category = try Self.optionalID(m.categoryID, field: "category_id")
        let merchantID = try Self.optionalID(m.merchantID, field: "merchant_id")
        let brand = try Self.optionalID(m.brandID, field: "brand_id")
        let limit = try Input.pageSize(m.page.pageSize)
        let after = try PageToken.decode(m.page.pageToken)
        return try await handler.read(request) { [merchants, catalogue] call in
            var unlisted = false
            var merchant = merchantID
            var scope = community
            if call.principal.role == .merchant {
                // A merchant browses their own shop (listed or not).
                merchant = try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger)
                unlisted = m.includeUnlisted
                scope = nil
            } else {
                guard let community else { throw LinliError.invalid("community_id", "is required") }
                try Scope.requireCommunity(call.principal, community)
            }
            let rows = try await catalogue.list(
                community: scope, merchant: merchant, category: category, brand: brand, includeUnlisted: unlisted, after: after,
                limit: limit + 1, on: call.connection, logger: call.logger)
            let page = PageToken.page(rows, limit: limit) { ($0.createdAt, $0.id) }
            return .with {
                $0.goods = page.rows.map { Linli_Commerce_V1_Goods($0).forResidents(call.principal) }
                $0.nextPageToken = page.next
            }
        }
    }

    public func getGoods(request: ServerRequest<Linli_Commerce_V1_GetGoodsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Goods>
    {
        let id = try Input.id(request.message.goodsID, field: "goods_id", as: IDTag.Commerce.self).uuid
        let community: CommunityID? = request.message.communityID.isEmpty ? nil : try Input.id(request.message.communityID, field: "community_id")
        return try await handler.read(request) { [merchants, catalogue] call in
            if let community, call.principal.role != .merchant { try Scope.requireCommunity(call.principal, community) }
            let goods = try await catalogue.goods(id, community: community, on: call.connection, logger: call.logger)
            if call.principal.role == .merchant {
                guard try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger) == goods.merchant else {
                    throw LinliError.notFound("goods")
                }
            } else {
                // Goods of a shop that sells in one of the caller's communities, and listed for residents.
                var sells = false
                for community in call.principal.communityIDs where !sells {
                    sells = try await merchants.sells(goods.merchant, in: community, on: call.connection, logger: call.logger)
                }
                guard sells, goods.listed || call.principal.role != .resident else { throw LinliError.notFound("goods") }
            }
            return Linli_Commerce_V1_Goods(goods).forResidents(call.principal)
        }
    }

    public func saveBrand(request: ServerRequest<Linli_Commerce_V1_SaveBrandRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Brand>
    {
        let m = request.message
        let id = try Self.optionalID(m.brandID, field: "brand_id")
        let name = try Input.text(m.name, field: "name", max: 40)
        let logo = try ImageUpload.checkRefs(m.logoRef.isEmpty ? [] : [m.logoRef], field: "logo_ref")
        return try await handler.write(request, context) { [merchants, catalogue] call in
            // A merchant's brands are its shop's; managers keep the platform's (like the category tree).
            let merchant =
                call.principal.role == .merchant ? try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger) : nil
            try await Self.requireImages(logo, field: "logo_ref", call)
            return .init(
                try await catalogue.saveBrand(id, merchant: merchant, name: name, logoRef: logo.first ?? "", on: call.connection, logger: call.logger)
            )
        }
    }

    public func listBrands(request: ServerRequest<Linli_Commerce_V1_ListBrandsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_ListBrandsResponse>
    {
        try await handler.read(request) { [merchants, catalogue] call in
            let merchant =
                call.principal.role == .merchant ? try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger) : nil
            let brands = try await catalogue.brands(merchant: merchant, on: call.connection, logger: call.logger)
            return .with { $0.brands = brands.map(Linli_Commerce_V1_Brand.init) }
        }
    }

    public func setCommunityPrice(request: ServerRequest<Linli_Commerce_V1_SetCommunityPriceRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_Sku>
    {
        let m = request.message
        let sku = try Input.id(m.skuID, field: "sku_id", as: IDTag.Commerce.self).uuid
        let community: CommunityID = try Input.id(m.communityID, field: "community_id")
        guard (0...100_000_000).contains(m.priceFen) else { throw LinliError.invalid("price_fen", "must be 0 (remove) to 100000000") }
        return try await handler.write(request, context) { [merchants, catalogue] call in
            let merchant = try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger)
            return .init(
                try await catalogue.setCommunityPrice(
                    sku, community: community, priceFen: m.priceFen == 0 ? nil : m.priceFen, merchant: merchant, on: call.connection,
                    logger: call.logger))
        }
    }

    public func addMerchantStaff(request: ServerRequest<Linli_Commerce_V1_AddMerchantStaffRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_MerchantStaff>
    {
        let user: UserID = try Input.id(request.message.userID, field: "user_id")
        return try await handler.write(request, context) { [merchants] call in
            let merchant = try await merchants.ownedMerchant(call.principal, on: call.connection, logger: call.logger)
            return .init(try await merchants.addStaff(user, to: merchant, on: call.connection, logger: call.logger))
        }
    }

    public func removeMerchantStaff(request: ServerRequest<Linli_Commerce_V1_RemoveMerchantStaffRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_MerchantStaff>
    {
        let user: UserID = try Input.id(request.message.userID, field: "user_id")
        return try await handler.write(request, context) { [merchants] call in
            let merchant = try await merchants.ownedMerchant(call.principal, on: call.connection, logger: call.logger)
            return .init(try await merchants.removeStaff(user, from: merchant, on: call.connection, logger: call.logger))
        }
    }

    public func listMerchantStaff(request: ServerRequest<Linli_Commerce_V1_ListMerchantStaffRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_ListMerchantStaffResponse>
    {
        try await handler.read(request) { [merchants] call in
            let merchant = try await merchants.ownMerchant(call.principal, on: call.connection, logger: call.logger)
            let staff = try await merchants.staff(of: merchant, on: call.connection, logger: call.logger)
            return .with { $0.staff = staff.map(Linli_Commerce_V1_MerchantStaff.init) }
        }
    }

    public func getCommerceSettings(request: ServerRequest<Linli_Commerce_V1_GetCommerceSettingsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_CommerceSettings>
    {
        try await handler.read(request) { [merchants] call in .init(try await merchants.settings(on: call.connection, logger: call.logger)) }
    }

    public func setCommerceSettings(request: ServerRequest<Linli_Commerce_V1_SetCommerceSettingsRequest>, context: ServerContext) async throws
        -> ServerResponse<Linli_Commerce_V1_CommerceSettings>
    {
        let s = request.message.settings
        let settings = MerchantStore.Settings(
            unpaidSeconds: try Self.within(s.unpaidMinutes, 1...1440, field: "settings.unpaid_minutes") * 60,
            confirmDays: try Self.within(s.confirmDays, 1...30, field: "settings.confirm_days"),
            reviewDays: try Self.within(s.reviewDays, 1...30, field: "settings.review_days"),
            fenPerPoint: try Self.within(s.fenPerPoint, 1...100, field: "settings.fen_per_point"),
            maxPointsPercent: try Self.within(s.maxPointsPercent, 0...100, field: "settings.max_points_percent"),
            defaultCommissionBP: try Self.within(s.defaultCommissionBp, 0...3000, field: "settings.default_commission_bp"))
        return try await handler.write(request, context) { [merchants] call in
            .init(try await merchants.setSettings(settings, on: call.connection, logger: call.logger))
        }
    }
}

extension Linli_Commerce_V1_ApplyMerchantRequest: IdempotentRequest {}
extension Linli_Commerce_V1_ReviewMerchantRequest: IdempotentRequest {}
extension Linli_Commerce_V1_CollectMerchantDepositRequest: IdempotentRequest {}
extension Linli_Commerce_V1_JoinCommunityRequest: IdempotentRequest {}
extension Linli_Commerce_V1_ReviewCommunityJoinRequest: IdempotentRequest {}
extension Linli_Commerce_V1_UploadImageRequest: IdempotentRequest {}
extension Linli_Commerce_V1_SaveCategoryRequest: IdempotentRequest {}
extension Linli_Commerce_V1_SaveGoodsRequest: IdempotentRequest {}
extension Linli_Commerce_V1_SetGoodsListedRequest: IdempotentRequest {}
extension Linli_Commerce_V1_AdjustStockRequest: IdempotentRequest {}
extension Linli_Commerce_V1_SetCommerceSettingsRequest: IdempotentRequest {}
extension Linli_Commerce_V1_SaveBrandRequest: IdempotentRequest {}
extension Linli_Commerce_V1_SetCommunityPriceRequest: IdempotentRequest {}
extension Linli_Commerce_V1_AddMerchantStaffRequest: IdempotentRequest {}
extension Linli_Commerce_V1_RemoveMerchantStaffRequest: IdempotentRequest {}
