import Foundation
import GRPCCore
import LinliAPI
import LinliCore
import SwiftProtobuf

/// Checks every field of a request message against `InputLimits` before any handler sees it:
/// texts (length, no control characters, no bidirectional overrides), counts of repeated
/// fields, integer ranges, timestamps within 2000–2100, known enum values, and `request_id`
/// as a UUID. A failure is `INVALID_ARGUMENT` naming the field by its path
/// (`methods[2].amount_fen`).
public struct InputGuard: SwiftProtobuf.Visitor {
    private let message: String
    private let names: [Int: String]
    private let prefix: String

    private init(_ type: any SwiftProtobuf.Message.Type, prefix: String) {
        let full = type.protoMessageName
        message = full.split(separator: ".").last.map(String.init) ?? full
        names = ProtoFieldNames.table[full] ?? [:]
        self.prefix = prefix
    }

    /// Checks `message` and everything inside it.
    public static func check(_ message: some SwiftProtobuf.Message) throws(LinliError) {
        try check(message, prefix: "")
    }

    private static func check(_ message: some SwiftProtobuf.Message, prefix: String) throws(LinliError) {
        var guardian = InputGuard(type(of: message), prefix: prefix)
        do {
            try message.traverse(visitor: &guardian)
        } catch let error as LinliError {
            throw error
        } catch {
            throw LinliError.invalid("request", "could not be read")
        }
    }

    private func name(_ number: Int) -> String { names[number] ?? "field_\(number)" }
    private func path(_ number: Int) -> String { prefix + name(number) }

    // MARK: texts

    private func checkText(_ value: String, _ number: Int, path: String) throws(LinliError) {
        let field = name(number)
        let limit = InputLimits.text(message, field)
        // A scalar is at least one byte, so the byte count bounds the work before counting.
        if value.utf8.count > limit.maxLength * 4 || value.unicodeScalars.count > limit.maxLength {
            throw .invalid(path, "must be at most \(limit.maxLength) characters")
        }
        for scalar in value.unicodeScalars where Self.isForbidden(scalar, multiline: limit.multiline) {
            throw .invalid(path, scalar.value == 0 ? "must not contain NUL" : "must not contain control characters")
        }
        if field == "request_id", !value.isEmpty, UUID(uuidString: value) == nil {
            throw .invalid(path, "must be a UUID")
        }
    }

