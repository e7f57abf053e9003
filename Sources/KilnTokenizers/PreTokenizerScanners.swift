/// A code point's classes as llama.cpp's Unicode tables give them: \p{L}, \p{N}, \p{M}, \p{P},
/// \p{S} from the general category and White_Space from the property list.
struct CharacterFlags: OptionSet {
    let rawValue: UInt8
    static let letter = CharacterFlags(rawValue: 1)
    static let number = CharacterFlags(rawValue: 2)
    static let whitespace = CharacterFlags(rawValue: 4)
    static let mark = CharacterFlags(rawValue: 8)
    static let punctuation = CharacterFlags(rawValue: 16)
    static let symbol = CharacterFlags(rawValue: 32)

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init(_ scalar: Unicode.Scalar) {
        var flags: CharacterFlags = []
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: flags.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber: flags.insert(.number)
        case .nonspacingMark, .spacingMark, .enclosingMark: flags.insert(.mark)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: flags.insert(.punctuation)
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: flags.insert(.symbol)
        default: break
        }
        if scalar.properties.isWhitespace { flags.insert(.whitespace) }
        self = flags
    }

    /// [^\s\p{L}\p{N}]
    var isOther: Bool { isDisjoint(with: [.letter, .number, .whitespace]) }
}

/// llama.cpp's hand-written matchers (`unicode_regex_split_custom_*`), which stand in for the
/// expressions `Scan.forExpression` names.
enum Scan: Sendable {
    case gpt2, llama3, qwen2, qwen35, kimiK2, digitGroups, newlineRuns, numbers

    static let forExpression: [String: Scan] = [
        #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#: .gpt2,
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .llama3,
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .llama3,
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .qwen2,
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .qwen35,
        #"\p{Han}+"#: .kimiK2,
        #"\p{AFMoE_digits}"#: .digitGroups,
        #"\d{1,3}(?=(?:\d{3})*\b)"#: .digitGroups,
        #"[^\n]+|[\n]+"#: .newlineRuns,
        // Not hand-written in llama.cpp, but its std::regex over collapsed text isolates exactly
        // the code points with the number flag.
        #"\p{N}"#: .numbers,
    ]
}

struct Scanner {
    let scalars: [Unicode.Scalar]
    let table: [CharacterFlags]

    init(scalars: [Unicode.Scalar]) {
        self.scalars = scalars
        table = scalars.map { $0.value < 128 ? Scanner.ascii[Int($0.value)] : CharacterFlags($0) }
    }

    static let ascii: [CharacterFlags] = (0..<128).map { CharacterFlags(Unicode.Scalar(UInt8($0))) }

    func scan(_ scan: Scan, _ range: Range<Int>, into pieces: inout [Range<Int>]) {
        switch scan {
        case .gpt2: gpt2(range, into: &pieces)
        case .llama3: llama3(range, maximumDigits: 3, into: &pieces)
        case .qwen2: llama3(range, maximumDigits: 1, into: &pieces)
        case .qwen35: qwen35(range, into: &pieces)
        case .kimiK2: kimiK2(range, into: &pieces)
        case .digitGroups: digitGroups(range, into: &pieces)
        case .newlineRuns: newlineRuns(range, into: &pieces)
        case .numbers: numbers(range, into: &pieces)
        }
    }

    func flags(_ i: Int) -> CharacterFlags { table[i] }

    func value(_ i: Int, _ range: Range<Int>) -> UInt32? { range.contains(i) ? scalars[i].value : nil }

    /// Length of a contraction ('s 't 'm 'd 're 've 'll) at i, 0 if none.
    func contraction(at i: Int, _ range: Range<Int>, ignoringCase: Bool) -> Int {
        guard value(i, range) == 39 /* ' */, let n = value(i + 1, range) else { return 0 }
        func lower(_ v: UInt32) -> UInt32 { ignoringCase && (65...90).contains(v) ? v + 32 : v }
        let first = lower(n)
        if [115, 116, 109, 100].contains(first) { return 2 }  // s t m d
        guard let m = value(i + 2, range) else { return 0 }
        let second = lower(m)
        if (first == 114 && second == 101) || (first == 118 && second == 101) || (first == 108 && second == 108) { return 3 }
        return 0
    }

    func whitespaceRun(from i: Int, _ range: Range<Int>) -> Int {
        var n = 0
        while i + n < range.upperBound && flags(i + n).contains(.whitespace) { n += 1 }
        return n
    }

