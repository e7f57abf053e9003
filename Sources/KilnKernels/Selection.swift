extension VectorOps {
    /// Index of the largest of x[0..<count]; the first one on ties. NaN entries never win unless all
    /// entries are NaN (then 0).
    public static func argmax(_ x: UnsafeBufferPointer<Float>, count: Int) -> Int {
        requirePositive(count, "count")
        requireCount(x.count, atLeast: count, "x")
        let p = x.baseAddress!
        let best = maxUnchecked(p, count)
        for i in 0..<count where p[i] == best { return i }
        return 0
    }

    /// The `k` largest entries of x[0..<count], sorted by value descending (smaller index first on
    /// ties), written to indices[0..<k] and values[0..<k]. Returns how many were written:
    /// min(k, number of non-NaN entries).
    @discardableResult
    public static func topK(
        _ x: UnsafeBufferPointer<Float>, count: Int, k: Int,
        indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>
    ) -> Int {
        kernelRequire(k >= 0, "k must be non-negative, got \(k)")
        requireCount(x.count, atLeast: count, "x")
        requireCount(indices.count, atLeast: Swift.min(k, count), "indices")
        requireCount(values.count, atLeast: Swift.min(k, count), "values")
        let limit = Swift.min(k, count)
        guard limit > 0 else { return 0 }
        // A min-heap of the best `size` entries so far in indices/values; the root is the worst.
        let p = x.baseAddress!
        var size = 0
        @inline(__always) func worse(_ a: Int, _ b: Int) -> Bool {  // heap slot a ranks below slot b
            values[a] < values[b] || (values[a] == values[b] && indices[a] > indices[b])
        }
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < size && worse(l, m) { m = l }
                if r < size && worse(r, m) { m = r }
                if m == i { return }
                indices.swapAt(i, m)
                values.swapAt(i, m)
                i = m
            }
        }
        for i in 0..<count {
            let v = p[i]
            if v.isNaN { continue }
            if size < limit {
                var j = size
                indices[j] = Int32(i)
                values[j] = v
                size += 1
                while j > 0 {
                    let parent = (j - 1) / 2
                    guard worse(j, parent) else { break }
                    indices.swapAt(j, parent)
                    values.swapAt(j, parent)
                    j = parent
                }
            } else if v > values[0] {  // equal values keep the earlier (smaller) index
                indices[0] = Int32(i)
                values[0] = v
                siftDown(0)
            }
        }
        // Heap-sort in place: repeatedly move the worst to the end.
        let written = size
        while size > 1 {
            indices.swapAt(0, size - 1)
            values.swapAt(0, size - 1)
            size -= 1
            siftDown(0)
        }
        return written
    }
}
