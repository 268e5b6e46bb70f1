import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Histogram
import LinliAPI
import LinliCore
import LinliServer
import LinliTenancy
import LinliWorkOrders
import SwiftProtobuf

/// `linli bench`: load generators whose figures `Deploy/bench` prints.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the server (rpc) or tenant provisioning and migration (tenants).",
        subcommands: [RPC.self, Tenants.self, Probe.self, Script.self, Billing.self, Devices.self, Parking.self, Points.self, Commerce.self])
}

extension Bench {
    /// Closed-loop load over TLS: `concurrency` callers share `connections` HTTP/2 connections.
    struct RPC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rpc",
            abstract: "Call one RPC in a closed loop and print QPS and latency percentiles.")

        enum Target: String, ExpressibleByArgument, CaseIterable {
            case health, whoami = "whoami", listNotices = "list-notices", publishNotice = "publish-notice"
            case fileRepair = "file-repair", workloadStats = "workload-stats", pay
        }

        @Option(help: "health, whoami, list-notices, publish-notice, file-repair, workload-stats or pay.") var rpc: Target
        @Option(help: "For pay: a file of room ids, one per line; each call pays a random one's open bills in cash.") var roomsFile: String?
        @Option(help: "Repair category for file-repair.") var category = "plumbing"
        @Option var host = "127.0.0.1"
        @Option var port = 8443
        @Option(help: "CA certificate that signed the server's.") var ca = ".data/tls/ca.crt"
        @Option(help: "HTTP/2 connections.") var connections = 4
        @Option(help: "Callers in flight.") var concurrency = 64
        @Option(help: "Measured seconds.") var duration = 10.0
        @Option(help: "Unmeasured warm-up seconds.") var warmup = 2.0
        @Option var tenant = "demo"
        @Option(help: "Spread the calls over tenants <prefix>_0 … <prefix>_<n-1> (with --tenant-count) instead of --tenant.")
        var tenantPrefix: String?
        @Option(help: "How many tenants of --tenant-prefix to spread over.") var tenantCount = 1000
        @Option var username = "manager"
        @Option var password = "linli-demo-2026"

        func validate() throws {
            guard connections > 0 else { throw ValidationError("--connections must be positive") }
            guard concurrency > 0 else { throw ValidationError("--concurrency must be positive") }
            guard duration > 0, warmup >= 0 else { throw ValidationError("--duration must be positive, --warmup not negative") }
        }

        func run() async throws {
            let clients = try (0..<connections).map { _ in
                GRPCClient(transport: try LinliClientTransport.tls(host: host, port: port, caPath: ca))
            }
            let result = try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients { group.addTask { try await client.runConnections() } }
                defer { clients.forEach { $0.beginGracefulShutdown() } }
                return try await measure(clients)
            }
            print(result)
        }

        private func measure(_ clients: [GRPCClient<HTTP2ClientTransport.Posix>]) async throws -> String {
            // One session per tenant called; caller w's k-th call goes to tenant (w + k·callers) mod n,
            // so every tenant is called in turn by every server connection.
            let slugs = tenantPrefix.map { prefix in (0..<max(1, tenantCount)).map { "\(prefix)_\($0)" } } ?? [tenant]
            let identity = Linli_Identity_V1_IdentityService.Client(wrapping: clients[0])
            let (username, password) = (username, password)
            let sessions = try await withThrowingTaskGroup(of: (Int, Session).self) { group in
                var result = [Session?](repeating: nil, count: slugs.count)
                var iterator = slugs.enumerated().makeIterator()
                func add() {
                    guard let (index, slug) = iterator.next() else { return }
                    group.addTask {
                        var login = Linli_Identity_V1_LoginRequest()
                        login.tenantSlug = slug
                        login.username = username
                        login.password = password
                        let session = try await identity.login(login)
                        return (
                            index,
                            Session(auth: LinliClientTransport.bearer(session.sessionToken), community: session.principal.communityIds.first ?? "")
                        )
                    }
                }
                for _ in 0..<16 { add() }
                while let (index, session) = try await group.next() {
                    result[index] = session
                    add()
                }
                return result.compactMap { $0 }
            }
            let rooms = try roomsFile.map { try String(contentsOfFile: $0, encoding: .utf8).split(separator: "\n").map(String.init) } ?? []
            if rpc == .pay && rooms.isEmpty { throw ValidationError("pay needs --rooms-file with room ids") }
            let call = makeCall(rooms: rooms)
            let concurrency = concurrency

            let start = ContinuousClock.now
            let measureFrom = start + .milliseconds(Int(warmup * 1000))
            let end = measureFrom + .milliseconds(Int(duration * 1000))
            let partials = try await withThrowingTaskGroup(of: (Histogram<UInt64>, Int).self) { group in
                for worker in 0..<concurrency {
                    let client = clients[worker % clients.count]
                    group.addTask {
                        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                        var errors = 0
                        var sequence = worker
                        while true {
                            let began = ContinuousClock.now
                            if began >= end { break }
                            let session = sessions[sequence % sessions.count]
                            sequence += concurrency
                            let ok = (try? await call(client, session)) != nil
                            guard began >= measureFrom else { continue }
                            if ok {
                                let micros = (ContinuousClock.now - began).components
                                _ = histogram.record(UInt64(micros.seconds) * 1_000_000 + UInt64(micros.attoseconds / 1_000_000_000_000))
                            } else {
                                errors += 1
                            }
                        }
                        return (histogram, errors)
                    }
                }
                var total = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                var errors = 0
                for try await (histogram, failed) in group {
                    total.add(histogram)
                    errors += failed
                }
                return (total, errors)
            }
            let (histogram, errors) = partials
            func ms(_ micros: UInt64) -> String { String(format: "%.2f", Double(micros) / 1000) }
            return [
                "rpc=\(rpc.rawValue)", "concurrency=\(concurrency)", "connections=\(clients.count)", "tenants=\(sessions.count)",
                "calls=\(histogram.totalCount)", "errors=\(errors)",
                "qps=" + String(format: "%.0f", Double(histogram.totalCount) / duration),
                "p50_ms=\(ms(histogram.valueAtPercentile(50)))", "p90_ms=\(ms(histogram.valueAtPercentile(90)))",
                "p99_ms=\(ms(histogram.valueAtPercentile(99)))", "max_ms=\(ms(histogram.max))",
            ].joined(separator: " ")
        }

        /// A signed-in caller of one tenant and the first community it serves.
        struct Session: Sendable {
            let auth: Metadata
            let community: String
        }

        private func makeCall(rooms: [String])
            -> @Sendable (GRPCClient<HTTP2ClientTransport.Posix>, Session) async throws -> Void
        {
            switch rpc {
            case .pay:
                return { client, session in
                    var request = Linli_Billing_V1_PayRequest()
                    request.requestID = UUID().uuidString.lowercased()
                    request.roomID = rooms.randomElement() ?? ""
                    request.methods = [
                        .with {
                            $0.method = .cash; $0.amountFen = 100_000
                        }
                    ]
                    _ = try await Linli_Billing_V1_BillingService.Client(wrapping: client).pay(request, metadata: session.auth)
                }
            case .health:
                return { client, session in _ = try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init()) }
            case .whoami:
                return { client, session in
                    _ = try await Linli_Identity_V1_IdentityService.Client(wrapping: client).whoAmI(.init(), metadata: session.auth)
                }
            case .listNotices:
                return { client, session in
                    var request = Linli_Property_V1_ListNoticesRequest()
                    request.communityID = session.community
                    request.page.pageSize = 20
                    _ = try await Linli_Property_V1_NoticeService.Client(wrapping: client).listNotices(request, metadata: session.auth)
                }
            case .fileRepair:
                let category = category
                return { client, session in
                    var request = Linli_Property_V1_FileRepairRequest()
                    request.requestID = UUID().uuidString.lowercased()
                    request.communityID = session.community
                    request.category = category
                    request.priority = .normal
                    request.channel = .app
                    request.location = "压测 302 室"
                    request.description_p = "benchmark repair"
                    _ = try await Linli_Property_V1_WorkOrderService.Client(wrapping: client).fileRepair(request, metadata: session.auth)
                }
            case .workloadStats:
                return { client, session in
                    var request = Linli_Property_V1_GetWorkloadStatsRequest()
                    request.communityID = session.community
                    request.from = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(-30 * 86400))
                    request.to = Google_Protobuf_Timestamp(date: Date())
                    _ = try await Linli_Property_V1_WorkOrderService.Client(wrapping: client).getWorkloadStats(request, metadata: session.auth)
                }
            case .publishNotice:
                return { client, session in
                    var request = Linli_Property_V1_PublishNoticeRequest()
                    request.requestID = UUID().uuidString.lowercased()
                    request.communityID = session.community
                    request.title = "压测通知"
                    request.body = "benchmark notice body"
                    request.category = .general
                    _ = try await Linli_Property_V1_NoticeService.Client(wrapping: client).publishNotice(request, metadata: session.auth)
                }
            }
        }
    }

    /// Provisions tenants, then times one extra one-table migration over all of them.
    struct Tenants: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tenants",
            abstract: "Provision N tenants (timing each), then apply a one-table migration to every tenant schema.")

        @Option(help: "Tenants to provision.") var count = 1000
        @Option(help: "Provisioning calls in flight.") var concurrency = 2
        @Option(help: "Tenants provisioned from spare schemas first (the rest from scratch).") var spares = 20
        @Option(help: "Slug prefix: tenants are <prefix>_0, <prefix>_1, … (default: random).") var prefix: String?
        @Option(help: "The first N tenants get the demo data (community, staff, residents, notices, a 'plumbing' category).")
        var demo = 0
        @Option(help: "Password of the demo tenants' accounts.") var password = "linli-demo-2026"
        @Flag(inversion: .prefixedNo, help: "Apply the one-table probe migration to every tenant afterwards.") var probe = true

        func validate() throws {
            guard count > 0, concurrency > 0, spares >= 0, demo >= 0 else {
                throw ValidationError("--count and --concurrency must be positive, --spares and --demo not negative")
            }
            if let prefix, !TenantRef.isValidSlug(prefix + "_0") { throw ValidationError("--prefix: a-z, 0-9 and _ only") }
        }

        func run() async throws {
            let app = try Runtime.application()
            let count = count, concurrency = concurrency, demo = demo, password = password
            let prefix = prefix ?? "bench_" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
            let line: String = try await app.withStorage {
                try await app.migrations.migratePlatform()
                let clock = ContinuousClock()
                @Sendable func create(_ index: Int) async throws {
                    let slug = "\(prefix)_\(index)"
                    guard index < demo else {
                        _ = try await app.provisioner.create(slug: slug, name: slug)
                        return
                    }
                    let seeded = try await app.seedDemoTenant(slug: slug, name: slug, password: password)
                    try await app.database.tenantTransaction(seeded.tenant) { connection in
                        try await connection.run(
                            """
                            INSERT INTO repair_categories (community_id, code, name, dispatch_mode, normal_minutes, emergency_minutes)
                            VALUES (\(seeded.community.uuid), 'plumbing', '水电维修', 'grab', 240, 30)
                            """, logger: app.logger)
                    }
                }
                var next = 0
                // Provisions the next `n` tenants, `concurrency` at once; the time of each, sorted.
                func provision(_ n: Int) async throws -> [Duration] {
                    var durations: [Duration] = []
                    try await withThrowingTaskGroup(of: Duration.self) { group in
                        var started = 0
                        func add() {
                            let index = next
                            next += 1
                            started += 1
                            group.addTask { try await clock.measure { try await create(index) } }
                        }
                        for _ in 0..<min(concurrency, n) { add() }
                        while let duration = try await group.next() {
                            durations.append(duration)
                            if started < n { add() }
                        }
                    }
                    return durations.sorted()
                }
                // Warm: a new tenant takes a spare schema made beforehand (TenantSpareJob's
                // work, timed here too); cold: the pool is empty and every migration runs.
                let warmCount = min(count, spares)
                let spareJob = TenantSpareJob(provisioner: app.provisioner, target: warmCount, logger: app.logger)
                let spareStart = clock.now
                let made = try await spareJob.refill()
                let spareTime = clock.now - spareStart
                let warm = try await provision(warmCount)
                let began = clock.now
                let cold = try await provision(count - warmCount)
                let provisionWall = clock.now - began
                var fields = [
                    "tenants=\(count)", "demo_tenants=\(min(demo, count))", "provision_concurrency=\(concurrency)",
                    "from_spare=\(warm.count)", "from_spare_p50_ms=\(Self.percentile(warm, 50))",
                    "from_spare_p99_ms=\(Self.percentile(warm, 99))",
                    "spare_make_ms=" + (made > 0 ? String(format: "%.1f", Self.seconds(spareTime) * 1000 / Double(made)) : "n/a"),
                    "from_scratch=\(cold.count)", "from_scratch_p50_ms=\(Self.percentile(cold, 50))",
                    "from_scratch_p99_ms=\(Self.percentile(cold, 99))",
                    "from_scratch_total_s=" + String(format: "%.1f", Self.seconds(provisionWall)),
                ]
                if probe { fields.append(try await Probe.migrate(app)) }
                return fields.joined(separator: " ")
            }
            print(line)
        }

        static func seconds(_ d: Duration) -> Double { d.seconds }
        static func percentile(_ sorted: [Duration], _ p: Int) -> String {
            sorted.isEmpty ? "n/a" : String(format: "%.1f", seconds(sorted[min(sorted.count - 1, sorted.count * p / 100)]) * 1000)
        }
    }

    /// Times one extra one-table migration over every tenant schema.
    struct Probe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "migrate-probe", abstract: "Apply a one-table migration to every tenant schema and print the time it took.")

        func run() async throws {
            let app = try Runtime.application()
            let line = try await app.withStorage { try await Self.migrate(app) }
            print(line)
        }

        static func migrate(_ app: LinliApplication) async throws -> String {
            guard
                let probe = Migration(
                    fileName: "9001_bench_probe.sql", sql: "CREATE TABLE bench_probe (id bigint PRIMARY KEY, note text NOT NULL DEFAULT '')")
            else { throw ValidationError("bench probe migration name") }
            let bundled = app.migrations.catalog
            let runner = MigrationRunner(
                database: app.database, catalog: MigrationCatalog(platform: bundled.platform, tenant: bundled.tenant + [probe]),
                parallelism: app.configuration.migrationParallelism)
            let clock = ContinuousClock()
            let start = clock.now
            let report = try await runner.migrateTenants()
            return "migrated_tenants=\(report.tenantsMigrated) migrate_one_table_s=" + String(format: "%.1f", Tenants.seconds(clock.now - start))
        }
    }
}

