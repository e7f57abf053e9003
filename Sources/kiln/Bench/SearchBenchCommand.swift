import ArgumentParser
import Foundation
import KilnFormats
import KilnKernels
import KilnSearch

/// `kiln bench search`: exact and HNSW search over stored embeddings — build time, memory,
/// queries/s against recall@10 for several efSearch values — with the same vectors and queries
/// that scripts/bench-search gives hnswlib and FAISS.
struct SearchBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Benchmark vector search: HNSW build, queries/s and recall@10 per efSearch, exact search.",
        discussion: """
            Vectors come from safetensors files written by `kiln embed --out` (tensor "embeddings"). \
            Queries: the --queries vectors plus --random-queries corpus vectors (their own row is \
            excluded from their results). Recall@10 is against exact inner-product search; with \
            --labels (JSON lines with relevant_id = row of the relevant corpus vector, in --queries \
            order) also against the labelled answers. Single-query rates run on one thread, one query \
            at a time; batch rates on --threads.
            """
    )

    @Option(help: "Corpus embeddings (safetensors, tensor \"embeddings\").") var vectors: String
    @Option(help: "Query embeddings (safetensors).") var queries: String?
    @Option(help: "JSON lines with relevant_id per query of --queries.") var labels: String?
    @Option(help: "Corpus vectors also used as queries.") var randomQueries = 10_000
    @Option(help: "HNSW neighbours per node.") var m = 16
    @Option(help: "HNSW candidates while building.") var efConstruction = 200
    @Option(help: "efSearch values, comma-separated.") var ef = "16,32,64,128,256"
    @Option(help: "Threads for building and batch search (default: all cores).") var threads: Int?
    @Option(help: "Repetitions of each timing; medians are reported.") var reps = 3
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard m >= 2, efConstruction >= 1, randomQueries >= 0, reps > 0 else { throw ValidationError("sizes must be positive") }
        guard efValues.count > 0 else { throw ValidationError("--ef needs at least one positive value") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    var efValues: [Int] { ef.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 } }

    static func embeddings(_ path: String) throws -> (rows: Int, dimension: Int, values: [Float]) {
        do {
            let file = try SafetensorsFile(path: path)
            guard let t = file.tensor(named: "embeddings"), t.dtype == .f32, t.shape.count == 2 else {
                throw CLIError("\(path) has no F32 tensor \"embeddings\" of shape [rows, dimension]")
            }
            let values = Array(file.data(of: t).bindMemory(to: Float.self))
            return (t.shape[0], t.shape[1], values)
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(path): \(error)")
        }
    }

    struct EfRow: Encodable {
        let ef: Int
        let recallAt10: Double
        let labelledRecallAt10: Double?
        let singleQueriesPerSecond: Double
        let batchQueriesPerSecond: Double
    }

    struct Report: Encodable {
        let threads: Int
        let openBLASCore: String
        let vectors: Int
        let dimension: Int
        let queries: Int
        let labelledQueries: Int
        let m: Int
        let efConstruction: Int
        let buildSeconds: Double
        let graphMegabytes: Double
        let exactSingleQueriesPerSecond: Double
        let exactBatchQueriesPerSecond: Double
        let exactLabelledRecallAt10: Double?
        let hnsw: [EfRow]
        let peakRSSMegabytes: Double
    }

    func run() throws {
        let threadCount = threads ?? ThreadPool.defaultThreadCount
        let pool = ThreadPool(threadCount: threadCount)
        let corpus = try Self.embeddings(vectors)
        let d = corpus.dimension
        var queryVectors: [Float] = []
        var labelled = 0
        if let queries {
            let q = try Self.embeddings(queries)
            guard q.dimension == d else { throw CLIError("\(queries) holds \(q.dimension)-dimensional vectors, the corpus \(d)") }
            queryVectors = q.values
            labelled = q.rows
        }
        var relevant: [Int64] = []
        if let labels {
            guard let text = String(validating: [UInt8](try readFile(labels)), as: UTF8.self) else { throw CLIError("\(labels) is not valid UTF-8") }
            for line in text.split(separator: "\n") {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let id = (object["relevant_id"] as? NSNumber)?.int64Value else { throw CLIError("\(labels): a line without relevant_id") }
                relevant.append(id)
            }
            guard relevant.count == labelled else { throw CLIError("\(labels) has \(relevant.count) labels for \(labelled) queries") }
        }
        // Random corpus rows as extra queries (seeded, so every run and the peers use the same).
        var generator = SplitMix(seed: 42)
        let randomRows = (0..<min(randomQueries, corpus.rows)).map { _ in Int(generator.next() % UInt64(corpus.rows)) }
        for row in randomRows { queryVectors += corpus.values[(row * d)..<((row + 1) * d)] }
        let queryCount = labelled + randomRows.count
        let ids = (0..<corpus.rows).map { Int64($0) }
        let k = 10

        // Ground truth: exact top-10 (k + 1 for corpus rows, minus the row itself).
        let flat = FlatIndex(dimension: d, metric: .innerProduct)
        try flat.add(corpus.values, ids: ids)
        func dropSelf(_ lists: [[SearchHit]]) -> [[SearchHit]] {
            lists.enumerated().map { i, hits in
                i < labelled ? Array(hits.prefix(k)) : Array(hits.filter { $0.id != Int64(randomRows[i - labelled]) }.prefix(k))
            }
        }
        var exactBatch: [Double] = []
        var truth: [[SearchHit]] = []
        for _ in 0..<reps {
            let t0 = monotonicSeconds()
            truth = dropSelf(try flat.search(queryVectors, k: k + 1, pool: pool))
            exactBatch.append(Double(queryCount) / (monotonicSeconds() - t0))
        }
        let singleSample = min(queryCount, 300)
        let t1 = monotonicSeconds()
        for i in 0..<singleSample { _ = try flat.search(Array(queryVectors[(i * d)..<((i + 1) * d)]), k: k + 1) }
        let exactSingle = Double(singleSample) / (monotonicSeconds() - t1)
        func recall(_ found: [[SearchHit]]) -> Double {
            let hits = zip(truth, found).map { t, f in Set(t.map(\.id)).intersection(f.map(\.id)).count }.reduce(0, +)
            return Double(hits) / Double(truth.reduce(0) { $0 + $1.count })
        }
        func labelledRecall(_ found: [[SearchHit]]) -> Double? {
            guard !relevant.isEmpty else { return nil }
            let hits = (0..<labelled).filter { q in found[q].prefix(k).contains { $0.id == relevant[q] } }.count
            return Double(hits) / Double(labelled)
        }

        let graph = HNSWIndex(dimension: d, metric: .innerProduct, m: m, efConstruction: efConstruction)
        let progress = ProgressBar(total: 1, label: "building HNSW", quiet: json)
        progress.update(0)
        let t2 = monotonicSeconds()
        try graph.add(corpus.values, ids: ids, pool: pool)
        let buildSeconds = monotonicSeconds() - t2
        progress.finish()

        var rows: [EfRow] = []
        for efSearch in efValues {
            graph.efSearch = efSearch
            var single: [Double] = [], batch: [Double] = []
            var found: [[SearchHit]] = []
            for _ in 0..<reps {
                let t0 = monotonicSeconds()
                found = []
                for i in 0..<queryCount { found += try graph.search(Array(queryVectors[(i * d)..<((i + 1) * d)]), k: k + 1) }
                single.append(Double(queryCount) / (monotonicSeconds() - t0))
                let t3 = monotonicSeconds()
                _ = try graph.search(queryVectors, k: k + 1, pool: pool)
                batch.append(Double(queryCount) / (monotonicSeconds() - t3))
            }
            let answers = dropSelf(found)
            rows.append(EfRow(ef: efSearch, recallAt10: recall(answers), labelledRecallAt10: labelledRecall(answers),
                              singleQueriesPerSecond: Stats(single).median,
                              batchQueriesPerSecond: Stats(batch).median))
        }
        let report = Report(
            threads: threadCount, openBLASCore: BLAS.coreName, vectors: corpus.rows, dimension: d, queries: queryCount,
            labelledQueries: labelled, m: m, efConstruction: efConstruction, buildSeconds: buildSeconds,
            graphMegabytes: Double(graph.memoryBytes) / 1_048_576,
            exactSingleQueriesPerSecond: exactSingle, exactBatchQueriesPerSecond: Stats(exactBatch).median,
            exactLabelledRecallAt10: labelledRecall(truth), hnsw: rows, peakRSSMegabytes: peakResidentMegabytes())
        if json {
            try printReport(report)
            return
        }
        print("kiln bench search — \(corpus.rows) × \(d) vectors, \(queryCount) queries (\(labelled) labelled), \(threadCount) thread(s), OpenBLAS \(BLAS.coreName)")
        print(String(format: "HNSW M %d efConstruction %d: built in %.2f s, graph %.1f MB", m, efConstruction, buildSeconds, report.graphMegabytes))
        print(String(format: "exact: %.0f q/s one at a time (1 thread), %.0f q/s batch", exactSingle, report.exactBatchQueriesPerSecond)
              + (report.exactLabelledRecallAt10.map { String(format: ", labelled recall@10 %.3f", $0) } ?? ""))
        print("   ef  recall@10  labelled  single q/s  batch q/s")
        for r in rows {
            print(String(format: "%5d  %9.4f  %8@  %10.0f  %9.0f", r.ef, r.recallAt10,
                         r.labelledRecallAt10.map { String(format: "%.3f", $0) } ?? "-", r.singleQueriesPerSecond, r.batchQueriesPerSecond))
        }
        print(String(format: "peak RSS %.1f MB", report.peakRSSMegabytes))
    }
}

/// SplitMix64: a tiny seeded generator, so query samples are the same in every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
