import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// `GET /metrics` in the Prometheus text format, on its own plain-HTTP listener (loopback by
/// default: `LINLI_METRICS_HOST` / `LINLI_METRICS_PORT`, port 0 turns it off). It exports
/// what the server records through swift-metrics: RPC latency per method and status, database
/// and Redis failures and timeouts, background-job runs and failures, the outbox backlog and
/// whether the process is serving.
public struct MetricsEndpoint: Service {
    let registry: PrometheusCollectorRegistry
    let host: String
    let port: Int
    let logger: Logger

    /// Creates the endpoint; nothing listens until `run`.
    public init(registry: PrometheusCollectorRegistry, host: String, port: Int, logger: Logger) {
        self.registry = registry
        self.host = host
        self.port = port
        self.logger = logger
    }

    /// Serves until graceful shutdown. A port it cannot bind (another process, or an outgoing
    /// connection that took it as its local port) is tried again with a growing pause up to 30 s:
    /// metrics are not worth an outage, and the operator's scrapes come back once the port is free.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var pause = Duration.seconds(1)
            while !Task.isCancelled {
                let channel: any Channel
                do {
                    channel = try await bind()
                } catch {
                    logger.error(
                        "metrics endpoint not started, trying again",
                        metadata: ["address": "\(host):\(port)", "error": "\(error)", "retry.seconds": "\(pause.components.seconds)"])
                    try? await Task.sleep(for: pause)
                    pause = min(pause * 2, .seconds(30))
                    continue
                }
                logger.info("metrics on http://\(host):\(channel.localAddress?.port ?? port)/metrics")
                await withTaskCancellationHandler {
                    try? await channel.closeFuture.get()
                } onCancel: {
                    channel.close(promise: nil)
                }
                return
            }
        }
    }

    private func bind() async throws -> any Channel {
        let registry = registry
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsHandler(registry: registry))
                }
            }
            .bind(host: host, port: port).get()
    }
}

/// Answers `GET /metrics`; anything else is 404, and every connection is closed after one answer.
final class MetricsHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let found = head.method == .GET && (head.uri == "/metrics" || head.uri.hasPrefix("/metrics?"))
        let body = found ? registry.emitToBuffer() : Array("not found\n".utf8)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
        headers.add(name: "content-length", value: String(body.count))
        headers.add(name: "connection", value: "close")
        context.write(
            wrapOutboundOut(
                .head(
                    HTTPResponseHead(
                        version: head.version, status: found ? .ok : .notFound,
                        headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}
