import Foundation
import KilnKernels
import KilnFormats

/// Passages and their vectors on disk: an HNSW index (which also holds the vectors for exact
/// search) plus one metadata record per passage, saved as a new generation of files and made
/// current by renaming a one-line `CURRENT` file — so a crash mid-save leaves the previous
/// generation in force.
public final class DocumentStore {
    public struct Passage: Codable, Sendable, Equatable {
        public var id: Int64
        public var source: String
        public var start: Int   // byte range of the passage in the source (for .jsonl: of the line)
        public var end: Int
        public var title: String?
        /// The `id` of the JSON-lines record the passage came from, if any.
        public var document: String?
        public var text: String
    }

    /// A passage to add: byte range in its source, optional title and record id, text.
    public struct NewPassage: Sendable {
        public var start: Int, end: Int
        public var title: String?
        public var document: String?
        public var text: String
        public init(start: Int, end: Int, title: String?, document: String?, text: String) {
            (self.start, self.end, self.title, self.document, self.text) = (start, end, title, document, text)
        }
    }

    struct Manifest: Codable {
        var dimension: Int
        var metric: DistanceMetric
        var nextID: Int64
        var passages: [Passage]
        /// Source path → modification date and size when indexed, to notice changed files.
        var sources: [String: SourceStamp]
        /// The embedding model that made the vectors (absent in stores written before it was kept).
        var model: ModelRecord?
    }

    /// The embedding model an index was built with: queries and new passages must come from it.
    public struct ModelRecord: Codable, Sendable, Equatable {
        public var name: String
        /// SHA-256 of the model's weights file, with the file's size and modification date when
        /// hashed (a file whose size and date still match need not be hashed again).
        public var sha256: String
        public var stamp: SourceStamp
        public init(name: String, sha256: String, stamp: SourceStamp) {
            (self.name, self.sha256, self.stamp) = (name, sha256, stamp)
        }
    }

    public struct SourceStamp: Codable, Sendable, Equatable {
        public var modified: Double
        public var size: Int
        public init(modified: Double, size: Int) {
            self.modified = modified
            self.size = size
        }
    }

    public let directory: URL
    public private(set) var index: HNSWIndex
    private var manifest: Manifest
    private var byID: [Int64: Int]

    /// Opens the store in `directory`, or creates an empty one for vectors of `dimension`.
    /// A nil dimension opens an existing store whatever its dimension.
    public init(directory: URL, dimension: Int?, metric: DistanceMetric = .cosine) throws {
        self.directory = directory
        let current = directory.appendingPathComponent("CURRENT")
        if let generation = try? String(contentsOf: current, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
           !generation.isEmpty {
            guard generation.allSatisfy(\.isNumber) else { throw HNSWIndex.PersistenceError.corrupt("CURRENT names \(generation)") }
            index = try HNSWIndex.load(from: directory.appendingPathComponent("vectors-\(generation).kiln").path)
            let data = try Data(contentsOf: directory.appendingPathComponent("documents-\(generation).json"))
            do {
                manifest = try JSONDecoder().decode(Manifest.self, from: data)
            } catch {
                throw HNSWIndex.PersistenceError.corrupt("documents-\(generation).json: \(error)")
            }
            guard manifest.dimension == index.dimension, manifest.passages.count == index.count else {
                throw HNSWIndex.PersistenceError.corrupt("documents and vectors disagree (\(manifest.passages.count) vs \(index.count))")
            }
            if let dimension, manifest.dimension != dimension {
                throw HNSWIndex.PersistenceError.corrupt("the index holds \(manifest.dimension)-dimensional vectors, the model makes \(dimension)")
            }
        } else {
            guard let dimension else { throw HNSWIndex.PersistenceError.corrupt("no index in \(directory.path)") }
            index = HNSWIndex(dimension: dimension, metric: metric)
            manifest = Manifest(dimension: dimension, metric: metric, nextID: 0, passages: [], sources: [:])
        }
        byID = Dictionary(uniqueKeysWithValues: manifest.passages.enumerated().map { ($0.element.id, $0.offset) })
    }

    public var passages: [Passage] { manifest.passages }
    public var sources: [String: SourceStamp] { manifest.sources }
    /// The embedding model recorded for the store (nil for an empty new store or an older one).
    public var model: ModelRecord? {
        get { manifest.model }
        set { manifest.model = newValue }
    }

    public func passage(_ id: Int64) -> Passage? { byID[id].map { manifest.passages[$0] } }

    /// Whether `source` is indexed with this stamp already.
    public func isCurrent(_ source: String, _ stamp: SourceStamp) -> Bool { manifest.sources[source] == stamp }

    /// Replaces everything indexed from `source` with `passages` and their vectors.
    public func replace(source: String, stamp: SourceStamp, passages new: [NewPassage], vectors: [Float], pool: ThreadPool? = nil) throws {
        remove(source: source)
        var ids: [Int64] = []
        for p in new {
            let id = manifest.nextID
            manifest.nextID += 1
            ids.append(id)
            byID[id] = manifest.passages.count
            manifest.passages.append(Passage(id: id, source: source, start: p.start, end: p.end, title: p.title, document: p.document, text: p.text))
        }
        try index.add(vectors, ids: ids, pool: pool)
        manifest.sources[source] = stamp
    }

    /// Forgets a source's passages (tombstoned in the graph). A source never indexed costs
    /// nothing, so adding many new files stays linear.
    @discardableResult
    public func remove(source: String) -> Int {
        guard manifest.sources[source] != nil else { return 0 }
        let gone = manifest.passages.filter { $0.source == source }
        for p in gone { index.remove(p.id) }
        manifest.passages.removeAll { $0.source == source }
        manifest.sources[source] = nil
        byID = Dictionary(uniqueKeysWithValues: manifest.passages.enumerated().map { ($0.element.id, $0.offset) })
        return gone.count
    }

    /// Writes a new generation and switches CURRENT to it; the previous generation's files are
    /// deleted only after the switch. When tombstones (removed or replaced passages) make up a
    /// quarter of the graph, the graph is rebuilt without them first.
    public func save(pool: ThreadPool? = nil) throws {
        let tombstones = index.nodeCount - index.count
        if tombstones > 0 && tombstones * 4 >= index.nodeCount {
            index = try index.compacted(pool: pool)
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let current = directory.appendingPathComponent("CURRENT")
        let previous = (try? String(contentsOf: current, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let generation = String((Int(previous ?? "0") ?? 0) + 1)
        try index.save(to: directory.appendingPathComponent("vectors-\(generation).kiln").path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try DurableFile.write(try encoder.encode(manifest), to: directory.appendingPathComponent("documents-\(generation).json").path)
        try DurableFile.write(Data((generation + "\n").utf8), to: current.path)
        if let previous, previous != generation {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent("vectors-\(previous).kiln"))
            try? FileManager.default.removeItem(at: directory.appendingPathComponent("documents-\(previous).json"))
        }
    }
}