    func gpt2(_ range: Range<Int>, into pieces: inout [Range<Int>]) {
        var pos = range.lowerBound
        func emit(_ end: Int) {
            pieces.append(pos..<end)
            pos = end
        }
        while pos < range.upperBound {
            let c = contraction(at: pos, range, ignoringCase: false)
            if c > 0 {
                emit(pos + c)
                continue
            }
            let space = scalars[pos] == " " && pos + 1 < range.upperBound
            let first = space ? pos + 1 : pos
            let f = flags(first)
            var end = first
            if f.contains(.letter) {
                while end < range.upperBound && flags(end).contains(.letter) { end += 1 }
                emit(end)
            } else if f.contains(.number) {
                while end < range.upperBound && flags(end).contains(.number) { end += 1 }
                emit(end)
            } else if f.isOther {
                while end < range.upperBound && flags(end).isOther { end += 1 }
                emit(end)
            } else {
                let w = whitespaceRun(from: pos, range)
                if w > 1 && pos + w < range.upperBound {
                    emit(pos + w - 1)  // \s+(?!\S): leave the last space to prefix the next word
                } else {
                    emit(pos + max(1, w))
                }
            }
        }
    }

    func llama3(_ range: Range<Int>, maximumDigits: Int, into pieces: inout [Range<Int>]) {
        var pos = range.lowerBound
        func emit(_ end: Int) {
            pieces.append(pos..<end)
            pos = end
        }
        func isNewline(_ i: Int) -> Bool { i < range.upperBound && (scalars[i] == "\r" || scalars[i] == "\n") }
        while pos < range.upperBound {
            let c = contraction(at: pos, range, ignoringCase: true)
            if c > 0 {
                emit(pos + c)
                continue
            }
            let f = flags(pos)
            // [^\r\n\p{L}\p{N}]?\p{L}+
            var letters = pos
            if !f.contains(.letter) && !f.contains(.number) && !isNewline(pos) && pos + 1 < range.upperBound
                && flags(pos + 1).contains(.letter) {
                letters = pos + 1
            }
            if flags(letters).contains(.letter) {
                var end = letters
                while end < range.upperBound && flags(end).contains(.letter) { end += 1 }
                emit(end)
                continue
            }
            // \p{N}{1,maximumDigits}
            if f.contains(.number) {
                var end = pos
                while end < range.upperBound && end - pos < maximumDigits && flags(end).contains(.number) { end += 1 }
                emit(end)
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let first = scalars[pos] == " " && pos + 1 < range.upperBound ? pos + 1 : pos
            if flags(first).isOther {
                var end = first
                while end < range.upperBound && flags(end).isOther { end += 1 }
                while isNewline(end) { end += 1 }
                emit(end)
                continue
            }
            // \s*[\r\n]+ : through the last newline of the whitespace run
            let w = whitespaceRun(from: pos, range)
            if let last = (pos..<(pos + w)).last(where: isNewline) {
                emit(last + 1)
                continue
            }
            // \s+(?!\S) | \s+
            if w > 1 && pos + w < range.upperBound {
                emit(pos + w - 1)
            } else {
                emit(pos + max(1, w))
            }
        }
    }

    /// Qwen 3.5: Qwen 2's scanner whose letter runs also take combining marks (\p{M}).
    func qwen35(_ range: Range<Int>, into pieces: inout [Range<Int>]) {
        var start = range.lowerBound, pos = range.lowerBound
        func emit(_ end: Int) {
            if end > start { pieces.append(start..<end) }
            start = end
        }
        func f(_ i: Int) -> CharacterFlags? { range.contains(i) ? flags(i) : nil }
        func isLetterOrMark(_ i: Int) -> Bool { f(i).map { !$0.isDisjoint(with: [.letter, .mark]) } ?? false }
        func isNewline(_ i: Int) -> Bool { range.contains(i) && (scalars[i] == "\r" || scalars[i] == "\n") }
        while pos < range.upperBound {
            let c = contraction(at: pos, range, ignoringCase: true)
            if c > 0 {
                pos += c
                emit(pos)
                continue
            }
            let here = flags(pos)
            // [^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+
            if !isNewline(pos) && !here.contains(.number) && (isLetterOrMark(pos) || isLetterOrMark(pos + 1)) {
                pos += 1
                while isLetterOrMark(pos) { pos += 1 }
                emit(pos)
                continue
            }
            // \p{N}
            if here.contains(.number) {
                pos += 1
                emit(pos)
                continue
            }
            // ' ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*'
            func isOtherThanMark(_ g: CharacterFlags?) -> Bool { g.map { $0.isDisjoint(with: [.whitespace, .letter, .mark, .number]) } ?? false }
            if isOtherThanMark(scalars[pos] == " " ? f(pos + 1) : here) {
                if scalars[pos] == " " { pos += 1 }
                while isOtherThanMark(f(pos)) { pos += 1 }
                while isNewline(pos) { pos += 1 }
                emit(pos)
                continue
            }
            whitespace(&pos, range, emit: emit)
        }
    }

    /// The whitespace alternatives every Llama-3-like scanner ends with:
    /// \s*[\r\n]+ | \s+(?!\S) | \s+ , and one character when nothing matched.
    func whitespace(_ pos: inout Int, _ range: Range<Int>, emit: (Int) -> Void) {
        let w = whitespaceRun(from: pos, range)
        if let last = (pos..<(pos + w)).last(where: { scalars[$0] == "\r" || scalars[$0] == "\n" }) {
            pos = last + 1
        } else if w > 1 && pos + w < range.upperBound {
            pos += w - 1
        } else {
            pos += max(1, w)
        }
        emit(pos)
    }

    /// Kimi K2: Han runs; letter words without Han (one leading non-letter, an optional
    /// contraction after); digits by three; then Llama 3's punctuation and whitespace rules.
    func kimiK2(_ range: Range<Int>, into pieces: inout [Range<Int>]) {
        var start = range.lowerBound, pos = range.lowerBound
        func emit(_ end: Int) {
            if end > start { pieces.append(start..<end) }
            start = end
        }
        func f(_ i: Int) -> CharacterFlags? { range.contains(i) ? flags(i) : nil }
        func han(_ i: Int) -> Bool { range.contains(i) && Self.isHan(scalars[i].value) }
        func letter(_ i: Int) -> Bool { (f(i)?.contains(.letter) ?? false) && !han(i) }
        func isNewline(_ i: Int) -> Bool { range.contains(i) && (scalars[i] == "\r" || scalars[i] == "\n") }
        while pos < range.upperBound {
            if han(pos) {
                while han(pos) { pos += 1 }
                emit(pos)
                continue
            }
            let here = flags(pos)
            let leads = !isNewline(pos) && !here.contains(.letter) && !here.contains(.number)
            if letter(pos) || (leads && letter(pos + 1)) {
                if leads { pos += 1 }
                while letter(pos) { pos += 1 }
                pos += contraction(at: pos, range, ignoringCase: true)
                emit(pos)
                continue
            }
            if here.contains(.number) {
                var groupStart = pos
                while f(pos)?.contains(.number) ?? false {
                    pos += 1
                    if pos - groupStart >= 3 {
                        emit(pos)
                        groupStart = pos
                    }
                }
                emit(pos)
                continue
            }
            let next = scalars[pos] == " " ? f(pos + 1) : here
            if let g = next, g.isOther {
                if scalars[pos] == " " { pos += 1 }
                while f(pos)?.isOther ?? false { pos += 1 }
                while isNewline(pos) { pos += 1 }
                emit(pos)
                continue
            }
            whitespace(&pos, range, emit: emit)
        }
    }

    /// llama.cpp's Han ranges (CJK unified ideographs, extensions A–F, compatibility ideographs).
    static func isHan(_ v: UInt32) -> Bool {
        switch v {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0x2CEB0...0x2EBEF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }

    /// Runs of numbers cut into threes from the right (a leading group of one or two first).
    /// As in llama.cpp, what precedes a run joins the run's first group, and what follows the
    /// last run is one piece.
    func digitGroups(_ range: Range<Int>, into pieces: inout [Range<Int>]) {
        var start = range.lowerBound, pos = range.lowerBound
        func emit(_ end: Int) {
            if end > start { pieces.append(start..<end) }
            start = end
        }
        while pos < range.upperBound {
            guard flags(pos).contains(.number) else {
                pos += 1
                continue
            }
            var end = pos
            while end < range.upperBound && flags(end).contains(.number) { end += 1 }
            var current = pos
            let remainder = (end - pos) % 3
            if remainder > 0 {
                current += remainder
                emit(current)
            }
            while current < end {
                current += 3
                emit(current)
            }
            pos = end
        }
        emit(range.upperBound)
    }

    /// [^\n]+|[\n]+
    func newlineRuns(_ range: Range<Int>, into pieces: inout [Range<Int>]) {
        var pos = range.lowerBound
        while pos < range.upperBound {
            let newline = scalars[pos] == "\n"
            let start = pos
            while pos < range.upperBound && (scalars[pos] == "\n") == newline { pos += 1 }
            pieces.append(start..<pos)
        }
    }

    /// \p{N}: each number on its own, the stretches between as pieces.
    func numbers(_ range: Range<Int>, into pieces: inout [Range<Int>]) {
        var start = range.lowerBound
        for i in range where flags(i).contains(.number) {
            if start < i { pieces.append(start..<i) }
            pieces.append(i..<(i + 1))
            start = i + 1
        }
        if start < range.upperBound { pieces.append(start..<range.upperBound) }
    }
}
