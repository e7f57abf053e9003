import Foundation
import KilnFormats
import KilnKernels
import KilnSearch
import KilnTransformer

/// A searchable index of documents with the embedding model that built it: what `kiln index`,
/// `kiln search` and the server share. The index records the model (name and SHA-256 of its
/// weights); later uses load that model by default and refuse a different one.
public final class DocumentIndex {
    public let store: DocumentStore
    public let embedder: SentenceEmbedder
    /// The embedding model's folder.
    public let modelFolder: URL
    let pool: ThreadPool

    public enum Failure: Error, CustomStringConvertible {
        case noIndex(String)
        case differentModel(index: String, recorded: DocumentStore.ModelRecord, given: String)
        case notFound(String)
        case unreadable(String)

        public var description: String {
            switch self {
            case .noIndex(let path): return "no index at \(path); build one with kiln index add"
            case .differentModel(let index, let recorded, let given):
                return "\(index) was built with the embedding model \(recorded.name) (sha256 \(recorded.sha256.prefix(12))…); "
                    + "\(given) is a different model: use the same one, or build a new index"
            case .notFound(let path): return "no such file or folder: \(path)"
            case .unreadable(let path): return "cannot read \(path)"
            }
        }
    }

    /// Opens the index in `directory` (`mustExist`: fail if there is none) with the embedding
    /// model `model` (a folder, found through `locator`), or with the model the index records,
    /// or the default one.
    public init(directory: String, model: String?, mustExist: Bool, locator: ModelLocator = ModelLocator(),
                pool: ThreadPool = .shared) throws {
        let url = URL(fileURLWithPath: directory)
        let exists = FileManager.default.fileExists(atPath: url.appendingPathComponent("CURRENT").path)
        if mustExist && !exists { throw Failure.noIndex(directory) }
        // The recorded model is needed before the embedder loads, so an existing store opens first.
        let existing = exists ? try DocumentStore(directory: url, dimension: nil) : nil
        let recorded = existing?.model
        let folder = try locator.resolve(model ?? recorded?.name ?? ModelLocator.defaultEmbeddingModel)
        let identity = try Self.identity(of: folder, known: recorded)
        if let recorded, recorded.sha256 != identity.sha256 {
            throw Failure.differentModel(index: directory, recorded: recorded, given: model ?? folder.path)
        }
        embedder = try SentenceEmbedder(folder: folder, pool: pool)
        let store = try existing ?? DocumentStore(directory: url, dimension: embedder.dimension)
        guard store.index.dimension == embedder.dimension else {
            throw HNSWIndex.PersistenceError.corrupt("the index holds \(store.index.dimension)-dimensional vectors, \(folder.lastPathComponent) makes \(embedder.dimension)")
        }
        store.model = identity
        self.store = store
        modelFolder = folder
        self.pool = pool
    }

    /// The model's name (its folder's name) and the SHA-256 of its weights; the recorded digest
    /// is reused while the weights file keeps its size and modification date.
    static func identity(of folder: URL, known: DocumentStore.ModelRecord?) throws -> DocumentStore.ModelRecord {
        let weights = folder.appendingPathComponent("model.safetensors").path
        let stamp = try fileStamp(weights)
        if let known, known.name == folder.lastPathComponent, known.stamp == stamp { return known }
        return DocumentStore.ModelRecord(name: folder.lastPathComponent, sha256: try SHA256Digest.hex(ofFile: weights), stamp: stamp)
    }

