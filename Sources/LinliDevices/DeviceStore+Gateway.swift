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
            let rows = try await connection.query(
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
            let rows = try await connection.query(
                """
                UPDATE devices SET online = true, last_seen_at = now(), firmware = \(firmware)
                WHERE id = \(id.uuid) AND status = 'active' AND generation = \(generation)
                RETURNING commit_point
                """, logger: logger)
            var point: Int64?
            for try await value in rows.decode(Int64.self) { point = value }
            guard let point else { return nil }
            try await connection.query(
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

    /// Several devices' batches in one transaction: one commit (one WAL flush) for all of them.
    /// Each batch's answer is its own; a statement that fails fails them all, and the caller
    /// retries them one by one.
    func ingest(_ batches: [Batch], tenant: TenantRef, handler: (any DeviceEventHandler)?, logger: Logger) async throws(LinliError) -> [Stored?] {
        try await database.tenantTransaction(tenant) { connection in
            var results: [Stored?] = []
            for batch in batches { results.append(try await Self.ingest(batch, handler: handler, on: connection, logger: logger)) }
            return results
        }
    }

    static func ingest(_ batch: Batch, handler: (any DeviceEventHandler)?, on connection: PostgresConnection, logger: Logger) async throws
        -> Stored?
    {
        let events = batch.events
        let device = batch.device
        let rows = try await connection.query(
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
            let rows = try await connection.query(
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
        var replies: [Linli_Device_V1_ServerMessage] = []
        for handler in handlers {
            let mine = events.filter { handler.handles($0.event) }
            if !mine.isEmpty { replies += try await handler.handle(mine, device: device, on: connection, logger: logger) }
        }
        return replies
    }
}
