import Foundation

/// Runs a parsed template. Scopes: the template's own variables, then one scope per for loop
/// and per macro call; `set` writes to the innermost. Only `namespace()` objects are mutable.
final class JinjaInterpreter {
    enum Flow { case normal, breakLoop, continueLoop }

    private var scopes: [[String: JinjaValue]]
    private var output = ""
    private var steps = 0
    private var depth = 0
    let now: Date
    let limits: ChatTemplate.Limits

    init(context: JinjaObject, now: Date, limits: ChatTemplate.Limits) {
        var root: [String: JinjaValue] = [:]
        for (k, v) in context.entries { root[k] = v }
        scopes = [root]
        self.now = now
        self.limits = limits
    }

    func run(_ nodes: [JinjaNode]) throws -> String {
        _ = try execute(nodes)
        return output
    }

    private func tick() throws {
        steps += 1
        if steps > limits.steps { throw JinjaError.limit("more than \(limits.steps) steps") }
    }

    private func emit(_ s: String) throws {
        output += s
        if output.utf8.count > limits.outputBytes { throw JinjaError.limit("output larger than \(limits.outputBytes) bytes") }
    }

    func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() { if let v = scope[name] { return v } }
        return Builtins.global(name) ?? .undefined(name)
    }

    private func assign(_ name: String, _ value: JinjaValue) { scopes[scopes.count - 1][name] = value }

    // MARK: statements

    private func execute(_ nodes: [JinjaNode]) throws -> Flow {
        for node in nodes {
            try tick()
            switch node {
            case .text(let t): try emit(t)
            case .output(let e): try emit(try evaluate(e).text)
            case .ifChain(let branches, let otherwise):
                var taken = false
                for (condition, body) in branches where try evaluate(condition).truthy {
                    taken = true
                    let flow = try execute(body)
                    if flow != .normal { return flow }
                    break
                }
                if !taken {
                    let flow = try execute(otherwise)
                    if flow != .normal { return flow }
                }
            case .forLoop(let targets, let iterable, let filter, let body, let otherwise):
                try runLoop(targets, try evaluate(iterable), filter, body, otherwise)
            case .set(let targets, let value):
                let v = try evaluate(value)
                if targets.count == 1 {
                    assign(targets[0], v)
                } else {
                    let items = try iterate(v)
                    guard items.count == targets.count else { throw JinjaError.type("cannot unpack \(items.count) values into \(targets.count) names") }
                    for (t, item) in zip(targets, items) { assign(t, item) }
                }
            case .setAttribute(let object, let attribute, let value):
                guard case .namespace(let ns) = lookup(object) else {
                    throw JinjaError.type("cannot assign attribute \(attribute) on \(object): not a namespace")
                }
                ns.attributes[attribute] = try evaluate(value)
            case .setBlock(let target, let body):
                let saved = output
                output = ""
                _ = try execute(body)
                let captured = output
                output = saved
                assign(target, .string(captured))
            case .macro(let name, let parameters, let body):
                assign(name, .function(macro(name, parameters, body)))
            case .breakLoop: return .breakLoop
            case .continueLoop: return .continueLoop
            case .block(let body):
                let flow = try execute(body)
                if flow != .normal { return flow }
            }
        }
        return .normal
    }

    private func runLoop(_ targets: [String], _ sequence: JinjaValue, _ filter: JinjaExpression?, _ body: [JinjaNode],
                         _ otherwise: [JinjaNode]) throws {
        var items = try iterate(sequence)
        scopes.append([:])
        defer { scopes.removeLast() }
        if let filter {
            items = try items.filter { item in
                try bind(targets, item)
                return try evaluate(filter).truthy
            }
        }
        if items.isEmpty {
            _ = try execute(otherwise)
            return
        }
        for (index, item) in items.enumerated() {
            try bind(targets, item)
            let loop = JinjaObject([
                ("index", .int(index + 1)), ("index0", .int(index)), ("revindex", .int(items.count - index)),
                ("revindex0", .int(items.count - index - 1)), ("first", .bool(index == 0)),
                ("last", .bool(index == items.count - 1)), ("length", .int(items.count)),
                ("previtem", index > 0 ? items[index - 1] : .undefined("loop.previtem")),
                ("nextitem", index + 1 < items.count ? items[index + 1] : .undefined("loop.nextitem")),
                ("cycle", .function(JinjaFunction(name: "loop.cycle") { args, _, _ in
                    args.isEmpty ? .undefined("loop.cycle") : args[index % args.count]
                })),
            ])
            assign("loop", .object(loop))
            if try execute(body) == .breakLoop { break }
        }
    }

    private func bind(_ targets: [String], _ item: JinjaValue) throws {
        if targets.count == 1 {
            assign(targets[0], item)
            return
        }
        let parts = try iterate(item)
        guard parts.count == targets.count else {
            throw JinjaError.type("cannot unpack \(parts.count) values into \(targets.count) loop variables")
        }
        for (t, p) in zip(targets, parts) { assign(t, p) }
    }

    private func macro(_ name: String, _ parameters: [(name: String, defaultValue: JinjaExpression?)], _ body: [JinjaNode]) -> JinjaFunction {
        JinjaFunction(name: name) { args, kwargs, interpreter in
            try interpreter.callMacro(name, parameters, body, args, kwargs)
        }
    }

    func callMacro(_ name: String, _ parameters: [(name: String, defaultValue: JinjaExpression?)], _ body: [JinjaNode],
                   _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        depth += 1
        defer { depth -= 1 }
        if depth > limits.depth { throw JinjaError.limit("macros nested deeper than \(limits.depth)") }
        var locals: [String: JinjaValue] = [:]
        for (i, p) in parameters.enumerated() {
            if i < args.count {
                locals[p.name] = args[i]
            } else if let kw = kwargs.first(where: { $0.0 == p.name }) {
                locals[p.name] = kw.1
            } else if let d = p.defaultValue {
                locals[p.name] = try evaluate(d)
            } else {
                locals[p.name] = .undefined(p.name)
            }
        }
        // A macro sees the template's variables and its own, not its caller's loop variables.
        let savedScopes = scopes, savedOutput = output
        scopes = [scopes[0], locals]
        output = ""
        defer {
            scopes = savedScopes
            output = savedOutput
        }
        _ = try execute(body)
        return .string(output)
    }

    // MARK: expressions

    func evaluate(_ e: JinjaExpression) throws -> JinjaValue {
        try tick()
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case .list(let items): return .array(try items.map(evaluate))
        case .dict(let pairs):
            var o = JinjaObject()
            for (k, v) in pairs { o.set(try evaluate(k), try evaluate(v)) }
            return .object(o)
        case .attribute(let base, let name): return try attribute(try evaluate(base), name)
        case .item(let base, let index): return try item(try evaluate(base), try evaluate(index))
        case .slice(let base, let start, let stop, let step):
            return try slice(try evaluate(base), try start.map(evaluate), try stop.map(evaluate), try step.map(evaluate))
        case .call(let callee, let arguments, let keywords):
            let f = try evaluate(callee)
            guard case .function(let function) = f else {
                if case .undefined(let n) = f { throw JinjaError.undefined("\(n) is undefined and cannot be called") }
                throw JinjaError.type("\(f.typeName) is not callable")
            }
            return try function.call(try arguments.map(evaluate), try keywords.map { ($0.0, try evaluate($0.1)) }, self)
        case .filter(let base, let name, let arguments, let keywords):
            return try Builtins.filter(name, try evaluate(base), try arguments.map(evaluate),
                                       try keywords.map { ($0.0, try evaluate($0.1)) }, self)
        case .test(let base, let name, let arguments, let negated):
            let result = try Builtins.test(name, try evaluate(base), try arguments.map(evaluate), self)
            return .bool(result != negated)
        case .unary(let op, let operand):
            let v = try evaluate(operand)
            if op == "not" { return .bool(!v.truthy) }
            switch v {
            case .int(let i): return .int(-i)
            case .double(let d): return .double(-d)
            default: throw JinjaError.type("bad operand for unary -: \(v.typeName)")
            }
        case .binary(let op, let l, let r):
            if op == "and" {
                let a = try evaluate(l)
                return a.truthy ? try evaluate(r) : a
            }
            if op == "or" {
                let a = try evaluate(l)
                return a.truthy ? a : try evaluate(r)
            }
            return try Builtins.binary(op, try evaluate(l), try evaluate(r))
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition).truthy { return try evaluate(then) }
            return try otherwise.map(evaluate) ?? .undefined("conditional")
        }
    }

    func attribute(_ base: JinjaValue, _ name: String) throws -> JinjaValue {
        if name.hasPrefix("_") { throw JinjaError.type("access to attribute \(name) is unsafe") }
        switch base {
        case .undefined(let n): throw JinjaError.undefined("\(n) is undefined (reading .\(name))")
        case .object(let o):
            if let v = o[name] { return v }
            return Builtins.method(base, name) ?? .undefined("\(name)")
        case .namespace(let ns): return ns.attributes[name] ?? .undefined(name)
        default: return Builtins.method(base, name) ?? .undefined(name)
        }
    }

    func item(_ base: JinjaValue, _ index: JinjaValue) throws -> JinjaValue {
        switch (base, index) {
        case (.undefined(let n), _): throw JinjaError.undefined("\(n) is undefined (reading [\(index.repr)])")
        case (.object(let o), _): return o[index.text] ?? .undefined(index.text)
        case (.namespace(let ns), _): return ns.attributes[index.text] ?? .undefined(index.text)
        case (.array(let a), .int(let i)):
            let j = i < 0 ? a.count + i : i
            return a.indices.contains(j) ? a[j] : .undefined("index \(i)")
        case (.string(let s), .int(let i)):
            let chars = Array(s)
            let j = i < 0 ? chars.count + i : i
            return chars.indices.contains(j) ? .string(String(chars[j])) : .undefined("index \(i)")
        case (_, .string(let name)): return try attribute(base, name)
        default: return .undefined("item \(index.repr)")
        }
    }

    func slice(_ base: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?) throws -> JinjaValue {
        func bound(_ v: JinjaValue?) throws -> Int? {
            guard let v, !v.isNone else { return nil }
            guard case .int(let i) = v else { throw JinjaError.type("slice indices must be integers") }
            return i
        }
        let s = try bound(step) ?? 1
        guard s != 0 else { throw JinjaError.type("slice step cannot be zero") }
        func indices(_ count: Int) throws -> [Int] {
            func clamp(_ i: Int?, _ defaultValue: Int) -> Int {
                guard var i else { return defaultValue }
                if i < 0 { i += count }
                return s > 0 ? min(max(i, 0), count) : min(max(i, -1), count - 1)
            }
            let a = clamp(try bound(start), s > 0 ? 0 : count - 1), b = clamp(try bound(stop), s > 0 ? count : -1)
            return Array(stride(from: a, to: b, by: s))
        }
        switch base {
        case .array(let items): return .array(try indices(items.count).map { items[$0] })
        case .string(let text):
            let chars = Array(text)
            return .string(String(try indices(chars.count).map { chars[$0] }))
        case .undefined(let n): throw JinjaError.undefined("\(n) is undefined (slicing)")
        default: throw JinjaError.type("\(base.typeName) cannot be sliced")
        }
    }

    func iterate(_ v: JinjaValue) throws -> [JinjaValue] { try Builtins.iterateValue(v) }
}
