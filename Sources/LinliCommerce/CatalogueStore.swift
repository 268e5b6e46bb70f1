import Foundation
import LinliCore
import Logging
import PostgresNIO

/// The category tree and the merchants' goods with their SKUs and stock.
public struct CatalogueStore: Sendable {
    public init() {}

    public struct Category: Sendable {
        public var id: UUID
        public var parent: UUID?
        public var name: String
        public var sortOrder: Int32
        public var enabled: Bool
    }

    public struct Sku: Sendable {
        public var id: UUID
        public var goods: UUID
        public var spec: String
        /// The price in the community asked for, else the SKU's own (`basePriceFen`).
        public var priceFen: Int64
        public var stock: Int32
        public var reserved: Int32
        public var sold: Int32
        public var basePriceFen: Int64 = 0
        public var communityPrices: [(community: CommunityID, priceFen: Int64)] = []
    }

    public struct Brand: Sendable {
        public var id: UUID
        public var merchant: UUID?
        public var name: String
        public var logoRef: String
    }

    public struct Goods: Sendable {
        public var id: UUID
        public var merchant: UUID
        public var merchantName: String
        public var category: UUID
        public var name: String
        public var description: String
        public var imageRefs: [String]
        public var listed: Bool
        public var reviewCount: Int32
        public var scoreSum: Int32
        public var createdAt: Date
        public var brand: UUID?
        public var brandName: String
        public var skus: [Sku] = []
    }

    public struct SkuDraft: Sendable {
        public var id: UUID?
        public var spec: String
        public var priceFen: Int64
        public var stock: Int32

        public init(id: UUID?, spec: String, priceFen: Int64, stock: Int32) {
            self.id = id
            self.spec = spec
            self.priceFen = priceFen
            self.stock = stock
        }
    }

    public struct GoodsDraft: Sendable {
        public var category: UUID
        public var name: String
        public var description: String
        public var imageRefs: [String]
        public var skus: [SkuDraft]
        public var brand: UUID?

        public init(category: UUID, name: String, description: String, imageRefs: [String], skus: [SkuDraft], brand: UUID? = nil) {
            self.brand = brand
            self.category = category
            self.name = name
            self.description = description
            self.imageRefs = imageRefs
            self.skus = skus
        }
    }

    // MARK: categories

    public func saveCategory(
        id: UUID?, parent: UUID?, name: String, sortOrder: Int32, enabled: Bool, on connection: PostgresConnection, logger: Logger
    ) async throws -> Category {
        if let parent {
            let rows = try await connection.run("SELECT parent_id FROM categories WHERE id = \(parent)", logger: logger).decode(UUID?.self)
            var found = false
            for try await grand in rows {
                found = true
                if grand != nil { throw LinliError.invalid("parent_id", "categories have two levels: the parent must be top-level") }
            }
            if !found { throw LinliError(.notFound, "parent_id: no such category", field: "parent_id") }
            if parent == id { throw LinliError.invalid("parent_id", "a category cannot be its own parent") }
        }
        let target = id ?? UUIDv7.make()
        let rows: PostgresRowSequence
        if let id {
            if parent != nil {
                for try await _ in try await connection.run("SELECT 1 FROM categories WHERE parent_id = \(id) LIMIT 1", logger: logger) {
                    throw LinliError.invalid("parent_id", "a category with children stays top-level")
                }
            }
            rows = try await connection.run(
                """
                UPDATE categories SET parent_id = \(parent), name = \(name), sort_order = \(sortOrder), enabled = \(enabled)
                WHERE id = \(id) AND NOT EXISTS (SELECT 1 FROM categories o WHERE o.parent_id IS NOT DISTINCT FROM \(parent)
                                                 AND o.name = \(name) AND o.id <> \(id))
                RETURNING id
                """, logger: logger)
        } else {
            rows = try await connection.run(
                """
                INSERT INTO categories (id, parent_id, name, sort_order, enabled) VALUES (\(target), \(parent), \(name), \(sortOrder), \(enabled))
                ON CONFLICT DO NOTHING RETURNING id
                """, logger: logger)
        }
        var saved = false
        for try await _ in rows { saved = true }
        guard saved else {
            if let id {
                for try await _ in try await connection.run("SELECT 1 FROM categories WHERE id = \(id)", logger: logger) {
                    throw LinliError(.alreadyExists, "name: the parent already has a category of this name", field: "name")
                }
                throw LinliError.notFound("category")
            }
            throw LinliError(.alreadyExists, "name: the parent already has a category of this name", field: "name")
        }
        return Category(id: target, parent: parent, name: name, sortOrder: sortOrder, enabled: enabled)
    }

