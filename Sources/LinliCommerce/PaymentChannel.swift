import Crypto
import Foundation
import LinliCore

/// What a payment channel (WeChat Pay, Alipay, the local simulator) tells Linli of a paid
/// intent: asynchronously, signed, possibly more than once.
public struct PaymentNotice: Sendable, Equatable {
    public var tenant: TenantID
    /// Linli's intent (the channel's out_trade_no).
    public var intent: UUID
    /// The channel's own transaction id: a notice is applied once per transaction.
    public var transaction: String
    public var amountFen: Int64
    public var paidAt: Date
    /// HMAC-SHA256 over the fields above, hex.
    public var signature: String

    public init(tenant: TenantID, intent: UUID, transaction: String, amountFen: Int64, paidAt: Date, signature: String) {
        self.tenant = tenant
        self.intent = intent
        self.transaction = transaction
        self.amountFen = amountFen
        self.paidAt = paidAt
        self.signature = signature
    }

    /// The bytes the signature covers.
    var signedText: String {
        "\(tenant)|\(intent.uuidString.lowercased())|\(transaction)|\(amountFen)|\(Int64(paidAt.timeIntervalSince1970 * 1000))"
    }
}

/// A payment channel as Linli uses it: prepare an intent for the app, verify a notice, ask the
/// state of an intent, refund a paid transaction (idempotent by key).
public protocol PaymentChannel: Sendable {
    var name: String { get }
    /// What the app hands the channel's SDK to pay `intent`.
    func prepare(intent: UUID, tenant: TenantID, amountFen: Int64, expiresAt: Date) async throws -> String
    /// Whether the notice comes from the channel unaltered.
    func verify(_ notice: PaymentNotice) -> Bool
    /// The channel's notice of `intent` when it was paid (to reconcile a notice never received).
    func query(intent: UUID) async -> PaymentNotice?
    /// Gives `amountFen` of `transaction` back; the same key again answers the first refund's id.
    func refund(transaction: String, amountFen: Int64, key: String) async throws -> String
    /// Asks the channel to split `amountFen` of `transaction` to `receiver` (分账); once per key.
    func share(transaction: String, amountFen: Int64, receiver: String, key: String) async -> ShareAnswer
    /// What became of a share the channel answered PROCESSING to.
    func queryShare(key: String) async -> ShareAnswer
    /// Returns a share that succeeded (分账回退), before its payment is refunded.
    func returnShare(key: String) async throws
}

/// A channel's answer to a profit-sharing request.
public enum ShareAnswer: Sendable, Equatable {
    case succeeded(id: String)
    /// Accepted; the result comes later (ask with queryShare).
    case processing(id: String)
    case failed(reason: String)
    /// The channel has no share under that key.
    case unknown
}

