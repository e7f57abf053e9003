import KilnKernels

/// Elementwise work over the shared pool: below `threshold` elements one thread does it all
/// (a dispatch costs more than it saves), above it the range is cut into a few chunks per thread.
/// `body` gets the chunk's index (0..<chunkCount(n)) and its range.
@inline(__always)
func forEachChunk(_ count: Int, threshold: Int = 1 << 15, _ body: (Int, Range<Int>) -> Void) {
    let chunks = chunkCount(count, threshold: threshold)
    guard chunks > 1 else {
        if count > 0 { body(0, 0..<count) }
        return
    }
    let size = (count + chunks - 1) / chunks
    ThreadPool.shared.parallelFor(chunks) { indices in
        for c in indices { body(c, (c * size)..<min(count, (c + 1) * size)) }
    }
}

/// How many chunks `forEachChunk` cuts `count` elements into.
func chunkCount(_ count: Int, threshold: Int = 1 << 15) -> Int {
    let threads = ThreadPool.shared.threadCount
    guard count >= threshold, threads > 1 else { return 1 }
    return min(4 * threads, max(1, count / (threshold / 4)))
}
