/// The generic cell rate algorithm as one Lua function, shared by every script that takes a
/// rate-limit slot, so the check and the update are atomic in Redis.
public enum GCRA {
    /// Defines `gcra(key, interval, burst, peek)`: `interval` is the emission interval in µs,
    /// `burst` the calls allowed at once, `peek` asks without taking a slot. Returns 0 when the
    /// call may pass, else the microseconds to wait.
    public static let function = """
        local function gcra(key, interval, burst, peek)
          local t = redis.call('TIME')
          local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
          local tolerance = interval * burst
          local tat = tonumber(redis.call('GET', key) or now)
          if tat < now then tat = now end
          local new_tat = tat + interval
          local wait = new_tat - now - tolerance
          if wait > 0 then return wait end
          if peek then return 0 end
          redis.call('SET', key, new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
          return 0
        end

        """

    /// A rate-limit bucket and its budget, as a script takes it.
    public struct Budget: Sendable, Equatable {
        /// The bucket's key, or its prefix when the script appends the subject.
        public var key: String
        /// Microseconds between calls at the sustained rate.
        public var intervalMicros: Int
        /// Calls allowed at once.
        public var burst: Int

        /// Creates a budget of `perSecond` calls a second and `burst` at once.
        public init(key: String, perSecond: Double, burst: Int) {
            self.key = key
            self.intervalMicros = Int((1_000_000 / max(perSecond, 1e-6)).rounded(.up).clamped(to: 1...1e12))
            self.burst = max(0, burst)
        }
    }
}

extension Double {
    fileprivate func clamped(to range: ClosedRange<Double>) -> Double { Swift.min(Swift.max(self, range.lowerBound), range.upperBound) }
}
