import Foundation
import KilnKernels

/// Approximate nearest-neighbour search on a hierarchical navigable small-world graph
/// (Malkov & Yashunin): each vector joins a random number of layers; searches descend greedily
/// from the top layer and explore `efSearch` candidates on the bottom one. Removal marks a
/// tombstone (the vector keeps routing searches but is never returned).
public final class HNSWIndex: @unchecked Sendable {
    public let dimension: Int
    public let metric: DistanceMetric
    /// Neighbours per node on upper layers (twice as many on layer 0).
    public let m: Int
    public let efConstruction: Int
    /// Candidates explored on layer 0 per query (at least k).
    public var efSearch: Int

    private var vectors: [Float] = []
    private var ids: [Int64] = []
    private var positions: [Int64: Int] = [:]
    private var removed: [Bool] = []
    private var links: [[[Int32]]] = []  // [node][layer] → neighbours
    private var entryPoint = -1
    private var topLayer = -1
    private var random: UInt64
    private var visited: [UInt32] = []
    private var visitStamp: UInt32 = 0

    public init(dimension: Int, metric: DistanceMetric, m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, seed: UInt64 = 1) {
        precondition(dimension > 0 && m >= 2 && efConstruction >= 1 && efSearch >= 1, "HNSWIndex: invalid parameters")
        self.dimension = dimension
        self.metric = metric
        self.m = m
        self.efConstruction = efConstruction
        self.efSearch = efSearch
        random = seed
    }

    /// Live (not removed) vectors.
    public var count: Int { ids.count - removed.lazy.filter { $0 }.count }

    public func add(_ newVectors: [Float], ids newIDs: [Int64]) throws {
        guard newVectors.count == newIDs.count * dimension else {
            throw FlatIndex.Failure.dimensionMismatch(expected: dimension, got: newVectors.count / max(1, newIDs.count))
        }
        for id in newIDs where positions[id] != nil { throw FlatIndex.Failure.duplicateID(id) }
        if let bad = newVectors.firstIndex(where: { !$0.isFinite }) { throw FlatIndex.Failure.invalidVector("value \(bad) is not finite") }
        for (row, id) in newIDs.enumerated() {
            var v = Array(newVectors[(row * dimension)..<((row + 1) * dimension)])
            if metric == .cosine {
                let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                guard norm > 0 else { throw FlatIndex.Failure.invalidVector("a zero vector has no direction (id \(id))") }
                v = v.map { $0 / norm }
            }
            insert(v, id: id)
        }
    }

    @discardableResult
    public func remove(_ id: Int64) -> Bool {
        guard let node = positions.removeValue(forKey: id) else { return false }
        removed[node] = true
        return true
    }

    public func search(_ queries: [Float], k: Int) throws -> [[SearchHit]] {
        guard queries.count % dimension == 0 else { throw FlatIndex.Failure.dimensionMismatch(expected: dimension, got: queries.count) }
        return try (0..<(queries.count / dimension)).map { r in
            var q = Array(queries[(r * dimension)..<((r + 1) * dimension)])
            if metric == .cosine {
                let norm = q.reduce(0) { $0 + $1 * $1 }.squareRoot()
                guard norm > 0 else { throw FlatIndex.Failure.invalidVector("query \(r) is a zero vector") }
                q = q.map { $0 / norm }
            }
            return searchOne(q, k: k)
        }
    }

    /// The stored (normalized for cosine) vectors and ids of live entries, row-major.
    public func liveVectors() -> [Float] {
        ids.indices.filter { !removed[$0] }.flatMap { vectors[($0 * dimension)..<(($0 + 1) * dimension)] }
    }

    public func liveIDs() -> [Int64] { ids.indices.filter { !removed[$0] }.map { ids[$0] } }

    struct Snapshot {
        var vectors: [Float]
        var ids: [Int64]
        var removed: [Bool]
        var links: [[[Int32]]]
        var entryPoint: Int
        var topLayer: Int
    }

    func snapshot() -> Snapshot {
        Snapshot(vectors: vectors, ids: ids, removed: removed, links: links, entryPoint: entryPoint, topLayer: topLayer)
    }

    /// Replaces the whole state with one `load` has validated.
    func restore(_ s: Snapshot) {
        (vectors, ids, removed, links, entryPoint, topLayer) = (s.vectors, s.ids, s.removed, s.links, s.entryPoint, s.topLayer)
        positions = [:]
        for (node, id) in ids.enumerated() where !removed[node] { positions[id] = node }
        visited = [UInt32](repeating: 0, count: ids.count)
    }

    // MARK: graph

    private func score(_ q: [Float], _ node: Int) -> Float {
        q.withUnsafeBufferPointer { qb in
            vectors.withUnsafeBufferPointer { vb in
                let v = UnsafeBufferPointer(rebasing: vb[(node * dimension)..<((node + 1) * dimension)])
                if metric == .l2 {
                    var s: Float = 0
                    for d in 0..<dimension { let t = qb[d] - v[d]; s += t * t }
                    return -s
                }
                return VectorOps.dot(qb, v, count: dimension)
            }
        }
    }

