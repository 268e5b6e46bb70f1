import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliPoints
import LinliServer
import LinliTenancy
import PostgresNIO
import Synchronization
import Testing

typealias PointsClient = Linli_Commerce_V1_PointsService.Client<HTTP2ClientTransport.Posix>

/// A demo tenant with one resident (linked to resident1's account) and the points client.
struct PointsFixture {
    let server: TestServer
    let demo: DemoTenant
    let manager: Metadata
    let resident: String
    var points: PointsClient { .init(wrapping: server.client) }

    static func make(_ server: TestServer) async throws -> PointsFixture {
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let resident = try await makeResident(server, demo, manager: manager, name: "业主丁", number: "301", user: "resident1")
        return PointsFixture(server: server, demo: demo, manager: manager, resident: resident)
    }

    func fund(_ points: Int64) async throws -> Linli_Commerce_V1_PointsBudget {
        try await self.points.fundPointsBudget(
            .with {
                $0.requestID = UUID().uuidString; $0.communityID = demo.community.description; $0.points = points; $0.memo = "年度积分预算"
            }, metadata: manager)
    }

    func grant(_ points: Int64, key: String, expiresIn: TimeInterval? = nil) async throws -> Linli_Commerce_V1_PointsMovement {
        try await self.points.grantPoints(
            .with {
                $0.requestID = UUID().uuidString
                $0.residentID = resident
                $0.points = points
                $0.reason = "缴费奖励"
                $0.operationKey = key
                if let expiresIn { $0.expiresAt = .init(date: Date().addingTimeInterval(expiresIn)) }
            }, metadata: manager)
    }

    func freeze(_ points: Int64, key: String) async throws -> Linli_Commerce_V1_PointsHold {
        try await self.points.freezePoints(
            .with {
                $0.requestID = UUID().uuidString; $0.residentID = resident; $0.points = points; $0.operationKey = key
            }, metadata: manager)
    }

    func balance(as caller: Metadata? = nil) async throws -> Linli_Commerce_V1_PointsBalance {
        try await points.getPointsBalance(
            .with {
                $0.residentID = caller == nil ? resident : ""
                $0.communityID = demo.community.description
            }, metadata: caller ?? manager)
    }

    /// The balance the ledger has, read past the cache.
    func ledger() async throws -> PointsStore.Balance {
        try await server.app.database.tenantTransaction(demo.tenant) { connection in
            try await PointsStore().balance(UUID(uuidString: resident) ?? UUID(), on: connection, logger: server.app.logger)
        }
    }
}

@Suite("Points: a double-entry ledger with lots, holds and a budget; balances cached in Redis", .serialized)
struct PointsTests {
    @Test("C-3: a budget of 10,000 funds 100 grants of 100; the 101st is refused whole; the ledger sums to zero and Redis equals it")
    func budget() async throws {
        let f = try await PointsFixture.make(try await TestServer.shared.value)
        #expect(try await f.fund(10_000).left == 10_000)
        for payment in 1...100 { _ = try await f.grant(100, key: "pay:\(payment)") }
        #expect(await rpcCode { try await f.grant(100, key: "pay:101") } == .resourceExhausted)
        // The same payment's grant again is the first grant, not a second one.
        let replay = try await f.grant(100, key: "pay:7")
        #expect(replay.balance.available == 10_000)
        #expect(await rpcCode { try await f.grant(50, key: "pay:7") } == .failedPrecondition)
        let budget = try await f.points.getPointsBudget(.with { $0.communityID = f.demo.community.description }, metadata: f.manager)
        #expect(budget.funded == 10_000 && budget.left == 0 && budget.granted == 10_000 && budget.outstanding == 10_000)
        let cached = try await f.balance()
        #expect(cached.source == "cache", "a grant writes the committed balance to Redis")
        let ledger = try await f.ledger()
        #expect(cached.available == ledger.available && cached.version == ledger.version && ledger.available == 10_000)
        let check = try await f.points.checkPointsCache(.with { $0.communityID = f.demo.community.description }, metadata: f.manager)
        #expect(check.ledgerBalanced && check.residents == 1 && check.mismatched == 0 && check.missing == 0)
    }

