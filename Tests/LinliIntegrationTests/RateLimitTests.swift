import Foundation
import GRPCCore
import LinliAPI
import LinliServer
import Testing

@Suite("Rate limits and Redis outages")
struct RateLimitTests {
    @Test("past the burst a call gets RESOURCE_EXHAUSTED with retry-after-ms, per principal")
    func limited() async throws {
        let server = try await TestServer.start { $0.rateLimits[.read] = RateLimit(perSecond: 1, burst: 3) }
        defer { Task { await server.stop() } }
        let demo = try await server.newTenant()
        let resident = try await server.login(demo, "resident1")
        for _ in 0..<3 { _ = try await server.identity.whoAmI(.init(), metadata: resident) }
        let error = await rpcError { try await server.identity.whoAmI(.init(), metadata: resident) }
        #expect(error?.code == .resourceExhausted)
        let retry = error?.metadata[stringValues: "retry-after-ms"].first { _ in true }.flatMap(Int.init)
        #expect(retry.map { $0 > 0 && $0 <= 1000 } == true)

        // Another principal of the same tenant has a budget of its own.
        _ = try await server.identity.whoAmI(.init(), metadata: try await server.login(demo, "resident2"))
        // Waiting the advertised delay is enough.
        try await Task.sleep(for: .milliseconds(retry ?? 1000))
        _ = try await server.identity.whoAmI(.init(), metadata: resident)
    }

    @Test("a session call costs Redis one command: the session lookup and the rate-limit slot are one script")
    func oneRoundTrip() async throws {
        let server = try await TestServer.start { $0.rateLimits[.read] = RateLimit(perSecond: 1, burst: 5) }
        defer { Task { await server.stop() } }
        let demo = try await server.newTenant()
        let resident = try await server.login(demo, "resident1")
        func calls() async throws -> [String: Int] {
            let info = try await server.app.redis.send(["INFO", "commandstats"]).string ?? ""
            var result: [String: Int] = [:]
            for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
                let name = line.dropFirst(8).prefix { $0 != ":" }
                let count = line.split(separator: "calls=").dropFirst().first?.prefix { $0.isNumber }
                result[String(name)] = count.flatMap { Int($0) }
            }
            return result
        }
        let before = try await calls()
        for _ in 0..<5 { _ = try await server.identity.whoAmI(.init(), metadata: resident) }
        let after = try await calls()
        // Commands a script runs count too, so the check is on scripts: one per call (the
        // session lookup, a peek and a rate-limit script one by one made it two scripts and a GETEX).
        func scripts(_ stats: [String: Int]) -> Int { (stats["evalsha"] ?? 0) + (stats["eval"] ?? 0) }
        #expect(scripts(after) - scripts(before) == 5)
        #expect((after["getex"] ?? 0) - (before["getex"] ?? 0) == 5)
        // The slot was taken in that script: the sixth call in the second is over the burst.
        #expect(await rpcCode { try await server.identity.whoAmI(.init(), metadata: resident) } == .resourceExhausted)
    }

    @Test("with Redis down, logins and sessions are UNAVAILABLE and rate limits fail open")
    func redisDown() async throws {
        let healthy = try await TestServer.shared.value
        let demo = try await healthy.newTenant()
        var key = Linli_Identity_V1_CreateApiKeyRequest()
        key.requestID = UUID().uuidString
        key.name = "停车系统"
        key.communityIds = [demo.community.description]
        let secret = try await healthy.identity.createApiKey(key, metadata: try await healthy.login(demo, "manager")).secret
        let token = try await healthy.login(demo, "resident1")

        // Port 1 on loopback: nothing listens, connections are refused at once.
        let server = try await TestServer.start { $0.redis.port = 1 }
        defer { Task { await server.stop() } }
        #expect(await rpcCode { try await server.login(demo, "manager") } == .unavailable)
        #expect(await rpcCode { try await server.identity.whoAmI(.init(), metadata: token) } == .unavailable)
        // API keys live in PostgreSQL: the call passes, its rate limit skipped and logged.
        var list = Linli_Property_V1_ListNoticesRequest()
        list.communityID = demo.community.description
        #expect(try await server.notices.listNotices(list, metadata: LinliClientTransport.apiKey(secret)).notices.count == 2)
        _ = try await Grpc_Health_V1_Health.Client(wrapping: server.client).check(.init())
    }
}
