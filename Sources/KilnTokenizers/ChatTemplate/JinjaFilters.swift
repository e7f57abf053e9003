import Foundation

extension Builtins {
    static func keyword(_ kwargs: [(String, JinjaValue)], _ name: String) -> JinjaValue? {
        kwargs.first { $0.0 == name }?.1
    }

    static func filter(_ name: String, _ value: JinjaValue, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)],
                       _ interpreter: JinjaInterpreter) throws -> JinjaValue {
        switch name {
        case "tojson":
            let indent: Int? = { if case .int(let n)? = keyword(kwargs, "indent") ?? args.first { return n } else { return nil } }()
            let separators: (String, String)? = {
                if case .array(let a)? = keyword(kwargs, "separators"), a.count == 2 { return (a[0].text, a[1].text) }
                return nil
            }()
            return .string(try JSONText.encode(value, indent: indent, separators: separators,
                                               sortKeys: keyword(kwargs, "sort_keys")?.truthy ?? false,
                                               ensureASCII: keyword(kwargs, "ensure_ascii")?.truthy ?? false))
        case "from_json":
            guard let data = value.text.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
                throw JinjaError.type("from_json: not valid JSON")
            }
            return JSONText.value(object)
        case "length", "count":
            switch value {
            case .string(let s): return .int(s.count)
            case .array(let a): return .int(a.count)
            case .object(let o): return .int(o.entries.count)
            case .undefined: return .int(0)
            default: throw JinjaError.type("object of type \(value.typeName) has no len()")
            }
        case "string": return .string(value.text)
        case "trim":
            let chars: Set<Character>? = args.first.map { Set($0.text) }
            let s = value.text
            func strip(_ c: Character) -> Bool { chars?.contains(c) ?? c.isWhitespace }
            var r = Substring(s).drop(while: strip)
            while let last = r.last, strip(last) { r = r.dropLast() }
            return .string(String(r))
        case "default", "d":
            let fallback = args.first ?? keyword(kwargs, "default_value") ?? .string("")
            let boolean = (args.count > 1 ? args[1] : keyword(kwargs, "boolean"))?.truthy ?? false
            if value.isUndefined || (boolean && !value.truthy) { return fallback }
            return value
        case "join":
            let separator = args.first?.text ?? keyword(kwargs, "d")?.text ?? ""
            var items = try interpreter.iterate(value)
            if let attribute = keyword(kwargs, "attribute") { items = try items.map { try interpreter.attribute($0, attribute.text) } }
            return .string(items.map(\.text).joined(separator: separator))
        case "list": return .array(try interpreter.iterate(value))
        case "items":
            guard case .object(let o) = value else {
                if value.isUndefined { return .array([]) }
                throw JinjaError.type("items: \(value.typeName) is not a mapping")
            }
            return .array(o.entries.map { .array([o.keyValue($0.key), $0.value]) })
        case "dictsort":
            guard case .object(let o) = value else { throw JinjaError.type("dictsort: \(value.typeName) is not a mapping") }
            let caseSensitive = keyword(kwargs, "case_sensitive")?.truthy ?? false
            let byValue = keyword(kwargs, "by")?.text == "value"
            let sorted = try o.entries.sorted { a, b in
                var x: JinjaValue = byValue ? a.value : o.keyValue(a.key), y: JinjaValue = byValue ? b.value : o.keyValue(b.key)
                if !caseSensitive, case .string(let p) = x, case .string(let q) = y { x = .string(p.lowercased()); y = .string(q.lowercased()) }
                return try compare(x, y) < 0
            }
            return .array(sorted.map { .array([o.keyValue($0.key), $0.value]) })
        case "lower": return .string(value.text.lowercased())
        case "upper": return .string(value.text.uppercased())
        case "title": return .string(title(value.text))
        case "capitalize": let s = value.text; return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "replace":
            guard args.count >= 2 else { throw JinjaError.type("replace takes two arguments") }
            return .string(replace(value.text, args[0].text, args[1].text, count: args.count > 2 ? Int(args[2].number ?? -1) : -1))
        case "selectattr", "rejectattr":
            guard let attribute = args.first?.text else { throw JinjaError.type("\(name) needs an attribute name") }
            let keep = name == "selectattr"
            guard value.truthy else { return .array([]) }  // jinja2 selects from nothing when the value is falsy (None)
            return .array(try interpreter.iterate(value).filter { item in
                let v = try interpreter.attribute(item, attribute)
                let passes = args.count > 1 ? try test(args[1].text, v, Array(args.dropFirst(2)), interpreter) : v.truthy
                return passes == keep
            })
        case "select", "reject":
            let keep = name == "select"
            guard value.truthy else { return .array([]) }
            return .array(try interpreter.iterate(value).filter { item in
                let passes = args.isEmpty ? item.truthy : try test(args[0].text, item, Array(args.dropFirst()), interpreter)
                return passes == keep
            })
        case "map":
            let items = try interpreter.iterate(value)
            if let attribute = keyword(kwargs, "attribute") {
                let fallback = keyword(kwargs, "default")
                return .array(try items.map { item in
                    let v = try interpreter.attribute(item, attribute.text)
                    return v.isUndefined ? (fallback ?? v) : v
                })
            }
            guard let filterName = args.first?.text else { throw JinjaError.type("map needs a filter name or attribute=") }
            return .array(try items.map { try filter(filterName, $0, Array(args.dropFirst()), [], interpreter) })
        case "safe": return value  // autoescape is off: marking text safe changes nothing
        case "int":
            switch value {
            case .int: return value
            case .double(let d): return .int(Int(d))
            case .bool(let b): return .int(b ? 1 : 0)
            case .string(let s):
                if let i = Int(s.trimmingCharacters(in: .whitespaces)) { return .int(i) }
                if let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .int(Int(d)) }
                return args.first ?? .int(0)
            default: return args.first ?? .int(0)
            }
        case "float":
            if let d = value.number { return .double(d) }
            if case .string(let s) = value, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .double(d) }
            return args.first ?? .double(0)
        case "abs":
            switch value {
            case .int(let i): return .int(abs(i))
            case .double(let d): return .double(abs(d))
            default: throw JinjaError.type("bad operand for abs(): \(value.typeName)")
            }
        case "round":
            let digits = Int(args.first?.number ?? 0)
            let scale = pow(10, Double(digits))
            return .double(((value.number ?? 0) * scale).rounded(.toNearestOrEven) / scale)
        case "min", "max":
            let items = try interpreter.iterate(value)
            guard var best = items.first else { return .undefined(name) }
            for item in items.dropFirst() {
                let c = try compare(item, best)
                if (name == "min" && c < 0) || (name == "max" && c > 0) { best = item }
            }
            return best
        case "unique":
            var seen: [JinjaValue] = []
            for item in try interpreter.iterate(value) where !seen.contains(item) { seen.append(item) }
            return .array(seen)
        case "first": return try interpreter.iterate(value).first ?? .undefined("first")
        case "last": return try interpreter.iterate(value).last ?? .undefined("last")
        case "reverse":
            if case .string(let s) = value { return .string(String(s.reversed())) }
            return .array(try interpreter.iterate(value).reversed())
        case "sort":
            let reverse = keyword(kwargs, "reverse")?.truthy ?? false
            let attribute = keyword(kwargs, "attribute")?.text
            var items = try interpreter.iterate(value)
            try items.sort { a, b in
                let x = try attribute.map { try interpreter.attribute(a, $0) } ?? a
                let y = try attribute.map { try interpreter.attribute(b, $0) } ?? b
                return try compare(x, y) * (reverse ? -1 : 1) < 0
            }
            return .array(items)
        case "sum":
            var total: JinjaValue = .int(0)
            for item in try interpreter.iterate(value) { total = try binary("+", total, item) }
            return total
        case "wordcount": return .int(value.text.split(whereSeparator: \.isWhitespace).count)
        case "indent":
            let width = Int(args.first?.number ?? 4)
            let first = (args.count > 1 ? args[1] : keyword(kwargs, "first"))?.truthy ?? false
            let pad = String(repeating: " ", count: max(0, width))
            let lines = value.text.components(separatedBy: "\n")
            return .string(lines.enumerated().map { i, line in
                (i == 0 && !first) || line.isEmpty ? line : pad + line
            }.joined(separator: "\n"))
        default:
            throw JinjaError.unsupported("the filter \(name)")
        }
    }

    static func test(_ name: String, _ value: JinjaValue, _ args: [JinjaValue], _ interpreter: JinjaInterpreter) throws -> Bool {
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "string": return value.isString
        case "mapping": if case .object = value { return true }; if case .namespace = value { return true }; return false
        case "iterable", "sequence":
            switch value {
            case .array, .string, .object: return true
            default: return false
            }
        case "boolean": if case .bool = value { return true }; return false
        case "true": if case .bool(true) = value { return true }; return false
        case "false": if case .bool(false) = value { return true }; return false
        case "number":
            switch value {
            case .int, .double, .bool: return true
            default: return false
            }
        case "integer": if case .int = value { return true }; return false
        case "float": if case .double = value { return true }; return false
        case "callable": if case .function = value { return true }; return false
        case "eq", "equalto", "==", "sameas": return value == (args.first ?? .none)
        case "ne", "!=": return value != (args.first ?? .none)
        case "gt", ">": return try compare(value, args.first ?? .none) > 0
        case "lt", "<": return try compare(value, args.first ?? .none) < 0
        case "ge", ">=": return try compare(value, args.first ?? .none) >= 0
        case "le", "<=": return try compare(value, args.first ?? .none) <= 0
        case "in": return try contains(args.first ?? .none, value)
        case "odd": if case .int(let i) = value { return i % 2 != 0 }; return false
        case "even": if case .int(let i) = value { return i % 2 == 0 }; return false
        case "divisibleby":
            guard case .int(let i) = value, case .int(let d)? = args.first, d != 0 else { return false }
            return i % d == 0
        case "lower": return value.text == value.text.lowercased()
        case "upper": return value.text == value.text.uppercased()
        default: throw JinjaError.unsupported("the test \(name)")
        }
    }
}

