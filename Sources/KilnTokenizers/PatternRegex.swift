/// A regular expression in the ECMAScript dialect that llama.cpp's pre-tokenizers hand to
/// `std::regex` (alternation, greedy and lazy quantifiers with bounds, bracket classes with ranges
/// and negation, `\s \S \d \D \w \W`, `(?:…)`, `(?=…)`, `(?!…)`, `^ $ \b \B`), matched with the
/// same backtracking rules: alternatives left to right, the first match found wins. It runs over
/// code units (`UInt32`), so the same engine serves code points and llama.cpp's one-byte
/// category codes. Matching keeps its choice points on a heap stack, never the call stack, so a
/// long text cannot exhaust the thread's stack.
struct PatternRegex: Sendable {
    /// One bracket class or single-unit atom.
    struct UnitSet: Sendable {
        var ranges: [ClosedRange<UInt32>] = []
        var classes: [(ClassEscape, negated: Bool)] = []
        var negated = false
        /// Membership of units below 256, precomputed.
        var low = [Bool](repeating: false, count: 256)

        func contains(_ unit: UInt32) -> Bool {
            unit < 256 ? low[Int(unit)] : computes(unit)
        }

        func computes(_ unit: UInt32) -> Bool {
            var member = ranges.contains { $0.contains(unit) }
            if !member { member = classes.contains { $0.0.contains(unit) != $0.negated } }
            return member != negated
        }

        mutating func seal() {
            for u in 0..<256 { low[u] = computes(UInt32(u)) }
        }
    }

    /// `\s \d \w` as `std::regex` decides them in the classic locale: ASCII only.
    enum ClassEscape: Sendable {
        case space, digit, word

        func contains(_ unit: UInt32) -> Bool {
            switch self {
            case .space: return unit == 32 || (9...13).contains(unit)
            case .digit: return (48...57).contains(unit)
            case .word: return (48...57).contains(unit) || (65...90).contains(unit) || (97...122).contains(unit) || unit == 95
            }
        }
    }

    enum Instruction: Sendable {
        case unit(Int)  // index into `sets`; consumes one unit
        case split(Int, Int)  // try the first target, the second on backtracking
        case jump(Int)
        case lookahead(program: Int, negated: Bool)
        case atStart, atEnd
        case wordBoundary(negated: Bool)
        case match
    }

    private(set) var programs: [[Instruction]] = []
    private(set) var sets: [UnitSet] = []
    let source: String

    init(_ source: [UInt32], description: String) throws {
        self.source = description
        var parser = Parser(pattern: source)
        let tree = try parser.parseDisjunction()
        guard parser.atEnd else { throw parser.failure("unbalanced ')'") }
        programs = [[]]
        try emitProgram(tree, into: 0)
    }

    // MARK: matching

    /// The end of the first match that starts at `start` within `range`, nil when none (or when
    /// `budget`, in instructions, runs out).
    /// `nonEmpty` refuses an empty match (std::regex's `match_not_null`).
    func match(_ text: UnsafeBufferPointer<UInt32>, at start: Int, in range: Range<Int>, nonEmpty: Bool = false,
               budget: inout Int) -> Int? {
        var stack: [(pc: Int, pos: Int)] = []
        return run(0, text, start, range, nonEmpty, &stack, &budget)
    }

    /// The first (leftmost) match at or after `from`, as a range.
    func search(_ text: UnsafeBufferPointer<UInt32>, from: Int, in range: Range<Int>, budget: inout Int) -> Range<Int>? {
        var stack: [(pc: Int, pos: Int)] = []
        var s = from
        while s <= range.upperBound && budget > 0 {
            if let end = run(0, text, s, range, false, &stack, &budget) { return s..<end }
            s += 1
        }
        return nil
    }

