import Foundation

/// The opaque keyset token of lists ordered newest first by (time, id).
public enum PageToken {
    /// The token that continues after the row at (`time`, `id`).
    public static func encode(_ time: Date, _ id: UUID) -> String {
        let micros = Int64((time.timeIntervalSince1970 * 1_000_000).rounded())
        return Data("\(micros)|\(id.uuidString.lowercased())".utf8).base64EncodedString()
    }

    /// The position a token stands for; nil for an empty token.
    public static func decode(_ token: String, field: String = "page.page_token") throws(LinliError) -> (Date, UUID)? {
        if token.isEmpty { return nil }
        let parts = String(decoding: Data(base64Encoded: token) ?? Data(), as: UTF8.self).split(separator: "|")
        guard parts.count == 2, let micros = Int64(parts[0]), let uuid = UUID(uuidString: String(parts[1])) else {
            throw .invalid(field, "is not a valid page token")
        }
        return (Date(timeIntervalSince1970: Double(micros) / 1_000_000), uuid)
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
