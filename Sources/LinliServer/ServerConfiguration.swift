import Configuration
import LinliRedis
import NIOCore

/// Everything the server reads at start-up, from environment variables (`LINLI_*`), with
/// defaults that run the local stack of `Deploy/run`.
///
/// | key (env var)                         | default                 |
/// |---------------------------------------|-------------------------|
/// | `LINLI_GRPC_HOST` / `LINLI_GRPC_PORT` | 127.0.0.1 / 8443        |
/// | `LINLI_TLS_CERTIFICATE` / `LINLI_TLS_KEY` | .data/tls/server.crt / .data/tls/server.key |
/// | `LINLI_GRPC_MAX_CONCURRENT_STREAMS`   | 256                     |
/// | `LINLI_GRPC_MAX_REQUEST_BYTES`        | 1048576                 |
/// | `LINLI_POSTGRES_HOST` / `_PORT` / `_USER` / `_PASSWORD` / `_DATABASE` | 127.0.0.1 / 55432 / linli / linli / linli |
/// | `LINLI_POSTGRES_MAX_CONNECTIONS`      | 20                      |
/// | `LINLI_POSTGRES_TRANSACTION_TIMEOUT_SECONDS` | 15 (a call's transaction, lease included; 0: none) |
/// | `LINLI_REDIS_HOST` / `LINLI_REDIS_PORT` / `LINLI_REDIS_CONNECTIONS` | 127.0.0.1 / 56379 / 4 |
/// | `LINLI_SESSION_IDLE_SECONDS` / `LINLI_SESSION_MAX_SECONDS` | 1800 / 604800 |
/// | `LINLI_RATELIMIT_<CLASS>_PER_SECOND` / `_BURST` (class: read, write, login) | 100/200, 20/40, 2/10 |
/// | `LINLI_SCRYPT_LOG_ROUNDS`             | 15                      |
/// | `LINLI_ROLLUP_INTERVAL_SECONDS`       | 5                       |
/// | `LINLI_MIGRATION_PARALLELISM`         | 4                       |
/// | `LINLI_TENANT_SPARES`                 | 2 (spare schemas kept ready for new tenants; 0: none) |
/// | `LINLI_METRICS_HOST` / `LINLI_METRICS_PORT` | 127.0.0.1 / 9464 (Prometheus `/metrics`; port 0: off) |
/// | `LINLI_PAGE_TOKEN_SECRET`             | none: a random key per process (set the same on every server) |
/// | `LINLI_DEVICE_HOST` / `LINLI_DEVICE_PORT` | 127.0.0.1 / 8444 (the device gateway, TLS) |
/// | `LINLI_DEVICE_TLS_CERTIFICATE` / `LINLI_DEVICE_TLS_KEY` | the gRPC server's |
/// | `LINLI_DEVICE_HEARTBEAT_SECONDS`      | 30 (silent for three periods: offline) |
/// | `LINLI_DEVICE_MAX_CONNECTIONS`        | 20000                   |
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var tlsCertificatePath: String
    public var tlsKeyPath: String
    public var maxConcurrentStreams: Int
    public var maxRequestBytes: Int
    public var postgres: PostgresSettings
    public var redis: RedisClient.Configuration
    public var sessionIdleSeconds: Int
    public var sessionMaxSeconds: Int
    public var rateLimits: [RateClass: RateLimit]
    public var scryptLogRounds: Int
    public var rollupIntervalSeconds: Int
    public var migrationParallelism: Int
    /// Spare tenant schemas kept ready, so provisioning is a rename (`TenantSpareJob`).
    public var tenantSpares: Int
    /// Where `linli serve` exports Prometheus metrics; port 0 turns it off.
    public var metricsHost: String
    public var metricsPort: Int
    /// The secret that signs page tokens; empty: a random key per process.
    public var pageTokenSecret: String
    /// The device gateway's listener.
    public var deviceHost: String
    public var devicePort: Int
    public var deviceCertificatePath: String
    public var deviceKeyPath: String
    public var deviceHeartbeatSeconds: Int
    public var deviceMaxConnections: Int
    /// Where uploaded images are kept (the local-disk object store).
    public var objectsPath: String

    /// PostgreSQL connection settings.
    public struct PostgresSettings: Sendable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String
        public var database: String
        public var maxConnections: Int
        public var transactionTimeoutSeconds: Int
        /// Distinct tenant schemas a pooled connection serves before it is retired (0: no limit).
        public var maxSchemasPerConnection: Int
    }

    /// Reads the configuration; throws naming every key whose value is unusable.
    public init(reader root: ConfigReader) throws {
        let config = root.scoped(to: "linli")
        var problems: [String] = []
        func positive(_ value: Int, env: String) -> Int {
            if value <= 0 { problems.append("\(env) must be a positive number") }
            return value
        }
        host = config.string(forKey: "grpc.host", default: "127.0.0.1")
        port = config.int(forKey: "grpc.port", default: 8443)
        if !(0...65535).contains(port) { problems.append("LINLI_GRPC_PORT must be 0...65535") }
        tlsCertificatePath = config.string(forKey: "tls.certificate", default: ".data/tls/server.crt")
        tlsKeyPath = config.string(forKey: "tls.key", default: ".data/tls/server.key")
        maxConcurrentStreams = positive(config.int(forKey: "grpc.max.concurrent.streams", default: 256), env: "LINLI_GRPC_MAX_CONCURRENT_STREAMS")
        maxRequestBytes = positive(config.int(forKey: "grpc.max.request.bytes", default: 1 << 20), env: "LINLI_GRPC_MAX_REQUEST_BYTES")
        postgres = PostgresSettings(
            host: config.string(forKey: "postgres.host", default: "127.0.0.1"),
            port: config.int(forKey: "postgres.port", default: 55432),
            user: config.string(forKey: "postgres.user", default: "linli"),
            password: config.string(forKey: "postgres.password", isSecret: true, default: "linli"),
            database: config.string(forKey: "postgres.database", default: "linli"),
            maxConnections: positive(config.int(forKey: "postgres.max.connections", default: 20), env: "LINLI_POSTGRES_MAX_CONNECTIONS"),
            transactionTimeoutSeconds: config.int(forKey: "postgres.transaction.timeout.seconds", default: 15),
            maxSchemasPerConnection: config.int(forKey: "postgres.connection.max.schemas", default: 200))
        if postgres.maxSchemasPerConnection < 0 { problems.append("LINLI_POSTGRES_CONNECTION_MAX_SCHEMAS must be 0 or more") }
        if !(0...3600).contains(postgres.transactionTimeoutSeconds) {
            problems.append("LINLI_POSTGRES_TRANSACTION_TIMEOUT_SECONDS must be 0...3600")
        }
        redis = RedisClient.Configuration(
            host: config.string(forKey: "redis.host", default: "127.0.0.1"),
            port: config.int(forKey: "redis.port", default: 56379),
            connections: positive(config.int(forKey: "redis.connections", default: 4), env: "LINLI_REDIS_CONNECTIONS"))
        sessionIdleSeconds = positive(config.int(forKey: "session.idle.seconds", default: 1800), env: "LINLI_SESSION_IDLE_SECONDS")
        sessionMaxSeconds = positive(config.int(forKey: "session.max.seconds", default: 7 * 86400), env: "LINLI_SESSION_MAX_SECONDS")
        var limits: [RateClass: RateLimit] = [:]
        for rateClass in RateClass.allCases {
            let scope = "ratelimit.\(rateClass.rawValue)"
            let perSecond = config.double(forKey: ConfigKey(stringLiteral: scope + ".per.second"), default: rateClass.defaultLimit.perSecond)
            let burst = config.int(forKey: ConfigKey(stringLiteral: scope + ".burst"), default: rateClass.defaultLimit.burst)
            if perSecond <= 0 { problems.append("LINLI_RATELIMIT_\(rateClass.rawValue.uppercased())_PER_SECOND must be positive") }
            if burst <= 0 { problems.append("LINLI_RATELIMIT_\(rateClass.rawValue.uppercased())_BURST must be positive") }
            limits[rateClass] = RateLimit(perSecond: perSecond, burst: burst)
        }
        rateLimits = limits
        scryptLogRounds = config.int(forKey: "scrypt.log.rounds", default: 15)
        if !(10...20).contains(scryptLogRounds) { problems.append("LINLI_SCRYPT_LOG_ROUNDS must be 10...20") }
        rollupIntervalSeconds = positive(config.int(forKey: "rollup.interval.seconds", default: 5), env: "LINLI_ROLLUP_INTERVAL_SECONDS")
        migrationParallelism = positive(config.int(forKey: "migration.parallelism", default: 4), env: "LINLI_MIGRATION_PARALLELISM")
        tenantSpares = config.int(forKey: "tenant.spares", default: 2)
        if !(0...100).contains(tenantSpares) { problems.append("LINLI_TENANT_SPARES must be 0...100") }
        metricsHost = config.string(forKey: "metrics.host", default: "127.0.0.1")
        metricsPort = config.int(forKey: "metrics.port", default: 9464)
        if !(0...65535).contains(metricsPort) { problems.append("LINLI_METRICS_PORT must be 0...65535") }
        pageTokenSecret = config.string(forKey: "page.token.secret", isSecret: true, default: "")
        if !pageTokenSecret.isEmpty && pageTokenSecret.utf8.count < 16 {
            problems.append("LINLI_PAGE_TOKEN_SECRET must be at least 16 characters")
        }
        deviceHost = config.string(forKey: "device.host", default: "127.0.0.1")
        devicePort = config.int(forKey: "device.port", default: 8444)
        if !(0...65535).contains(devicePort) { problems.append("LINLI_DEVICE_PORT must be 0...65535") }
        deviceCertificatePath = config.string(forKey: "device.tls.certificate", default: tlsCertificatePath)
        deviceKeyPath = config.string(forKey: "device.tls.key", default: tlsKeyPath)
        deviceHeartbeatSeconds = config.int(forKey: "device.heartbeat.seconds", default: 30)
        if !(1...3600).contains(deviceHeartbeatSeconds) { problems.append("LINLI_DEVICE_HEARTBEAT_SECONDS must be 1...3600") }
        deviceMaxConnections = positive(config.int(forKey: "device.max.connections", default: 20_000), env: "LINLI_DEVICE_MAX_CONNECTIONS")
        objectsPath = config.string(forKey: "objects.path", default: ".data/objects")
        if !problems.isEmpty { throw ConfigurationProblem(problems: problems) }
    }

    /// The configuration from the process environment.
    public static func fromEnvironment() throws -> ServerConfiguration {
        try ServerConfiguration(reader: ConfigReader(provider: EnvironmentVariablesProvider()))
    }
}

/// Start-up configuration errors, all of them at once.
public struct ConfigurationProblem: Error, CustomStringConvertible {
    /// One line per bad key.
    public let problems: [String]
    public var description: String { "configuration: " + problems.joined(separator: "; ") }
}