extension Bench {
    /// Prints a pgbench script that runs, transaction for transaction, the SQL the server runs
    /// for an RPC, with the server's $n parameters as pgbench variables.
    struct Script: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the pgbench script of the server's SQL for an RPC (variables: schema, community, from, to).")

        enum Query: String, ExpressibleByArgument { case workloadStats = "workload-stats" }
        @Option var rpc: Query

        func run() throws {
            func variables(_ sql: String, _ names: [String]) -> String {
                names.enumerated().reversed().reduce(sql) { text, item in
                    text.replacingOccurrences(of: "$\(item.offset + 1)", with: ":\(item.element)")
                }
            }
            let statements = [
                "BEGIN",
                variables(Database.tenantSwitchSQL.replacingOccurrences(of: "$2", with: "'15000ms'"), ["schema"]),
                variables(WorkloadStats.perTechnicianSQL, ["community", "from", "to"]),
                variables(WorkloadStats.perCategorySQL, ["community", "from", "to"]),
                "COMMIT",
            ]
            print(statements.map { $0 + ";" }.joined(separator: "\n"))
        }
    }
}

extension Duration {
    /// The duration in seconds, for rates.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Loads `csv` into the tenant's `table (columns…)` with psql's `\copy`, as the tenant's role
/// (the reference the ingestion benchmarks compare against); how long the copy took.
func psqlCopy(_ csv: String, into table: String, tenant: TenantRef) throws -> Duration {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(tenant.slug)-\(UUID().uuidString).csv")
    try Data(csv.utf8).write(to: file)
    defer { try? FileManager.default.removeItem(at: file) }
    let env = ProcessInfo.processInfo.environment
    let psql = Process()
    psql.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
    psql.arguments = [
        "-h", env["LINLI_POSTGRES_HOST"] ?? "127.0.0.1", "-p", env["LINLI_POSTGRES_PORT"] ?? "55432",
        "-U", env["LINLI_POSTGRES_USER"] ?? "linli", "-d", env["LINLI_POSTGRES_DATABASE"] ?? "linli", "-q",
        "-c", "SET role \(tenant.schema)",
        "-c", "\\copy \(tenant.schema).\(table) FROM '\(file.path)' CSV",
    ]
    psql.environment = env.merging(["PGPASSWORD": env["LINLI_POSTGRES_PASSWORD"] ?? "linli"]) { $1 }
    let started = ContinuousClock.now
    try psql.run()
    psql.waitUntilExit()
    let elapsed = ContinuousClock.now - started
    guard psql.terminationStatus == 0 else { throw ValidationError("psql \\copy into \(table) failed") }
    return elapsed
}
