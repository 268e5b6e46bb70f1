import ArgumentParser
import Foundation
import LinliBilling
import LinliCore
import LinliServer
import LinliTenancy
import PostgresNIO

extension Bench {
    /// Bill generation against a plain INSERT … SELECT of the same rows, and the prepaid offset,
    /// on communities built for the purpose inside the demo tenant.
    struct Billing: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "billing",
            abstract: "Time one month's bills for N rooms × 3 items (beside INSERT … SELECT of the same rows) and the prepaid offset over M accounts."
        )

        @Option(help: "Rooms billed for 3 fee items.") var rooms = 10_000
        @Option(help: "Rooms with a prepaid balance and a bill due, for the offset.") var offsetRooms = 100_000
        @Option(help: "Also this many communities of --spread-rooms rooms each, billed for January: Pay spread over communities.")
        var spread = 0
        @Option var spreadRooms = 625
        @Option var tenant = "demo"

        func run() async throws {
            let app = try Runtime.application()
            let rooms = rooms, offsetRooms = offsetRooms, slug = tenant, spread = spread, spreadRooms = spreadRooms
            let line: String = try await app.withStorage {
                let tenant = try await app.tenants.tenant(slug: slug)
                let clock = ContinuousClock()
                let logger = app.database.logger
                let (billed, binding) = try await Self.community(
                    app, tenant, name: "账单压测", rooms: rooms,
                    items: Self.billedItems)
                let principal = Principal(
                    tenantID: tenant.id, subjectID: UserID(UUIDv7.make()), displayName: "bench", role: .manager,
                    communityIDs: [billed], buildingIDs: [])
                // The reference: the same priced rows into a copy of the bills table (same indexes), nothing else.
                let reference = try await clock.measure {
                    try await app.database.tenantTransaction(tenant) { connection in
                        try await connection.run("CREATE TABLE IF NOT EXISTS bench_bills (LIKE bills INCLUDING ALL)", logger: logger)
                        try await connection.run("TRUNCATE bench_bills", logger: logger)
                        try await connection.run(
                            """
                            INSERT INTO bench_bills (id, community_id, room_id, fee_item_id, period_start, period_end, billed_days, period_days,
                                                     amount_fen, due_on, entry_id)
                            SELECT uuid_v7(), i.community_id, b.room_id, i.id, '2026-01-01', '2026-01-31', 31, 31,
                                   round(CASE i.rule WHEN 'area' THEN r.area_centi_m2::numeric * i.unit_price_fen / 100 ELSE i.unit_price_fen END
                                         + i.surcharge_fen)::bigint, '2026-01-10', gen_random_uuid()
                            FROM fee_items i JOIN fee_bindings b ON b.fee_item_id = i.id JOIN rooms r ON r.id = b.room_id
                            WHERE i.community_id = \(billed.uuid)
                            """, logger: logger)
                    }
                }
                var created = 0
                let generation = try await clock.measure {
                    created = try await app.database.tenantTransaction(tenant) { connection in
                        try await FeeStore().generate(community: billed, month: "2026-01", by: principal, on: connection, logger: logger)
                    }.created
                }

                // The next month on the same rooms: every account is open by now (a property's usual run).
                let nextMonth = try await clock.measure {
                    _ = try await app.database.tenantTransaction(tenant) { connection in
                        try await FeeStore().generate(community: billed, month: "2026-02", by: principal, on: connection, logger: logger)
                    }
                }

                // The offset: every room owes one bill and holds a prepaid balance covering three quarters of it.
                let owing = try await Self.community(app, tenant, name: "预存压测", rooms: offsetRooms, items: [("物业费", "fixed", 2_000)]).community
                var owingPrincipal = principal
                owingPrincipal.communityIDs = [owing]
                _ = try await app.database.unbounded.tenantTransaction(tenant) { connection in
                    try await FeeStore().generate(community: owing, month: "2026-01", by: owingPrincipal, on: connection, logger: logger)
                }
                try await app.database.unbounded.tenantTransaction(tenant) { connection in
                    try await connection.run(
                        """
                        INSERT INTO ledger_accounts (id, community_id, kind, subtype, normal) VALUES (uuid_v7(), \(owing.uuid), 'channel', 'bench', 'debit')
                        ON CONFLICT DO NOTHING
                        """, logger: logger)
                    try await connection.run(
                        """
                        INSERT INTO ledger_accounts (id, community_id, kind, subtype, room_id, normal, guarded)
                        SELECT uuid_v7(), \(owing.uuid), 'prepaid', 'general', id, 'credit', true FROM rooms WHERE community_id = \(owing.uuid)
                        ON CONFLICT DO NOTHING
                        """, logger: logger)
                    try await connection.run(
                        """
                        INSERT INTO ledger_transfers (entry_id, debit_account, credit_account, amount_fen, kind, memo)
                        SELECT gen_random_uuid(), c.id, p.id, 1500, 'topup', 'bench'
                        FROM ledger_accounts p, ledger_accounts c
                        WHERE p.community_id = \(owing.uuid) AND p.kind = 'prepaid' AND c.community_id = \(owing.uuid) AND c.kind = 'channel'
                        """, logger: logger)
                    try await connection.run("ANALYZE ledger_accounts, ledger_transfers, bills", logger: logger)
                }
                var offset = (count: 0, fen: Int64(0))
                let offsetTime = try await clock.measure {
                    offset = try await PrepaidOffsetJob(database: app.database, logger: logger).run(tenant)
                }
                // Communities named 分散压测 for Pay over many communities (Deploy/bench finds them by name).
                for _ in 0..<spread {
                    let (other, _) = try await Self.community(
                        app, tenant, name: "分散压测", rooms: spreadRooms,
                        items: Self.billedItems)
                    var owner = principal
                    owner.communityIDs = [other]
                    _ = try await app.database.tenantTransaction(tenant) { connection in
                        try await FeeStore().generate(community: other, month: "2026-01", by: owner, on: connection, logger: logger)
                    }
                }
                func seconds(_ d: Duration) -> Double { d.seconds }
                return [
                    "generate_rooms=\(rooms)", "bills=\(created)", "generate_s=" + String(format: "%.2f", seconds(generation)),
                    "insert_select_s=" + String(format: "%.2f", seconds(reference)),
                    "bind_s=" + String(format: "%.2f", seconds(binding)),
                    "ratio=" + String(format: "%.2f", seconds(reference) / seconds(generation)),
                    "next_month_s=" + String(format: "%.2f", seconds(nextMonth)),
                    "next_month_ratio=" + String(format: "%.2f", seconds(reference) / seconds(nextMonth)),
                    "offset_accounts=\(offsetRooms)", "offsets=\(offset.count)", "offset_fen=\(offset.fen)",
                    "offset_s=" + String(format: "%.2f", seconds(offsetTime)),
                    "offsets_per_s=" + String(format: "%.0f", Double(offset.count) / seconds(offsetTime)),
                ].joined(separator: " ")
            }
            print(line)
        }

        /// The three items of a billed community: 2.35 元/m², 10 元 and 15 元 a month.
        static let billedItems: [(String, String, Int64)] = [("物业费", "area", 235), ("垃圾清运费", "fixed", 1_000), ("电梯费", "fixed", 1_500)]

        /// A community with one building of `rooms` rooms (50–150 m²) and fee items bound to every room from 2026-01-01.
        static func community(
            _ app: LinliApplication, _ tenant: TenantRef, name: String, rooms: Int,
            items: [(String, String, Int64)]
        ) async throws -> (community: CommunityID, binding: Duration) {
            let community = CommunityID.make()
            let logger = app.database.logger
            let principal = Principal(
                tenantID: tenant.id, subjectID: UserID(UUIDv7.make()), displayName: "bench", role: .manager, communityIDs: [community],
                buildingIDs: [])
            var binding = Duration.zero
            // Set-up, not a measured call: 100,000 rooms take longer than a request's deadline.
            try await app.database.unbounded.tenantTransaction(tenant) { connection in
                try await connection.run(
                    "INSERT INTO communities (id, name) VALUES (\(community.uuid), \(name + " " + community.description.suffix(6)))",
                    logger: logger)
                let building = UUIDv7.make()
                try await connection.run(
                    "INSERT INTO buildings (id, community_id, name) VALUES (\(building), \(community.uuid), '1栋')", logger: logger)
                try await connection.run(
                    """
                    INSERT INTO rooms (id, community_id, building_id, unit, number, floor, area_centi_m2, kind)
                    SELECT uuid_v7(), \(community.uuid), \(building), '', g::text, 1 + g / 100, 5000 + (g * 7919) % 10000, 'residence'
                    FROM generate_series(1, \(Int32(rooms))) g
                    """, logger: logger)
                for (itemName, rule, price) in items {
                    let item = UUIDv7.make()
                    try await connection.run(
                        """
                        INSERT INTO fee_items (id, community_id, name, kind, rule, unit_price_fen, due_day)
                        VALUES (\(item), \(community.uuid), \(itemName), 'monthly', \(rule), \(price), 10)
                        """, logger: logger)
                    // Bound as the product binds (BindFeeItem's path).
                    let started = ContinuousClock.now
                    _ = try await FeeStore().bind(
                        item: item, rooms: [], from: "2026-01-01", until: nil, by: principal, on: connection, logger: logger)
                    binding += ContinuousClock.now - started
                }
                try await connection.run("ANALYZE rooms, fee_items, fee_bindings", logger: logger)
            }
            return (community, binding)
        }
    }
}
