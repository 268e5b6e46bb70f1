import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAPI
import LinliCore
import LinliServer
import PostgresNIO
import Synchronization
import Testing

@Suite("Graceful shutdown")
struct ShutdownTests {
    @Test("SIGTERM during publishing load: the server drains, exits 0, and every acknowledged notice is stored")
    func sigtermUnderLoad() async throws {
        let shared = try await TestServer.shared.value
        let demo = try await shared.newTenant()
        let binary = try #require(ProcessInfo.processInfo.environment["LINLI_TEST_BINARY"], "Deploy/test sets LINLI_TEST_BINARY")
        let port = Int.random(in: 20_000..<25_000)  // below the ephemeral range, which outgoing connections take
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve"]
        var environment = ProcessInfo.processInfo.environment
        environment["LINLI_GRPC_PORT"] = String(port)
        environment["LINLI_LOG_LEVEL"] = "error"
        for name in ["WRITE", "READ", "LOGIN"] {
            environment["LINLI_RATELIMIT_\(name)_PER_SECOND"] = "100000"
            environment["LINLI_RATELIMIT_\(name)_BURST"] = "100000"
        }
        process.environment = environment
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let client = GRPCClient(transport: try LinliClientTransport.tls(host: "127.0.0.1", port: port, caPath: TestServer.caPath))
        let connections = Task { try await client.runConnections() }
        defer { client.beginGracefulShutdown(); connections.cancel() }
        try await waitUntilServing(client)

        var login = Linli_Identity_V1_LoginRequest()
        login.tenantSlug = demo.tenant.slug
        login.username = "manager"
        login.password = demo.password
        let session = LinliClientTransport.bearer(try await Linli_Identity_V1_IdentityService.Client(wrapping: client).login(login).sessionToken)
        let notices = Linli_Property_V1_NoticeService.Client(wrapping: client)

        let load = Load()
        let pid = process.processIdentifier
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    var sequence = 0
                    while true {
                        sequence += 1
                        let request = demo.publishRequest(
                            title: "停机测试 \(worker)-\(sequence)",
                            requestID: UUID().uuidString)
                        do {
                            let reply = try await notices.publishNotice(request, metadata: session)
                            load.acknowledged.withLock { $0.append(reply.notice.id) }
                        } catch {
                            // Refusals are expected only once the server is going away.
                            if !load.signalled.load(ordering: .acquiring) { Issue.record("publish failed before SIGTERM: \(error)") }
                            return
                        }
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(1500))
                load.signalled.store(true, ordering: .releasing)
                kill(pid, SIGTERM)
            }
            try await group.waitForAll()
        }
        let deadline = ContinuousClock.now + .seconds(15)
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "the server did not exit within 15 s of SIGTERM")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)

        let ids = load.acknowledged.withLock { $0 }
        #expect(ids.count > 10)
        let stored = try await shared.app.database.tenantTransaction(demo.tenant) { connection in
            let uuids = ids.compactMap(UUID.init(uuidString:))
            let rows = try await connection.query("SELECT count(*) FROM notices WHERE id = ANY(\(uuids))", logger: shared.app.database.logger)
            for try await count in rows.decode(Int.self) { return count }
            return -1
        }
        #expect(stored == ids.count, "acknowledged \(ids.count), stored \(stored)")
    }

    /// What the publishing workers share.
    final class Load: Sendable {
        let acknowledged = Mutex<[String]>([])
        let signalled = Atomic<Bool>(false)
    }

    func waitUntilServing(_ client: GRPCClient<HTTP2ClientTransport.Posix>) async throws {
        let health = Grpc_Health_V1_Health.Client(wrapping: client)
        for _ in 0..<200 {
            if (try? await health.check(.init()))?.status == .serving { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the server subprocess never became healthy")
    }
}
