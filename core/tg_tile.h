/* tg_tile.h — square tile transposes in registers (private to the library:
 * core/gemm_xsmm.c packs transposed GEMM operands with them, ops/strided.c
 * transposes for permute and the other shape ops). Not installed.
 *
 * tg_tile8_f32 loads an 8x8 f32 tile (rows ls elements apart) and leaves
 * its transpose in t[0..7] (t[j] = column j); tg_tile4_f64 the same for a
 * 4x4 f64 tile. AVX shuffles: an element-by-element copy of a tile reads
 * one column per output row, its rows a power-of-two stride apart falling
 * into the same few cache sets (a 4096x4096 f32 permute took 46 ms). Only
 * where the build has AVX (TG_TILE_AVX). */
#ifndef TG_TILE_H
#define TG_TILE_H

#include <stdint.h>

#if defined(__AVX__)
#include <immintrin.h>
#define TG_TILE_AVX 1

static inline void tg_tile8_f32(const float *s, int64_t ls, __m256 t[8])
{
    __m256 r0 = _mm256_loadu_ps(s),          r1 = _mm256_loadu_ps(s + ls);
    __m256 r2 = _mm256_loadu_ps(s + 2 * ls), r3 = _mm256_loadu_ps(s + 3 * ls);
    __m256 r4 = _mm256_loadu_ps(s + 4 * ls), r5 = _mm256_loadu_ps(s + 5 * ls);
    __m256 r6 = _mm256_loadu_ps(s + 6 * ls), r7 = _mm256_loadu_ps(s + 7 * ls);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    t[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    t[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    t[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    t[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    t[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    t[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    t[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    t[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

static inline void tg_tile4_f64(const double *s, int64_t ls, __m256d t[4])
{
    __m256d r0 = _mm256_loadu_pd(s),          r1 = _mm256_loadu_pd(s + ls);
    __m256d r2 = _mm256_loadu_pd(s + 2 * ls), r3 = _mm256_loadu_pd(s + 3 * ls);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    t[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    t[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    t[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    t[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}
#endif

#endif
