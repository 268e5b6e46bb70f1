import Crypto
import Foundation
import Synchronization

/// The opaque keyset token of lists ordered newest first by (time, id).
///
/// A token is its position and an HMAC-SHA256 tag over it (first 16 bytes), so a token the
/// server did not issue is `INVALID_ARGUMENT`, never a query. The key comes from
/// `LINLI_PAGE_TOKEN_SECRET` through `useSecret`; without one each process draws its own,
/// and tokens hold only on the process that issued them.
public enum PageToken {
    private static let key = Mutex(SymmetricKey(size: .bits256))

    /// Makes tokens verifiable by every process configured with the same secret.
    public static func useSecret(_ secret: String) {
        let derived = SymmetricKey(data: SHA256.hash(data: Data("linli.page-token|\(secret)".utf8)))
        key.withLock { $0 = derived }
    }

    /// The latest position a token may hold (2100-01-01), in microseconds since 1970.
    static let latestMicros: Int64 = 4_102_444_800_000_000

    /// The token that continues after the row at (`time`, `id`).
    public static func encode(_ time: Date, _ id: UUID) -> String {
        signed("\(micros(time))|\(id.uuidString.lowercased())")
    }

    private static func micros(_ time: Date) -> Int64 { Int64(exactly: (time.timeIntervalSince1970 * 1_000_000).rounded()) ?? 0 }

    private static func signed(_ text: String) -> String {
        let payload = Data(text.utf8)
        return base64URL(payload) + "." + base64URL(tag(payload))
    }

    /// The position a token stands for; nil for an empty token.
    public static func decode(_ token: String, field: String = "page.page_token") throws(LinliError) -> (Date, UUID)? {
        guard let fields = try fields(of: token, field: field) else { return nil }
        guard fields.count == 2, let micros = Int64(fields[0]), (0...latestMicros).contains(micros),
            let uuid = UUID(uuidString: String(fields[1]))
        else {
            throw .invalid(field, "is not a valid page token")
        }
        return (Date(timeIntervalSince1970: Double(micros) / 1_000_000), uuid)
    }

    /// The fields of a token this process (or one with the same secret) issued; nil for an
    /// empty token.
    private static func fields(of token: String, field: String) throws(LinliError) -> [Substring]? {
        if token.isEmpty { return nil }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count <= 200, parts.count == 2,
            let payload = fromBase64URL(parts[0]), let mac = fromBase64URL(parts[1]),
            mac.count == 16, constantTimeEqual(mac, tag(payload))
        else {
            throw .invalid(field, "is not a valid page token")
        }
        return String(decoding: payload, as: UTF8.self).split(separator: "|")
    }

    /// The token that continues after the row at (`time`, `id`, `sequence`), for lists ordered
    /// by a time, an id and a sequence number within it (device events, the access log).
    public static func encode(_ time: Date, _ id: UUID, sequence: Int64) -> String {
        signed("\(micros(time))|\(id.uuidString.lowercased())|\(sequence)")
    }

    /// The position a sequenced token stands for; nil for an empty token.
    public static func decodeSequenced(_ token: String, field: String = "page.page_token") throws(LinliError) -> (Date, UUID, Int64)? {
        guard let fields = try fields(of: token, field: field) else { return nil }
        guard fields.count == 3, let micros = Int64(fields[0]), (0...latestMicros).contains(micros),
            let uuid = UUID(uuidString: String(fields[1])), let sequence = Int64(fields[2]), sequence >= 0
        else {
            throw .invalid(field, "is not a valid page token")
        }
        return (Date(timeIntervalSince1970: Double(micros) / 1_000_000), uuid, sequence)
    }

    private static func tag(_ payload: Data) -> Data {
        key.withLock { Data(HMAC<SHA256>.authenticationCode(for: payload, using: $0).prefix(16)) }
    }

    private static func constantTimeEqual(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private static func fromBase64URL(_ text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

extension PageToken {
    /// Splits rows fetched with `limit + 1` into the page and the token of the next page
    /// (empty on the last page).
    public static func page<Row>(_ rows: [Row], limit: Int, position: (Row) -> (Date, UUID)) -> (rows: [Row], next: String) {
        guard rows.count > limit, let last = rows.prefix(limit).last else { return (rows, "") }
        let (time, id) = position(last)
        return (Array(rows.prefix(limit)), encode(time, id))
    }
}