    public func categories(includeDisabled: Bool, on connection: PostgresConnection, logger: Logger) async throws -> [Category] {
        var result: [Category] = []
        for try await r in try await connection.run(
            """
            SELECT c.id, c.parent_id, c.name, c.sort_order, c.enabled FROM categories c LEFT JOIN categories p ON p.id = c.parent_id
            WHERE \(includeDisabled) OR (c.enabled AND coalesce(p.enabled, true))
            ORDER BY coalesce(p.sort_order, c.sort_order), coalesce(p.id, c.id), c.parent_id NULLS FIRST, c.sort_order, c.name
            """, logger: logger
        ).decode((UUID, UUID?, String, Int32, Bool).self) {
            result.append(Category(id: r.0, parent: r.1, name: r.2, sortOrder: r.3, enabled: r.4))
        }
        return result
    }

    /// `invalid` unless the category exists and is enabled (with its parent).
    func requireEnabledCategory(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        for try await enabled in try await connection.run(
            """
            SELECT c.enabled AND coalesce(p.enabled, true) FROM categories c LEFT JOIN categories p ON p.id = c.parent_id WHERE c.id = \(id)
            """, logger: logger
        ).decode(Bool.self) {
            if enabled { return }
            throw LinliError(.failedPrecondition, "category_id: the category is disabled", field: "category_id")
        }
        throw LinliError(.notFound, "category_id: no such category", field: "category_id")
    }

    // MARK: goods

    static let goodsColumns = """
        g.id, g.merchant_id, m.name, g.category_id, g.name, g.description, g.image_refs, g.listed, g.review_count, g.score_sum, g.created_at,
        g.brand_id, coalesce(b.name, '')
        """
    static let goodsFrom = "goods g JOIN merchants m ON m.id = g.merchant_id LEFT JOIN brands b ON b.id = g.brand_id"

    /// The goods with their SKUs, priced as in `community` when given.
    func goods(_ query: PostgresQuery, community: CommunityID?, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Goods] {
        var result: [Goods] = []
        for try await r in try await connection.run(query, logger: logger).decode(
            (UUID, UUID, String, UUID, String, String, [String], Bool, Int32, Int32, Date, UUID?, String).self)
        {
            result.append(
                Goods(
                    id: r.0, merchant: r.1, merchantName: r.2, category: r.3, name: r.4, description: r.5, imageRefs: r.6, listed: r.7,
                    reviewCount: r.8, scoreSum: r.9, createdAt: r.10, brand: r.11, brandName: r.12))
        }
        guard !result.isEmpty else { return result }
        var index: [UUID: Int] = [:]
        for (i, g) in result.enumerated() { index[g.id] = i }
        var skuIndex: [UUID: (Int, Int)] = [:]
        for try await r in try await connection.run(
            """
            SELECT s.id, s.goods_id, s.spec, coalesce(cp.price_fen, s.price_fen), s.stock, s.reserved, s.sold, s.price_fen FROM skus s
            LEFT JOIN sku_community_prices cp ON cp.sku_id = s.id AND cp.community_id = \(community?.uuid)
            WHERE s.goods_id = ANY(\(result.map(\.id))::uuid[]) ORDER BY s.goods_id, 4, s.spec
            """, logger: logger
        ).decode((UUID, UUID, String, Int64, Int32, Int32, Int32, Int64).self) {
            if let i = index[r.1] {
                skuIndex[r.0] = (i, result[i].skus.count)
                result[i].skus.append(
                    Sku(id: r.0, goods: r.1, spec: r.2, priceFen: r.3, stock: r.4, reserved: r.5, sold: r.6, basePriceFen: r.7))
            }
        }
        for try await r in try await connection.run(
            """
            SELECT sku_id, community_id, price_fen FROM sku_community_prices WHERE sku_id = ANY(\(Array(skuIndex.keys))::uuid[])
            ORDER BY sku_id, community_id
            """, logger: logger
        ).decode((UUID, UUID, Int64).self) {
            if let (g, k) = skuIndex[r.0] { result[g].skus[k].communityPrices.append((CommunityID(r.1), r.2)) }
        }
        return result
    }

    public func goods(_ id: UUID, community: CommunityID? = nil, on connection: PostgresConnection, logger: Logger) async throws -> Goods {
        var b = PostgresBindings()
        b.append(id)
        guard
            let found = try await goods(
                PostgresQuery(unsafeSQL: "SELECT \(Self.goodsColumns) FROM \(Self.goodsFrom) WHERE g.id = $1", binds: b), community: community,
                connection, logger
            ).first
        else { throw LinliError.notFound("goods") }
        return found
    }

    // MARK: brands

    public func brands(merchant: UUID?, on connection: PostgresConnection, logger: Logger) async throws -> [Brand] {
        var result: [Brand] = []
        for try await r in try await connection.run(
            """
            SELECT id, merchant_id, name, logo_ref FROM brands
            WHERE merchant_id IS NULL OR \(merchant)::uuid IS NULL OR merchant_id = \(merchant)::uuid ORDER BY merchant_id NULLS FIRST, name LIMIT 1000
            """, logger: logger
        ).decode((UUID, UUID?, String, String).self) { result.append(Brand(id: r.0, merchant: r.1, name: r.2, logoRef: r.3)) }
        return result
    }

