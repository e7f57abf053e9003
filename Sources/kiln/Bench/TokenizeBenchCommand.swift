import ArgumentParser
import Foundation
import KilnTokenizers

/// Single-thread encode speed of one tokenizer on real text: MB of UTF-8 per second over a
/// few MB of documents, each encoded on its own as a user's texts are (no special-token
/// parsing, no BOS). `scripts/bench-tokenize` runs Hugging Face `tokenizers` on the same
/// documents in the same run and prints the ratio.
struct TokenizeBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Measure single-thread tokenizer encode speed (MB/s) on a corpus.")

    @OptionGroup var tokenizer: TokenizerArguments
    @Option(help: "Documents: a JSON-lines file (one object per line, text in --field) or plain UTF-8 text (one document per line).")
    var corpus: String
    @Option(help: "The JSON field holding each document's text.") var field = "long"
    @Option(help: "Use documents until this many MB of UTF-8 are taken.") var megabytes = 4.0
    @Option(help: "Timed passes over the documents; the median is reported.") var reps = 5
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard megabytes > 0, megabytes <= 1024 else { throw ValidationError("--megabytes must be in (0, 1024]") }
        guard (1...1000).contains(reps) else { throw ValidationError("--reps must be 1…1000") }
    }

    func run() throws {
        let documents = try loadDocuments()
        let bytes = documents.reduce(0) { $0 + $1.utf8.count }
        let t = try tokenizer.load()
        var tokens = 0
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a over every id, to compare with the peer's
        for document in documents {
            let ids = t.encode(document, addSpecial: false, parseSpecial: false)
            tokens += ids.count
            for id in ids {
                digest = (digest ^ UInt64(truncatingIfNeeded: id)) &* 0x100_0000_01b3
            }
            digest = (digest ^ 0xFFFF_FFFF) &* 0x100_0000_01b3  // document boundary
        }
        var seconds: [Double] = []
        for _ in 0..<reps {
            let start = monotonicSeconds()
            var count = 0
            for document in documents { count &+= t.encode(document, addSpecial: false, parseSpecial: false).count }
            seconds.append(monotonicSeconds() - start)
            consume(count)
        }
        let stats = Stats(seconds)
        let report = Report(
            model: tokenizer.model, tokenizer: String(describing: type(of: t)), documents: documents.count, bytes: bytes,
            tokens: tokens, idDigest: String(digest, radix: 16), seconds: stats,
            megabytesPerSecond: Double(bytes) / 1e6 / stats.median, tokensPerSecond: Double(tokens) / stats.median)
        if json {
            try printReport(report)
        } else {
            print("\(report.tokenizer) on \(documents.count) documents, \(String(format: "%.2f", Double(bytes) / 1e6)) MB, \(tokens) tokens")
            print(String(format: "encode: %.2f MB/s, %.0f tokens/s (median of %d, 1 thread)", report.megabytesPerSecond, report.tokensPerSecond, reps))
        }
    }

    struct Report: Encodable {
        let model: String
        let tokenizer: String
        let documents: Int
        let bytes: Int
        let tokens: Int
        let idDigest: String
        let seconds: Stats
        let megabytesPerSecond: Double
        let tokensPerSecond: Double
    }

    func loadDocuments() throws -> [String] {
        let data = try readFile(corpus)
        guard let text = String(validating: [UInt8](data), as: UTF8.self) else { throw CLIError("\(corpus) is not valid UTF-8") }
        let limit = Int(megabytes * 1e6)
        var documents: [String] = [], taken = 0
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() where taken < limit {
            var document = String(line)
            if line.first == "{" {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw CLIError("\(corpus) line \(number + 1) is not a JSON object")
                }
                guard let value = object[field] as? String else { throw CLIError("\(corpus) line \(number + 1) has no string field \"\(field)\"") }
                document = value
            }
            taken += document.utf8.count
            documents.append(document)
        }
        guard !documents.isEmpty else { throw CLIError("\(corpus) holds no documents") }
        return documents
    }
}
