/// Finds TOML text that would make TOMLKit's parser (toml++ 3.4) abort the process instead of reporting an error.
///
/// toml++ asserts (its assertions stay on in SwiftPM builds) that a table header's key starts with a bare-key
/// character or a quote: `[` (or `[[`), optional spaces or tabs, then anything else (a line break, `=`, `.`, `#`,
/// a third `[`, ...) is not reported as a syntax error but aborts. Found by fuzzing (Fuzz/Targets/Config.swift).
///
/// The scan follows TOML's statement structure (comments, strings of all four kinds, arrays and inline tables that
/// span lines), so a `[` inside a value is never taken for a header. It is exact for valid TOML; text that is
/// invalid before the header would have been rejected by toml++ before it got there, so a finding in such text is
/// still a syntax error.
enum TOMLGuard {
    /// The 1-based line and column (in Unicode scalars) of the first character after `[` / `[[` that would abort
    /// the parser, or nil when there is none.
    static func abortingTableHeader(in text: String) -> (line: Int, column: Int)? {
        let b = Array(text.utf8)
        // toml++ skips a byte order mark at the start, so a header may follow it directly.
        let start = b.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var i = start
        while i < b.count {
            // Statement start: skip blanks, empty lines and comments.
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D:
                i += 1
                continue
            case 0x23:  // "#"
                i = lineEnd(b, from: i)
                continue
            case 0x5B:  // "[": a table header
                var j = i + 1
                if j < b.count && b[j] == 0x5B { j += 1 }
                while j < b.count && (b[j] == 0x20 || b[j] == 0x09) { j += 1 }
                if j < b.count && !startsHeaderKey(b[j]) { return position(b, j, from: start) }
            default:
                break
            }
            i = statementEnd(b, from: i)
        }
        return nil
    }

    /// A character toml++ accepts where a header key starts: bare-key characters, quotes, and "]" (an empty key,
    /// which it reports as an error itself).
    static func startsHeaderKey(_ c: UInt8) -> Bool {
        switch c {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x5F, 0x2D, 0x22, 0x27, 0x5D: return true
        default: return false
        }
    }

    /// Index of the line break ending the line at `from` (or the end).
    static func lineEnd(_ b: [UInt8], from: Int) -> Int {
        var i = from
        while i < b.count && b[i] != 0x0A { i += 1 }
        return i
    }

    /// Index just past the statement (header or key/value pair) starting at `from`: the first line break outside
    /// strings, comments-in-arrays and brackets.
    static func statementEnd(_ b: [UInt8], from: Int) -> Int {
        var i = from
        var depth = 0
        while i < b.count {
            let c = b[i]
            switch c {
            case 0x0A:
                if depth <= 0 { return i + 1 }
                i += 1
            case 0x23:
                i = lineEnd(b, from: i)
            case 0x5B, 0x7B:  // "[" "{"
                depth += 1
                i += 1
            case 0x5D, 0x7D:  // "]" "}"
                depth -= 1
                i += 1
            case 0x22, 0x27:  // '"' "'"
                i = stringEnd(b, from: i)
            default:
                i += 1
            }
        }
        return i
    }

    /// Index just past the string starting with the quote at `from`: basic ("...", backslash escapes) or literal
    /// ('...'), single-line (ends at its line break if unterminated) or multi-line (three quotes, which may be
    /// followed by up to two more quotes that belong to the content).
    static func stringEnd(_ b: [UInt8], from: Int) -> Int {
        let q = b[from]
        let basic = q == 0x22
        if from + 2 < b.count && b[from + 1] == q && b[from + 2] == q {
            var i = from + 3
            while i < b.count {
                if basic && b[i] == 0x5C { i += 2; continue }
                if b[i] == q && i + 2 < b.count && b[i + 1] == q && b[i + 2] == q {
                    i += 3
                    var extra = 0
                    while extra < 2 && i < b.count && b[i] == q { i += 1; extra += 1 }
                    return i
                }
                i += 1
            }
            return b.count
        }
        var i = from + 1
        while i < b.count {
            let c = b[i]
            if c == 0x0A { return i }
            if basic && c == 0x5C { i += 2; continue }
            if c == q { return i + 1 }
            i += 1
        }
        return b.count
    }

    /// 1-based line and column of byte `index`, counting from byte `from` (after a byte order mark, as toml++
    /// does); columns count Unicode scalars.
    static func position(_ b: [UInt8], _ index: Int, from: Int) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for k in from..<index {
            if b[k] == 0x0A {
                line += 1
                column = 1
            } else if b[k] & 0xC0 != 0x80 {
                column += 1
            }
        }
        return (line, column)
    }
}
