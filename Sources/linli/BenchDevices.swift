import ArgumentParser
import Foundation
import LinliAPI
import LinliCore
import LinliDevices
import LinliServer
import LinliTenancy
import NIOCore
import PostgresNIO

extension Bench {
    /// The device gateway under load, against a running server (`Deploy/bench`): many devices
    /// connected at once, event ingestion beside `COPY`, a whitelist change reaching 1,000 online
    /// devices, and commands to connected devices. The devices are the C simulator.
    struct Devices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "devices", abstract: "Measure the device gateway with linli-device simulate.")

        @Option(help: "Devices connected at once.") var connected = 5000
        @Option(help: "Devices that send events, get the whitelist change and the commands.") var active = 1000
        @Option(help: "Events each active device sends.") var events = 1000
        @Option(help: "Commands sent one after another to connected devices.") var commands = 200
        @Option(help: "Seconds to wait for every device to connect (the devices stay 60 s longer).") var connectSeconds = 120
        @Option var host = "127.0.0.1"
        @Option(help: "The gateway's port.") var port = 8444
        @Option var ca = ".data/tls/ca.crt"
        @Option(help: "The linli-device binary.") var deviceBinary = ".build/release/linli-device"
        @Option(help: "The server's pid, for its resident memory.") var serverPid: Int32?

        func validate() throws {
            guard connected > 0, active > 0, active <= connected, events > 0, commands > 0, connectSeconds > 0 else {
                throw ValidationError("positive counts, --active at most --connected")
            }
        }

        func run() async throws {
            let app = try Runtime.application()
            let options = self
            let line: String = try await app.withStorage {
                try await options.measure(app)
            }
            print(line)
        }

        func measure(_ app: LinliApplication) async throws -> String {
            let logger = app.logger
            let slug = "benchdev_" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
            let demo = try await app.seedDemoTenant(slug: slug, name: slug, password: "bench-password-1")
            guard let manager = demo.users["manager"] else { throw ValidationError("no demo manager") }
            let store = DeviceStore(database: app.database)
            let access = AccessStore()
            // Devices, a gate with the active ones bound, and their first whitelist version.
            var lines: [String] = []
            var ids: [DeviceID] = []
            for start in stride(from: 0, to: connected, by: 500) {
                let made: [(DeviceID, String)] = try await app.database.tenantTransaction(demo.tenant) { connection in
                    var made: [(DeviceID, String)] = []
                    for index in start..<min(start + 500, connected) {
                        let (device, secret) = try await store.register(
                            community: demo.community, serial: "SIM-\(index)", kind: "door", name: "模拟门禁 \(index)", by: manager,
                            on: connection, logger: logger)
                        made.append((device.id, secret.hexString))
                    }
                    return made
                }
                for (id, secret) in made {
                    ids.append(id)
                    lines.append("\(slug) \(id) \(secret)")
                }
            }
            let activeIDs = Array(ids.prefix(active))
            try await app.database.tenantTransaction(demo.tenant) { connection in
                let door = try await access.createDoor(
                    community: demo.community, building: nil, code: "gate", name: "大门", on: connection, logger: logger)
                try await connection.run(
                    "INSERT INTO door_devices (door_id, device_id) SELECT \(door.id), unnest(\(activeIDs.map(\.uuid)))", logger: logger)
            }
            try await WhitelistStore(database: app.database).reconcileAll(tenant: demo.tenant, logger: logger)
            let dir = FileManager.default.temporaryDirectory
            let allFile = dir.appendingPathComponent("\(slug)-all.txt")
            let activeFile = dir.appendingPathComponent("\(slug)-active.txt")
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: allFile)
            try Data((lines.prefix(active).joined(separator: "\n") + "\n").utf8).write(to: activeFile)
            let common = ["--host", host, "--port", "\(port)", "--ca", ca]

            // 1. Ingestion: every active device sends its events at once, batch by batch, acked
            // after COMMIT (throughput), then 10 events a second each (latency below saturation).
            let ingest = try await Self.simulate(deviceBinary, common + ["--devices-file", activeFile.path, "--capture", "\(events)"])
            let copy = try await copyReference(app, tenant: demo.tenant, devices: activeIDs)
            let paced = try await Self.simulate(
                deviceBinary,
                common + ["--devices-file", activeFile.path, "--run-seconds", "20", "--batch-every-ms", "1000", "--batch-size", "10"])

            // 2. Everyone connected at once, heartbeating every 5 s.
            let rssBefore = Self.rssKB(serverPid)
            // The database's clock, which stamps last_seen_at.
            let since = try await app.database.tenantTransaction(demo.tenant) { connection in
                for try await now in try await connection.run("SELECT now()", logger: logger).decode(Date.self) { return now }
                return Date()
            }
            let holding = try Self.start(
                deviceBinary,
                common + ["--devices-file", allFile.path, "--run-seconds", "\(connectSeconds + 60)", "--heartbeat-seconds", "5", "--ramp", "250"])
            let clock = ContinuousClock()
            let connectStart = clock.now
            var online = 0
            while online < connected, clock.now - connectStart < .seconds(connectSeconds) {
                try await Task.sleep(for: .milliseconds(200))
                online = try await count(app, demo.tenant, "SELECT count(*) FROM devices WHERE last_seen_at >= \(since)")
            }
            let connectTime = clock.now - connectStart
            let rssConnected = Self.rssKB(serverPid)

            // 3. One new card for the staff: reconciled into a new version for every active device.
            let target = try await count(app, demo.tenant, "SELECT max(whitelist_version) FROM devices") + 1
            let changed = clock.now
            try await app.database.tenantTransaction(demo.tenant) { connection in
                _ = try await access.issue(
                    community: demo.community, holder: .staff(manager), kind: "card", value: "BENCH0001", validUntil: nil,
                    faceConsent: false, by: manager, on: connection, logger: logger)
            }
            var reached: [Int: Duration] = [:]
            while reached[100] == nil, clock.now - changed < .seconds(30) {
                let acked = try await count(app, demo.tenant, "SELECT count(*) FROM devices WHERE whitelist_acked >= \(target)")
                for share in [50, 99, 100] where reached[share] == nil && acked * 100 >= active * share {
                    reached[share] = clock.now - changed
                }
                try await Task.sleep(for: .milliseconds(5))
            }

            // 4. Commands to connected devices, one at a time: queued → succeeded.
            var latencies: [Duration] = []
            var timeouts = 0
            var openDoor = Linli_Device_V1_Command()
            openDoor.openDoor = .with { $0.doorCode = "gate" }
            for index in 0..<commands where timeouts < 3 {
                let device = try await app.database.tenantTransaction(demo.tenant) { connection in
                    try await store.device(activeIDs[index % active], for: Self.staff(demo, manager), on: connection, logger: logger)
                }
                let started = clock.now
                let row = try await app.database.tenantTransaction(demo.tenant) { connection in
                    try await store.queue(openDoor, action: "open_door", to: device, ttl: .seconds(30), by: manager, on: connection, logger: logger)
                }
                var done = false
                while !done, clock.now - started < .seconds(10) {
                    let state = try await app.database.tenantTransaction(demo.tenant) { connection in
                        try await store.command(row.id, for: Self.staff(demo, manager), on: connection, logger: logger).state
                    }
                    done = state == "succeeded"
                    if !done { try await Task.sleep(for: .milliseconds(1)) }
                }
                if done { latencies.append(clock.now - started) } else { timeouts += 1 }
            }
            latencies.sort()
            let held = try await Self.finish(holding)
            let perConnection = (rssConnected - rssBefore) * 1024 / max(1, online)
            return [
                "devices_connected=\(online)/\(connected)", "connect_all_s=\(Self.format(connectTime))",
                "server_rss_mb_before=\(rssBefore / 1024)", "server_rss_mb_connected=\(rssConnected / 1024)",
                "rss_per_connection_kb=\(String(format: "%.1f", Double(perConnection) / 1024))",
                "heartbeats_acked_per_s=\(held["heartbeat_acks_per_second"] ?? "?")", "hold_failed=\(held["failed"] ?? "?")",
                "hold_reconnects=\(held["reconnects"] ?? "?")", "hold_s=\(held["seconds"] ?? "?")",
                "ingest_devices=\(active)", "ingest_events=\(ingest["events_acked"] ?? "?")",
                "ingest_events_per_s=\(ingest["events_per_second"] ?? "?")", "ingest_ack_p50_ms=\(ingest["ack_p50_ms"] ?? "?")",
                "ingest_ack_p99_ms=\(ingest["ack_p99_ms"] ?? "?")", "ingest_reconnects=\(ingest["reconnects"] ?? "?")",
                "copy_rows_per_s=\(String(format: "%.0f", copy))",
                "paced_10_per_s_per_device_events_per_s=\(paced["events_per_second"] ?? "?")",
                "paced_ack_p50_ms=\(paced["ack_p50_ms"] ?? "?")", "paced_ack_p99_ms=\(paced["ack_p99_ms"] ?? "?")",
                "whitelist_to_\(active)_p50_ms=\(reached[50].map(Self.ms) ?? "n/a")",
                "whitelist_p99_ms=\(reached[99].map(Self.ms) ?? "n/a")", "whitelist_all_ms=\(reached[100].map(Self.ms) ?? "n/a")",
                "commands_succeeded=\(latencies.count)/\(commands)",
                "command_p50_ms=\(latencies.isEmpty ? "n/a" : Self.ms(latencies[latencies.count / 2]))",
                "command_p99_ms=\(latencies.isEmpty ? "n/a" : Self.ms(latencies[min(latencies.count - 1, latencies.count * 99 / 100)]))",
            ].joined(separator: " ")
        }

        /// The same rows as the ingestion, written by `COPY` (psql `\copy`) into the same table:
        /// rows per second.
        func copyReference(_ app: LinliApplication, tenant: TenantRef, devices: [DeviceID]) async throws -> Double {
            var event = Linli_Device_V1_Event()
            event.deviceTimeMs = Int64(exactly: (Date().timeIntervalSince1970 * 1000).rounded(.down)) ?? 0
            event.access = .with {
                $0.doorCode = "main"
                $0.method = .card
                $0.credential = "card-sim"
                $0.granted = true
            }
            let time = ISO8601DateFormatter().string(from: Date())
            var csv = ""
            csv.reserveCapacity(devices.count * events * 120)
            for device in devices {
                for seq in 1...events {
                    event.seq = UInt64(clamping: 1_000_000 + seq)
                    let body = try event.serializedBytes() as [UInt8]
                    csv += "\(device),\(1_000_000 + seq),access,\(time),false,\\\\x\(body.hexString)\n"
                }
            }
            let elapsed = try psqlCopy(csv, into: "device_events (device_id, seq, kind, device_time, late, body)", tenant: tenant)
            return Double(devices.count * events) / Self.seconds(elapsed)
        }

        func count(_ app: LinliApplication, _ tenant: TenantRef, _ query: PostgresQuery) async throws -> Int {
            try await app.database.tenantTransaction(tenant) { connection in
                for try await value in try await connection.run(query, logger: app.logger).decode(Int64?.self) {
                    return Int(clamping: value ?? 0)
                }
                return 0
            }
        }

        static func staff(_ demo: DemoTenant, _ manager: UserID) -> Principal {
            Principal(
                tenantID: demo.tenant.id, subjectID: manager, displayName: "bench", role: .manager, communityIDs: [demo.community], buildingIDs: [])
        }

        static func start(_ binary: String, _ arguments: [String]) throws -> (Process, URL) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["simulate"] + arguments
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("simulate-\(UUID().uuidString).json")
            _ = FileManager.default.createFile(atPath: out.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: out)
            try process.run()
            return (process, out)
        }

        static func finish(_ running: (Process, URL)) async throws -> [String: String] {
            while running.0.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            let text = (try? String(contentsOf: running.1, encoding: .utf8)) ?? ""
            // {"key": value, ...} with numbers only: split it without a JSON dependency.
            var result: [String: String] = [:]
            for pair in text.trimmingCharacters(in: CharacterSet(charactersIn: "{}\n ")).split(separator: ",") {
                let parts = pair.split(separator: ":").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")) }
                if parts.count == 2 { result[parts[0]] = parts[1] }
            }
            return result
        }

        static func simulate(_ binary: String, _ arguments: [String]) async throws -> [String: String] {
            try await finish(try start(binary, arguments))
        }

        static func rssKB(_ pid: Int32?) -> Int {
            guard let pid, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
            for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
                let field = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? ""
                return Double(field).flatMap { Int(exactly: $0) } ?? 0
            }
            return 0
        }

        static func seconds(_ d: Duration) -> Double { d.seconds }
        static func ms(_ d: Duration) -> String { String(format: "%.1f", seconds(d) * 1000) }
        static func format(_ d: Duration) -> String { String(format: "%.1f", seconds(d)) }
    }
}
