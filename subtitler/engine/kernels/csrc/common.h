/*
 * What the CPU kernels share (kernels.c, decoder.c): the vectorized exp,
 * the thread helpers, CPU feature tests, and the block product of a few inputs by
 * the rows of a matrix that the output embedding and the decoding step's dense
 * layers are made of.
 */
#ifndef SUBTITLER_CPU_COMMON_H
#define SUBTITLER_CPU_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* SUBTITLER_PORTABLE builds only the plain C paths, as on CPUs other than x86 (Apple
 * silicon, ARM Linux): the tests build it to check them on this one. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(SUBTITLER_PORTABLE)
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
/* Also an AVX-512 version, for loops whose results do not depend on the vector width
 * (each value summed in the same order whatever the width). */
#define CLONES_WIDE __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#define CLONES_WIDE
#endif

#define EXP_MIN (-87.33654f) /* below this expf underflows to 0 */

static inline __attribute__((always_inline)) float exp_cephes(float x) {
    float xc = x > EXP_MIN ? x : EXP_MIN;
    float n = __builtin_floorf(xc * 1.44269504088896341f + 0.5f);
    float r = xc - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float e = y * scale;
    return x < EXP_MIN ? 0.0f : e;
}

enum { MAX_THREADS = 16 };

/* threads, held to 1 .. MAX_THREADS */
static inline int thread_count(int threads) { return threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads; }

/* Run fn on jobs[0 .. count) (each job_size bytes): jobs 1.. on threads of their own,
 * job 0 on this one; a job whose thread cannot start runs here too. Returns 1 when a
 * job returned non-NULL (failed), else 0. At most MAX_THREADS jobs. */
static inline int run_jobs(void *(*fn)(void *), void *jobs, size_t job_size, int count) {
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0}, failed = 0;
    char *base = jobs;
    for (int i = 1; i < count; i++) started[i] = pthread_create(&tids[i], NULL, fn, base + i * job_size) == 0;
    failed |= fn(base) != NULL;
    for (int i = 1; i < count; i++) {
        void *ret = NULL;
        if (started[i])
            pthread_join(tids[i], &ret);
        else
            ret = fn(base + i * job_size);
        failed |= ret != NULL;
    }
    return failed;
}

/* What the kernels that can fail return; subtitler/engine/kernels/native.py turns these into exceptions. */
enum { STATUS_OK = 0, STATUS_UNSUPPORTED = -1, STATUS_NO_MEMORY = -2, STATUS_TOO_LONG = -3 };

/* The CBLAS sgemm (the preloaded BLAS's own, passed in by address). */
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

/* Defined in kernels.c. */
void gelu(const float *x, float *out, long n);
void layer_norm(const float *x, float *out, long rows, long cols, const float *weight, const float *bias,
                float eps);
void softmax_rows_exp(float *x, long rows, long cols, long ld, float *sums);
/* out columns r0 .. r1 (row stride ldo) of x (n x k, n <= LOGITS_MAX_N) times table (rows x k, float16)^T,
 * plus bias (when given) and what out held (when add); needs have_f16c(). */
void rows_f16(const uint16_t *table, long k, const float *x, long n, float *out, long ldo, const float *bias,
              int add, long r0, long r1);

/* The same over an int8 table with a float32 scale per row (AVX2 and FMA, or plain C elsewhere). */
void rows_q8(const int8_t *table, const float *scale, long k, const float *x, long n, float *out, long ldo,
             const float *bias, int add, long r0, long r1);

enum { LOGITS_MAX_N = 8 };

/* rows_q8 by integer products over the inputs rounded to int16 (AVX2 without AVX-512):
 * a STATUS_ (UNSUPPORTED where it cannot run). */
int rows_q8_int16(const int8_t *table, const float *scale, long k, const float *x, long n, float *out, long ldo,
                  const float *bias, int add, long r0, long r1);
int rows_q8_int16_supported(void);

/* Attention over heads of 64 values (kernels.c): a STATUS_. */
int attention_d64(long heads, long t, long s, float scale, const float *q, long q_head, long ldq, const float *k,
                  long k_head, long ldk, int k_rows_are_d, const float *v, long v_head, long ldv, int v_rows_are_d,
                  float *out, long ldo, const float *mask, int threads);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(SUBTITLER_PORTABLE)