    /// The pieces std::regex_iterator makes of `range`: every match and every stretch between
    /// matches, in order (empty matches leave no piece). Backtracking can take time quadratic
    /// in a piece's length (as std::regex's does); past a budget linear in the length, the rest
    /// of the piece is left whole, so no input can stall a tokenizer.
    func split(_ text: UnsafeBufferPointer<UInt32>, _ range: Range<Int>, into pieces: inout [Range<Int>]) {
        var budget = 256 * range.count + 1_000_000
        var previousEnd = range.lowerBound
        var next = search(text, from: range.lowerBound, in: range, budget: &budget)
        while let m = next, budget > 0 {
            if m.lowerBound > previousEnd { pieces.append(previousEnd..<m.lowerBound) }
            if !m.isEmpty { pieces.append(m) }
            previousEnd = m.upperBound
            if !m.isEmpty {
                next = search(text, from: m.upperBound, in: range, budget: &budget)
            } else if let end = match(text, at: m.upperBound, in: range, nonEmpty: true, budget: &budget) {
                next = m.upperBound..<end
            } else if m.upperBound < range.upperBound {
                next = search(text, from: m.upperBound + 1, in: range, budget: &budget)
            } else {
                next = nil
            }
        }
        if previousEnd < range.upperBound { pieces.append(previousEnd..<range.upperBound) }
    }

    private func run(
        _ index: Int, _ text: UnsafeBufferPointer<UInt32>, _ start: Int, _ range: Range<Int>, _ nonEmpty: Bool,
        _ stack: inout [(pc: Int, pos: Int)], _ budget: inout Int
    ) -> Int? {
        let program = programs[index]
        let base = stack.count
        defer { stack.removeSubrange(base...) }
        var pc = 0, pos = start
        func isWord(_ i: Int) -> Bool { range.contains(i) && ClassEscape.word.contains(text[i]) }
        while true {
            budget -= 1
            if budget < 0 { return nil }
            var ok = true
            switch program[pc] {
            case .unit(let set):
                if pos < range.upperBound && sets[set].contains(text[pos]) {
                    pos += 1
                    pc += 1
                } else {
                    ok = false
                }
            case .split(let first, let second):
                stack.append((second, pos))
                pc = first
            case .jump(let target):
                pc = target
            case .lookahead(let sub, let negated):
                let found = run(sub, text, pos, range, false, &stack, &budget) != nil
                if found != negated { pc += 1 } else { ok = false }
            case .atStart:
                if pos == range.lowerBound { pc += 1 } else { ok = false }
            case .atEnd:
                if pos == range.upperBound { pc += 1 } else { ok = false }
            case .wordBoundary(let negated):
                if (isWord(pos - 1) != isWord(pos)) != negated { pc += 1 } else { ok = false }
            case .match:
                if !(nonEmpty && pos == start) { return pos }
                ok = false
            }
            if !ok {
                guard stack.count > base, let top = stack.popLast() else { return nil }
                pc = top.pc
                pos = top.pos
            }
        }
    }

    // MARK: compiling

    indirect enum Node {
        case unit(UnitSet)
        case sequence([Node])
        case alternation([Node])
        case repetition(Node, min: Int, max: Int?, greedy: Bool)
        case lookahead(Node, negated: Bool)
        case atStart, atEnd
        case wordBoundary(negated: Bool)

        var canBeEmpty: Bool {
            switch self {
            case .unit: return false
            case .sequence(let nodes): return nodes.allSatisfy(\.canBeEmpty)
            case .alternation(let nodes): return nodes.contains(where: \.canBeEmpty)
            case .repetition(let node, let min, _, _): return min == 0 || node.canBeEmpty
            case .lookahead, .atStart, .atEnd, .wordBoundary: return true
            }
        }
    }

    private mutating func emitProgram(_ node: Node, into program: Int) throws {
        try emit(node, into: program)
        programs[program].append(.match)
    }

