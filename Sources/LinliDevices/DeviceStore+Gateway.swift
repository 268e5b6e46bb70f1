import Foundation
import LinliAPI
import LinliCore
import LinliTenancy
import Logging
import NIOCore
import PostgresNIO

/// A module that acts on device events inside the transaction that stores them (parking turns
/// plate reads into sessions and gate decisions). It sees each event once: only events stored
/// new by this transaction, never a replay.
public protocol DeviceEventHandler: Sendable {
    /// Whether `handle` wants this event.
    func handles(_ event: Linli_Device_V1_Event) -> Bool
    /// Acts on the events (in increasing `seq`) in the storing transaction; returns what to send
    /// the device after COMMIT.
    func handle(_ events: [DeviceStore.IncomingEvent], device: DeviceID, on connection: PostgresConnection, logger: Logger)
        async throws -> [Linli_Device_V1_ServerMessage]
    /// Several devices' events in one storing transaction (the group commit); returns each
    /// group's replies, in the groups' order. By default each group on its own; a handler whose
    /// work is the same for every device (telemetry) does them in a few set-based statements.
    func handle(_ groups: [DeviceEventGroup], on connection: PostgresConnection, logger: Logger) async throws -> [[Linli_Device_V1_ServerMessage]]
}

/// One device's new events, as a handler gets them.
public struct DeviceEventGroup: Sendable {
    public var device: DeviceID
    public var events: [DeviceStore.IncomingEvent]

    public init(device: DeviceID, events: [DeviceStore.IncomingEvent]) {
        self.device = device
        self.events = events
    }
}

extension DeviceEventHandler {
    public func handle(_ groups: [DeviceEventGroup], on connection: PostgresConnection, logger: Logger) async throws
        -> [[Linli_Device_V1_ServerMessage]]
    {
        var replies: [[Linli_Device_V1_ServerMessage]] = []
        for group in groups { replies.append(try await handle(group.events, device: group.device, on: connection, logger: logger)) }
        return replies
    }
}

/// What the gateway reads and writes for a connected device. Every write is conditional on the
/// device still being active under the credential generation it authenticated with, so a
/// revoked device or a rotated secret stops a connection at its next write.
extension DeviceStore {
    /// What a Hello is checked against.
    public struct Credential: Sendable {
        public var storedKey: [UInt8]
        public var status: String
        public var generation: Int32
    }