/// JSON as Python's json.dumps writes it (transformers' tojson): ", " and ": " separators unless
/// given, insertion order unless sort_keys, non-ASCII kept unless ensure_ascii.
enum JSONText {
    static func encode(_ v: JinjaValue, indent: Int?, separators: (String, String)?, sortKeys: Bool, ensureASCII: Bool) throws -> String {
        let (itemSeparator, keySeparator) = separators ?? (indent == nil ? (", ", ": ") : (",", ": "))
        var out = ""
        func write(_ v: JinjaValue, _ level: Int) throws {
            func newline(_ l: Int) { if let indent { out += "\n" + String(repeating: " ", count: indent * l) } }
            switch v {
            case .none: out += "null"
            case .bool(let b): out += b ? "true" : "false"
            case .int(let i): out += String(i)
            case .double(let d):
                guard d.isFinite else { out += d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity"); return }
                out += pythonFloat(d)
            case .string(let s): out += quote(s, ensureASCII)
            case .array(let a):
                if a.isEmpty { out += "[]"; return }
                out += "["
                for (i, item) in a.enumerated() {
                    if i > 0 { out += itemSeparator }
                    newline(level + 1)
                    try write(item, level + 1)
                }
                newline(level)
                out += "]"
            case .object(let o):
                if o.entries.isEmpty { out += "{}"; return }
                out += "{"
                let entries = sortKeys ? o.entries.sorted { Array($0.key.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.key.unicodeScalars.map(\.value)) } : o.entries
                for (i, entry) in entries.enumerated() {
                    if i > 0 { out += itemSeparator }
                    newline(level + 1)
                    out += quote(entry.key, ensureASCII) + keySeparator
                    try write(entry.value, level + 1)
                }
                newline(level)
                out += "}"
            case .namespace(let ns): try write(.object(ns.attributes), level)
            case .undefined(let n): throw JinjaError.type("Object of type Undefined (\(n)) is not JSON serializable")
            case .function(let f): throw JinjaError.type("function \(f.name) is not JSON serializable")
            }
        }
        try write(v, 0)
        return out
    }

    static func quote(_ s: String, _ ensureASCII: Bool) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 || (ensureASCII && u.value > 0x7E) {
                    if u.value > 0xFFFF {
                        let v = u.value - 0x10000
                        out += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                    } else {
                        out += String(format: "\\u%04x", u.value)
                    }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// A Foundation JSON object as a template value (key order as parsed).
    static func value(_ object: Any) -> JinjaValue {
        switch object {
        case is NSNull: return .none
        case let n as NSNumber:
            if String(cString: n.objCType) == "c" { return .bool(n.boolValue) }  // how Foundation stores JSON booleans
            if n.doubleValue == n.doubleValue.rounded(), !String(describing: n).contains(".") { return .int(n.intValue) }
            return .double(n.doubleValue)
        case let s as String: return .string(s)
        case let a as [Any]: return .array(a.map(value))
        case let d as [String: Any]: return .object(JinjaObject(d.map { ($0.key, value($0.value)) }.sorted { $0.0 < $1.0 }))
        default: return .none
        }
    }
}
