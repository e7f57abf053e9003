/// The splits a byte-level BPE model applies before merging: a list of regular expressions,
/// each splitting every piece the one before made (text between matches stays a piece of its
/// own), exactly as llama.cpp's `unicode_regex_split` applies them. The expressions llama.cpp
/// matches with hand-written scanners run on the same scanners here; the rest run on
/// `PatternRegex`, over the same text llama.cpp gives `std::regex` — for an expression with
/// `\p{…}` classes, each code point above 127 collapsed to a one-byte code of its category.
/// Which expressions a GGUF's `tokenizer.ggml.pre` name means is data (PreTokenizerTable.swift).
public struct PreTokenizer: Sendable, Equatable, CustomStringConvertible {
    /// llama.cpp's name for the pre-tokenizer type (`LLAMA_VOCAB_PRE_TYPE_…` in lower case).
    public let kind: String
    /// The regular expressions, applied in order.
    public let expressions: [String]
    /// Whether pieces are spelled in GPT-2's byte alphabet before merging; false: raw UTF-8,
    /// with `<0xNN>` byte tokens for what the vocabulary lacks.
    public let byteEncoded: Bool
    private let steps: [Step]

    public var description: String { kind }

    /// Whether a piece of newlines alone is looked up whole before merging, as llama.cpp does
    /// for Gemma 4's type (its merges never join newlines).
    public var looksUpNewlineRuns: Bool { kind == "gemma4" }

    /// Two pre-tokenizers are equal when they split alike: the same expressions and encoding.
    public static func == (a: PreTokenizer, b: PreTokenizer) -> Bool {
        a.expressions == b.expressions && a.byteEncoded == b.byteEncoded
    }

    /// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
    public static let gpt2 = PreTokenizer(builtIn: "gpt2")
    /// StarCoder and SmolLM: every \p{N} on its own first, then GPT-2's expression.
    public static let digitsThenGPT2 = PreTokenizer(builtIn: "starcoder")
    /// Llama 3: contractions, letters with one leading non-letter, digits by three, …
    public static let llama3 = PreTokenizer(builtIn: "llama3")
    /// Qwen 2: Llama 3's expression with single digits.
    public static let qwen2 = PreTokenizer(builtIn: "qwen2")

    private init(builtIn kind: String) {
        // The built-in kinds' expressions are the table's own; compiling them cannot fail.
        self = try! PreTokenizer(kind: kind)
    }

    /// The pre-tokenizer of one of llama.cpp's types (`PreTokenizer.kinds`).
    public init(kind: String) throws {
        guard let entry = Self.kinds[kind] else { throw TokenizerError.unknownPreTokenizer(kind) }
        self.kind = kind
        expressions = entry.expressions
        byteEncoded = entry.byteEncoded
        do {
            steps = try entry.expressions.map(Step.init(llamaCppExpression:))
        } catch let error as PatternRegexError {
            throw TokenizerError.invalidVocabulary("pre-tokenizer \(kind): \(error)")
        }
    }

    /// The pre-tokenizer a GGUF names in `tokenizer.ggml.pre`; absent means llama.cpp's default.
    public init(ggufName: String?) throws {
        guard let entry = Self.ggufNames[Self.key(ggufName)] else {
            throw TokenizerError.unknownPreTokenizer(ggufName ?? "")
        }
        try self.init(kind: entry.kind)
    }

    /// Whether llama.cpp looks a whole piece up in the vocabulary before merging, for this
    /// `tokenizer.ggml.pre` name (`ignore_merges`: Llama 3, Tekken, GLM 4, …).
    public static func ignoresMerges(ggufName: String?) -> Bool {
        ggufNames[key(ggufName)]?.ignoresMerges ?? false
    }

    /// Whether llama.cpp spells spaces `▁` before splitting, for this name (`escape_whitespaces`).
    public static func escapesWhitespace(ggufName: String?) -> Bool {
        escapingWhitespace.contains(key(ggufName))
    }

    private static func key(_ ggufName: String?) -> String {
        guard let ggufName, !ggufName.isEmpty else { return "default" }
        return ggufName
    }

    /// Every `tokenizer.ggml.pre` name Kiln knows, sorted.
    public static var ggufNameList: [String] { ggufNames.keys.sorted() }

