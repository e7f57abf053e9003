/// The regex-defined splits byte-level BPE models apply before merging, implemented as scanners
/// over Unicode scalars (letters \p{L}, numbers \p{N} and White_Space from the scalar's
/// properties) so they behave exactly as their regular expressions do, without a regex engine.
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    case gpt2
    /// StarCoder and SmolLM: every \p{N} on its own first, then GPT-2 on what is between.
    case digitsThenGPT2
    /// Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
    ///          | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    case llama3
    /// Qwen 2: Llama 3's expression with single digits (\p{N} instead of \p{N}{1,3}).
    case qwen2

    /// The pre-tokenizer a GGUF names in `tokenizer.ggml.pre` (absent means GPT-2's).
    public init(ggufName: String?) throws {
        switch ggufName {
        case nil, "default", "gpt-2", "gpt2": self = .gpt2
        case "starcoder", "smollm", "refact": self = .digitsThenGPT2
        case "llama-bpe", "llama3", "llama-v3", "falcon3", "pixtral": self = .llama3
        case "qwen2", "deepseek-r1-qwen": self = .qwen2
        case let name?: throw TokenizerError.unknownPreTokenizer(name)
        }
    }

    /// The pieces of `scalars`, as index ranges, in order; together they cover every scalar.
    public func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        switch self {
        case .gpt2:
            Scanner(scalars: scalars).gpt2(0..<scalars.count, into: &pieces)
        case .digitsThenGPT2:
            let scanner = Scanner(scalars: scalars)
            var start = 0
            for i in scalars.indices where scanner.flags(i).contains(.number) {
                if start < i { scanner.gpt2(start..<i, into: &pieces) }
                pieces.append(i..<(i + 1))
                start = i + 1
            }
            if start < scalars.count { scanner.gpt2(start..<scalars.count, into: &pieces) }
        case .llama3:
            Scanner(scalars: scalars).llama3(0..<scalars.count, maximumDigits: 3, into: &pieces)
        case .qwen2:
            Scanner(scalars: scalars).llama3(0..<scalars.count, maximumDigits: 1, into: &pieces)
        }
        return pieces
    }
}

struct CharacterFlags: OptionSet {
    let rawValue: UInt8
    static let letter = CharacterFlags(rawValue: 1)
    static let number = CharacterFlags(rawValue: 2)
    static let whitespace = CharacterFlags(rawValue: 4)

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init(_ scalar: Unicode.Scalar) {
        var flags: CharacterFlags = []
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: flags.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber: flags.insert(.number)
        default: break
        }
        if scalar.properties.isWhitespace { flags.insert(.whitespace) }
        self = flags
    }

    /// [^\s\p{L}\p{N}]
    var isOther: Bool { isEmpty }
}

private struct Scanner {
    let scalars: [Unicode.Scalar]
    let table: [CharacterFlags]

    init(scalars: [Unicode.Scalar]) {
        self.scalars = scalars
        table = scalars.map { $0.value < 128 ? Scanner.ascii[Int($0.value)] : CharacterFlags($0) }
    }

    static let ascii: [CharacterFlags] = (0..<128).map { CharacterFlags(Unicode.Scalar(UInt8($0))) }

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
}
