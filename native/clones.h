/* SPDX-License-Identifier: GPL-2.0-or-later */
/* DTMFGUARD_CLONES: build a function twice (AVX2 and baseline) and pick at load time (glibc ifunc).
 * ifunc-based clones need glibc (musl has no ifunc); elsewhere the baseline build is used.
 * Shared by goertzel.c and detector.c, whose kernels must give bit-identical values. */
#ifndef DTMFGUARD_CLONES_H
#define DTMFGUARD_CLONES_H

#if defined(__GNUC__) && defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define DTMFGUARD_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef DTMFGUARD_CLONES
#define DTMFGUARD_CLONES
#endif

#endif