    private func randomLayer() -> Int {
        random &+= 0x9E37_79B9_7F4A_7C15
        var z = random
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        let u = Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
        return min(16, Int(-log(max(u, 1e-12)) / log(Double(m))))
    }

    private func insert(_ v: [Float], id: Int64) {
        let node = ids.count
        let layer = randomLayer()
        vectors += v
        ids.append(id)
        positions[id] = node
        removed.append(false)
        links.append(Array(repeating: [], count: layer + 1))
        visited.append(0)
        guard entryPoint >= 0 else {
            entryPoint = node
            topLayer = layer
            return
        }
        var current = entryPoint
        if topLayer > layer {
            for l in stride(from: topLayer, to: layer, by: -1) { current = greedy(v, from: current, layer: l) }
        }
        var entries = [current]
        for l in stride(from: min(layer, topLayer), through: 0, by: -1) {
            let candidates = searchLayer(v, entries: entries, ef: efConstruction, layer: l)
            let capacity = l == 0 ? 2 * m : m
            let chosen = Array(candidates.prefix(m)).map { Int32($0.node) }
            links[node][l] = chosen
            for neighbour in chosen.map(Int.init) {
                links[neighbour][l].append(Int32(node))
                if links[neighbour][l].count > capacity { prune(neighbour, layer: l, capacity: capacity) }
            }
            entries = candidates.map(\.node)
        }
        if layer > topLayer {
            topLayer = layer
            entryPoint = node
        }
    }

    /// Keeps a node's `capacity` closest neighbours on a layer.
    private func prune(_ node: Int, layer: Int, capacity: Int) {
        let v = Array(vectors[(node * dimension)..<((node + 1) * dimension)])
        let ranked = links[node][layer].map { ($0, score(v, Int($0))) }.sorted { $0.1 > $1.1 }
        links[node][layer] = ranked.prefix(capacity).map(\.0)
    }

    private func greedy(_ q: [Float], from start: Int, layer: Int) -> Int {
        var best = start, bestScore = score(q, start)
        var improved = true
        while improved {
            improved = false
            for n in links[best][layer] {
                let s = score(q, Int(n))
                if s > bestScore { (best, bestScore, improved) = (Int(n), s, true) }
            }
        }
        return best
    }

    struct Candidate { let node: Int; let score: Float }

    /// The `ef` best nodes reachable on `layer` from `entries`, best first.
    private func searchLayer(_ q: [Float], entries: [Int], ef: Int, layer: Int) -> [Candidate] {
        visitStamp &+= 1
        if visitStamp == 0 { visited = [UInt32](repeating: 0, count: visited.count); visitStamp = 1 }
        var frontier: [Candidate] = []   // sorted ascending by score: best at the end
        var found: [Candidate] = []      // sorted descending by score: worst at the end
        for e in entries where visited[e] != visitStamp {
            visited[e] = visitStamp
            let c = Candidate(node: e, score: score(q, e))
            frontier.insertSorted(c) { $0.score < $1.score }
            found.insertSorted(c) { $0.score > $1.score }
        }
        if found.count > ef { found.removeLast(found.count - ef) }
        while let c = frontier.popLast() {
            if found.count >= ef, let worst = found.last, c.score < worst.score { break }
            for n in links[c.node][layer] {
                let node = Int(n)
                if visited[node] == visitStamp { continue }
                visited[node] = visitStamp
                let s = score(q, node)
                if found.count < ef || s > found.last!.score {
                    let candidate = Candidate(node: node, score: s)
                    frontier.insertSorted(candidate) { $0.score < $1.score }
                    found.insertSorted(candidate) { $0.score > $1.score }
                    if found.count > ef { found.removeLast() }
                }
            }
        }
        return found
    }

    private func searchOne(_ q: [Float], k: Int) -> [SearchHit] {
        guard entryPoint >= 0, k > 0 else { return [] }
        var current = entryPoint
        if topLayer > 0 { for l in stride(from: topLayer, to: 0, by: -1) { current = greedy(q, from: current, layer: l) } }
        // Ask for more than k while tombstones are around, so k live results remain.
        let found = searchLayer(q, entries: [current], ef: max(efSearch, k) + (ids.count - count), layer: 0)
        return Array(found.lazy.filter { !self.removed[$0.node] }.prefix(k).map { SearchHit(id: self.ids[$0.node], score: $0.score) })
    }
}

extension Array {
    /// Inserts keeping the array ordered by `areInIncreasingOrder` (binary search).
    mutating func insertSorted(_ element: Element, by areInIncreasingOrder: (Element, Element) -> Bool) {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if areInIncreasingOrder(self[mid], element) { low = mid + 1 } else { high = mid }
        }
        insert(element, at: low)
    }
}
