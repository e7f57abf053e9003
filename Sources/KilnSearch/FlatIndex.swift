import KilnKernels

/// How vectors are compared. Scores are always "higher is closer": cosine similarity, inner
/// product, or the negated squared Euclidean distance.
public enum DistanceMetric: String, Sendable, Codable, CaseIterable {
    case cosine
    case innerProduct = "inner_product"
    case l2
}

/// One search result: the caller's id and the score under the index's metric.
public struct SearchHit: Sendable, Equatable {
    public let id: Int64
    public let score: Float
}

/// Exact nearest-neighbour search: every query is scored against every vector with one
/// OpenBLAS GEMM per batch of queries, then the k best are selected. The baseline the
/// approximate indexes are measured against.
public final class FlatIndex: @unchecked Sendable {
    public let dimension: Int
    public let metric: DistanceMetric
    /// [count][dimension]; unit length when the metric is cosine.
    private(set) var vectors: [Float] = []
    private(set) var norms: [Float] = []  // squared norms, for L2
    public private(set) var ids: [Int64] = []
    private var positions: [Int64: Int] = [:]

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case dimensionMismatch(expected: Int, got: Int)
        case duplicateID(Int64)
        case invalidVector(String)

        public var description: String {
            switch self {
            case .dimensionMismatch(let e, let g): return "vector has \(g) values, the index holds \(e)-dimensional vectors"
            case .duplicateID(let id): return "id \(id) is already in the index"
            case .invalidVector(let why): return "invalid vector: \(why)"
            }
        }
    }

    public init(dimension: Int, metric: DistanceMetric) {
        precondition(dimension > 0, "FlatIndex: dimension must be positive")
        self.dimension = dimension
        self.metric = metric
    }

    public var count: Int { ids.count }

    /// Adds vectors (row-major, `ids.count` × dimension) under the caller's ids.
    public func add(_ newVectors: [Float], ids newIDs: [Int64]) throws {
        guard newVectors.count == newIDs.count * dimension else {
            throw Failure.dimensionMismatch(expected: dimension, got: newIDs.isEmpty ? newVectors.count : newVectors.count / max(1, newIDs.count))
        }
        var seen = Set<Int64>()
        for id in newIDs where positions[id] != nil || !seen.insert(id).inserted { throw Failure.duplicateID(id) }
        if let bad = newVectors.firstIndex(where: { !$0.isFinite }) { throw Failure.invalidVector("value \(bad) is not finite") }
        for (row, id) in newIDs.enumerated() {
            var v = Array(newVectors[(row * dimension)..<((row + 1) * dimension)])
            let squared = v.reduce(0) { $0 + $1 * $1 }
            if metric == .cosine {
                guard squared > 0 else { throw Failure.invalidVector("a zero vector has no direction (id \(id))") }
                let inverse = 1 / squared.squareRoot()
                v = v.map { $0 * inverse }
            }
            positions[id] = ids.count
            ids.append(id)
            vectors += v
            norms.append(metric == .cosine ? 1 : squared)
        }
    }

    /// Removes `id`; returns whether it was present. The last vector moves into its place.
    @discardableResult
    public func remove(_ id: Int64) -> Bool {
        guard let position = positions.removeValue(forKey: id) else { return false }
        let last = ids.count - 1
        if position != last {
            let moved = ids[last]
            ids[position] = moved
            positions[moved] = position
            norms[position] = norms[last]
            for d in 0..<dimension { vectors[position * dimension + d] = vectors[last * dimension + d] }
        }
        ids.removeLast()
        norms.removeLast()
        vectors.removeLast(dimension)
        return true
    }

    /// The k best vectors for each query (row-major, queries × dimension), best first.
    public func search(_ queries: [Float], k: Int) throws -> [[SearchHit]] {
        guard queries.count % dimension == 0 else { throw Failure.dimensionMismatch(expected: dimension, got: queries.count) }
        let queryCount = queries.count / dimension
        guard k > 0, count > 0, queryCount > 0 else { return Array(repeating: [], count: queryCount) }
        var q = queries
        if metric == .cosine {
            for r in 0..<queryCount {
                let row = q[(r * dimension)..<((r + 1) * dimension)]
                let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
                guard norm > 0 else { throw Failure.invalidVector("query \(r) is a zero vector") }
                for d in 0..<dimension { q[r * dimension + d] /= norm }
            }
        }
        // scores[query][vector] = q · v, in blocks of queries to bound memory.
        let block = max(1, min(queryCount, (1 << 22) / max(1, count)))
        var results: [[SearchHit]] = []
        var scores = [Float](repeating: 0, count: block * count)
        var indices = [Int32](repeating: 0, count: min(k, count)), values = [Float](repeating: 0, count: min(k, count))
        for first in stride(from: 0, to: queryCount, by: block) {
            let rows = min(block, queryCount - first)
            q.withUnsafeBufferPointer { qb in
                vectors.withUnsafeBufferPointer { vb in
                    scores.withUnsafeMutableBufferPointer { sb in
                        BLAS.gemm(transposeB: .transposed, m: rows, n: count, k: dimension,
                                  a: UnsafeBufferPointer(rebasing: qb[(first * dimension)...]), lda: dimension,
                                  b: vb, ldb: dimension, c: sb, ldc: count)
                    }
                }
            }
            for r in 0..<rows {
                if metric == .l2 {  // −‖q − v‖² = 2 q·v − ‖v‖² − ‖q‖²
                    let qRow = q[((first + r) * dimension)..<((first + r + 1) * dimension)]
                    let qq = qRow.reduce(0) { $0 + $1 * $1 }
                    for j in 0..<count { scores[r * count + j] = 2 * scores[r * count + j] - norms[j] - qq }
                }
                let n = scores.withUnsafeBufferPointer { sb in
                    indices.withUnsafeMutableBufferPointer { ib in
                        values.withUnsafeMutableBufferPointer { vb in
                            VectorOps.topK(UnsafeBufferPointer(rebasing: sb[(r * count)..<((r + 1) * count)]), count: count,
                                           k: min(k, count), indices: ib, values: vb)
                        }
                    }
                }
                results.append((0..<n).map { SearchHit(id: ids[Int(indices[$0])], score: values[$0]) })
            }
        }
        return results
    }
}
