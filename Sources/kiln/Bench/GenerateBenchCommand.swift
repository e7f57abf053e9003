import ArgumentParser
import Foundation
import KilnServices
import KilnFormats
import KilnKernels
import KilnTokenizers
import KilnTransformer

/// `kiln bench generate`: the measurements llama.cpp's reference script makes
/// (../shared/reference/llm/bench.py), on the same texts, so the two can be set side by side.
struct GenerateBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Benchmark text generation: prefill and decode tokens/s, time to first token, peak RSS.",
        discussion: """
            pp: one batch of --prompt-tokens tokens; tg: --gen-tokens single-token steps fed their own \
            argmax; ttft: a 32-token prompt string to the first token's text. Medians over --reps \
            after one warm-up. scripts/bench-generate runs llama.cpp on the same file in the same run.
            """
    )

    @Option(help: ArgumentHelp("A .gguf language model (architectures: \(ModelArchitecture.registry.map(\.name).joined(separator: ", "))).")) var model = ModelLocator.defaultLanguageModel
    @Option(help: "Prompt length for the prefill measurement.") var promptTokens = 128
    @Option(help: "Tokens decoded for the decode measurement.") var genTokens = 128
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "Repetitions; medians are reported.") var reps = 5
    @Flag(help: "Print one JSON object.") var json = false

    static let longText = """
        The lighthouse keeper climbed the spiral stairs every evening at dusk, carrying a small brass lamp and a notebook in which he recorded the weather, the ships that passed, and anything unusual he noticed on the water. For thirty years he had never missed a night. The villagers said he knew the sea better than any fisherman, and when storms came they would walk up the hill to ask him whether the boats should stay in the harbour. He always answered carefully, looking first at the clouds, then at the colour of the waves, and finally at the old barometer that hung beside the door. One autumn a young engineer arrived from the city with plans to replace the lamp with an automatic light that would need no keeper at all. The old man listened politely, made him a cup of tea, and asked him to stay for just one night before deciding anything.
        """
    static let decodePrompt = "Once upon a time, in a small village by the sea,"

    func validate() throws {
        guard promptTokens > 0, genTokens > 0, reps > 0 else { throw ValidationError("sizes and --reps must be positive") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let threadCount = threads ?? ThreadPool.defaultThreadCount
        let pool = ThreadPool(threadCount: threadCount)
        let file: GGUFFile, tokenizer: any Tokenizer, sequence: DecoderSequence
        let loadStart = monotonicNanoseconds()
        do {
            file = try GGUFFile(path: try modelPath(model))
            tokenizer = try GGUFTokenizer.load(from: file)
            sequence = try DecoderSequence(file: file, contextSize: 2048, batchSize: 512, pool: pool)
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(model): \(error)")
        }
        let loadSeconds = Double(monotonicNanoseconds() - loadStart) * 1e-9
        let longIds = tokenizer.encode(Self.longText, addSpecial: false, parseSpecial: false)
        guard longIds.count >= max(promptTokens, 32) else { throw CLIError("the benchmark text has only \(longIds.count) tokens") }
        let prefillIds = Array(longIds.prefix(promptTokens))
        let ttftText = try tokenizer.decode(Array(longIds.prefix(32)), skipSpecial: false)
        let decodeIds = tokenizer.encode(Self.decodePrompt, addSpecial: false, parseSpecial: false)

        func seconds(_ body: () throws -> Void) rethrows -> Double {
            let t = monotonicNanoseconds()
            try body()
            return Double(monotonicNanoseconds() - t) * 1e-9
        }
        func argmax() -> Int { VectorOps.argmax(UnsafeBufferPointer(sequence.logits), count: sequence.logits.count) }
        func prefill() throws -> Double { try seconds { try sequence.forward(prefillIds, startPosition: 0) } }
        func decode() throws -> (Double, [Int]) {
            try sequence.forward(decodeIds, startPosition: 0)
            var token = argmax()
            var produced: [Int] = []
            produced.reserveCapacity(genTokens)
            let t = try seconds {
                for i in 0..<genTokens {
                    try sequence.forward([token], startPosition: decodeIds.count + i)
                    token = argmax()
                    produced.append(token)
                }
            }
            return (t, produced)
        }
        func firstToken() throws -> Double {
            try seconds {
                let ids = tokenizer.encode(ttftText, addSpecial: false, parseSpecial: false)
                try sequence.forward(ids, startPosition: 0)
                _ = try tokenizer.decode([argmax()], skipSpecial: false)
            }
        }
        _ = try prefill()
        _ = try decode()
        _ = try firstToken()
        var pp: [Double] = [], tg: [Double] = [], ttft: [Double] = []
        var reference: [Int]?
        for _ in 0..<reps { pp.append(try prefill()) }
        for _ in 0..<reps {
            let (t, produced) = try decode()
            tg.append(t)
            if reference == nil { reference = produced }
            guard produced == reference else { throw CLIError("decode output changed between repetitions") }
        }
        for _ in 0..<reps { ttft.append(try firstToken()) }
        let report = Report(
            threads: threadCount, reps: reps, openBLASCore: BLAS.coreName, modelLoadSeconds: loadSeconds,
            prefill: .init(tokens: promptTokens, tokensPerSecond: Stats(pp.map { Double(promptTokens) / $0 })),
            decode: .init(tokens: genTokens, tokensPerSecond: Stats(tg.map { Double(genTokens) / $0 })),
            timeToFirstTokenMilliseconds: Stats(ttft.map { $0 * 1000 }), peakRSSMegabytes: peakResidentMegabytes(),
            producedIds: reference ?? [])
        if json {
            try printReport(report)
        } else {
            print("kiln bench generate — \(model), \(threadCount) thread(s), medians of \(reps) (min … max)")
            func line(_ name: String, _ s: Stats, _ unit: String) {
                print(name.padding(toLength: 22, withPad: " ", startingAt: 0)
                      + String(format: "%9.1f %@   (%.1f … %.1f)", s.median, unit, s.min, s.max))
            }
            line("prefill \(promptTokens) tokens", report.prefill.tokensPerSecond, "tok/s")
            line("decode \(genTokens) tokens", report.decode.tokensPerSecond, "tok/s")
            line("time to first token", report.timeToFirstTokenMilliseconds, "ms   ")
            print(String(format: "peak RSS              %9.1f MB", report.peakRSSMegabytes))
        }
    }

    struct Report: Encodable {
        struct Rate: Encodable {
            let tokens: Int
            let tokensPerSecond: Stats
        }
        let threads: Int
        let reps: Int
        let openBLASCore: String
        let modelLoadSeconds: Double
        let prefill: Rate
        let decode: Rate
        let timeToFirstTokenMilliseconds: Stats
        let peakRSSMegabytes: Double
        let producedIds: [Int]
    }
}
