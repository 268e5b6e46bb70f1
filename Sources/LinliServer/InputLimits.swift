import LinliCore

/// The declared limits of every request field, in one table that partners can read (the README
/// repeats it). `InputGuard` applies them to every message of every RPC before its handler
/// runs; handlers then check what only the domain knows (a room of this community, a date
/// after another).
///
/// A limit is looked up by `Message.field` first, then by the field name alone; a field named
/// nowhere gets the defaults. A new RPC is covered without anyone remembering to add it.
public enum InputLimits {
    /// How a text field may look.
    public struct Text: Sendable {
        /// At most this many Unicode scalars.
        public var maxLength: Int
        /// Whether line breaks and tabs are allowed (other control characters never are).
        public var multiline: Bool

        static func line(_ max: Int) -> Text { Text(maxLength: max, multiline: false) }
        static func lines(_ max: Int) -> Text { Text(maxLength: max, multiline: true) }
    }

    /// Timestamps must lie in `Input.instants` [2000-01-01T00:00:00Z, 2100-01-01T00:00:00Z).
    public static let earliestSeconds: Int64 = Input.instants.lowerBound
    /// See `earliestSeconds`.
    public static let latestSeconds: Int64 = Input.instants.upperBound

    /// A text field named nowhere below: one line of 200 characters.
    public static let defaultText = Text.line(200)
    /// A repeated field named nowhere below: 100 entries.
    public static let defaultCount = 100
    /// An integer field named nowhere below.
    public static let defaultInteger: ClosedRange<Int64> = 0...1_000_000

    /// 1,000,000.00 元: the largest single amount any request may carry.
    public static let maxAmountFen: Int64 = 100_000_000

    public static let texts: [String: Text] = [
        "body": .lines(20_000), "content": .lines(20_000),
        "description": .lines(2_000), "note": .lines(2_000), "reason": .lines(2_000),
        "resolution": .lines(2_000), "reply": .lines(2_000), "comment": .lines(2_000),
        "satisfaction_comment": .lines(2_000), "materials": .lines(2_000), "items": .lines(2_000),
        "lines": .line(4_000),  // one CSV line of an import
        "photo_refs": .line(500),
        "password": .line(128),
        "page_token": .line(200),
        "request_id": .line(36),
        // The device wire protocol (Protos/linli/device/v1/wire.options says the same to nanopb).
        "Challenge.nonce": .line(32), "Hello.tenant": .line(64), "Hello.device_id": .line(36),
        "Hello.client_nonce": .line(64), "Hello.proof": .line(32), "Hello.firmware": .line(64),
        "Refusal.detail": .line(200), "AccessEvent.door_code": .line(32), "AccessEvent.credential": .line(64),
        "AccessEvent.reason": .line(200), "StatusEvent.code": .line(32), "StatusEvent.detail": .line(200),
        "RefusedEvent.reason": .line(200), "Command.command_id": .line(36), "OpenDoor.door_code": .line(32),
        "CommandUpdate.command_id": .line(36), "CommandUpdate.detail": .line(200),
        "RegisterDeviceRequest.serial": .line(64), "RegisterDeviceRequest.name": .line(100),
        "WhitelistDiff.qr_public_key": .line(32), "WhitelistDiff.removes": .line(36), "WhitelistEntry.key": .line(36),
        "WhitelistEntry.value": .line(64), "WhitelistEntry.door_codes": .line(32), "DoorInfo.code": .line(32),
        "DoorInfo.building_id": .line(36), "CreateDoorRequest.code": .line(32), "CreateDoorRequest.name": .line(100),
        "IssueCredentialRequest.value": .line(64),
        "PlateEvent.lane_code": .line(32), "PlateEvent.plate": .line(32), "GateDecision.lane_code": .line(32),
        "GateDecision.led_lines": .line(96), "GateDecision.voice": .line(200), "GateDecision.session_id": .line(36),
        "GateDecision.reason": .line(32), "FireEvent.point_code": .line(32), "FireEvent.detail": .line(200),
        "MeterEvent.meter_code": .line(32), "ElevatorEvent.elevator_code": .line(32), "ElevatorEvent.fault_code": .line(32),
        "TelemetryEvent.metric": .line(32), "BroadcastTask.task_id": .line(36), "BroadcastTask.content": .line(500),
        "CancelBroadcast.task_id": .line(36), "MeterCredit.meter_code": .line(32), "MeterCredit.credit_id": .line(36),
        "ScheduleBroadcastRequest.content": .line(500), "PlayEmergencyRequest.content": .line(500), "AlarmRule.metric": .line(32),
        "GetTelemetryRequest.metric": .line(32),
    ]

