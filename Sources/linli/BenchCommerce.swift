import ArgumentParser
import Foundation
import Histogram
import LinliCommerce
import LinliCore
import LinliPoints
import LinliServer
import LinliTenancy
import PostgresNIO

extension Bench {
    /// The flash sale (scenario C-2 at scale): `buyers` residents check out one unit each of a SKU
    /// with `units` in stock, all at once; exactly `units` orders must exist afterwards. Beside it
    /// in the same run, the bare guarded stock UPDATE the checkout ends with, as many times from
    /// as many callers: the ceiling of a checkout on one hot row.
    struct Commerce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "commerce", abstract: "Measure a flash sale: concurrent checkouts on a few units, beside the bare stock UPDATE.")

        @Option(help: "Residents checking out at once.") var buyers = 1000
        @Option(help: "Units in stock.") var units = 100
        @Option(help: "Concurrent callers.") var concurrency = 64

        func validate() throws {
            guard buyers > 0, units > 0, concurrency > 0 else { throw ValidationError("positive counts") }
        }

        func run() async throws {
            let app = try Runtime.application()
            let options = self
            let line: String = try await app.withStorage { try await options.measure(app) }
            print(line)
        }

        func measure(_ app: LinliApplication) async throws -> String {
            let logger = app.logger
            let slug = "benchsale_" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
            let demo = try await app.seedDemoTenant(slug: slug, name: slug, password: "bench-password-1")
            guard let manager = demo.users["manager"], let owner = demo.users["merchant"], let buyer = demo.users["resident1"] else {
                throw ValidationError("no demo staff")
            }
            let principal = Principal(
                tenantID: demo.tenant.id, subjectID: manager, displayName: "bench", role: .manager, communityIDs: [demo.community],
                buildingIDs: [])
            let (people, sku, reference) = try await app.database.tenantTransaction(demo.tenant) { connection in
                var made: [UUID] = []
                for try await id in try await connection.run(
                    """
                    INSERT INTO residents (id, community_id, name)
                    SELECT uuid_v7(), \(demo.community.uuid), '抢购住户' || n FROM generate_series(1, \(Int32(clamping: buyers))) AS n
                    RETURNING id
                    """, logger: logger
                ).decode(UUID.self) { made.append(id) }
                let merchants = MerchantStore()
                let shop = try await merchants.apply(
                    .init(
                        community: demo.community, name: "秒杀水果", shopType: .greengrocer, licenceNo: "91310115MA1KBENCH1", contactName: "压测",
                        contactPhone: "13812345678", address: "南门", hours: "", radius: 0, logoRef: "", imageRefs: []), by: owner, on: connection,
                    logger: logger)
                _ = try await merchants.review(
                    shop.id, approve: true, reason: "", commissionBP: 500, depositFen: 0, by: principal, on: connection, logger: logger)
                let catalogue = CatalogueStore()
                let category = try await catalogue.saveCategory(
                    id: nil, parent: nil, name: "秒杀", sortOrder: 0, enabled: true, on: connection, logger: logger)
                let goods = try await catalogue.save(
                    nil,
                    .init(
                        category: category.id, name: "车厘子", description: "", imageRefs: [],
                        skus: [
                            .init(id: nil, spec: "1 斤", priceFen: 3_990, stock: Int32(clamping: units)),
                            .init(id: nil, spec: "参照", priceFen: 3_990, stock: Int32(clamping: units)),
                        ]), merchant: shop.id, on: connection, logger: logger)
                _ = try await catalogue.setListed(goods.id, listed: true, merchant: shop.id, on: connection, logger: logger)
                let sorted = goods.skus.sorted { $0.spec < $1.spec }
                return (made, sorted[0].id, sorted[1].id)
            }
            let store = OrderStore()
            let sold = Counter()
            let refused = Counter()
            let sale = try await Points.parse(["--concurrency", String(concurrency)]).load(count: buyers, until: nil) { index in
                do {
                    _ = try await app.database.tenantTransaction(demo.tenant) { connection in
                        try await store.place(
                            .init(community: demo.community, lines: [(sku, Int32(1))], points: 0, room: nil, contactPhone: "", note: ""),
                            resident: people[index], address: "1栋", by: .init(actor: .resident, user: buyer), on: connection, logger: logger)
                    }
                    _ = sold.take()
                } catch let error as LinliError where error.code == .resourceExhausted {
                    _ = refused.take()
                }
            }
            // The same number of bare reservations on the reference SKU, as many callers.
            let bare = try await Points.parse(["--concurrency", String(concurrency)]).load(count: buyers, until: nil) { _ in
                _ = try await app.database.tenantTransaction(demo.tenant) { connection in
                    try await connection.run(
                        "UPDATE skus SET stock = stock - 1, reserved = reserved + 1 WHERE id = \(reference) AND stock >= 1", logger: logger)
                }
            }
            let (orders, stock, reserved) = try await app.database.tenantTransaction(demo.tenant) { connection in
                var row: (Int64, Int32, Int32) = (0, 0, 0)
                for try await r in try await connection.run(
                    """
                    SELECT (SELECT count(*) FROM order_lines WHERE sku_id = \(sku))::int8, stock, reserved FROM skus WHERE id = \(sku)
                    """, logger: logger
                ).decode((Int64, Int32, Int32).self) { row = r }
                return row
            }
            func rate(_ run: (calls: Int, seconds: Double, histogram: Histogram<UInt64>)) -> Double { Double(run.calls) / max(run.seconds, 0.001) }
            return [
                "buyers=\(buyers)", "units=\(units)", "orders=\(orders)", "refused_sold_out=\(refused.take())", "stock_left=\(stock)",
                "reserved=\(reserved)", "exactly_units_sold=\(orders == Int64(units) && reserved == Int32(clamping: units))",
                "checkouts_per_s=\(String(format: "%.0f", rate(sale)))", "checkout_p50_ms=\(Parking.ms(sale.histogram.valueAtPercentile(50)))",
                "checkout_p99_ms=\(Parking.ms(sale.histogram.valueAtPercentile(99)))",
                "bare_reserve_per_s=\(String(format: "%.0f", rate(bare)))", "bare_reserve_p99_ms=\(Parking.ms(bare.histogram.valueAtPercentile(99)))",
                "checkout_to_bare_ratio=\(String(format: "%.2f", rate(sale) / max(rate(bare), 0.001)))",
            ].joined(separator: " ")
        }
    }
}
