import Foundation
import LinliAPI
import LinliCore
import LinliDevices
import LinliTenancy
import Logging
import PostgresNIO

/// One step of a threshold rule, pure: the rule's state before a value and the value → the
/// state after and what happens to the alarm. A breach starts (or continues) a streak; the
/// rule is met at the first breach (simple), once the streak has lasted `durationSeconds`, or
/// once it counts `repeatCount` values in a row. A value that does not breach ends the streak;
/// one back past the clear threshold also clears the alarm (between the two thresholds the
/// alarm stays: hysteresis).
public enum AlarmRuleEngine {
    public struct Rule: Sendable, Equatable {
        public var above: Bool
        public var threshold: Int64
        public var durationSeconds: Int
        public var repeatCount: Int
        public var clearThreshold: Int64

        public init(above: Bool, threshold: Int64, durationSeconds: Int = 0, repeatCount: Int = 0, clearThreshold: Int64) {
            self.above = above
            self.threshold = threshold
            self.durationSeconds = durationSeconds
            self.repeatCount = repeatCount
            self.clearThreshold = clearThreshold
        }
    }

    public struct State: Sendable, Equatable {
        public var breachingSince: Date?
        public var consecutive: Int

        public init(breachingSince: Date? = nil, consecutive: Int = 0) {
            self.breachingSince = breachingSince
            self.consecutive = consecutive
        }
    }

    public enum Outcome: Sendable, Equatable { case raise, clear, none }

    public static func step(_ rule: Rule, _ state: State, value: Int64, at time: Date) -> (State, Outcome) {
        let breach = rule.above ? value > rule.threshold : value < rule.threshold
        guard breach else {
            let cleared = rule.above ? value <= rule.clearThreshold : value >= rule.clearThreshold
            return (State(), cleared ? .clear : .none)
        }
        let since = min(state.breachingSince ?? time, time)
        let next = State(breachingSince: since, consecutive: state.consecutive + 1)
        let met: Bool
        if rule.durationSeconds > 0 {
            met = time.timeIntervalSince(since) >= TimeInterval(rule.durationSeconds)
        } else if rule.repeatCount > 0 {
            met = next.consecutive >= rule.repeatCount
        } else {
            met = true
        }
        return (next, met ? .raise : .none)
    }
}

/// Energy devices' telemetry, inside the transaction that stores it: kept in the monthly
/// partitions of `telemetry`, and run through the community's rules for the device's kind and
/// the metric, whose state per device is read and written here (locked: two batches of one
/// device cannot interleave a streak).
public struct TelemetryHandler: DeviceEventHandler {
    public init() {}

    public func handles(_ event: Linli_Device_V1_Event) -> Bool {
        if case .telemetry = event.body { return true }
        return false
    }

    public func handle(_ events: [DeviceStore.IncomingEvent], device: DeviceID, on connection: PostgresConnection, logger: Logger)
        async throws -> [Linli_Device_V1_ServerMessage]
    {
        try await handle([DeviceEventGroup(device: device, events: events)], on: connection, logger: logger).first ?? []
    }

