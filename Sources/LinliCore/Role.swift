/// A principal's role. Raw values match `linli.common.v1.Role`.
public enum Role: Int, Sendable, CaseIterable, CustomStringConvertible {
    case resident = 1
    case manager = 2
    case cashier = 3
    case technician = 4
    case guardian = 5
    case merchant = 6
    case government = 7
    case `operator` = 8
    case partner = 9

    /// The name stored in the database and shown in logs.
    public var name: String {
        switch self {
        case .resident: "resident"
        case .manager: "manager"
        case .cashier: "cashier"
        case .technician: "technician"
        case .guardian: "guard"
        case .merchant: "merchant"
        case .government: "government"
        case .operator: "operator"
        case .partner: "partner"
        }
    }

    /// The role stored under `name`.
    public init?(name: String) {
        guard let role = Role.allCases.first(where: { $0.name == name }) else { return nil }
        self = role
    }

    /// Property staff of a tenant.
    public var isStaff: Bool { [.manager, .cashier, .technician, .guardian].contains(self) }

    public var description: String { name }
}
