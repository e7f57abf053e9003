import Foundation

/// The globals, filters, tests, operators and methods templates use, with Python's meaning.
enum Builtins {
    // MARK: globals

    static func global(_ name: String) -> JinjaValue? {
        switch name {
        case "raise_exception":
            return .function(JinjaFunction(name: name) { args, _, _ in
                throw JinjaError.raised(args.first?.text ?? "raise_exception called")
            })
        case "namespace":
            return .function(JinjaFunction(name: name) { args, kwargs, _ in
                var attributes = JinjaObject()
                if case .object(let o)? = args.first { for (k, v) in o.entries { attributes[k] = v } }
                for (k, v) in kwargs {
                    if k.hasPrefix("_") { throw JinjaError.type("namespace attribute \(k) is unsafe") }
                    attributes[k] = v
                }
                return .namespace(JinjaNamespace(attributes))
            })
        case "dict":
            return .function(JinjaFunction(name: name) { args, kwargs, _ in
                var o = JinjaObject()
                if case .object(let base)? = args.first { for (k, v) in base.entries { o[k] = v } }
                for (k, v) in kwargs { o[k] = v }
                return .object(o)
            })
        case "range":
            return .function(JinjaFunction(name: name) { args, _, _ in
                let ints = try args.map { v -> Int in
                    guard case .int(let i) = v else { throw JinjaError.type("range() takes integers") }
                    return i
                }
                let (start, stop, step): (Int, Int, Int)
                switch ints.count {
                case 1: (start, stop, step) = (0, ints[0], 1)
                case 2: (start, stop, step) = (ints[0], ints[1], 1)
                case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
                default: throw JinjaError.type("range() takes 1 to 3 arguments")
                }
                guard step != 0 else { throw JinjaError.type("range() step must not be zero") }
                let values = Array(stride(from: start, to: stop, by: step))
                guard values.count <= 1_000_000 else { throw JinjaError.limit("range() of \(values.count) items") }
                return .array(values.map { .int($0) })
            })
        case "strftime_now":
            return .function(JinjaFunction(name: name) { args, _, interpreter in
                .string(strftime(args.first?.text ?? "", interpreter.now))
            })
        default:
            return nil
        }
    }

    static func strftime(_ format: String, _ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        localtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 256)
        let n = Foundation.strftime(&buffer, buffer.count, format, &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: operators

    static func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        switch op {
        case "==": return .bool(a == b)
        case "!=": return .bool(a != b)
        case "<", ">", "<=", ">=":
            let c = try compare(a, b)
            switch op {
            case "<": return .bool(c < 0)
            case ">": return .bool(c > 0)
            case "<=": return .bool(c <= 0)
            default: return .bool(c >= 0)
            }
        case "in": return .bool(try contains(b, a))
        case "not in": return .bool(!(try contains(b, a)))
        case "~": return .string(a.text + b.text)
        case "+":
            switch (a, b) {
            case (.string(let x), .string(let y)): return .string(x + y)
            case (.array(let x), .array(let y)): return .array(x + y)
            default: return try arithmetic(op, a, b)
            }
        case "*":
            if case .string(let s) = a, case .int(let n) = b { return .string(String(repeating: s, count: max(0, min(n, 1 << 20)))) }
            if case .array(let s) = a, case .int(let n) = b { return .array(Array(repeatElement(s, count: max(0, min(n, 1 << 16))).joined())) }
            return try arithmetic(op, a, b)
        case "%":
            if case .string(let format) = a { return .string(percentFormat(format, b)) }
            return try arithmetic(op, a, b)
        default:
            return try arithmetic(op, a, b)
        }
    }

