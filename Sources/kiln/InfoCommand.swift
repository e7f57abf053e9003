import ArgumentParser
import Foundation
import KilnServices
import KilnFormats
import KilnKernels
import KilnTransformer

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show the CPU features, kernel paths and installed checkpoints Kiln will use, or what a GGUF file holds.",
        discussion: "With MODEL.gguf: architecture, parameters, tensor types and bits per weight, context length, vocabulary, chat template, and whether Kiln runs every tensor."
    )

    @Argument(help: "A GGUF model to describe instead.")
    var model: String?

    @Option(help: "The checkpoints folder to list.")
    var checkpoints = "Checkpoints"

    func run() throws {
        if let model {
            let file: GGUFFile
            let path = try modelPath(model)
            do { file = try GGUFFile(path: path) } catch { throw CLIError("\(model): \(error)") }
            Self.describe(ModelSummary(file: file), path: model)
            return
        }
        let cpu = CPUDescription.current
        print("CPU             \(cpu.model) (\(cpu.logicalCores) logical cores)")
        print("vector ISA      \(cpu.vectorFeatures.joined(separator: " "))")
        print("quantized dots  \(QuantizedOps.usesVNNI ? "AVX-512 VNNI" : "portable C")")
        print("OpenBLAS core   \(BLAS.coreName)\(cpu.openBLASNote)")
        print("Kiln threads    \(ThreadPool.defaultThreadCount)")
        print("checkpoints     \(checkpoints)/")
        let known = [
            ("SmolLM2-135M-Instruct.Q4_1.gguf", "text generation (GGUF, Q4_1)"),
            ("all-MiniLM-L6-v2/model.safetensors", "sentence embeddings (safetensors)"),
            ("vae/vae.safetensors", "image generator: VAE (kiln sample vae)"),
            ("gan/gan_G.safetensors", "image generator: GAN (kiln sample gan)"),
        ]
        for (file, role) in known {
            let path = "\(checkpoints)/\(file)"
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
            let state = size.map { String(format: "%.1f MB", Double($0) / 1e6) } ?? (file.hasPrefix("vae/") || file.hasPrefix("gan/") ? "missing — kiln train" : "missing — run scripts/setup")
            print("  \(file.padding(toLength: 38, withPad: " ", startingAt: 0)) \(state.padding(toLength: 30, withPad: " ", startingAt: 0)) \(role)")
        }
    }
}

extension InfoCommand {
    static func describe(_ s: ModelSummary, path: String) {
        func millions(_ n: Int) -> String { String(format: "%.1fM", Double(n) / 1e6) }
        print("model           \(path)\(s.name.map { " (\($0))" } ?? "")")
        print("architecture    \(s.architecture)")
        print("parameters      \(millions(s.parameters)), \(String(format: "%.2f", s.bitsPerWeight)) bits per weight")
        for t in s.types {
            print("  \("\(t.type)".padded(8)) \(String(t.tensors).padded(4, left: true)) tensors  \(millions(t.parameters).padded(8, left: true))  \(String(format: "%5.2f", t.bitsPerWeight)) bits/weight")
        }
        print("context length  \(s.contextLength.map(String.init) ?? "not stated")")
        print("vocabulary      \(s.vocabularySize.map(String.init) ?? "none")\(s.tokenizerModel.map { " (\($0))" } ?? "")")
        print("chat template   \(s.hasChatTemplate ? "yes" : "no")")
        print("Kiln runs it    \(s.unsupported.map { "no: \($0)" } ?? "yes")")
    }
}

/// What the benchmark and `kiln info` report about the processor.
struct CPUDescription {
    var model: String
    var logicalCores: Int
    var vectorFeatures: [String]
    /// Set when OPENBLAS_CORETYPE pins OpenBLAS's kernel family.
    var openBLASOverride: String?

    /// How the OpenBLAS kernel family was chosen, for reports.
    var openBLASNote: String {
        guard let openBLASOverride else { return "" }
        return OpenBLASCore.wasSelectedByKiln
            ? " (selected by kiln: OpenBLAS did not recognise this CPU)"
            : " (forced by \(openBLASOverride))"
    }

    static var current: CPUDescription {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } } ?? "unknown"
        let flags = OpenBLASCore.cpuFlags()
        let interesting = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"]
        let environment = ProcessInfo.processInfo.environment
        return CPUDescription(
            model: model, logicalCores: ProcessInfo.processInfo.activeProcessorCount,
            vectorFeatures: interesting.filter(flags.contains),
            openBLASOverride: environment["OPENBLAS_CORETYPE"].map { "OPENBLAS_CORETYPE=\($0)" })
    }
}
