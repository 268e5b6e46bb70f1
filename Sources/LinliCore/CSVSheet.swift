import Foundation

/// The checks every CSV import shares: a header naming the columns (in any order), lines split
/// with RFC 4180 quoting, and every problem collected by line number and column so that one
/// report can name them all.
public struct CSVSheet: Sendable {
    public struct LineError: Sendable, Equatable {
        public var line: Int
        public var column: String
        public var message: String
    }

    public static let maxLineLength = 2_000
    public static let maxReportedErrors = 1_000

    /// What the import is of, for messages ("rooms", "meter readings").
    public let name: String
    public let columns: [String]
    public let optional: Set<String>
    /// Problems in line order; at most `maxReportedErrors`, all counted in `errorCount`.
    public private(set) var errors: [LineError] = []
    public private(set) var errorCount = 0
    /// Data lines read (blank lines are skipped).
    public var rows = 0
    private var positions: [String: Int] = [:]

    public init(name: String, columns: [String], optional: Set<String>) {
        self.name = name
        self.columns = columns
        self.optional = optional
    }

    /// Splits one CSV line into fields (RFC 4180 quoting); nil when a quote is left open.
    public static func fields(_ line: String) -> [String]? {
        var fields: [String] = []
        var field = ""
        var quoted = false
        var iterator = Array(line).makeIterator()
        var pending: Character? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    let next = iterator.next()
                    if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                } else {
                    field.append(c)
                }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == "," {
                fields.append(field)
                field = ""
            } else {
                field.append(c)
            }
        }
        if quoted { return nil }
        fields.append(field)
        return fields
    }

    public mutating func fail(_ line: Int, _ column: String, _ message: String) {
        errorCount += 1
        if errors.count < Self.maxReportedErrors { errors.append(LineError(line: line, column: column, message: message)) }
    }

    /// Reads line 1: every required column present, none unknown or twice.
    public mutating func readHeader(_ line: String?) {
        guard let line else { return fail(1, "", "the file is empty: line 1 must be the header") }
        guard let names = Self.fields(line.hasPrefix("\u{FEFF}") ? String(line.dropFirst()) : line) else {
            return fail(1, "", "an opening quote is not closed")
        }
        for (index, raw) in names.enumerated() {
            let name = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if !columns.contains(name) {
                fail(1, name, "is not a column of a \(self.name) import (columns: \(columns.joined(separator: ", ")))")
            } else if positions[name] != nil {
                fail(1, name, "appears twice")
            } else {
                positions[name] = index
            }
        }
        for name in columns where positions[name] == nil && !optional.contains(name) {
            fail(1, name, "is missing from the header")
        }
    }

    /// The line's trimmed fields by column name, or nil (and an error) when it cannot be split.
    public mutating func values(_ line: String, number: Int) -> [String: String]? {
        guard line.count <= Self.maxLineLength else {
            fail(number, "", "is longer than \(Self.maxLineLength) characters")
            return nil
        }
        guard let fields = Self.fields(line) else {
            fail(number, "", "an opening quote is not closed")
            return nil
        }
        guard fields.count == positions.count else {
            fail(number, "", "has \(fields.count) fields; the header has \(positions.count)")
            return nil
        }
        return positions.mapValues { fields[$0].trimmingCharacters(in: .whitespaces) }
    }

    /// Runs `parse`, turning a field error into a line error; nil when it failed.
    public mutating func field<T>(_ line: Int, _ column: String, _ parse: () throws(LinliError) -> T) -> T? {
        do {
            return try parse()
        } catch {
            let prefix = (error.field ?? column) + ": "
            // The error's own field when it is a column of the sheet (a date checked while parsing a value).
            let named = error.field.flatMap { columns.contains($0) ? $0 : nil } ?? column
            fail(line, named, error.message.hasPrefix(prefix) ? String(error.message.dropFirst(prefix.count)) : error.message)
            return nil
        }
    }

    /// Reads every data line after the header into `row`; blank lines are skipped.
    public mutating func read(_ lines: [String], _ row: (inout CSVSheet, [String: String], Int) throws -> Void) rethrows {
        readHeader(lines.first)
        guard errorCount == 0 else { return }
        for (index, line) in lines.enumerated().dropFirst() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            rows += 1
            guard let values = values(line, number: index + 1) else { continue }
            try row(&self, values, index + 1)
        }
        if errorCount == 0 && rows == 0 { fail(2, "", "the file has a header but no rows") }
    }
}