    /// The pieces of `scalars`, as index ranges, in order; together they cover every scalar.
    public func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        guard !scalars.isEmpty else { return [] }
        let text = PreTokenizerText(scalars)
        var pieces = [0..<scalars.count]
        for step in steps {
            var next: [Range<Int>] = []
            next.reserveCapacity(pieces.count * 2)
            switch step {
            case .scan(let scan):
                let scanner = text.scanner
                for piece in pieces { scanner.scan(scan, piece, into: &next) }
            case .regex(let regex, let collapsed):
                let units = collapsed ? text.collapsed : text.wide
                units.withUnsafeBufferPointer { buffer in
                    for piece in pieces { regex.split(buffer, piece, into: &next) }
                }
            }
            pieces = next
        }
        return pieces
    }

    // MARK: steps

    enum Step: Sendable {
        case scan(Scan)
        case regex(PatternRegex, collapsed: Bool)

        /// llama.cpp's hand-written matcher when it has one for this exact expression
        /// (`unicode_regex_split_custom`), else the expression compiled as `std::regex` sees it.
        init(llamaCppExpression expression: String) throws {
            if let scan = Scan.forExpression[expression] {
                self = .scan(scan)
                return
            }
            if let collapsedSource = try Self.collapse(expression) {
                self = .regex(try PatternRegex(collapsedSource, description: expression), collapsed: true)
            } else {
                self = .regex(try PatternRegex(expression.unicodeScalars.map(\.value), description: expression), collapsed: false)
            }
        }

        /// llama.cpp's rewrite of an expression with \p{N} \p{L} \p{P} \p{M} \p{S} (and the
        /// letter subcategories, which it does not tell apart): each becomes its category code
        /// plus the ASCII characters of that category, bracketed unless already inside [ ].
        /// Nil when the expression names no category.
        static func collapse(_ expression: String) throws -> [UInt32]? {
            let categories: [(name: String, code: UInt32, ascii: String)] = [
                (#"\p{N}"#, 0xD1, "0-9"),
                (#"\p{L}"#, 0xD2, "A-Za-z"), (#"\p{Lu}"#, 0xD2, "A-Za-z"), (#"\p{Ll}"#, 0xD2, "A-Za-z"),
                (#"\p{Lt}"#, 0xD2, "A-Za-z"), (#"\p{Lm}"#, 0xD2, "A-Za-z"), (#"\p{Lo}"#, 0xD2, "A-Za-z"),
                (#"\p{P}"#, 0xD3, #"!-#%-*,-/:-;?-@\[-\]_\{\}"#),
                (#"\p{M}"#, 0xD4, ""),
                (#"\p{S}"#, 0xD5, #"\$\+<->^`\|\~"#),
            ]
            guard categories.contains(where: { expression.contains($0.name) }) else { return nil }
            let source = Array(expression.unicodeScalars)
            guard source.allSatisfy(\.isASCII) else {
                throw PatternRegexError(pattern: expression, reason: "Unicode categories beside non-ASCII characters")
            }
            var out: [UInt32] = []
            var inside = false
            var i = 0
            while i < source.count {
                let c = source[i]
                if c == "[" && (i == 0 || source[i - 1] != "\\") {
                    out.append(c.value)
                    inside = true
                    i += 1
                    continue
                }
                if inside && c == "]" && source[i - 1] != "\\" {
                    out.append(c.value)
                    inside = false
                    i += 1
                    continue
                }
                if c == "\\", i + 3 < source.count, source[i + 1] == "p", source[i + 2] == "{",
                   let close = source[(i + 3)...].firstIndex(of: "}"), close <= i + 10 {
                    let name = String(String.UnicodeScalarView(source[i...close]))
                    if let category = categories.first(where: { $0.name == name }) {
                        if !inside { out.append(0x5B) }
                        out.append(category.code)
                        out += category.ascii.unicodeScalars.map(\.value)
                        if !inside { out.append(0x5D) }
                        i = close + 1
                        continue
                    }
                }
                out.append(c.value)
                i += 1
            }
            return out
        }
    }
}

/// One text as each kind of step reads it, each form built on first use.
private final class PreTokenizerText {
    let scalars: [Unicode.Scalar]
    private(set) lazy var scanner = Scanner(scalars: scalars)

    /// What llama.cpp hands `std::regex` for an expression with categories: ASCII as itself,
    /// whitespace above 127 as \v, every other code point as its category's code.
    private(set) lazy var collapsed: [UInt32] = scalars.indices.map { i in
        let v = scalars[i].value
        if v < 128 { return v }
        let f = scanner.flags(i)
        if f.contains(.whitespace) { return 0x0B }
        if f.contains(.letter) { return 0xD2 }
        if f.contains(.number) { return 0xD1 }
        if f.contains(.punctuation) { return 0xD3 }
        if f.contains(.mark) { return 0xD4 }
        if f.contains(.symbol) { return 0xD5 }
        return 0xD0
    }

    /// What it hands `std::wregex` otherwise: code points, whitespace above 127 as \v.
    private(set) lazy var wide: [UInt32] = scalars.indices.map { i in
        let v = scalars[i].value
        return v >= 128 && scanner.flags(i).contains(.whitespace) ? 0x0B : v
    }

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }
}
