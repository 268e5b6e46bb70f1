import ArgumentParser
import Foundation
import Histogram
import LinliCore
import LinliPoints
import LinliServer
import LinliTenancy
import PostgresNIO

extension Bench {
    /// Points grants (one transaction each, as a payment's grant would be) and balance reads:
    /// from the Redis cache beside the same balances read from the ledger in PostgreSQL, in the
    /// same run, in process against the local stack.
    struct Points: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "points", abstract: "Measure points grants and balance reads (Redis cache beside PostgreSQL).")

        @Option(help: "Residents with points.") var residents = 1000
        @Option(help: "Grants made (one transaction each).") var grants = 20_000
        @Option(help: "Seconds each read run lasts.") var seconds = 10
        @Option(help: "Concurrent callers.") var concurrency = 64
        @Option(help: "Earnings made in batches (as the billing.paid consumer makes them).") var batchedGrants = 200_000
        @Option(help: "Earnings per batch (one transaction each).") var batch = 500

        func validate() throws {
            guard residents > 0, grants > 0, seconds > 0, concurrency > 0, batchedGrants > 0, (1...1000).contains(batch) else {
                throw ValidationError("positive counts, a batch of 1 to 1000")
            }
        }

        func run() async throws {
            let app = try Runtime.application()
            let options = self
            let line: String = try await app.withStorage { try await options.measure(app) }
            print(line)
        }

        /// Runs `body` from `concurrency` callers until `count` calls are made or `until` passes;
        /// returns the calls made, the seconds taken and the latencies.
        func load(count: Int?, until: ContinuousClock.Instant?, _ body: @escaping @Sendable (Int) async throws -> Void) async throws
            -> (calls: Int, seconds: Double, histogram: Histogram<UInt64>)
        {
            let started = ContinuousClock.now
            let next = Counter()
            let total = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                        while true {
                            let index = next.take()
                            if let count, index >= count { break }
                            if let until, ContinuousClock.now >= until { break }
                            let t0 = ContinuousClock.now
                            try await body(index)
                            histogram.record(Parking.micros(ContinuousClock.now - t0))
                        }
                        return histogram
                    }
                }
                var total = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                for try await histogram in group { total.add(histogram) }
                return total
            }
            return (Int(clamping: total.totalCount), (ContinuousClock.now - started).seconds, total)
        }

        func measure(_ app: LinliApplication) async throws -> String {
            let logger = app.logger
            let slug = "benchpts_" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
            let demo = try await app.seedDemoTenant(slug: slug, name: slug, password: "bench-password-1")
            guard let manager = demo.users["manager"] else { throw ValidationError("no demo manager") }
            let principal = Principal(
                tenantID: demo.tenant.id, subjectID: manager, displayName: "bench", role: .manager, communityIDs: [demo.community],
                buildingIDs: [])
            let store = PointsStore()
            let cache = PointsCache(redis: app.redis, logger: logger)
            let people: [UUID] = try await app.database.tenantTransaction(demo.tenant) { connection in
                var made: [UUID] = []
                for try await id in try await connection.run(
                    """
                    INSERT INTO residents (id, community_id, name)
                    SELECT uuid_v7(), \(demo.community.uuid), '压测住户' || n FROM generate_series(1, \(Int32(clamping: residents))) AS n
                    RETURNING id
                    """, logger: logger
                ).decode(UUID.self) { made.append(id) }
                _ = try await store.fund(
                    Int64(grants + batchedGrants) * 100, community: demo.community, memo: "bench", key: "bench-fund", by: manager, on: connection,
                    logger: logger)
                _ = try await PointsEarning().save(
                    .init(
                        id: UUIDv7.make(), community: demo.community, kind: .feePaid, name: "缴费每元1分", points: 1, perFen: 100, rounding: .down,
                        minFen: 0, capPoints: 100, startsAt: Date().addingTimeInterval(-60), endsAt: nil, enabled: true, lifetimeDays: 365),
                    new: true, on: connection, logger: logger)
                return made
            }
            let expires = Date().addingTimeInterval(86_400 * 30)
            // Grants: one transaction each, the committed balance written to the cache after it.
            let granted = try await load(count: grants, until: nil) { index in
                let resident = people[index % people.count]
                let balance = try await app.database.tenantTransaction(demo.tenant) { connection in
                    _ = try await store.grant(
                        100, to: resident, reason: "缴费奖励", expiresAt: expires, key: "pay:\(index)", for: principal, on: connection, logger: logger)
                    return try await store.balance(resident, on: connection, logger: logger)
                }
                await cache.write(balance, tenant: demo.tenant.id)
            }
            // Earnings in batches, as the billing.paid consumer makes a payment run's: 100 points
            // for each 100.00 元 payment, `batch` payments per transaction.
            let batches = (batchedGrants + batch - 1) / batch
            let batched = try await load(count: batches, until: nil) { [batch, batchedGrants] index in
                let events = (index * batch..<min((index + 1) * batch, batchedGrants)).map { n in
                    PointsEarning.Event(
                        kind: .feePaid, community: demo.community, resident: people[n % people.count], amountFen: 10_000, reason: "缴费奖励",
                        key: "run:\(n)", at: Date())
                }
                let earned = try await app.database.tenantTransaction(demo.tenant) { connection in
                    try await PointsEarning().earnMany(events, on: connection, logger: logger)
                }
                guard earned.allSatisfy({ $0.outcome == .granted && $0.points == 100 }) else {
                    throw ValidationError("a batched earning was not granted")
                }
            }
            let batchedSeconds = batched.seconds
            let batchedRate = Double(batchedGrants) / max(batchedSeconds, 0.001)
            let balanced = try await app.database.tenantTransaction(demo.tenant) { connection in
                try await store.ledgerBalanced(community: demo.community, on: connection, logger: logger)
            }
            // Reads: the cache (every resident's balance is in it now), then the ledger.
            let cached = try await load(count: nil, until: .now + .seconds(seconds)) { index in
                guard await cache.read(people[index % people.count], tenant: demo.tenant.id) != nil else { throw ValidationError("cache miss") }
            }
            let ledger = try await load(count: nil, until: .now + .seconds(seconds)) { index in
                _ = try await app.database.tenantTransaction(demo.tenant) { connection in
                    try await store.balance(people[index % people.count], on: connection, logger: logger)
                }
            }
            func rate(_ run: (calls: Int, seconds: Double, histogram: Histogram<UInt64>)) -> Double { Double(run.calls) / max(run.seconds, 0.001) }
            return [
                "residents=\(residents)", "grants=\(granted.calls)", "grants_per_s=\(String(format: "%.0f", rate(granted)))",
                "grants_per_minute=\(String(format: "%.0f", rate(granted) * 60))",
                "grant_p50_ms=\(Parking.ms(granted.histogram.valueAtPercentile(50)))",
                "grant_p99_ms=\(Parking.ms(granted.histogram.valueAtPercentile(99)))",
                "batched_grants=\(batchedGrants)", "batch=\(batch)", "batched_grants_per_s=\(String(format: "%.0f", batchedRate))",
                "batched_grants_per_minute=\(String(format: "%.0f", batchedRate * 60))",
                "batch_p50_ms=\(Parking.ms(batched.histogram.valueAtPercentile(50)))",
                "batch_p99_ms=\(Parking.ms(batched.histogram.valueAtPercentile(99)))",
                "batched_to_single_grants_ratio=\(String(format: "%.2f", batchedRate / max(rate(granted), 0.001)))",
                "ledger_balanced=\(balanced)",
                "cache_reads_per_s=\(String(format: "%.0f", rate(cached)))",
                "cache_read_p50_ms=\(Parking.ms(cached.histogram.valueAtPercentile(50)))",
                "cache_read_p99_ms=\(Parking.ms(cached.histogram.valueAtPercentile(99)))",
                "ledger_reads_per_s=\(String(format: "%.0f", rate(ledger)))",
                "ledger_read_p50_ms=\(Parking.ms(ledger.histogram.valueAtPercentile(50)))",
                "ledger_read_p99_ms=\(Parking.ms(ledger.histogram.valueAtPercentile(99)))",
                "cache_to_ledger_reads_ratio=\(String(format: "%.2f", rate(cached) / max(rate(ledger), 0.001)))",
            ].joined(separator: " ")
        }
    }
}

/// Hands out increasing indices to concurrent callers.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func take() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}
