import ArgumentParser
import CKilnBLAS
import CKilnKernels
import Foundation
import KilnKernels

struct KernelBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Benchmark the kernel layer at the models' shapes against OpenBLAS and the memory bandwidth.",
        discussion: """
            Every row is measured in this run: GEMM next to a direct OpenBLAS call at the same shape, \
            the quantized matrix-vector products next to the memory read bandwidth measured here, \
            fused attention next to the materialized (naive) computation. Run on a quiet machine with \
            OPENBLAS_CORETYPE unset, as a user's machine would.
            """
    )

    @Option(help: "Threads for Kiln's pool and OpenBLAS (default: all cores).")
    var threads: Int?

    @Option(help: "Timed repetitions per row; the median is reported.")
    var reps = 5

    @Flag(help: "Fewer, shorter repetitions.")
    var quick = false

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(help: "Run only these groups (comma-separated): memory, threads, quantized, types, gemm, attention, vector, conv.")
    var only: String?

    @Option(name: .customLong("weight-types"), help: "With the types group: only these weight types (comma-separated ggml names, e.g. Q4_K,Q6_K).")
    var weightTypes: String?

    static let groupNames: Set<String> = ["memory", "threads", "quantized", "types", "gemm", "attention", "vector", "conv"]

    func validate() throws {
        if let only {
            for name in only.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
            where !Self.groupNames.contains(name) {
                throw ValidationError("unknown group '\(name)' in --only; groups: \(Self.groupNames.sorted().joined(separator: ", "))")
            }
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        for name in weightTypeNames where !QuantizationType.allCases.contains(where: { $0.description == name }) {
            throw ValidationError("unknown weight type '\(name)' in --weight-types; types: \(QuantizationType.allCases.map(\.description).joined(separator: ", "))")
        }
        if reps < 1 { throw ValidationError("--reps must be at least 1") }
    }

    var weightTypeNames: [String] {
        weightTypes.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() } } ?? []
    }

    func run() throws {
        let threadCount = threads ?? ThreadPool.defaultThreadCount
        var bench = KernelBench(threads: threadCount, reps: quick ? max(1, reps / 2) : reps,
                                minSeconds: quick ? 0.01 : 0.03, quiet: json)
        if let only { bench.groups = Set(only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        if !weightTypeNames.isEmpty { bench.weightTypes = QuantizationType.allCases.filter { weightTypeNames.contains($0.description) } }
        bench.runAll()
        let cpu = CPUDescription.current
        if json {
            let report = KernelBenchReport(
                cpu: cpu.model, openBLASCore: BLAS.coreName,
                openBLASCoreChosenBy: cpu.openBLASOverride == nil ? "OpenBLAS" : (OpenBLASCore.wasSelectedByKiln ? "kiln" : "OPENBLAS_CORETYPE"),
                vnni: QuantizedOps.usesVNNI, threads: threadCount, rows: bench.rows)
            try printReport(report)
        }
    }
}

struct KernelBenchReport: Codable {
    var cpu: String
    var openBLASCore: String
    var openBLASCoreChosenBy: String
    var vnni: Bool
    var threads: Int
    var rows: [BenchRow]
}

/// The measurements of `kiln bench kernels`, printed as they complete.
struct KernelBench {
    let threads: Int
    let reps: Int
    let minSeconds: Double
    let quiet: Bool
    let pool: ThreadPool
    let single: ThreadPool
    var rows: [BenchRow] = []
    var bandwidth: [Int: Double] = [:]  // threads → GB/s
    /// Groups to run; nil runs all. Quantized rows need the memory group's bandwidth and run it too.
    var groups: Set<String>? = nil
    /// Weight types the types group measures.
    var weightTypes = QuantizationType.allCases

    init(threads: Int, reps: Int, minSeconds: Double, quiet: Bool) {
        self.threads = threads
        self.reps = reps
        self.minSeconds = minSeconds
        self.quiet = quiet
        pool = ThreadPool(threadCount: threads)
        single = ThreadPool(threadCount: 1)
        BLAS.setThreadCount(threads)
    }

    mutating func runAll() {
        if !quiet {
            let cpu = CPUDescription.current
            print("kiln bench kernels — \(cpu.model), \(threads) thread(s), OpenBLAS core \(BLAS.coreName)\(cpu.openBLASNote)")
            print("quantized dots: \(QuantizedOps.usesVNNI ? "AVX-512 VNNI" : "portable C"); median of \(reps) reps\n")
            print("group       kernel                          shape                           thr      µs/call   throughput      vs  baseline")
        }
        func wanted(_ group: String) -> Bool { groups?.contains(group) ?? true }
        if wanted("memory") || wanted("quantized") || wanted("types") { memoryBandwidth() }
        if wanted("threads") { threadPoolOverhead() }
        if wanted("quantized") { quantized() }
        if wanted("types") { everyType() }
        if wanted("gemm") { gemm() }
        if wanted("attention") { attention() }
        if wanted("vector") { elementwise() }
        if wanted("conv") { convolution() }
    }

    mutating func add(_ row: BenchRow) {
        rows.append(row)
        guard !quiet else { return }
        let ratio = row.ratio.map { String(format: "%7.2f×", $0) } ?? "        "
        let baseline = row.baseline.map { b in
            "  " + b + (row.baselineThroughput.map { String(format: " (%.1f %@)", $0, row.unit) } ?? "")
        } ?? ""
        print("\(row.group.padded(11)) \(row.kernel.padded(31)) \(row.shape.padded(31)) \(String(row.threads).padded(3, left: true)) "
              + String(format: "%12.2f %9.1f %-5@", row.microseconds, row.throughput, row.unit) + ratio + baseline)
    }

    func time(_ body: () -> Void) -> Timing { Timing.measure(reps: reps, minSeconds: minSeconds, body) }

    /// A transient line on a terminal's stderr while slow set-up runs (nothing when piped or --json).
    func status(_ message: String?) {
        guard !quiet, isatty(STDERR_FILENO) != 0 else { return }
        FileHandle.standardError.write(Data((message.map { "\r\($0)" } ?? "\r\u{1B}[K").utf8))
    }

    // MARK: memory

    /// Bytes a working set needs to stream from DRAM rather than cache: twice the last-level cache
    /// (read from sysfs), at least 256 MB.
    static var dramWorkingSet: Int {
        let text = (try? String(contentsOfFile: "/sys/devices/system/cpu/cpu0/cache/index3/size", encoding: .utf8)) ?? ""
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var bytes = Int(trimmed.dropLast()) ?? 0
        if trimmed.hasSuffix("K") { bytes *= 1 << 10 } else if trimmed.hasSuffix("M") { bytes *= 1 << 20 }
        return max(256 << 20, 2 * bytes)
    }

    /// Streaming read of a working set twice the last-level cache, 1 thread and all threads.
    mutating func memoryBandwidth() {
        let floats = Self.dramWorkingSet / 4
        let data = AlignedBuffer<Float>(count: floats) { _ in 1 }
        for (count, p) in [(1, single), (threads, pool)] where bandwidth[count] == nil {
            let t = time {
                p.parallelFor(floats, grain: floats / count) { range in
                    consume(kiln_stream_sum(data.pointer + range.lowerBound, Int64(range.count)))
                }
            }
            let gbps = Double(floats * 4) / t.median / 1e9
            bandwidth[count] = gbps
            add(BenchRow(group: "memory", kernel: "read bandwidth (stream sum)", shape: "\((floats * 4) >> 20) MB", threads: count,
                         microseconds: t.median * 1e6, throughput: gbps, unit: "GB/s"))
        }
    }

    mutating func threadPoolOverhead() {
        var sink = [Float](repeating: 0, count: 64)
        let t = sink.withUnsafeMutableBufferPointer { buffer -> Timing in
            nonisolated(unsafe) let b = buffer
            return time { pool.parallelFor(threads) { range in for i in range { b[i] += 1 } } }
        }
        add(BenchRow(group: "threads", kernel: "parallelFor dispatch (empty)", shape: "\(threads) tasks", threads: threads,
                     microseconds: t.median * 1e6, throughput: 1 / t.median / 1e6, unit: "M/s"))
    }

    // MARK: quantized

    /// Q4_1/Q8_0 products at SmolLM2's shapes. The "token" rows run every projection of all 30
    /// blocks once (63 MB of Q4_1), as one decoded token does: per block, Q/K/V in one dispatch,
    /// the output projection, gate and up in one dispatch, then down. The "beyond cache" rows
    /// repeat that over copies of the weights until the set is twice the last-level cache.
    mutating func quantized() {
        let hidden = 576, ffn = 1536, kv = 192, layers = 30, vocabulary = 49152
        // Per block: groups of (rows, columns) that share their input.
        let groups = [[(hidden, hidden), (kv, hidden), (kv, hidden)], [(hidden, hidden)], [(ffn, hidden), (ffn, hidden)], [(hidden, ffn)]]
        var oneToken = 0
        for _ in 0..<layers {
            for group in groups { for (rows, columns) in group { oneToken += rows * QuantizationType.q4_1.rowBytes(columns: columns) } }
        }
        let copies = max(1, (Self.dramWorkingSet + oneToken - 1) / oneToken)
        status("preparing \((oneToken * copies) >> 20) MB of Q4_1 weights…")
        let weights = Self.randomBlocks(.q4_1, bytes: oneToken, copies: copies)
        status(nil)
        let x576 = QuantizedActivations(columns: hidden), x1536 = QuantizedActivations(columns: ffn)
        var rng = SystemRandomNumberGenerator()
        let inputs = (0..<ffn).map { _ in Float.random(in: -1...1, using: &rng) }
        inputs.withUnsafeBufferPointer { x576.quantize(UnsafeBufferPointer(rebasing: $0[0..<hidden])); x1536.quantize($0) }
        let outputs = AlignedBuffer<Float>(count: 3 * ffn) { _ in 0 }
        // Every dispatch of every copy, built once: (matrices, input).
        var dispatches: [([QuantizedMatrix], QuantizedActivations)] = []
        var offset = 0
        for _ in 0..<(layers * copies) {
            for group in groups {
                var matrices: [QuantizedMatrix] = []
                var outputOffset = 0
                for (rows, columns) in group {
                    let bytes = rows * QuantizationType.q4_1.rowBytes(columns: columns)
                    matrices.append(QuantizedMatrix(
                        type: .q4_1, weights: UnsafeRawBufferPointer(start: weights.pointer + offset, count: bytes), rows: rows,
                        output: UnsafeMutableBufferPointer(rebasing: outputs.mutableBuffer[outputOffset..<(outputOffset + rows)])))
                    offset += bytes
                    outputOffset += rows
                }
                dispatches.append((matrices, group[0].1 == hidden ? x576 : x1536))
            }
        }
        let perToken = layers * groups.count
        for (count, p) in [(1, single), (threads, pool)] {
            for repeats in [1, copies] {
                let t = time {
                    for (matrices, input) in dispatches.prefix(perToken * repeats) {
                        QuantizedOps.matmul(group: matrices, activations: input, pool: p)
                    }
                }
                let bytes = oneToken * repeats
                let gbps = Double(bytes) / t.median / 1e9
                let name = repeats == 1 ? "Q4_1 matvec, one token" : "Q4_1 matvec, beyond cache"
                add(BenchRow(group: "quantized", kernel: name, shape: "\(repeats * 210) SmolLM2 matrices, \(bytes >> 20) MB",
                             threads: count, microseconds: t.median * 1e6, throughput: gbps, unit: "GB/s",
                             baseline: "read bandwidth", baselineThroughput: bandwidth[count], ratio: bandwidth[count].map { gbps / $0 }))
            }
        }
        var output = [Float](repeating: 0, count: max(vocabulary, 128 * ffn))
        let raw = UnsafeRawBufferPointer(start: weights.pointer, count: oneToken)
        // Single matrices, resident in cache, and the Q8_0 output head (28 MB).
        let head = Self.randomBlocks(.q8_0, bytes: vocabulary * QuantizationType.q8_0.rowBytes(columns: hidden))
        let cases: [(String, QuantizationType, Int, Int, UnsafeRawBufferPointer)] = [
            ("Q4_1 matvec (attn q/o)", .q4_1, hidden, hidden, raw),
            ("Q4_1 matvec (ffn gate/up)", .q4_1, ffn, hidden, raw),
            ("Q4_1 matvec (ffn down)", .q4_1, hidden, ffn, raw),
            ("Q8_0 matvec (output head)", .q8_0, vocabulary, hidden, UnsafeRawBufferPointer(start: head.pointer, count: head.count)),
        ]
        for (name, type, rows, columns, w) in cases {
            let bytes = rows * type.rowBytes(columns: columns)
            let t = output.withUnsafeMutableBufferPointer { out in
                time { QuantizedOps.matmul(type, weights: w, rows: rows, activations: columns == hidden ? x576 : x1536, output: out, pool: pool) }
            }
            let gbps = Double(bytes) / t.median / 1e9
            add(BenchRow(group: "quantized", kernel: name, shape: "\(rows)×\(columns), \(bytes / 1000) kB", threads: threads,
                         microseconds: t.median * 1e6, throughput: gbps, unit: "GB/s",
                         baseline: "read bandwidth", baselineThroughput: bandwidth[threads], ratio: bandwidth[threads].map { gbps / $0 }))
        }
        // Prefill: 128 tokens through one FFN matrix, against f32 sgemm at the same shape.
        let tokens = 128
        let batch = QuantizedActivations(columns: hidden, rows: tokens)
        let activations = (0..<(tokens * hidden)).map { _ in Float.random(in: -1...1, using: &rng) }
        activations.withUnsafeBufferPointer { batch.quantize($0, rows: tokens) }
        let tq = output.withUnsafeMutableBufferPointer { out in
            time { QuantizedOps.matmul(.q4_1, weights: raw, rows: ffn, activations: batch, output: out, pool: pool) }
        }
        let sgemm = directSgemm(m: tokens, n: ffn, k: hidden)
        let gops = 2.0 * Double(tokens * ffn * hidden) / tq.median / 1e9
        add(BenchRow(group: "quantized", kernel: "Q4_1 batched (prefill)", shape: "\(tokens) tok × \(ffn)×\(hidden)", threads: threads,
                     microseconds: tq.median * 1e6, throughput: gops, unit: "GOP/s",
                     baseline: "OpenBLAS sgemm f32", baselineThroughput: sgemm, ratio: gops / sgemm))
    }

    /// Every weight type Kiln multiplies by: the matrix-vector product over a working set beyond
    /// the last-level cache (4096-wide rows, the one-token decode case) against a stream read of
    /// as many bytes timed in the same repetitions (the ratio is the median per repetition),
    /// and 64 tokens through a 2048×4096 matrix against the integer dot-product peak (vpdpbusd,
    /// measured here on the same threads). Weights are Kiln-quantized random values, so every
    /// block is one a real file could hold.
    mutating func everyType() {
        let columns = 4096, tileRows = 256
        var rng = SystemRandomNumberGenerator()
        let source = (0..<(tileRows * columns)).map { _ in Float.random(in: -0.05...0.05, using: &rng) }
        let x = (0..<(64 * columns)).map { _ in Float.random(in: -1...1, using: &rng) }
        let peak = integerPeak()
        let stream = AlignedBuffer<Float>(count: (Self.dramWorkingSet + (1 << 20)) / 4) { _ in 1 }
        for type in weightTypes {
            let tileBytes = tileRows * type.rowBytes(columns: columns)
            let copies = max(1, (Self.dramWorkingSet + tileBytes - 1) / tileBytes)
            let rows = tileRows * copies
            status("preparing \((tileBytes * copies) >> 20) MB of \(type) weights…")
            let weights = AlignedBuffer<UInt8>(count: tileBytes * copies) { _ in 0 }
            source.withUnsafeBufferPointer { src in
                _ = QuantizedOps.encode(ggmlType: UInt32(type.rawValue), rows: tileRows, columns: columns, from: src,
                                        into: UnsafeMutableRawBufferPointer(start: weights.pointer, count: tileBytes), pool: pool)
            }
            for copy in 1..<max(1, copies) { (weights.pointer + copy * tileBytes).update(from: weights.pointer, count: tileBytes) }
            status(nil)
            let one = QuantizedActivations(columns: columns, rows: 1, types: [type])
            x.withUnsafeBufferPointer { one.quantize(UnsafeBufferPointer(rebasing: $0[0..<columns])) }
            let out = AlignedBuffer<Float>(count: max(rows, 64 * 2048)) { _ in 0 }
            let w = UnsafeRawBufferPointer(start: weights.pointer, count: tileBytes * copies)
            // The stream read of as many bytes runs in the same repetitions: its ratio is immune to
            // the machine's bandwidth drifting between rows.
            let floats = tileBytes * copies / 4
            let paired = Timing.measurePaired(reps: reps, minSeconds: minSeconds) {
                QuantizedOps.matmul(type, weights: w, rows: rows, activations: one, output: out.mutableBuffer, pool: pool)
            } baseline: {
                pool.parallelFor(floats, grain: (floats + threads - 1) / threads) { range in
                    consume(kiln_stream_sum(stream.pointer + range.lowerBound, Int64(range.count)))
                }
            }
            let gbps = Double(tileBytes * copies) / paired.body.median / 1e9
            add(BenchRow(group: "types", kernel: "\(type) matvec, beyond cache", shape: "\(rows)×\(columns), \((tileBytes * copies) >> 20) MB",
                         threads: threads, microseconds: paired.body.median * 1e6, throughput: gbps, unit: "GB/s",
                         baseline: "read bandwidth", baselineThroughput: Double(floats * 4) / paired.baseline.median / 1e9,
                         ratio: paired.speedRatio))
            let tokens = 64, batchRows = 2048
            let batch = QuantizedActivations(columns: columns, rows: tokens, types: [type])
            x.withUnsafeBufferPointer { batch.quantize($0, rows: tokens) }
            let bw = UnsafeRawBufferPointer(start: weights.pointer, count: batchRows * type.rowBytes(columns: columns))
            let tb = time { QuantizedOps.matmul(type, weights: bw, rows: batchRows, activations: batch, output: out.mutableBuffer, pool: pool) }
            let gops = 2.0 * Double(tokens * batchRows * columns) / tb.median / 1e9
            add(BenchRow(group: "types", kernel: "\(type) batched (prefill)", shape: "\(tokens) tok × \(batchRows)×\(columns)",
                         threads: threads, microseconds: tb.median * 1e6, throughput: gops, unit: "GOP/s",
                         baseline: peak > 0 ? "int8 dot peak" : nil, baselineThroughput: peak > 0 ? peak : nil, ratio: peak > 0 ? gops / peak : nil))
        }
    }

    /// GOP/s of back-to-back vpdpbusd on every thread (0 without VNNI).
    func integerPeak() -> Double {
        let iterations: Int64 = 2_000_000
        guard QuantizedOps.usesVNNI else { return 0 }
        let t = time {
            pool.parallelFor(threads) { range in
                for _ in range { consume(kiln_int8_dot_peak_probe(iterations)) }
            }
        }
        return Double(iterations) * 8 * 64 * 2 * Double(threads) / t.median / 1e9
    }

    /// Valid blocks (scale 0.01, random payload), `copies` identical copies back to back.
    static func randomBlocks(_ type: QuantizationType, bytes: Int, copies: Int = 1) -> AlignedBuffer<UInt8> {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let blockBytes = type.blockBytes
        let half = QuantizedOps.halfBits(0.01)
        let buffer = AlignedBuffer<UInt8>(count: bytes * copies) { i in
            guard i < bytes else { return 0 }
            let offset = i % blockBytes
            if offset < 2 || (type == .q4_1 && offset < 4) { return UInt8(truncatingIfNeeded: half >> (8 * (offset % 2))) }
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        for copy in 1..<max(1, copies) { (buffer.pointer + copy * bytes).update(from: buffer.pointer, count: bytes) }
        return buffer
    }

    // MARK: GEMM

    /// OpenBLAS sgemm GFLOP/s called directly (C = A·B, row-major) with OpenBLAS's own threads
    /// (as many as the benchmark's), the yardstick for Kiln's wrapper, which keeps OpenBLAS
    /// single-threaded and splits the product over Kiln's pool.
    func directSgemm(m: Int, n: Int, k: Int, transposeB: Bool = false) -> Double {
        openblas_set_num_threads(Int32(threads))
        defer { openblas_set_num_threads(1) }
        let a = AlignedBuffer<Float>(count: m * k) { Float($0 % 7) * 0.1 }
        let b = AlignedBuffer<Float>(count: k * n) { Float($0 % 5) * 0.1 }
        let c = AlignedBuffer<Float>(count: m * n) { _ in 0 }
        let t = time {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                        a.pointer, Int32(k), b.pointer, Int32(transposeB ? k : n), 0, c.pointer, Int32(n))
        }
        return 2.0 * Double(m * n * k) / t.median / 1e9
    }

    mutating func gemm() {
        let shapes: [(String, Int, Int, Int, Bool)] = [
            ("SmolLM2 decode q", 1, 576, 576, true), ("SmolLM2 prefill ffn", 128, 1536, 576, true),
            ("SmolLM2 prefill attn", 128, 576, 576, true), ("MiniLM ffn", 256, 1536, 384, true),
            ("MiniLM attn proj", 256, 384, 384, true), ("square", 512, 512, 512, false),
        ]
        for (name, m, n, k, transposeB) in shapes {
            let a = AlignedBuffer<Float>(count: m * k) { Float($0 % 7) * 0.1 }
            let b = AlignedBuffer<Float>(count: k * n) { Float($0 % 5) * 0.1 }
            let c = AlignedBuffer<Float>(count: m * n) { _ in 0 }
            let direct = directSgemm(m: m, n: n, k: k, transposeB: transposeB)
            let t = time {
                BLAS.gemm(transposeB: transposeB ? .transposed : .none, m: m, n: n, k: k, a: a.buffer, lda: k,
                          b: b.buffer, ldb: transposeB ? k : n, c: c.mutableBuffer, ldc: n, pool: pool)
            }
            let gflops = 2.0 * Double(m * n * k) / t.median / 1e9
            add(BenchRow(group: "gemm", kernel: "f32 gemm \(transposeB ? "NT" : "NN") (\(name))", shape: "\(m)×\(n)×\(k)", threads: threads,
                         microseconds: t.median * 1e6, throughput: gflops, unit: "GFLOP/s",
                         baseline: "OpenBLAS sgemm, its own threads", baselineThroughput: direct, ratio: gflops / direct))
        }
        let a = AlignedBuffer<Float>(count: 1536 * 576) { Float($0 % 7) * 0.1 }
        let x = AlignedBuffer<Float>(count: 576) { _ in 0.5 }
        let y = AlignedBuffer<Float>(count: 1536) { _ in 0 }
        let t = time { BLAS.gemv(rows: 1536, columns: 576, a: a.buffer, lda: 576, x: x.buffer, y: y.mutableBuffer) }
        let gbps = Double(1536 * 576 * 4) / t.median / 1e9
        add(BenchRow(group: "gemm", kernel: "f32 gemv", shape: "1536×576", threads: threads, microseconds: t.median * 1e6,
                     throughput: gbps, unit: "GB/s"))
    }
}

extension String {
    func padded(_ width: Int, left: Bool = false) -> String {
        count >= width ? self : (left ? String(repeating: " ", count: width - count) + self : self + String(repeating: " ", count: width - count))
    }
}
