import ArgumentParser
import Foundation
import KilnSearch
import KilnTokenizers
import KilnTransformer

/// The embedding model and index location shared by the index and search commands.
struct IndexArguments: ParsableArguments {
    @Option(help: "The index folder.") var index = ".kiln-index"
    @Option(help: "A sentence-transformers folder.") var model = "Checkpoints/all-MiniLM-L6-v2"

    func embedder() throws -> (BertModel, WordPieceTokenizer) {
        let folder = URL(fileURLWithPath: model)
        do {
            let bert = try BertModel(folder: folder)
            guard let tokenizer = try TokenizerJSON.load(contentsOf: folder.appendingPathComponent("tokenizer.json")) as? WordPieceTokenizer else {
                throw CLIError("\(model)/tokenizer.json is not a WordPiece tokenizer")
            }
            return (bert, tokenizer)
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(model): \(error)")
        }
    }

    func store(dimension: Int?) throws -> DocumentStore {
        do {
            return try DocumentStore(directory: URL(fileURLWithPath: index), dimension: dimension)
        } catch {
            throw CLIError("\(index): \(error)")
        }
    }
}

/// Embeds token sequences in length-sorted batches of 32.
func embedAll(_ bert: BertModel, _ sequences: [[Int]]) throws -> [[Float]] {
    let order = sequences.indices.sorted { sequences[$0].count < sequences[$1].count }
    var vectors = [[Float]](repeating: [], count: sequences.count)
    for start in stride(from: 0, to: order.count, by: 32) {
        let batch = Array(order[start..<min(order.count, start + 32)])
        for (i, v) in zip(batch, try bert.embed(batch.map { sequences[$0] })) { vectors[i] = v }
    }
    return vectors
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

    func validate() throws {
        guard chunkTokens >= 8, chunkTokens <= 510 else { throw ValidationError("--chunk-tokens must be in 8…510") }
        guard overlap >= 0, overlap < chunkTokens else { throw ValidationError("--overlap must be in 0..<chunk-tokens") }
    }

    func run() throws {
        let (bert, tokenizer) = try arguments.embedder()
        let store = try arguments.store(dimension: bert.configuration.hiddenSize)
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CLIError("no such file or folder: \(path)") }
            if isDirectory.boolValue {
                let enumerator = FileManager.default.enumerator(atPath: path)
                while let relative = enumerator?.nextObject() as? String {
                    let full = (path as NSString).appendingPathComponent(relative)
                    if ["txt", "md", "jsonl"].contains((full as NSString).pathExtension.lowercased()) { files.append(full) }
                }
            } else {
                files.append(path)
            }
        }
        let progress = ProgressBar(total: files.count, label: "indexing")
        var added = 0, skipped = 0, unchanged = 0
        for file in files.sorted() {
            defer { progress.advance() }
            let source = URL(fileURLWithPath: file).standardizedFileURL.path
            let attributes = try? FileManager.default.attributesOfItem(atPath: source)
            let stamp = DocumentStore.SourceStamp(
                modified: (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0,
                size: (attributes?[.size] as? Int) ?? 0)
            if store.isCurrent(source, stamp) { unchanged += 1; continue }
            guard let data = FileManager.default.contents(atPath: source), !data.contains(0),
                  let text = String(validating: [UInt8](data), as: UTF8.self) else {
                progress.note("skipping \(file): binary or not UTF-8")
                skipped += 1
                continue
            }
            var passages: [(start: Int, end: Int, title: String?, text: String)] = []
            let count: (Substring) -> Int = { tokenizer.encode(String($0), addSpecial: false, parseSpecial: false).count }
            if source.hasSuffix(".jsonl") {
                var offset = 0
                for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                    defer { offset += line.utf8.count + 1 }
                    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                          let body = object["text"] as? String else { continue }
                    let title = object["title"] as? String
                    for p in PassageSplitter.split(body, maxTokens: chunkTokens - 2, overlapTokens: overlap, countTokens: count) {
                        passages.append((offset, offset + line.utf8.count, title, p.text))
                    }
                }
            } else {
                for p in PassageSplitter.split(text, maxTokens: chunkTokens - 2, overlapTokens: overlap, countTokens: count) {
                    passages.append((p.start, p.end, nil, p.text))
                }
            }
            let ids = passages.map { tokenizer.encode($0.text, addSpecial: true, parseSpecial: false, maximumLength: chunkTokens) }
            let vectors = try embedAll(bert, ids)
            try store.replace(source: source, stamp: stamp, passages: passages, vectors: vectors.flatMap { $0 })
            added += passages.count
        }
        progress.finish()
        try store.save()
        print("indexed \(added) passages from \(files.count - skipped - unchanged) files (\(unchanged) unchanged, \(skipped) skipped); \(store.passages.count) passages in \(arguments.index)")
    }
}

