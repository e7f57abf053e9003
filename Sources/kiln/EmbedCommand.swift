import ArgumentParser
import Foundation
import KilnTokenizers
import KilnTransformer

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print sentence embeddings (mean-pooled, unit length) of texts.",
        discussion: "Texts longer than the model's max_seq_length (sentence_bert_config.json, 256 for MiniLM) are truncated, as sentence-transformers does."
    )

    @Option(help: "A sentence-transformers folder (config.json, model.safetensors, tokenizer.json).")
    var model = "Checkpoints/all-MiniLM-L6-v2"
    @Option(name: .long, parsing: .upToNextOption, help: "Texts to embed.") var text: [String] = []
    @Option(help: "A UTF-8 file with one text per line.") var file: String?
    @Flag(help: "Print {\"model\":…,\"dimension\":…,\"embeddings\":[[…],…]}.") var json = false

    func validate() throws {
        guard text.isEmpty != (file == nil) else { throw ValidationError("give --text or --file (one of them)") }
    }

    func run() throws {
        var texts = text
        if let file {
            let data = try readFile(file)
            guard let content = String(validating: [UInt8](data), as: UTF8.self) else { throw CLIError("\(file) is not valid UTF-8") }
            texts = content.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            guard !texts.isEmpty else { throw CLIError("\(file) has no lines to embed") }
        }
        let folder = URL(fileURLWithPath: model)
        let bert: BertModel, tokenizer: WordPieceTokenizer
        do {
            bert = try BertModel(folder: folder)
            guard let t = try TokenizerJSON.load(contentsOf: folder.appendingPathComponent("tokenizer.json")) as? WordPieceTokenizer else {
                throw CLIError("\(model)/tokenizer.json is not a WordPiece tokenizer")
            }
            tokenizer = t
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(model): \(error)")
        }
        struct SentenceConfig: Decodable { let max_seq_length: Int? }
        let maximum = (try? JSONDecoder().decode(SentenceConfig.self, from: Data(contentsOf: folder.appendingPathComponent("sentence_bert_config.json"))))?
            .max_seq_length ?? bert.configuration.maximumPositions
        let ids = texts.map { tokenizer.encode($0, addSpecial: true, parseSpecial: false, maximumLength: min(maximum, bert.configuration.maximumPositions)) }
        // Similar lengths together, 32 at a time, so little padding is computed.
        let order = ids.indices.sorted { ids[$0].count < ids[$1].count }
        var vectors = [[Float]](repeating: [], count: ids.count)
        for start in stride(from: 0, to: order.count, by: 32) {
            let batch = Array(order[start..<min(order.count, start + 32)])
            for (i, v) in zip(batch, try bert.embed(batch.map { ids[$0] })) { vectors[i] = v }
        }
        if json {
            struct Output: Encodable { let model: String; let dimension: Int; let embeddings: [[Float]] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
            print(String(decoding: try encoder.encode(Output(model: model, dimension: bert.configuration.hiddenSize, embeddings: vectors)), as: UTF8.self))
        } else {
            for (t, v) in zip(texts, vectors) {
                print(t)
                print("  [" + v.map { String(format: "%.6f", $0) }.joined(separator: ", ") + "]")
            }
        }
    }
}
