/// Splits template source into text and tag tokens, applying jinja2's whitespace rules as
/// transformers configures them: trim_blocks, lstrip_blocks, `-` markers, and the final newline
/// of the source dropped (keep_trailing_newline off).
struct JinjaLexer {
    enum Token: Equatable {
        case text(String)
        case outputStart, outputEnd, blockStart, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case symbol(String)
    }

    enum Kind { case output, block, comment }

    /// A raw segment before whitespace handling.
    private enum Segment {
        case text(String)
        case tag(kind: Kind, tokens: [Token], stripBefore: Bool, stripAfter: Bool)
    }

    static func tokenize(_ source: String) throws -> [Token] {
        var scalars = Array(source.unicodeScalars)
        if scalars.last == "\n" { scalars.removeLast() }
        var segments: [Segment] = []
        var text: [Unicode.Scalar] = []
        var i = 0
        while i < scalars.count {
            if scalars[i] == "{", i + 1 < scalars.count, ["{", "%", "#"].contains(scalars[i + 1]) {
                let kind: Kind = scalars[i + 1] == "{" ? .output : (scalars[i + 1] == "%" ? .block : .comment)
                segments.append(.text(String(String.UnicodeScalarView(text))))
                text.removeAll()
                var j = i + 2
                var stripBefore = false
                if j < scalars.count && scalars[j] == "-" { stripBefore = true; j += 1 } else if j < scalars.count && scalars[j] == "+" { j += 1 }
                if kind == .comment {
                    var end = j
                    while end + 1 < scalars.count && !(scalars[end] == "#" && scalars[end + 1] == "}") { end += 1 }
                    guard end + 1 < scalars.count else { throw JinjaError.syntax("unclosed comment") }
                    let stripAfter = end > j && scalars[end - 1] == "-"
                    segments.append(.tag(kind: .comment, tokens: [], stripBefore: stripBefore, stripAfter: stripAfter))
                    i = end + 2
                    continue
                }
                var cursor = j
                var tokens: [Token] = []
                let stripAfter = try lexTag(scalars, &cursor, kind: kind, into: &tokens)
                segments.append(.tag(kind: kind, tokens: tokens, stripBefore: stripBefore, stripAfter: stripAfter))
                i = cursor
                continue
            }
            text.append(scalars[i])
            i += 1
        }
        segments.append(.text(String(String.UnicodeScalarView(text))))
        return applyWhitespace(segments)
    }

    /// Reads tokens up to the closing `}}` / `%}` (outside strings); returns whether it was `-`.
    private static func lexTag(_ s: [Unicode.Scalar], _ i: inout Int, kind: Kind, into tokens: inout [Token]) throws -> Bool {
        let close: Unicode.Scalar = kind == .output ? "}" : "%"
        while i < s.count {
            let c = s[i]
            if c == " " || c == "\t" || c == "\n" || c == "\r" { i += 1; continue }
            if c == "-" && i + 2 < s.count && s[i + 1] == close && s[i + 2] == "}" { i += 3; return true }
            if c == close && i + 1 < s.count && s[i + 1] == "}" { i += 2; return false }
            if c == "'" || c == "\"" {
                i += 1
                var value = String.UnicodeScalarView()
                while i < s.count && s[i] != c {
                    if s[i] == "\\" && i + 1 < s.count {
                        i += 1
                        switch s[i] {
                        case "n": value.append("\n")
                        case "t": value.append("\t")
                        case "r": value.append("\r")
                        case "\\": value.append("\\")
                        case "'": value.append("'")
                        case "\"": value.append("\"")
                        default: value.append("\\"); value.append(s[i])
                        }
                    } else {
                        value.append(s[i])
                    }
                    i += 1
                }
                guard i < s.count else { throw JinjaError.syntax("unterminated string") }
                i += 1
                tokens.append(.string(String(value)))
                continue
            }
            if c.properties.numericType != nil && ("0"..."9").contains(c) {
                var j = i
                while j < s.count && ("0"..."9").contains(s[j]) { j += 1 }
                if j + 1 < s.count && s[j] == "." && ("0"..."9").contains(s[j + 1]) {
                    j += 1
                    while j < s.count && ("0"..."9").contains(s[j]) { j += 1 }
                    tokens.append(.float(Double(String(String.UnicodeScalarView(s[i..<j])))!))
                } else {
                    guard let n = Int(String(String.UnicodeScalarView(s[i..<j]))) else { throw JinjaError.syntax("number too large") }
                    tokens.append(.integer(n))
                }
                i = j
                continue
            }
            if c == "_" || c.properties.isAlphabetic {
                var j = i
                while j < s.count && (s[j] == "_" || s[j].properties.isAlphabetic || ("0"..."9").contains(s[j])) { j += 1 }
                tokens.append(.name(String(String.UnicodeScalarView(s[i..<j]))))
                i = j
                continue
            }
            let two = i + 1 < s.count ? String(String.UnicodeScalarView([c, s[i + 1]])) : ""
            if ["==", "!=", "<=", ">=", "//", "**"].contains(two) {
                tokens.append(.symbol(two))
                i += 2
                continue
            }
            if "+-*/%~<>=()[]{},.:|".unicodeScalars.contains(c) {
                tokens.append(.symbol(String(c)))
                i += 1
                continue
            }
            throw JinjaError.syntax("unexpected character \(String(c).debugDescription)")
        }
        throw JinjaError.syntax("unclosed tag")
    }