struct IndexStatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Show what an index holds.")
    @OptionGroup var arguments: IndexArguments

    func run() throws {
        guard FileManager.default.fileExists(atPath: arguments.index + "/CURRENT") else { throw CLIError("no index at \(arguments.index)") }
        let store = try arguments.store(dimension: nil)
        print("index       \(arguments.index)")
        print("sources     \(store.sources.count)")
        print("passages    \(store.passages.count)")
        print("vectors     \(store.index.count) × \(store.index.dimension), \(store.index.metric.rawValue), HNSW M=\(store.index.m)")
    }
}

struct IndexRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Forget files' passages.")
    @OptionGroup var arguments: IndexArguments
    @Argument(help: "Files as they were indexed.") var paths: [String]

    func run() throws {
        guard FileManager.default.fileExists(atPath: arguments.index + "/CURRENT") else { throw CLIError("no index at \(arguments.index)") }
        let store = try arguments.store(dimension: nil)
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
        guard k > 0 else { throw ValidationError("-k must be positive") }
    }

    func run() throws {
        guard FileManager.default.fileExists(atPath: arguments.index + "/CURRENT") else {
            throw CLIError("no index at \(arguments.index); build one with kiln index add")
        }
        let (bert, tokenizer) = try arguments.embedder()
        let store = try arguments.store(dimension: bert.configuration.hiddenSize)
        var texts = query.map { [$0] } ?? []
        if let queries {
            guard let content = String(validating: [UInt8](try readFile(queries)), as: UTF8.self) else { throw CLIError("\(queries) is not valid UTF-8") }
            texts = content.split(separator: "\n").map(String.init)
        }
        let vectors = try embedAll(bert, texts.map { tokenizer.encode($0, addSpecial: true, parseSpecial: false, maximumLength: 256) })
        if let ef { store.index.efSearch = ef }
        let results: [[SearchHit]]
        if exact {
            let flat = FlatIndex(dimension: store.index.dimension, metric: store.index.metric)
            // Passages are unit vectors already: re-embedding is not needed, the graph holds them.
            try flat.add(store.index.liveVectors(), ids: store.index.liveIDs())
            results = try flat.search(vectors.flatMap { $0 }, k: k)
        } else {
            results = try store.index.search(vectors.flatMap { $0 }, k: k)
        }
        if json {
            struct Hit: Encodable { let id: Int64; let score: Float; let source: String; let title: String? }
            let lists = results.map { $0.compactMap { h in store.passage(h.id).map { Hit(id: h.id, score: h.score, source: $0.source, title: $0.title) } } }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
            print(String(decoding: try encoder.encode(lists), as: UTF8.self))
            return
        }
        for (text, hits) in zip(texts, results) {
            if texts.count > 1 { print("# \(text)") }
            for (rank, hit) in hits.enumerated() {
                guard let p = store.passage(hit.id) else { continue }
                let snippet = p.text.replacingOccurrences(of: "\n", with: " ").prefix(160)
                print(String(format: "%2d. %.4f  ", rank + 1, hit.score) + "\(p.source) [\(p.start)–\(p.end)]" + (p.title.map { " — \($0)" } ?? ""))
                print("    \(snippet)")
            }
        }
    }
}

/// "label ████░░ 12/40 3.1/s ETA 9 s" on a terminal's stderr; silent otherwise.
final class ProgressBar {
    let total: Int, label: String
    private var done = 0
    private let start = Date()
    private let enabled = isatty(STDERR_FILENO) != 0

    init(total: Int, label: String) { (self.total, self.label) = (total, label) }

    func advance() {
        done += 1
        guard enabled else { return }
        let elapsed = Date().timeIntervalSince(start), rate = Double(done) / max(elapsed, 1e-6)
        let filled = total == 0 ? 20 : 20 * done / total
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: 20 - filled)
        FileHandle.standardError.write(Data(String(format: "\r%@ %@ %d/%d %.1f/s ETA %.0f s ", label, bar, done, total, rate, eta).utf8))
    }

    func note(_ message: String) {
        FileHandle.standardError.write(Data(((enabled ? "\r\u{1B}[K" : "") + "warning: " + message + "\n").utf8))
    }

    func finish() { if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
}
