import Foundation
import LinliCore
import Logging
import PostgresNIO

/// The resident's cart (购物车): SKUs and quantities kept until ordered, priced when read.
extension OrderStore {
    public static let cartLimit = 100

    public struct CartItem: Sendable {
        public var sku: UUID
        public var goods: UUID
        public var name: String
        public var spec: String
        public var priceFen: Int64
        public var quantity: Int32
        public var stock: Int32
        public var listed: Bool
        public var merchant: UUID
        public var merchantName: String

        public var available: Bool { listed && stock >= quantity }
    }

    /// Sets the SKU's quantity in the cart (0 takes it out). A SKU goes in only when it is on
    /// sale by a shop selling in the resident's community.
    public func setCartItem(
        resident: UUID, community: CommunityID, sku: UUID, quantity: Int32, on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard quantity > 0 else {
            try await connection.run("DELETE FROM cart_items WHERE resident_id = \(resident) AND sku_id = \(sku)", logger: logger)
            return
        }
        var found: (UUID, Bool)?
        for try await r in try await connection.run(
            "SELECT g.merchant_id, g.listed FROM skus s JOIN goods g ON g.id = s.goods_id WHERE s.id = \(sku)", logger: logger
        ).decode((UUID, Bool).self) { found = r }
        guard let (merchant, listed) = found, try await merchants.sells(merchant, in: community, on: connection, logger: logger) else {
            throw LinliError(.notFound, "sku_id: no such SKU on sale in this community", field: "sku_id")
        }
        guard listed else { throw LinliError(.failedPrecondition, "sku_id: the goods are not on sale", field: "sku_id") }
        let rows = try await connection.run(
            """
            INSERT INTO cart_items (resident_id, sku_id, quantity)
            SELECT \(resident), \(sku), \(quantity)
            WHERE (SELECT count(*) FROM cart_items WHERE resident_id = \(resident) AND sku_id <> \(sku)) < \(Self.cartLimit)
            ON CONFLICT (resident_id, sku_id) DO UPDATE SET quantity = excluded.quantity
            RETURNING 1
            """, logger: logger)
        var saved = false
        for try await _ in rows { saved = true }
        guard saved else { throw LinliError(.resourceExhausted, "sku_id: a cart holds at most \(Self.cartLimit) SKUs", field: "sku_id") }
    }

    /// The cart priced as in `community` today, oldest item first.
    public func cart(resident: UUID, community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> [CartItem] {
        var result: [CartItem] = []
        for try await r in try await connection.run(
            """
            SELECT s.id, s.goods_id, g.name, s.spec, coalesce(cp.price_fen, s.price_fen), i.quantity, s.stock, g.listed AND m.state = 'active',
                   m.id, m.name
            FROM cart_items i JOIN skus s ON s.id = i.sku_id JOIN goods g ON g.id = s.goods_id JOIN merchants m ON m.id = g.merchant_id
            LEFT JOIN sku_community_prices cp ON cp.sku_id = s.id AND cp.community_id = \(community.uuid)
            WHERE i.resident_id = \(resident) ORDER BY i.added_at, s.id
            """, logger: logger
        ).decode((UUID, UUID, String, String, Int64, Int32, Int32, Bool, UUID, String).self) {
            result.append(
                CartItem(
                    sku: r.0, goods: r.1, name: r.2, spec: r.3, priceFen: r.4, quantity: r.5, stock: r.6, listed: r.7, merchant: r.8,
                    merchantName: r.9))
        }
        return result
    }
}
