// swift-tools-version: 6.1
// Kiln: a generative-AI toolkit for Linux CPUs.
//
// Dependency direction (each line only imports the lines above it):
//   C shims      CKilnBLAS (OpenBLAS cblas), CKilnPNG (libpng), CKilnZlib (zlib), CKilnSentencePiece
//                (C header over the C++ library), CKilnKernels (C intrinsics Swift cannot express:
//                VNNI integer dots, the AVX-512 GELU; and ggml's quantizers, whose bytes depend on
//                C's float semantics with contraction off)
//   compute      KilnKernels  raw-buffer kernels with a scalar Reference twin for each
//   formats      KilnFormats  GGUF, safetensors, IDX, PNG, SHA-256 (independent of the kernels)
//   tensors      KilnAutograd tensors with reverse-mode differentiation over the kernels
//   layers       KilnLayers   Linear, convolutions, batch norm, self-attention, Adam, parameter sources
//   tokenizers   KilnTokenizers  the Tokenizer protocol: byte-level BPE, SentencePiece, WordPiece
//   search       KilnSearch   vector indexes on the kernels
//   models       KilnTransformer Llama decoder and generation, BERT encoder, GGUF → tokenizer;
//                KilnImageModels VAE and self-attention GAN, Fashion-MNIST, training, sampling
//   facade       KilnServices what every front end shares: model lookup, document indexing and search
//   server       KilnServer   the OpenAI-compatible HTTP server (Hummingbird) over the facade
//   apps         kiln         the command-line tool (`kiln serve` starts KilnServer)
import PackageDescription

// Compile for this CPU's widest vectors. Without it Swift SIMD code targets baseline x86-64 and
// calls fmaf through the PLT (~200x slower); see README "Performance notes".
let nativeSwift: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "native"])]
let nativeC: [CSetting] = [.unsafeFlags(["-march=native", "-O3"])]