    @Test("C-4: lots are spent soonest-expiring first; an expired lot cannot be spent; freeze, release and commit; a replayed key is a no-op")
    func lotsAndHolds() async throws {
        let f = try await PointsFixture.make(try await TestServer.shared.value)
        _ = try await f.fund(1_000)
        let january = try await f.grant(100, key: "jan", expiresIn: 3_600)
        let march = try await f.grant(100, key: "mar", expiresIn: 60 * 86_400)
        // January's lot has run out ("on 02-01").
        try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            try await connection.query(
                "UPDATE points_lots SET expires_at = now() - interval '1 hour' WHERE id = \(UUID(uuidString: january.lotID) ?? UUID())",
                logger: f.server.app.logger)
        }
        #expect(try await f.ledger().available == 100, "the ledger leaves an expired lot out before the job runs")
        #expect(await rpcError { try await f.freeze(150, key: "order-1") }?.message.contains("only 100") == true)
        let hold = try await f.freeze(80, key: "order-2")
        #expect(hold.state == .held && hold.lots.map(\.lotID) == [march.lotID] && hold.lots.first?.points == 80)
        #expect(hold.balance.available == 20 && hold.balance.frozen == 80)
        // The order is cancelled: the points go back to their lot; the same settlement again changes nothing.
        let release = PointsHoldRequestOf(hold.id)
        let released = try await f.points.releasePointsHold(release(), metadata: f.manager)
        #expect(released.state == .released && released.balance.available == 100 && released.balance.frozen == 0)
        #expect(try await f.points.releasePointsHold(release(), metadata: f.manager).balance.available == 100)
        #expect(await rpcCode { try await f.points.commitPointsHold(release(), metadata: f.manager) } == .failedPrecondition)
        // Replaying the freeze's key answers the first hold; nothing is frozen again.
        let replayed = try await f.freeze(80, key: "order-2")
        #expect(replayed.id == hold.id && replayed.state == .released && replayed.balance.available == 100)
        // A hold that is committed is spent.
        let spend = try await f.freeze(30, key: "order-3")
        let spent = try await f.points.commitPointsHold(PointsHoldRequestOf(spend.id)(), metadata: f.manager)
        #expect(spent.state == .committed && spent.balance.available == 70 && spent.balance.frozen == 0)
        // The first freeze took January's 100 to the expired account; the job takes a lot that
        // ran out since.
        let april = try await f.grant(50, key: "apr", expiresIn: 3_600)
        try await f.server.app.database.tenantTransaction(f.demo.tenant) { connection in
            try await connection.query(
                "UPDATE points_lots SET expires_at = now() - interval '1 minute' WHERE id = \(UUID(uuidString: april.lotID) ?? UUID())",
                logger: f.server.app.logger)
        }
        #expect(try await f.server.app.pointsExpiry.run(f.demo.tenant) == 50)
        #expect(try await f.server.app.pointsExpiry.run(f.demo.tenant) == 0)
        let budget = try await f.points.getPointsBudget(.with { $0.communityID = f.demo.community.description }, metadata: f.manager)
        #expect(budget.expired == 150 && budget.spent == 30 && budget.outstanding == 70 && budget.left == 750, "\(budget)")
        // The resident sees their own balance; the cache agrees with the ledger after all of it.
        let resident = try await f.server.login(f.demo, "resident1")
        let own = try await f.balance(as: resident)
        #expect(own.available == 70 && own.residentID == f.resident)
        let check = try await f.points.checkPointsCache(.with { $0.communityID = f.demo.community.description }, metadata: f.manager)
        #expect(check.ledgerBalanced && check.mismatched == 0)
    }

    @Test("the cache: a stale or lost Redis entry is never the answer for long; the check repairs it; scopes and bad input")
    func cacheAndScope() async throws {
        let f = try await PointsFixture.make(try await TestServer.shared.value)
        _ = try await f.fund(500)
        _ = try await f.grant(120, key: "welcome")
        let key = RedisKeyOf(f.demo.tenant.id, f.resident)
        // Redis loses the entry: the ledger answers and fills it again.
        _ = try await f.server.app.redis.send(["DEL", key])
        let miss = try await f.balance()
        #expect(miss.source == "ledger" && miss.available == 120)
        #expect(try await f.balance().source == "cache")
        // A stale write (an older version) never overwrites a newer one.
        let cache = PointsCache(redis: f.server.app.redis, logger: f.server.app.logger)
        var stale = try await f.ledger()
        stale.version -= 1
        stale.available = 5
        #expect(await cache.write(stale, tenant: f.demo.tenant.id) == false)
        #expect(try await f.balance().available == 120)
        // A wrong entry (Redis restored from an old snapshot) is found and repaired by the check.
        _ = try await f.server.app.redis.send(["HSET", key, "a", "9999"])
        let check = try await f.points.checkPointsCache(.with { $0.communityID = f.demo.community.description }, metadata: f.manager)
        #expect(check.mismatched == 1 && check.ledgerBalanced)
        #expect(try await f.balance().available == 120)

        // Another tenant's manager: not found; a resident naming someone else: refused; bad input names its field.
        let other = try await PointsFixture.make(f.server)
        #expect(await rpcCode { try await other.points.getPointsBalance(.with { $0.residentID = f.resident }, metadata: other.manager) } == .notFound)
        #expect(
            await rpcCode {
                try await other.points.grantPoints(
                    .with {
                        $0.requestID = UUID().uuidString; $0.residentID = f.resident; $0.points = 1; $0.reason = "x"; $0.operationKey = "k"
                    }, metadata: other.manager)
            } == .notFound)
        let resident = try await f.server.login(f.demo, "resident1")
        #expect(
            await rpcCode {
                try await f.points.getPointsBalance(
                    .with {
                        $0.residentID = other.resident; $0.communityID = f.demo.community.description
                    }, metadata: resident)
            } == .permissionDenied)
        #expect(await rpcCode { try await f.points.grantPoints(.with { $0.requestID = UUID().uuidString }, metadata: resident) } == .permissionDenied)
        #expect(await rpcError { try await f.grant(0, key: "zero") }?.message.contains("points") == true)
        #expect(await rpcError { try await f.grant(10, key: "") }?.message.contains("operation_key") == true)
        #expect(await rpcError { try await f.grant(10, key: "late", expiresIn: -60) }?.message.contains("expires_at") == true)
        #expect(await rpcError { try await f.freeze(10_000, key: "big") }?.message.contains("points") == true)
    }
}

