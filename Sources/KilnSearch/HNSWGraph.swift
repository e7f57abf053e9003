import Foundation
import KilnKernels

#if canImport(Glibc)
import Glibc
#endif

/// The storage and the two walks of an HNSW graph. Vectors and neighbour lists live in flat
/// manually managed buffers (not Swift arrays) because batches are inserted from several threads
/// at once: each node's lists are guarded by that node's mutex, the entry point by a global one,
/// and buffers only grow in `append`, before any thread starts.
///
/// Layer 0 holds 2m neighbours per node, upper layers m: a list is [count, n₀, n₁, …].
final class HNSWGraph: @unchecked Sendable {
    let dimension: Int
    let m: Int
    let squaredL2: Bool
    private(set) var count = 0
    private var capacity = 0
    private(set) var vectors: UnsafeMutablePointer<Float>
    private var base: UnsafeMutablePointer<Int32>       // capacity × (2m + 1)
    private var upper: UnsafeMutablePointer<Int32>      // upperUsed × (m + 1), node's layers 1…level consecutive
    private var upperCapacity = 0, upperUsed = 0
    private var upperOffset: [Int] = []                 // first upper slot of each node, −1 for level 0
    private var locks: UnsafeMutablePointer<pthread_mutex_t>
    private let globalLock: UnsafeMutablePointer<pthread_mutex_t>
    private(set) var ids: [Int64] = []
    private(set) var levels: [UInt8] = []
    var removed: [Bool] = []
    var entryPoint = -1
    var topLayer = -1
    private var spareContexts: [Context] = []
    /// Set while `vectors` points into a loaded index file's mapping (read-only, not ours to free).
    private var mappedVectors: AnyObject?

    init(dimension: Int, m: Int, squaredL2: Bool) {
        self.dimension = dimension
        self.m = m
        self.squaredL2 = squaredL2
        vectors = .allocate(capacity: 1)
        base = .allocate(capacity: 1)
        upper = .allocate(capacity: 1)
        locks = .allocate(capacity: 1)
        globalLock = .allocate(capacity: 1)
        pthread_mutex_init(globalLock, nil)
    }

    deinit {
        for i in 0..<capacity { pthread_mutex_destroy(locks + i) }
        pthread_mutex_destroy(globalLock)
        if mappedVectors == nil { vectors.deallocate() }
        base.deallocate(); upper.deallocate(); locks.deallocate(); globalLock.deallocate()
    }

    var memoryBytes: Int {
        capacity * (dimension * 4 + baseStride * 4 + MemoryLayout<pthread_mutex_t>.stride + 8 + 1 + 1 + 8) + upperCapacity * 4
    }

    var baseStride: Int { 2 * m + 1 }
    var upperStride: Int { m + 1 }

    @inline(__always) func vector(_ node: Int) -> UnsafeMutablePointer<Float> { vectors + node * dimension }

    /// Similarity, larger is closer: the inner product, or −‖a − b‖².
    @inline(__always) func score(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float {
        squaredL2 ? -VectorOps.squaredDistanceUnchecked(a, b, count: dimension) : VectorOps.dotUnchecked(a, b, count: dimension)
    }

    @inline(__always) private func list(_ node: Int, _ layer: Int) -> UnsafeMutablePointer<Int32> {
        layer == 0 ? base + node * baseStride : upper + upperOffset[node] + (layer - 1) * upperStride
    }

    /// Adds nodes without links (single-threaded; `insert` links them).
    func append(_ rows: UnsafePointer<Float>, ids newIDs: [Int64], levels newLevels: [UInt8]) {
        let needed = count + newIDs.count
        if needed > capacity || (mappedVectors != nil && !newIDs.isEmpty) {
            // Vectors always move to memory of our own once the graph grows.
            let grown = needed > capacity ? max(needed, capacity * 2, 64) : capacity
            let v = UnsafeMutablePointer<Float>.allocate(capacity: grown * dimension)
            v.update(from: vectors, count: count * dimension)
            if mappedVectors == nil { vectors.deallocate() }
            mappedVectors = nil
            vectors = v
            reserveLinks(grown)
        }
        (vectors + count * dimension).update(from: rows, count: newIDs.count * dimension)
        addNodes(newIDs, newLevels)
    }

    /// Starts an empty graph on vectors that stay in `owner`'s memory (a mapped index file):
    /// nothing is copied until the graph grows.
    func adopt(_ rows: UnsafePointer<Float>, owner: AnyObject, ids newIDs: [Int64], levels newLevels: [UInt8]) {
        precondition(count == 0, "adopt needs an empty graph")
        reserveLinks(max(newIDs.count, 1))
        if mappedVectors == nil { vectors.deallocate() }
        vectors = UnsafeMutablePointer(mutating: rows)
        mappedVectors = owner
        addNodes(newIDs, newLevels)
    }

    /// Grows the neighbour lists and locks to `grown` nodes (keeping existing lists).
    private func reserveLinks(_ grown: Int) {
        guard grown > capacity else { return }
        let b = UnsafeMutablePointer<Int32>.allocate(capacity: grown * baseStride)
        b.update(from: base, count: count * baseStride)
        base.deallocate(); base = b
        let l = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: grown)
        for i in 0..<grown { pthread_mutex_init(l + i, nil) }
        for i in 0..<capacity { pthread_mutex_destroy(locks + i) }
        locks.deallocate(); locks = l
        capacity = grown
    }