    /// All the devices of a group commit at once: one INSERT of every reading, one query for
    /// the rules that apply, and the rules' states read (locked, in one order), stepped and
    /// written back in one statement each. Telemetry needs no reply.
    public func handle(_ groups: [DeviceEventGroup], on connection: PostgresConnection, logger: Logger) async throws
        -> [[Linli_Device_V1_ServerMessage]]
    {
        let none = [[Linli_Device_V1_ServerMessage]](repeating: [], count: groups.count)
        var readings: [(device: UUID, metric: String, value: Int64, at: Date)] = []
        for group in groups {
            for incoming in group.events {
                guard case .telemetry(let t) = incoming.event.body, Self.validMetric(t.metric) else { continue }
                readings.append((group.device.uuid, t.metric, t.valueMilli, incoming.deviceTime))
            }
        }
        guard !readings.isEmpty else { return none }
        try await connection.run(
            """
            INSERT INTO telemetry (device_id, metric, at, value_milli)
            SELECT * FROM unnest(\(readings.map(\.device)), \(readings.map(\.metric)), \(readings.map(\.at)), \(readings.map(\.value)))
            ON CONFLICT DO NOTHING
            """, logger: logger)
        let devices = Array(Set(readings.map(\.device)))
        let metrics = Array(Set(readings.map(\.metric)))
        let rules = try await connection.run(
            """
            SELECT r.id, d.id, r.metric, r.comparison = 'above', r.threshold_milli, r.duration_seconds, r.repeat_count,
                   r.clear_threshold_milli, r.severity, r.name
            FROM alarm_rules r JOIN devices d ON d.community_id = r.community_id AND d.kind = r.device_kind
            WHERE d.id = ANY(\(devices)) AND r.metric = ANY(\(metrics))
            ORDER BY r.id, d.id
            """, logger: logger)
        struct Applied {
            var rule: UUID
            var device: UUID
            var metric: String
            var engine: AlarmRuleEngine.Rule
            var severity: String
            var name: String
        }
        var applied: [Applied] = []
        for try await r in rules.decode((UUID, UUID, String, Bool, Int64, Int32, Int32, Int64, String, String).self) {
            let engine = AlarmRuleEngine.Rule(
                above: r.3, threshold: r.4, durationSeconds: Int(clamping: r.5), repeatCount: Int(clamping: r.6), clearThreshold: r.7)
            applied.append(Applied(rule: r.0, device: r.1, metric: r.2, engine: engine, severity: r.8, name: r.9))
        }
        guard !applied.isEmpty else { return none }
        let (ruleIDs, deviceIDs) = (applied.map(\.rule), applied.map(\.device))
        try await connection.run(
            "INSERT INTO alarm_rule_state (rule_id, device_id) SELECT * FROM unnest(\(ruleIDs), \(deviceIDs)) ON CONFLICT DO NOTHING",
            logger: logger)
        let stored = try await connection.run(
            """
            SELECT s.rule_id, s.device_id, s.breaching_since, s.consecutive
            FROM alarm_rule_state s JOIN unnest(\(ruleIDs), \(deviceIDs)) AS k(rule_id, device_id) USING (rule_id, device_id)
            ORDER BY s.rule_id, s.device_id
            FOR UPDATE OF s
            """, logger: logger)
        struct Key: Hashable {
            var rule: UUID
            var device: UUID
        }
        var states: [Key: AlarmRuleEngine.State] = [:]
        for try await (rule, device, since, count) in stored.decode((UUID, UUID, Date?, Int32).self) {
            states[Key(rule: rule, device: device)] = AlarmRuleEngine.State(breachingSince: since, consecutive: Int(clamping: count))
        }
        var next: [AlarmRuleEngine.State] = []
        var changes: [(Applied, AlarmRuleEngine.Outcome, Int64)] = []
        for rule in applied {
            var state = states[Key(rule: rule.rule, device: rule.device)] ?? AlarmRuleEngine.State()
            // Every change in order: a batch that breaches and recovers raises and clears.
            var last: AlarmRuleEngine.Outcome?
            let mine = readings.filter { $0.device == rule.device && $0.metric == rule.metric }.sorted { $0.at < $1.at }
            for reading in mine {
                let (stepped, outcome) = AlarmRuleEngine.step(rule.engine, state, value: reading.value, at: reading.at)
                state = stepped
                if outcome != .none, last != outcome {
                    changes.append((rule, outcome, reading.value))
                    last = outcome
                }
            }
            next.append(state)
        }
        try await connection.run(
            """
            UPDATE alarm_rule_state s SET breaching_since = CASE WHEN u.breaching THEN u.since END, consecutive = u.consecutive,
                                          last_at = now()
            FROM unnest(\(ruleIDs), \(deviceIDs), \(next.map { $0.breachingSince != nil }), \(next.map { $0.breachingSince ?? Date(timeIntervalSince1970: 0) }),
                        \(next.map { Int32(clamping: $0.consecutive) }))
                 AS u(rule_id, device_id, breaching, since, consecutive)
            WHERE s.rule_id = u.rule_id AND s.device_id = u.device_id
            """, logger: logger)
        for (rule, outcome, value) in changes {
            let type = "energy.\(rule.name)"
            let device = DeviceID(rule.device)
            switch outcome {
            case .raise:
                _ = try await FireHandler.raise(
                    type: type, severity: rule.severity, point: rule.metric, detail: "\(rule.metric) = \(Double(value) / 1000)", device: device,
                    on: connection, logger: logger)
            case .clear:
                try await connection.run(
                    """
                    UPDATE device_alarms SET status = 'cleared', cleared_at = now(), clear_reason = 'back within the rule'
                    WHERE device_id = \(device.uuid) AND type = \(type) AND source = \(rule.metric) AND status <> 'cleared'
                    """, logger: logger)
            case .none: break
            }
        }
        return none
    }

    /// A metric name: 1–32 of a–z, 0–9, '.', '_'.
    static func validMetric(_ metric: String) -> Bool {
        !metric.isEmpty && metric.count <= 32
            && metric.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "_" }
    }
}