let package = Package(
    name: "Kiln",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kiln", targets: ["kiln"]),
        .library(name: "KilnKernels", targets: ["KilnKernels"]),
        .library(name: "KilnFormats", targets: ["KilnFormats"]),
        .library(name: "KilnTokenizers", targets: ["KilnTokenizers"]),
        .library(name: "KilnSearch", targets: ["KilnSearch"]),
        .library(name: "KilnAutograd", targets: ["KilnAutograd"]),
        .library(name: "KilnServices", targets: ["KilnServices"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .systemLibrary(name: "CKilnBLAS", path: "Sources/CKilnBLAS"),
        .systemLibrary(name: "CKilnPNG", path: "Sources/CKilnPNG"),
        .systemLibrary(name: "CKilnZlib", path: "Sources/CKilnZlib"),
        .target(
            name: "CKilnSentencePiece",
            path: "Sources/CKilnSentencePiece",
            cxxSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("sentencepiece"), .linkedLibrary("sentencepiece_train")]
        ),
        .target(name: "CKilnKernels", path: "Sources/CKilnKernels", cSettings: nativeC),
        // The kernels are optimized in debug builds too: the model tests run real models through
        // them, and unoptimized SIMD loops would make `swift test` minutes slower.
        .target(
            name: "KilnKernels",
            dependencies: ["CKilnBLAS", "CKilnKernels"],
            swiftSettings: nativeSwift + [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),
        // Tensors with reverse-mode differentiation over the kernels (optimized in debug builds too:
        // the tests train real models through it).
        .target(
            name: "KilnAutograd",
            dependencies: ["KilnKernels"],
            swiftSettings: nativeSwift + [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),
        // Layers (Linear, convolutions, batch norm, self-attention) with named parameters, Adam.
        .target(
            name: "KilnLayers",
            dependencies: ["KilnAutograd", "KilnKernels", "KilnFormats"],
            swiftSettings: nativeSwift + [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),
        // The image generators (VAE, self-attention GAN), Fashion-MNIST, training and sampling.
        .target(
            name: "KilnImageModels",
            dependencies: ["KilnLayers", "KilnAutograd", "KilnKernels", "KilnFormats"],
            swiftSettings: nativeSwift + [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),
        // File formats (GGUF, safetensors, IDX, PNG): only C shims (the ggml type table comes from CKilnKernels).
        .target(name: "KilnFormats", dependencies: ["CKilnPNG", "CKilnZlib", "CKilnKernels"], swiftSettings: nativeSwift),
        // Tokenizers behind one protocol: depends on nothing of Kiln's (vocabularies come in as arrays).
        .target(name: "KilnTokenizers", dependencies: ["CKilnSentencePiece"], swiftSettings: nativeSwift),
        // Vector search on the kernels (no models, no tensors); index files through KilnFormats.
        .target(name: "KilnSearch", dependencies: ["KilnKernels", "KilnFormats"], swiftSettings: nativeSwift),
        // Transformer models (Llama, BERT) and what connects them to formats and tokenizers.
        .target(name: "KilnTransformer", dependencies: ["KilnKernels", "KilnFormats", "KilnTokenizers"], swiftSettings: nativeSwift),
        // The library facade the front ends share: finding models, text generation, images, indexing and search.
        .target(
            name: "KilnServices", dependencies: ["KilnTransformer", "KilnTokenizers", "KilnImageModels", "KilnSearch", "KilnFormats", "KilnKernels"],
            swiftSettings: nativeSwift),
        // The OpenAI-compatible HTTP server over the facade (Hummingbird 2).
        .target(
            name: "KilnServer",
            dependencies: ["KilnServices", "KilnTransformer", "KilnTokenizers", "KilnSearch", "KilnImageModels", "KilnKernels",
                           .product(name: "Hummingbird", package: "hummingbird")],
            swiftSettings: nativeSwift),
        .executableTarget(
            name: "kiln",
            dependencies: [
                "KilnServer",
                "KilnServices",
                "KilnKernels",
                "KilnFormats",
                "KilnTokenizers",
                "KilnTransformer",
                "KilnSearch",
                "KilnImageModels",
                "CKilnBLAS",  // the benchmark calls OpenBLAS directly as the yardstick
                "CKilnKernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: nativeSwift
        ),
        // Test-only helpers: seeded randomness, error measures, fixture paths, an .npz reader.
        .target(name: "KilnTestSupport", swiftSettings: nativeSwift),
        .testTarget(name: "KilnKernelsTests", dependencies: ["KilnKernels", "KilnTestSupport"], swiftSettings: nativeSwift),
        .testTarget(
            name: "KilnTransformerTests",
            dependencies: ["KilnTransformer", "KilnKernels", "KilnFormats", "KilnTokenizers", "KilnTestSupport"],
            swiftSettings: nativeSwift),
        .testTarget(name: "KilnAutogradTests", dependencies: ["KilnAutograd", "KilnKernels", "KilnTestSupport"], swiftSettings: nativeSwift),
        .testTarget(
            name: "KilnImageModelsTests", dependencies: ["KilnImageModels", "KilnLayers", "KilnAutograd", "KilnFormats", "KilnTestSupport"],
            swiftSettings: nativeSwift),
        .testTarget(name: "KilnSearchTests", dependencies: ["KilnSearch", "KilnTestSupport"], swiftSettings: nativeSwift),
        .testTarget(name: "KilnFormatsTests", dependencies: ["KilnFormats", "KilnTestSupport"], swiftSettings: nativeSwift),
        .testTarget(
            name: "KilnTokenizersTests", dependencies: ["KilnTokenizers", "KilnFormats", "KilnTransformer", "KilnTestSupport"],
            swiftSettings: nativeSwift),
        .testTarget(
            name: "KilnServerTests", dependencies: ["KilnServer", "KilnServices", "KilnTransformer", "KilnTokenizers", "KilnImageModels", "KilnTestSupport"],
            swiftSettings: nativeSwift),
        .testTarget(
            name: "KilnNativeTests",
            dependencies: ["CKilnSentencePiece", "CKilnPNG", "CKilnBLAS", "KilnTestSupport", "KilnFormats", "KilnImageModels"],
            swiftSettings: nativeSwift
        ),
    ],
    swiftLanguageModes: [.v6],
    cxxLanguageStandard: .cxx17
)