    /// Empty lists, ids and levels for new nodes whose vectors are already in place.
    private func addNodes(_ newIDs: [Int64], _ newLevels: [UInt8]) {
        let upperNeeded = upperUsed + newLevels.reduce(0) { $0 + Int($1) * upperStride }
        if upperNeeded > upperCapacity {
            let grown = max(upperNeeded, upperCapacity * 2, 64)
            let u = UnsafeMutablePointer<Int32>.allocate(capacity: grown)
            u.update(from: upper, count: upperUsed)
            upper.deallocate(); upper = u
            upperCapacity = grown
        }
        for (i, level) in newLevels.enumerated() {
            base[(count + i) * baseStride] = 0
            if level > 0 {
                upperOffset.append(upperUsed)
                for layer in 0..<Int(level) { upper[upperUsed + layer * upperStride] = 0 }
                upperUsed += Int(level) * upperStride
            } else {
                upperOffset.append(-1)
            }
        }
        ids += newIDs
        levels += newLevels
        removed += Array(repeating: false, count: newIDs.count)
        count += newIDs.count
    }

    func neighbours(_ node: Int, layer: Int) -> [Int32] {
        let l = list(node, layer)
        return Array(UnsafeBufferPointer(start: l + 1, count: Int(l[0])))
    }

    func setNeighbours(_ node: Int, layer: Int, _ neighbours: [Int32]) {
        let l = list(node, layer)
        l[0] = Int32(neighbours.count)
        for (i, n) in neighbours.enumerated() { l[1 + i] = n }
    }

    // MARK: search state

    /// Per-thread scratch: visit stamps, the two heaps and a neighbour buffer.
    final class Context {
        var visited: UnsafeMutablePointer<UInt32>
        var visitedCapacity: Int
        var stamp: UInt32 = 0
        var candidates = ScoreHeap()   // best first
        var results = ScoreHeap()      // keyed by −score: worst on top
        let buffer: UnsafeMutablePointer<Int32>

        init(nodes: Int, listCapacity: Int) {
            visitedCapacity = max(nodes, 1)
            visited = .allocate(capacity: visitedCapacity)
            visited.initialize(repeating: 0, count: visitedCapacity)
            buffer = .allocate(capacity: listCapacity)
        }

        deinit {
            visited.deallocate()
            buffer.deallocate()
            candidates.release()
            results.release()
        }

        func nextStamp(nodes: Int) {
            if nodes > visitedCapacity {
                visited.deallocate()
                visitedCapacity = max(nodes, visitedCapacity * 2)
                visited = .allocate(capacity: visitedCapacity)
                visited.initialize(repeating: 0, count: visitedCapacity)
                stamp = 0
            }
            stamp &+= 1
            if stamp == 0 {
                visited.update(repeating: 0, count: visitedCapacity)
                stamp = 1
            }
        }
    }

    func context() -> Context { Context(nodes: count, listCapacity: baseStride) }

    /// A context from the spare list (searches reuse them, so a query allocates nothing).
    func pooledContext() -> Context {
        pthread_mutex_lock(globalLock)
        defer { pthread_mutex_unlock(globalLock) }
        return spareContexts.popLast() ?? context()
    }

