/// GPT-2-style byte-level BPE (GGUF `tokenizer.ggml.model = gpt2`): text is split by the
/// model's pre-tokenizer, each piece's UTF-8 bytes are mapped to visible characters, and the
/// vocabulary's merges are applied lowest rank first (leftmost on ties), as llama.cpp does.
/// Pre-tokenizers that are not byte-encoded (Gemma 4's) merge the piece's own characters and
/// fall back to `<0xNN>` tokens; with `escapesWhitespace` spaces are spelled `▁` first.
public final class ByteLevelBPETokenizer: Tokenizer {
    public let vocabularySize: Int
    public let specialTokens: SpecialTokens
    public let preTokenizer: PreTokenizer
    /// Prepend BOS when `addSpecial` is set (GGUF `tokenizer.ggml.add_bos_token`).
    public let addsBOS: Bool
    /// Append EOS when `addSpecial` is set (GGUF `tokenizer.ggml.add_eos_token`).
    public let addsEOS: Bool
    /// Look a whole piece up before merging (Llama 3 does).
    public let ignoresMerges: Bool
    /// Spell every space `▁` before splitting, and back when decoding (Gemma 4).
    public let escapesWhitespace: Bool

    private let pieces: [String]
    private let kinds: [TokenKind]
    private let ids: [String: Int]
    private let table: ByteSequenceTable  // UTF-8 of each piece → id
    private let ranks: ByteSequenceTable  // UTF-8 of left + right, split after left → merge rank
    private let splitter: SpecialTokenSplitter
    private let byteTokens: [Int?]  // byte → id of <0xNN>, for pre-tokenizers that are not byte-encoded

    /// - Parameters:
    ///   - tokens: the vocabulary, in byte-level form, indexed by id.
    ///   - merges: "left right" pairs, highest priority first.
    ///   - kinds: per-token kinds (GGUF token types); nil treats every token as normal.
    ///   - kindOverrides: kinds that replace the file's when special text is split out (llama.cpp
    ///     gives end-of-turn texts such as `</s>` the control attribute).
    public init(
        tokens: [String], merges: [String], kinds: [TokenKind]? = nil, preTokenizer: PreTokenizer,
        specialTokens: SpecialTokens = SpecialTokens(), addsBOS: Bool = false, addsEOS: Bool = false,
        ignoresMerges: Bool = false, escapesWhitespace: Bool = false, kindOverrides: [Int: TokenKind] = [:]
    ) throws {
        try validateVocabulary(tokens: tokens, kinds: kinds, specialTokens: specialTokens)
        vocabularySize = tokens.count
        pieces = tokens
        self.kinds = kinds ?? [TokenKind](repeating: .normal, count: tokens.count)
        ids = indexTokens(tokens)
        table = ByteSequenceTable(pieces: tokens)
        var ranks = ByteSequenceTable(capacity: merges.count)
        for (rank, merge) in merges.enumerated() {
            // The first space after the first byte separates the pieces, as llama.cpp reads it (on
            // bytes: a space before a combining mark is not a Character of its own).
            var utf8 = Array(merge.utf8)
            guard let space = utf8.dropFirst().firstIndex(of: 0x20), space + 1 < utf8.count,
                  !utf8[(space + 1)...].contains(0x20) else {
                throw TokenizerError.invalidVocabulary("merge #\(rank) \"\(merge)\" is not two pieces separated by a space")
            }
            utf8.remove(at: space)
            ranks.insert(utf8, split: space, value: Int32(rank))
        }
        self.ranks = ranks
        splitter = SpecialTokenSplitter(tokens: tokens, kinds: self.kinds, overrides: kindOverrides)
        self.specialTokens = specialTokens
        self.preTokenizer = preTokenizer
        self.addsBOS = addsBOS
        self.addsEOS = addsEOS
        self.ignoresMerges = ignoresMerges
        self.escapesWhitespace = escapesWhitespace
        byteTokens = (0..<256).map { [ids] byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return ids["<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"]
        }
    }

    /// The same vocabulary and merges under another pre-tokenizer (what llama.cpp's
    /// `--override-kv tokenizer.ggml.pre=str:NAME` does), sharing this one's tables.
    public func replacingPreTokenizer(_ preTokenizer: PreTokenizer, ignoresMerges: Bool, escapesWhitespace: Bool) -> ByteLevelBPETokenizer {
        ByteLevelBPETokenizer(copying: self, preTokenizer: preTokenizer, ignoresMerges: ignoresMerges, escapesWhitespace: escapesWhitespace)
    }

