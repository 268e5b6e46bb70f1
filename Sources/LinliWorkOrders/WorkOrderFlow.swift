import LinliCore

/// The work-order state machine, in one table: which action moves which states where, and
/// who may take it. Nothing else changes a work order's state.
public enum WorkOrderFlow {
    public enum State: String, Sendable, CaseIterable {
        case pending, dispatched, accepted
        case inProgress = "in_progress"
        case paused, completed, rated, closed, cancelled

        /// Work still to do: counts towards overdue.
        public var isOpen: Bool { [.pending, .dispatched, .accepted, .inProgress, .paused].contains(self) }
    }

    public enum Action: String, Sendable, CaseIterable {
        case dispatch, claim, accept, start, pause, resume, complete, rate, close, transfer
        case `return`, cancel, reopen
    }

    /// Who may take an action on a given order.
    public enum Actor: Sendable {
        /// A manager of the order's community.
        case manager
        /// The technician the order is assigned to.
        case assignee
        /// Any technician of the community who handles the category (grab).
        case skilledTechnician
        /// The resident the order is for.
        case requester
    }

    public struct Rule: Sendable {
        public let from: Set<State>
        public let to: State
        public let actors: Set<Actor>
    }

    public static let rules: [Action: Rule] = [
        .dispatch: Rule(from: [.pending], to: .dispatched, actors: [.manager]),
        .claim: Rule(from: [.pending], to: .accepted, actors: [.skilledTechnician]),
        .accept: Rule(from: [.dispatched], to: .accepted, actors: [.assignee]),
        .start: Rule(from: [.accepted], to: .inProgress, actors: [.assignee]),
        .pause: Rule(from: [.inProgress], to: .paused, actors: [.assignee]),
        .resume: Rule(from: [.paused], to: .inProgress, actors: [.assignee]),
        .complete: Rule(from: [.inProgress], to: .completed, actors: [.assignee]),
        .rate: Rule(from: [.completed], to: .rated, actors: [.requester]),
        .close: Rule(from: [.completed, .rated], to: .closed, actors: [.manager]),
        .transfer: Rule(from: [.dispatched, .accepted], to: .dispatched, actors: [.manager, .assignee]),
        .return: Rule(from: [.dispatched, .accepted], to: .pending, actors: [.assignee]),
        .cancel: Rule(from: [.pending, .dispatched, .accepted], to: .cancelled, actors: [.requester, .manager]),
        .reopen: Rule(from: [.completed, .rated], to: .pending, actors: [.requester, .manager]),
    ]

    /// The state `action` leads to from `state` when taken by someone who is all of `actors`;
    /// the error says which rule was broken.
    public static func next(_ action: Action, from state: State, as actors: Set<Actor>) throws(LinliError) -> State {
        guard let rule = rules[action] else { throw .invalid("action", "is required") }
        guard rule.from.contains(state) else {
            throw LinliError(.failedPrecondition, "action \(action.rawValue) is not allowed in state \(state.rawValue)")
        }
        guard !rule.actors.isDisjoint(with: actors) else {
            throw LinliError(.permissionDenied, "action \(action.rawValue) is not yours to take on this work order")
        }
        return rule.to
    }
}
