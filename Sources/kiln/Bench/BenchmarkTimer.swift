import Foundation
import KilnKernels

/// Median/min/max seconds per call of `body`, over `reps` timed batches each lasting at least
/// `minSeconds` (calls per batch calibrated from one warm-up call).
struct Timing {
    var median: Double
    var min: Double
    var max: Double

    static func measure(reps: Int, minSeconds: Double = 0.02, _ body: () -> Void) -> Timing {
        let start = monotonicSeconds()
        body()  // warm-up: page faults, caches, worker spin-up
        let first = Swift.max(1e-9, monotonicSeconds() - start)
        let calls = Swift.max(1, Int(minSeconds / first))
        var samples: [Double] = []
        for _ in 0..<Swift.max(1, reps) {
            let t0 = monotonicSeconds()
            for _ in 0..<calls { body() }
            samples.append((monotonicSeconds() - t0) / Double(calls))
        }
        samples.sort()
        return Timing(median: samples[samples.count / 2], min: samples.first!, max: samples.last!)
    }

    /// `body` and `baseline` timed back to back in every repetition (in alternating order), for
    /// a ratio that a shared, noisy machine cannot skew: the median over repetitions of
    /// time(baseline) / time(body), beside each one's median time.
    static func measurePaired(reps: Int, minSeconds: Double = 0.02, _ body: () -> Void, baseline: () -> Void)
        -> (body: Timing, baseline: Timing, speedRatio: Double)
    {
        body()
        baseline()
        let start = monotonicSeconds()
        body()
        let calls = Swift.max(1, Int(minSeconds / Swift.max(1e-9, monotonicSeconds() - start)))
        func run(_ f: () -> Void) -> Double {
            let t0 = monotonicSeconds()
            for _ in 0..<calls { f() }
            return (monotonicSeconds() - t0) / Double(calls)
        }
        var bodies: [Double] = [], baselines: [Double] = [], ratios: [Double] = []
        for rep in 0..<Swift.max(1, reps) {
            let (b, a) = rep % 2 == 0 ? (run(body), run(baseline)) : { let a = run(baseline); return (run(body), a) }()
            bodies.append(b)
            baselines.append(a)
            ratios.append(a / b)
        }
        func timing(_ xs: [Double]) -> Timing {
            let s = xs.sorted()
            return Timing(median: s[s.count / 2], min: s.first!, max: s.last!)
        }
        return (timing(bodies), timing(baselines), ratios.sorted()[ratios.count / 2])
    }
}

func monotonicSeconds() -> Double { Double(monotonicNanoseconds()) * 1e-9 }

/// Minimum, median and maximum of repeated measurements (at least one).
struct Stats: Encodable {
    let min: Double, median: Double, max: Double
    init(_ xs: [Double]) {
        let s = xs.sorted()
        (min, median, max) = (s.first!, s[s.count / 2], s.last!)
    }
}

/// A benchmark's --json output: one pretty-printed object with sorted keys.
func printReport<T: Encodable>(_ report: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(report), as: UTF8.self))
}

/// One line of a benchmark report: what ran, how fast, and against what.
struct BenchRow: Codable {
    var group: String
    var kernel: String
    var shape: String
    var threads: Int
    var microseconds: Double
    var throughput: Double
    var unit: String
    /// What the row is compared with ("OpenBLAS sgemm", "memory read bandwidth", "naive", …).
    var baseline: String?
    var baselineThroughput: Double?
    /// throughput / baselineThroughput (for speedups: baseline time / Kiln time).
    var ratio: Double?
}

/// Keeps a result alive so the optimizer cannot drop the work that produced it.
@inline(never) func consume<T>(_ value: T) { withExtendedLifetime(value) {} }

/// Page-aligned memory filled once, for working sets that must not be optimized away. Buffers of
/// 2 MB and more ask for transparent huge pages, so the bandwidth rows and the kernels they are
/// compared with see the same TLB behaviour.
final class AlignedBuffer<Element> {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int
    init(count: Int, fill: (Int) -> Element) {
        self.count = count
        let bytes = max(1, count * MemoryLayout<Element>.stride)
        let huge = 2 << 20
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: bytes >= huge ? huge : 4096)
        if bytes >= huge { madvise(raw, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE) }
        pointer = raw.bindMemory(to: Element.self, capacity: count)
        for i in 0..<count { (pointer + i).initialize(to: fill(i)) }
    }
    deinit { pointer.deallocate() }
    var buffer: UnsafeBufferPointer<Element> { UnsafeBufferPointer(start: pointer, count: count) }
    var mutableBuffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}