    static func fileStamp(_ path: String) throws -> DocumentStore.SourceStamp {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { throw Failure.unreadable(path) }
        return DocumentStore.SourceStamp(modified: (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0,
                                         size: (attributes[.size] as? Int) ?? 0)
    }

    // MARK: Adding documents

    public struct Ingestion: Sendable {
        public var files = 0, unchanged = 0, skipped = 0, passages = 0
    }

    /// The files a list of paths names: files as given, folders walked for .txt, .md and .jsonl.
    public static func files(in paths: [String]) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw Failure.notFound(path) }
            guard isDirectory.boolValue else {
                files.append(path)
                continue
            }
            let enumerator = FileManager.default.enumerator(atPath: path)
            while let relative = enumerator?.nextObject() as? String {
                let full = (path as NSString).appendingPathComponent(relative)
                if ["txt", "md", "jsonl"].contains((full as NSString).pathExtension.lowercased()) { files.append(full) }
            }
        }
        return files.sorted()
    }

    /// Indexes `paths` (new or changed files replace their old passages) and saves a new
    /// generation. Passages hold at most `chunkTokens` tokens with `overlap` shared by neighbours;
    /// JSON-lines records give their text in `textField` and their title in `titleField`.
    /// `progress(done, total)` counts passages embedded; `warning` gets each file skipped.
    public func add(_ paths: [String], chunkTokens: Int, overlap: Int, textField: String = "text", titleField: String = "title",
                    progress: (Int, Int) -> Void = { _, _ in }, warning: (String) -> Void = { _ in }) throws -> Ingestion {
        let files = try Self.files(in: paths)
        struct Pending { let source: String; let stamp: DocumentStore.SourceStamp; let passages: [DocumentStore.NewPassage] }
        var pending: [Pending] = []
        var summary = Ingestion()
        let tokenizer = embedder.tokenizer
        let count: (Substring) -> Int = { tokenizer.encode(String($0), addSpecial: false, parseSpecial: false).count }
        for file in files {
            let source = URL(fileURLWithPath: file).standardizedFileURL.path
            let stamp = (try? Self.fileStamp(source)) ?? DocumentStore.SourceStamp(modified: 0, size: 0)
            if store.isCurrent(source, stamp) {
                summary.unchanged += 1
                continue
            }
            guard let data = FileManager.default.contents(atPath: source), !data.contains(0),
                  let text = String(validating: [UInt8](data), as: UTF8.self) else {
                warning("skipping \(file): binary or not UTF-8")
                summary.skipped += 1
                continue
            }
            let passages = source.hasSuffix(".jsonl")
                ? Self.jsonLinesPassages(text, textField: textField, titleField: titleField, chunkTokens: chunkTokens, overlap: overlap, count: count)
                : PassageSplitter.split(text, maxTokens: chunkTokens - 2, overlapTokens: overlap, countTokens: count).map {
                    DocumentStore.NewPassage(start: $0.start, end: $0.end, title: nil, document: nil, text: $0.text)
                }
            pending.append(Pending(source: source, stamp: stamp, passages: passages))
        }
        let all = pending.flatMap(\.passages)
        let total = all.count
        progress(0, total)
        let vectors = try embedder.model.embedAll(all.map { embedder.tokens($0.text, limit: chunkTokens) }, progress: { progress($0, total) })
        var next = 0
        for file in pending {
            let mine = vectors[next..<(next + file.passages.count)]
            try store.replace(source: file.source, stamp: file.stamp, passages: file.passages, vectors: mine.flatMap { $0 }, pool: pool)
            next += file.passages.count
        }
        try store.save(pool: pool)
        summary.files = files.count - summary.skipped - summary.unchanged
        summary.passages = total
        return summary
    }

    /// A JSON-lines file's passages: each record's string `textField`, split, with its
    /// `titleField` and `id` (number or string); a passage's range is its record's line. Other
    /// lines are skipped.
    static func jsonLinesPassages(_ text: String, textField: String, titleField: String, chunkTokens: Int, overlap: Int,
                                  count: (Substring) -> Int) -> [DocumentStore.NewPassage] {
        var passages: [DocumentStore.NewPassage] = []
        var offset = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            defer { offset += line.utf8.count + 1 }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let body = object[textField] as? String else { continue }
            let title = object[titleField] as? String
            let document = (object["id"] as? String) ?? (object["id"] as? NSNumber)?.stringValue
            for p in PassageSplitter.split(body, maxTokens: chunkTokens - 2, overlapTokens: overlap, countTokens: count) {
                passages.append(.init(start: offset, end: offset + line.utf8.count, title: title, document: document, text: p.text))
            }
        }
        return passages
    }

    // MARK: Searching

    /// A passage found for a query, best first.
    public struct Hit: Sendable {
        public let score: Float
        public let passage: DocumentStore.Passage
    }

    /// The `k` passages closest to each query: on the graph (`ef` candidates, the index's own
    /// setting when nil), or scoring every passage with `exact`.
    public func search(_ queries: [String], k: Int, exact: Bool = false, ef: Int? = nil) throws -> [[Hit]] {
        let vectors = try embedder.embed(queries)
        if let ef { store.index.efSearch = ef }
        let results: [[SearchHit]]
        if exact {
            let flat = FlatIndex(dimension: store.index.dimension, metric: store.index.metric)
            // Passages are unit vectors already: the graph holds them.
            try flat.add(store.index.liveVectors(), ids: store.index.liveIDs())
            results = try flat.search(vectors.flatMap { $0 }, k: k)
        } else {
            results = try store.index.search(vectors.flatMap { $0 }, k: k)
        }
        return results.map { $0.compactMap { hit in store.passage(hit.id).map { Hit(score: hit.score, passage: $0) } } }
    }
}