    private mutating func emit(_ node: Node, into p: Int) throws {
        switch node {
        case .unit(var set):
            set.seal()
            sets.append(set)
            programs[p].append(.unit(sets.count - 1))
        case .sequence(let nodes):
            for n in nodes { try emit(n, into: p) }
        case .alternation(let nodes):
            // split L1, next; L1: a; jump end; next: split L2, … ; last alternative plain
            var jumps: [Int] = []
            for (i, n) in nodes.enumerated() {
                if i < nodes.count - 1 {
                    let split = programs[p].count
                    programs[p].append(.split(split + 1, -1))
                    try emit(n, into: p)
                    jumps.append(programs[p].count)
                    programs[p].append(.jump(-1))
                    programs[p][split] = .split(split + 1, programs[p].count)
                } else {
                    try emit(n, into: p)
                }
            }
            for j in jumps { programs[p][j] = .jump(programs[p].count) }
        case .repetition(let body, let min, let max, let greedy):
            if let max, max < min { throw PatternRegexError(pattern: source, reason: "a quantifier's bounds are reversed") }
            if body.canBeEmpty && max != min {
                throw PatternRegexError(pattern: source, reason: "a repeated group that can match nothing is not supported")
            }
            for _ in 0..<min { try emit(body, into: p) }
            if let max {
                // x? nested (max - min) times: split body, end; each optional copy jumps to the end on failure
                var splits: [Int] = []
                for _ in min..<max {
                    splits.append(programs[p].count)
                    programs[p].append(.split(-1, -1))
                    try emit(body, into: p)
                }
                let end = programs[p].count
                for s in splits { programs[p][s] = greedy ? .split(s + 1, end) : .split(end, s + 1) }
            } else {
                let loop = programs[p].count
                programs[p].append(.split(-1, -1))
                try emit(body, into: p)
                programs[p].append(.jump(loop))
                let end = programs[p].count
                programs[p][loop] = greedy ? .split(loop + 1, end) : .split(end, loop + 1)
            }
        case .lookahead(let body, let negated):
            programs.append([])
            let sub = programs.count - 1
            try emitProgram(body, into: sub)
            programs[p].append(.lookahead(program: sub, negated: negated))
        case .atStart: programs[p].append(.atStart)
        case .atEnd: programs[p].append(.atEnd)
        case .wordBoundary(let negated): programs[p].append(.wordBoundary(negated: negated))
        }
    }

    // MARK: parsing

    private struct Parser {
        let pattern: [UInt32]
        var i = 0

        var atEnd: Bool { i >= pattern.count }

        func failure(_ reason: String) -> PatternRegexError {
            PatternRegexError(pattern: String(String.UnicodeScalarView(pattern.compactMap(Unicode.Scalar.init))),
                              reason: "\(reason) at offset \(i)")
        }

        func peek(_ k: Int = 0) -> UInt32? { i + k < pattern.count ? pattern[i + k] : nil }

        mutating func take(_ c: Character) -> Bool {
            if let u = peek(), u == c.unicodeScalars.first!.value { i += 1; return true }
            return false
        }

        mutating func parseDisjunction() throws -> Node {
            var alternatives = [try parseAlternative()]
            while take("|") { alternatives.append(try parseAlternative()) }
            return alternatives.count == 1 ? alternatives[0] : .alternation(alternatives)
        }

        mutating func parseAlternative() throws -> Node {
            var terms: [Node] = []
            while let u = peek(), u != 0x7C /* | */, u != 0x29 /* ) */ {
                terms.append(try parseTerm())
            }
            return terms.count == 1 ? terms[0] : .sequence(terms)
        }

        mutating func parseTerm() throws -> Node {
            var atom: Node
            let u = peek()!
            switch u {
            case 0x5E: i += 1; return .atStart  // ^
            case 0x24: i += 1; return .atEnd  // $
            case 0x28:  // (
                i += 1
                var lookahead: Bool? = nil
                if take("?") {
                    if take(":") {
                    } else if take("=") { lookahead = false
                    } else if take("!") { lookahead = true
                    } else { throw failure("unsupported group") }
                }
                let inner = try parseDisjunction()
                guard take(")") else { throw failure("missing ')'") }
                if let negated = lookahead { return .lookahead(inner, negated: negated) }
                atom = inner
            case 0x5B: atom = .unit(try parseBracket())  // [
            case 0x2E:  // . : anything but a line terminator
                i += 1
                var set = UnitSet()
                set.ranges = [10...10, 13...13, 0x2028...0x2029]
                set.negated = true
                atom = .unit(set)
            case 0x5C:  // backslash
                i += 1
                guard let e = peek() else { throw failure("a pattern cannot end in '\\'") }
                if e == 0x62 || e == 0x42 { i += 1; return .wordBoundary(negated: e == 0x42) }  // \b \B
                atom = .unit(try parseEscape(inBracket: false))
            case 0x29, 0x7C: throw failure("empty term")
            case 0x2A, 0x2B, 0x3F: throw failure("nothing to repeat")
            default:
                i += 1
                atom = .unit(Self.single(u))
            }
            return try parseQuantifier(atom)
        }

        mutating func parseQuantifier(_ atom: Node) throws -> Node {
            var min = 0, max: Int? = nil
            switch peek() {
            case 0x2A: i += 1  // *
            case 0x2B: i += 1; min = 1  // +
            case 0x3F: i += 1; max = 1  // ?
            case 0x7B:  // {
                let save = i
                i += 1
                guard let lo = number() else { i = save; return atom }
                min = lo
                max = lo
                if take(",") { max = number() }
                guard take("}") else { throw failure("unterminated '{'") }
                guard min <= 4096, (max ?? 0) <= 4096 else { throw failure("a repetition bound above 4096") }
            default: return atom
            }
            let greedy = !take("?")
            return .repetition(atom, min: min, max: max, greedy: greedy)
        }

