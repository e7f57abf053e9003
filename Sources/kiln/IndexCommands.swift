import ArgumentParser
import Foundation
import KilnSearch
import KilnServices
import KilnTokenizers
import KilnTransformer

/// The embedding model and index location shared by the index and search commands.
struct IndexArguments: ParsableArguments {
    @Option(help: "The index folder.") var index = ".kiln-index"
    @Option(help: "A sentence-transformers folder (default: the one the index was built with, else \(ModelLocator.defaultEmbeddingModel)).")
    var model: String?

    /// The index with its embedding model; `mustExist`: fail when there is none yet.
    func open(mustExist: Bool) throws -> DocumentIndex {
        do {
            return try DocumentIndex(directory: index, model: model, mustExist: mustExist)
        } catch let failure as DocumentIndex.Failure {
            throw CLIError(failure.description)
        } catch let missing as ModelLocator.NotFound {
            throw CLIError(missing.description)
        } catch {
            throw CLIError("\(index): \(error)")
        }
    }

    /// The store alone, for commands that need no model.
    func store() throws -> DocumentStore {
        guard FileManager.default.fileExists(atPath: index + "/CURRENT") else { throw CLIError("no index at \(index)") }
        do {
            return try DocumentStore(directory: URL(fileURLWithPath: index), dimension: nil)
        } catch {
            throw CLIError("\(index): \(error)")
        }
    }
}

struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index", abstract: "Build and inspect a searchable index of documents.",
        subcommands: [IndexAddCommand.self, IndexStatsCommand.self, IndexRemoveCommand.self])
}

struct IndexAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Index .txt, .md and .jsonl files (folders are walked); changed files replace their old passages.")

    @OptionGroup var arguments: IndexArguments
    @Argument(help: "Files or folders.") var paths: [String]
    @Option(help: "Tokens per passage at most.") var chunkTokens = 256
    @Option(help: "Tokens shared by consecutive passages.") var overlap = 32
    @Option(help: "For .jsonl files: the field holding each record's text.") var field = "text"
    @Option(help: "For .jsonl files: the field holding each record's title.") var titleField = "title"

    func validate() throws {
        guard chunkTokens >= 8, chunkTokens <= 510 else { throw ValidationError("--chunk-tokens must be in 8…510") }
        guard overlap >= 0, overlap < chunkTokens else { throw ValidationError("--overlap must be in 0..<chunk-tokens") }
    }

    func run() throws {
        let documents = try arguments.open(mustExist: false)
        let warnings = ProgressBar(total: 0, label: "")
        var progress: ProgressBar?
        let summary: DocumentIndex.Ingestion
        do {
            summary = try documents.add(paths, chunkTokens: chunkTokens, overlap: overlap, textField: field, titleField: titleField,
                                        progress: { done, total in
                if progress == nil { progress = ProgressBar(total: total, label: "embedding passages") }
                progress?.update(done)
            }, warning: warnings.note)
        } catch let failure as DocumentIndex.Failure {
            throw CLIError(failure.description)
        }
        progress?.finish()
        print("indexed \(summary.passages) passages from \(summary.files) files (\(summary.unchanged) unchanged, \(summary.skipped) skipped); "
            + "\(documents.store.passages.count) passages in \(arguments.index)")
    }
}

struct IndexStatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Show what an index holds.")
    @OptionGroup var arguments: IndexArguments

    func run() throws {
        let store = try arguments.store()
        if let model = store.model { print("model       \(model.name) (sha256 \(model.sha256))") }
        print("index       \(arguments.index)")
        print("sources     \(store.sources.count)")
        print("passages    \(store.passages.count)")
        print("vectors     \(store.index.count) × \(store.index.dimension), \(store.index.metric.rawValue), HNSW M=\(store.index.m) efSearch=\(store.index.efSearch)")
        print("tombstones  \(store.index.nodeCount - store.index.count) (removed when they reach a quarter of the graph)")
    }
}

struct IndexRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Forget files' passages.")
    @OptionGroup var arguments: IndexArguments
    @Argument(help: "Files as they were indexed.") var paths: [String]

    func run() throws {
        let store = try arguments.store()
        var removed = 0
        for path in paths { removed += store.remove(source: URL(fileURLWithPath: path).standardizedFileURL.path) }
        try store.save()
        print("removed \(removed) passages")
    }
}

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Find the passages closest to a query.")
    @OptionGroup var arguments: IndexArguments
    @Argument(help: "The query.") var query: String?
    @Option(name: .customShort("k"), help: "Results per query.") var k = 10
    @Flag(help: "Score every passage instead of walking the graph.") var exact = false
    @Option(help: "Candidates explored per query (HNSW efSearch).") var ef: Int?
    @Option(help: "One query per line; results for all of them.") var queries: String?
    @Flag(help: "JSON output: one result list per query.") var json = false

    func validate() throws {
        guard (query == nil) != (queries == nil) else { throw ValidationError("give a query or --queries FILE") }
        if let query, query.allSatisfy(\.isWhitespace) { throw ValidationError("the query is empty") }
        guard k > 0 else { throw ValidationError("-k must be positive") }
    }

    func run() throws {
        let documents = try arguments.open(mustExist: true)
        var texts = query.map { [$0] } ?? []
        if let queries {
            guard let content = String(validating: [UInt8](try readFile(queries)), as: UTF8.self) else { throw CLIError("\(queries) is not valid UTF-8") }
            texts = content.split(separator: "\n").map(String.init).filter { !$0.allSatisfy(\.isWhitespace) }
            guard !texts.isEmpty else { throw CLIError("\(queries) holds no queries") }
        }
        let results = try documents.search(texts, k: k, exact: exact, ef: ef)
        if json {
            struct Hit: Encodable { let id: Int64; let score: Float; let source: String; let title: String?; let document: String? }
            let lists = results.map {
                $0.map { Hit(id: $0.passage.id, score: $0.score, source: $0.passage.source, title: $0.passage.title, document: $0.passage.document) }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
            print(String(decoding: try encoder.encode(lists), as: UTF8.self))
            return
        }
        for (text, hits) in zip(texts, results) {
            if texts.count > 1 { print("# \(text)") }
            for (rank, hit) in hits.enumerated() {
                let p = hit.passage
                let snippet = p.text.replacingOccurrences(of: "\n", with: " ").prefix(160)
                print(String(format: "%2d. %.4f  ", rank + 1, hit.score) + "\(p.source) [\(p.start)–\(p.end)]" + (p.title.map { " — \($0)" } ?? ""))
                print("    \(snippet)")
            }
        }
    }
}
