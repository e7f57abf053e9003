import Foundation
import KilnKernels
import KilnSearch
import KilnTestSupport
import Testing

/// HNSW recall against the exact index on clustered random data, and tombstones.
@Suite struct HNSWIndexTests {
    static func clustered(count: Int, dimension: Int, seed: UInt64) -> (vectors: [Float], queries: [Float], centers: [[Float]]) {
        var rng = SeededGenerator(seed: seed)
        let centers = (0..<20).map { _ in rng.normals(dimension, scale: 3) }
        let vectors = (0..<count).flatMap { i in zip(centers[i % 20], rng.normals(dimension)).map { $0 + $1 } }
        let queries = (0..<50).flatMap { i in zip(centers[i % 20], rng.normals(dimension)).map { $0 + $1 } }
        return (vectors, queries, centers)
    }

    static func recall(_ truth: [[SearchHit]], _ found: [[SearchHit]]) -> Double {
        let hits = zip(truth, found).map { t, a in Set(t.map(\.id)).intersection(a.map(\.id)).count }.reduce(0, +)
        return Double(hits) / Double(truth.count * 10)
    }

    /// Built serially and in parallel on two threads, searched one by one and as a parallel batch.
    @Test(arguments: DistanceMetric.allCases, [false, true]) func recallAgainstExactSearch(metric: DistanceMetric, parallel: Bool) throws {
        let dimension = 24, count = 2000
        let (vectors, queries, _) = Self.clustered(count: count, dimension: dimension, seed: 61)
        let ids = (0..<count).map { Int64($0) }
        let exact = FlatIndex(dimension: dimension, metric: metric)
        let graph = HNSWIndex(dimension: dimension, metric: metric, m: 12, efConstruction: 100, efSearch: 64)
        let pool = ThreadPool(threadCount: 2)
        try exact.add(vectors, ids: ids)
        try graph.add(vectors, ids: ids, pool: parallel ? pool : nil)
        #expect(graph.count == count)
        let truth = try exact.search(queries, k: 10), approximate = try graph.search(queries, k: 10)
        let recall = Self.recall(truth, approximate)
        #expect(recall >= 0.95, "recall@10 = \(recall)")
        // A parallel batch answers exactly as one query at a time.
        let batch = try graph.search(queries, k: 10, pool: pool)
        #expect(batch == approximate)
        // Removed vectors never come back, and k live results still do.
        let gone = truth[0].map(\.id)
        for id in gone { #expect(graph.remove(id)) }
        let after = try graph.search(Array(queries[0..<dimension]), k: 10)[0]
        #expect(after.count == 10 && Set(after.map(\.id)).isDisjoint(with: gone))
        // Compaction drops the tombstones and keeps the recall.
        let compact = try graph.compacted(pool: pool)
        #expect(compact.nodeCount == count - gone.count && compact.count == count - gone.count)
        #expect(Set(compact.liveIDs()) == Set(graph.liveIDs()))
        for id in gone { #expect(!compact.remove(id)) }
        let exactAfter = FlatIndex(dimension: dimension, metric: metric)
        try exactAfter.add(compact.liveVectors(), ids: compact.liveIDs())
        #expect(Self.recall(try exactAfter.search(queries, k: 10), try compact.search(queries, k: 10)) >= 0.95)
    }
}

/// Saved indexes load back identical; damaged files are refused.
@Suite struct HNSWPersistenceTests {
    @Test func savesAndLoadsAndRefusesDamage() throws {
        var rng = SeededGenerator(seed: 71)
        let dimension = 16
        let index = HNSWIndex(dimension: dimension, metric: .cosine, m: 8, efConstruction: 50, efSearch: 32)
        try index.add(rng.normals(300 * dimension), ids: (0..<300).map { Int64($0) })
        index.remove(7)
        try index.add(rng.normals(dimension), ids: [7])  // a removed id can come back
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-hnsw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("index.kiln").path
        try index.save(to: path)
        let loaded = try HNSWIndex.load(from: path)
        let queries = rng.normals(10 * dimension)
        #expect(try loaded.search(queries, k: 5) == index.search(queries, k: 5))
        #expect(loaded.count == 300)
        // The loaded vectors live in the file's mapping; replacing the file does not disturb them,
        // and adding moves them to memory of the index's own.
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        try index.save(to: path)
        #expect(try loaded.search(queries, k: 5) == index.search(queries, k: 5))
        let more = rng.normals(20 * dimension)
        try loaded.add(more, ids: (1000..<1020).map { Int64($0) })
        try index.add(more, ids: (1000..<1020).map { Int64($0) })
        #expect(loaded.count == 320)
        let after = try loaded.search(Array(more[0..<dimension]), k: 1)[0]
        #expect(after.first?.id == 1000)
        #expect(try loaded.search(queries, k: 5).map { $0.map(\.id) }.count == 10)
        for cut in [0, 7, 20, 100, good.count / 2, good.count - 1] {
            try good.prefix(cut).write(to: URL(fileURLWithPath: path))
            #expect(throws: HNSWIndex.PersistenceError.self) { _ = try HNSWIndex.load(from: path) }
        }
        var flipped = good
        flipped[good.count / 3] ^= 0x40
        try flipped.write(to: URL(fileURLWithPath: path))
        #expect(throws: HNSWIndex.PersistenceError.corrupt("checksum mismatch")) { _ = try HNSWIndex.load(from: path) }
    }
}
