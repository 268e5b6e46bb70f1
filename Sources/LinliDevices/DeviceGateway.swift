import Foundation
import LinliAPI
import LinliCore
import LinliRedis
import LinliTenancy
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The device gateway: a TLS listener of its own in the server's process and service group,
/// speaking `wire.proto` in length-prefixed frames (README, "Devices").
public final class DeviceGateway: Service, Sendable {
    public struct Configuration: Sendable {
        public var host: String
        /// 0: an ephemeral port (tests).
        public var port: Int
        public var certificatePath: String
        public var keyPath: String
        /// Devices send a heartbeat at least this often; silent for three periods they are offline.
        public var heartbeatSeconds: Int
        /// Connections held at once; more are refused with UNAVAILABLE.
        public var maxConnections: Int
        /// Events whose device time is further ahead than this are refused.
        public var maxClockSkewSeconds: Int
        /// The time a new connection has to authenticate.
        public var helloTimeout: Duration = .seconds(10)
        /// How often the sweep marks silent devices offline and settles command states.
        public var sweepInterval: Duration = .seconds(5)

        public init(
            host: String, port: Int, certificatePath: String, keyPath: String, heartbeatSeconds: Int = 30,
            maxConnections: Int = 20_000, maxClockSkewSeconds: Int = 300
        ) {
            self.host = host
            self.port = port
            self.certificatePath = certificatePath
            self.keyPath = keyPath
            self.heartbeatSeconds = heartbeatSeconds
            self.maxConnections = maxConnections
            self.maxClockSkewSeconds = maxClockSkewSeconds
        }
    }

    public static let protocolVersion: UInt32 = 1
    /// Events in one batch at most.
    public static let maxBatch = 256
    /// Events older than this (by device time) are refused: a buffer that old is a broken clock.
    public static let maxEventAge: TimeInterval = 30 * 86_400
    /// Events that arrive this long after they happened are flagged late.
    public static let lateAfter: TimeInterval = 60

    let configuration: Configuration
    let store: DeviceStore
    let whitelists: WhitelistStore
    let ingestQueue: IngestQueue
    let database: Database
    let tenants: TenantRegistry
    let presence: DevicePresence
    let connections = DeviceConnections()
    let validate: @Sendable (Linli_Device_V1_DeviceMessage) throws(LinliError) -> Void
    let logger: Logger
    private let boundPort = Mutex<Int?>(nil)

    /// `validate` checks every decoded frame against the declared input limits; `handler` acts on
    /// events in the transaction that stores them (parking's plate reads).
    public init(
        configuration: Configuration, database: Database, redis: RedisClient, tenants: TenantRegistry, logger: Logger,
        handler: (any DeviceEventHandler)? = nil,
        validate: @escaping @Sendable (Linli_Device_V1_DeviceMessage) throws(LinliError) -> Void
    ) {
        self.configuration = configuration
        self.database = database
        self.store = DeviceStore(database: database)
        self.whitelists = WhitelistStore(database: database)
        self.ingestQueue = IngestQueue(store: DeviceStore(database: database), handler: handler, logger: logger)
        self.tenants = tenants
        self.presence = DevicePresence(redis: redis)
        self.validate = validate
        self.logger = logger
    }

