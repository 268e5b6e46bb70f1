import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LinliAlarms
import LinliBaseData
import LinliBilling
import LinliCases
import LinliCommerce
import LinliCore
import LinliDevices
import LinliFrontDesk
import LinliIdentity
import LinliInbox
import LinliMeters
import LinliNotices
import LinliParking
import LinliPatrol
import LinliPlatform
import LinliPoints
import LinliRedis
import LinliTenancy
import LinliWorkOrders
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceLifecycle

/// The whole server, wired in one place.
///
/// Every long-lived part is a `Service` in one `ServiceGroup`, started in dependency order
/// (PostgreSQL, Redis, the rollup, then the gRPC server) and shut down in reverse on
/// SIGTERM or SIGINT: the gRPC server first stops accepting and drains in-flight calls.
public struct LinliApplication: Sendable {
    /// The configuration it was built from.
    public let configuration: ServerConfiguration
    /// PostgreSQL access.
    public let database: Database
    /// The Redis client.
    public let redis: RedisClient
    /// The tenant registry.
    public let tenants: TenantRegistry
    /// Tenant users and operators.
    public let users: UserStore
    /// Tenant provisioning.
    public let provisioner: TenantProvisioner
    /// The national rollup.
    public let rollup: NationalRollupJob
    /// The patrol scheduler: plans into tasks ahead of time.
    public let patrolScheduler: PatrolSchedulerJob
    /// The outbox relay: committed messages into the in-app inbox.
    /// One consumer per `OutboxConsumerName`; `OutboxTopicsTests` checks the table.
    public static func outboxConsumers(redis: RedisClient?, logger: Logger) -> [any OutboxConsumer] {
        [InboxDelivery(), WorkOrderChargeBilling(), HotlineBridge(), PointsEarningConsumer(redis: redis, logger: logger)]
    }
    public let outboxRelay: OutboxRelayJob
    /// The hourly prepaid offset of bills fallen due.
    public let prepaidOffset: PrepaidOffsetJob
    public let alarmEscalation: AlarmEscalationJob
    public let smartMeters: SmartMeterJob
    public let telemetryPartitions: TelemetryPartitionJob
    public let broadcastSync: BroadcastSyncJob
    public let meterCredits: MeterCreditJob
    public let pointsExpiry: PointsExpiryJob
    /// Payment channels (the simulated one in development) and the order clock.
    public let paymentChannels: PaymentChannels
    public let orderTimers: OrderTimers
    /// Keeps spare tenant schemas ready.
    public let tenantSpares: TenantSpareJob
    /// Drops cached tenants when any process changes one.
    public let tenantChanges: TenantChangeListener
    /// Whether PostgreSQL and Redis answer; read by `grpc.health.v1.Health`.
    public let healthProbe: HealthProbe
    /// The device gateway (its own TLS port).
    public let deviceGateway: DeviceGateway
    /// The gRPC server.
    public let server: GRPCServer<HTTP2ServerTransport.Posix>
    public let logger: Logger
    /// For a serving process: exit this long after SIGTERM even if something still runs
    /// (never set in tests, which run servers inside the test process).
    public var exitAfterShutdown: Duration?
    /// Services a serving process adds (the metrics endpoint), started before the gRPC server.
    public var extraServices: [any Service] = []

