import LinliCore
import Logging
import Metrics
import NIOCore
import PostgresNIO
import Synchronization

/// The PostgreSQL access every domain goes through: platform transactions as the application
/// role, and tenant transactions confined to one tenant's role and schema.
public struct Database: Sendable {
    /// The pooled client.
    public let client: PostgresClient
    /// The logger for storage events.
    public let logger: Logger
    /// The longest a transaction may take, counted from the call; nil for none (migrations,
    /// bench). Enforced once a connection is held: past it the connection is closed, which fails
    /// what waits on it with `UNAVAILABLE`, and tenant statements are cancelled by PostgreSQL
    /// itself (`statement_timeout`, set in the transaction's first statement). The wait for a
    /// connection is not bounded by it (README, "Still open").
    public let timeout: Duration?
    /// What the health probe last saw; nil: always try.
    public let health: StorageHealth?
    /// How many tenant schemas a pooled connection serves before it is retired; nil: no limit.
    public let schemaBudget: SchemaBudget?

    /// Wraps a pooled client.
    public init(
        client: PostgresClient, logger: Logger, timeout: Duration? = nil, health: StorageHealth? = nil, schemaBudget: SchemaBudget? = nil
    ) {
        self.client = client
        self.logger = logger
        self.timeout = timeout
        self.health = health
        self.schemaBudget = schemaBudget
    }

    /// The same database without a deadline, for long-running administrative work.
    public var unbounded: Database {
        Database(client: client, logger: logger, timeout: nil, health: health, schemaBudget: schemaBudget)
    }

    /// The first statement of a tenant transaction; $1 is the tenant's schema (and role),
    /// $2 the statement timeout (`0`: none).
    public static let tenantSwitchSQL =
        "SELECT set_config('role', $1, true), set_config('search_path', $1, true), set_config('statement_timeout', $2, true)"

