import ArgumentParser
import Foundation
import KilnImageModels

extension ImageModelKind: ExpressibleByArgument {}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train an image generator (vae or gan) on Fashion-MNIST.",
        discussion: """
        Writes to --out after every epoch: the sampling weights (vae.safetensors, or gan_G.safetensors and \
        gan_D.safetensors), config.json, training.safetensors (optimizer state, for --resume), train_log.jsonl \
        (one line per step) and samples/epoch-NNN.png. A killed run continues with --resume from its last \
        finished epoch, exactly as if it had not stopped.
        """
    )

    @Argument(help: ArgumentHelp("vae or gan.", valueName: "vae|gan")) var model: ImageModelKind
    @Option(help: "Folder with the Fashion-MNIST IDX files.") var data = FashionMNIST.defaultDirectory
    @Option(help: "Epochs in total (a resumed run stops at the same total).") var epochs = 10
    @Option(help: "Images per step (default: VAE 128, GAN 64).") var batch: Int?
    @Option(help: "Seed for initialization, shuffling and noise.") var seed: UInt64 = 0
    @Option(help: "Checkpoint folder (default: Checkpoints/<model>).") var out: String?
    @Flag(help: "Continue from the checkpoint in --out.") var resume = false
    @Flag(help: "Start over even if --out already holds a trained model.") var overwrite = false
    @Option(help: "Stop each epoch after this many steps (quick trials).") var stepsPerEpoch: Int?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Print one JSON object per epoch instead of the progress bar.") var json = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let stepsPerEpoch, stepsPerEpoch < 1 { throw ValidationError("--steps-per-epoch must be at least 1") }
        if resume && overwrite { throw ValidationError("--resume and --overwrite contradict each other") }
    }

    func run() throws {
        if let threads { setenv("KILN_THREADS", String(threads), 1) }  // before the shared pool starts
        let directory = out ?? "Checkpoints/\(model.rawValue)"
        let weights = (directory as NSString).appendingPathComponent(model.weightsFile)
        if !resume && !overwrite && FileManager.default.fileExists(atPath: weights) {
            throw CLIError("\(directory) already holds a trained \(model.rawValue); pass --resume to continue it or --overwrite to start over")
        }
        let options = TrainingOptions(kind: model, epochs: epochs, batchSize: batch ?? model.defaultBatchSize, seed: seed,
                                      outputDirectory: directory, dataDirectory: data, stepsPerEpoch: stepsPerEpoch)
        // The data and any state to resume are read first, so a bad --data leaves no empty folder.
        let trainer = try ImageTrainer(options: options, resume: resume)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CLIError("cannot create \(directory): \(error.localizedDescription)")
        }
        if trainer.completedEpochs >= epochs {
            print("\(directory) has already trained \(trainer.completedEpochs) epochs (asked for \(epochs)); nothing to do")
            return
        }
        if !json && trainer.completedEpochs > 0 { print("resuming \(model.rawValue) after epoch \(trainer.completedEpochs)") }
        var bar: ProgressBar?
        try trainer.run(step: { s in
            if s.step == 1 {
                bar = ProgressBar(total: s.stepsInEpoch, label: "epoch \(s.epoch)/\(epochs)", quiet: json,
                                  itemsPerStep: options.batchSize, unit: "images")
            }
            bar?.update(s.step, detail: s.values.prefix(2).map { String(format: "%@ %.3f", $0.0, $0.1) }.joined(separator: " "))
        }, epochDone: { summary in
            bar?.finish()
            if json {
                var object: [String: Any] = ["epoch": summary.epoch, "images_per_second": summary.imagesPerSecond,
                                             "checkpoint": summary.checkpoint, "sample_grid": summary.sampleGrid]
                if let elbo = summary.testNegativeELBO { object["test_negative_elbo"] = elbo }
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            } else {
                var line = String(format: "epoch %d/%d: %.0f images/s", summary.epoch, epochs, summary.imagesPerSecond)
                if let elbo = summary.testNegativeELBO { line += String(format: ", test −ELBO %.2f nats/image", elbo) }
                print(line + ", checkpoint \(summary.checkpoint), samples \(summary.sampleGrid)")
            }
            fflush(nil)
        })
    }
}
