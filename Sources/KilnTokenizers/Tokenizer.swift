/// Turns text into token ids and back. Every model family uses this one protocol; conforming
/// types are immutable after construction, so one instance may serve many threads.
public protocol Tokenizer: Sendable {
    /// Token ids for `text`. `addSpecial` adds the model's own markers (BOS, CLS/SEP…);
    /// `parseSpecial` matches special-token text such as `<|im_end|>` in the input instead of
    /// treating it as plain characters.
    func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int]
    /// The text of `ids`; control tokens are dropped when `skipSpecial` is true and written as
    /// their text otherwise. Incomplete UTF-8 at the end becomes U+FFFD.
    func decode(_ ids: [Int], skipSpecial: Bool) throws -> String
    /// The raw bytes a token contributes to decoded text (empty for dropped control tokens).
    func bytes(for id: Int, skipSpecial: Bool) throws -> [UInt8]

    var vocabularySize: Int { get }
    /// The vocabulary string of a token (`Ġworld`, `▁hello`, `##ing`, `<|im_end|>`).
    func piece(for id: Int) -> String?
    /// The id of an exact vocabulary string.
    func id(for piece: String) -> Int?
    var specialTokens: SpecialTokens { get }
}

/// The ids a model treats specially. `endOfGeneration` holds every id that ends a reply.
public struct SpecialTokens: Sendable, Equatable {
    public var bos: Int?
    public var eos: Int?
    public var pad: Int?
    public var unknown: Int?
    public var endOfGeneration: Set<Int>

    public init(bos: Int? = nil, eos: Int? = nil, pad: Int? = nil, unknown: Int? = nil, endOfGeneration: Set<Int> = []) {
        self.bos = bos
        self.eos = eos
        self.pad = pad
        self.unknown = unknown
        self.endOfGeneration = endOfGeneration
    }
}

/// Why a tokenizer could not be built or could not decode.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    case invalidVocabulary(String)
    case unknownPreTokenizer(String)
    case idOutOfRange(Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case .invalidVocabulary(let why): return "invalid vocabulary: \(why)"
        case .unknownPreTokenizer(let name): return "unknown pre-tokenizer \"\(name)\""
        case .idOutOfRange(let id, let size): return "token id \(id) is outside the vocabulary of \(size)"
        }
    }
}

/// How a vocabulary entry behaves (GGUF `tokenizer.ggml.token_type`).
public enum TokenKind: Int, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// The bytes a SentencePiece-family piece contributes to decoded text: `dropped` kinds (control
/// tokens) nothing when special tokens are skipped and their text otherwise, `<0xNN>` byte
/// tokens their byte, user-defined pieces their text, the rest their text with `▁` read as a
/// space when `spaceMarks` is set.
func pieceBytes(_ piece: String, kind: TokenKind, skipSpecial: Bool, dropped: Set<TokenKind> = [.control],
                spaceMarks: Bool) -> [UInt8] {
    if dropped.contains(kind) { return skipSpecial ? [] : Array(piece.utf8) }
    switch kind {
    case .byte:
        if piece.hasPrefix("<0x"), let byte = UInt8(piece.dropFirst(3).dropLast(), radix: 16) { return [byte] }
        return Array(piece.utf8)
    case .userDefined: return Array(piece.utf8)
    default: return Array((spaceMarks ? piece.replacingSpaceMarks() : piece).utf8)
    }
}

extension Tokenizer {
    /// The ids' bytes joined and read as UTF-8, without the first space when the tokenizer put
    /// one in front of the text.
    func decodedText(_ ids: [Int], skipSpecial: Bool, droppingLeadingSpace: Bool) throws -> String {
        var utf8: [UInt8] = []
        for id in ids { utf8 += try bytes(for: id, skipSpecial: skipSpecial) }
        if droppingLeadingSpace, utf8.first == 0x20 { utf8.removeFirst() }
        return String(decoding: utf8, as: UTF8.self)
    }
}