        mutating func number() -> Int? {
            var n = 0, digits = 0
            while let u = peek(), (48...57).contains(u), digits < 6 {
                n = n * 10 + Int(u - 48)
                digits += 1
                i += 1
            }
            return digits > 0 ? n : nil
        }

        static func single(_ u: UInt32) -> UnitSet {
            var set = UnitSet()
            set.ranges = [u...u]
            return set
        }

        /// The escape after a backslash: a class (\s \d \w and negations) or one unit.
        mutating func parseEscape(inBracket: Bool) throws -> UnitSet {
            let e = peek()!
            i += 1
            var set = UnitSet()
            switch e {
            case 0x73, 0x53: set.classes = [(.space, e == 0x53)]  // s S
            case 0x64, 0x44: set.classes = [(.digit, e == 0x44)]  // d D
            case 0x77, 0x57: set.classes = [(.word, e == 0x57)]  // w W
            default:
                let unit = try escapedUnit(e, inBracket: inBracket)
                set.ranges = [unit...unit]
            }
            return set
        }

        /// The unit an escape letter stands for (`\n`, `\x41`, `\u00e9`, `\.` …), after `\` and `e`.
        mutating func escapedUnit(_ e: UInt32, inBracket: Bool) throws -> UInt32 {
            switch e {
            case 0x6E: return 10  // n
            case 0x72: return 13  // r
            case 0x74: return 9  // t
            case 0x76: return 11  // v
            case 0x66: return 12  // f
            case 0x30: return 0  // 0
            case 0x62 where inBracket: return 8  // [\b] is backspace
            case 0x78, 0x75:  // xHH, uHHHH
                let count = e == 0x78 ? 2 : 4
                var v: UInt32 = 0
                for _ in 0..<count {
                    guard let h = peek(), let d = Self.hex(h) else { throw failure("bad hexadecimal escape") }
                    v = v * 16 + d
                    i += 1
                }
                return v
            case 0x70, 0x50: throw failure("\\p{…} outside llama.cpp's collapsed categories")
            default:
                if (48...57).contains(e) || (65...90).contains(e) || (97...122).contains(e) {
                    throw failure("unsupported escape '\\\(Character(Unicode.Scalar(e)!))'")
                }
                return e  // identity escape of punctuation
            }
        }

        static func hex(_ u: UInt32) -> UInt32? {
            switch u {
            case 48...57: return u - 48
            case 65...70: return u - 55
            case 97...102: return u - 87
            default: return nil
            }
        }

        mutating func parseBracket() throws -> UnitSet {
            i += 1  // [
            var set = UnitSet()
            if take("^") { set.negated = true }
            var first = true
            while true {
                guard let u = peek() else { throw failure("missing ']'") }
                if u == 0x5D && !first { i += 1; break }  // ]
                first = false
                // one class atom: a unit or a class escape
                var low: UInt32
                if u == 0x5C {
                    i += 1
                    guard let e = peek() else { throw failure("a pattern cannot end in '\\'") }
                    if [0x73, 0x53, 0x64, 0x44, 0x77, 0x57].contains(e) {
                        set.classes += try parseEscape(inBracket: true).classes
                        continue
                    }
                    i += 1
                    low = try escapedUnit(e, inBracket: true)
                } else {
                    i += 1
                    low = u
                }
                // a range low-high, unless '-' is last
                if peek() == 0x2D, let after = peek(1), after != 0x5D {
                    i += 1
                    var high: UInt32
                    if after == 0x5C {
                        i += 1
                        guard let e = peek() else { throw failure("a pattern cannot end in '\\'") }
                        i += 1
                        high = try escapedUnit(e, inBracket: true)
                    } else {
                        i += 1
                        high = after
                    }
                    guard low <= high else { throw failure("a reversed range in a bracket") }
                    set.ranges.append(low...high)
                } else {
                    set.ranges.append(low...low)
                }
            }
            return set
        }
    }
}

struct PatternRegexError: Error, CustomStringConvertible, Equatable {
    let pattern: String
    let reason: String
    var description: String { "pattern \"\(pattern)\": \(reason)" }
}
