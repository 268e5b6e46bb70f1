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
        var readings: [(metric: String, value: Int64, at: Date)] = []
        for incoming in events {
            guard case .telemetry(let t) = incoming.event.body,
                !t.metric.isEmpty, t.metric.count <= 32,
                t.metric.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "_" })
            else { continue }
            readings.append((t.metric, t.valueMilli, incoming.deviceTime))
        }
        guard !readings.isEmpty else { return [] }
        try await connection.query(
            """
            INSERT INTO telemetry (device_id, metric, at, value_milli)
            SELECT \(device.uuid), m, t, v FROM unnest(\(readings.map(\.metric)), \(readings.map(\.at)), \(readings.map(\.value))) AS r(m, t, v)
            ON CONFLICT DO NOTHING
            """, logger: logger)
        let metrics = Array(Set(readings.map(\.metric)))
        let rules = try await connection.query(
            """
            SELECT r.id, r.metric, r.comparison = 'above', r.threshold_milli, r.duration_seconds, r.repeat_count, r.clear_threshold_milli,
                   r.severity, r.name
            FROM alarm_rules r JOIN devices d ON d.community_id = r.community_id AND d.kind = r.device_kind
            WHERE d.id = \(device.uuid) AND r.metric = ANY(\(metrics))
            ORDER BY r.id
            """, logger: logger)
        var found: [(UUID, String, AlarmRuleEngine.Rule, String, String)] = []
        for try await r in rules.decode((UUID, String, Bool, Int64, Int32, Int32, Int64, String, String).self) {
            found.append(
                (
                    r.0, r.1,
                    AlarmRuleEngine.Rule(
                        above: r.2, threshold: r.3, durationSeconds: Int(clamping: r.4), repeatCount: Int(clamping: r.5), clearThreshold: r.6), r.7,
                    r.8
                ))
        }
        for (id, metric, rule, severity, name) in found {
            try await connection.query(
                "INSERT INTO alarm_rule_state (rule_id, device_id) VALUES (\(id), \(device.uuid)) ON CONFLICT DO NOTHING", logger: logger)
            let stored = try await connection.query(
                "SELECT breaching_since, consecutive FROM alarm_rule_state WHERE rule_id = \(id) AND device_id = \(device.uuid) FOR UPDATE",
                logger: logger)
            var state = AlarmRuleEngine.State()
            for try await (since, count) in stored.decode((Date?, Int32).self) {
                state = AlarmRuleEngine.State(breachingSince: since, consecutive: Int(clamping: count))
            }
            // Every change in order: a batch that breaches and recovers raises and clears.
            var changes: [(AlarmRuleEngine.Outcome, Int64)] = []
            for reading in readings.filter({ $0.metric == metric }).sorted(by: { $0.at < $1.at }) {
                let (next, outcome) = AlarmRuleEngine.step(rule, state, value: reading.value, at: reading.at)
                state = next
                if outcome != .none, changes.last?.0 != outcome { changes.append((outcome, reading.value)) }
            }
            try await connection.query(
                """
                UPDATE alarm_rule_state SET breaching_since = \(state.breachingSince), consecutive = \(Int32(clamping: state.consecutive)),
                       last_at = now()
                WHERE rule_id = \(id) AND device_id = \(device.uuid)
                """, logger: logger)
            let type = "energy.\(name)"
            for (outcome, value) in changes {
                switch outcome {
                case .raise:
                    _ = try await FireHandler.raise(
                        type: type, severity: severity, point: metric, detail: "\(metric) = \(Double(value) / 1000)", device: device,
                        on: connection, logger: logger)
                case .clear:
                    try await connection.query(
                        """
                        UPDATE device_alarms SET status = 'cleared', cleared_at = now(), clear_reason = 'back within the rule'
                        WHERE device_id = \(device.uuid) AND type = \(type) AND source = \(metric) AND status <> 'cleared'
                        """, logger: logger)
                case .none: break
                }
            }
        }
        return []
    }
}
