import LinliCore
import LinliTenancy
import Logging

/// Group commit for device events: batches of a tenant's devices that arrive while that
/// tenant's transactions are busy wait here and go into the next transaction together, up to
/// `maxBatches` at a time and `maxRunning` transactions per tenant at once. A thousand devices
/// sending small batches cost tens of commits a second instead of a thousand. Every batch still
/// gets its own answer, after the COMMIT that made it durable.
public actor IngestQueue {
    public typealias Result = DeviceStore.Stored?

    private struct Job {
        let batch: DeviceStore.Batch
        let done: CheckedContinuation<Result, any Error>
    }

    private let store: DeviceStore
    private let handler: (any DeviceEventHandler)?
    private let logger: Logger
    private let maxBatches: Int
    private let maxRunning: Int
    private var waiting: [TenantID: [Job]] = [:]
    private var running: [TenantID: Int] = [:]

    public init(store: DeviceStore, handler: (any DeviceEventHandler)?, logger: Logger, maxBatches: Int = 64, maxRunning: Int = 4) {
        self.store = store
        self.handler = handler
        self.logger = logger
        self.maxBatches = maxBatches
        self.maxRunning = maxRunning
    }

    /// Stores `batch` in a transaction shared with other devices of the tenant.
    public func ingest(_ batch: DeviceStore.Batch, tenant: TenantRef) async throws -> Result {
        try await withCheckedThrowingContinuation { done in
            waiting[tenant.id, default: []].append(Job(batch: batch, done: done))
            if running[tenant.id, default: 0] < maxRunning {
                running[tenant.id, default: 0] += 1
                Task { await self.drain(tenant) }
            }
        }
    }

    private func drain(_ tenant: TenantRef) async {
        while let queued = waiting[tenant.id], !queued.isEmpty {
            let jobs = Array(queued.prefix(maxBatches))
            waiting[tenant.id] = Array(queued.dropFirst(jobs.count))
            do {
                let results = try await store.ingest(jobs.map(\.batch), tenant: tenant, handler: handler, logger: logger)
                for (job, result) in zip(jobs, results) { job.done.resume(returning: result) }
            } catch {
                // One batch's statement failed the shared transaction: each on its own, so that
                // it fails alone.
                for job in jobs {
                    do {
                        job.done.resume(returning: try await store.ingest(job.batch, tenant: tenant, handler: handler, logger: logger))
                    } catch {
                        job.done.resume(throwing: error)
                    }
                }
            }
        }
        waiting[tenant.id] = nil
        running[tenant.id, default: 1] -= 1
        if running[tenant.id] == 0 { running[tenant.id] = nil }
    }
}