    /// Builds every component; nothing runs until `run` or `serviceGroup`.
    public init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        if configuration.pageTokenSecret.isEmpty {
            logger.notice("LINLI_PAGE_TOKEN_SECRET is not set: page tokens hold only on this process")
        } else {
            PageToken.useSecret(configuration.pageTokenSecret)
        }
        let pg = configuration.postgres
        var pgConfig = PostgresClient.Configuration(
            host: pg.host, port: pg.port, username: pg.user,
            password: pg.password, database: pg.database, tls: .disable)
        pgConfig.options.maximumConnections = pg.maxConnections
        pgConfig.options.minimumConnections = min(4, pg.maxConnections)
        pgConfig.options.connectTimeout = .seconds(3)
        // A transaction left idle (a bug, a stuck caller) gives its locks back.
        pgConfig.options.additionalStartupParameters = [("idle_in_transaction_session_timeout", "60s")]
        let client = PostgresClient(configuration: pgConfig, backgroundLogger: logger)
        let timeout = pg.transactionTimeoutSeconds
        let storageHealth = StorageHealth()
        database = Database(
            client: client, logger: logger, timeout: timeout > 0 ? .seconds(timeout) : nil, health: storageHealth,
            schemaBudget: pg.maxSchemasPerConnection > 0 ? SchemaBudget(perConnection: pg.maxSchemasPerConnection) : nil)
        redis = RedisClient(configuration: configuration.redis, logger: logger)
        tenants = TenantRegistry(database: database)
        users = UserStore(database: database, hasher: PasswordHasher(logRounds: configuration.scryptLogRounds))
        let catalog = try MigrationCatalog.bundled()
        provisioner = TenantProvisioner(
            runner: MigrationRunner(
                database: database.unbounded, catalog: catalog,
                parallelism: configuration.migrationParallelism))
        rollup = NationalRollupJob(database: database, interval: .seconds(configuration.rollupIntervalSeconds), logger: logger)
        patrolScheduler = PatrolSchedulerJob(database: database, logger: logger)
        outboxRelay = OutboxRelayJob(
            database: database, tenants: tenants, consumers: Self.outboxConsumers(redis: redis, logger: logger), logger: logger)
        prepaidOffset = PrepaidOffsetJob(database: database, logger: logger)
        alarmEscalation = AlarmEscalationJob(database: database, logger: logger)
        smartMeters = SmartMeterJob(database: database, logger: logger)
        telemetryPartitions = TelemetryPartitionJob(database: database, logger: logger)
        broadcastSync = BroadcastSyncJob(database: database, logger: logger)
        meterCredits = MeterCreditJob(database: database, logger: logger)
        pointsExpiry = PointsExpiryJob(database: database, redis: redis, logger: logger)
        paymentChannels = PaymentChannels()
        orderTimers = OrderTimers(
            database: database, tenants: tenants, channels: paymentChannels, cache: PointsCache(redis: redis, logger: logger), logger: logger)
        tenantChanges = TenantChangeListener(database: database, registry: tenants)
        tenantSpares = TenantSpareJob(provisioner: provisioner, target: configuration.tenantSpares, logger: logger)

        let sessions = SessionStore(
            redis: redis, idleTimeout: .seconds(configuration.sessionIdleSeconds),
            maxLifetime: .seconds(configuration.sessionMaxSeconds))
        let apiKeys = ApiKeyStore(database: database)
        let authenticator = Authenticator(sessions: sessions, apiKeys: apiKeys, tenants: tenants)
        let limiter = RateLimiter(redis: redis, limits: configuration.rateLimits, logger: logger)

