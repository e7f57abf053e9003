/// The merge loop both BPE flavours run, as llama.cpp runs them: symbols in a doubly linked
/// list (byte ranges of one word, adjacent symbols adjacent in the text) and a heap of
/// candidate pairs, best first and leftmost on ties; a pair made stale by an earlier merge is
/// skipped when it surfaces.
enum PairMerge {
    /// Merges in place and returns the surviving symbols in order (their lengths updated).
    /// `score(start, length, leftLength)` scores the pair whose text starts at `start` with
    /// `length` bytes, the left symbol's `leftLength` of them; nil when the pair does not merge.
    static func run(start: [Int], length: inout [Int], score: (Int, Int, Int) -> Double?) -> [Int] {
        let n = start.count
        guard n > 1 else { return Array(0..<n) }
        var previous = Array(-1..<(n - 1))
        var next = Array(1...n)
        next[n - 1] = -1
        var alive = [Bool](repeating: true, count: n)
        var heap = PairHeap()
        func consider(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let total = length[left] + length[right]
            guard let value = score(start[left], total, length[left]) else { return }
            heap.push(Pair(score: value, left: left, right: right, length: total))
        }
        for i in 0..<(n - 1) { consider(i, i + 1) }
        while let pair = heap.pop() {
            guard alive[pair.left], alive[pair.right], next[pair.left] == pair.right,
                  length[pair.left] + length[pair.right] == pair.length else { continue }
            length[pair.left] = pair.length
            alive[pair.right] = false
            next[pair.left] = next[pair.right]
            if next[pair.left] >= 0 { previous[next[pair.left]] = pair.left }
            consider(previous[pair.left], pair.left)
            consider(pair.left, next[pair.left])
        }
        var survivors: [Int] = []
        var i = 0
        while i >= 0 {
            survivors.append(i)
            i = next[i]
        }
        return survivors
    }
}

struct Pair {
    let score: Double
    let left: Int
    let right: Int
    let length: Int

    /// Higher score first, then the leftmost.
    func outranks(_ other: Pair) -> Bool { score > other.score || (score == other.score && left < other.left) }
}

/// A binary max-heap of candidate merges.
struct PairHeap {
    private var items: [Pair] = []

    mutating func push(_ pair: Pair) {
        items.append(pair)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].outranks(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Pair? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < items.count && items[l].outranks(items[best]) { best = l }
                if r < items.count && items[r].outranks(items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}

