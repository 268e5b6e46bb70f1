import ArgumentParser
import LinliServer
import Metrics
import Prometheus

/// `linli serve`: runs the gRPC server until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve gRPC over TLS until SIGTERM/SIGINT, then drain in-flight calls and exit.")

    func run() async throws {
        var app = try Runtime.application()
        app.exitAfterShutdown = .seconds(9)
        // Metrics go to Prometheus only in a serving process (the bootstrap is once per process).
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        if app.configuration.metricsPort > 0 {
            app.extraServices = [
                MetricsEndpoint(
                    registry: registry, host: app.configuration.metricsHost,
                    port: app.configuration.metricsPort, logger: app.logger)
            ]
        }
        try await app.serviceGroup().run()
    }
}

/// `linli migrate`: brings the platform schema and every tenant schema up to date.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending migrations to the platform schema and every tenant schema.")

    func run() async throws {
        let app = try Runtime.application()
        let report = try await app.withStorage {
            try await app.migrations.migratePlatform()
            return try await app.migrations.migrateTenants()
        }
        print("platform schema up to date; \(report.migrationsApplied) tenant migrations applied to \(report.tenantsMigrated) tenants")
    }
}
