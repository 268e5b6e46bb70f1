import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import LinliDevices
import LinliTenancy
import Logging
import PostgresNIO
import ServiceLifecycle
import SwiftProtobuf

/// Who plays when broadcasts meet at a terminal, pure — the rule every terminal follows (TOA):
/// the smaller priority number plays (1, emergency, pre-empts everything); among equal
/// priorities the one that started first keeps playing and the later one waits; a pre-empted
/// or waiting programme plays its remaining time afterwards (resumes).
public enum BroadcastArbiter {
    public struct Item: Sendable, Equatable {
        public var id: String
        public var priority: Int
        public var start: Int
        public var duration: Int

        public init(id: String, priority: Int, start: Int, duration: Int) {
            self.id = id
            self.priority = priority
            self.start = start
            self.duration = duration
        }
    }

    public struct Segment: Sendable, Equatable {
        public var id: String
        public var from: Int
        public var to: Int

        public init(id: String, from: Int, to: Int) {
            self.id = id
            self.from = from
            self.to = to
        }
    }

    /// What plays from the first start until everything has played, as segments in time order
    /// (times in seconds).
    public static func timeline(_ items: [Item]) -> [Segment] {
        var left = Dictionary(items.map { ($0.id, max(0, $0.duration)) }, uniquingKeysWith: { a, _ in a })
        let order = items.sorted { ($0.start, $0.id) < ($1.start, $1.id) }
        var segments: [Segment] = []
        guard var now = order.first?.start else { return [] }
        for _ in 0..<10_000 {
            let ready = order.filter { $0.start <= now && left[$0.id, default: 0] > 0 }
            guard let playing = ready.min(by: { ($0.priority, $0.start, $0.id) < ($1.priority, $1.start, $1.id) }) else {
                guard let next = order.first(where: { $0.start > now && left[$0.id, default: 0] > 0 }) else { break }
                now = next.start
                continue
            }
            // It plays until it ends or a more urgent one starts.
            let end = now + left[playing.id, default: 0]
            let interrupt = order.filter { $0.start > now && $0.start < end && $0.priority < playing.priority }.map(\.start).min()
            let to = interrupt ?? end
            if let last = segments.last, last.id == playing.id, last.to == now {
                segments[segments.count - 1].to = to
            } else {
                segments.append(Segment(id: playing.id, from: now, to: to))
            }
            left[playing.id, default: 0] -= to - now
            now = to
        }
        return segments
    }
}

/// Zones, tasks and each terminal's copy, in the caller's tenant transaction.
public struct BroadcastStore: Sendable {
    let devices: DeviceStore

    public init(database: Database) { devices = DeviceStore(database: database) }

    /// A command carrying a task to a terminal lives this long; the sync sends it again after.
    static let deliveryTTL: Duration = .seconds(86_400)

    public struct Task: Sendable {
        public var id: UUID
        public var community: CommunityID
        public var priority: Int
        public var source: String
        public var content: String
        public var repeatMode: String
        public var startsAt: Date?
        public var minuteOfDay: Int
        public var weekdays: Int
        public var durationSeconds: Int
        public var validUntil: Date?
        public var version: Int
        public var cancelled: Bool
        public var emergency: Bool
    }

    static let sources: [String: Linli_Device_V1_BroadcastSource] = ["file": .file, "tts": .tts, "live": .live]
    static let repeats: [String: Linli_Device_V1_BroadcastRepeat] = ["once": .once, "daily": .daily, "weekly": .weekly]

    static func command(_ t: Task) -> Linli_Device_V1_Command {
        var command = Linli_Device_V1_Command()
        if t.cancelled {
            command.cancelBroadcast = .with { $0.taskID = t.id.uuidString.lowercased() }
            return command
        }
        command.broadcast = .with {
            $0.taskID = t.id.uuidString.lowercased()
            $0.version = UInt32(clamping: t.version)
            $0.priority = UInt32(clamping: t.priority)
            $0.source = sources[t.source] ?? .tts
            $0.content = t.content
            $0.repeat = repeats[t.repeatMode] ?? .once
            $0.startsAtMs = t.startsAt.map { Int64(exactly: ($0.timeIntervalSince1970 * 1000).rounded(.down)) ?? 0 } ?? 0
            $0.minuteOfDay = UInt32(clamping: t.minuteOfDay)
            $0.weekdays = UInt32(clamping: t.weekdays)
            $0.durationSeconds = UInt32(clamping: t.durationSeconds)
            $0.validUntilMs = t.validUntil.map { Int64(exactly: ($0.timeIntervalSince1970 * 1000).rounded(.down)) ?? 0 } ?? 0
        }
        return command
    }

