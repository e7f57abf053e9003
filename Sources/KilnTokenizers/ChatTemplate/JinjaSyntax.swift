/// The parsed form of a template.
indirect enum JinjaNode {
    case text(String)
    case output(JinjaExpression)
    case ifChain([(condition: JinjaExpression, body: [JinjaNode])], otherwise: [JinjaNode])
    case forLoop(targets: [String], iterable: JinjaExpression, filter: JinjaExpression?, body: [JinjaNode], otherwise: [JinjaNode])
    case set(targets: [String], value: JinjaExpression)
    case setAttribute(object: String, attribute: String, value: JinjaExpression)
    case setBlock(target: String, body: [JinjaNode])
    case macro(name: String, parameters: [(name: String, defaultValue: JinjaExpression?)], body: [JinjaNode])
    case breakLoop
    case continueLoop
    case block(body: [JinjaNode])  // {% generation %} and similar pass-through blocks
}

indirect enum JinjaExpression {
    case literal(JinjaValue)
    case name(String)
    case list([JinjaExpression])
    case dict([(JinjaExpression, JinjaExpression)])
    case attribute(JinjaExpression, String)
    case item(JinjaExpression, JinjaExpression)
    case slice(JinjaExpression, start: JinjaExpression?, stop: JinjaExpression?, step: JinjaExpression?)
    case call(JinjaExpression, arguments: [JinjaExpression], keywords: [(String, JinjaExpression)])
    case filter(JinjaExpression, name: String, arguments: [JinjaExpression], keywords: [(String, JinjaExpression)])
    case test(JinjaExpression, name: String, arguments: [JinjaExpression], negated: Bool)
    case unary(String, JinjaExpression)
    case binary(String, JinjaExpression, JinjaExpression)
    case conditional(condition: JinjaExpression, then: JinjaExpression, otherwise: JinjaExpression?)
}

/// Recursive-descent parser with jinja2's precedence: conditional < or < and < not <
/// comparison/in < + - < ~ < * / // % < ** < unary - < postfix (. [] ()) < filters and tests.
struct JinjaParser {
    typealias Token = JinjaLexer.Token
    private var tokens: [Token]
    private var position = 0

    init(tokens: [Token]) { self.tokens = tokens }

    static func parse(_ source: String) throws -> [JinjaNode] {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        let (nodes, end) = try parser.parseBody(until: [])
        if let end { throw JinjaError.syntax("unexpected {% \(end) %}") }
        return nodes
    }

    private var current: Token? { position < tokens.count ? tokens[position] : nil }

    private mutating func advance() -> Token? {
        defer { position += 1 }
        return current
    }

    private mutating func expect(_ token: Token) throws {
        guard current == token else { throw JinjaError.syntax("expected \(token), found \(current.map(\.description) ?? "the end of the template")") }
        position += 1
    }

    private mutating func expectName() throws -> String {
        guard case .name(let n)? = current else { throw JinjaError.syntax("expected a name, found \(current.map(\.description) ?? "the end of the template")") }
        position += 1
        return n
    }

    private func isSymbol(_ s: String) -> Bool { current == .symbol(s) }
    private func isName(_ s: String) -> Bool { current == .name(s) }

    /// Nodes up to a `{% end… %}`-style keyword in `terminators`; returns the keyword found
    /// (the parser is then just after it, inside its tag).
    private mutating func parseBody(until terminators: Set<String>) throws -> ([JinjaNode], String?) {
        var nodes: [JinjaNode] = []
        while let token = current {
            switch token {
            case .text(let t):
                position += 1
                nodes.append(.text(t))
            case .outputStart:
                position += 1
                let e = try parseExpression()
                try expect(.outputEnd)
                nodes.append(.output(e))
            case .blockStart:
                position += 1
                let keyword = try expectName()
                if terminators.contains(keyword) { return (nodes, keyword) }
                nodes.append(try parseStatement(keyword))
            default:
                throw JinjaError.syntax("unexpected \(token)")
            }
        }
        if !terminators.isEmpty { throw JinjaError.syntax("missing {% \(terminators.sorted().joined(separator: " / ")) %}") }
        return (nodes, nil)
    }