    /// A new brand (`id` nil) of `merchant` (nil: the platform's), or a change of one of its own.
    public func saveBrand(
        _ id: UUID?, merchant: UUID?, name: String, logoRef: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> Brand {
        let target = id ?? UUIDv7.make()
        let rows: PostgresRowSequence
        if let id {
            rows = try await connection.run(
                """
                UPDATE brands SET name = \(name), logo_ref = \(logoRef) WHERE id = \(id) AND merchant_id IS NOT DISTINCT FROM \(merchant)
                AND NOT EXISTS (SELECT 1 FROM brands o WHERE o.merchant_id IS NOT DISTINCT FROM \(merchant) AND o.name = \(name) AND o.id <> \(id))
                RETURNING 1
                """, logger: logger)
        } else {
            rows = try await connection.run(
                """
                INSERT INTO brands (id, merchant_id, name, logo_ref) VALUES (\(target), \(merchant), \(name), \(logoRef))
                ON CONFLICT DO NOTHING RETURNING 1
                """, logger: logger)
        }
        var saved = false
        for try await _ in rows { saved = true }
        guard saved else {
            if let id {
                var exists = false
                for try await _ in try await connection.run(
                    "SELECT 1 FROM brands WHERE id = \(id) AND merchant_id IS NOT DISTINCT FROM \(merchant)", logger: logger)
                { exists = true }
                guard exists else { throw LinliError.notFound("brand") }
            }
            throw LinliError(.alreadyExists, "name: a brand of this name exists", field: "name")
        }
        return Brand(id: target, merchant: merchant, name: name, logoRef: logoRef)
    }

    /// `notFound` unless the brand is the platform's or `merchant`'s own.
    func requireUsableBrand(_ id: UUID, merchant: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        for try await _ in try await connection.run(
            "SELECT 1 FROM brands WHERE id = \(id) AND (merchant_id IS NULL OR merchant_id = \(merchant))", logger: logger)
        { return }
        throw LinliError(.notFound, "brand_id: no such brand of the platform's or your shop's", field: "brand_id")
    }

    /// The SKU's own price in `community` (nil removes it); the shop must sell there.
    public func setCommunityPrice(
        _ sku: UUID, community: CommunityID, priceFen: Int64?, merchant: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> Sku {
        var goodsID: UUID?
        for try await g in try await connection.run(
            "SELECT s.goods_id FROM skus s JOIN goods g ON g.id = s.goods_id WHERE s.id = \(sku) AND g.merchant_id = \(merchant)", logger: logger
        ).decode(UUID.self) { goodsID = g }
        guard let goodsID else { throw LinliError(.notFound, "sku_id: not a SKU of your shop", field: "sku_id") }
        guard try await MerchantStore().sells(merchant, in: community, on: connection, logger: logger) else {
            throw LinliError(.failedPrecondition, "community_id: your shop does not sell in this community", field: "community_id")
        }
        if let priceFen {
            try await connection.run(
                """
                INSERT INTO sku_community_prices (sku_id, community_id, price_fen) VALUES (\(sku), \(community.uuid), \(priceFen))
                ON CONFLICT (sku_id, community_id) DO UPDATE SET price_fen = excluded.price_fen
                """, logger: logger)
        } else {
            try await connection.run(
                "DELETE FROM sku_community_prices WHERE sku_id = \(sku) AND community_id = \(community.uuid)", logger: logger)
        }
        let goods = try await goods(goodsID, community: community, on: connection, logger: logger)
        guard let found = goods.skus.first(where: { $0.id == sku }) else { throw LinliError.notFound("sku") }
        return found
    }

    /// Creates goods of `merchant` (id nil) or changes them: specs and prices of named SKUs,
    /// new SKUs with their first stock. SKUs left out stay as they are.
    public func save(_ id: UUID?, _ draft: GoodsDraft, merchant: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Goods {
        try await requireEnabledCategory(draft.category, on: connection, logger: logger)
        if let brand = draft.brand { try await requireUsableBrand(brand, merchant: merchant, on: connection, logger: logger) }
        let target = id ?? UUIDv7.make()
        if let id {
            let updated = try await connection.run(
                """
                UPDATE goods SET category_id = \(draft.category), name = \(draft.name), description = \(draft.description),
                    image_refs = \(draft.imageRefs)::text[], brand_id = \(draft.brand), updated_at = now()
                WHERE id = \(id) AND merchant_id = \(merchant) RETURNING 1
                """, logger: logger)
            var found = false
            for try await _ in updated { found = true }
            guard found else { throw LinliError.notFound("goods") }
        } else {
            try await connection.run(
                """
                INSERT INTO goods (id, merchant_id, category_id, name, description, image_refs, brand_id)
                VALUES (\(target), \(merchant), \(draft.category), \(draft.name), \(draft.description), \(draft.imageRefs)::text[], \(draft.brand))
                """, logger: logger)
        }
        for sku in draft.skus {
            let rows: PostgresRowSequence
            if let skuID = sku.id {
                rows = try await connection.run(
                    """
                    UPDATE skus SET spec = \(sku.spec), price_fen = \(sku.priceFen) WHERE id = \(skuID) AND goods_id = \(target) RETURNING 1
                    """, logger: logger)
            } else {
                rows = try await connection.run(
                    """
                    INSERT INTO skus (id, goods_id, spec, price_fen, stock) VALUES (\(UUIDv7.make()), \(target), \(sku.spec), \(sku.priceFen), \(sku.stock))
                    ON CONFLICT (goods_id, spec) DO NOTHING RETURNING 1
                    """, logger: logger)
            }
            var saved = false
            for try await _ in rows { saved = true }
            guard saved else {
                if sku.id != nil { throw LinliError(.notFound, "skus.sku_id: not a SKU of these goods", field: "skus.sku_id") }
                throw LinliError(.alreadyExists, "skus.spec: these goods already have a SKU \"\(sku.spec)\"", field: "skus.spec")
            }
        }
        return try await goods(target, on: connection, logger: logger)
    }

    public func setListed(_ id: UUID, listed: Bool, merchant: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Goods {
        let updated = try await connection.run(
            "UPDATE goods SET listed = \(listed), updated_at = now() WHERE id = \(id) AND merchant_id = \(merchant) RETURNING 1", logger: logger)
        var found = false
        for try await _ in updated { found = true }
        guard found else { throw LinliError.notFound("goods") }
        return try await goods(id, on: connection, logger: logger)
    }

    /// Adds `delta` to the SKU's stock (a negative delta takes away, never below zero: what
    /// unpaid orders hold is already out of `stock`).
    public func adjustStock(_ sku: UUID, by delta: Int32, merchant: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Sku {
        let rows = try await connection.run(
            """
            UPDATE skus s SET stock = s.stock + \(delta)
            FROM goods g WHERE s.id = \(sku) AND g.id = s.goods_id AND g.merchant_id = \(merchant) AND s.stock + \(delta) >= 0
            RETURNING s.id, s.goods_id, s.spec, s.price_fen, s.stock, s.reserved, s.sold
            """, logger: logger)
        for try await r in rows.decode((UUID, UUID, String, Int64, Int32, Int32, Int32).self) {
            return Sku(id: r.0, goods: r.1, spec: r.2, priceFen: r.3, stock: r.4, reserved: r.5, sold: r.6)
        }
        for try await _ in try await connection.run(
            "SELECT 1 FROM skus s JOIN goods g ON g.id = s.goods_id WHERE s.id = \(sku) AND g.merchant_id = \(merchant)", logger: logger)
        {
            throw LinliError(.failedPrecondition, "delta: the stock would go below zero", field: "delta")
        }
        throw LinliError.notFound("sku")
    }

    /// Listed goods of the merchants active and approved in `community` (or, for `merchant`
    /// itself, all of its goods), newest first.
    public func list(
        community: CommunityID?, merchant: UUID?, category: UUID?, brand: UUID? = nil, includeUnlisted: Bool, after: (Date, UUID)?, limit: Int,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [Goods] {
        var b = PostgresBindings()
        var sql = "SELECT \(Self.goodsColumns) FROM \(Self.goodsFrom) WHERE true"
        if let community {
            b.append(community.uuid)
            sql += """
                 AND m.state = 'active' AND EXISTS (SELECT 1 FROM merchant_communities c WHERE c.merchant_id = m.id
                     AND c.community_id = $\(b.count) AND c.state = 'approved')
                """
        }
        if let merchant {
            b.append(merchant)
            sql += " AND g.merchant_id = $\(b.count)"
        }
        if !includeUnlisted { sql += " AND g.listed" }
        if let brand {
            b.append(brand)
            sql += " AND g.brand_id = $\(b.count)"
        }
        if let category {
            b.append(category)
            sql += " AND (g.category_id = $\(b.count) OR g.category_id IN (SELECT id FROM categories WHERE parent_id = $\(b.count)))"
        }
        if let (time, id) = after {
            b.append(time)
            b.append(id)
            sql += " AND (g.created_at, g.id) < ($\(b.count - 1), $\(b.count))"
        }
        sql += " ORDER BY g.created_at DESC, g.id DESC LIMIT \(limit)"
        return try await goods(PostgresQuery(unsafeSQL: sql, binds: b), community: community, connection, logger)
    }
}