    public func createZone(
        community: CommunityID, name: String, devices ids: [DeviceID], for principal: Principal, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> UUID {
        for id in ids {
            let device = try await devices.device(id, for: principal, on: connection, logger: logger)
            guard device.communityID == community else { throw LinliError.notFound("device") }
            guard device.kind == "broadcast" else { throw LinliError.invalid("device_ids", "\(id) is a \(device.kind) device, not BROADCAST") }
        }
        let zone = UUIDv7.make()
        let made = try await connection.run(
            "INSERT INTO broadcast_zones (id, community_id, name) VALUES (\(zone), \(community.uuid), \(name)) ON CONFLICT DO NOTHING RETURNING 1",
            logger: logger)
        var ok = false
        for try await _ in made { ok = true }
        guard ok else { throw LinliError(.alreadyExists, "name: the community has a zone of this name", field: "name") }
        try await connection.run(
            "INSERT INTO broadcast_zone_devices (zone_id, device_id) SELECT \(zone), unnest(\(ids.map(\.uuid))::uuid[]) ON CONFLICT DO NOTHING",
            logger: logger)
        return zone
    }

    public func zones(community: CommunityID, on connection: PostgresConnection, logger: Logger) async throws -> [(UUID, String, [UUID])] {
        let rows = try await connection.run(
            """
            SELECT z.id, z.name, coalesce(array_agg(d.device_id) FILTER (WHERE d.device_id IS NOT NULL), '{}')
            FROM broadcast_zones z LEFT JOIN broadcast_zone_devices d ON d.zone_id = z.id
            WHERE z.community_id = \(community.uuid) GROUP BY z.id, z.name ORDER BY z.name
            """, logger: logger)
        var result: [(UUID, String, [UUID])] = []
        for try await row in rows.decode((UUID, String, [UUID]).self) { result.append(row) }
        return result
    }

    /// Stores the task and sends it to every terminal of the zones (all the community's
    /// terminals when `zones` is empty).
    public func schedule(_ task: Task, zones: [UUID], by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws
        -> UUID
    {
        let terminals = try await connection.run(
            """
            SELECT DISTINCT d.id FROM devices d
            LEFT JOIN broadcast_zone_devices zd ON zd.device_id = d.id LEFT JOIN broadcast_zones z ON z.id = zd.zone_id
            WHERE d.community_id = \(task.community.uuid) AND d.kind = 'broadcast' AND d.status = 'active'
              AND (cardinality(\(zones)::uuid[]) = 0 OR (z.id = ANY(\(zones)::uuid[]) AND z.community_id = \(task.community.uuid)))
            """, logger: logger)
        var ids: [DeviceID] = []
        for try await id in terminals.decode(UUID.self) { ids.append(DeviceID(id)) }
        if !zones.isEmpty {
            let known = try await connection.run(
                "SELECT count(*) FROM broadcast_zones WHERE id = ANY(\(zones)::uuid[]) AND community_id = \(task.community.uuid)", logger: logger)
            for try await count in known.decode(Int64.self) where count != Int64(clamping: Set(zones).count) { throw LinliError.notFound("zone") }
        }
        try await connection.run(
            """
            INSERT INTO broadcast_tasks (id, community_id, priority, source, content, repeat, starts_at, minute_of_day, weekdays,
                                         duration_seconds, valid_until, emergency, created_by)
            VALUES (\(task.id), \(task.community.uuid), \(Int32(clamping: task.priority)), \(task.source), \(task.content), \(task.repeatMode),
                    \(task.startsAt), \(Int32(clamping: task.minuteOfDay)), \(Int32(clamping: task.weekdays)),
                    \(Int32(clamping: task.durationSeconds)), \(task.validUntil), \(task.emergency), \(principal.subjectID.uuid))
            """, logger: logger)
        for id in ids {
            try await deliver(task, to: id, by: principal, on: connection, logger: logger)
        }
        return task.id
    }

    /// Queues the task's current version to one terminal and records it as that terminal's copy.
    func deliver(_ task: Task, to device: DeviceID, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws {
        let target = try await devices.device(device, for: principal, on: connection, logger: logger)
        let ttl: Duration = task.emergency ? .seconds(300) : Self.deliveryTTL
        let row = try await devices.queue(
            Self.command(task), action: task.cancelled ? "cancel_broadcast" : "broadcast", to: target, ttl: ttl, by: principal.subjectID,
            on: connection, logger: logger)
        try await connection.run(
            """
            INSERT INTO broadcast_deliveries (task_id, device_id, version, command_id)
            VALUES (\(task.id), \(device.uuid), \(Int32(clamping: task.version)), \(row.id.uuid))
            ON CONFLICT (task_id, device_id) DO UPDATE SET version = EXCLUDED.version, command_id = EXCLUDED.command_id
            """, logger: logger)
    }

    public func task(_ id: UUID, for principal: Principal, lock: Bool = false, on connection: PostgresConnection, logger: Logger) async throws
        -> Task
    {
        var binds = PostgresBindings()
        binds.append(id)
        let rows = try await connection.run(
            PostgresQuery(
                unsafeSQL: """
                    SELECT id, community_id, priority, source, content, repeat, starts_at, minute_of_day, weekdays, duration_seconds,
                           valid_until, version, cancelled_at IS NOT NULL, emergency
                    FROM broadcast_tasks WHERE id = $1
                    """ + (lock ? " FOR UPDATE" : ""), binds: binds), logger: logger)
        for try await r in rows.decode((UUID, UUID, Int32, String, String, String, Date?, Int32, Int32, Int32, Date?, Int32, Bool, Bool).self)
        where principal.canAct(in: CommunityID(r.1)) {
            return Task(
                id: r.0, community: CommunityID(r.1), priority: Int(clamping: r.2), source: r.3, content: r.4, repeatMode: r.5, startsAt: r.6,
                minuteOfDay: Int(clamping: r.7), weekdays: Int(clamping: r.8), durationSeconds: Int(clamping: r.9), validUntil: r.10,
                version: Int(clamping: r.11), cancelled: r.12,
                emergency: r.13)
        }
        throw LinliError.notFound("broadcast task")
    }

    /// Cancels the task: a new version that tells each terminal holding it to drop it.
    public func cancel(_ task: Task, by principal: Principal, on connection: PostgresConnection, logger: Logger) async throws -> Task {
        guard !task.cancelled else { return task }
        try await connection.run(
            "UPDATE broadcast_tasks SET cancelled_at = now(), version = version + 1 WHERE id = \(task.id)", logger: logger)
        var cancelled = task
        cancelled.cancelled = true
        cancelled.version += 1
        let holders = try await connection.run("SELECT device_id FROM broadcast_deliveries WHERE task_id = \(task.id)", logger: logger)
        var ids: [DeviceID] = []
        for try await id in holders.decode(UUID.self) { ids.append(DeviceID(id)) }
        for id in ids { try await deliver(cancelled, to: id, by: principal, on: connection, logger: logger) }
        return cancelled
    }

    public func deliveries(_ task: UUID, on connection: PostgresConnection, logger: Logger) async throws -> [(UUID, String, Date?)] {
        let rows = try await connection.run(
            """
            SELECT b.device_id, c.state, CASE WHEN c.state = 'succeeded' THEN c.updated_at END
            FROM broadcast_deliveries b JOIN device_commands c ON c.id = b.command_id
            WHERE b.task_id = \(task) ORDER BY b.device_id
            """, logger: logger)
        var result: [(UUID, String, Date?)] = []
        for try await row in rows.decode((UUID, String, Date?).self) { result.append(row) }
        return result
    }

    /// Sends again every active task copy whose command expired or failed (a terminal offline
    /// past the command's day): nothing a terminal missed stays missed. Returns how many.
    public func resync(on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.run(
            """
            SELECT b.task_id, b.device_id, t.community_id,
                   (SELECT u.id FROM users u JOIN user_communities uc ON uc.user_id = u.id
                    WHERE uc.community_id = t.community_id AND u.role = 'manager' AND u.status = 'active' ORDER BY u.id LIMIT 1)
            FROM broadcast_deliveries b JOIN device_commands c ON c.id = b.command_id JOIN broadcast_tasks t ON t.id = b.task_id
            JOIN devices d ON d.id = b.device_id
            WHERE c.state IN ('expired', 'failed', 'timed_out') AND NOT t.emergency AND d.status = 'active'
              AND (t.valid_until IS NULL OR t.valid_until > now()) AND (t.repeat <> 'once' OR t.starts_at > now() OR t.cancelled_at IS NOT NULL)
            LIMIT 500
            """, logger: logger)
        var due: [(UUID, UUID, UUID, UUID?)] = []
        for try await row in rows.decode((UUID, UUID, UUID, UUID?).self) { due.append(row) }
        var sent = 0
        for (taskID, device, community, manager) in due {
            guard let manager else { continue }
            let principal = Principal(
                tenantID: nil, subjectID: UserID(manager), displayName: "广播同步", role: .manager, communityIDs: [CommunityID(community)],
                buildingIDs: [])
            let task = try await task(taskID, for: principal, on: connection, logger: logger)
            try await deliver(task, to: DeviceID(device), by: principal, on: connection, logger: logger)
            sent += 1
        }
        return sent
    }
}

/// Every minute, for every active tenant: task copies a terminal missed go out again.
public struct BroadcastSyncJob: Service, Sendable {
    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    public func run() async throws {
        let store = BroadcastStore(database: database)
        await PeriodicJob.run(every: .seconds(60), first: .afterInterval, name: "broadcast sync", logger: logger) {
            try await database.inEachActiveTenant("broadcast sync", logger: logger) { connection in
                try await store.resync(on: connection, logger: logger)
            }
        }
    }
}