    private mutating func parseStatement(_ keyword: String) throws -> JinjaNode {
        switch keyword {
        case "if":
            var branches: [(JinjaExpression, [JinjaNode])] = []
            var condition = try parseExpression()
            try expect(.blockEnd)
            while true {
                let (body, end) = try parseBody(until: ["elif", "else", "endif"])
                branches.append((condition, body))
                if end == "elif" {
                    condition = try parseExpression()
                    try expect(.blockEnd)
                } else if end == "else" {
                    try expect(.blockEnd)
                    let (otherwise, _) = try parseBody(until: ["endif"])
                    try expect(.blockEnd)
                    return .ifChain(branches, otherwise: otherwise)
                } else {
                    try expect(.blockEnd)
                    return .ifChain(branches, otherwise: [])
                }
            }
        case "for":
            var targets = [try expectName()]
            while isSymbol(",") {
                position += 1
                targets.append(try expectName())
            }
            guard isName("in") else { throw JinjaError.syntax("expected 'in' in for loop") }
            position += 1
            let iterable = try parseExpression(allowConditional: false)
            var filter: JinjaExpression?
            if isName("if") {
                position += 1
                filter = try parseExpression()
            }
            if isName("recursive") { throw JinjaError.unsupported("recursive for loops") }
            try expect(.blockEnd)
            let (body, end) = try parseBody(until: ["else", "endfor"])
            var otherwise: [JinjaNode] = []
            try expect(.blockEnd)
            if end == "else" {
                (otherwise, _) = try parseBody(until: ["endfor"])
                try expect(.blockEnd)
            }
            return .forLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise)
        case "set":
            let first = try expectName()
            if isSymbol(".") {
                position += 1
                let attribute = try expectName()
                try expect(.symbol("="))
                let value = try parseExpression()
                try expect(.blockEnd)
                return .setAttribute(object: first, attribute: attribute, value: value)
            }
            var targets = [first]
            while isSymbol(",") {
                position += 1
                targets.append(try expectName())
            }
            if current == .blockEnd, targets.count == 1 {
                position += 1
                let (body, _) = try parseBody(until: ["endset"])
                try expect(.blockEnd)
                return .setBlock(target: first, body: body)
            }
            try expect(.symbol("="))
            let value = try parseExpression()
            try expect(.blockEnd)
            return .set(targets: targets, value: value)
        case "macro":
            let name = try expectName()
            try expect(.symbol("("))
            var parameters: [(String, JinjaExpression?)] = []
            while !isSymbol(")") {
                let p = try expectName()
                var d: JinjaExpression?
                if isSymbol("=") {
                    position += 1
                    d = try parseExpression()
                }
                parameters.append((p, d))
                if isSymbol(",") { position += 1 } else { break }
            }
            try expect(.symbol(")"))
            try expect(.blockEnd)
            let (body, _) = try parseBody(until: ["endmacro"])
            try expect(.blockEnd)
            return .macro(name: name, parameters: parameters, body: body)
        case "break":
            try expect(.blockEnd)
            return .breakLoop
        case "continue":
            try expect(.blockEnd)
            return .continueLoop
        case "generation":
            try expect(.blockEnd)
            let (body, _) = try parseBody(until: ["endgeneration"])
            try expect(.blockEnd)
            return .block(body: body)
        default:
            throw JinjaError.unsupported("the {% \(keyword) %} statement")
        }
    }

    // MARK: expressions

    mutating func parseExpression(allowConditional: Bool = true) throws -> JinjaExpression {
        let e = try parseOr()
        guard allowConditional, isName("if") else { return e }
        position += 1
        let condition = try parseOr()
        var otherwise: JinjaExpression?
        if isName("else") {
            position += 1
            otherwise = try parseExpression()
        }
        return .conditional(condition: condition, then: e, otherwise: otherwise)
    }

    private mutating func parseOr() throws -> JinjaExpression {
        var e = try parseAnd()
        while isName("or") {
            position += 1
            e = .binary("or", e, try parseAnd())
        }
        return e
    }

    private mutating func parseAnd() throws -> JinjaExpression {
        var e = try parseNot()
        while isName("and") {
            position += 1
            e = .binary("and", e, try parseNot())
        }
        return e
    }

    private mutating func parseNot() throws -> JinjaExpression {
        if isName("not") {
            position += 1
            return .unary("not", try parseNot())
        }
        return try parseComparison()
    }

    private mutating func parseComparison() throws -> JinjaExpression {
        var e = try parseAdditive()
        while true {
            if case .symbol(let s)? = current, ["==", "!=", "<", ">", "<=", ">="].contains(s) {
                position += 1
                e = .binary(s, e, try parseAdditive())
            } else if isName("in") {
                position += 1
                e = .binary("in", e, try parseAdditive())
            } else if isName("not"), position + 1 < tokens.count, tokens[position + 1] == .name("in") {
                position += 2
                e = .binary("not in", e, try parseAdditive())
            } else {
                return e
            }
        }
    }

    private mutating func parseAdditive() throws -> JinjaExpression {
        var e = try parseConcat()
        while case .symbol(let s)? = current, s == "+" || s == "-" {
            position += 1
            e = .binary(s, e, try parseConcat())
        }
        return e
    }

    private mutating func parseConcat() throws -> JinjaExpression {
        var e = try parseMultiplicative()
        while isSymbol("~") {
            position += 1
            e = .binary("~", e, try parseMultiplicative())
        }
        return e
    }

    private mutating func parseMultiplicative() throws -> JinjaExpression {
        var e = try parsePower()
        while case .symbol(let s)? = current, ["*", "/", "//", "%"].contains(s) {
            position += 1
            e = .binary(s, e, try parsePower())
        }
        return e
    }

    private mutating func parsePower() throws -> JinjaExpression {
        var e = try parseUnary()
        while isSymbol("**") {
            position += 1
            e = .binary("**", e, try parseUnary())
        }
        return e
    }

    private mutating func parseUnary() throws -> JinjaExpression {
        if isSymbol("-") {
            position += 1
            return try parseFilters(.unary("-", try parseUnary()))
        }
        if isSymbol("+") {
            position += 1
            return try parseUnary()
        }
        return try parseFilters(try parsePostfix(try parsePrimary()))
    }

    private mutating func parsePrimary() throws -> JinjaExpression {
        guard let token = advance() else { throw JinjaError.syntax("unexpected end of expression") }
        switch token {
        case .string(var s):
            while case .string(let more)? = current {  // adjacent literals concatenate
                s += more
                position += 1
            }
            return .literal(.string(s))
        case .integer(let n): return .literal(.int(n))
        case .float(let d): return .literal(.double(d))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .symbol("("):
            let first = try parseExpression()
            if isSymbol(",") {  // a tuple, kept as a list
                var items = [first]
                while isSymbol(",") {
                    position += 1
                    if isSymbol(")") { break }
                    items.append(try parseExpression())
                }
                try expect(.symbol(")"))
                return .list(items)
            }
            try expect(.symbol(")"))
            return first
        case .symbol("["):
            var items: [JinjaExpression] = []
            while !isSymbol("]") {
                items.append(try parseExpression())
                if isSymbol(",") { position += 1 } else { break }
            }
            try expect(.symbol("]"))
            return .list(items)
        case .symbol("{"):
            var pairs: [(JinjaExpression, JinjaExpression)] = []
            while !isSymbol("}") {
                let k = try parseExpression()
                try expect(.symbol(":"))
                pairs.append((k, try parseExpression()))
                if isSymbol(",") { position += 1 } else { break }
            }
            try expect(.symbol("}"))
            return .dict(pairs)
        default:
            throw JinjaError.syntax("unexpected \(token) in expression")
        }
    }

    private mutating func parsePostfix(_ base: JinjaExpression) throws -> JinjaExpression {
        var e = base
        while true {
            if isSymbol(".") {
                position += 1
                if case .integer(let n)? = current {
                    position += 1
                    e = .item(e, .literal(.int(n)))
                } else {
                    e = .attribute(e, try expectName())
                }
            } else if isSymbol("[") {
                position += 1
                var start: JinjaExpression?, stop: JinjaExpression?, step: JinjaExpression?
                var isSlice = false
                if !isSymbol(":") { start = try parseExpression() }
                if isSymbol(":") {
                    isSlice = true
                    position += 1
                    if !isSymbol("]") && !isSymbol(":") { stop = try parseExpression() }
                    if isSymbol(":") {
                        position += 1
                        if !isSymbol("]") { step = try parseExpression() }
                    }
                }
                try expect(.symbol("]"))
                if isSlice {
                    e = .slice(e, start: start, stop: stop, step: step)
                } else if let start {
                    e = .item(e, start)
                } else {
                    throw JinjaError.syntax("empty subscript")
                }
            } else if isSymbol("(") {
                let (args, kwargs) = try parseArguments()
                e = .call(e, arguments: args, keywords: kwargs)
            } else {
                return e
            }
        }
    }

    private mutating func parseArguments() throws -> ([JinjaExpression], [(String, JinjaExpression)]) {
        try expect(.symbol("("))
        var args: [JinjaExpression] = []
        var kwargs: [(String, JinjaExpression)] = []
        while !isSymbol(")") {
            if case .name(let n)? = current, position + 1 < tokens.count, tokens[position + 1] == .symbol("=") {
                position += 2
                kwargs.append((n, try parseExpression()))
            } else {
                args.append(try parseExpression())
            }
            if isSymbol(",") { position += 1 } else { break }
        }
        try expect(.symbol(")"))
        return (args, kwargs)
    }

    private mutating func parseFilters(_ base: JinjaExpression) throws -> JinjaExpression {
        var e = base
        while true {
            if isSymbol("|") {
                position += 1
                let name = try expectName()
                var args: [JinjaExpression] = [], kwargs: [(String, JinjaExpression)] = []
                if isSymbol("(") { (args, kwargs) = try parseArguments() }
                e = .filter(e, name: name, arguments: args, keywords: kwargs)
            } else if isName("is") {
                position += 1
                var negated = false
                if isName("not") {
                    position += 1
                    negated = true
                }
                var name = try expectName()
                if name == "none" || name == "None" { name = "none" }
                var args: [JinjaExpression] = []
                if isSymbol("(") {
                    args = try parseArguments().0
                } else if let token = current, !isTerminator(token) {
                    args = [try parsePrimary()]  // `is divisibleby 3`, `is sameas x`
                }
                e = .test(e, name: name, arguments: args, negated: negated)
            } else {
                return e
            }
        }
    }

    private func isTerminator(_ token: Token) -> Bool {
        switch token {
        case .outputEnd, .blockEnd: return true
        case .name(let n): return ["and", "or", "else", "if", "in", "not", "is"].contains(n)
        case .symbol(let s): return [")", "]", "}", ",", ":", "==", "!=", "<", ">", "<=", ">=", "+", "-", "~", "*", "/", "|"].contains(s)
        default: return false
        }
    }
}
