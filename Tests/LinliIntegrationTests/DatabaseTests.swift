import Foundation
import LinliCore
import LinliTenancy
import PostgresNIO
import Testing

/// A transaction whose connection is gone must still answer. postgres-nio 1.33 never completes
/// a statement written after the connection's channel was torn down, so the ROLLBACK after a
/// failed body, or the COMMIT after a body that outlived its connection, waited forever (the
/// fault test's unanswered calls after `pg_terminate_backend`); so did any statement of the
/// body written then (`PostgresConnection.run` answers those).
@Suite("Database transactions when the connection goes")
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

    @Test("a body that fails after its connection closed answers at once; the next transaction gets a live connection")
    func failedBodyOnClosedConnection() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let database = server.app.database
        let result = await Self.answer(within: 10) {
            try await database.tenantTransaction(demo.tenant) { connection in
                try await connection.close()
                throw Gone()
            }
        }
        let outcome = try #require(result, "the transaction never answered")
        #expect(throws: LinliError.self) { try outcome.get() }

        let count = try await database.tenantTransaction(demo.tenant) { connection in
            var n: Int64 = 0
            for try await value in try await connection.query("SELECT count(*) FROM communities", logger: database.logger).decode(Int64.self) {
                n = value
            }
            return n
        }
        #expect(count == 1)
    }

    @Test("a body that finished on a closed connection is UNAVAILABLE (nothing committed), not a COMMIT waiting forever")
    func commitOnClosedConnection() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let database = server.app.database
        let result = await Self.answer(within: 10) {
            try await database.tenantTransaction(demo.tenant) { connection in
                try await connection.query("UPDATE communities SET name = '不该保存' WHERE id = \(demo.community.uuid)", logger: database.logger)
                try await connection.close()
                return 1
            }
        }
        let outcome = try #require(result, "the transaction never answered")
        #expect(throws: LinliError.self) { try outcome.get() }
        if case .failure(let error as LinliError) = outcome { #expect(error.code == .unavailable) }
        let names = try await database.tenantTransaction(demo.tenant) { connection in
            var names: [String] = []
            for try await name in try await connection.query("SELECT name FROM communities", logger: database.logger).decode(String.self) {
                names.append(name)
            }
            return names
        }
        #expect(!names.contains("不该保存"))
    }

    @Test("a statement of the body written after its connection closed answers UNAVAILABLE, not never")
    func statementAfterClose() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let database = server.app.database
        let result = await Self.answer(within: 10) {
            try await database.tenantTransaction(demo.tenant) { connection in
                try await connection.close()
                try await connection.run("SELECT 1", logger: database.logger)
                return 1
            }
        }
        let outcome = try #require(result, "the statement never answered")
        if case .failure(let error as LinliError) = outcome {
            #expect(error.code == .unavailable)
        } else {
            Issue.record("expected UNAVAILABLE, got \(outcome)")
        }
    }
}
