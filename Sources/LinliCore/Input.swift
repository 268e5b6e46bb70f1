import Foundation

/// Parsing of request fields into domain values; every failure names the field.
public enum Input {
    /// A required identifier in `field`.
    public static func id<Tag>(_ raw: String, field: String, as: Tag.Type = Tag.self) throws(LinliError) -> TypedID<Tag> {
        if raw.isEmpty { throw .invalid(field, "is required") }
        guard let uuid = UUID(uuidString: raw) else { throw .invalid(field, "is not a valid id") }
        return TypedID(uuid)
    }

    /// A list of identifiers in `field`, without duplicates.
    public static func ids<Tag>(_ raws: [String], field: String, as: Tag.Type = Tag.self) throws(LinliError) -> [TypedID<Tag>] {
        var seen = Set<TypedID<Tag>>()
        var result: [TypedID<Tag>] = []
        for (index, raw) in raws.enumerated() {
            let id: TypedID<Tag> = try Self.id(raw, field: "\(field)[\(index)]")
            if seen.insert(id).inserted { result.append(id) }
        }
        return result
    }

    /// A required text of `min...max` characters, trimmed.
    public static func text(_ raw: String, field: String, min: Int = 1, max: Int) throws(LinliError) -> String {
        let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty && min > 0 { throw .invalid(field, "is required") }
        if trimmed.count < min { throw .invalid(field, "must be at least \(min) characters") }
        if trimmed.count > max { throw .invalid(field, "must be at most \(max) characters") }
        if trimmed.unicodeScalars.contains(where: { $0.value == 0 }) { throw .invalid(field, "must not contain NUL") }
        return trimmed
    }

    /// The idempotency key every mutating RPC carries.
    public static func requestID(_ raw: String) throws(LinliError) -> String {
        if raw.isEmpty { throw .invalid("request_id", "is required for this call") }
        guard raw.utf8.count == 36, let uuid = UUID(uuidString: raw) else { throw .invalid("request_id", "must be a UUID") }
        return uuid.uuidString.lowercased()
    }

    /// A calendar date `YYYY-MM-DD` (a local business date), checked to exist.
    public static func localDate(_ raw: String, field: String) throws(LinliError) -> String {
        let parts = raw.split(separator: "-", omittingEmptySubsequences: false)
        guard raw.count == 10, parts.count == 3, let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            (2000...2100).contains(year), (1...12).contains(month)
        else {
            throw .invalid(field, "must be a date YYYY-MM-DD")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        guard let range = calendar.range(of: .day, in: .month, for: calendar.date(from: DateComponents(year: year, month: month)) ?? Date()),
            range.contains(day)
        else {
            throw .invalid(field, "is not a day of the calendar")
        }
        return raw
    }

    /// A page size: 0 means the default; more than `max` is an error.
    public static func pageSize(_ raw: Int32, field: String = "page.page_size", default def: Int = 20, max: Int = 100) throws(LinliError) -> Int {
        if raw < 0 { throw .invalid(field, "must not be negative") }
        if raw == 0 { return def }
        if Int(raw) > max { throw .invalid(field, "must be at most \(max)") }
        return Int(raw)
    }
}

extension Input {
    /// An optional mainland mobile number: 11 digits starting with 1; empty stays empty.
    public static func mobile(_ raw: String, field: String) throws(LinliError) -> String {
        let trimmed = raw.filter { !$0.isWhitespace && $0 != "-" }
        if trimmed.isEmpty { return "" }
        guard trimmed.count == 11, trimmed.first == "1", trimmed.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw .invalid(field, "must be an 11-digit mobile number")
        }
        return trimmed
    }

    /// An optional 18-character resident ID number with a valid check character; empty stays empty.
    public static func idNumber(_ raw: String, field: String) throws(LinliError) -> String {
        let trimmed = raw.trimmingCharacters(in: .whitespaces).uppercased()
        if trimmed.isEmpty { return "" }
        guard PersonalData.isValidIDNumber(trimmed) else { throw .invalid(field, "is not a valid 18-character ID number") }
        return trimmed
    }

    /// A vehicle plate: a province character then 6 (or 7 for new-energy) letters and digits, upper-cased.
    /// A short code people and devices share (a door, lot, lane, fire point or meter code):
    /// 1 to 32 ASCII letters, digits, '-' or '_'.
    public static func code(_ raw: String, field: String = "code") throws(LinliError) -> String {
        guard (1...32).contains(raw.unicodeScalars.count),
            raw.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") })
        else { throw .invalid(field, "1 to 32 letters, digits, '-' or '_'") }
        return raw
    }

    /// The one normal form of a Chinese plate, used wherever a plate is stored or compared: NFKC
    /// (full-width letters and digits become ASCII), whitespace, '·' and '-' dropped, upper case;
    /// then a province character, a letter, and 5 (ordinary) or 6 (new-energy) letters or digits,
    /// or 4–5 with a trailing 学 / 警 / 挂 / 港 / 澳 / 领 / 试 / 超. "粤ｂ·12345 " → "粤B12345".
    public static func plate(_ raw: String, field: String) throws(LinliError) -> String {
        guard let plate = normalizedPlate(raw) else {
            if raw.allSatisfy(\.isWhitespace) { throw .invalid(field, "is required") }
            throw .invalid(field, "is not a plate like 沪A12345 or 沪AD12345")
        }
        return plate
    }

    /// `plate(_:field:)` without the error: nil when `raw` is not a plate.
    public static func normalizedPlate(_ raw: String) -> String? {
        guard raw.unicodeScalars.count <= 64 else { return nil }
        let folded = raw.precomposedStringWithCompatibilityMapping
        let plate = String(folded.filter { !$0.isWhitespace && $0 != "·" && $0 != "-" && $0 != "." && $0 != "•" }).uppercased()
        let chars = Array(plate)
        guard (7...8).contains(chars.count), provinces.contains(chars[0]), chars[1].isASCII, chars[1].isLetter else { return nil }
        let body = chars.dropFirst(2)
        let ascii = body.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
        if ascii { return plate }
        guard chars.count == 7, let last = chars.last, plateSuffixes.contains(last),
            body.dropLast().allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
        else { return nil }
        return plate
    }

    static let provinces: Set<Character> = Set("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领")
    static let plateSuffixes: Set<Character> = Set("学警挂港澳领试超")

    /// A decimal with at most two places, as hundredths: "89.5" → 8950. No floating point.
    public static func hundredths(_ raw: String, field: String, max: Int64) throws(LinliError) -> Int64 {
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts[0].count <= 12,
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            parts.count == 1 || (1...2).contains(parts[1].count),
            let whole = Int64(parts[0])
        else {
            throw .invalid(field, "must be a number with at most two decimals")
        }
        var fraction: Int64 = 0
        if parts.count == 2 { fraction = Int64(parts[1].count == 1 ? parts[1] + "0" : String(parts[1])) ?? 0 }
        let value = whole * 100 + fraction
        guard value > 0 else { throw .invalid(field, "must be greater than 0") }
        guard value <= max else { throw .invalid(field, "must be at most \(max / 100)") }
        return value
    }
}
