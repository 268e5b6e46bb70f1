import LinliCore
import Logging
import ServiceLifecycle

/// Keeps `TenantProvisioner`'s pool of spare schemas at `target`, so that a new tenant is a
/// rename, not 200 ms of DDL while the caller waits. Several servers may refill at once and
/// overshoot by one spare each; a spare is only a few catalogue rows.
public struct TenantSpareJob: Service, Sendable {
    let provisioner: TenantProvisioner
    let target: Int
    let interval: Duration
    let logger: Logger

    public init(provisioner: TenantProvisioner, target: Int, interval: Duration = .seconds(5), logger: Logger) {
        self.provisioner = provisioner
        self.target = target
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        // A service that returns ends the whole service group: with no pool to keep, it waits.
        guard target > 0 else {
            try? await gracefulShutdown()
            return
        }
        await PeriodicJob.run(every: interval, first: .atStart, name: "tenant_spares", logger: logger) { try await refill() }
    }

    /// Makes spares until the pool holds `target`; returns how many it made.
    @discardableResult
    public func refill() async throws(LinliError) -> Int {
        var made = 0
        while try await provisioner.spares() < target, !Task.isCancelled {
            try await provisioner.makeSpare()
            made += 1
        }
        return made
    }
}
