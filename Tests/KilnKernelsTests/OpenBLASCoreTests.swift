import KilnKernels
import Testing

/// When OpenBLAS falls back to generic kernels, Kiln asks for the family the CPU supports; an
/// explicit OPENBLAS_CORETYPE or a good detection is left alone.
@Suite struct OpenBLASCoreTests {
    let avx512: Set<String> = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]

    @Test func genericFallbackOnAVX512GetsSkylakeX() {
        #expect(OpenBLASCore.recommendedCoreType(environment: [:], detected: "Prescott", cpuFlags: avx512) == "SkylakeX")
    }

    @Test func genericFallbackOnAVX2GetsHaswell() {
        #expect(OpenBLASCore.recommendedCoreType(environment: [:], detected: "Prescott", cpuFlags: ["avx2", "fma"]) == "Haswell")
    }

    @Test func explicitChoiceAndGoodDetectionAreKept() {
        #expect(OpenBLASCore.recommendedCoreType(environment: ["OPENBLAS_CORETYPE": "Haswell"], detected: "Prescott", cpuFlags: avx512) == nil)
        #expect(OpenBLASCore.recommendedCoreType(environment: [:], detected: "Cooperlake", cpuFlags: avx512) == nil)
        #expect(OpenBLASCore.recommendedCoreType(environment: [:], detected: "Prescott", cpuFlags: ["sse3"]) == nil)
    }
}
