import KilnSearch
import KilnTestSupport
import Testing

/// The exact index against a Double brute force for every metric, with removal.
@Suite struct FlatIndexTests {
    func bruteForce(_ vectors: [[Float]], _ ids: [Int64], _ query: [Float], _ metric: DistanceMetric, k: Int) -> [Int64] {
        func norm(_ v: [Float]) -> Double { v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        let scored = zip(vectors, ids).map { v, id -> (Int64, Double) in
            let dot = zip(v, query).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            switch metric {
            case .innerProduct: return (id, dot)
            case .cosine: return (id, dot / (norm(v) * norm(query)))
            case .l2: return (id, -zip(v, query).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) })
            }
        }
        return scored.sorted { $0.1 > $1.1 }.prefix(k).map { $0.0 }
    }

    @Test(arguments: DistanceMetric.allCases) func matchesBruteForce(metric: DistanceMetric) throws {
        var rng = SeededGenerator(seed: 51)
        let dimension = 37
        var vectors = (0..<300).map { _ in rng.normals(dimension) }
        var ids = (0..<300).map { Int64($0 * 3 + 1) }
        let index = FlatIndex(dimension: dimension, metric: metric)
        try index.add(vectors.flatMap { $0 }, ids: ids)
        for victim in [Int64(1), 301, 898] {  // first, middle, last
            #expect(index.remove(victim))
            let at = ids.firstIndex(of: victim)!
            ids.remove(at: at)
            vectors.remove(at: at)
        }
        #expect(!index.remove(1) && index.count == 297)
        let queries = (0..<9).map { _ in rng.normals(dimension) }
        let results = try index.search(queries.flatMap { $0 }, k: 10)
        for (query, hits) in zip(queries, results) {
            #expect(hits.map(\.id) == bruteForce(vectors, ids, query, metric, k: 10))
            #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.score >= $1.score })
        }
    }

    @Test func refusesBadInput() throws {
        let index = FlatIndex(dimension: 4, metric: .cosine)
        #expect(throws: FlatIndex.Failure.self) { try index.add([1, 2, 3], ids: [1]) }
        #expect(throws: FlatIndex.Failure.invalidVector("a zero vector has no direction (id 2)")) { try index.add([0, 0, 0, 0], ids: [2]) }
        #expect(throws: FlatIndex.Failure.duplicateID(3)) { try index.add([1, 0, 0, 0, 0, 1, 0, 0], ids: [3, 3]) }
        #expect(throws: FlatIndex.Failure.self) { try index.add([.nan, 0, 0, 0], ids: [4]) }
        #expect(try index.search([1, 0, 0, 0], k: 5) == [[]])
    }
}
