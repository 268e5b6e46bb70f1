import Foundation
import Testing

@testable import LinliAlarms

@Suite("Alarm rules: simple, duration and repeating, with a recovery threshold (pure)")
struct AlarmRuleTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_881_600)

    func run(_ rule: AlarmRuleEngine.Rule, _ values: [(Int64, Int)], from state: AlarmRuleEngine.State = .init())
        -> (AlarmRuleEngine.State, [AlarmRuleEngine.Outcome])
    {
        var state = state
        var outcomes: [AlarmRuleEngine.Outcome] = []
        for (value, second) in values {
            let (next, outcome) = AlarmRuleEngine.step(rule, state, value: value, at: Self.t0.addingTimeInterval(TimeInterval(second)))
            state = next
            outcomes.append(outcome)
        }
        return (state, outcomes)
    }

    @Test("a simple rule raises at the first breach and clears only past the recovery threshold")
    func simple() {
        let rule = AlarmRuleEngine.Rule(above: true, threshold: 800_000, clearThreshold: 700_000)
        let (_, outcomes) = run(rule, [(750_000, 0), (900_000, 1), (750_000, 2), (650_000, 3)])
        #expect(outcomes == [.none, .raise, .none, .clear], "750 lies between the thresholds: no change")
    }

    @Test("a duration rule raises once the breach has lasted, and a dip restarts the clock; its state carries over a restart")
    func duration() {
        let rule = AlarmRuleEngine.Rule(above: true, threshold: 800, durationSeconds: 600, clearThreshold: 700)
        let (state, first) = run(rule, [(900, 0), (900, 300)])
        #expect(first == [.none, .none] && state.breachingSince == Self.t0)
        // The same state, read back after a restart, continues the clock.
        let (_, later) = run(rule, [(900, 600)], from: state)
        #expect(later == [.raise])
        let (_, dipped) = run(rule, [(900, 0), (750, 300), (900, 400), (900, 900)])
        #expect(dipped == [.none, .none, .none, .none], "the dip at 300 s restarted the clock at 400 s")
    }

    @Test("a repeating rule raises at the Nth breach in a row; a below rule mirrors an above rule")
    func repeating() {
        let rule = AlarmRuleEngine.Rule(above: false, threshold: 100, repeatCount: 3, clearThreshold: 150)
        let (_, outcomes) = run(rule, [(90, 0), (90, 1), (120, 2), (90, 3), (90, 4), (90, 5), (200, 6)])
        #expect(outcomes == [.none, .none, .none, .none, .none, .raise, .clear])
    }
}

@Suite("Broadcast arbitration at a terminal (pure)")
struct BroadcastArbiterTests {
    @Test("an emergency pre-empts background music, which resumes for its remaining time")
    func preemption() {
        let segments = BroadcastArbiter.timeline([
            .init(id: "music", priority: 5, start: 0, duration: 600), .init(id: "evacuate", priority: 1, start: 100, duration: 60),
        ])
        #expect(
            segments == [.init(id: "music", from: 0, to: 100), .init(id: "evacuate", from: 100, to: 160), .init(id: "music", from: 160, to: 660)])
    }

    @Test("equal priorities: first come first served, the later one waits and plays after")
    func firstComeFirstServed() {
        let segments = BroadcastArbiter.timeline([
            .init(id: "notice-b", priority: 3, start: 50, duration: 100), .init(id: "notice-a", priority: 3, start: 0, duration: 100),
            .init(id: "drill", priority: 2, start: 500, duration: 10),
        ])
        #expect(
            segments == [
                .init(id: "notice-a", from: 0, to: 100), .init(id: "notice-b", from: 100, to: 200), .init(id: "drill", from: 500, to: 510),
            ])
    }
}
