import Foundation

/// Hugging Face `tokenizer.json`, decoded into typed parts. A component whose `type` Kiln does
/// not implement is an error that names it, never a silent approximation.
public enum TokenizerJSON {
    /// Builds the tokenizer a `tokenizer.json` describes (WordPiece models with the BERT
    /// normalizer and pre-tokenizer).
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
        init(from decoder: Decoder) throws {
            let kind = try Kind(from: decoder).type
            switch kind {
            case "WordPiece": self = .wordPiece(try WordPieceModel(from: decoder))
            default: throw TokenizerError.invalidVocabulary("tokenizer.json model type \(kind) is not supported (WordPiece is)")
            }
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
        init(from decoder: Decoder) throws {
            let kind = try Kind(from: decoder).type
            switch kind {
            case "BertPreTokenizer": self = .bert
            default: throw TokenizerError.invalidVocabulary("tokenizer.json pre_tokenizer type \(kind) is not supported")
            }
        }
    }

    enum PostProcessor: Decodable {
        case template(TemplateProcessing)
        init(from decoder: Decoder) throws {
            let kind = try Kind(from: decoder).type
            switch kind {
            case "TemplateProcessing": self = .template(try TemplateProcessing(from: decoder))
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
