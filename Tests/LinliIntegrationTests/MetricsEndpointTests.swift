import LinliServer
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Testing

@Suite("Metrics endpoint")
struct MetricsEndpointTests {
    @Test("a port held by someone else is tried again until it is free: the scrapes come back, and shutdown ends the endpoint")
    func bindsOnceThePortIsFree() async throws {
        let blocker = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(blocker.localAddress?.port)
        let registry = PrometheusCollectorRegistry()
        registry.makeGauge(name: "linli_test_gauge").set(to: 7)
        let endpoint = MetricsEndpoint(registry: registry, host: "127.0.0.1", port: port, logger: Logger(label: "test"))
        let group = ServiceGroup(services: [endpoint], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        // While the port is held the endpoint cannot listen; then it is freed.
        try await Task.sleep(for: .milliseconds(300))
        try await blocker.close()

        var answer = ""
        for _ in 0..<40 where !answer.hasPrefix("HTTP/1.1 200") {
            answer = (try? await Self.get("/metrics", port: port)) ?? ""
            if !answer.hasPrefix("HTTP/1.1 200") { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(answer.hasPrefix("HTTP/1.1 200") && answer.contains("linli_test_gauge 7"), "\(answer)")
        #expect(try await Self.get("/other", port: port).hasPrefix("HTTP/1.1 404"))

        await group.triggerGracefulShutdown()
        try await running.value
        #expect((try? await Self.get("/metrics", port: port)) == nil, "still listening after shutdown")
    }

    /// One HTTP/1.1 request on a fresh connection; the whole answer up to the server's close.
    static func get(_ path: String, port: Int) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
            var answer = ""
            for try await part in inbound { answer += String(buffer: part) }
            return answer
        }
    }
}
