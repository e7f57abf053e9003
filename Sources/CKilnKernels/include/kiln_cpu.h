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

#endif