    public static let counts: [String: Int] = [
        "room_ids": 10_000, "parking_space_ids": 10_000,
        "lines": 20_000,  // CSV lines in one streamed chunk
        "RequestRefundRequest.lines": 500,
        "bill_ids": 500, "ids": 500, "building_ids": 500, "building_names": 500,
        "community_ids": 200, "point_ids": 200,
        "category_codes": 50, "invoices": 20, "times": 48,
        "photo_refs": 9, "weekdays": 7, "methods": 6, "tiers": 10,
        "EventBatch.events": 256, "CommitPoint.refused": 256,
        "WhitelistDiff.upserts": 10_000, "WhitelistDiff.removes": 10_000, "WhitelistEntry.door_codes": 16, "WhitelistDiff.doors": 16,
        "GateDecision.led_lines": 4,
    ]

    public static let integers: [String: ClosedRange<Int64>] = [
        "amount_fen": 0...maxAmountFen, "unit_price_fen": 0...maxAmountFen,
        "surcharge_fen": 0...maxAmountFen, "charge_fen": 0...maxAmountFen,
        "area_centi_m2": 0...100_000_000,
        "value_centi": 0...100_000_000_000, "up_to_centi": 0...100_000_000_000,
        "old_final_centi": 0...100_000_000_000,
        "speed": 0...5, "attitude": 0...5, "quality": 0...5, "satisfaction": 0...5,
        "due_day": 0...28, "cycle_day": 0...28,
        "late_fee_per_10k_daily": 0...100, "grace_days": 0...365,
        "priority": 0...1_000, "yearly_increase_bp": 0...10_000,
        "floor": -10...200,
        "weekdays": 1...7, "every_days": 0...366,
        "window_minutes": 0...1_440, "labour_minutes": 0...10_080,
        "normal_deadline_minutes": 0...43_200, "emergency_deadline_minutes": 0...43_200,
        "min_age_days": 0...3_650,
        "page_size": 0...1_000,
        // Device frames: sequence numbers and device clocks in milliseconds.
        "seq": 0...Int64.max, "device_time_ms": (earliestSeconds * 1000)...(latestSeconds * 1000),
        "hold_seconds": 0...600, "protocol_version": 0...1_000, "ttl_seconds": 0...86_400,
        "whitelist_version": 0...Int64.max, "WhitelistAck.version": 0...Int64.max,
        "stranger_threshold": 0...100, "stranger_window_minutes": 0...1_440, "retention_days": 0...365,
        "confidence": 0...100, "due_fen": 0...maxAmountFen, "MeterEvent.value_centi": 0...100_000_000_000,
        "ElevatorEvent.floor": -10...200, "TelemetryEvent.value_milli": -1_000_000_000_000...1_000_000_000_000,
        "threshold_milli": -1_000_000_000_000...1_000_000_000_000, "recovery_threshold_milli": -1_000_000_000_000...1_000_000_000_000,
        "duration_seconds": 0...86_400, "minute_of_day": 0...1_439, "ScheduleBroadcastRequest.weekdays": 0...127,
        "BroadcastTask.weekdays": 0...127, "BroadcastTaskStatus.weekdays": 0...127, "repeat_count": 0...1_000, "bucket_seconds": 0...86_400,
    ]

    static func text(_ message: String, _ field: String) -> Text {
        texts["\(message).\(field)"] ?? texts[field] ?? defaultText
    }

    static func count(_ message: String, _ field: String) -> Int {
        counts["\(message).\(field)"] ?? counts[field] ?? defaultCount
    }

    static func integer(_ message: String, _ field: String) -> ClosedRange<Int64> {
        integers["\(message).\(field)"] ?? integers[field] ?? defaultInteger
    }
}
