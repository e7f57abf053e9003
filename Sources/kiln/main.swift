import CKilnKernels
import KilnKernels

// OpenBLAS picks its kernels while loading; fix a fallback to generic kernels before any work.
OpenBLASCore.restartIfMisdetected()
kiln_keep_large_allocations()
KilnCommand.main()
