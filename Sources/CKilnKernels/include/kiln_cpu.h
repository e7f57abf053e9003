// Small CPU helpers the Swift kernels need but cannot spell.
#ifndef KILN_CPU_H
#define KILN_CPU_H

/// A spin-wait hint (x86 `pause`), so a spinning worker yields pipeline resources to its sibling.
static inline void kiln_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Asks for `bytes` from `p` to be brought into the cache ahead of use: graph searches know the
/// next vectors they will score long before they read them.
static inline void kiln_prefetch(const void *p, long bytes) {
    for (long offset = 0; offset < bytes; offset += 64) __builtin_prefetch((const char *)p + offset, 0, 3);
}

/// Serve large blocks from the heap instead of fresh mmaps: training allocates the same large
/// activation buffers every step, and glibc would otherwise map, fault in and zero every page of
/// them again each time (it mmaps blocks over 128 KiB by default).
#if defined(__linux__)
#include <malloc.h>
static inline void kiln_keep_large_allocations(void) {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
}
#else
static inline void kiln_keep_large_allocations(void) {}
#endif

#endif