    /// The device's credential in `tenant`, nil when there is no such device.
    public func credential(_ id: DeviceID, tenant: TenantRef, logger: Logger) async throws(LinliError) -> Credential? {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                "SELECT stored_key, status, generation FROM devices WHERE id = \(id.uuid)", logger: logger)
            for try await (key, status, generation) in rows.decode((ByteBuffer, String, Int32).self) {
                return Credential(storedKey: Array(buffer: key), status: status, generation: generation)
            }
            return nil
        }
    }

    /// Marks the device online after a Hello and clears its offline alarm; returns its commit
    /// point, nil when the device changed since the credential was read.
    public func connected(_ id: DeviceID, generation: Int32, firmware: String, tenant: TenantRef, logger: Logger)
        async throws(LinliError) -> Int64?
    {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                UPDATE devices SET online = true, last_seen_at = now(), firmware = \(firmware)
                WHERE id = \(id.uuid) AND status = 'active' AND generation = \(generation)
                RETURNING commit_point
                """, logger: logger)
            var point: Int64?
            for try await value in rows.decode(Int64.self) { point = value }
            guard let point else { return nil }
            try await connection.run(
                """
                UPDATE device_alarms SET status = 'cleared', cleared_at = now()
                WHERE device_id = \(id.uuid) AND type = 'device.offline' AND status <> 'cleared'
                """, logger: logger)
            return point
        }
    }

    /// An event ready to store.
    public struct IncomingEvent: Sendable {
        public var seq: Int64
        public var kind: String
        public var deviceTime: Date
        public var late: Bool
        public var body: ByteBuffer
        /// The event as the device sent it.
        public var event: Linli_Device_V1_Event

        public init(seq: Int64, kind: String, deviceTime: Date, late: Bool, body: ByteBuffer, event: Linli_Device_V1_Event) {
            self.seq = seq
            self.kind = kind
            self.deviceTime = deviceTime
            self.late = late
            self.body = body
            self.event = event
        }
    }

    /// What a batch's transaction answered: the new commit point, how many events were new,
    /// and what the event handlers want sent to the device once the transaction has committed.
    public struct Stored: Sendable {
        public var commitPoint: Int64
        public var stored: Int
        public var replies: [Linli_Device_V1_ServerMessage]
    }

    /// One device's batch, ready to store.
    public struct Batch: Sendable {
        public var device: DeviceID
        public var generation: Int32
        public var events: [IncomingEvent]
        public var access: [AccessLog.Row]
        /// The commit point after it (also covering events refused for good).
        public var upTo: Int64

        public init(device: DeviceID, generation: Int32, events: [IncomingEvent], access: [AccessLog.Row], upTo: Int64) {
            self.device = device
            self.generation = generation
            self.events = events
            self.access = access
            self.upTo = upTo
        }
    }

    /// Stores each event once and moves the commit point to `upTo`; returns the new commit point
    /// and how many events were new, or nil when the device is no longer active under
    /// `generation` (nothing is stored then).
    public func ingest(_ batch: Batch, tenant: TenantRef, handler: (any DeviceEventHandler)? = nil, logger: Logger)
        async throws(LinliError) -> Stored?
    {
        try await database.tenantTransaction(tenant) { connection in
            try await Self.ingest(batch, handler: handler, on: connection, logger: logger)
        }
    }

    /// Several devices' batches in one transaction: one commit (one WAL flush) for all of them,
    /// stored by one statement and handed to the handler together. Each batch's answer is its
    /// own; a statement that fails fails them all, and the caller retries them one by one.
    func ingest(_ batches: [Batch], tenant: TenantRef, handler: (any DeviceEventHandler)?, logger: Logger) async throws(LinliError) -> [Stored?] {
        try await database.tenantTransaction(tenant) { connection in
            // Two batches of one device (a connection that did not wait for its answer) keep
            // their order one statement at a time.
            guard batches.count > 1, Set(batches.map(\.device)).count == batches.count else {
                var results: [Stored?] = []
                for batch in batches { results.append(try await Self.ingest(batch, handler: handler, on: connection, logger: logger)) }
                return results
            }
            return try await Self.ingestTogether(batches, handler: handler, on: connection, logger: logger)
        }
    }

    /// Batches of distinct devices: the commit points moved and the events stored in one
    /// statement, then every fresh event handled in one call.
    static func ingestTogether(_ batches: [Batch], handler: (any DeviceEventHandler)?, on connection: PostgresConnection, logger: Logger)
        async throws -> [Stored?]
    {
        let events = batches.flatMap { batch in batch.events.map { (batch.device.uuid, $0) } }
        let rows = try await connection.run(
            """
            WITH b AS (
                SELECT * FROM unnest(\(batches.map(\.device.uuid)), \(batches.map(\.generation)), \(batches.map(\.upTo))) AS b(id, generation, up_to)
            ), d AS (
                UPDATE devices SET commit_point = GREATEST(devices.commit_point, b.up_to), last_seen_at = now(), online = true
                FROM b WHERE devices.id = b.id AND devices.status = 'active' AND devices.generation = b.generation
                RETURNING devices.id, devices.commit_point
            ), ins AS (
                INSERT INTO device_events (device_id, seq, kind, device_time, late, body)
                SELECT e.device_id, e.seq, e.kind, e.t, e.late, e.body
                FROM unnest(\(events.map(\.0)), \(events.map(\.1.seq)), \(events.map(\.1.kind)), \(events.map(\.1.deviceTime)),
                            \(events.map(\.1.late)), \(events.map(\.1.body))) AS e(device_id, seq, kind, t, late, body)
                WHERE e.device_id IN (SELECT id FROM d)
                ON CONFLICT (device_id, seq) DO NOTHING
                RETURNING device_id, seq
            )
            SELECT d.id, d.commit_point, coalesce((SELECT array_agg(ins.seq) FROM ins WHERE ins.device_id = d.id), '{}') FROM d
            """, logger: logger)
        var stored: [UUID: (point: Int64, new: [Int64])] = [:]
        for try await (id, point, new) in rows.decode((UUID, Int64, [Int64]).self) { stored[id] = (point, new) }
        var groups: [DeviceEventGroup] = []
        var groupOf: [Int: Int] = [:]
        for (index, batch) in batches.enumerated() {
            guard let (_, new) = stored[batch.device.uuid] else { continue }
            try await AccessLog.record(batch.access, device: batch.device, on: connection, logger: logger)
            guard let handler, !new.isEmpty else { continue }
            let fresh = Set(new)
            let handled = batch.events.filter { fresh.contains($0.seq) && handler.handles($0.event) }
            if !handled.isEmpty {
                groupOf[index] = groups.count
                groups.append(DeviceEventGroup(device: batch.device, events: handled))
            }
        }
        let replies = groups.isEmpty ? [] : try await handler?.handle(groups, on: connection, logger: logger) ?? []
        return batches.enumerated().map { index, batch in
            guard let (point, new) = stored[batch.device.uuid] else { return nil }
            return Stored(
                commitPoint: point, stored: new.count, replies: groupOf[index].map { replies.indices.contains($0) ? replies[$0] : [] } ?? [])
        }
    }

    static func ingest(_ batch: Batch, handler: (any DeviceEventHandler)?, on connection: PostgresConnection, logger: Logger) async throws
        -> Stored?
    {
        let events = batch.events
        let device = batch.device
        let rows = try await connection.run(
            """
            WITH d AS (
                UPDATE devices SET commit_point = GREATEST(commit_point, \(batch.upTo)), last_seen_at = now(), online = true
                WHERE id = \(device.uuid) AND status = 'active' AND generation = \(batch.generation)
                RETURNING commit_point
            ), ins AS (
                INSERT INTO device_events (device_id, seq, kind, device_time, late, body)
                SELECT \(device.uuid), e.seq, e.kind, e.t, e.late, e.body
                FROM unnest(\(events.map(\.seq)), \(events.map(\.kind)), \(events.map(\.deviceTime)),
                            \(events.map(\.late)), \(events.map(\.body))) AS e(seq, kind, t, late, body)
                WHERE EXISTS (SELECT 1 FROM d)
                ON CONFLICT (device_id, seq) DO NOTHING
                RETURNING seq
            )
            SELECT (SELECT commit_point FROM d), (SELECT coalesce(array_agg(seq), '{}') FROM ins)
            """, logger: logger)
        var result: (Int64, [Int64])?
        for try await (point, stored) in rows.decode((Int64?, [Int64]).self) {
            if let point { result = (point, stored) }
        }
        guard let (point, new) = result else { return nil }
        try await AccessLog.record(batch.access, device: device, on: connection, logger: logger)
        var replies: [Linli_Device_V1_ServerMessage] = []
        if let handler, !new.isEmpty {
            let fresh = Set(new)
            let handled = events.filter { fresh.contains($0.seq) && handler.handles($0.event) }
            if !handled.isEmpty {
                replies = try await handler.handle(handled, device: device, on: connection, logger: logger)
            }
        }
        return Stored(commitPoint: point, stored: new.count, replies: replies)
    }

    /// Marks devices offline that Redis last saw at the given times, when they are online and
    /// not seen since `silentSince` (a device that reconnected meanwhile stays online), raises one
    /// `device.offline` alarm each and tells the community's managers; returns the devices it marked.
    public func markOffline(_ devices: [(DeviceID, Date)], silentSince: Date, tenant: TenantRef, logger: Logger)
        async throws(LinliError) -> [DeviceID]
    {
        try await database.tenantTransaction(tenant) { connection in
            let rows = try await connection.run(
                """
                WITH off AS (
                    UPDATE devices d SET online = false, last_seen_at = GREATEST(d.last_seen_at, s.seen)
                    FROM unnest(\(devices.map(\.0.uuid)), \(devices.map(\.1))) AS s(id, seen)
                    WHERE d.id = s.id AND d.online AND (d.last_seen_at IS NULL OR d.last_seen_at < \(silentSince))
                    RETURNING d.id, d.community_id, d.name
                ), alarm AS (
                    INSERT INTO device_alarms (id, device_id, community_id, type, severity, detail)
                    SELECT uuid_v7(), id, community_id, 'device.offline', 'major', name || ' stopped answering' FROM off
                    ON CONFLICT (device_id, type, source) WHERE status <> 'cleared' DO NOTHING
                    RETURNING id, device_id
                )
                SELECT off.id, off.community_id, off.name, alarm.id, u.id
                FROM off LEFT JOIN alarm ON alarm.device_id = off.id
                LEFT JOIN user_communities uc ON uc.community_id = off.community_id AND alarm.id IS NOT NULL
                LEFT JOIN users u ON u.id = uc.user_id AND u.role = 'manager' AND u.status = 'active'
                """, logger: logger)
            var marked: Set<DeviceID> = []
            for try await (id, community, name, alarm, manager) in rows.decode((UUID, UUID, String, UUID?, UUID?).self) {
                marked.insert(DeviceID(id))
                guard let alarm, let manager else { continue }
                var message = Linli_Events_V1_DeviceAlarmRaised()
                message.alarmID = alarm.uuidString.lowercased()
                message.deviceID = id.uuidString.lowercased()
                message.communityID = community.uuidString.lowercased()
                message.type = "device.offline"
                message.detail = "\(name) stopped answering"
                try await Outbox.enqueue(Topic.deviceAlarmRaised, message, to: UserID(manager), on: connection, logger: logger)
            }
            return Array(marked)
        }
    }
}

/// Several modules' handlers as one: each gets the events it wants, in order, and the replies
/// are sent in the order of the handlers.
public struct DeviceEventHandlers: DeviceEventHandler {
    let handlers: [any DeviceEventHandler]

    public init(_ handlers: [any DeviceEventHandler]) { self.handlers = handlers }

    public func handles(_ event: Linli_Device_V1_Event) -> Bool { handlers.contains { $0.handles(event) } }

    public func handle(_ events: [DeviceStore.IncomingEvent], device: DeviceID, on connection: PostgresConnection, logger: Logger)
        async throws -> [Linli_Device_V1_ServerMessage]
    {
        try await handle([DeviceEventGroup(device: device, events: events)], on: connection, logger: logger).first ?? []
    }

    public func handle(_ groups: [DeviceEventGroup], on connection: PostgresConnection, logger: Logger) async throws
        -> [[Linli_Device_V1_ServerMessage]]
    {
        var replies = [[Linli_Device_V1_ServerMessage]](repeating: [], count: groups.count)
        for handler in handlers {
            var indices: [Int] = []
            var mine: [DeviceEventGroup] = []
            for (index, group) in groups.enumerated() {
                let events = group.events.filter { handler.handles($0.event) }
                if events.isEmpty { continue }
                indices.append(index)
                mine.append(DeviceEventGroup(device: group.device, events: events))
            }
            guard !mine.isEmpty else { continue }
            for (index, answer) in zip(indices, try await handler.handle(mine, on: connection, logger: logger)) { replies[index] += answer }
        }
        return replies
    }
}