    static func arithmetic(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        func ints() -> (Int, Int)? {
            switch (a, b) {
            case (.int(let x), .int(let y)): return (x, y)
            case (.bool(let x), .int(let y)): return (x ? 1 : 0, y)
            case (.int(let x), .bool(let y)): return (x, y ? 1 : 0)
            default: return nil
            }
        }
        guard let x = a.number, let y = b.number, !a.isString, !b.isString else {
            throw JinjaError.type("unsupported operand types for \(op): \(a.typeName) and \(b.typeName)")
        }
        switch op {
        case "+": if let (i, j) = ints() { return .int(i &+ j) }; return .double(x + y)
        case "-": if let (i, j) = ints() { return .int(i &- j) }; return .double(x - y)
        case "*": if let (i, j) = ints() { return .int(i &* j) }; return .double(x * y)
        case "/":
            guard y != 0 else { throw JinjaError.type("division by zero") }
            return .double(x / y)
        case "//":
            guard y != 0 else { throw JinjaError.type("division by zero") }
            if let (i, j) = ints() { return .int(Int((Double(i) / Double(j)).rounded(.down))) }
            return .double((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw JinjaError.type("modulo by zero") }
            if let (i, j) = ints() { let r = i % j; return .int(r != 0 && (r < 0) != (j < 0) ? r + j : r) }
            let r = x.truncatingRemainder(dividingBy: y)
            return .double(r != 0 && (r < 0) != (y < 0) ? r + y : r)
        case "**":
            if let (i, j) = ints(), j >= 0, j < 64 { return .int(Int(pow(Double(i), Double(j)))) }
            return .double(pow(x, y))
        default: throw JinjaError.unsupported("operator \(op)")
        }
    }

    static func compare(_ a: JinjaValue, _ b: JinjaValue) throws -> Int {
        switch (a, b) {
        case (.string(let x), .string(let y)):
            let xs = Array(x.unicodeScalars.map(\.value)), ys = Array(y.unicodeScalars.map(\.value))
            return xs.lexicographicallyPrecedes(ys) ? -1 : (xs == ys ? 0 : 1)
        case (.array(let x), .array(let y)):
            for (p, q) in zip(x, y) { let c = try compare(p, q); if c != 0 { return c } }
            return x.count < y.count ? -1 : (x.count == y.count ? 0 : 1)
        default:
            guard let x = a.number, let y = b.number, !a.isString, !b.isString else {
                throw JinjaError.type("'<' not supported between \(a.typeName) and \(b.typeName)")
            }
            return x < y ? -1 : (x == y ? 0 : 1)
        }
    }

    static func contains(_ container: JinjaValue, _ item: JinjaValue) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let sub) = item else { throw JinjaError.type("'in <string>' requires a string, not \(item.typeName)") }
            return sub.isEmpty || s.contains(sub)
        case .array(let a): return a.contains(item)
        case .object(let o): return o[item.text] != nil && item.isString
        case .namespace(let ns): return ns.attributes[item.text] != nil
        case .undefined: return false
        default: throw JinjaError.type("argument of type \(container.typeName) is not iterable")
        }
    }

    /// Python's `format % value` for %s, %d, %i, %f, %r and %%.
    static func percentFormat(_ format: String, _ value: JinjaValue) -> String {
        var values: [JinjaValue] = { if case .array(let a) = value { return a } else { return [value] } }()
        var out = ""
        var chars = Array(format)[...]
        while let c = chars.popFirst() {
            guard c == "%", let spec = chars.popFirst() else { out.append(c); continue }
            switch spec {
            case "%": out.append("%")
            case "s": out += values.isEmpty ? "" : values.removeFirst().text
            case "r": out += values.isEmpty ? "" : values.removeFirst().repr
            case "d", "i": out += values.isEmpty ? "" : String(Int(values.removeFirst().number ?? 0))
            case "f": out += values.isEmpty ? "" : String(format: "%f", values.removeFirst().number ?? 0)
            default: out.append(c); out.append(spec)
            }
        }
        return out
    }

    // MARK: methods

    /// `value.name` as a bound method, or nil when the type has no such method.
    static func method(_ value: JinjaValue, _ name: String) -> JinjaValue? {
        func bound(_ body: @escaping @Sendable ([JinjaValue], [(String, JinjaValue)]) throws -> JinjaValue) -> JinjaValue {
            .function(JinjaFunction(name: name) { args, kwargs, _ in try body(args, kwargs) })
        }
        switch value {
        case .string(let s):
            switch name {
            case "strip", "lstrip", "rstrip":
                return bound { args, _ in
                    let set: Set<Character> = args.first.map { Set($0.text) } ?? []
                    func strip(_ c: Character) -> Bool { set.isEmpty ? c.isWhitespace : set.contains(c) }
                    var result = Substring(s)
                    if name != "rstrip" { result = result.drop(while: strip) }
                    if name != "lstrip" { while let last = result.last, strip(last) { result = result.dropLast() } }
                    return .string(String(result))
                }
            case "split":
                return bound { args, kwargs in
                    let separator = args.first ?? kwargs.first { $0.0 == "sep" }?.1 ?? .none
                    let limitValue = args.count > 1 ? args[1] : kwargs.first { $0.0 == "maxsplit" }?.1
                    let limit: Int = { if case .int(let n)? = limitValue, n >= 0 { return n } else { return Int.max } }()
                    if separator.isNone || separator.isUndefined {
                        return .array(s.split(maxSplits: limit, omittingEmptySubsequences: true, whereSeparator: \.isWhitespace)
                            .map { .string(String($0)) })
                    }
                    let sep = separator.text
                    guard !sep.isEmpty else { throw JinjaError.type("empty separator") }
                    var parts: [JinjaValue] = []
                    var rest = Substring(s)
                    while parts.count < limit, let r = rest.range(of: sep) {
                        parts.append(.string(String(rest[..<r.lowerBound])))
                        rest = rest[r.upperBound...]
                    }
                    parts.append(.string(String(rest)))
                    return .array(parts)
                }
            case "startswith", "endswith":
                return bound { args, _ in
                    let candidates: [String] = {
                        if case .array(let a)? = args.first { return a.map(\.text) }
                        return args.first.map { [$0.text] } ?? []
                    }()
                    return .bool(candidates.contains { name == "startswith" ? s.hasPrefix($0) : s.hasSuffix($0) })
                }
            case "replace":
                return bound { args, _ in
                    guard args.count >= 2 else { throw JinjaError.type("replace() takes two arguments") }
                    return .string(replace(s, args[0].text, args[1].text, count: args.count > 2 ? Int(args[2].number ?? -1) : -1))
                }
            case "upper": return bound { _, _ in .string(s.uppercased()) }
            case "lower": return bound { _, _ in .string(s.lowercased()) }
            case "title": return bound { _, _ in .string(title(s)) }
            case "capitalize": return bound { _, _ in .string(s.prefix(1).uppercased() + s.dropFirst().lowercased()) }
            case "find":
                return bound { args, _ in
                    guard let sub = args.first?.text, let r = s.range(of: sub) else { return .int(-1) }
                    return .int(s.distance(from: s.startIndex, to: r.lowerBound))
                }
            case "count": return bound { args, _ in .int(max(0, s.components(separatedBy: args.first?.text ?? "").count - 1)) }
            case "join": return bound { args, _ in .string(try (args.first.map { try iterateValue($0) } ?? []).map(\.text).joined(separator: s)) }
            case "isdigit": return bound { _, _ in .bool(!s.isEmpty && s.allSatisfy(\.isNumber)) }
            case "isspace": return bound { _, _ in .bool(!s.isEmpty && s.allSatisfy(\.isWhitespace)) }
            case "format":
                return bound { args, kwargs in .string(try pythonFormat(s, args, kwargs)) }
            default: return nil
            }
        case .object(let o):
            switch name {
            case "items": return bound { _, _ in .array(o.entries.map { .array([o.keyValue($0.key), $0.value]) }) }
            case "keys": return bound { _, _ in .array(o.entries.map { o.keyValue($0.key) }) }
            case "values": return bound { _, _ in .array(o.entries.map(\.value)) }
            case "get": return bound { args, _ in o[args.first?.text ?? ""] ?? (args.count > 1 ? args[1] : .none) }
            case "update", "pop", "setdefault", "clear":
                return bound { _, _ in throw JinjaError.type("dict.\(name)() is not allowed: templates cannot change their inputs") }
            default: return nil
            }
        case .array:
            switch name {
            case "append", "pop", "extend", "insert", "remove", "clear", "sort", "reverse":
                return bound { _, _ in throw JinjaError.type("list.\(name)() is not allowed: templates cannot change their inputs") }
            default: return nil
            }
        default:
            return nil
        }
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
        guard !old.isEmpty else { return s }
        var result = ""
        var rest = Substring(s)
        var done = 0
        while count < 0 || done < count, let r = rest.range(of: old) {
            result += rest[..<r.lowerBound] + new
            rest = rest[r.upperBound...]
            done += 1
        }
        return result + rest
    }

    static func title(_ s: String) -> String {
        var out = ""
        var previousIsLetter = false
        for c in s {
            out += previousIsLetter ? c.lowercased() : c.uppercased()
            previousIsLetter = c.isLetter
        }
        return out
    }

    /// str.format with {} / {0} / {name} fields (no format specs beyond plain replacement).
    static func pythonFormat(_ format: String, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> String {
        var out = ""
        var automatic = 0
        var chars = Array(format)[...]
        while let c = chars.popFirst() {
            if c == "{" {
                if chars.first == "{" { chars.removeFirst(); out.append("{"); continue }
                var field = ""
                while let d = chars.popFirst(), d != "}" { field.append(d) }
                let name = field.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
                if name.isEmpty {
                    guard automatic < args.count else { throw JinjaError.type("format() needs more arguments") }
                    out += args[automatic].text
                    automatic += 1
                } else if let i = Int(name) {
                    guard i < args.count else { throw JinjaError.type("format() index \(i) out of range") }
                    out += args[i].text
                } else {
                    guard let v = kwargs.first(where: { $0.0 == name })?.1 else { throw JinjaError.type("format() has no argument \(name)") }
                    out += v.text
                }
            } else if c == "}" {
                if chars.first == "}" { chars.removeFirst() }
                out.append("}")
            } else {
                out.append(c)
            }
        }
        return out
    }

    static func iterateValue(_ v: JinjaValue) throws -> [JinjaValue] {
        switch v {
        case .array(let a): return a
        case .object(let o): return o.entries.map { o.keyValue($0.key) }
        case .string(let s): return s.map { .string(String($0)) }
        case .undefined: return []
        default: throw JinjaError.type("'\(v.typeName)' object is not iterable")
        }
    }
}
