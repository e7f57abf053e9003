import Foundation

/// Picks an OpenBLAS kernel family when OpenBLAS's own CPU detection falls back to its generic
/// kernels on a CPU it does not know (Debian 12's OpenBLAS 0.3.21 on recent Xeons chooses
/// "Prescott", about 4× slower than its AVX-512 kernels there).
public enum OpenBLASCore {
    /// Set by `restartIfMisdetected` in the restarted process, so it never loops.
    static let restartMarker = "KILN_OPENBLAS_CORETYPE_SELECTED"

    /// The family to request with OPENBLAS_CORETYPE, or nil when OpenBLAS chose well or the user
    /// already chose (an explicit OPENBLAS_CORETYPE is always respected).
    public static func recommendedCoreType(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        detected: String = BLAS.coreName, cpuFlags: Set<String> = cpuFlags()
    ) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        guard ["Prescott", "Core2", "Nehalem", "Sandybridge", "unknown"].contains(detected) else { return nil }
        if cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]) { return "SkylakeX" }
        if cpuFlags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// True when this process was restarted by `restartIfMisdetected`.
    public static var wasSelectedByKiln: Bool { ProcessInfo.processInfo.environment[restartMarker] != nil }

    /// OpenBLAS reads OPENBLAS_CORETYPE once, while the library loads, so a better family can
    /// only take effect in a new process image: re-executes this program with the variable set.
    /// Returns normally when nothing needs to change or the restart is impossible.
    public static func restartIfMisdetected() {
        guard !wasSelectedByKiln, let core = recommendedCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv(restartMarker, "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returned: the restart failed; carry on with the detected family.
    }

    /// The CPU feature flags from /proc/cpuinfo (empty where it is unreadable).
    public static func cpuFlags() -> Set<String> {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: " ").map(String.init))
    }
}