    /// Listens on `channel` until the task is cancelled, on a pooled connection of its own,
    /// reconnecting a second after a failure. `connected` runs each time LISTEN is in place
    /// (what was sent while nobody listened is lost: catch up there); `received` runs for
    /// every notification's payload.
    public func listen(
        on channel: String, connected: @Sendable () async -> Void = {}, _ received: @Sendable (String) async -> Void
    ) async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: channel) { notifications in
                        await connected()
                        for try await notification in notifications { await received(notification.payload) }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("listener on \(channel) lost its connection; reconnecting", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Runs `body` in a transaction as the application role, for `platform` tables.
    public func platformTransaction<R: Sendable>(
        _ body: (PostgresConnection) async throws -> R
    ) async throws(LinliError) -> R {
        try await transaction(setUp: nil, body)
    }

    /// Runs `body` in a transaction confined to `tenant`: the first statement switches to the
    /// tenant's role and schema for this transaction only (`set_config(..., true)` is
    /// `SET LOCAL`), so pooled connections keep no state and SQL naming another tenant's
    /// schema is refused by PostgreSQL itself.
    public func tenantTransaction<R: Sendable>(
        _ tenant: TenantRef,
        _ body: (PostgresConnection) async throws -> R
    ) async throws(LinliError) -> R {
        try await transaction(setUp: tenant.schema, body)
    }

    /// Asks, from inside a transaction's body, that its connection be closed when the
    /// transaction ends instead of going back to the pool; for bodies that create a tenant
    /// schema. Every catalog change invalidates caches in every backend, and a backend walks
    /// what it has cached on each one: a pooled connection that has served many tenants holds
    /// the compiled functions and triggers of each of their schemas with their plans (one such
    /// backend held 145 MB), and the hundreds of catalog changes of one new schema spent a
    /// third of its CPU time in that cache code (perf during `bench tenants`). A new backend
    /// starts with none.
    public static func retireConnection() {
        marks?.retire.store(true, ordering: .relaxed)
    }

    /// What the transaction running in this task has asked for at its end.
    @TaskLocal static var marks: TransactionMarks?

    private func transaction<R: Sendable>(
        setUp schema: String?,
        _ body: (PostgresConnection) async throws -> R
    ) async throws(LinliError) -> R {
        let started = ContinuousClock.now
        let timeout = timeout
        let statementTimeout = timeout.map { "\(max(1, $0.components.seconds * 1000))ms" } ?? "0"
        let logger = logger
        do {
            // While the health probe finds PostgreSQL unreachable, fail at once instead of
            // queueing for a connection that cannot be made.
            if let health, !health.postgresReachable {
                throw LinliError(.unavailable, "database unavailable; retry")
            }
            return try await client.withConnection { connection in
                var mark = Stage.acquire.record(since: started)
                let marks = TransactionMarks()
                if let schema, let schemaBudget, schemaBudget.spent(connection.id, on: schema) {
                    marks.retire.store(true, ordering: .relaxed)
                }
                // At the deadline the connection closes: whatever waits on it fails at once. A
                // timer on the connection's event loop, cancelled when the transaction ends, costs
                // no task on the hot path.
                let watchdog = timeout.map { timeout in
                    let remaining = TimeAmount.nanoseconds((started + timeout - .now).nanosecondsClamped)
                    return connection.eventLoop.scheduleTask(in: remaining) {
                        Metrics.Counter(label: MetricName.transactionTimeouts).increment()
                        logger.warning("transaction over its deadline; closing its connection")
                        let closing: EventLoopFuture<Void> = connection.close()
                        closing.whenComplete { _ in }
                    }
                }
                defer { watchdog?.cancel() }
                do {
                    // BEGIN and the tenant switch are sent together (the switch is local to the
                    // transaction, so it must follow BEGIN): this task waits once for both.
                    if let schema {
                        let tenantSwitch = TenantSwitch(schema: schema, statementTimeout: statementTimeout)
                        _ = try await connection.run("BEGIN", then: tenantSwitch, logger: logger)
                    } else {
                        try await connection.run("BEGIN", logger: logger)
                    }
                    mark = Stage.begin.record(since: mark)
                    let result = try await Self.$marks.withValue(marks) { try await body(connection) }
                    mark = Stage.body.record(since: mark)
                    try await connection.run("COMMIT", logger: logger)
                    Stage.commit.record(since: mark)
                    if let schema, marks.outboxQueued.load(ordering: .relaxed) { OutboxWake.shared.committed(schema) }
                    // Closed before the pool has it back, so that no other call is handed it.
                    if marks.retire.load(ordering: .relaxed) { try? await connection.close() }
                    return result
                } catch {
                    if await !Self.rollBack(connection, logger: logger) || marks.retire.load(ordering: .relaxed) {
                        try? await connection.close()
                    }
                    throw error
                }
            }
        } catch {
            let mapped = Database.map(error)
            // A caller that gave up is no storage fault: not counted, not logged as one.
            if error is CancellationError { throw mapped }
            // The gRPC layer keeps only the safe message, so the cause is logged here.
            if mapped.code == .unavailable { Metrics.Counter(label: MetricName.storageUnavailable).increment() }
            if mapped.code == .internal || mapped.code == .unavailable {
                logger.error("transaction failed", metadata: ["error.code": "\(mapped.code)", "error.cause": "\(String(reflecting: error))"])
            }
            throw mapped
        }
    }

    /// ROLLBACK after a failed body; false when it could not run (the connection then closes).
    /// It runs even when this task is cancelled (the client went away, shutdown): a cancelled
    /// task's query throws without being sent, which would hand the pool a connection still
    /// inside this transaction. A connection that is gone answers at once (`run`).
    static func rollBack(_ connection: PostgresConnection, logger: Logger) async -> Bool {
        if connection.isClosed { return false }
        return (try? await connection.run("ROLLBACK", logger: logger, evenIfCancelled: true)) != nil
    }

    /// Turns a storage error into a domain error that leaks nothing.
    public static func map(_ error: any Error) -> LinliError {
        if let error = error as? LinliError { return error }
        if let psql = error as? PSQLError {
            switch psql.code {
            case .server:
                let state = psql.serverInfo?[.sqlState] ?? ""
                if state == "42501" { return LinliError(.permissionDenied, "permission denied", cause: error) }
                // Input the handlers let through but the schema refuses: the caller's to fix.
                if state == "23514" || state == "23503" {
                    return LinliError(.failedPrecondition, "the change is not allowed by the data's rules", cause: error)
                }
                if state == "23505" { return LinliError(.alreadyExists, "it exists already", cause: error) }
                if state.hasPrefix("22") || state == "23502" {
                    return LinliError(.invalidArgument, "a value is out of range or malformed", cause: error)
                }
                if state == "57014" || state == "55P03" {
                    return LinliError(.unavailable, "the database took too long; retry", cause: error)
                }
                if state == "40001" || state == "40P01" {
                    return LinliError(.unavailable, "conflicting concurrent change; retry", cause: error)
                }
                if state.hasPrefix("57") || state.hasPrefix("53") || state.hasPrefix("08") {
                    return LinliError(.unavailable, "database unavailable", cause: error)
                }
                return .internal(error)
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed,
                .sslUnsupported, .queryCancelled, .uncleanShutdown:
                return LinliError(.unavailable, "database unavailable", cause: error)
            default:
                return .internal(error)
            }
        }
        if error is CancellationError { return LinliError(.unavailable, "cancelled", cause: error) }
        // The pool's own errors (circuit breaker open, lease cancelled, pool shut down): the
        // database is not reachable from here now, which the caller may retry.
        if String(describing: type(of: error)) == "ConnectionPoolError" {
            return LinliError(.unavailable, "database unavailable", cause: error)
        }
        return .internal(error)
    }

    /// The SQLSTATE of a server error, if `error` is one.
    public static func sqlState(_ error: any Error) -> String? {
        var current: (any Error)? = error
        if let linli = error as? LinliError { current = linli.cause }
        guard let psql = current as? PSQLError, psql.code == .server else { return nil }
        return psql.serverInfo?[.sqlState]
    }
}

/// The first statement of every tenant transaction, prepared once per connection.
struct TenantSwitch: PostgresPreparedStatement {
    static let sql = Database.tenantSwitchSQL
    typealias Row = (String, String, String)

    let schema: String
    let statementTimeout: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(schema)
        bindings.append(statementTimeout)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// Whether PostgreSQL answered lately, as the health probe sees it; shared by every transaction
/// of the process so that an outage fails calls fast instead of queueing them.
public final class StorageHealth: Sendable {
    private let failingSince = Mutex<ContinuousClock.Instant?>(nil)
    private let downAfter: Duration

    /// Creates the shared state: reachable until probes have failed for `downAfter` in a row.
    public init(downAfter: Duration = .seconds(3)) {
        self.downAfter = downAfter
    }

    /// Records an answer from PostgreSQL.
    public func postgresAnswered() { failingSince.withLock { $0 = nil } }

    /// Records a failed probe; the first of a streak starts the clock.
    public func postgresFailed() { failingSince.withLock { $0 = $0 ?? .now } }

    /// False once probes have failed for `downAfter` without an answer in between.
    public var postgresReachable: Bool {
        guard let since = failingSince.withLock({ $0 }) else { return true }
        return ContinuousClock.now - since < downAfter
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to Int64 (a deadline already past is 0 or negative).
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}

/// What a transaction's body asks `Database` to do once the transaction ends: wake this
/// process's outbox relays (`Outbox.enqueue`), close the connection (`retireConnection`).
final class TransactionMarks: Sendable {
    let outboxQueued = Atomic<Bool>(false)
    let retire = Atomic<Bool>(false)
}

/// Bounds the tenant schemas one pooled connection serves. A PostgreSQL backend keeps the
/// catalog entries, compiled functions and plans of every schema it has touched until it
/// exits: ListNotices spread over 200 tenants on 32 connections took the backends' private
/// memory from 257 MB to 1,399 MB in 30 s (some 0.2 MB a schema a backend), which at 10,000
/// tenants would be more than the machine has. A connection that has served `perConnection`
/// distinct schemas is retired after its transaction; the pool opens a fresh one.
public final class SchemaBudget: Sendable {
    let perConnection: Int
    private let served = Mutex<[Int: Set<String>]>([:])

    public init(perConnection: Int) { self.perConnection = max(1, perConnection) }

    /// Notes that `connection` serves `schema`; true when that spends its budget (retire it).
    func spent(_ connection: PostgresConnection.ID, on schema: String) -> Bool {
        served.withLock { served in
            // Connections closed some other way (a restart) leave their sets behind: forget all
            // once there are far more than a pool holds; the cost is a late retirement.
            if served.count > 1_024 { served.removeAll() }
            let (inserted, _) = served[connection, default: []].insert(schema)
            guard inserted, served[connection]?.count ?? 0 >= perConnection else { return false }
            served[connection] = nil
            return true
        }
    }
}
