import Foundation
import LinliCore
import LinliServer
import LinliTenancy
import Logging
import PostgresNIO
import Testing

/// A transaction whose connection is gone must still answer. postgres-nio 1.33 never completes
/// a statement written after the connection's channel was torn down, so the ROLLBACK after a
/// failed body, or the COMMIT after a body that outlived its connection, waited forever (the
/// fault test's unanswered calls after `pg_terminate_backend`); so did any statement of the
/// body written then (`PostgresConnection.run` answers those).
@Suite("Database transactions when the connection goes", .serialized)
struct DatabaseTests {
    struct Gone: Error {}

    /// The result of `work`, or nil when it has not answered within `seconds` (the task is
    /// left behind: a hang must fail the test, not stop the run).
    static func answer<R: Sendable>(within seconds: Int, _ work: @escaping @Sendable () async throws -> R) async -> Result<R, any Error>? {
        let box = Box<R>()
        Task {
            do { box.set(.success(try await work())) } catch { box.set(.failure(error)) }
        }
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let value = box.get() { return value }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return box.get()
    }

    final class Box<R: Sendable>: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Result<R, any Error>?
        func set(_ value: Result<R, any Error>) { lock.withLock { self.value = value } }
        func get() -> Result<R, any Error>? { lock.withLock { value } }
    }

    /// A fresh tenant, and what a transaction running `body` on it answered within 10 s (nil: never).
    static func transaction<R: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection, DemoTenant, Logger) async throws -> R
    ) async throws -> (demo: DemoTenant, database: Database, outcome: Result<R, any Error>?) {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let database = server.app.database
        let outcome = await answer(within: 10) {
            try await database.tenantTransaction(demo.tenant) { connection in try await body(connection, demo, database.logger) }
        }
        return (demo, database, outcome)
    }

    /// The names of the tenant's communities.
    static func names(_ demo: DemoTenant, _ database: Database) async throws -> [String] {
        try await database.tenantTransaction(demo.tenant) { connection in
            var names: [String] = []
            for try await name in try await connection.run("SELECT name FROM communities", logger: database.logger).decode(String.self) {
                names.append(name)
            }
            return names
        }
    }

    /// Whether `outcome` is an UNAVAILABLE answer.
    static func isUnavailable<R>(_ outcome: Result<R, any Error>) -> Bool {
        if case .failure(let error as LinliError) = outcome { return error.code == .unavailable }
        return false
    }

    @Test("a body that fails after its connection closed answers at once; the next transaction gets a live connection")
    func failedBodyOnClosedConnection() async throws {
        let (demo, database, result) = try await Self.transaction { connection, _, _ -> Int in
            try await connection.close()
            throw Gone()
        }
        let outcome = try #require(result, "the transaction never answered")
        #expect(throws: LinliError.self) { try outcome.get() }
        #expect(try await Self.names(demo, database).count == 1)
    }

    @Test("a body that finished on a closed connection is UNAVAILABLE (nothing committed), not a COMMIT waiting forever")
    func commitOnClosedConnection() async throws {
        let (demo, database, result) = try await Self.transaction { connection, demo, logger -> Int in
            try await connection.run("UPDATE communities SET name = '不该保存' WHERE id = \(demo.community.uuid)", logger: logger)
            try await connection.close()
            return 1
        }
        let outcome = try #require(result, "the transaction never answered")
        #expect(Self.isUnavailable(outcome))
        #expect(try await !Self.names(demo, database).contains("不该保存"))
    }

    @Test("a statement of the body written after its connection closed answers UNAVAILABLE, not never")
    func statementAfterClose() async throws {
        let (_, _, result) = try await Self.transaction { connection, _, logger -> Int in
            try await connection.close()
            try await connection.run("SELECT 1", logger: logger)
            return 1
        }
        let outcome = try #require(result, "the statement never answered")
        #expect(Self.isUnavailable(outcome), "\(outcome)")
    }

    @Test("a cancelled caller (its client gave up) sends no further statement: its transaction rolls back")
    func cancelledStopsAtNextStatement() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let database = server.app.database
        let updated = Box<Bool>()
        let call = Task {
            try await database.tenantTransaction(demo.tenant) { connection in
                try await connection.run("UPDATE communities SET name = '已取消' WHERE id = \(demo.community.uuid)", logger: database.logger)
                updated.set(.success(true))
                while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
                try await connection.run("SELECT 1", logger: database.logger)
                return 1
            }
        }
        while updated.get() == nil { try await Task.sleep(for: .milliseconds(5)) }
        call.cancel()
        #expect(Self.isUnavailable(await call.result))
        #expect(try await !Self.names(demo, database).contains("已取消"))
    }

    @Test("a background job's round goes on past a tenant whose pass fails, and reports the failure at the end")
    func roundGoesOnPastAFailingTenant() async throws {
        let server = try await TestServer.shared.value
        let first = try await server.newTenant()
        let second = try await server.newTenant()
        let database = server.app.database
        let active = try await database.allTenants().filter(\.isActive).map(\.slug)
        #expect(active.contains(first.tenant.slug) && active.contains(second.tenant.slug))
        var passed: [String] = []
        var failure: LinliError?
        do {
            try await database.forEachActiveTenant("test round", logger: database.logger) { tenant throws(LinliError) in
                if tenant.slug == first.tenant.slug { throw LinliError(.unavailable, "this tenant's schema is broken") }
                passed.append(tenant.slug)
            }
        } catch {
            failure = error
        }
        #expect(failure?.message == "this tenant's schema is broken")
        #expect(passed.contains(second.tenant.slug))
        #expect(Set(passed) == Set(active).subtracting([first.tenant.slug]))
    }

    /// The backend process serving a transaction.
    static func backend(_ database: Database, tenant: TenantRef? = nil, retiring: Bool = false) async throws -> Int32 {
        let body: (PostgresConnection) async throws -> Int32 = { connection in
            if retiring { Database.retireConnection() }
            var pid: Int32 = 0
            for try await value in try await connection.run("SELECT pg_backend_pid()", logger: database.logger).decode(Int32.self) {
                pid = value
            }
            return pid
        }
        if let tenant { return try await database.tenantTransaction(tenant, body) }
        return try await database.platformTransaction(body)
    }

    /// Whether backend `pid` is still running, after waiting up to 2 s for it to exit.
    static func alive(_ pid: Int32, _ database: Database) async throws -> Bool {
        for _ in 0..<100 {
            let found = try await database.platformTransaction { connection in
                var found = false
                for try await _ in try await connection.run("SELECT 1 FROM pg_stat_activity WHERE pid = \(pid)", logger: database.logger) {
                    found = true
                }
                return found
            }
            if !found { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    @Test("a transaction that retires its connection leaves no backend behind; one that does not keeps it pooled")
    func retiredConnectionIsClosed() async throws {
        let shared = try await TestServer.shared.value.app
        // A pool of its own: on the shared one another test may take the kept connection (and
        // retire it, creating a tenant) while this one watches it.
        let pg = shared.configuration.postgres
        let client = PostgresClient(
            configuration: .init(host: pg.host, port: pg.port, username: pg.user, password: pg.password, database: pg.database, tls: .disable),
            backgroundLogger: shared.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let database = Database(client: client, logger: shared.logger)
            let kept = try await Self.backend(database)
            #expect(try await Self.alive(kept, shared.database))
            // Likely the same connection again: the pool hands out the one just given back.
            let retired = try await Self.backend(database, retiring: true)
            #expect(try await !Self.alive(retired, shared.database))
            // The pool hands out live connections afterwards.
            #expect(try await Self.backend(database) > 0)
        }
    }

    @Test("a connection that has served its budget of tenant schemas is retired after that transaction")
    func schemaBudgetRetiresTheBackend() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let shared = server.app.database
        let budgeted = Database(client: shared.client, logger: shared.logger, schemaBudget: SchemaBudget(perConnection: 1))
        let pid = try await Self.backend(budgeted, tenant: demo.tenant)
        #expect(try await !Self.alive(pid, shared))
    }
}
