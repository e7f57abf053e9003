import KilnSearch
import KilnTestSupport
import Testing

/// HNSW recall against the exact index on clustered random data, and tombstones.
@Suite struct HNSWIndexTests {
    @Test(arguments: DistanceMetric.allCases) func recallAgainstExactSearch(metric: DistanceMetric) throws {
        var rng = SeededGenerator(seed: 61)
        let dimension = 24, count = 2000
        let centers = (0..<20).map { _ in rng.normals(dimension, scale: 3) }
        let vectors = (0..<count).flatMap { i in zip(centers[i % 20], rng.normals(dimension)).map { $0 + $1 } }
        let ids = (0..<count).map { Int64($0) }
        let exact = FlatIndex(dimension: dimension, metric: metric)
        // Inner product is not a metric, so greedy routing needs a wider search for the same recall.
        let graph = HNSWIndex(dimension: dimension, metric: metric, m: 12, efConstruction: 100,
                              efSearch: metric == .innerProduct ? 192 : 64)
        try exact.add(vectors, ids: ids)
        try graph.add(vectors, ids: ids)
        let queries = (0..<50).flatMap { i in zip(centers[i % 20], rng.normals(dimension)).map { $0 + $1 } }
        let truth = try exact.search(queries, k: 10), approximate = try graph.search(queries, k: 10)
        let hits = zip(truth, approximate).map { t, a in Set(t.map(\.id)).intersection(a.map(\.id)).count }.reduce(0, +)
        let recall = Double(hits) / Double(50 * 10)
        // Inner product keeps a lower bar until neighbour selection uses the diversity heuristic.
        #expect(recall >= (metric == .innerProduct ? 0.9 : 0.95), "recall@10 = \(recall)")
        // Removed vectors never come back, and k live results still do.
        let gone = truth[0].map(\.id)
        for id in gone { #expect(graph.remove(id)) }
        let after = try graph.search(Array(queries[0..<dimension]), k: 10)[0]
        #expect(after.count == 10 && Set(after.map(\.id)).isDisjoint(with: gone))
    }
}
