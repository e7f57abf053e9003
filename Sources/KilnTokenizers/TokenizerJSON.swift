import Foundation

/// Hugging Face `tokenizer.json`, decoded into typed parts. A component whose `type` Kiln does
/// not implement is an error that names it, never a silent approximation.
public enum TokenizerJSON {
    /// Builds the tokenizer a `tokenizer.json` describes: WordPiece models with the BERT
    /// normalizer and pre-tokenizer, and byte-level BPE models with the GPT-2, digit-splitting,
    /// Llama 3 or Qwen 2 pre-tokenizers.
    public static func load(_ data: Data) throws -> any Tokenizer {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw TokenizerError.invalidVocabulary("tokenizer.json does not parse: \(error)")
        }
        switch file.model {
        case .wordPiece(let model):
            return try wordPiece(model, file)
        case .bpe(let model):
            return try byteLevelBPE(model, file)
        }
    }

    public static func load(contentsOf url: URL) throws -> any Tokenizer {
        try load(Data(contentsOf: url))
    }

    static func wordPiece(_ model: WordPieceModel, _ file: File) throws -> WordPieceTokenizer {
        guard let size = model.vocab.values.max().map({ $0 + 1 }), size == model.vocab.count else {
            throw TokenizerError.invalidVocabulary("WordPiece vocab ids are not 0..<\(model.vocab.count)")
        }
        var tokens = [String](repeating: "", count: size)
        for (token, id) in model.vocab {
            guard id >= 0 else { throw TokenizerError.invalidVocabulary("negative id for \(token)") }
            tokens[id] = token
        }
        var kinds = [TokenKind](repeating: .normal, count: size)
        for added in file.addedTokens ?? [] where tokens.indices.contains(added.id) {
            kinds[added.id] = added.special ? .control : .userDefined
        }
        var normalization = WordPieceTokenizer.Normalization(cleanText: false, handleChineseCharacters: false,
                                                              stripAccents: false, lowercase: false)
        switch file.normalizer {
        case nil: break
        case .bert(let n):
            normalization = .init(cleanText: n.cleanText ?? true, handleChineseCharacters: n.handleChineseChars ?? true,
                                  stripAccents: n.stripAccents ?? (n.lowercase ?? true), lowercase: n.lowercase ?? true)
        }
        guard let unknown = model.vocab[model.unkToken] else {
            throw TokenizerError.invalidVocabulary("unknown token \(model.unkToken) is not in the vocabulary")
        }
        var classifier: Int?, separator: Int?
        if case .template(let t)? = file.postProcessor {
            // The single-sequence template: special tokens before and after the sequence.
            var seenSequence = false
            for piece in t.single {
                if piece.sequence != nil { seenSequence = true; continue }
                guard let name = piece.specialToken?.id, let id = t.specialTokens[name]?.ids.first ?? model.vocab[name] else {
                    throw TokenizerError.invalidVocabulary("post-processor names an unknown special token")
                }
                if seenSequence { separator = id } else { classifier = id }
            }
        }
        return try WordPieceTokenizer(
            tokens: tokens, kinds: kinds, marking: .continuationPrefix(model.continuingSubwordPrefix ?? "##"),
            normalization: normalization,
            specialTokens: SpecialTokens(pad: model.vocab["[PAD]"], unknown: unknown),
            classifier: classifier, separator: separator, maximumWordLength: model.maxInputCharsPerWord ?? 100)
    }

    static func byteLevelBPE(_ model: BPEModel, _ file: File) throws -> ByteLevelBPETokenizer {
        var tokens = [String](repeating: "", count: (model.vocab.values.max() ?? -1) + 1)
        var kinds = [TokenKind](repeating: .normal, count: tokens.count)
        for (token, id) in model.vocab where id >= 0 { tokens[id] = token }
        for added in file.addedTokens ?? [] {
            if added.id >= tokens.count {
                tokens += [String](repeating: "", count: added.id + 1 - tokens.count)
                kinds += [TokenKind](repeating: .unused, count: added.id + 1 - kinds.count)
            }
            tokens[added.id] = added.content
            kinds[added.id] = added.special ? .control : .userDefined
        }
        for (id, token) in tokens.enumerated() where token.isEmpty { kinds[id] = .unused }
        let preTokenizer: PreTokenizer
        switch file.preTokenizer {
        case .byteLevel(let addPrefixSpace, let useRegex)?:
            guard !addPrefixSpace, useRegex else { throw TokenizerError.invalidVocabulary("ByteLevel with add_prefix_space or without its regex is not supported") }
            preTokenizer = .gpt2
        case .sequence(let parts)?:
            preTokenizer = try sequencePreTokenizer(parts)
        default:
            throw TokenizerError.invalidVocabulary("a byte-level BPE tokenizer.json needs a ByteLevel pre_tokenizer")
        }
        var bos: Int?
        if case .template(let t)? = file.postProcessor, let first = t.single.first?.specialToken?.id {
            bos = t.specialTokens[first]?.ids.first ?? model.vocab[first]
        }
        return try ByteLevelBPETokenizer(
            tokens: tokens, merges: model.merges, kinds: kinds, preTokenizer: preTokenizer,
            specialTokens: SpecialTokens(bos: bos, unknown: model.unkToken.flatMap { model.vocab[$0] }),
            addsBOS: bos != nil, ignoresMerges: model.ignoreMerges ?? false)
    }

    /// Sequence pre-tokenizers Kiln recognizes: [Digits(individual), ByteLevel] (StarCoder,
    /// SmolLM) and [Split(Llama 3 / Qwen 2 expression), ByteLevel(use_regex false)].
    static func sequencePreTokenizer(_ parts: [PreTokenizerSpec]) throws -> PreTokenizer {
        switch (parts.first, parts.last, parts.count) {
        case (.digits(true)?, .byteLevel(false, true)?, 2): return .digitsThenGPT2
        case (.split(let pattern)?, .byteLevel(false, false)?, 2):
            let normalized = pattern.replacingOccurrences(of: "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])", with: "(?i:'s|'t|'re|'ve|'m|'ll|'d)")
            let llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
            let qwen2 = llama3.replacingOccurrences(of: #"\p{N}{1,3}"#, with: #"\p{N}"#)
            if normalized == llama3 { return .llama3 }
            if normalized == qwen2 { return .qwen2 }
            throw TokenizerError.invalidVocabulary("the Split pre-tokenizer pattern \(pattern) is not one Kiln implements")
        default:
            throw TokenizerError.invalidVocabulary("this Sequence of pre-tokenizers is not supported")
        }
    }

    struct File: Decodable {
        let model: Model
        let normalizer: Normalizer?
        let preTokenizer: PreTokenizerSpec?
        let postProcessor: PostProcessor?
        let addedTokens: [AddedToken]?

        enum CodingKeys: String, CodingKey {
            case model, normalizer
            case preTokenizer = "pre_tokenizer"
            case postProcessor = "post_processor"
            case addedTokens = "added_tokens"
        }
    }

    struct AddedToken: Decodable {
        let id: Int
        let content: String
        let special: Bool
    }

    /// Reads the `type` field of a component and names it in the error when unsupported.
    struct Kind: Decodable {
        let type: String
    }

    enum Model: Decodable {
        case wordPiece(WordPieceModel)
        case bpe(BPEModel)
        init(from decoder: Decoder) throws {
            let kind = try Kind(from: decoder).type
            switch kind {
            case "WordPiece": self = .wordPiece(try WordPieceModel(from: decoder))
            case "BPE": self = .bpe(try BPEModel(from: decoder))
            default: throw TokenizerError.invalidVocabulary("tokenizer.json model type \(kind) is not supported (WordPiece and BPE are)")
            }
        }
    }

    struct BPEModel: Decodable {
        let vocab: [String: Int]
        /// "a b" strings (older files) or ["a", "b"] pairs (newer ones), as "a b".
        let merges: [String]
        let ignoreMerges: Bool?
        let unkToken: String?
        enum CodingKeys: String, CodingKey {
            case vocab, merges
            case ignoreMerges = "ignore_merges"
            case unkToken = "unk_token"
        }
        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            vocab = try c.decode([String: Int].self, forKey: .vocab)
            if let strings = try? c.decode([String].self, forKey: .merges) {
                merges = strings
            } else {
                merges = try c.decode([[String]].self, forKey: .merges).map { $0.joined(separator: " ") }
            }
            ignoreMerges = try c.decodeIfPresent(Bool.self, forKey: .ignoreMerges)
            unkToken = try c.decodeIfPresent(String.self, forKey: .unkToken)
        }
    }

    struct WordPieceModel: Decodable {
        let vocab: [String: Int]
        let unkToken: String
        let continuingSubwordPrefix: String?
        let maxInputCharsPerWord: Int?
        enum CodingKeys: String, CodingKey {
            case vocab
            case unkToken = "unk_token"
            case continuingSubwordPrefix = "continuing_subword_prefix"
            case maxInputCharsPerWord = "max_input_chars_per_word"
        }
    }

    enum Normalizer: Decodable {
        case bert(BertNormalizer)
        init(from decoder: Decoder) throws {
            let kind = try Kind(from: decoder).type
            switch kind {
            case "BertNormalizer": self = .bert(try BertNormalizer(from: decoder))
            default: throw TokenizerError.invalidVocabulary("tokenizer.json normalizer type \(kind) is not supported")
            }
        }
    }

    struct BertNormalizer: Decodable {
        let cleanText: Bool?
        let handleChineseChars: Bool?
        let stripAccents: Bool?
        let lowercase: Bool?
        enum CodingKeys: String, CodingKey {
            case cleanText = "clean_text"
            case handleChineseChars = "handle_chinese_chars"
            case stripAccents = "strip_accents"
            case lowercase
        }
    }

    enum PreTokenizerSpec: Decodable {
        case bert
        case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
        case digits(individual: Bool)
        case split(pattern: String)
        case sequence([PreTokenizerSpec])

        enum Keys: String, CodingKey {
            case addPrefixSpace = "add_prefix_space", useRegex = "use_regex", individualDigits = "individual_digits"
            case pattern, pretokenizers
        }
        struct Pattern: Decodable {
            let Regex: String?
            let String: String?
        }

        init(from decoder: Decoder) throws {
            let kind = try Kind(from: decoder).type
            let c = try decoder.container(keyedBy: Keys.self)
            switch kind {
            case "BertPreTokenizer": self = .bert
            case "ByteLevel":
                self = .byteLevel(addPrefixSpace: try c.decodeIfPresent(Bool.self, forKey: .addPrefixSpace) ?? true,
                                  useRegex: try c.decodeIfPresent(Bool.self, forKey: .useRegex) ?? true)
            case "Digits": self = .digits(individual: try c.decodeIfPresent(Bool.self, forKey: .individualDigits) ?? false)
            case "Split":
                let p = try c.decode(Pattern.self, forKey: .pattern)
                guard let regex = p.Regex else { throw TokenizerError.invalidVocabulary("Split by a plain string is not supported") }
                self = .split(pattern: regex)
            case "Sequence": self = .sequence(try c.decode([PreTokenizerSpec].self, forKey: .pretokenizers))
            default: throw TokenizerError.invalidVocabulary("tokenizer.json pre_tokenizer type \(kind) is not supported")
            }
        }
    }

    enum PostProcessor: Decodable {
        case template(TemplateProcessing)
        case byteLevel
        init(from decoder: Decoder) throws {
            let kind = try Kind(from: decoder).type
            switch kind {
            case "TemplateProcessing": self = .template(try TemplateProcessing(from: decoder))
            case "ByteLevel": self = .byteLevel
            default: throw TokenizerError.invalidVocabulary("tokenizer.json post_processor type \(kind) is not supported")
            }
        }
    }

    struct TemplateProcessing: Decodable {
        struct Piece: Decodable {
            struct Special: Decodable { let id: String }
            struct Sequence: Decodable { let id: String }
            let specialToken: Special?
            let sequence: Sequence?
            enum CodingKeys: String, CodingKey {
                case specialToken = "SpecialToken"
                case sequence = "Sequence"
            }
        }
        struct SpecialEntry: Decodable { let ids: [Int] }
        let single: [Piece]
        let specialTokens: [String: SpecialEntry]
        enum CodingKeys: String, CodingKey {
            case single
            case specialTokens = "special_tokens"
        }
    }
}