    /// C0 and C1 controls (tab and line breaks only in multi-line fields), DEL, the
    /// bidirectional overrides and isolates that make text read differently than it is stored,
    /// and the non-characters U+FFFE / U+FFFF.
    static func isForbidden(_ scalar: Unicode.Scalar, multiline: Bool) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: !multiline
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x202A...0x202E, 0x2066...0x2069, 0xFFFE, 0xFFFF: true
        default: false
        }
    }

    private func checkInteger(_ value: Int64, _ number: Int, path: String) throws(LinliError) {
        let range = InputLimits.integer(message, name(number))
        guard range.contains(value) else {
            throw .invalid(path, "must be from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    private func checkCount(_ count: Int, _ number: Int) throws(LinliError) {
        let max = InputLimits.count(message, name(number))
        if count > max { throw .invalid(path(number), "must have at most \(max) entries") }
    }

    private func checkTimestamp(_ value: Google_Protobuf_Timestamp, path: String) throws(LinliError) {
        guard (InputLimits.earliestSeconds..<InputLimits.latestSeconds).contains(value.seconds),
            (0..<1_000_000_000).contains(value.nanos)
        else {
            throw .invalid(path, "must be between 2000-01-01 and 2100-01-01")
        }
    }

    private func checkMessage<M: SwiftProtobuf.Message>(_ value: M, path: String) throws(LinliError) {
        if let timestamp = value as? Google_Protobuf_Timestamp {
            try checkTimestamp(timestamp, path: path)
        } else {
            try Self.check(value, prefix: path + ".")
        }
    }

    private func checkEnum<E: SwiftProtobuf.Enum>(_ value: E, path: String) throws(LinliError) {
        // Generated enums answer an unknown number with their UNRECOGNIZED case.
        if E(rawValue: value.rawValue).map({ "\($0)".hasPrefix("UNRECOGNIZED") }) ?? true {
            throw .invalid(path, "is not a known value")
        }
    }

    // MARK: the visitor

    public mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws {
        guard value.isFinite else { throw LinliError.invalid(path(fieldNumber), "must be a finite number") }
    }

    public mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws {
        try checkInteger(value, fieldNumber, path: path(fieldNumber))
    }

    public mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws {
        try checkInteger(Int64(exactly: value) ?? .max, fieldNumber, path: path(fieldNumber))
    }

    public mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws {}

    public mutating func visitSingularStringField(value: String, fieldNumber: Int) throws {
        try checkText(value, fieldNumber, path: path(fieldNumber))
    }

    public mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws {
        let max = InputLimits.text(message, name(fieldNumber)).maxLength
        if value.count > max { throw LinliError.invalid(path(fieldNumber), "must be at most \(max) bytes") }
    }

    public mutating func visitSingularEnumField<E: SwiftProtobuf.Enum>(value: E, fieldNumber: Int) throws {
        try checkEnum(value, path: path(fieldNumber))
    }

    public mutating func visitSingularMessageField<M: SwiftProtobuf.Message>(value: M, fieldNumber: Int) throws {
        try checkMessage(value, path: path(fieldNumber))
    }

    public mutating func visitSingularGroupField<G: SwiftProtobuf.Message>(value: G, fieldNumber: Int) throws {
        try checkMessage(value, path: path(fieldNumber))
    }

    public mutating func visitRepeatedStringField(value: [String], fieldNumber: Int) throws {
        try checkCount(value.count, fieldNumber)
        for (index, text) in value.enumerated() { try checkText(text, fieldNumber, path: "\(path(fieldNumber))[\(index)]") }
    }

    public mutating func visitRepeatedBytesField(value: [Data], fieldNumber: Int) throws {
        try checkCount(value.count, fieldNumber)
        for item in value { try visitSingularBytesField(value: item, fieldNumber: fieldNumber) }
    }

    public mutating func visitRepeatedInt32Field(value: [Int32], fieldNumber: Int) throws {
        try checkIntegers(value.map(Int64.init), fieldNumber)
    }

    public mutating func visitPackedInt32Field(value: [Int32], fieldNumber: Int) throws {
        try checkIntegers(value.map(Int64.init), fieldNumber)
    }

    public mutating func visitRepeatedInt64Field(value: [Int64], fieldNumber: Int) throws {
        try checkIntegers(value, fieldNumber)
    }

    public mutating func visitPackedInt64Field(value: [Int64], fieldNumber: Int) throws {
        try checkIntegers(value, fieldNumber)
    }

    private func checkIntegers(_ values: [Int64], _ number: Int) throws(LinliError) {
        try checkCount(values.count, number)
        for (index, value) in values.enumerated() { try checkInteger(value, number, path: "\(path(number))[\(index)]") }
    }

    public mutating func visitRepeatedEnumField<E: SwiftProtobuf.Enum>(value: [E], fieldNumber: Int) throws {
        try checkCount(value.count, fieldNumber)
        for (index, item) in value.enumerated() { try checkEnum(item, path: "\(path(fieldNumber))[\(index)]") }
    }

    public mutating func visitPackedEnumField<E: SwiftProtobuf.Enum>(value: [E], fieldNumber: Int) throws {
        try visitRepeatedEnumField(value: value, fieldNumber: fieldNumber)
    }

    public mutating func visitRepeatedMessageField<M: SwiftProtobuf.Message>(value: [M], fieldNumber: Int) throws {
        try checkCount(value.count, fieldNumber)
        for (index, item) in value.enumerated() { try checkMessage(item, path: "\(path(fieldNumber))[\(index)]") }
    }

    public mutating func visitRepeatedGroupField<G: SwiftProtobuf.Message>(value: [G], fieldNumber: Int) throws {
        try visitRepeatedMessageField(value: value, fieldNumber: fieldNumber)
    }

    public mutating func visitMapField<KeyType, ValueType: MapValueType>(
        fieldType: _ProtobufMap<KeyType, ValueType>.Type, value: _ProtobufMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws {
        try checkCount(value.count, fieldNumber)
    }

    public mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type, value: _ProtobufEnumMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws where ValueType.RawValue == Int {
        try checkCount(value.count, fieldNumber)
    }

    public mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type, value: _ProtobufMessageMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws {
        try checkCount(value.count, fieldNumber)
    }

    public mutating func visitExtensionFields(fields: ExtensionFieldValueSet, start: Int, end: Int) throws {}

    /// Fields this server does not know (a newer client) are ignored, as protobuf intends.
    public mutating func visitUnknown(bytes: Data) throws {}
}

/// Third in the chain: every request message passes `InputGuard` before the handler reads it.
struct InputInterceptor: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        var request = request
        let messages = request.messages
        request.messages = RPCAsyncSequence(
            wrapping: messages.map { @Sendable message in
                if let message = message as? any SwiftProtobuf.Message { try InputGuard.check(message) }
                return message
            })
        return try await next(request, context)
    }
}
