import Foundation

/// A value inside a chat template, with the Python semantics jinja2 templates rely on
/// (truthiness, equality, `in`, printing True/False/None, repr of lists and dicts).
public indirect enum JinjaValue: Sendable {
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    /// A dict, keys in insertion order.
    case object(JinjaObject)
    case namespace(JinjaNamespace)
    case function(JinjaFunction)

    public var isUndefined: Bool { if case .undefined = self { return true } else { return false } }
    public var isNone: Bool { if case .none = self { return true } else { return false } }

    /// Python truthiness.
    public var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.entries.isEmpty
        case .namespace, .function: return true
        }
    }

    /// str(value) as Python prints it.
    public var text: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pythonFloat(d)
        case .string(let s): return s
        case .array, .object: return repr
        case .namespace: return "<Namespace>"
        case .function(let f): return "<function \(f.name)>"
        }
    }

    /// repr(value) as Python prints it (strings quoted).
    public var repr: String {
        switch self {
        case .string(let s): return pythonStringRepr(s)
        case .array(let a): return "[" + a.map(\.repr).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.entries.map { "\(o.keyValue($0.key).repr): \($0.value.repr)" }.joined(separator: ", ") + "}"
        default: return text
        }
    }

    var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .object: return "dict"
        case .namespace: return "Namespace"
        case .function: return "function"
        }
    }

    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
}

extension JinjaValue: Equatable {
    /// Python ==: 1 == 1.0 == True; containers compare element-wise.
    public static func == (a: JinjaValue, b: JinjaValue) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)): return x.entries.count == y.entries.count && x.entries.allSatisfy { y[$0.key] == $0.value }
        case (.namespace(let x), .namespace(let y)): return x === y
        default:
            if let x = a.number, let y = b.number, !a.isString, !b.isString { return x == y }
            return false
        }
    }

    var isString: Bool { if case .string = self { return true } else { return false } }
}

/// An insertion-ordered string-keyed dictionary.
public struct JinjaObject: Sendable {
    public private(set) var entries: [(key: String, value: JinjaValue)] = []
    private var index: [String: Int] = [:]
    /// The keys that were not strings (`{0: 0, 512: 128}`), looked up by their text but given
    /// back as themselves, so `for k, v in d|dictsort` compares numbers with numbers.
    private var nonStringKeys: [String: JinjaValue] = [:]

    /// A key as the template wrote it.
    public func keyValue(_ key: String) -> JinjaValue { nonStringKeys[key] ?? .string(key) }

    /// Sets `value` under a key of any type (a dict literal's).
    mutating func set(_ key: JinjaValue, _ value: JinjaValue) {
        let text = key.text
        if case .string = key {} else if index[text] == nil { nonStringKeys[text] = key }
        self[text] = value
    }

    public init(_ pairs: [(String, JinjaValue)] = []) {
        for (k, v) in pairs { self[k] = v }
    }

    public subscript(key: String) -> JinjaValue? {
        get { index[key].map { entries[$0].value } }
        set {
            if let i = index[key] {
                if let newValue { entries[i].value = newValue }
            } else if let newValue {
                index[key] = entries.count
                entries.append((key, newValue))
            }
        }
    }
}

/// jinja2's namespace(): the one mutable object, so `{% set ns.x = … %}` survives loop scopes.
public final class JinjaNamespace: @unchecked Sendable {
    var attributes: JinjaObject
    init(_ attributes: JinjaObject) { self.attributes = attributes }
}

/// A callable: a global function, a macro, or a bound method.
public struct JinjaFunction: Sendable {
    let name: String
    let call: @Sendable (_ arguments: [JinjaValue], _ keywords: [(String, JinjaValue)], _ interpreter: JinjaInterpreter) throws -> JinjaValue
}

func pythonStringRepr(_ s: String) -> String {
    let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
    var out = String(quote)
    for ch in s.unicodeScalars {
        switch ch {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if Character(ch) == quote { out += "\\" + String(quote) } else if ch.value < 0x20 || ch.value == 0x7F {
                out += String(format: "\\x%02x", ch.value)
            } else {
                out.unicodeScalars.append(ch)
            }
        }
    }
    return out + String(quote)
}

func pythonFloat(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d > 0 ? "inf" : "-inf" }
    if d == d.rounded() && abs(d) < 1e16 { return String(format: "%.1f", d) }
    return "\(d)"
}
