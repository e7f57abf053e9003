import ArgumentParser
import Foundation
import KilnServices
import KilnKernels
import KilnTransformer

/// `kiln bench embed`: the measurements of sentence-transformers' reference script
/// (../shared/reference/search/bench_embed.py) on the same documents, so the two sit side by side.
struct EmbedBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Benchmark sentence embedding: documents/s in batches, single-query latency, peak RSS.",
        discussion: """
            Throughput: the first --docs documents of --corpus (JSON lines, the --field text of each; \
            or plain text, one document per line), embedded in length-sorted batches of --batch, \
            tokenization included; median of --reps runs after a warm-up. Latency: one 12-word query \
            per call, median of 5 and p50/p90 of 100 calls. scripts/bench-embed runs \
            sentence-transformers on the same documents in the same run.
            """
    )

    @Option(help: "A sentence-transformers folder.") var model = ModelLocator.defaultEmbeddingModel
    @Option(help: "Documents: a .jsonl file (see --field) or a text file with one document per line.") var corpus: String
    @Option(help: "The JSON field holding each document's text.") var field = "long"
    @Option(help: "Documents embedded per run.") var docs = 2000
    @Option(help: "Texts per batch.") var batch = 32
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "Repetitions; medians are reported.") var reps = 5
    @Flag(help: "Print one JSON object.") var json = false

    static let query = "how to search a large collection of documents with sentence embeddings quickly"

    func validate() throws {
        guard docs > 0, batch > 0, reps > 0 else { throw ValidationError("--docs, --batch and --reps must be positive") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let threadCount = threads ?? ThreadPool.defaultThreadCount
        let pool = ThreadPool(threadCount: threadCount)
        let texts = try readTexts(corpus, field: field, limit: docs)
        let loadStart = monotonicSeconds()
        let embedder = try loadEmbedder(model, pool: pool)
        let loadSeconds = monotonicSeconds() - loadStart
        let tokenCount = texts.reduce(0) { $0 + embedder.tokens($1).count }

        _ = try embedder.embed(Array(texts.prefix(128)), batchSize: batch)  // warm-up
        var runs: [Double] = []
        let progress = ProgressBar(total: reps, label: "runs", quiet: json)
        for r in 0..<reps {
            let t0 = monotonicSeconds()
            _ = try embedder.embed(texts, batchSize: batch)
            runs.append(monotonicSeconds() - t0)
            progress.update(r + 1)
        }
        progress.finish()
        for _ in 0..<3 { _ = try embedder.embed([Self.query]) }
        func latency() throws -> Double {
            let t0 = monotonicSeconds()
            _ = try embedder.embed([Self.query])
            return (monotonicSeconds() - t0) * 1000
        }
        let five = try (0..<5).map { _ in try latency() }
        let hundred = try (0..<100).map { _ in try latency() }.sorted()

        let report = Report(
            threads: threadCount, openBLASCore: BLAS.coreName, documents: texts.count, batch: batch, reps: reps,
            tokens: tokenCount, modelLoadSeconds: loadSeconds,
            documentsPerSecond: Stats(runs.map { Double(texts.count) / $0 }),
            tokensPerSecond: Stats(runs.map { Double(tokenCount) / $0 }),
            queryTokens: embedder.tokens(Self.query).count,
            latencyMillisecondsMedianOf5: Stats(five).median,
            latencyMillisecondsP50Of100: hundred[49], latencyMillisecondsP90Of100: hundred[89],
            peakRSSMegabytes: peakResidentMegabytes())
        if json {
            try printReport(report)
        } else {
            print("kiln bench embed — \(model), \(texts.count) documents (\(tokenCount) tokens), batch \(batch), \(threadCount) thread(s), OpenBLAS \(BLAS.coreName)")
            let d = report.documentsPerSecond
            print(String(format: "throughput            %9.1f docs/s  (%.1f … %.1f), %.0f tokens/s", d.median, d.min, d.max, report.tokensPerSecond.median))
            print(String(format: "query latency         %9.2f ms      (p50 %.2f, p90 %.2f of 100)", report.latencyMillisecondsMedianOf5,
                         report.latencyMillisecondsP50Of100, report.latencyMillisecondsP90Of100))
            print(String(format: "peak RSS              %9.1f MB", report.peakRSSMegabytes))
        }
    }

    struct Report: Encodable {
        let threads: Int
        let openBLASCore: String
        let documents: Int
        let batch: Int
        let reps: Int
        let tokens: Int
        let modelLoadSeconds: Double
        let documentsPerSecond: Stats
        let tokensPerSecond: Stats
        let queryTokens: Int
        let latencyMillisecondsMedianOf5: Double
        let latencyMillisecondsP50Of100: Double
        let latencyMillisecondsP90Of100: Double
        let peakRSSMegabytes: Double
    }
}