#define X86_KERNELS 1
#include <immintrin.h>

#define AVX2_FMA __attribute__((target("avx2,fma")))
#define AVX2_F16C __attribute__((target("avx2,fma,f16c")))
/* xq (n x k) = x's rows rounded to int16 (rows_q8_int16's inputs), xs[i] the step of row i (kernels.c). */
AVX2_F16C void q8i_inputs(const float *x, long n, long k, int16_t *xq, float *xs);
/* out columns r0 .. r1 of those rows (n <= LOGITS_MAX_N) times int8 rows t (a scale each)^T (kernels.c). */
AVX2_F16C void q8i_rows(const int8_t *t, const float *scale, long k, const int16_t *xq, const float *xs, long n,
                        float *out, long ldo, const float *bias, int add, long r0, long r1);
#define UNROLL _Pragma("GCC unroll 8")
#ifndef ROWS_PREFETCH
#define ROWS_PREFETCH 4096 /* bytes ahead: without it one core read the logits table at 10 GB/s here, with it 14 */
#endif

static inline AVX2_F16C __attribute__((always_inline)) float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

#define LOAD8_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define LOAD1_F16(p) _cvtsh_ss(*(p))
#define LOAD8_F32(p) _mm256_loadu_ps(p)
#define LOAD1_F32(p) (*(p))
/* int8 weights (a scale per matrix row, applied to each row's total): 8 values widened to float32 */
#define LOAD8_Q8(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p))))
#define LOAD1_Q8(p) ((float)*(p))

/* The vector sets the row kernels are written over: V8 (AVX2, 8 floats) and V16 (AVX-512). */
#define V8_T __m256
#define V8_WIDTH 8
#define V8_ZERO() _mm256_setzero_ps()
#define V8_LOADU(p) _mm256_loadu_ps(p)
#define V8_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V8_HSUM(v) hsum8(v)
#define V16_T __m512
#define V16_WIDTH 16
#define V16_ZERO() _mm512_setzero_ps()
#define V16_LOADU(p) _mm512_loadu_ps(p)
#define V16_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V16_HSUM(v) _mm512_reduce_add_ps(v)

/* Matrix rows r .. r+R-1 (t: rows of k values, loaded V##_WIDTH at a time by LOADW, one by
 * LOAD1) against the N inputs x (N x k), over the vector set V: R * N independent
 * accumulators (the multiply-adds of one form a chain as long as FMA's latency); R and
 * N are literals in each instance, so they live in registers. STORE(i, row, value) takes
 * each result. Each matrix row is read once for all N inputs. */
