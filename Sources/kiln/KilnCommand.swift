import ArgumentParser

struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Kiln: generative AI on the CPU — text generation, image generators, embeddings and search.",
        version: "0.1.0",
        subcommands: [
            InfoCommand.self, GenerateCommand.self, ChatCommand.self, EmbedCommand.self, IndexCommand.self, SearchCommand.self, ServeCommand.self,
            TrainCommand.self, SampleCommand.self, QuantizeCommand.self,
            TokenizeCommand.self, DetokenizeCommand.self, ChatTemplateCommand.self, TokenizerCommand.self,
            BenchCommand.self,
        ]
    )
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Kiln's speed on this machine.",
        subcommands: [KernelBenchCommand.self, GenerateBenchCommand.self, EmbedBenchCommand.self, SearchBenchCommand.self, TrainBenchCommand.self, TokenizeBenchCommand.self]
    )
}
