import ArgumentParser
import Foundation
import KilnSearch
import KilnTokenizers
import KilnTransformer

/// The embedding model and index location shared by the index and search commands.
struct IndexArguments: ParsableArguments {
    @Option(help: "The index folder.") var index = ".kiln-index"
    @Option(help: "A sentence-transformers folder.") var model = "Checkpoints/all-MiniLM-L6-v2"

    func embedder() throws -> SentenceEmbedder { try loadEmbedder(model) }

    func store(dimension: Int?) throws -> DocumentStore {
        do {
            return try DocumentStore(directory: URL(fileURLWithPath: index), dimension: dimension)
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

    func validate() throws {
        guard chunkTokens >= 8, chunkTokens <= 510 else { throw ValidationError("--chunk-tokens must be in 8…510") }
        guard overlap >= 0, overlap < chunkTokens else { throw ValidationError("--overlap must be in 0..<chunk-tokens") }
    }

    func run() throws {
        let embedder = try arguments.embedder()
        let store = try arguments.store(dimension: embedder.dimension)
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
        // Split every new or changed file first, so the progress bar can count passages.
        struct Pending { let source: String; let stamp: DocumentStore.SourceStamp; let passages: [DocumentStore.NewPassage] }
        var pending: [Pending] = []
        var skipped = 0, unchanged = 0
        let warnings = ProgressBar(total: 0, label: "")
        let count: (Substring) -> Int = { embedder.tokenizer.encode(String($0), addSpecial: false, parseSpecial: false).count }
        for file in files.sorted() {
            let source = URL(fileURLWithPath: file).standardizedFileURL.path
            let attributes = try? FileManager.default.attributesOfItem(atPath: source)
            let stamp = DocumentStore.SourceStamp(
                modified: (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0,
                size: (attributes?[.size] as? Int) ?? 0)
            if store.isCurrent(source, stamp) { unchanged += 1; continue }
            guard let data = FileManager.default.contents(atPath: source), !data.contains(0),
                  let text = String(validating: [UInt8](data), as: UTF8.self) else {
                warnings.note("skipping \(file): binary or not UTF-8")
                skipped += 1
                continue
            }
            var passages: [DocumentStore.NewPassage] = []
            if source.hasSuffix(".jsonl") {
                var offset = 0
                for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                    defer { offset += line.utf8.count + 1 }
                    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                          let body = object["text"] as? String else { continue }
                    let title = object["title"] as? String
                    // The record's own id (number or string), reported with every hit.
                    let document = (object["id"] as? String) ?? (object["id"] as? NSNumber)?.stringValue
                    for p in PassageSplitter.split(body, maxTokens: chunkTokens - 2, overlapTokens: overlap, countTokens: count) {
                        passages.append(.init(start: offset, end: offset + line.utf8.count, title: title, document: document, text: p.text))
                    }
                }
            } else {
                for p in PassageSplitter.split(text, maxTokens: chunkTokens - 2, overlapTokens: overlap, countTokens: count) {
                    passages.append(.init(start: p.start, end: p.end, title: nil, document: nil, text: p.text))
                }
            }
            pending.append(Pending(source: source, stamp: stamp, passages: passages))
        }
        let all = pending.flatMap(\.passages)
        let progress = ProgressBar(total: all.count, label: "embedding passages")
        let vectors = try embedder.model.embedAll(all.map { embedder.tokens($0.text, limit: chunkTokens) }, progress: progress.update)
        progress.finish()
        var next = 0
        for file in pending {
            let mine = vectors[next..<(next + file.passages.count)]
            try store.replace(source: file.source, stamp: file.stamp, passages: file.passages, vectors: mine.flatMap { $0 }, pool: .shared)
            next += file.passages.count
        }
        let added = all.count
        try store.save(pool: .shared)
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
        print("vectors     \(store.index.count) × \(store.index.dimension), \(store.index.metric.rawValue), HNSW M=\(store.index.m) efSearch=\(store.index.efSearch)")
        print("tombstones  \(store.index.nodeCount - store.index.count) (removed when they reach a quarter of the graph)")
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
        if let query, query.allSatisfy(\.isWhitespace) { throw ValidationError("the query is empty") }
        guard k > 0 else { throw ValidationError("-k must be positive") }
    }

    func run() throws {
        guard FileManager.default.fileExists(atPath: arguments.index + "/CURRENT") else {
            throw CLIError("no index at \(arguments.index); build one with kiln index add")
        }
        let embedder = try arguments.embedder()
        let store = try arguments.store(dimension: embedder.dimension)
        var texts = query.map { [$0] } ?? []
        if let queries {
            guard let content = String(validating: [UInt8](try readFile(queries)), as: UTF8.self) else { throw CLIError("\(queries) is not valid UTF-8") }
            texts = content.split(separator: "\n").map(String.init).filter { !$0.allSatisfy(\.isWhitespace) }
            guard !texts.isEmpty else { throw CLIError("\(queries) holds no queries") }
        }
        let vectors = try embedder.embed(texts)
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
            struct Hit: Encodable { let id: Int64; let score: Float; let source: String; let title: String?; let document: String? }
            let lists = results.map {
                $0.compactMap { h in
                    store.passage(h.id).map { Hit(id: h.id, score: h.score, source: $0.source, title: $0.title, document: $0.document) }
                }
            }
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
