import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliDevices
import LinliServer
import LinliTenancy
import PostgresNIO
import Testing

/// The real C client (`linli-device`, protobuf-c over OpenSSL) against the real gateway.
struct DeviceProgram {
    /// Beside the `linli` binary Deploy/test built.
    static var path: String {
        let linli = ProcessInfo.processInfo.environment["LINLI_TEST_BINARY"] ?? ".build/debug/linli"
        return URL(fileURLWithPath: linli).deletingLastPathComponent().appendingPathComponent("linli-device").path
    }

    struct Result {
        let status: Int32
        let output: String
        let errors: String
    }

    /// Starts the program; `finish` waits for it.
    final class Running: @unchecked Sendable {
        let process: Process
        let out: URL
        let err: URL
        init(process: Process, out: URL, err: URL) {
            self.process = process
            self.out = out
            self.err = err
        }

        func finish(timeout: Duration = .seconds(60)) async throws -> Result {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning {
                if ContinuousClock.now > deadline {
                    process.terminate()
                    throw TestFailure("linli-device did not finish in \(timeout)")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            return Result(
                status: process.terminationStatus, output: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                errors: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
        }

        func kill() { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    static func start(_ arguments: [String]) throws -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let dir = FileManager.default.temporaryDirectory
        let out = dir.appendingPathComponent("linli-device-\(UUID().uuidString).out")
        let err = dir.appendingPathComponent("linli-device-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        return Running(process: process, out: out, err: err)
    }

    static func run(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> Result {
        try await start(arguments).finish(timeout: timeout)
    }
}

/// A device registered in a demo tenant, and the arguments that make `linli-device` it.
struct TestDevice {
    let id: String
    let secret: String
    let tenant: String
    let port: Int
    let buffer: String

    /// The commit point the device has written down (its `<buffer>.state`).
    var savedCommitPoint: Int {
        let state = (try? String(contentsOfFile: buffer + ".state", encoding: .utf8)) ?? ""
        return Int(state.split(separator: " ").first ?? "") ?? 0
    }

    /// Waits until the device has some, but not all, events acknowledged.
    func waitForPartialCommit(of total: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while savedCommitPoint == 0 {
            if ContinuousClock.now > deadline { throw TestFailure("the device got no commit point") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    func arguments(_ command: String = "run", secret: String? = nil, tenant: String? = nil, port: Int? = nil) -> [String] {
        [
            command, "--host", "127.0.0.1", "--port", "\(port ?? self.port)", "--ca", TestServer.caPath,
            "--tenant", tenant ?? self.tenant, "--device", id, "--secret", secret ?? self.secret, "--buffer", buffer,
        ]
    }
}

extension TestServer {
    func registerDevice(
        _ demo: DemoTenant, as session: Metadata, serial: String = UUID().uuidString.prefix(12).description,
        kind: Linli_Device_V1_DeviceKind = .door
    ) async throws -> TestDevice {
        var request = Linli_Device_V1_RegisterDeviceRequest()
        request.requestID = UUID().uuidString
        request.communityID = demo.community.description
        request.serial = serial
        request.kind = kind
        request.name = kind == .barrier ? "停车场道闸" : "1栋单元门"
        let response = try await devices.registerDevice(request, metadata: session)
        let buffer = FileManager.default.temporaryDirectory.appendingPathComponent("device-\(UUID().uuidString).buf").path
        return TestDevice(
            id: response.device.id, secret: response.secret, tenant: response.tenant, port: try await app.deviceGateway.port(),
            buffer: buffer)
    }

    /// The device's stored events: (seq, late), every page.
    func storedEvents(_ device: TestDevice, as session: Metadata) async throws -> [(UInt64, Bool)] {
        var result: [(UInt64, Bool)] = []
        var token = ""
        repeat {
            var request = Linli_Device_V1_ListDeviceEventsRequest()
            request.deviceID = device.id
            request.page.pageSize = 100
            request.page.pageToken = token
            let page = try await devices.listDeviceEvents(request, metadata: session)
            result += page.events.map { ($0.event.seq, $0.late) }
            token = page.nextPageToken
        } while !token.isEmpty
        return result
    }

    func device(_ device: TestDevice, in demo: DemoTenant, as session: Metadata) async throws -> Linli_Device_V1_Device? {
        var request = Linli_Device_V1_ListDevicesRequest()
        request.communityID = demo.community.description
        request.page.pageSize = 100
        return try await devices.listDevices(request, metadata: session).devices.first { $0.id == device.id }
    }

    func sendOpenDoor(_ device: TestDevice, ttl: UInt32, as session: Metadata) async throws -> Linli_Device_V1_DeviceCommand {
        var request = Linli_Device_V1_SendCommandRequest()
        request.requestID = UUID().uuidString
        request.deviceID = device.id
        request.ttlSeconds = ttl
        var open = Linli_Device_V1_OpenDoor()
        open.doorCode = "main"
        request.openDoor = open
        return try await devices.sendCommand(request, metadata: session).command
    }

    func command(_ id: String, as session: Metadata) async throws -> Linli_Device_V1_DeviceCommand {
        var request = Linli_Device_V1_GetCommandRequest()
        request.commandID = id
        return try await devices.getCommand(request, metadata: session).command
    }

    /// Waits until the gateway holds `count` connections more than `before`.
    func waitForConnections(_ count: Int, timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while app.deviceGateway.connectedCount < count {
            if ContinuousClock.now > deadline { throw TestFailure("no device connected in \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

@Suite("Device gateway: the C client over TLS", .serialized)
struct DeviceTests {
    @Test("events are stored once, acknowledged after commit, and the buffer empties")
    func eventsStoredOnce() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let device = try await server.registerDevice(demo, as: manager)
        #expect(device.secret.count == 64)

        let result = try await DeviceProgram.run(device.arguments() + ["--capture", "300", "--exit-when-acked", "--quiet"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.contains("commit_point 300 pending 0"))
        let stored = try await server.storedEvents(device, as: manager)
        #expect(stored.map(\.0) == Array((1...300).reversed()))
        #expect(stored.allSatisfy { !$0.1 })
        let listed = try await server.device(device, in: demo, as: manager)
        #expect(listed?.commitPoint == 300)
        #expect(listed?.online == true)

        // Run again with 5 more: only the new ones travel and are stored.
        let again = try await DeviceProgram.run(device.arguments() + ["--capture", "5", "--exit-when-acked", "--quiet"])
        #expect(again.status == 0)
        #expect(again.output.contains("commit_point 305 pending 0"))
        #expect(try await server.storedEvents(device, as: manager).count == 305)
    }

    @Test("B-4: 500 events buffered offline replay once, flagged late; clock skew is refused with a reason")
    func offlineBuffer() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let device = try await server.registerDevice(demo, as: manager)

        // Offline: the device captures 500 events two minutes ago, then 2 an hour in the future.
        let captured = try await DeviceProgram.run(device.arguments("capture") + ["--capture", "500", "--time-offset-ms", "-120000"])
        #expect(captured.output.contains("pending 500"))
        _ = try await DeviceProgram.run(device.arguments("capture") + ["--capture", "2", "--time-offset-ms", "3600000"])

        let result = try await DeviceProgram.run(device.arguments() + ["--exit-when-acked"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.contains("commit_point 502 pending 0"))
        #expect(result.errors.contains("event 501 refused: device_time_ms is"))
        let stored = try await server.storedEvents(device, as: manager)
        #expect(stored.count == 500)
        #expect(stored.allSatisfy { $0.1 }, "every replayed event is flagged late")
        #expect(Set(stored.map(\.0)) == Set(1...500))
    }

    @Test("a device killed mid-batch resumes from the commit point: nothing lost, nothing stored twice")
    func killedMidBatch() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let device = try await server.registerDevice(demo, as: manager)

        _ = try await DeviceProgram.run(device.arguments("capture") + ["--capture", "4000"])
        let running = try DeviceProgram.start(device.arguments() + ["--exit-when-acked", "--quiet"])
        try await device.waitForPartialCommit(of: 4000)
        running.kill()
        _ = try? await running.finish()
        let atKill = device.savedCommitPoint
        #expect(atKill > 0 && atKill < 4000, "killed mid-stream, at \(atKill)")

        let resumed = try await DeviceProgram.run(device.arguments() + ["--exit-when-acked", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.errors)")
        #expect(resumed.output.contains("commit_point 4000 pending 0"))
        let stored = try await server.storedEvents(device, as: manager).map(\.0)
        #expect(stored.count == 4000)
        #expect(Set(stored) == Set(1...4000))
    }

    @Test("B-5: wrong secret, another tenant, a rotated secret and a revoked device are refused at hello")
    func authentication() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let other = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let device = try await server.registerDevice(demo, as: manager)
        let quiet = ["--exit-when-acked"]

        let wrong = String(repeating: "ab", count: 32)
        #expect(try await DeviceProgram.run(device.arguments(secret: wrong) + quiet).status == 2)
        // Tenant A's device naming tenant B: no such device there, the same answer as a wrong secret.
        let crossTenant = try await DeviceProgram.run(device.arguments(tenant: other.tenant.slug) + ["--capture", "3"] + quiet)
        #expect(crossTenant.status == 2)
        #expect(crossTenant.errors.contains("unknown tenant or device, or a wrong proof"))
        let otherManager = try await server.login(other, "manager")
        var foreign = Linli_Device_V1_ListDeviceEventsRequest()
        foreign.deviceID = device.id
        #expect(await rpcCode { try await server.devices.listDeviceEvents(foreign, metadata: otherManager) } == .notFound)

        var rotate = Linli_Device_V1_RotateDeviceSecretRequest()
        rotate.requestID = UUID().uuidString
        rotate.deviceID = device.id
        let rotated = try await server.devices.rotateDeviceSecret(rotate, metadata: manager)
        #expect(try await DeviceProgram.run(device.arguments() + quiet).status == 2)
        #expect(try await DeviceProgram.run(device.arguments(secret: rotated.secret) + quiet).status == 0)
        // A retry of the rotation returns no secret (it is never stored) and issues no new one.
        let retried = try await server.devices.rotateDeviceSecret(rotate, metadata: manager)
        #expect(retried.secret.isEmpty)
        #expect(try await DeviceProgram.run(device.arguments(secret: rotated.secret) + quiet).status == 0)

        var revoke = Linli_Device_V1_SetDeviceStatusRequest()
        revoke.requestID = UUID().uuidString
        revoke.deviceID = device.id
        revoke.status = .revoked
        _ = try await server.devices.setDeviceStatus(revoke, metadata: manager)
        let refused = try await DeviceProgram.run(device.arguments(secret: rotated.secret) + quiet)
        #expect(refused.status == 3)
        #expect(refused.errors.contains("the device is revoked"))
        var revive = revoke
        revive.requestID = UUID().uuidString
        revive.status = .active
        #expect(await rpcCode { try await server.devices.setDeviceStatus(revive, metadata: manager) } == .failedPrecondition)
    }

    @Test("frames over 2 MiB and frames that are not a DeviceMessage are refused with a reason; the server goes on")
    func badFrames() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let device = try await server.registerDevice(demo, as: manager)

        let large = try await DeviceProgram.run(device.arguments() + ["--probe-frame-limit", "--run-seconds", "5"])
        #expect(large.status == 4)
        #expect(large.errors.contains("refused (4)"))
        let garbage = try await DeviceProgram.run(device.arguments() + ["--probe-garbage", "--run-seconds", "5"])
        #expect(garbage.status == 4)
        #expect(garbage.errors.contains("refused (3): the frame is not a linli.device.v1.DeviceMessage"))
        let fine = try await DeviceProgram.run(device.arguments() + ["--capture", "1", "--exit-when-acked"])
        #expect(fine.status == 0)
    }

    @Test("B-2: a command to an offline device expires and never runs; to an online one it succeeds once")
    func commands() async throws {
        let server = try await TestServer.shared.value
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let device = try await server.registerDevice(demo, as: manager)

        let stale = try await server.sendOpenDoor(device, ttl: 1, as: manager)
        #expect(stale.state == .queued)
        try await Task.sleep(for: .milliseconds(1200))
        #expect(try await server.command(stale.id, as: manager).state == .expired)

        let before = server.app.deviceGateway.connectedCount
        let running = try DeviceProgram.start(device.arguments() + ["--run-seconds", "4"])
        try await server.waitForConnections(before + 1)
        let command = try await server.sendOpenDoor(device, ttl: 30, as: manager)
        var request = Linli_Device_V1_GetCommandRequest()
        request.commandID = command.id
        let states = try await server.devices.watchCommand(request, metadata: manager) { response in
            var states: [Linli_Device_V1_CommandState] = []
            for try await update in response.messages { states.append(update.state) }
            return states
        }
        #expect(states.last == .succeeded, "\(states)")
        let result = try await running.finish()
        #expect(result.output.contains("command \(command.id) open_door main"))
        #expect(!result.output.contains(stale.id), "an expired command never runs")
        #expect(try await server.command(stale.id, as: manager).state == .expired)

        // A duplicate result is a no-op; a result for the expired command changes nothing.
        let store = DeviceStore(database: server.app.database)
        let id = try #require(UUID(uuidString: device.id))
        #expect(
            try await !store.report(
                DeviceCommandID(UUID(uuidString: command.id)!), outcome: .failed, detail: "", device: DeviceID(id), tenant: demo.tenant,
                logger: server.app.logger))
        #expect(
            try await !store.report(
                DeviceCommandID(UUID(uuidString: stale.id)!), outcome: .succeeded, detail: "", device: DeviceID(id), tenant: demo.tenant,
                logger: server.app.logger))
        #expect(try await server.command(command.id, as: manager).state == .succeeded)
    }

    @Test("a command queued on one server process reaches a device connected to another")
    func commandAcrossProcesses() async throws {
        let server = try await TestServer.shared.value
        let second = try await TestServer.start()
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let device = try await server.registerDevice(demo, as: manager)
        let secondPort = try await second.app.deviceGateway.port()

        let running = try DeviceProgram.start(device.arguments(port: secondPort) + ["--run-seconds", "4"])
        try await second.waitForConnections(1)
        let command = try await server.sendOpenDoor(device, ttl: 30, as: manager)
        var final = command
        let deadline = ContinuousClock.now + .seconds(4)
        while final.state != .succeeded, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            final = try await server.command(command.id, as: manager)
        }
        #expect(final.state == .succeeded)
        let result = try await running.finish()
        #expect(result.output.contains("command \(command.id) open_door main"))
        await second.stop()
    }

    @Test("a device silent past three heartbeats goes offline with one alarm, cleared when it returns")
    func presence() async throws {
        let server = try await TestServer.start { $0.deviceHeartbeatSeconds = 1 }
        let demo = try await server.newTenant()
        let manager = try await server.login(demo, "manager")
        let device = try await server.registerDevice(demo, as: manager)

        #expect(try await DeviceProgram.run(device.arguments() + ["--run-seconds", "1"]).status == 0)
        #expect(try await server.device(device, in: demo, as: manager)?.online == true)
        try await Task.sleep(for: .milliseconds(3200))
        try await server.app.deviceGateway.sweep()
        try await server.app.deviceGateway.sweep()
        #expect(try await server.device(device, in: demo, as: manager)?.online == false)
        func alarms() async throws -> [String] {
            try await server.app.database.tenantTransaction(demo.tenant) { connection in
                var result: [String] = []
                let rows = try await connection.query("SELECT status FROM device_alarms WHERE type = 'device.offline'", logger: server.app.logger)
                for try await status in rows.decode(String.self) { result.append(status) }
                return result
            }
        }
        #expect(try await alarms() == ["active"])
        let inbox = Linli_Property_V1_InboxService.Client(wrapping: server.client)
        var told = 0
        let deadline = ContinuousClock.now + .seconds(5)
        while told == 0, ContinuousClock.now < deadline {
            told = try await inbox.listNotifications(.init(), metadata: manager).notifications.filter { $0.topic == "device.alarm" }.count
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(told == 1, "the manager hears of it once")

        #expect(try await DeviceProgram.run(device.arguments() + ["--run-seconds", "1"]).status == 0)
        #expect(try await server.device(device, in: demo, as: manager)?.online == true)
        #expect(try await alarms() == ["cleared"])
        await server.stop()
    }

    @Test("a server restart with a device sending: it reconnects and nothing is lost or stored twice")
    func serverRestart() async throws {
        let port = try Self.freePort()
        let first = try await TestServer.start { $0.devicePort = port }
        let demo = try await first.newTenant()
        let manager = try await first.login(demo, "manager")
        let device = try await first.registerDevice(demo, as: manager)

        _ = try await DeviceProgram.run(device.arguments("capture") + ["--capture", "20000"])
        let running = try DeviceProgram.start(device.arguments() + ["--exit-when-acked", "--reconnect", "--quiet"])
        try await device.waitForPartialCommit(of: 20000)
        await first.stop()
        let atStop = device.savedCommitPoint
        #expect(atStop > 0 && atStop < 20000, "stopped mid-stream, at \(atStop)")
        let second = try await TestServer.start { $0.devicePort = port }
        let result = try await running.finish(timeout: .seconds(90))
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.contains("commit_point 20000 pending 0"))
        let session = try await second.login(demo, "manager")
        let stored = try await second.storedEvents(device, as: session).map(\.0)
        #expect(stored.count == 20000)
        #expect(Set(stored) == Set(1...20000))
        await second.stop()
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestFailure("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
