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
    /// The k best vectors for each query (row-major), best first: one GEMM per block of queries,
    /// then a top-k per query. With a pool, both run on its threads.
    public func search(_ queries: [Float], k: Int, pool: ThreadPool? = nil) throws -> [[SearchHit]] {
        guard queries.count % dimension == 0 else { throw Failure.dimensionMismatch(expected: dimension, got: queries.count) }
        let queryCount = queries.count / dimension
        guard k > 0, count > 0, queryCount > 0 else { return Array(repeating: [], count: queryCount) }
        var q = queries
        if metric == .cosine, let zero = normalizeRows(&q, dimension: dimension) {
            throw Failure.invalidVector("query \(zero) is a zero vector")
        }
        // Scores are computed against chunks of the corpus that stay in cache, and each query
        // keeps a running top-k, so memory stays bounded and the corpus is read once per block
        // of queries.
        let kk = min(k, count)
        if queryCount == 1 { return [searchOne(q, k: kk, pool: pool)] }
        var results: [[SearchHit]] = []
        let queryBlock = 256
        var scores = [Float](repeating: 0, count: min(queryBlock, queryCount) * Self.chunk)
        for first in stride(from: 0, to: queryCount, by: queryBlock) {
            let rows = min(queryBlock, queryCount - first)
            var best = [RunningTopK](repeating: RunningTopK(k: kk), count: rows)
            for chunkStart in stride(from: 0, to: count, by: Self.chunk) {
                let width = min(Self.chunk, count - chunkStart)
                q.withUnsafeBufferPointer { qb in
                    vectors.withUnsafeBufferPointer { vb in
                        scores.withUnsafeMutableBufferPointer { sb in
                            BLAS.gemm(transposeB: .transposed, m: rows, n: width, k: dimension,
                                      a: UnsafeBufferPointer(rebasing: qb[(first * dimension)...]), lda: dimension,
                                      b: UnsafeBufferPointer(rebasing: vb[(chunkStart * dimension)...]), ldb: dimension,
                                      c: sb, ldc: width, pool: pool)
                        }
                    }
                }
                scores.withUnsafeMutableBufferPointer { sb in
                    best.withUnsafeMutableBufferPointer { tb in
                        let scoreBase = sb.baseAddress!, tops = tb.baseAddress!
                        let offer: (Range<Int>) -> Void = { range in
                            for r in range {
                                let row = scoreBase + r * width
                                if self.metric == .l2 { self.toNegativeSquaredDistance(row, width, from: chunkStart, query: q, row: first + r) }
                                (tops + r).pointee.offer(UnsafeBufferPointer(start: row, count: width), offset: chunkStart)
                            }
                        }
                        if let pool, pool.threadCount > 1, rows > 1 { pool.parallelFor(rows, grain: 8, offer) } else { offer(0..<rows) }
                    }
                }
            }
            results += best.map { $0.sorted().map { SearchHit(id: ids[Int($0.index)], score: $0.score) } }
        }
        return results
    }

    static let chunk = 8192

    /// One query: chunks of the corpus scored by matrix–vector products, spread over the pool's
    /// threads, each with its own running top-k, merged at the end.
    private func searchOne(_ q: [Float], k: Int, pool: ThreadPool?) -> [SearchHit] {
        let chunks = (count + Self.chunk - 1) / Self.chunk
        var partial = [RunningTopK](repeating: RunningTopK(k: k), count: chunks)
        q.withUnsafeBufferPointer { qb in
            vectors.withUnsafeBufferPointer { vb in
                partial.withUnsafeMutableBufferPointer { pb in
                    let tops = pb.baseAddress!
                    let score: (Range<Int>) -> Void = { range in
                        var scores = [Float](repeating: 0, count: Self.chunk)
                        for c in range {
                            let start = c * Self.chunk, width = min(Self.chunk, self.count - start)
                            scores.withUnsafeMutableBufferPointer { sb in
                                BLAS.gemv(rows: width, columns: self.dimension,
                                          a: UnsafeBufferPointer(rebasing: vb[(start * self.dimension)..<((start + width) * self.dimension)]),
                                          lda: self.dimension, x: qb, y: UnsafeMutableBufferPointer(rebasing: sb[0..<width]))
                                if self.metric == .l2 { self.toNegativeSquaredDistance(sb.baseAddress!, width, from: start, query: q, row: 0) }
                                (tops + c).pointee.offer(UnsafeBufferPointer(rebasing: sb[0..<width]), offset: start)
                            }
                        }
                    }
                    if let pool, pool.threadCount > 1, chunks > 1 { pool.parallelFor(chunks, score) } else { score(0..<chunks) }
                }
            }
        }
        var merged = RunningTopK(k: k)
        for part in partial {
            for entry in part.sorted() { merged.offer(entry.score, index: entry.index) }
        }
        return merged.sorted().map { SearchHit(id: ids[Int($0.index)], score: $0.score) }
    }

    /// q·v → −‖q − v‖² = 2 q·v − ‖v‖² − ‖q‖² for a row of scores against vectors from `start`.
    private func toNegativeSquaredDistance(_ row: UnsafeMutablePointer<Float>, _ width: Int, from start: Int, query q: [Float], row r: Int) {
        let qRow = q[(r * dimension)..<((r + 1) * dimension)]
        let qq = qRow.reduce(0) { $0 + $1 * $1 }
        for j in 0..<width { row[j] = 2 * row[j] - norms[start + j] - qq }
    }
}

/// The k best (score, index) pairs seen so far: a min-heap whose root is the current k-th best,
/// so most scores are rejected by one comparison.
struct RunningTopK {
    let k: Int
    private(set) var scores: [Float] = []
    private(set) var indices: [Int32] = []

    init(k: Int) {
        self.k = k
        scores.reserveCapacity(k)
        indices.reserveCapacity(k)
    }

    mutating func offer(_ row: UnsafeBufferPointer<Float>, offset: Int) {
        var i = 0
        while scores.count < k && i < row.count {
            offer(row[i], index: Int32(offset + i))
            i += 1
        }
        guard k > 0 else { return }
        var threshold = scores[0]
        while i < row.count {
            if row[i] > threshold {
                offer(row[i], index: Int32(offset + i))
                threshold = scores[0]
            }
            i += 1
        }
    }

    mutating func offer(_ score: Float, index: Int32) {
        guard k > 0 else { return }
        if scores.count < k {
            scores.append(score)
            indices.append(index)
            var c = scores.count - 1
            while c > 0 {
                let parent = (c - 1) / 2
                guard scores[c] < scores[parent] else { break }
                scores.swapAt(c, parent); indices.swapAt(c, parent)
                c = parent
            }
            return
        }
        guard score > scores[0] else { return }
        scores[0] = score
        indices[0] = index
        var p = 0
        while true {
            let left = 2 * p + 1, right = left + 1
            var smallest = p
            if left < k && scores[left] < scores[smallest] { smallest = left }
            if right < k && scores[right] < scores[smallest] { smallest = right }
            if smallest == p { break }
            scores.swapAt(p, smallest); indices.swapAt(p, smallest)
            p = smallest
        }
    }

    /// Best first; ties by lower index.
    func sorted() -> [(score: Float, index: Int32)] {
        zip(scores, indices).map { ($0, $1) }.sorted { $0.score != $1.score ? $0.score > $1.score : $0.index < $1.index }
    }
}