/// The local simulated channel ("sim"): it keeps its intents in memory, signs its notices with
/// its own key, delivers them after a delay and again until Linli answers that it took them
/// (as the real channels do), refunds at most what was paid.
public actor SimulatedChannel: PaymentChannel {
    public nonisolated let name = "sim"
    private nonisolated let key: SymmetricKey
    private var intents: [UUID: (tenant: TenantID, amountFen: Int64, expiresAt: Date, paid: PaymentNotice?)] = [:]
    private var refunds: [String: (transaction: String, amountFen: Int64, id: String)] = [:]
    private var receiver: (@Sendable (PaymentNotice) async -> Bool)?
    private var shares: [String: (transaction: String, amountFen: Int64, id: String, done: Bool, returned: Bool)] = [:]
    /// Scripted answers for the next share requests (tests): processing or failed, then normal.
    private var script: [ShareAnswer] = []
    /// How often a notice is delivered before the channel gives up (a query still finds it).
    let attempts: Int

    public init(secret: SymmetricKey = SymmetricKey(size: .bits256), attempts: Int = 6) {
        self.key = secret
        self.attempts = attempts
    }

    /// Where notices go: the order module's notice handler (true: taken).
    public func deliver(to receiver: @escaping @Sendable (PaymentNotice) async -> Bool) { self.receiver = receiver }

    public func prepare(intent: UUID, tenant: TenantID, amountFen: Int64, expiresAt: Date) async throws -> String {
        if intents[intent] == nil { intents[intent] = (tenant, amountFen, expiresAt, nil) }
        return "sim:\(intent.uuidString.lowercased()):" + sign("prepay|\(intent.uuidString.lowercased())|\(amountFen)")
    }

    public nonisolated func verify(_ notice: PaymentNotice) -> Bool {
        guard let given = Self.bytes(hex: notice.signature) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: Data(notice.signedText.utf8), using: key)
    }

    public func query(intent: UUID) async -> PaymentNotice? { intents[intent]?.paid }

    /// The resident pays `intent` in the channel's app: the channel records the payment and
    /// sends its notice after `delay`. Paying an intent twice is the first payment.
    public func pay(intent: UUID, delay: Duration) throws(LinliError) -> PaymentNotice {
        guard let found = intents[intent] else { throw LinliError.notFound("payment intent at the channel") }
        if let paid = found.paid { return paid }
        guard found.expiresAt > Date() else { throw LinliError(.failedPrecondition, "intent_id: the payment intent has expired at the channel") }
        var notice = PaymentNotice(
            tenant: found.tenant, intent: intent, transaction: "SIM" + UUIDv7.make().uuidString.replacingOccurrences(of: "-", with: ""),
            amountFen: found.amountFen, paidAt: Date(), signature: "")
        notice.signature = sign(notice.signedText)
        intents[intent]?.paid = notice
        let receiver = receiver
        let attempts = attempts
        Task.detached {
            try? await Task.sleep(for: delay)
            for attempt in 0..<attempts {
                if let receiver, await receiver(notice) { return }
                try? await Task.sleep(for: .milliseconds(200 << min(attempt, 5)))
            }
        }
        return notice
    }

    public func refund(transaction: String, amountFen: Int64, key: String) async throws -> String {
        if let done = refunds[key] {
            guard done.transaction == transaction, done.amountFen == amountFen else {
                throw LinliError(.failedPrecondition, "refund key reused for another refund")
            }
            return done.id
        }
        guard let paid = intents.values.compactMap(\.paid).first(where: { $0.transaction == transaction }) else {
            throw LinliError(.failedPrecondition, "the channel knows no transaction \(transaction)")
        }
        let refunded = refunds.values.filter { $0.transaction == transaction }.reduce(Int64(0)) { $0 + $1.amountFen }
        guard amountFen > 0, refunded + amountFen <= paid.amountFen else {
            throw LinliError(.failedPrecondition, "refund beyond what was paid")
        }
        // Money shared out is no longer here: a share is returned before a refund (分账回退).
        let shared = shares.values.filter { $0.transaction == transaction && !$0.returned }.reduce(Int64(0)) { $0 + $1.amountFen }
        guard refunded + amountFen + shared <= paid.amountFen else {
            throw LinliError(.failedPrecondition, "refund of shared money: return the share first")
        }
        let id = "SIMR" + UUIDv7.make().uuidString.replacingOccurrences(of: "-", with: "")
        refunds[key] = (transaction, amountFen, id)
        return id
    }

    /// The next share requests get these answers first (a PROCESSING one resolves on its query).
    public func scriptShares(_ answers: [ShareAnswer]) { script = answers }

    public func share(transaction: String, amountFen: Int64, receiver: String, key: String) async -> ShareAnswer {
        if let known = shares[key] { return known.done ? .succeeded(id: known.id) : .processing(id: known.id) }
        guard let paid = intents.values.compactMap(\.paid).first(where: { $0.transaction == transaction }) else {
            return .failed(reason: "no such transaction")
        }
        let refunded = refunds.values.filter { $0.transaction == transaction }.reduce(Int64(0)) { $0 + $1.amountFen }
        let shared = shares.values.filter { $0.transaction == transaction && !$0.returned }.reduce(Int64(0)) { $0 + $1.amountFen }
        // The channel's own limit: at most 30 % of the payment, and only of what it still holds.
        guard amountFen > 0, amountFen * 10 <= paid.amountFen * 3, shared + amountFen <= paid.amountFen - refunded else {
            return .failed(reason: "amount beyond what may be shared")
        }
        let id = "SIMS" + UUIDv7.make().uuidString.replacingOccurrences(of: "-", with: "")
        if !script.isEmpty {
            let answer = script.removeFirst()
            if case .failed = answer { return answer }
            shares[key] = (transaction, amountFen, id, false, false)
            return .processing(id: id)
        }
        shares[key] = (transaction, amountFen, id, true, false)
        return .succeeded(id: id)
    }

    public func queryShare(key: String) async -> ShareAnswer {
        guard let known = shares[key] else { return .unknown }
        // A PROCESSING share is done by the time it is asked about again.
        shares[key]?.done = true
        return .succeeded(id: known.id)
    }

    public func returnShare(key: String) async throws {
        guard let known = shares[key], known.done else { throw LinliError(.failedPrecondition, "no finished share \(key) to return") }
        shares[key]?.returned = true
    }

    /// What the channel holds as shared (not returned) for `transaction`: for reconciliation.
    public func shared(transaction: String) -> Int64 {
        shares.values.filter { $0.transaction == transaction && $0.done && !$0.returned }.reduce(Int64(0)) { $0 + $1.amountFen }
    }

    private nonisolated func sign(_ text: String) -> String {
        Array(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)).hexString
    }

    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        func value(_ d: UInt8) -> UInt8? {
            switch d {
            case 48...57: d - 48
            case 97...102: d - 87
            default: nil
            }
        }
        var out: [UInt8] = []
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(digits[i]), let low = value(digits[i + 1]) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }

    /// Test hook: a notice signed by this channel for any fields (to prove a forged one fails).
    public nonisolated func signed(_ notice: PaymentNotice) -> PaymentNotice {
        var n = notice
        n.signature = sign(n.signedText)
        return n
    }
}
