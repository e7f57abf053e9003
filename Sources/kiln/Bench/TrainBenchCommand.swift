import ArgumentParser
import Foundation
import KilnAutograd
import KilnImageModels
import KilnKernels

/// `kiln bench train`: the measurements of the PyTorch reference's bench.py on the same models and
/// data, so the two sit side by side (scripts/bench-train runs both in the same run).
struct TrainBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Benchmark image-model training and sampling: images/s per model, peak RSS.",
        discussion: """
            Training: median wall time of one optimisation step (VAE: batch 128, one Adam step; GAN: batch 64, \
            one D update + one G update) over --steps steps after --warmup steps, as images/s = batch / median \
            step time, on the Fashion-MNIST training set held in memory. Sampling: decoder / generator forward \
            at batch --sample-batch, median of --sample-reps calls after 3 warm-up calls.
            """
    )

    @Argument(help: "vae, gan, or both (default).") var models: [ImageModelKind] = [.vae, .gan]
    @Option(help: "Folder with the Fashion-MNIST IDX files.") var data = FashionMNIST.defaultDirectory
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "Untimed steps first.") var warmup = 10
    @Option(help: "Timed steps; the median is reported.") var steps = 50
    @Option(help: "Timed sampling calls; the median is reported.") var sampleReps = 20
    @Option(help: "Images per sampling call.") var sampleBatch = 256
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard warmup >= 0, steps > 0, sampleReps > 0, sampleBatch > 0 else {
            throw ValidationError("--steps, --sample-reps and --sample-batch must be positive, --warmup non-negative")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    struct ModelReport: Encodable {
        let model: String
        let batch: Int
        let trainImagesPerSecond: Double
        let trainStepMillisecondsMedian: Double
        let sampleImagesPerSecond: Double
        let sampleBatch: Int
    }

    struct Report: Encodable {
        let threads: Int
        let openBLASCore: String
        let models: [ModelReport]
        let peakRSSMegabytes: Double
    }

    func run() throws {
        if let threads { setenv("KILN_THREADS", String(threads), 1) }  // before the shared pool starts
        let threadCount = threads ?? ThreadPool.defaultThreadCount
        var reports: [ModelReport] = []
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-bench-train-\(getpid())").path
        for kind in models {
            let trainer = try ImageTrainer(
                options: TrainingOptions(kind: kind, epochs: 1, batchSize: kind.defaultBatchSize, seed: 0, outputDirectory: scratch, dataDirectory: data),
                resume: false)
            let batches = trainer.batches(epoch: 1)
            let progress = ProgressBar(total: warmup + steps, label: "\(kind.rawValue) steps", quiet: json)
            var times: [Double] = []
            for i in 0..<(warmup + steps) {
                let t0 = monotonicSeconds()
                _ = trainer.step(batches[i % batches.count], epoch: 1, index: i)
                if i >= warmup { times.append(monotonicSeconds() - t0) }
                progress.update(i + 1)
            }
            progress.finish()
            var random = RandomSource(seed: 9)
            let z = Tensor(shape: [sampleBatch, kind.latentSize], data: random.normal(sampleBatch * kind.latentSize))
            for _ in 0..<3 { _ = trainer.sample(latents: z) }
            let sampleTimes = (0..<sampleReps).map { _ in
                let t0 = monotonicSeconds()
                _ = trainer.sample(latents: z)
                return monotonicSeconds() - t0
            }
            let step = Stats(times).median, sample = Stats(sampleTimes).median
            reports.append(ModelReport(model: kind.rawValue, batch: kind.defaultBatchSize, trainImagesPerSecond: Double(kind.defaultBatchSize) / step,
                                       trainStepMillisecondsMedian: step * 1000, sampleImagesPerSecond: Double(sampleBatch) / sample,
                                       sampleBatch: sampleBatch))
        }
        let report = Report(threads: threadCount, openBLASCore: BLAS.coreName, models: reports, peakRSSMegabytes: peakResidentMegabytes())
        if json {
            try printReport(report)
            return
        }
        print("kiln bench train — Fashion-MNIST, \(threadCount) thread(s), OpenBLAS \(BLAS.coreName)")
        for r in reports {
            print(String(format: "%@  train %8.0f images/s (batch %d, step %.1f ms)   sample %8.0f images/s (batch %d)",
                         r.model, r.trainImagesPerSecond, r.batch, r.trainStepMillisecondsMedian, r.sampleImagesPerSecond, r.sampleBatch))
        }
        print(String(format: "peak RSS %.0f MB", report.peakRSSMegabytes))
    }
}