    func recycle(_ context: Context) {
        pthread_mutex_lock(globalLock)
        if spareContexts.count < 64 { spareContexts.append(context) }
        pthread_mutex_unlock(globalLock)
    }

    /// Copies a node's list into the context's buffer (under its lock while inserting in parallel).
    @inline(__always) private func read(_ node: Int, _ layer: Int, _ context: Context, _ locking: Bool) -> Int {
        if locking { pthread_mutex_lock(locks + node) }
        let l = list(node, layer)
        let n = Int(l[0])
        context.buffer.update(from: l + 1, count: n)
        if locking { pthread_mutex_unlock(locks + node) }
        return n
    }

    private func greedy(_ q: UnsafePointer<Float>, from start: Int, layer: Int, _ context: Context, _ locking: Bool) -> Int {
        var best = start, bestScore = score(q, vector(start))
        var improved = true
        while improved {
            improved = false
            let n = read(best, layer, context, locking)
            for i in 0..<n {
                let node = Int(context.buffer[i])
                let s = score(q, vector(node))
                if s > bestScore { (best, bestScore, improved) = (node, s, true) }
            }
        }
        return best
    }

    /// Best-first exploration of one layer from `entry`; leaves the ≤ ef best (live only, if
    /// `liveOnly`) in context.results.
    private func searchLayer(_ q: UnsafePointer<Float>, entry: Int, ef: Int, layer: Int, liveOnly: Bool,
                             _ context: Context, _ locking: Bool) {
        context.nextStamp(nodes: count)
        // Locals rather than class properties in the loop: no exclusivity checks per access.
        let stamp = context.stamp, visited = context.visited, buffer = context.buffer
        let vectors = UnsafePointer(self.vectors), dimension = self.dimension, removed = self.removed
        let prefetchCount = min(dimension, 32)
        var candidates = context.candidates, results = context.results
        defer { (context.candidates, context.results) = (candidates, results) }
        candidates.removeAll()
        results.removeAll()
        visited[entry] = stamp
        let s0 = score(q, vectors + entry * dimension)
        candidates.push(s0, Int32(entry))
        var worst = -Float.infinity
        if !liveOnly || !removed[entry] {
            results.push(-s0, Int32(entry))
            worst = s0
        }
        while let top = candidates.top {
            if top.key < worst && results.count >= ef { break }
            candidates.pop()
            let n = read(Int(top.node), layer, context, locking)
            // Fetch the vectors about to be scored while the first ones are computed.
            for i in 0..<n where visited[Int(buffer[i])] != stamp {
                VectorOps.prefetch(vectors + Int(buffer[i]) * dimension, count: prefetchCount)
            }
            for i in 0..<n {
                let next = Int(buffer[i])
                if visited[next] == stamp { continue }
                visited[next] = stamp
                let s = score(q, vectors + next * dimension)
                if results.count < ef || s > worst {
                    candidates.push(s, Int32(next))
                    if !liveOnly || !removed[next] {
                        results.push(-s, Int32(next))
                        if results.count > ef { results.pop() }
                        worst = -results.top!.key
                    }
                }
            }
        }
    }

    /// The results heap as (node, score), best first.
    private func sortedResults(_ context: Context) -> [(node: Int, score: Float)] {
        var out: [(node: Int, score: Float)] = []
        out.reserveCapacity(context.results.count)
        while let top = context.results.top {
            out.append((Int(top.node), -top.key))
            context.results.pop()
        }
        return out.reversed()
    }

    /// The k best live nodes for query q.
    func search(_ q: UnsafePointer<Float>, k: Int, ef: Int, context: Context) -> [(node: Int, score: Float)] {
        guard entryPoint >= 0 else { return [] }
        var current = entryPoint
        if topLayer > 0 { for l in stride(from: topLayer, to: 0, by: -1) { current = greedy(q, from: current, layer: l, context, false) } }
        searchLayer(q, entry: current, ef: ef, layer: 0, liveOnly: true, context, false)
        return Array(sortedResults(context).prefix(k))
    }

    /// The diversity heuristic: walk candidates best first and keep one only if it is closer to
    /// the target than to every candidate kept so far.
    private func selectDiverse(_ candidates: [(node: Int, score: Float)], limit: Int) -> [Int32] {
        var chosen: [Int] = []
        for c in candidates {
            if chosen.count >= limit { break }
            let v = vector(c.node)
            if chosen.allSatisfy({ score(v, vector($0)) <= c.score }) { chosen.append(c.node) }
        }
        return chosen.map { Int32($0) }
    }

