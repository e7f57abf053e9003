import Foundation

/// BERT's WordPiece: normalize (clean control characters, space out CJK ideographs, strip accents,
/// lowercase), split on whitespace and punctuation, then take the longest vocabulary piece at
/// each position of a word. Serves both spellings of a vocabulary: Hugging Face's (`##` marks a
/// continuation) and GGUF's (`▁` marks a word start).
public final class WordPieceTokenizer: Tokenizer {
    public struct Normalization: Sendable, Equatable {
        public var cleanText = true
        public var handleChineseCharacters = true
        public var stripAccents = true
        public var lowercase = true
        public init(cleanText: Bool = true, handleChineseCharacters: Bool = true, stripAccents: Bool = true, lowercase: Bool = true) {
            self.cleanText = cleanText
            self.handleChineseCharacters = handleChineseCharacters
            self.stripAccents = stripAccents
            self.lowercase = lowercase
        }
    }

    /// How the vocabulary marks where a piece sits in a word.
    public enum PieceMarking: Sendable, Equatable {
        /// Hugging Face: continuations start with a prefix ("##ing").
        case continuationPrefix(String)
        /// GGUF: word starts begin with a prefix ("▁play"), continuations are bare.
        case wordStartPrefix(String)
    }

    public let vocabularySize: Int
    public let specialTokens: SpecialTokens
    public let normalization: Normalization
    public let marking: PieceMarking
    /// [CLS] and [SEP] ids added around the text when `addSpecial` is set.
    public let classifier: Int?
    public let separator: Int?
    /// Words longer than this (in characters) become the unknown token.
    public let maximumWordLength: Int

    private let pieces: [String]
    private let kinds: [TokenKind]
    private let ids: [String: Int]
    private let table: ByteSequenceTable  // UTF-8 of each piece → id
    private let prefix: [UInt8]  // the marking's prefix, as UTF-8
    private let splitter: SpecialTokenSplitter

    public init(
        tokens: [String], kinds: [TokenKind]? = nil, marking: PieceMarking, normalization: Normalization = Normalization(),
        specialTokens: SpecialTokens, classifier: Int?, separator: Int?, maximumWordLength: Int = 100,
        kindOverrides: [Int: TokenKind] = [:]
    ) throws {
        try validateVocabulary(tokens: tokens, kinds: kinds, specialTokens: specialTokens)
        guard specialTokens.unknown != nil else { throw TokenizerError.invalidVocabulary("WordPiece needs an unknown token") }
        for (name, id) in [("classifier", classifier), ("separator", separator)] {
            if let id, !(0..<tokens.count).contains(id) {
                throw TokenizerError.invalidVocabulary("\(name) id \(id) is outside the vocabulary of \(tokens.count)")
            }
        }
        vocabularySize = tokens.count
        pieces = tokens
        self.kinds = kinds ?? [TokenKind](repeating: .normal, count: tokens.count)
        ids = indexTokens(tokens)
        table = ByteSequenceTable(pieces: tokens)
        switch marking {
        case .continuationPrefix(let p), .wordStartPrefix(let p): prefix = Array(p.utf8)
        }
        splitter = SpecialTokenSplitter(tokens: tokens, kinds: self.kinds, overrides: kindOverrides)
        self.specialTokens = specialTokens
        self.normalization = normalization
        self.marking = marking
        self.classifier = classifier
        self.separator = separator
        self.maximumWordLength = maximumWordLength
    }