#define ROWS_BLOCK(V, LOADW, LOAD1, STORE, R, N, r)                                                \
    do {                                                                                           \
        V##_T acc[R][N];                                                                           \
        UNROLL for (int a = 0; a < R; a++) UNROLL for (int i = 0; i < N; i++) acc[a][i] = V##_ZERO(); \
        long j = 0;                                                                                \
        for (; j + V##_WIDTH <= k; j += V##_WIDTH) {                                               \
            const char *ahead = (const char *)(t + (r) * k) + ROWS_PREFETCH + j * sizeof(*t) * R;  \
            __builtin_prefetch(ahead);                                                             \
            if (R * sizeof(*t) * V##_WIDTH >= 64) __builtin_prefetch(ahead + 64);                  \
            V##_T xv[N];                                                                           \
            UNROLL for (int i = 0; i < N; i++) xv[i] = V##_LOADU(x + i * k + j);                  \
            UNROLL for (int a = 0; a < R; a++) {                                                   \
                V##_T wv = LOADW(t + ((r) + a) * k + j);                                           \
                UNROLL for (int i = 0; i < N; i++) acc[a][i] = V##_FMA(wv, xv[i], acc[a][i]);     \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int a = 0; a < R; a++) {                                                       \
            UNROLL for (int i = 0; i < N; i++) {                                                   \
                float total = V##_HSUM(acc[a][i]);                                                 \
                for (long jj = j; jj < k; jj++) total += LOAD1(t + ((r) + a) * k + jj) * x[i * k + jj]; \
                STORE(i, (r) + a, total);                                                          \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* The family NAME_R_N of row kernels over weights of type W on the vector set V (compiled
 * for TARGET), for N = 1 .. 8 inputs (ROWS: R1 .. R8 rows at a time, chosen per N to keep R * N
 * accumulators in registers), and the table NAME_for[N] of them. Each computes, for
 * matrix rows [r0, r1): o[i * ldo + row] = (x_i . t_row) * scale[row] (int8 rows; no
 * scale when NULL) + bias[row] (when given), plus what o held there when `add`. */
#define STORE_ROW(i, row, value)                                                                \
    (o[(i) * ldo + (row)] = (value) * (scale ? scale[row] : 1.0f) + (bias ? bias[row] : 0.0f) + \
                            (add ? o[(i) * ldo + (row)] : 0.0f))
#define ROWS_KERNEL(NAME, W, V, TARGET, LOADW, LOAD1, R, N)                                            \
    static TARGET void NAME##_##R##_##N(const W *t, long k, const float *x, float *o, long ldo,      \
                                        const float *bias, int add, const float *scale, long r0,     \
                                        long r1) {                                                   \
        long r = r0;                                                                                 \
        for (; r + R <= r1; r += R) ROWS_BLOCK(V, LOADW, LOAD1, STORE_ROW, R, N, r);                 \
        for (; r < r1; r++) ROWS_BLOCK(V, LOADW, LOAD1, STORE_ROW, 1, N, r);                         \
    }
#define ROWS_KERNELS(NAME, W, V, TARGET, LOADW, LOAD1, ROWS) ROWS_KERNELS_(NAME, W, V, TARGET, LOADW, LOAD1, ROWS)
#define ROWS_KERNELS_(NAME, W, V, TARGET, LOADW, LOAD1, R1, R2, R3, R4, R5, R6, R7, R8)                \
    ROWS_KERNEL(NAME, W, V, TARGET, LOADW, LOAD1, R1, 1)                                               \
    ROWS_KERNEL(NAME, W, V, TARGET, LOADW, LOAD1, R2, 2)                                               \
    ROWS_KERNEL(NAME, W, V, TARGET, LOADW, LOAD1, R3, 3)                                               \
    ROWS_KERNEL(NAME, W, V, TARGET, LOADW, LOAD1, R4, 4)                                               \
    ROWS_KERNEL(NAME, W, V, TARGET, LOADW, LOAD1, R5, 5)                                               \
    ROWS_KERNEL(NAME, W, V, TARGET, LOADW, LOAD1, R6, 6)                                               \
    ROWS_KERNEL(NAME, W, V, TARGET, LOADW, LOAD1, R7, 7)                                               \
    ROWS_KERNEL(NAME, W, V, TARGET, LOADW, LOAD1, R8, 8)                                               \
    typedef void (*NAME##_fn)(const W *, long, const float *, float *, long, const float *, int, const float *, \
                              long, long);                                                          \
    static const NAME##_fn NAME##_for[LOGITS_MAX_N + 1] = {                                           \
        NULL, NAME##_##R1##_1, NAME##_##R2##_2, NAME##_##R3##_3, NAME##_##R4##_4,                     \
        NAME##_##R5##_5, NAME##_##R6##_6, NAME##_##R7##_7, NAME##_##R8##_8,                           \
    };
/* The 8-wide (AVX2) families' rows at a time per input count, and the 16-wide (AVX-512) ones'. */
#define ROWS_8 8, 4, 4, 2, 2, 2, 1, 1
#define ROWS_16 8, 4, 4, 4, 4, 4, 2, 2

/* The widest instruction set the row kernels may use: 2 AVX-512, 1 AVX2, 0 plain C.
 * Lowered by set_simd_limit (tests run each build on one machine); the CPU decides the rest. */
extern int simd_limit;

static inline int have_avx2_fma(void) {
    __builtin_cpu_init();
    return simd_limit >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static inline int have_avx512(void) {
    return simd_limit >= 2 && have_avx2_fma() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw");
}

/* The AVX-512 row kernels' target and their int8 load (16 values widened to float32). */
#define AVX512 __attribute__((target("avx512f,avx512bw,avx2,fma")))
#define LOAD16_Q8(p) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p))))

static inline int have_f16c(void) { return have_avx2_fma() && __builtin_cpu_supports("f16c"); }
#else
static inline int have_avx2_fma(void) { return 0; }
static inline int have_avx512(void) { return 0; }
static inline int have_f16c(void) { return 0; }
#endif

#endif
