import Foundation
import LinliCore
import Logging
import NIOCore
import PostgresNIO
import Synchronization

extension PostgresConnection {
    /// Runs `query` like `query(_:logger:)`, and answers even when the connection closes under it.
    ///
    /// postgres-nio 1.33 writes a statement to its channel without a write promise and awaits
    /// the statement's own promise. Written after the channel was torn down (PostgreSQL ended the
    /// connection, or the transaction's deadline closed it), a statement reaches no handler: the
    /// write fails unseen and the statement is never answered, so its caller, its transaction and
    /// its RPC would wait forever. Here the statement runs in a task of its own and the caller
    /// takes the first of its answer and the connection's close (one watch per connection, not
    /// one callback per statement). Every statement of the server goes through `run`
    /// (`Deploy/test` refuses a bare `query(`).
    ///
    /// A cancelled task (its client gave up: deadline, reset; or shutdown's bound passed) sends
    /// no further statement: `run` throws `CancellationError`, and the transaction rolls back.
    /// A statement already sent is answered as usual. `evenIfCancelled` is for the ROLLBACK
    /// that ends such a transaction.
    @discardableResult
    public func run(
        _ query: PostgresQuery,
        logger: Logger,
        evenIfCancelled: Bool = false,
        file: String = #fileID,
        line: Int = #line
    ) async throws -> PostgresRowSequence {
        if !evenIfCancelled { try Task.checkCancellation() }
        return try await ConnectionWatch.of(self).answer { try await self.query(query, logger: logger, file: file, line: line) }
    }

    /// Runs a prepared statement and collects its rows, answering when the connection closes
    /// under it (see `run(_:logger:)`).
    public func run<Statement: PostgresPreparedStatement>(
        _ statement: Statement,
        logger: Logger,
        file: String = #fileID,
        line: Int = #line
    ) async throws -> [Statement.Row] where Statement.Row: Sendable {
        try Task.checkCancellation()
        return try await ConnectionWatch.of(self).answer {
            var rows: [Statement.Row] = []
            for try await row in try await self.execute(statement, logger: logger, file: file, line: line) { rows.append(row) }
            return rows
        }
    }
}

extension PostgresConnection {
    /// Sends `first` and `statement` together and answers with `statement`'s rows once both are
    /// done (or the connection closed): PostgreSQL still answers one after the other, but the
    /// caller waits once. Both are written from one task, so they reach the server in order.
    public func run<Statement: PostgresPreparedStatement>(
        _ first: PostgresQuery,
        then statement: Statement,
        logger: Logger
    ) async throws -> [Statement.Row] where Statement.Row: Sendable {
        try Task.checkCancellation()
        return try await ConnectionWatch.of(self).answer {
            let sent: EventLoopFuture<PostgresQueryResult> = self.query(first, logger: logger)
            var rows: [Statement.Row] = []
            do {
                for try await row in try await self.execute(statement, logger: logger) { rows.append(row) }
            } catch {
                // Held until it is answered: a future dropped unanswered traps a debug build
                // (NIO's leak check), and this task's caller has its answer already.
                _ = try? await sent.get()
                throw error
            }
            _ = try await sent.get()
            return rows
        }
    }
}

/// The callers waiting on one connection's queries; all answered once the connection closes.
final class ConnectionWatch: Sendable {
    /// Fails a waiting caller (when the connection closes).
    typealias Waiter = @Sendable (any Error) -> Void

    private struct State {
        var closed = false
        var next = 0
        var waiting: [Int: Waiter] = [:]
    }
    private let state = Mutex(State())

    /// The watches of open connections, by connection.
    private static let watches = Mutex([ObjectIdentifier: ConnectionWatch]())

    /// `connection`'s watch, made (and tied to its close) on its first query.
    static func of(_ connection: PostgresConnection) -> ConnectionWatch {
        let key = ObjectIdentifier(connection)
        let (watch, isNew) = watches.withLock { watches in
            if let watch = watches[key] { return (watch, false) }
            let watch = ConnectionWatch()
            watches[key] = watch
            return (watch, true)
        }
        if isNew {
            connection.closeFuture.whenComplete { _ in
                _ = watches.withLock { $0.removeValue(forKey: key) }
                watch.close()
            }
        }
        return watch
    }

    /// What a statement overtaken by its connection's close answers.
    static let closed = LinliError(.unavailable, "database connection lost; retry")

    /// The result of `work`, or `closed` once the connection has closed.
    func answer<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            guard let ticket = enter({ continuation.resume(throwing: $0) }) else {
                continuation.resume(throwing: Self.closed)
                return
            }
            Task {
                let result: Result<T, any Error>
                do {
                    result = .success(try await work())
                } catch {
                    result = .failure(error)
                }
                if self.leave(ticket) { continuation.resume(with: result) }
            }
        }
    }

    /// Registers a waiter; nil when the connection has closed already.
    func enter(_ waiter: @escaping Waiter) -> Int? {
        state.withLock { state in
            guard !state.closed else { return nil }
            state.next += 1
            state.waiting[state.next] = waiter
            return state.next
        }
    }

    /// Whether `ticket`'s caller still waits (the close did not answer it); it waits no more.
    func leave(_ ticket: Int) -> Bool {
        state.withLock { $0.waiting.removeValue(forKey: ticket) != nil }
    }

    private func close() {
        let waiting = state.withLock { state in
            state.closed = true
            defer { state.waiting = [:] }
            return state.waiting.values
        }
        for waiter in waiting { waiter(Self.closed) }
    }
}
