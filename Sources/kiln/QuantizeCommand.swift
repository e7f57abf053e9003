import ArgumentParser
import Foundation
import KilnFormats
import KilnKernels
import KilnTransformer

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize a GGUF model into one of llama-quantize's file types, byte-identical to llama-quantize's output.",
        discussion: """
            TYPE is one of: \(QuantizationScheme.all.map(\.name).joined(separator: ", ")).
            The mixtures (_S, _M, _L) give attention-value, feed-forward-down and output tensors more bits \
            as llama-quantize does; rows that are not a multiple of 256 fall back to a 32-weight type.
            The output appears only when complete; the input is never overwritten.
            """
    )

    @Argument(help: "The GGUF model to read.") var input: String
    @Argument(help: "The GGUF file to write.") var output: String
    @Argument(help: "The file type (Q4_K_M, Q8_0, F16, …).") var type: String
    @Flag(help: "Accept tensors that are already quantized (they are expanded to f32 first).") var allowRequantize = false
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Print one JSON object at the end instead of a progress bar and table.") var json = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if QuantizationScheme.named(type) == nil {
            throw ValidationError("unknown type \"\(type)\"; choose one of \(QuantizationScheme.all.map(\.name).joined(separator: ", "))")
        }
    }

    func run() throws {
        let scheme = QuantizationScheme.named(type)!
        let pool = threads.map { ThreadPool(threadCount: $0) } ?? ThreadPool.shared
        let start = Date()
        var bar: ProgressBar?
        let plans: [ModelQuantizer.TensorPlan]
        do {
            plans = try ModelQuantizer.quantize(
                input: input, output: output, options: .init(scheme: scheme, allowRequantize: allowRequantize), pool: pool
            ) { p in
                if bar == nil { bar = ProgressBar(total: p.tensorCount, label: "quantize", quiet: json, unit: "") }
                bar?.update(p.tensorsDone)
            }
        } catch let error as ModelQuantizer.Failure {
            bar?.finish()
            throw CLIError("\(input): \(error)")
        } catch let error as GGUFError {
            bar?.finish()
            throw CLIError("\(input): \(error)")
        }
        bar?.finish()
        let seconds = Date().timeIntervalSince(start)
        let before = plans.reduce(0) { $0 + $1.sourceBytes }, after = plans.reduce(0) { $0 + $1.targetBytes }
        let weights = plans.reduce(0) { $0 + $1.shape.reduce(1, *) }
        var counts: [String: Int] = [:]
        for p in plans { counts["\(p.targetType)", default: 0] += 1 }
        let typeList = counts.sorted { $0.value > $1.value }
        if json {
            let object: [String: Any] = [
                "input": input, "output": output, "type": scheme.name, "file_type": Int(scheme.fileType),
                "tensors": plans.count, "converted": plans.filter(\.isConverted).count,
                "input_bytes": before, "output_bytes": after, "seconds": seconds,
                "tensor_types": Dictionary(uniqueKeysWithValues: typeList),
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        func mib(_ b: Int) -> String { String(format: "%.2f MiB", Double(b) / 1_048_576) }
        func bpw(_ b: Int) -> String { String(format: "%.2f", Double(b * 8) / Double(max(1, weights))) }
        print("\(output): \(scheme.name), \(plans.count) tensors (\(plans.filter(\.isConverted).count) converted) in \(String(format: "%.1f", seconds)) s")
        print("  size      \(mib(before)) (\(bpw(before)) bits/weight) -> \(mib(after)) (\(bpw(after)) bits/weight)")
        print("  types     " + typeList.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }
}