    /// The port it listens on, once bound (waits up to 10 s).
    public func port() async throws -> Int {
        for _ in 0..<1000 {
            if let port = boundPort.withLock({ $0 }) { return port }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw LinliError(.unavailable, "the device gateway did not bind")
    }

    /// How many devices are connected to this process.
    public var connectedCount: Int { connections.count }

    public func run() async throws {
        let tls = try TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(configuration.certificatePath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: configuration.keyPath, format: .pem)))
        let sslContext = try NIOSSLContext(configuration: tls)
        let idle = TimeAmount.seconds(Int64(clamping: configuration.heartbeatSeconds) * 3)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLServerHandler(context: sslContext))
                    try sync.addHandler(ByteToMessageHandler(DeviceFrameDecoder()))
                    try sync.addHandler(MessageToByteHandler(DeviceFrameEncoder()))
                    try sync.addHandler(IdleStateHandler(readTimeout: idle))
                    try sync.addHandler(DeviceIdleHandler())
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        boundPort.withLock { $0 = server.channel.localAddress?.port }
        logger.info("device gateway listening", metadata: ["port": "\(server.channel.localAddress?.port ?? 0)"])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await self.listenForCommands() }
                group.addTask { await self.listenForWhitelistChanges() }
                group.addTask {
                    await PeriodicJob.run(every: .seconds(60), first: .afterInterval, name: "access_tidy", logger: self.logger) {
                        try await self.tidy()
                    }
                }
                group.addTask {
                    await PeriodicJob.run(every: self.configuration.sweepInterval, first: .afterInterval, name: "device_sweep", logger: self.logger) {
                        try await self.sweep()
                    }
                }
                try await withThrowingDiscardingTaskGroup { sessions in
                    try await server.executeThenClose { inbound in
                        for try await connection in inbound {
                            sessions.addTask { await self.serve(connection) }
                        }
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
            self.connections.closeAll(.unavailable, "the server is shutting down; reconnect")
        }
    }

    // MARK: Commands across processes

    /// Wakes the connection of every device a command is queued for, whichever process queued it.
    private func listenForCommands() async {
        await database.listen(on: "linli_device_commands") { payload in
            let parts = payload.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let device = UUID(uuidString: String(parts[1])) else { return }
            self.connections.link(device, schema: String(parts[0]))?.wake()
        }
    }

    /// Reconciles the whitelists a change marked, in the tenant whose schema NOTIFY names; the
    /// reconcile wakes the connections of devices whose version moved.
    private func listenForWhitelistChanges() async {
        await database.listen(on: "linli_whitelist") { schema in
            guard schema.hasPrefix("t_"), let tenant = try? await self.tenants.find(slug: String(schema.dropFirst(2))) else { return }
            do {
                try await self.whitelists.reconcileMarked(tenant: tenant, logger: self.logger)
            } catch {
                self.logger.warning("whitelist reconcile failed; the sweep retries", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The slow clock: every whitelist is reconciled (expired passes and credentials leave),
    /// stranger alarms past their window clear, and access records past retention are deleted.
    public func tidy() async throws {
        for tenantID in try await presence.tenants() {
            guard let tenant = try? await tenants.tenant(id: tenantID) else { continue }
            try await whitelists.reconcileAll(tenant: tenant, logger: logger)
            try await database.tenantTransaction(tenant) { connection in
                try await AccessLog.tidy(on: connection, logger: self.logger)
            }
        }
    }

    /// The backstop and the clock: silent devices go offline, commands past their time settle,
    /// and connections with due commands that a lost notification did not wake are woken. The
    /// gateway runs it every `sweepInterval`; tests call it to make time pass deterministically.
    public func sweep() async throws {
        let cutoff = Date().addingTimeInterval(-TimeInterval(configuration.heartbeatSeconds * 3))
        for tenantID in try await presence.tenants() {
            guard let tenant = try? await tenants.tenant(id: tenantID) else { continue }
            let silent = try await presence.silent(tenant: tenantID, before: cutoff)
            if !silent.isEmpty {
                let marked = try await store.markOffline(silent, silentSince: cutoff, tenant: tenant, logger: logger)
                if !marked.isEmpty {
                    Counter(label: MetricName.devicesOffline).increment(by: marked.count)
                    logger.info("devices offline", metadata: ["tenant.id": "\(tenantID)", "count": "\(marked.count)"])
                }
                try await presence.forget(silent.map(\.0), tenant: tenantID, before: cutoff)
            }
            _ = try await store.sweepCommands(tenant: tenant, logger: logger)
            try await whitelists.reconcileMarked(tenant: tenant, logger: logger)
        }
        for (_, (tenant, links)) in connections.byTenant() {
            let due = try await store.devicesWithQueuedCommands(links.map(\.device), tenant: tenant, logger: logger)
            for link in links where due.contains(link.device) { link.wake() }
        }
    }
}

/// Closes a connection silent past three heartbeat periods, saying why.
final class DeviceIdleHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let refusal = Linli_Device_V1_ServerMessage.refusal(.timeout, "no frame for three heartbeat periods")
        if let bytes: [UInt8] = try? refusal.serializedBytes() {
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
        }
        context.close(promise: nil)
    }
}