    private static func applyWhitespace(_ segments: [Segment]) -> [Token] {
        var texts: [String] = []
        var tags: [(Kind, [Token], Bool, Bool)] = []
        // Segments alternate text, tag, text, …, text.
        for segment in segments {
            switch segment {
            case .text(let t): texts.append(t)
            case .tag(let kind, let tokens, let before, let after): tags.append((kind, tokens, before, after))
            }
        }
        // True when the text before the next tag starts at a line start in the source: at the
        // beginning, or after a tag whose trailing newline was consumed.
        var lineStarting = true
        for (n, tag) in tags.enumerated() {
            let (kind, _, stripBefore, stripAfter) = tag
            if stripBefore {
                texts[n] = String(texts[n].reversed().drop(while: { $0.isWhitespace }).reversed())
            } else if kind != .output {
                // lstrip_blocks: spaces/tabs between a line start and a block or comment tag.
                let tail = texts[n].reversed().prefix(while: { $0 != "\n" })
                let atLineStart = tail.count < texts[n].count || lineStarting
                if atLineStart && tail.allSatisfy({ $0 == " " || $0 == "\t" }) { texts[n].removeLast(tail.count) }
            }
            lineStarting = false
            if stripAfter {
                let removed = texts[n + 1].prefix(while: { $0.isWhitespace })
                lineStarting = removed.last == "\n" || removed.last == "\r\n"
                texts[n + 1].removeFirst(removed.count)
            } else if kind != .output, texts[n + 1].hasPrefix("\n") || texts[n + 1].hasPrefix("\r\n") {
                texts[n + 1].removeFirst()  // trim_blocks ("\r\n" is one Character)
                lineStarting = true
            }
        }
        var tokens: [Token] = []
        for (n, text) in texts.enumerated() {
            if !text.isEmpty { tokens.append(.text(text)) }
            guard n < tags.count else { continue }
            let (kind, inner, _, _) = tags[n]
            switch kind {
            case .output: tokens += [.outputStart] + inner + [.outputEnd]
            case .block: tokens += [.blockStart] + inner + [.blockEnd]
            case .comment: break
            }
        }
        return tokens
    }
}

extension JinjaLexer.Token: CustomStringConvertible {
    var description: String {
        switch self {
        case .text(let t): return "text \(String(t.prefix(20)).debugDescription)"
        case .outputStart: return "{{"
        case .outputEnd: return "}}"
        case .blockStart: return "{%"
        case .blockEnd: return "%}"
        case .name(let n): return "'\(n)'"
        case .string(let s): return "string \(s.debugDescription)"
        case .integer(let i): return "\(i)"
        case .float(let d): return "\(d)"
        case .symbol(let s): return "'\(s)'"
        }
    }
}

/// Why a template could not be parsed or rendered.
public enum JinjaError: Error, Equatable, CustomStringConvertible {
    case syntax(String)
    case undefined(String)
    case type(String)
    case raised(String)
    case limit(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .syntax(let m): return "template syntax error: \(m)"
        case .undefined(let m): return "undefined: \(m)"
        case .type(let m): return "type error: \(m)"
        case .raised(let m): return m
        case .limit(let m): return "template stopped: \(m)"
        case .unsupported(let m): return "not supported in templates: \(m)"
        }
    }
}
