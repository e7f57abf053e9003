import Foundation
import KilnKernels
import KilnTokenizers

/// A sentence-transformers folder ready to embed text: the BERT encoder, its WordPiece tokenizer
/// and the truncation length sentence-transformers applies (`max_seq_length` from
/// sentence_bert_config.json, which may differ from tokenizer.json's).
public struct SentenceEmbedder: Sendable {
    public let model: BertModel
    public let tokenizer: WordPieceTokenizer
    /// Tokens per text, [CLS] and [SEP] included.
    public let maximumLength: Int

    public enum LoadError: Error, CustomStringConvertible {
        case notWordPiece(String)
        public var description: String {
            switch self {
            case .notWordPiece(let path): return "\(path) is not a WordPiece tokenizer"
            }
        }
    }

    let pool: ThreadPool

    public init(folder: URL, pool: ThreadPool = .shared) throws {
        self.pool = pool
        model = try BertModel(folder: folder, pool: pool)
        let tokenizerFile = folder.appendingPathComponent("tokenizer.json")
        guard let wordPiece = try TokenizerJSON.load(contentsOf: tokenizerFile) as? WordPieceTokenizer else {
            throw LoadError.notWordPiece(tokenizerFile.path)
        }
        tokenizer = wordPiece
        struct SentenceConfig: Decodable { let max_seq_length: Int? }
        let configured = (try? JSONDecoder().decode(SentenceConfig.self, from: Data(contentsOf: folder.appendingPathComponent("sentence_bert_config.json"))))?
            .max_seq_length
        maximumLength = min(configured ?? model.configuration.maximumPositions, model.configuration.maximumPositions)
    }

    public var dimension: Int { model.configuration.hiddenSize }

    /// Token ids of `text` as the model sees it: [CLS] … [SEP], truncated to `maximumLength`
    /// (or `limit`, if smaller).
    public func tokens(_ text: String, limit: Int? = nil) -> [Int] {
        tokenizer.encode(text, addSpecial: true, parseSpecial: false, maximumLength: min(maximumLength, limit ?? maximumLength))
    }

    /// Unit-length embeddings of `texts`, batched by similar length; `progress` gets the count done.
    public func embed(_ texts: [String], batchSize: Int = 32, progress: (Int) -> Void = { _ in }) throws -> [[Float]] {
        // Tokenizers are immutable, so texts are split into word pieces on all threads.
        var sequences = [[Int]](repeating: [], count: texts.count)
        sequences.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            pool.parallelFor(texts.count, grain: 16) { range in
                for i in range { (base + i).pointee = self.tokens(texts[i]) }
            }
        }
        return try model.embedAll(sequences, batchSize: batchSize, progress: progress)
    }
}