    /// Links `node` (already appended) into the graph.
    func insert(_ node: Int, efConstruction: Int, context: Context, locking: Bool) {
        let level = Int(levels[node])
        let q = UnsafePointer(vector(node))
        if locking { pthread_mutex_lock(globalLock) }
        let top = topLayer, entry = entryPoint
        // A node that becomes the new top keeps the global lock for its whole insertion.
        let holdsGlobal = locking && level > top
        if locking && !holdsGlobal { pthread_mutex_unlock(globalLock) }
        defer { if holdsGlobal { pthread_mutex_unlock(globalLock) } }
        guard entry >= 0 else {
            (entryPoint, topLayer) = (node, level)
            return
        }
        var current = entry
        if top > level {
            for l in stride(from: top, to: level, by: -1) { current = greedy(q, from: current, layer: l, context, locking) }
        }
        for l in stride(from: min(level, top), through: 0, by: -1) {
            searchLayer(q, entry: current, ef: efConstruction, layer: l, liveOnly: false, context, locking)
            let candidates = sortedResults(context).filter { $0.node != node }
            guard let closest = candidates.first else { continue }
            let chosen = selectDiverse(candidates, limit: m)
            if locking { pthread_mutex_lock(locks + node) }
            setNeighbours(node, layer: l, chosen)
            if locking { pthread_mutex_unlock(locks + node) }
            let capacity = l == 0 ? 2 * m : m
            for neighbour in chosen.map(Int.init) {
                if locking { pthread_mutex_lock(locks + neighbour) }
                let list = self.list(neighbour, l)
                let n = Int(list[0])
                if n < capacity {
                    list[1 + n] = Int32(node)
                    list[0] = Int32(n + 1)
                } else {
                    // Full: re-choose among the old neighbours and the new node.
                    let v = UnsafePointer(vector(neighbour))
                    var pool = (0..<n).map { i -> (node: Int, score: Float) in
                        let other = Int(list[1 + i])
                        return (other, score(v, vector(other)))
                    }
                    pool.append((node, score(v, q)))
                    pool.sort { $0.score > $1.score }
                    let kept = selectDiverse(pool, limit: capacity)
                    list[0] = Int32(kept.count)
                    for (i, k) in kept.enumerated() { list[1 + i] = k }
                }
                if locking { pthread_mutex_unlock(locks + neighbour) }
            }
            current = closest.node
        }
        if level > top {
            (entryPoint, topLayer) = (node, level)
        }
    }
}

/// A binary max-heap of (key, node) pairs in manually managed storage.
struct ScoreHeap {
    private var keys = UnsafeMutablePointer<Float>.allocate(capacity: 64)
    private var nodes = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
    private var capacity = 64
    private(set) var count = 0

    var top: (key: Float, node: Int32)? { count > 0 ? (keys[0], nodes[0]) : nil }

    mutating func removeAll() { count = 0 }

    mutating func push(_ key: Float, _ node: Int32) {
        if count == capacity {
            let k = UnsafeMutablePointer<Float>.allocate(capacity: capacity * 2)
            let n = UnsafeMutablePointer<Int32>.allocate(capacity: capacity * 2)
            k.update(from: keys, count: count); n.update(from: nodes, count: count)
            keys.deallocate(); nodes.deallocate()
            (keys, nodes, capacity) = (k, n, capacity * 2)
        }
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) / 2
            if keys[parent] >= key { break }
            keys[i] = keys[parent]; nodes[i] = nodes[parent]
            i = parent
        }
        keys[i] = key; nodes[i] = node
    }

    mutating func pop() {
        count -= 1
        guard count > 0 else { return }
        let key = keys[count], node = nodes[count]
        var i = 0
        while true {
            let left = 2 * i + 1
            if left >= count { break }
            let child = left + 1 < count && keys[left + 1] > keys[left] ? left + 1 : left
            if keys[child] <= key { break }
            keys[i] = keys[child]; nodes[i] = nodes[child]
            i = child
        }
        keys[i] = key; nodes[i] = node
    }

    func release() {
        keys.deallocate()
        nodes.deallocate()
    }
}
