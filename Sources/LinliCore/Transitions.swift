/// A state machine as one table: each action, the states it may start from and where it leads.
public struct Transitions<State: RawRepresentable & Hashable & Sendable, Action: RawRepresentable & Hashable & Sendable>: Sendable
where State.RawValue == String, Action.RawValue == String {
    public let rules: [Action: (from: Set<State>, to: State)]

    public init(_ rules: [Action: (from: Set<State>, to: State)]) { self.rules = rules }

    /// Where `action` leads from `state`; `failedPrecondition` naming both when it may not.
    public func next(_ action: Action, from state: State) throws(LinliError) -> State {
        guard let rule = rules[action], rule.from.contains(state) else {
            throw LinliError(.failedPrecondition, "action \(action.rawValue) is not allowed in state \(state.rawValue)")
        }
        return rule.to
    }
}
