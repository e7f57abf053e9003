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
    private let splitter: SpecialTokenSplitter

    public init(
        tokens: [String], kinds: [TokenKind]? = nil, marking: PieceMarking, normalization: Normalization = Normalization(),
        specialTokens: SpecialTokens, classifier: Int?, separator: Int?, maximumWordLength: Int = 100
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
        splitter = SpecialTokenSplitter(tokens: tokens, kinds: self.kinds)
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
                for word in words(of: String(t)) { encodeWord(word, into: &body) }
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
        if normalization.cleanText {
            scalars = scalars.compactMap { s in
                if s.value == 0 || s.value == 0xFFFD || isControl(s) { return nil }
                return isWhitespace(s) ? " " : s
            }
        }
        if normalization.stripAccents {
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
            let lowered: [Unicode.Scalar] = normalization.lowercase ? Array(s.properties.lowercaseMapping.unicodeScalars) : [s]
            if isPunctuation(s) || (normalization.handleChineseCharacters && isChinese(s)) {
                finish()
                current.append(contentsOf: lowered)
                finish()
            } else {
                current.append(contentsOf: lowered)
            }
        }
        finish()
        return words
    }

    /// Greedy longest match from each position; a word with any unmatched position is unknown.
    func encodeWord(_ word: String, into out: inout [Int]) {
        let characters = Array(word.unicodeScalars)
        guard characters.count <= maximumWordLength else {
            out.append(specialTokens.unknown!)
            return
        }
        var found: [Int] = []
        var start = 0
        while start < characters.count {
            var end = characters.count
            var match: Int?
            while end > start {
                var piece = String(String.UnicodeScalarView(characters[start..<end]))
                switch marking {
                case .continuationPrefix(let prefix): if start > 0 { piece = prefix + piece }
                case .wordStartPrefix(let prefix): if start == 0 { piece = prefix + piece }
                }
                if let id = ids[piece] {
                    match = id
                    break
                }
                end -= 1
            }
            guard let id = match else {
                out.append(specialTokens.unknown!)
                return
            }
            found.append(id)
            start = end
        }
        out.append(contentsOf: found)
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