    private init(copying other: ByteLevelBPETokenizer, preTokenizer: PreTokenizer, ignoresMerges: Bool, escapesWhitespace: Bool) {
        vocabularySize = other.vocabularySize
        specialTokens = other.specialTokens
        addsBOS = other.addsBOS
        addsEOS = other.addsEOS
        pieces = other.pieces
        kinds = other.kinds
        ids = other.ids
        table = other.table
        ranks = other.ranks
        splitter = other.splitter
        byteTokens = other.byteTokens
        self.preTokenizer = preTokenizer
        self.ignoresMerges = ignoresMerges
        self.escapesWhitespace = escapesWhitespace
    }

    public func piece(for id: Int) -> String? { pieces.indices.contains(id) ? pieces[id] : nil }
    public func id(for piece: String) -> Int? { ids[piece] }
    public func kind(of id: Int) -> TokenKind? { kinds.indices.contains(id) ? kinds[id] : nil }

    // MARK: encoding

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        var out: [Int] = []
        if addSpecial && addsBOS, let bos = specialTokens.bos { out.append(bos) }
        splitter.encode(text, parseSpecial: parseSpecial, into: &out) { t, out in encodePlain(t, into: &out) }
        if addSpecial && addsEOS, let eos = specialTokens.eos { out.append(eos) }
        return out
    }

    func encodePlain(_ text: Substring, into out: inout [Int]) {
        let scalars = escapesWhitespace
            ? text.unicodeScalars.map { $0 == " " ? "\u{2581}" : $0 }
            : Array(text.unicodeScalars)
        var word: [UInt8] = [], starts: [Int] = []
        for range in preTokenizer.split(scalars) {
            // The piece in the vocabulary's alphabet, and where each of its first symbols starts:
            // one per byte in GPT-2's byte alphabet, one per scalar in raw UTF-8.
            word.removeAll(keepingCapacity: true)
            starts.removeAll(keepingCapacity: true)
            for scalar in scalars[range] {
                if preTokenizer.byteEncoded {
                    for byte in String(scalar).utf8 {
                        starts.append(word.count)
                        word += ByteLevel.utf8[Int(byte)]
                    }
                } else {
                    starts.append(word.count)
                    word += String(scalar).utf8
                }
            }
            if ignoresMerges || (preTokenizer.looksUpNewlineRuns && scalars[range].allSatisfy { $0 == "\n" }),
               let id = table.value(in: word, 0..<word.count) {
                out.append(Int(id))
                continue
            }
            merge(word, starts, into: &out)
        }
    }

    /// Merges one piece's symbols lowest rank first (leftmost on ties) with a heap of candidate
    /// pairs over a linked list, as llama.cpp's BPE session does; adjacent symbols are adjacent
    /// bytes, so a pair is looked up in place. Symbols left outside the vocabulary fall back to
    /// one token per byte as llama.cpp's do: the byte's own one-byte token in GPT-2's alphabet,
    /// its `<0xNN>` token in raw UTF-8.
    func merge(_ word: [UInt8], _ start: [Int], into out: inout [Int]) {
        let n = start.count
        guard n > 0 else { return }
        var length = (0..<n).map { ($0 + 1 < n ? start[$0 + 1] : word.count) - start[$0] }
        let survivors = PairMerge.run(start: start, length: &length) { left, total, leftLength in
            ranks.value(in: word, left..<(left + total), split: leftLength).map { -Double($0) }
        }
        for i in survivors {
            let range = start[i]..<(start[i] + length[i])
            if let id = table.value(in: word, range) {
                out.append(Int(id))
            } else if preTokenizer.byteEncoded {
                for b in range {
                    if let id = table.value(in: word, b..<(b + 1)) { out.append(Int(id)) }
                }
            } else {
                for byte in word[range] {
                    if let id = byteTokens[Int(byte)] { out.append(id) }
                }
            }
        }
    }

    // MARK: decoding

    public func bytes(for id: Int, skipSpecial: Bool) throws -> [UInt8] {
        guard pieces.indices.contains(id) else { throw TokenizerError.idOutOfRange(id, vocabularySize: vocabularySize) }
        switch kinds[id] {
        case .control: return skipSpecial ? [] : Array(pieces[id].utf8)
        case .userDefined: return Array(pieces[id].utf8)
        case .byte where !preTokenizer.byteEncoded:
            let piece = pieces[id]
            if piece.hasPrefix("<0x"), let byte = UInt8(piece.dropFirst(3).dropLast(), radix: 16) { return [byte] }
            return Array(piece.utf8)
        default:
            if escapesWhitespace { return Array(pieces[id].replacingOccurrences(of: "\u{2581}", with: " ").utf8) }
            return ByteLevel.decode(pieces[id]) ?? Array(pieces[id].utf8)
        }
    }

    public func decode(_ ids: [Int], skipSpecial: Bool) throws -> String {
        var utf8: [UInt8] = []
        for id in ids { utf8 += try bytes(for: id, skipSpecial: skipSpecial) }
        return String(decoding: utf8, as: UTF8.self)
    }
}
