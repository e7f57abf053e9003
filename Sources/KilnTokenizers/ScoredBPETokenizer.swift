/// SentencePiece-style BPE as GGUF stores it (`tokenizer.ggml.model = llama`): spaces become `▁`,
/// a `▁` is prepended to text that starts the input or follows a special token, adjacent pieces
/// merge highest score first (leftmost on ties) while their concatenation is in the vocabulary,
/// and characters the vocabulary lacks fall back to `<0xNN>` byte tokens.
public final class ScoredBPETokenizer: Tokenizer {
    public let vocabularySize: Int
    public let specialTokens: SpecialTokens
    public let addsBOS: Bool
    public let addsEOS: Bool
    /// Prefix text with `▁` (GGUF `tokenizer.ggml.add_space_prefix`, default true).
    public let addsSpacePrefix: Bool

    private let pieces: [String]
    private let scores: [Float]
    private let kinds: [TokenKind]
    private let ids: [String: Int]
    private let table: ByteSequenceTable  // UTF-8 of each piece → id
    private let byteTokens: [Int?]  // byte → id of <0xNN>
    private let splitter: SpecialTokenSplitter

    public init(
        tokens: [String], scores: [Float], kinds: [TokenKind]? = nil, specialTokens: SpecialTokens = SpecialTokens(),
        addsBOS: Bool = true, addsEOS: Bool = false, addsSpacePrefix: Bool = true, kindOverrides: [Int: TokenKind] = [:]
    ) throws {
        try validateVocabulary(tokens: tokens, kinds: kinds, specialTokens: specialTokens)
        guard scores.count == tokens.count else {
            throw TokenizerError.invalidVocabulary("\(scores.count) scores for \(tokens.count) tokens")
        }
        vocabularySize = tokens.count
        pieces = tokens
        self.scores = scores
        self.kinds = kinds ?? [TokenKind](repeating: .normal, count: tokens.count)
        ids = indexTokens(tokens)
        table = ByteSequenceTable(pieces: tokens)
        byteTokens = (0..<256).map { [ids] byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return ids["<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"]
        }
        splitter = SpecialTokenSplitter(tokens: tokens, kinds: self.kinds, overrides: kindOverrides)
        self.specialTokens = specialTokens
        self.addsBOS = addsBOS
        self.addsEOS = addsEOS
        self.addsSpacePrefix = addsSpacePrefix
    }

    public func piece(for id: Int) -> String? { pieces.indices.contains(id) ? pieces[id] : nil }
    public func id(for piece: String) -> Int? { ids[piece] }

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        var out: [Int] = []
        if addSpecial && addsBOS, let bos = specialTokens.bos { out.append(bos) }
        var afterSpecial = true  // the input's start counts as following a special token
        for fragment in splitter.split(text, parseSpecial: parseSpecial) {
            switch fragment {
            case .special(let id):
                out.append(id)
                afterSpecial = true
            case .text(let t):
                var escaped: [UInt8] = []
                escaped.reserveCapacity(t.utf8.count + 8)
                if addsSpacePrefix && afterSpecial { escaped += [0xE2, 0x96, 0x81] }
                for byte in t.utf8 {
                    if byte == 0x20 { escaped += [0xE2, 0x96, 0x81] } else { escaped.append(byte) }  // ▁
                }
                encodeEscaped(escaped, into: &out)
                afterSpecial = false
            }
        }
        if addSpecial && addsEOS, let eos = specialTokens.eos { out.append(eos) }
        return out
    }

    /// The merge loop over one fragment's UTF-8: a doubly linked list of symbols (byte ranges of
    /// the text, one scalar each at first) and a max-heap of candidate pairs keyed by (score,
    /// leftmost), as llama.cpp's SPM tokenizer runs it. Adjacent symbols are adjacent bytes, so
    /// a pair's text is looked up in place.
    private func encodeEscaped(_ utf8: [UInt8], into out: inout [Int]) {
        var start: [Int] = [], length: [Int] = []
        for (i, byte) in utf8.enumerated() where byte & 0xC0 != 0x80 {
            if let last = start.last { length.append(i - last) }
            start.append(i)
        }
        guard let last = start.last else { return }
        length.append(utf8.count - last)
        let survivors = PairMerge.run(start: start, length: &length) { left, total, _ in
            table.value(in: utf8, left..<(left + total)).map { Double(scores[Int($0)]) }
        }
        for i in survivors {
            let range = start[i]..<(start[i] + length[i])
            if let id = table.value(in: utf8, range) {
                out.append(Int(id))
            } else {
                for byte in utf8[range] {
                    if let id = byteTokens[Int(byte)] ?? specialTokens.unknown { out.append(id) }
                }
            }
        }
    }

    public func bytes(for id: Int, skipSpecial: Bool) throws -> [UInt8] {
        guard pieces.indices.contains(id) else { throw TokenizerError.idOutOfRange(id, vocabularySize: vocabularySize) }
        return pieceBytes(pieces[id], kind: kinds[id], skipSpecial: skipSpecial, spaceMarks: true)
    }

    /// Text of `ids`; the `▁` added as a prefix at the start is removed again.
    public func decode(_ ids: [Int], skipSpecial: Bool) throws -> String {
        try decodedText(ids, skipSpecial: skipSpecial, droppingLeadingSpace: addsSpacePrefix)
    }
}

extension String {
    /// `▁` (U+2581) back to spaces.
    func replacingSpaceMarks() -> String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0 == "\u{2581}" ? " " : $0 }))
    }
}
