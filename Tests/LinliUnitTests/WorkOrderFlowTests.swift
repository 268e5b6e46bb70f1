import LinliCore
import LinliWorkOrders
import Testing

@Suite("Work-order state machine")
struct WorkOrderFlowTests {
    typealias Flow = WorkOrderFlow

    @Test("the happy path runs pending to closed, each step by its actor")
    func happyPath() throws {
        var state = Flow.State.pending
        let steps: [(Flow.Action, Flow.Actor)] = [
            (.dispatch, .manager), (.accept, .assignee), (.start, .assignee), (.pause, .assignee), (.resume, .assignee),
            (.complete, .assignee), (.rate, .requester), (.close, .manager),
        ]
        for (action, actor) in steps { state = try Flow.next(action, from: state, as: [actor]) }
        #expect(state == .closed)
    }

    @Test("a wrong state is a failed precondition naming both; a wrong actor is permission denied")
    func refusals() {
        do {
            _ = try Flow.next(.complete, from: .pending, as: [.assignee])
            Issue.record("completed a pending order")
        } catch {
            #expect(error.code == .failedPrecondition)
            #expect(error.message.contains("complete") && error.message.contains("pending"))
        }
        #expect(throws: LinliError.self) { try Flow.next(.accept, from: .dispatched, as: [.manager, .requester]) }
        #expect(throws: LinliError.self) { try Flow.next(.cancel, from: .inProgress, as: [.requester]) }
        #expect(throws: LinliError.self) { try Flow.next(.claim, from: .dispatched, as: [.skilledTechnician]) }
    }

    @Test("every action has a rule, and closed and cancelled are final")
    func table() throws {
        #expect(Set(Flow.rules.keys) == Set(Flow.Action.allCases))
        for rule in Flow.rules.values { #expect(!rule.from.contains(.closed) && !rule.from.contains(.cancelled)) }
        #expect(try Flow.next(.reopen, from: .rated, as: [.requester]) == .pending)
        #expect(try Flow.next(.return, from: .accepted, as: [.assignee]) == .pending)
    }
}