/// A hold request with a fresh request id each time it is called.
func PointsHoldRequestOf(_ hold: String) -> () -> Linli_Commerce_V1_PointsHoldRequest {
    {
        .with {
            $0.requestID = UUID().uuidString; $0.holdID = hold
        }
    }
}

/// The Redis key of a resident's cached balance.
func RedisKeyOf(_ tenant: TenantID, _ resident: String) -> String {
    "{t:\(tenant.description)}:points:\(resident)"
}

extension PointsTests {
    @Test(
        "Redis killed and restarted mid-load: grants go on, reads fall back to the ledger, and afterwards every cached balance is the ledger's",
        .enabled(if: ProcessInfo.processInfo.environment["LINLI_TEST_REDIS_STOP"] != nil), .timeLimit(.minutes(1)))
    func redisRestartMidLoad() async throws {
        let f = try await PointsFixture.make(try await TestServer.shared.value)
        _ = try await f.fund(1_000_000)
        let app = f.server.app
        let logger = app.logger
        let people: [UUID] = try await app.database.tenantTransaction(f.demo.tenant) { connection in
            var made: [UUID] = []
            for try await id in try await connection.query(
                """
                INSERT INTO residents (id, community_id, name)
                SELECT uuid_v7(), \(f.demo.community.uuid), '压测住户' || n FROM generate_series(1, 20) AS n RETURNING id
                """, logger: logger
            ).decode(UUID.self) { made.append(id) }
            return made
        }
        let store = PointsStore()
        let cache = PointsCache(redis: app.redis, logger: logger)
        let end = Date().addingTimeInterval(7)
        let tally = Tally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var n = 0
                    while Date() < end {
                        n += 1
                        let resident = people[(worker * 7 + n) % people.count]
                        // As PointsService does: the cache entry dropped in the transaction, the committed balance written after.
                        // UNAVAILABLE (two first grants opening one account at once) is retried, as a client would.
                        do {
                            let balance = try await app.database.tenantTransaction(f.demo.tenant) { connection in
                                _ = try await store.grant(
                                    1, to: resident, reason: "压测", expiresAt: Date().addingTimeInterval(86_400), key: "fault:\(worker):\(n)",
                                    for: PointsEarning.system(), on: connection, logger: logger)
                                await cache.forget(resident, tenant: f.demo.tenant.id)
                                return try await store.balance(resident, on: connection, logger: logger)
                            }
                            await cache.write(balance, tenant: f.demo.tenant.id)
                            tally.add(grant: 1)
                        } catch let error as LinliError where error.code == .unavailable {
                            continue
                        }
                    }
                }
                group.addTask {
                    while Date() < end {
                        let resident = people.randomElement() ?? people[0]
                        if await cache.read(resident, tenant: f.demo.tenant.id) == nil {
                            let balance = try await app.database.tenantTransaction(f.demo.tenant) { connection in
                                try await store.balance(resident, on: connection, logger: logger)
                            }
                            await cache.write(balance, tenant: f.demo.tenant.id)
                            tally.add(ledgerRead: 1)
                        } else {
                            tally.add(cacheRead: 1)
                        }
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(2))
                try await Self.shell("LINLI_TEST_REDIS_STOP")
                try await Task.sleep(for: .seconds(2))
                try await Self.shell("LINLI_TEST_REDIS_START")
            }
            try await group.waitForAll()
        }
        let counts = tally.counts
        #expect(counts.grants > 0 && counts.ledgerReads > 0 && counts.cacheReads > 0)
        let ledger = try await app.database.tenantTransaction(f.demo.tenant) { connection in
            try await store.balances(residents: people, on: connection, logger: logger)
        }
        #expect(ledger.reduce(Int64(0)) { $0 + $1.available } == Int64(counts.grants), "every grant made is on the ledger, once")
        for balance in ledger {
            if let cached = await cache.read(balance.resident, tenant: f.demo.tenant.id) {
                #expect(cached.matches(balance), "a cached balance after the restart is the ledger's")
            }
        }
        // Sessions were in the Redis that died: sign in again, and the check finds nothing stale.
        let manager = try await f.server.login(f.demo, "manager")
        let check = try await f.points.checkPointsCache(.with { $0.communityID = f.demo.community.description }, metadata: manager)
        #expect(check.ledgerBalanced && check.mismatched == 0)
    }

    /// Runs the shell command in environment variable `variable` with system(3) on a thread of
    /// its own (not one of the cooperative pool), awaiting its exit.
    static func shell(_ variable: String) async throws {
        let command = ProcessInfo.processInfo.environment[variable] ?? "false"
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: system("bash -c \"\(command)\" >/dev/null 2>&1")) }
        }
        guard status == 0 else { throw TestFailure("\(variable) failed (\(status))") }
    }
}

/// Counts from concurrent load tasks.
final class Tally: Sendable {
    private let state = Mutex((grants: 0, cacheReads: 0, ledgerReads: 0))
    func add(grant: Int = 0, cacheRead: Int = 0, ledgerRead: Int = 0) {
        state.withLock {
            $0.grants += grant
            $0.cacheReads += cacheRead
            $0.ledgerReads += ledgerRead
        }
    }
    var counts: (grants: Int, cacheReads: Int, ledgerReads: Int) { state.withLock { $0 } }
}