        let probeConfig = PostgresConnection.Configuration(
            host: pg.host, port: pg.port, username: pg.user, password: pg.password, database: pg.database, tls: .disable)
        healthProbe = HealthProbe(database: database, redis: redis, storage: storageHealth, logger: logger) { [logger] in
            try await PostgresConnection.connect(configuration: probeConfig, id: 0, logger: logger)
        }
        let orderService = OrderService(
            database: database, channels: paymentChannels, timers: orderTimers, cache: PointsCache(redis: redis, logger: logger), logger: logger)
        let services: [any RegistrableRPCService] = [
            HealthService(probe: healthProbe),
            IdentityService(
                database: database, tenants: tenants, users: users, sessions: sessions, apiKeys: apiKeys,
                throttle: limiter, logger: logger),
            PlatformService(database: database, provisioner: provisioner, tenants: tenants, logger: logger),
            NoticeService(database: database, logger: logger),
            WorkOrderService(database: database, logger: logger),
            ComplaintService(database: database, logger: logger),
            HotlineService(database: database, logger: logger),
            VisitorService(database: database, logger: logger),
            ParcelService(database: database, logger: logger),
            ItemReleaseService(database: database, logger: logger),
            BaseDataService(database: database, logger: logger),
            PetService(database: database, logger: logger),
            PatrolService(database: database, logger: logger),
            InboxService(database: database, logger: logger),
            BillingService(database: database, logger: logger, coupons: CouponStore()),
            DeviceService(database: database, logger: logger),
            AccessService(database: database, logger: logger),
            ParkingService(database: database, logger: logger, coupons: CouponStore()),
            AlarmService(database: database, logger: logger),
            MeterService(database: database, logger: logger),
            BroadcastService(database: database, logger: logger),
            PointsService(database: database, redis: redis, logger: logger),
            MerchantService(database: database, objects: LocalDiskStore(root: configuration.objectsPath), logger: logger),
            CouponService(database: database, logger: logger),
            orderService,
            GroupBuyService(database: database, orders: orderService, logger: logger),
        ]
        deviceGateway = DeviceGateway(
            configuration: DeviceGateway.Configuration(
                host: configuration.deviceHost, port: configuration.devicePort,
                certificatePath: configuration.deviceCertificatePath, keyPath: configuration.deviceKeyPath,
                heartbeatSeconds: configuration.deviceHeartbeatSeconds, maxConnections: configuration.deviceMaxConnections),
            database: database, redis: redis, tenants: tenants, logger: logger,
            handler: DeviceEventHandlers([ParkingGate(), FireHandler(), MeterHandler(), ElevatorHandler(), TelemetryHandler()]),
            validate: { message throws(LinliError) in try InputGuard.check(message) })
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: configuration.host, port: configuration.port),
            transportSecurity: .tls(
                certificateChain: [.file(path: configuration.tlsCertificatePath, format: .pem)],
                privateKey: .file(path: configuration.tlsKeyPath, format: .pem)),
            config: .defaults { config in
                config.http2.maxConcurrentStreams = configuration.maxConcurrentStreams
                config.rpc.maxRequestPayloadSize = configuration.maxRequestBytes
            })
        server = GRPCServer(
            transport: transport, services: services,
            interceptors: [
                ObservabilityInterceptor(logger: logger),
                AdmissionInterceptor(authenticator: authenticator, limiter: limiter),
                InputInterceptor(),
            ])
    }

    /// The migration runner over the bundled migrations.
    public var migrations: MigrationRunner { provisioner.runner }

    /// The services to run, in start order.
    public var services: [any Service] {
        [PostgresService(client: database.client), redis, healthProbe, tenantChanges] + extraServices
            + [
                rollup, patrolScheduler, outboxRelay, prepaidOffset, alarmEscalation, smartMeters, telemetryPartitions, broadcastSync, meterCredits,
                pointsExpiry, orderTimers, tenantSpares, deviceGateway,
                GRPCServerService(server: server, logger: logger, exitAfter: exitAfterShutdown),
            ]
    }

    /// A group running every service, shut down gracefully on SIGTERM and SIGINT.
    /// Shutdown is bounded: calls still running 7 s after the signal are cancelled, and a
    /// serving process exits 9 s after the signal whatever still runs (`exitAfterShutdown`).
    public func serviceGroup() -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(7)
        return ServiceGroup(configuration: configuration)
    }

    /// Only the storage clients, for CLI commands that need no server.
    public func withStorage<R: Sendable>(_ body: @Sendable () async throws -> R) async throws -> R {
        try await withThrowingTaskGroup(of: R?.self) { group in
            group.addTask {
                await database.client.run(); return nil
            }
            defer { group.cancelAll(); redis.close() }
            // Let the pool's run loop start before the first lease, which it would log as early.
            try await Task.sleep(for: .milliseconds(20))
            let result = try await body()
            return result
        }
    }
}

/// Runs the PostgreSQL pool until graceful shutdown.
struct PostgresService: Service {
    let client: PostgresClient
    func run() async throws {
        await cancelWhenGracefulShutdown { await client.run() }
    }
}

/// Serves gRPC until graceful shutdown, then drains in-flight calls before returning.
struct GRPCServerService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let logger: Logger
    /// For `linli serve` only: how long after the signal the process exits whatever runs.
    var exitAfter: Duration?
    func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.serve()
        } onGracefulShutdown: {
            logger.info("draining gRPC calls")
            server.beginGracefulShutdown()
            // The service group cancels calls still running after 7 s; should anything still
            // hold the process after that (a task that ignores cancellation), it exits anyway.
            if let exitAfter {
                Thread.detachNewThread { [logger] in
                    Thread.sleep(forTimeInterval: TimeInterval(exitAfter.components.seconds))
                    logger.critical("shutdown did not finish in time; exiting")
                    exit(1)
                }
            }
        }
    }
}