    public func piece(for id: Int) -> String? { pieces.indices.contains(id) ? pieces[id] : nil }
    public func id(for piece: String) -> Int? { ids[piece] }

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        encode(text, addSpecial: addSpecial, parseSpecial: parseSpecial, maximumLength: nil)
    }

    /// As `encode(_:addSpecial:parseSpecial:)`, keeping at most `maximumLength` ids in all
    /// (the text is cut so that [CLS] … [SEP] still fit, as sentence-transformers truncates).
    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool, maximumLength: Int?) -> [Int] {
        var body: [Int] = []
        for fragment in splitter.split(text, parseSpecial: parseSpecial) {
            switch fragment {
            case .special(let id): body.append(id)
            case .text(let t):
                for word in words(of: String(t)) { encodeWord(Array(word.utf8), into: &body) }
            }
        }
        let reserved = addSpecial ? (classifier == nil ? 0 : 1) + (separator == nil ? 0 : 1) : 0
        if let maximumLength { body = Array(body.prefix(max(0, maximumLength - reserved))) }
        guard addSpecial else { return body }
        return (classifier.map { [$0] } ?? []) + body + (separator.map { [$0] } ?? [])
    }

    /// Normalized words and single punctuation characters, in order.
    func words(of text: String) -> [String] {
        var scalars = Array(text.unicodeScalars)
        let ascii = scalars.allSatisfy(\.isASCII)
        if normalization.cleanText {
            scalars = scalars.compactMap { s in
                if s.value == 0 || s.value == 0xFFFD || isControl(s) { return nil }
                return isWhitespace(s) ? " " : s
            }
        }
        if normalization.stripAccents && !ascii {  // ASCII has nothing to decompose
            let decomposed = String(String.UnicodeScalarView(scalars)).decomposedStringWithCanonicalMapping
            scalars = decomposed.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
        }
        var words: [String] = []
        var current = String.UnicodeScalarView()
        func finish() {
            if !current.isEmpty { words.append(String(current)) }
            current = String.UnicodeScalarView()
        }
        for s in scalars {
            if isWhitespace(s) {
                finish()
                continue
            }
            if isPunctuation(s) || (normalization.handleChineseCharacters && isChinese(s)) {
                finish()
                appendLowered(s, to: &current)
                finish()
            } else {
                appendLowered(s, to: &current)
            }
        }
        finish()
        return words
    }

    private func appendLowered(_ s: Unicode.Scalar, to word: inout String.UnicodeScalarView) {
        guard normalization.lowercase else { return word.append(s) }
        if s.isASCII {
            word.append((65...90).contains(s.value) ? Unicode.Scalar(s.value + 32)! : s)
        } else {
            word.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
        }
    }

    /// Greedy longest match from each position (ends on scalar boundaries); a word with any
    /// unmatched position is unknown. Candidates are looked up as bytes: the marking's prefix
    /// is copied once per position in front of the rest of the word.
    func encodeWord(_ word: [UInt8], into out: inout [Int]) {
        var boundaries: [Int] = []  // scalar starts, then the end
        for (i, byte) in word.enumerated() where byte & 0xC0 != 0x80 { boundaries.append(i) }
        guard boundaries.count <= maximumWordLength else {
            out.append(specialTokens.unknown!)
            return
        }
        boundaries.append(word.count)
        let continuation: Bool
        switch marking {
        case .continuationPrefix: continuation = true
        case .wordStartPrefix: continuation = false
        }
        let mark = prefix.count
        var scratch = prefix
        let before = out.count
        var start = 0  // index into boundaries
        while start < boundaries.count - 1 {
            let marked = continuation ? start > 0 : start == 0
            scratch.removeSubrange(mark...)
            scratch += word[boundaries[start]...]
            var match: (id: Int32, end: Int)?
            var end = boundaries.count - 1
            while end > start {
                let length = boundaries[end] - boundaries[start]
                let id = marked ? table.value(in: scratch, 0..<(mark + length))
                    : table.value(in: word, boundaries[start]..<boundaries[end])
                if let id {
                    match = (id, end)
                    break
                }
                end -= 1
            }
            guard let match else {
                out.removeSubrange(before...)
                out.append(specialTokens.unknown!)
                return
            }
            out.append(Int(match.id))
            start = match.end
        }
    }

    public func bytes(for id: Int, skipSpecial: Bool) throws -> [UInt8] {
        guard pieces.indices.contains(id) else { throw TokenizerError.idOutOfRange(id, vocabularySize: vocabularySize) }
        if kinds[id] == .control || id == classifier || id == separator || id == specialTokens.pad {
            return skipSpecial ? [] : Array(pieces[id].utf8)
        }
        return Array(pieces[id].utf8)
    }

    /// Words joined by spaces, continuations glued on, then Hugging Face's clean-up of spaces
    /// before punctuation and contractions.
    public func decode(_ ids: [Int], skipSpecial: Bool) throws -> String {
        var text = ""
        for id in ids {
            let piece = String(decoding: try bytes(for: id, skipSpecial: skipSpecial), as: UTF8.self)
            if piece.isEmpty { continue }
            switch marking {
            case .continuationPrefix(let prefix):
                if piece.hasPrefix(prefix) { text += piece.dropFirst(prefix.count) } else { text += (text.isEmpty ? "" : " ") + piece }
            case .wordStartPrefix(let prefix):
                if piece.hasPrefix(prefix) { text += (text.isEmpty ? "" : " ") + piece.dropFirst(prefix.count) } else { text += piece }
            }
        }
        for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                           (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
            text = text.replacingOccurrences(of: from, with: to)
        }
        return text
    }

    // Character classes as Hugging Face's BERT normalizer and pre-tokenizer define them.
    /// Unicode White_Space (Rust's char::is_whitespace): the space separators and also the line and
    /// paragraph separators U+2028 / U+2029 and the C0/C1 spaces (which cleaning removes first as
    /// controls).
    private func isWhitespace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    private func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    private func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    private func isChinese(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
