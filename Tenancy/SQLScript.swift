/// Splits an SQL script into statements, because PostgreSQL's extended query protocol
/// (the one postgres-nio speaks) takes one statement at a time.
///
/// Understands quoted strings and identifiers, `--` and `/* */` comments and
/// dollar-quoted bodies, so a `;` inside any of them does not split.
public enum SQLScript {
    /// The statements of `script`, trimmed, without empty ones and without the final `;`.
    public static func statements(_ script: String) -> [String] {
        let chars = Array(script.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var i = 0
        func flush() {
            let text = String(current).trimmingWhitespace()
            if !text.isEmpty && !text.isOnlyComments { statements.append(text) }
            current.removeAll()
        }
        while i < chars.count {
            let c = chars[i]
            let next: Unicode.Scalar? = i + 1 < chars.count ? chars[i + 1] : nil
            if c == "-" && next == "-" {
                while i < chars.count && chars[i] != "\n" { current.append(chars[i]); i += 1 }
                continue
            }
            if c == "/" && next == "*" {
                current.append(c); current.append("*"); i += 2
                while i < chars.count && !(chars[i] == "*" && i + 1 < chars.count && chars[i + 1] == "/") {
                    current.append(chars[i]); i += 1
                }
                if i < chars.count { current.append("*"); current.append("/"); i += 2 }
                continue
            }
            if c == "'" || c == "\"" {
                current.append(c); i += 1
                while i < chars.count {
                    current.append(chars[i])
                    if chars[i] == c {
                        if i + 1 < chars.count && chars[i + 1] == c { current.append(c); i += 2; continue }
                        i += 1
                        break
                    }
                    i += 1
                }
                continue
            }
            if c == "$", let tagEnd = dollarTagEnd(chars, from: i) {
                let tag = Array(chars[i...tagEnd])
                for t in tag { current.append(t) }
                i = tagEnd + 1
                while i < chars.count {
                    if chars[i] == "$" && i + tag.count <= chars.count && Array(chars[i..<(i + tag.count)]) == tag {
                        for t in tag { current.append(t) }
                        i += tag.count
                        break
                    }
                    current.append(chars[i]); i += 1
                }
                continue
            }
            if c == ";" { flush(); i += 1; continue }
            current.append(c)
            i += 1
        }
        flush()
        return statements
    }

    /// One `DO` block that runs `statements` in order with `EXECUTE`, so a whole script costs
    /// one round trip instead of one per statement; nil when a statement holds the block's
    /// own quote tags (then run them one by one).
    public static func block(_ statements: [String]) -> String? {
        let outer = "$linli_block$", inner = "$linli_statement$"
        guard !statements.contains(where: { $0.contains(outer) || $0.contains(inner) }) else { return nil }
        return "DO \(outer)\nBEGIN\n" + statements.map { "EXECUTE \(inner)\($0)\n\(inner);\n" }.joined() + "END\n\(outer)"
    }

    /// The index of the closing `$` of a dollar-quote tag starting at `start`, if it is one.
    private static func dollarTagEnd(_ chars: [Unicode.Scalar], from start: Int) -> Int? {
        var j = start + 1
        while j < chars.count {
            let c = chars[j]
            if c == "$" { return j }
            let isTagChar = c == "_" || (c.properties.isAlphabetic) || (j > start + 1 && c.properties.numericType != nil)
            if !isTagChar { return nil }
            j += 1
        }
        return nil
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }

    fileprivate var isOnlyComments: Bool {
        split(separator: "\n").allSatisfy { line in
            let trimmed = String(line).trimmingWhitespace()
            return trimmed.isEmpty || trimmed.hasPrefix("--")
        }
    }
}
