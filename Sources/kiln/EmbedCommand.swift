import ArgumentParser
import Foundation
import KilnServices
import KilnFormats
import KilnKernels
import KilnTokenizers
import KilnTransformer

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print sentence embeddings (mean-pooled, unit length) of texts.",
        discussion: "Texts longer than the model's max_seq_length (sentence_bert_config.json, 256 for MiniLM) are truncated, as sentence-transformers does."
    )

    @Option(help: "A sentence-transformers folder (config.json, model.safetensors, tokenizer.json).")
    var model = ModelLocator.defaultEmbeddingModel
    @Option(name: .long, parsing: .upToNextOption, help: "Texts to embed.") var text: [String] = []
    @Option(help: "A UTF-8 file with one text per line, or a .jsonl file (see --field).") var file: String?
    @Option(help: "For a .jsonl --file: the field holding each text.") var field = "text"
    @Option(help: "Write the vectors to this safetensors file (tensor \"embeddings\", [texts, dimension], F32) instead of printing them.")
    var out: String?
    @Flag(help: "Print {\"model\":…,\"dimension\":…,\"embeddings\":[[…],…]}.") var json = false

    func validate() throws {
        guard text.isEmpty != (file == nil) else { throw ValidationError("give --text or --file (one of them)") }
    }

    func run() throws {
        var texts = text
        if let file {
            texts = try readTexts(file, field: field, limit: .max)
        }
        let embedder = try loadEmbedder(model)
        let progress = ProgressBar(total: texts.count, label: "embedding", quiet: out == nil || json)
        let vectors = try embedder.embed(texts, progress: progress.update)
        progress.finish()
        if let out {
            let flat = vectors.flatMap { $0 }
            let bytes = flat.withUnsafeBytes { Data($0) }
            do {
                try SafetensorsWriter.write([.init(name: "embeddings", dtype: .f32, shape: [vectors.count, embedder.dimension], bytes: bytes)],
                                           metadata: ["model": model], to: out)
            } catch {
                throw CLIError("cannot write \(out): \(error)")
            }
            print("wrote \(vectors.count) × \(embedder.dimension) embeddings to \(out)")
            return
        }
        if json {
            struct Output: Encodable { let model: String; let dimension: Int; let embeddings: [[Float]] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
            print(String(decoding: try encoder.encode(Output(model: model, dimension: embedder.dimension, embeddings: vectors)), as: UTF8.self))
        } else {
            for (t, v) in zip(texts, vectors) {
                print(t)
                print("  [" + v.map { String(format: "%.6f", $0) }.joined(separator: ", ") + "]")
            }
        }
    }
}

/// The sentence-transformers folder at `path`, or an error naming it.
func loadEmbedder(_ path: String, pool: ThreadPool = .shared) throws -> SentenceEmbedder {
    do {
        return try SentenceEmbedder(folder: URL(fileURLWithPath: try modelPath(path)), pool: pool)
    } catch let error as CLIError {
        throw error
    } catch {
        throw CLIError("\(path): \(error)")
    }
}

/// The first `limit` texts of a JSON-lines file (string field `field` of each record) or of a
/// plain UTF-8 file (one per non-empty line).
func readTexts(_ path: String, field: String, limit: Int) throws -> [String] {
    guard let content = String(validating: [UInt8](try readFile(path)), as: UTF8.self) else {
        throw CLIError("\(path) is not valid UTF-8")
    }
    var texts: [String] = []
    for (number, line) in content.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
        if texts.count == limit { break }
        if path.hasSuffix(".jsonl") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let text = object[field] as? String else {
                throw CLIError("\(path) line \(number + 1): not a JSON object with a string \"\(field)\"")
            }
            texts.append(text)
        } else {
            texts.append(String(line))
        }
    }
    guard !texts.isEmpty else { throw CLIError("\(path) holds no documents") }
    return texts
}
