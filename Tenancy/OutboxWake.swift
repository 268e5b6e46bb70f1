import Foundation
import Synchronization

/// Wakes this process's outbox relays for a tenant once a transaction that queued messages has
/// committed.
///
/// It replaces a `NOTIFY` sent from the writing transaction: PostgreSQL serializes every
/// committing transaction that has notified, across the whole cluster, on one lock held through
/// the commit's WAL flush, so every outbox write of every tenant queued behind that one lock
/// (measured with pgbench at 64 clients: a small write transaction 2,600 TPS; the same with an
/// outbox row and its NOTIFY 1,000 TPS). The relay of the process that wrote the message hands it
/// on at once; a message whose writer died before waking it waits for any server's sweep.
public final class OutboxWake: Sendable {
    public static let shared = OutboxWake()

    /// One relay's wake-ups: the tenant schemas committed since it last looked, and a bell that
    /// rings once however often they were added (a busy tenant costs one pass, not one per commit).
    public final class Subscription: Sendable {
        let schemas = Mutex<Set<String>>([])
        let bell: AsyncStream<Void>
        let ring: AsyncStream<Void>.Continuation

        init() {
            (bell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        }

        /// Rings once or more after `schemas` gained a schema; ends on `unsubscribe`.
        public var rings: AsyncStream<Void> { bell }

        /// The schemas committed since the last call, and none again until they are committed again.
        public func take() -> Set<String> {
            schemas.withLock { pending in
                defer { pending.removeAll() }
                return pending
            }
        }
    }

    private let subscribers = Mutex<[ObjectIdentifier: Subscription]>([:])

    /// A relay's subscription, until `unsubscribe`.
    public func subscribe() -> Subscription {
        let subscription = Subscription()
        subscribers.withLock { $0[ObjectIdentifier(subscription)] = subscription }
        return subscription
    }

    public func unsubscribe(_ subscription: Subscription) {
        subscribers.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(subscription)) }
        subscription.ring.finish()
    }

    /// Called by `Outbox.enqueue`: the current transaction has a message to hand on once it commits.
    static func noteQueued() {
        Database.marks?.outboxQueued.store(true, ordering: .relaxed)
    }

    /// Called by `Database` after the commit of a transaction of `schema` that queued messages.
    func committed(_ schema: String) {
        for subscription in subscribers.withLock({ Array($0.values) }) {
            subscription.schemas.withLock { _ = $0.insert(schema) }
            subscription.ring.yield()
        }
    }
}
