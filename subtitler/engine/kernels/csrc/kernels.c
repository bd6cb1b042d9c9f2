/*
 * CPU kernels for the work that MLX's Linux CPU backend does slowly, called through
 * ctypes by cpu_ops.py (which says what each one replaced and what it measured):
 *
 * - exp (the attention softmax) and erf (GELU), which neither MLX's CPU backend
 *   nor NumPy vectorizes here. NumPy's float32 exp runs at 0.4-0.5 G/s (a scalar
 *   loop), MLX's at 0.05 G/s; MLX's fused rational GELU at 0.2 G/s on one thread.
 *   Same formulas as cpu_ops.py: the Cephes expf (relative error below 2e-7) and
 *   the rational erf that Eigen and XLA use (absolute error below 5e-7);
 * - layer norm over many rows;
 * - long attention: a kernel of its own for heads of 64, otherwise head by head
 *   through the BLAS's sgemm;
 * - the output embedding of a decoding step from a float16 table.
 *
 * The loops are plain C that the compiler vectorizes, built twice (AVX2 + FMA, and
 * the baseline) with the faster one picked at load time. Callers split rows over
 * threads (ctypes releases the GIL), or pass a thread count.
 */
#include "common.h"
#include <math.h>
#include <string.h>

/* row[j] = exp(row[j] - peak): value by value, so its AVX-512 build gives the AVX2
 * build's values (checked over 4 M values; so does gelu's). */
CLONES_WIDE static void exp_shifted(float *row, long cols, float peak) {
#pragma omp simd
    for (long j = 0; j < cols; j++) row[j] = exp_cephes(row[j] - peak);
}

/* Each row of x (rows x cols, row stride ld) becomes exp(row - max(row)), in place;
 * sums[i] gets the row's sum (in the AVX2 build's order on every CPU that has it). A
 * row of -inf stays 0 with a sum of 0. */
CLONES void softmax_rows_exp(float *x, long rows, long cols, long ld, float *sums) {
    for (long i = 0; i < rows; i++) {
        float *row = x + i * ld;
        float peak = -__builtin_inff();
#pragma omp simd reduction(max : peak)
        for (long j = 0; j < cols; j++) peak = row[j] > peak ? row[j] : peak;
        if (!(peak > -__builtin_inff())) peak = 0.0f;
        exp_shifted(row, cols, peak);
        float total = 0.0f;
#pragma omp simd reduction(+ : total)
        for (long j = 0; j < cols; j++) total += row[j];
        sums[i] = total;
    }
}

/* sum(exp(row[j] - peak)) without writing the row (a vocabulary's logits are read once):
 * float sums of 512 terms added in double, where one float sum of 50k terms would be
 * a few units off in the last place. */
CLONES_WIDE static double exp_shifted_sum(const float *row, long cols, float peak) {
    double total = 0.0;
    for (long j0 = 0; j0 < cols; j0 += 512) {
        long j1 = j0 + 512 < cols ? j0 + 512 : cols;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (long j = j0; j < j1; j++) part += exp_cephes(row[j] - peak);
        total += part;
    }
    return total;
}

/* out[i] = log(sum(exp(row i))) of x (rows x cols, row stride ld), read-only: a decoding
 * step's log-probabilities over the vocabulary. A row of -inf gives -inf. */
CLONES void logsumexp_rows(const float *x, long rows, long cols, long ld, float *out) {
    for (long i = 0; i < rows; i++) {
        const float *row = x + i * ld;
        float peak = -__builtin_inff();
#pragma omp simd reduction(max : peak)
        for (long j = 0; j < cols; j++) peak = row[j] > peak ? row[j] : peak;
        out[i] = peak > -__builtin_inff() && peak < __builtin_inff() ? (float)(log(exp_shifted_sum(row, cols, peak)) + peak)
                                                                     : peak; /* all -inf, or an inf */
    }
}

/* out = x * (1 + erf(x / sqrt 2)) / 2 over n values (out may be x). */
CLONES_WIDE void gelu(const float *x, float *out, long n) {
#pragma omp simd
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float z = v * 0.70710678118654752f;
        z = z > -4.0f ? z : -4.0f;
        z = z < 4.0f ? z : 4.0f;
        float z2 = z * z;
        float p = -2.72614225801306e-10f;
        p = p * z2 + 2.77068142495902e-08f;
        p = p * z2 + -2.10102402082508e-06f;
        p = p * z2 + -5.69250639462346e-05f;
        p = p * z2 + -7.34990630326855e-04f;
        p = p * z2 + -2.95459980854025e-03f;
        p = p * z2 + -1.60960333262415e-02f;
        float q = -1.45660718464996e-05f;
        q = q * z2 + -2.13374055278905e-04f;
        q = q * z2 + -1.68282697438203e-03f;
        q = q * z2 + -7.37332916720468e-03f;
        q = q * z2 + -1.42647390514189e-02f;
        out[i] = 0.5f * v * (1.0f + z * p / q);
    }
}

/* Layer norm of each row of x (rows x cols, contiguous) into out: (x - mean) /
 * sqrt(var + eps) * weight + bias, with the variance taken around the mean. */
CLONES void layer_norm(const float *x, float *out, long rows, long cols, const float *weight, const float *bias,
                       float eps) {
    for (long i = 0; i < rows; i++) {
        const float *row = x + i * cols;
        float *dst = out + i * cols;
        float total = 0.0f;
#pragma omp simd reduction(+ : total)
        for (long j = 0; j < cols; j++) total += row[j];
        float mean = total / (float)cols;
        float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
        for (long j = 0; j < cols; j++) squares += (row[j] - mean) * (row[j] - mean);
        float scale = 1.0f / __builtin_sqrtf(squares / (float)cols + eps);
#pragma omp simd
        for (long j = 0; j < cols; j++) dst[j] = (row[j] - mean) * scale * weight[j] + bias[j];
    }
}

/* ---------------------------------------------------------------- attention

 * softmax(scale * q k^T + mask) v for each head, one head at a time, through the
 * process's cblas_sgemm (passed in: the BLAS that subtitler._blas loaded).
 *
 * MLX's CPU backend did this for all heads at once: each head's strided q, k and v
 * copied to dense arrays, the (H, T, S) scores (54 MB for the encoder) written
 * out to memory and read back by every pass, and the output merged by another
 * copy. Here the products read the heads where they lie (any row and head
 * strides), one head's scores (9 MB) stay in the cache between the products and
 * the exp pass, and each head's output lands in its columns of the (T, H*D) result.
 *
 * Operands are described per head: base pointer, head stride and row stride, in
 * floats. q_h is (T, D); k_h and v_h are (S, D) rows, or (D, S) rows when
 * k_rows_are_d / v_rows_are_d (stored transposed); out_h is (T, D) at out + h*D, row stride
 * ldo. mask: NULL, or (T, S) added to the scores (row stride S). scores: T*S
 * floats, sums: T floats, both scratch. The exp pass is split over `threads`.
 */


struct exp_part {
    float *scores;
    long rows, cols;
    float *sums;
};

static void *exp_part_run(void *arg) {
    struct exp_part *p = arg;
    softmax_rows_exp(p->scores, p->rows, p->cols, p->cols, p->sums);
    return NULL;
}

static void exp_rows_parallel(float *scores, long rows, long cols, float *sums, int threads) {
    struct exp_part parts[MAX_THREADS];
    threads = thread_count(threads);
    if (rows < 64 * threads) threads = 1;
    for (int i = 0; i < threads; i++) {
        long a = rows * i / threads, b = rows * (i + 1) / threads;
        parts[i] = (struct exp_part){scores + a * cols, b - a, cols, sums + a};
    }
    run_jobs(exp_part_run, parts, sizeof parts[0], threads);
}

void attention_heads(void *sgemm_address, long heads, long t, long s, long d, float scale,
                     const float *q, long q_head, long ldq,
                     const float *k, long k_head, long ldk, int k_rows_are_d,
                     const float *v, long v_head, long ldv, int v_rows_are_d,
                     float *out, long ldo, const float *mask,
                     float *scores, float *sums, int threads) {
    sgemm_fn sgemm = (sgemm_fn)sgemm_address;
    for (long h = 0; h < heads; h++) {
        float beta = 0.0f;
        if (mask) {
            memcpy(scores, mask, sizeof(float) * t * s);
            beta = 1.0f;
        }
        sgemm(ROW_MAJOR, NO_TRANS, k_rows_are_d ? NO_TRANS : TRANS, (int)t, (int)s, (int)d, scale,
              q + h * q_head, (int)ldq, k + h * k_head, (int)ldk, beta, scores, (int)s);
        exp_rows_parallel(scores, t, s, sums, threads);
        float *o = out + h * d;
        sgemm(ROW_MAJOR, NO_TRANS, v_rows_are_d ? TRANS : NO_TRANS, (int)t, (int)d, (int)s, 1.0f, scores, (int)s,
              v + h * v_head, (int)ldv, 0.0f, o, (int)ldo);
        for (long i = 0; i < t; i++) {
            float inv = sums[i] > 0.0f ? 1.0f / sums[i] : 0.0f; /* a fully masked row gives zeros */
            for (long j = 0; j < d; j++) o[i * ldo + j] *= inv;
        }
    }
}

/* ---------------------------------------------------------------- logits

 * out (n, rows) = x (n, k) times table (rows, k)^T, the table in float16: the
 * output embedding of a decoding step, n = 1 (greedy) to a few (beams, samples).
 *
 * Whisper's published weights are float16, so the table holds them exactly; each
 * value is widened to float32 before its multiply-add, which is the float32
 * product of the same weights. What changes is the memory read per step, the
 * bound on this product: 40 MB instead of 80 for tiny's 51864 x 384. Each table
 * row is read once for all n inputs. Rows are split over `threads`.
 */

#ifdef X86_KERNELS
ROWS_KERNELS(half_rows, uint16_t, V8, AVX2_F16C, LOAD8_F16, LOAD1_F16, ROWS_8)
#endif

/* 1 when this CPU runs the float16 logits kernel. */
int logits_f16_supported(void) { return have_f16c(); }

struct logits_part {
    const uint16_t *table;
    long k;
    const float *x;
    long n;
    float *out;
    long ldo, r0, r1;
};

void rows_f16(const uint16_t *table, long k, const float *x, long n, float *out, long ldo, const float *bias,
              int add, long r0, long r1) {
#ifdef X86_KERNELS
    half_rows_for[n](table, k, x, out, ldo, bias, add, NULL, r0, r1);
#else
    (void)table; (void)k; (void)x; (void)n; (void)out; (void)ldo; (void)bias; (void)add; (void)r0; (void)r1;
#endif
}

#ifdef X86_KERNELS
ROWS_KERNELS(q8_rows, int8_t, V8, AVX2_F16C, LOAD8_Q8, LOAD1_Q8, ROWS_8)
ROWS_KERNELS(q8_rows16, int8_t, V16, AVX512, LOAD16_Q8, LOAD1_Q8, ROWS_16)
#endif

int simd_limit = 2;

/* Lower (or restore) the widest instruction set the row kernels use: 2 AVX-512, 1 AVX2, 0 plain C. */
void set_simd_limit(int level) { simd_limit = level; }

/* The instruction set the int8 row kernel runs with here: 2 AVX-512, 1 AVX2, 0 plain C. */
int simd_level(void) { return have_avx512() ? 2 : have_avx2_fma() ? 1 : 0; }

void rows_q8(const int8_t *table, const float *scale, long k, const float *x, long n, float *out, long ldo,
             const float *bias, int add, long r0, long r1) {
#ifdef X86_KERNELS
    if (have_avx512()) {
        q8_rows16_for[n](table, k, x, out, ldo, bias, add, scale, r0, r1);
        return;
    }
    if (have_avx2_fma()) {
        q8_rows_for[n](table, k, x, out, ldo, bias, add, scale, r0, r1);
        return;
    }
#endif
    for (long r = r0; r < r1; r++) /* the portable path: the same sums, one row at a time */
        for (long i = 0; i < n; i++) {
            float total = 0.0f;
            for (long j = 0; j < k; j++) total += (float)table[r * k + j] * x[i * k + j];
            out[i * ldo + r] = total * scale[r] + (bias ? bias[r] : 0.0f) + (add ? out[i * ldo + r] : 0.0f);
        }
}

/* ---------------------------------------------------------------- int8 rows by integer products
 *
 * rows_q8 widens each int8 weight to float32 for its multiply-add: on AVX2 that is
 * three instructions for 8 weights, and a decoding step's products (int8 weights
 * and table) ran at about 20 G weights/s a core here, what those instructions allow,
 * not what memory does. rows_q8_int16 quantizes the few input rows instead (each to
 * the largest magnitude that keeps any sum of k products inside int32: 15 bits up to
 * k = 528, 13 at 1536, 11.7 at 5120) and multiplies in integers: 16 weights widened
 * to int16 by one instruction, `vpmaddwd` adding each pair of products in int32, one
 * add. Results as rows_q8's, within the inputs' rounding (a 32767th of each row's
 * largest magnitude at tiny's widths). AVX2 only; 0 when it cannot run here. */

/* The largest int16 magnitude for inputs of length k whose products with int8 weights
 * (up to 127) sum inside int32. */
static long q8i_top(long k) {
    long top = 2147483647L / (127L * (k > 0 ? k : 1));
    return top < 32767 ? top : 32767;
}

#ifdef X86_KERNELS
static inline AVX2_F16C __attribute__((always_inline)) int32_t hsum8i(__m256i v) {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return _mm_cvtsi128_si32(h);
}

/* xq (n x k) = x's rows rounded to int16 at q8i_top(k), xs[i] the step of row i. */
AVX2_F16C void q8i_inputs(const float *x, long n, long k, int16_t *xq, float *xs) {
    const float top = (float)q8i_top(k);
    for (long i = 0; i < n; i++) {
        const float *row = x + i * k;
        float peak = 0.0f;
#pragma omp simd reduction(max : peak)
        for (long j = 0; j < k; j++) {
            float a = __builtin_fabsf(row[j]);
            peak = a > peak ? a : peak;
        }
        float step = peak > 0.0f ? peak / top : 1.0f, inv = 1.0f / step;
        xs[i] = step;
#pragma omp simd
        for (long j = 0; j < k; j++) xq[i * k + j] = (int16_t)((row[j] * inv + 12582912.0f) - 12582912.0f);
    }
}

/* As ROWS_BLOCK, over int8 rows t and the int16 inputs xq (scaled back by xs). */
#define Q8I_BLOCK(R, N, r)                                                                                   \
    do {                                                                                                     \
        __m256i acc[R][N];                                                                                   \
        UNROLL for (int a = 0; a < R; a++) UNROLL for (int i = 0; i < N; i++) acc[a][i] = _mm256_setzero_si256(); \
        long j = 0;                                                                                          \
        for (; j + 16 <= k; j += 16) {                                                                       \
            const char *ahead = (const char *)(t + (r) * k) + ROWS_PREFETCH + j * R;                        \
            __builtin_prefetch(ahead);                                                                       \
            if (R * 16 >= 64) __builtin_prefetch(ahead + 64);                                                \
            __m256i xv[N];                                                                                   \
            UNROLL for (int i = 0; i < N; i++) xv[i] = _mm256_loadu_si256((const __m256i *)(xq + i * k + j)); \
            UNROLL for (int a = 0; a < R; a++) {                                                             \
                __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(t + ((r) + a) * k + j))); \
                UNROLL for (int i = 0; i < N; i++)                                                           \
                    acc[a][i] = _mm256_add_epi32(acc[a][i], _mm256_madd_epi16(wv, xv[i]));                  \
            }                                                                                                \
        }                                                                                                    \
        UNROLL for (int a = 0; a < R; a++) {                                                                 \
            UNROLL for (int i = 0; i < N; i++) {                                                             \
                int32_t total = hsum8i(acc[a][i]);                                                           \
                for (long jj = j; jj < k; jj++) total += (int32_t)t[((r) + a) * k + jj] * xq[i * k + jj];    \
                STORE_ROW(i, (r) + a, (float)total * xs[i]);                                                 \
            }                                                                                                \
        }                                                                                                    \
    } while (0)

#define Q8I_KERNEL(R, N)                                                                                     \
    static AVX2_F16C void q8i_rows_##R##_##N(const int8_t *t, long k, const int16_t *xq, const float *xs,    \
                                             float *o, long ldo, const float *bias, int add,                 \
                                             const float *scale, long r0, long r1) {                         \
        long r = r0;                                                                                         \
        for (; r + R <= r1; r += R) Q8I_BLOCK(R, N, r);                                                      \
        for (; r < r1; r++) Q8I_BLOCK(1, N, r);                                                              \
    }
Q8I_KERNEL(8, 1)
Q8I_KERNEL(4, 2)
Q8I_KERNEL(4, 3)
Q8I_KERNEL(2, 4)
Q8I_KERNEL(2, 5)
Q8I_KERNEL(2, 6)
Q8I_KERNEL(1, 7)
Q8I_KERNEL(1, 8)
typedef void (*q8i_rows_fn)(const int8_t *, long, const int16_t *, const float *, float *, long, const float *,
                            int, const float *, long, long);
static const q8i_rows_fn q8i_rows_for[LOGITS_MAX_N + 1] = {
    NULL, q8i_rows_8_1, q8i_rows_4_2, q8i_rows_4_3, q8i_rows_2_4,
    q8i_rows_2_5, q8i_rows_2_6, q8i_rows_1_7, q8i_rows_1_8,
};

/* out columns r0 .. r1 (row stride ldo) of xq (n x k, int16, n <= LOGITS_MAX_N, steps xs) times
 * the int8 rows t (a scale each)^T, as rows_q8_int16 after rounding its inputs. */
AVX2_F16C void q8i_rows(const int8_t *t, const float *scale, long k, const int16_t *xq, const float *xs, long n,
                        float *out, long ldo, const float *bias, int add, long r0, long r1) {
    q8i_rows_for[n](t, k, xq, xs, out, ldo, bias, add, scale, r0, r1);
}
#endif

/* 1 where rows_q8_int16 runs: AVX2 without AVX-512 (whose 16-wide float kernel stays). */
int rows_q8_int16_supported(void) { return have_avx2_fma() && !have_avx512(); }

/* rows_q8 by integer products (above); STATUS_UNSUPPORTED where it cannot run or n is
 * out of range, STATUS_NO_MEMORY. */
int rows_q8_int16(const int8_t *table, const float *scale, long k, const float *x, long n, float *out, long ldo,
                  const float *bias, int add, long r0, long r1) {
#ifdef X86_KERNELS
    if (!rows_q8_int16_supported() || n < 1 || n > LOGITS_MAX_N) return STATUS_UNSUPPORTED;
    float xs[LOGITS_MAX_N];
    int16_t *xq = malloc(sizeof(int16_t) * n * k);
    if (!xq) return STATUS_NO_MEMORY;
    q8i_inputs(x, n, k, xq, xs);
    q8i_rows(table, scale, k, xq, xs, n, out, ldo, bias, add, r0, r1);
    free(xq);
    return STATUS_OK;
#else
    (void)table; (void)scale; (void)k; (void)x; (void)n; (void)out; (void)ldo; (void)bias; (void)add; (void)r0;
    (void)r1;
    return STATUS_UNSUPPORTED;
#endif
}

/* x (n x k) times the int8 table (rows x k)^T -> out (n x rows), by rows_q8_int16 on one
 * thread: for tests against a reference. A STATUS_. */
int product_q8_int16(const int8_t *table, const float *scale, long rows, long k, const float *x, long n,
                     float *out) {
    return rows_q8_int16(table, scale, k, x, n, out, rows, NULL, 0, 0, rows);
}

/* w (rows x k, float32, or float16 when `half`), each column times columns[j] when given,
 * as int8 rows q with a scale each: the row's largest magnitude maps to 127, values round
 * to nearest (a row of zeros gets scale 1). With `dot_with`, dots[r] = the row (as given)
 * . dot_with: a norm's bias carried through the table, in the same pass. */
struct quantize_part {
    const void *w;
    int half;
    const float *columns, *dot_with;
    float *dots;
    long k, r0, r1;
    int8_t *q;
    float *scale;
};

#ifdef X86_KERNELS
static AVX2_F16C __attribute__((noinline)) void widen_half(const uint16_t *src, float *dst, long k) {
    long j = 0;
    for (; j + 8 <= k; j += 8) _mm256_storeu_ps(dst + j, LOAD8_F16(src + j));
    for (; j < k; j++) dst[j] = _cvtsh_ss(src[j]);
}
#else
static void widen_half(const uint16_t *src, float *dst, long k) { /* IEEE binary16, by bits */
    for (long j = 0; j < k; j++) {
        uint32_t h = src[j], sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
        if (e == 0) {
            float v = (float)m * (1.0f / 16777216.0f); /* subnormal: m * 2^-24 */
            memcpy(&bits, &v, 4);
            bits |= sign;
        } else
            bits = sign | ((e == 31 ? 255u : e + 112u) << 23) | (m << 13);
        memcpy(dst + j, &bits, 4);
    }
}
#endif

static CLONES void quantize_part(const struct quantize_part *p) {
    float *row = malloc(sizeof(float) * p->k);
    if (!row) return;
    for (long r = p->r0; r < p->r1; r++) {
        if (p->half)
            widen_half((const uint16_t *)p->w + r * p->k, row, p->k);
        else
            memcpy(row, (const float *)p->w + r * p->k, sizeof(float) * p->k);
        if (p->dot_with) {
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (long j = 0; j < p->k; j++) dot += row[j] * p->dot_with[j];
            p->dots[r] = dot;
        }
        float peak = 0.0f;
#pragma omp simd reduction(max : peak)
        for (long j = 0; j < p->k; j++) {
            if (p->columns) row[j] *= p->columns[j];
            float a = row[j] < 0.0f ? -row[j] : row[j];
            peak = a > peak ? a : peak;
        }
        float scale = peak > 0.0f ? peak / 127.0f : 1.0f, inv = 1.0f / scale;
        p->scale[r] = scale;
        int8_t *out = p->q + r * p->k;
#pragma omp simd
        for (long j = 0; j < p->k; j++) {
            float v = nearbyintf(row[j] * inv);
            out[j] = (int8_t)(v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v));
        }
    }
    free(row);
}

static void *quantize_part_run(void *arg) {
    quantize_part(arg);
    return NULL;
}

void quantize_rows_q8(const void *w, int half, const float *columns, const float *dot_with, float *dots, long rows,
                      long k, int8_t *q, float *scale, int threads) {
    struct quantize_part parts[MAX_THREADS];
    threads = thread_count(threads);
    for (int i = 0; i < threads; i++)
        parts[i] = (struct quantize_part){w,    half, columns, dot_with, dots, k, rows * i / threads,
                                          rows * (i + 1) / threads, q, scale};
    run_jobs(quantize_part_run, parts, sizeof parts[0], threads);
}

/* x (n x k) times the int8 table (rows x k, a scale per row)^T -> out (n x rows): the
 * row kernel alone, for tests against a reference. 0, or -1 when n is out of range. */
int product_q8(const int8_t *table, const float *scale, long rows, long k, const float *x, long n, float *out) {
    if (n < 1 || n > LOGITS_MAX_N) return STATUS_UNSUPPORTED;
    rows_q8(table, scale, k, x, n, out, rows, NULL, 0, 0, rows);
    return 0;
}

static void *logits_part_run(void *arg) {
    struct logits_part *p = arg;
    rows_f16(p->table, p->k, p->x, p->n, p->out, p->ldo, NULL, 0, p->r0, p->r1);
    return NULL;
}

/* 0 on success; -1 when the kernel cannot run here or n is out of range. */
int logits_f16(const uint16_t *table, long rows, long k, const float *x, long n, float *out, int threads) {
    if (!have_f16c() || n < 1 || n > LOGITS_MAX_N) return STATUS_UNSUPPORTED;
    struct logits_part parts[MAX_THREADS];
    threads = thread_count(threads);
    for (int i = 0; i < threads; i++)
        parts[i] = (struct logits_part){table, k, x, n, out, rows, rows * i / threads, rows * (i + 1) / threads};
    run_jobs(logits_part_run, parts, sizeof parts[0], threads);
    return 0;
}

/* ---------------------------------------------------------------- attention, D = 64

 * The same attention as attention_heads for heads of 64 values (every Whisper
 * model), without the BLAS: OpenBLAS runs the (T x 64) by (64 x S) score product
 * at 50-100 GF/s here, well under what its larger products reach, because K = 64
 * is short. Query rows go six at a time: their scores against every key (a 6 x P
 * register block over panels of P keys, the kernel shape BLIS uses), the softmax while
 * those scores are still in cache, then their product with the values (6 x P blocks
 * again), normalised on the way out.
 *
 * Two builds of the inner kernel: AVX2 (P = 16) and AVX-512 (P = 32, twice the work
 * an instruction). Each value's multiply-adds run in the same order in both, so they
 * give the same values, bit for bit (tested).
 *
 * Up to ATT_GROUP blocks of six rows go together: each panel of keys, and each tile of
 * ATT_TILE values, is read once for the whole group while it is in the cache. Every
 * head's queries, keys and values are packed first (the heads split over the threads):
 * keys in panels of P, values in chunks of P columns, from any layout attention_heads
 * takes. Then the threads split all heads' row blocks between them. Same arguments as
 * attention_heads, less the sgemm and the scratch; returns STATUS_UNSUPPORTED where
 * the CPU lacks AVX2 + FMA.
 *
 * An encoder layer (1500 x 1500, 6 heads), one thread, interleaved in one process:
 * 95 ms with AVX2 alone, 65 with AVX-512.
 */

#ifdef X86_KERNELS
enum { ATT_D = 64, ATT_ROWS = 6, ATT_GROUP = 8, ATT_TILE = 256 };

struct att_job {
    long heads, t, s, t_pad, s_pad;
    float scale;
    const float *q, *k, *v; /* as attention_d64 takes them */
    long q_head, ldq, k_head, ldk, v_head, ldv;
    int k_rows_are_d, v_rows_are_d;
    float *qp, *kp, *vp;    /* packed: (heads, t_pad, 64), (heads, s_pad / P, 64, P), (heads, 64 / P, s, P) */
    const float *mask;
    float *out;
    long ldo;
    long w0, w1;            /* packing: heads [w0, w1); attention: (head, block) items [w0, w1) */
};

/* The group's scores (g * 6 rows of s_pad) get the mask and -inf past s, then their
 * softmax numerators; sums gets each row's sum. */
static void att_softmax(const struct att_job *j, long i0, long g, float *sc, float *sums) {
    for (long k = 0; k < g * ATT_ROWS; k++) {
        float *row = sc + k * j->s_pad;
        if (j->mask && i0 + k < j->t)
            for (long c = 0; c < j->s; c++) row[c] += j->mask[(i0 + k) * j->s + c];
        for (long c = j->s; c < j->s_pad; c++) row[c] = -__builtin_inff();
    }
    softmax_rows_exp(sc, g * ATT_ROWS, j->s_pad, j->s_pad, sums);
}

/* The group's rows of out (head h): acc over the softmax's sums. */
static void att_store(const struct att_job *j, long h, long i0, long g, const float *acc, const float *sums) {
    for (long k = 0; k < g * ATT_ROWS && i0 + k < j->t; k++) {
        float inv = sums[k] > 0.0f ? 1.0f / sums[k] : 0.0f; /* a fully masked row gives zeros */
        float *o = j->out + (i0 + k) * j->ldo + h * ATT_D;
        for (long c = 0; c < ATT_D; c++) o[c] = acc[k * ATT_D + c] * inv;
    }
}

/* One build of the kernel: vectors VEC of W floats, panels of P = 2 W.
 *
 * mul_6xP: c (6 x P, row stride ldc) = init (6 x P, row stride ldc; zeros when NULL)
 * plus a (6 x n, row stride lda) times b (n x P, row stride ldb), in 12 accumulators.
 * att_pack_P: heads [w0, w1) packed. att_run_P: the job's (head, block) items. */
#define ATT_BUILD(P, TARGET, VEC, W, LOAD, STORE, ZERO, SET1, FMADD)                                          \
    static inline TARGET __attribute__((always_inline)) void mul_6x##P(                                       \
        const float *a, long lda, const float *b, long ldb, long n, float *c, long ldc, const float *init) {  \
        VEC acc[ATT_ROWS][2];                                                                                 \
        for (int r = 0; r < ATT_ROWS; r++) {                                                                  \
            acc[r][0] = init ? LOAD(init + r * ldc) : ZERO();                                                 \
            acc[r][1] = init ? LOAD(init + r * ldc + W) : ZERO();                                             \
        }                                                                                                     \
        for (long i = 0; i < n; i++) {                                                                        \
            VEC b0 = LOAD(b + i * ldb), b1 = LOAD(b + i * ldb + W);                                           \
            UNROLL for (int r = 0; r < ATT_ROWS; r++) {                                                       \
                VEC x = SET1(a[r * lda + i]);                                                                 \
                acc[r][0] = FMADD(x, b0, acc[r][0]);                                                          \
                acc[r][1] = FMADD(x, b1, acc[r][1]);                                                          \
            }                                                                                                 \
        }                                                                                                     \
        for (int r = 0; r < ATT_ROWS; r++) {                                                                  \
            STORE(c + r * ldc, acc[r][0]);                                                                    \
            STORE(c + r * ldc + W, acc[r][1]);                                                                \
        }                                                                                                     \
    }                                                                                                         \
                                                                                                              \
    static void *att_pack_##P(void *arg) {                                                                    \
        const struct att_job *j = arg;                                                                        \
        const long s = j->s;                                                                                  \
        for (long h = j->w0; h < j->w1; h++) {                                                                \
            const float *qh = j->q + h * j->q_head, *kh = j->k + h * j->k_head, *vh = j->v + h * j->v_head;   \
            float *qp = j->qp + h * j->t_pad * ATT_D, *kp = j->kp + h * j->s_pad * ATT_D,                     \
                  *vp = j->vp + h * s * ATT_D;                                                                \
            for (long i = 0; i < j->t; i++)                                                                   \
                for (long d = 0; d < ATT_D; d++) qp[i * ATT_D + d] = qh[i * j->ldq + d] * j->scale;           \
            /* Packing reads along the operands' rows (the cross-attention's lie transposed). */              \
            if (j->k_rows_are_d)                                                                              \
                for (long d = 0; d < ATT_D; d++)                                                              \
                    for (long c = 0; c < s; c++) kp[(c / P) * ATT_D * P + d * P + c % P] = kh[d * j->ldk + c]; \
            else                                                                                              \
                for (long c = 0; c < s; c++)                                                                  \
                    for (long d = 0; d < ATT_D; d++) kp[(c / P) * ATT_D * P + d * P + c % P] = kh[c * j->ldk + d]; \
            if (j->v_rows_are_d)                                                                              \
                for (long d = 0; d < ATT_D; d++)                                                              \
                    for (long c = 0; c < s; c++) vp[(d / P) * P * s + c * P + d % P] = vh[d * j->ldv + c];    \
            else                                                                                              \
                for (long c = 0; c < s; c++)                                                                  \
                    for (long d = 0; d < ATT_D; d++) vp[(d / P) * P * s + c * P + d % P] = vh[c * j->ldv + d]; \
        }                                                                                                     \
        return NULL;                                                                                          \
    }                                                                                                         \
                                                                                                              \
    static TARGET void att_group_##P(const struct att_job *j, long h, long b, long g, float *sc, float *acc) {  \
        const long s = j->s, s_pad = j->s_pad, stride = ATT_ROWS * s_pad;                                     \
        const float *qp = j->qp + (h * j->t_pad + b * ATT_ROWS) * ATT_D, *kp = j->kp + h * s_pad * ATT_D,     \
                    *vp = j->vp + h * s * ATT_D;                                                              \
        for (long p = 0; p < s_pad / P; p++)                                                                  \
            for (long k = 0; k < g; k++)                                                                      \
                mul_6x##P(qp + k * ATT_ROWS * ATT_D, ATT_D, kp + p * ATT_D * P, P, ATT_D,                     \
                          sc + k * stride + p * P, s_pad, NULL);                                              \
        float sums[ATT_GROUP * ATT_ROWS];                                                                     \
        att_softmax(j, b * ATT_ROWS, g, sc, sums);                                                            \
        for (long c0 = 0; c0 < s; c0 += ATT_TILE) {                                                           \
            long n = s - c0 < ATT_TILE ? s - c0 : ATT_TILE;                                                   \
            for (long d = 0; d < ATT_D; d += P) /* the values' chunk of P columns lies row after row */       \
                for (long k = 0; k < g; k++) {                                                                \
                    float *a = acc + k * ATT_ROWS * ATT_D + d;                                                \
                    mul_6x##P(sc + k * stride + c0, s_pad, vp + d * s + c0 * P, P, n, a, ATT_D, c0 ? a : NULL); \
                }                                                                                             \
        }                                                                                                     \
        att_store(j, h, b * ATT_ROWS, g, acc, sums);                                                          \
    }                                                                                                         \
                                                                                                              \
    static void *att_run_##P(void *arg) {                                                                     \
        const struct att_job *j = arg;                                                                        \
        const long blocks = j->t_pad / ATT_ROWS;                                                              \
        float *sc = malloc(sizeof(float) * ATT_GROUP * ATT_ROWS * j->s_pad);                                  \
        float *acc = malloc(sizeof(float) * ATT_GROUP * ATT_ROWS * ATT_D);                                    \
        void *failed = sc && acc ? NULL : (void *)1;                                                          \
        for (long w = j->w0; !failed && w < j->w1;) {                                                         \
            long h = w / blocks, b = w % blocks, g = blocks - b;                                              \
            g = g < ATT_GROUP ? g : ATT_GROUP;                                                                \
            g = g < j->w1 - w ? g : j->w1 - w;                                                                \
            att_group_##P(j, h, b, g, sc, acc);                                                               \
            w += g;                                                                                           \
        }                                                                                                     \
        free(sc);                                                                                             \
        free(acc);                                                                                            \
        return failed;                                                                                        \
    }

ATT_BUILD(16, AVX2_FMA, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_setzero_ps, _mm256_set1_ps,
          _mm256_fmadd_ps)
ATT_BUILD(32, __attribute__((target("avx512f"))), __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps,
          _mm512_setzero_ps, _mm512_set1_ps, _mm512_fmadd_ps)

#endif

/* Which build attention_d64 runs: 0 picks by the CPU (the default), 16 or 32 forces one
 * (the tests compare them). Defined in every build, as native.py expects every function. */
static int att_panel_forced = 0;
void attention_d64_panel(int panel) { att_panel_forced = panel; }

int attention_d64(long heads, long t, long s, float scale,
                  const float *q, long q_head, long ldq,
                  const float *k, long k_head, long ldk, int k_rows_are_d,
                  const float *v, long v_head, long ldv, int v_rows_are_d,
                  float *out, long ldo, const float *mask, int threads) {
#ifdef X86_KERNELS
    if (!have_avx2_fma() || t < 1 || s < 1) return STATUS_UNSUPPORTED;
    const int wide = att_panel_forced ? att_panel_forced == 32 : __builtin_cpu_supports("avx512f");
    const long P = wide ? 32 : 16, blocks = (t + ATT_ROWS - 1) / ATT_ROWS;
    struct att_job job = {heads, t, s, blocks * ATT_ROWS, (s + P - 1) / P * P, scale, q, k, v, q_head, ldq,
                          k_head, ldk, v_head, ldv, k_rows_are_d, v_rows_are_d, NULL, NULL, NULL, mask, out, ldo,
                          0, 0};
    job.qp = calloc((size_t)heads * job.t_pad * ATT_D, sizeof(float));
    job.kp = calloc((size_t)heads * job.s_pad * ATT_D, sizeof(float));
    job.vp = malloc(sizeof(float) * heads * s * ATT_D);
    int status = STATUS_OK;
    if (!job.qp || !job.kp || !job.vp) {
        status = STATUS_NO_MEMORY;
        goto done;
    }
    struct att_job jobs[MAX_THREADS];
    int n = thread_count(threads) < heads ? thread_count(threads) : (int)heads;
    for (int i = 0; i < n; i++) {
        jobs[i] = job;
        jobs[i].w0 = heads * i / n, jobs[i].w1 = heads * (i + 1) / n;
    }
    run_jobs(wide ? att_pack_32 : att_pack_16, jobs, sizeof jobs[0], n);
    long items = heads * blocks;
    n = thread_count(threads) < items ? thread_count(threads) : (int)items;
    for (int i = 0; i < n; i++) {
        jobs[i] = job;
        jobs[i].w0 = items * i / n, jobs[i].w1 = items * (i + 1) / n;
    }
    if (run_jobs(wide ? att_run_32 : att_run_16, jobs, sizeof jobs[0], n)) status = STATUS_NO_MEMORY;
done:
    free(job.qp);
    free(job.kp);
    free(job.vp);
    return status;
#else
    (void)heads; (void)t; (void)s; (void)scale; (void)q; (void)q_head; (void)ldq; (void)k; (void)k_head;
    (void)ldk; (void)k_rows_are_d; (void)v; (void)v_head; (void)ldv; (void)v_rows_are_d; (void)out; (void)ldo;
    (void)mask; (void)threads;
    return STATUS_UNSUPPORTED;
#endif
}

/* An LSTM cell (PyTorch's gate order: input, forget, cell, output) run over n steps
 * from state (2 x h: hidden, cell; left at the last step's): gates_in (n x 4h) holds each step's input product and biases,
 * whh_t (h x 4h) the recurrent weights transposed; out (n x h) gets the hidden states. For the
 * speech detector (subtitler/engine/silero.py): one call for a whole recording. */
/* exp_cephes has no upper clamp: past 88 its exponent bits overflow, so the argument stays below. */
static inline __attribute__((always_inline)) float sigmoid_c(float x) {
    return 1.0f / (1.0f + exp_cephes(-(x > -80.0f ? x : -80.0f)));
}

#define LSTM_LANES 64

/* g (4h) = gates_in + whh' hid for one step; whh_p as lstm_sequence takes it. Each gate
 * sums over k in order, one multiply-add at a time (fused where the CPU has FMA): the
 * same values from every build with FMA. */
static void lstm_gates(const float *restrict gates_in, const float *restrict whh_p, long h, const float *restrict hid,
                       float *restrict g) {
    for (long r0 = 0; r0 < 4 * h; r0 += LSTM_LANES) {
        const long m = 4 * h - r0 < LSTM_LANES ? 4 * h - r0 : LSTM_LANES;
        const float *restrict block = whh_p + r0 * h;
        for (long r = 0; r < m; r++) g[r0 + r] = gates_in[r0 + r];
        for (long k = 0; k < h; k++)
            for (long r = 0; r < m; r++) g[r0 + r] += block[k * m + r] * hid[k];
    }
}

#ifdef X86_KERNELS
/* lstm_gates with the accumulators in registers: LANES gates (two blocks with AVX-512,
 * one with AVX2) as 8 vectors, so that 8 multiply-add chains overlap. Whole blocks of
 * LSTM_LANES only; the rest by lstm_gates. */
#define LSTM_BUILD(NAME, TARGET, VEC, W, LOAD, STORE, SET1, FMADD)                                          \
    static TARGET long NAME(const float *gates_in, const float *whh_p, long h, const float *hid, float *g) { \
        enum { PER_BLOCK = LSTM_LANES / W, LANES = 8 * W };                                                  \
        long r0 = 0;                                                                                         \
        for (; r0 + LANES <= 4 * h; r0 += LANES) {                                                           \
            VEC acc[8];                                                                                      \
            for (int a = 0; a < 8; a++) acc[a] = LOAD(gates_in + r0 + a * W);                               \
            for (long k = 0; k < h; k++) {                                                                   \
                VEC x = SET1(hid[k]);                                                                        \
                UNROLL for (int a = 0; a < 8; a++) {                                                         \
                    const float *block = whh_p + (r0 + a / PER_BLOCK * LSTM_LANES) * h;                      \
                    acc[a] = FMADD(LOAD(block + k * LSTM_LANES + a % PER_BLOCK * W), x, acc[a]);             \
                }                                                                                            \
            }                                                                                                \
            for (int a = 0; a < 8; a++) STORE(g + r0 + a * W, acc[a]);                                      \
        }                                                                                                    \
        return r0;                                                                                           \
    }
LSTM_BUILD(lstm_gates_512, __attribute__((target("avx512f"))), __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps,
           _mm512_set1_ps, _mm512_fmadd_ps)
LSTM_BUILD(lstm_gates_256, AVX2_FMA, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps)
#endif

/* One step's activations (the gates in g, PyTorch's order: input, forget, cell, output)
 * and the state update, in one pass over the units. */
CLONES_WIDE static void lstm_update(float *restrict g, float *restrict cell, float *restrict hid, long h) {
#pragma omp simd
    for (long k = 0; k < h; k++) {
        const float i = sigmoid_c(g[k]), f = sigmoid_c(g[h + k]);
        const float c = 2.0f * sigmoid_c(2.0f * g[2 * h + k]) - 1.0f; /* tanh: the cell gate */
        const float o = sigmoid_c(g[3 * h + k]);
        cell[k] = f * cell[k] + i * c;
        hid[k] = o * (2.0f * sigmoid_c(2.0f * cell[k]) - 1.0f);
    }
}

/* whh_p: the recurrent weights in blocks of LSTM_LANES gates (the last block may be
 * narrower), each block's (h x lanes) weights contiguous, so that a step reads each
 * block as one sequential stream (_packed_recurrent in silero.py lays them out).
 * Per 4096 steps of Silero's (h = 128): 33 ms with the weights strided and the
 * accumulators in memory, 23-25 with them packed and in registers, 14-20 with each
 * step's activations and update in one pass (lstm_update; five passes before). Two
 * threads splitting the units and meeting at every step were no faster (15-20 ms). */
CLONES_WIDE int lstm_sequence(const float *gates_in, const float *restrict whh_p, long n, long h, float *out,
                         float *state) {
    float *restrict hid = calloc((size_t)h, sizeof(float)), *restrict cell = calloc((size_t)h, sizeof(float)),
          *restrict g = malloc(sizeof(float) * 4 * h);
    if (!hid || !cell || !g) {
        free(hid);
        free(cell);
        free(g);
        return STATUS_NO_MEMORY;
    }
    memcpy(hid, state, sizeof(float) * h);
    memcpy(cell, state + h, sizeof(float) * h);
#ifdef X86_KERNELS
    long (*fast)(const float *, const float *, long, const float *, float *) =
        have_avx512() ? lstm_gates_512 : have_avx2_fma() ? lstm_gates_256 : NULL;
#endif
    for (long t = 0; t < n; t++) {
        const float *gin = gates_in + t * 4 * h;
        long done = 0;
#ifdef X86_KERNELS
        if (fast) done = fast(gin, whh_p, h, hid, g);
#endif
        if (done < 4 * h) lstm_gates(gin + done, whh_p + done * h, h, hid, g + done);
        lstm_update(g, cell, hid, h);
        memcpy(out + t * h, hid, sizeof(float) * h);
    }
    memcpy(state, hid, sizeof(float) * h);
    memcpy(state + h, cell, sizeof(float) * h);
    free(hid);
    free(cell);
    free(g);
    return STATUS_OK;
}

/* The speech detector's STFT (silero.py): magnitudes of 256-sample frames, by FFT.
 *
 * Chunk c's row is audio[c * chunk, c * chunk + row) with its end reflected (no edge
 * repeated) out to where the frames reach; frame f starts at f * hop in it, is windowed,
 * and gives out[c][f * 129 + k] = |X_k|. The model computes this as products with its
 * windowed DFT basis (66 K multiply-adds a frame); a radix-2 FFT takes about 2 K. Each
 * pass runs STFT_LANES chunks at once, one per vector lane, and two frames as one
 * complex FFT (the first as the real part, the second as the imaginary), separated
 * after: X = (Z[k] + conj Z[N - k]) / 2, Y = (Z[k] - conj Z[N - k]) / 2i. */
enum { STFT_N = 256, STFT_BINS = STFT_N / 2 + 1, STFT_LANES = 16, STFT_TILE = STFT_N + 1 /* no 4K aliasing */ };

struct stft_job {
    const float *audio, *window;
    long first, last, chunk, row, frames, hop;
    float *out;
};

CLONES_WIDE static void *stft_run(void *arg) {
    const struct stft_job *job = arg;
    const long row = job->row, frames = job->frames, hop = job->hop;
    float twr[STFT_N / 2], twi[STFT_N / 2];
    for (int j = 0; j < STFT_N / 2; j++) {
        twr[j] = (float)cos(6.283185307179586 * j / STFT_N);
        twi[j] = (float)-sin(6.283185307179586 * j / STFT_N);
    }
    int rev[STFT_N]; /* bit-reversed order, in which the FFT reads its input */
    for (int i = 0; i < STFT_N; i++) {
        int r = 0;
        for (int b = 1, v = i; b < STFT_N; b <<= 1, v >>= 1) r = (r << 1) | (v & 1);
        rev[i] = r;
    }
    float z[2][STFT_N][STFT_LANES] __attribute__((aligned(64))); /* real, imaginary: [sample][chunk] */
    float tile[STFT_LANES * STFT_TILE] __attribute__((aligned(64)));
    float mag[2][STFT_BINS][STFT_LANES] __attribute__((aligned(64)));
    float (*re)[STFT_LANES] = z[0], (*im)[STFT_LANES] = z[1];
    for (long c0 = job->first; c0 < job->last; c0 += STFT_LANES) {
        const long lanes = job->last - c0 < STFT_LANES ? job->last - c0 : STFT_LANES;
        for (long f = 0; f < frames; f += 2) {
            for (int p = 0; p < 2; p++) { /* frame f + p's windowed samples into z[p], a chunk a lane */
                const long off = hop * (f + p), stop = row - off < STFT_N ? row - off : STFT_N;
                for (long l = 0; l < STFT_LANES; l++) {
                    const float *s = job->audio + (c0 + (l < lanes ? l : lanes - 1)) * job->chunk + off;
                    float *t = tile + l * STFT_TILE;
#pragma omp simd
                    for (long i = 0; i < stop; i++) t[i] = s[i] * job->window[i];
                    for (long i = stop; i < STFT_N; i++) t[i] = s[2 * (row - 1 - off) - i] * job->window[i];
                }
                for (int i = 0; i < STFT_N; i++) {
                    float *restrict d = z[p][rev[i]];
#pragma omp simd
                    for (int l = 0; l < STFT_LANES; l++) d[l] = tile[l * STFT_TILE + i];
                }
            }
            for (int half = 1; half < STFT_N; half *= 2) { /* decimation in time */
                const int step = STFT_N / 2 / half;
                for (int s = 0; s < STFT_N; s += 2 * half)
                    for (int j = 0; j < half; j++) {
                        const float wr = twr[j * step], wi = twi[j * step];
                        float *restrict ar = re[s + j], *restrict ai = im[s + j], *restrict br = re[s + j + half],
                                        *restrict bi = im[s + j + half];
#pragma omp simd
                        for (int l = 0; l < STFT_LANES; l++) {
                            const float tr = br[l] * wr - bi[l] * wi, ti = br[l] * wi + bi[l] * wr;
                            br[l] = ar[l] - tr;
                            bi[l] = ai[l] - ti;
                            ar[l] += tr;
                            ai[l] += ti;
                        }
                    }
            }
            for (int k = 0; k < STFT_BINS; k++) {
                const int m = (STFT_N - k) % STFT_N;
#pragma omp simd
                for (int l = 0; l < STFT_LANES; l++) {
                    const float a = re[k][l], b = im[k][l], c = re[m][l], d = im[m][l];
                    mag[0][k][l] = 0.5f * __builtin_sqrtf((a + c) * (a + c) + (b - d) * (b - d));
                    mag[1][k][l] = 0.5f * __builtin_sqrtf((a - c) * (a - c) + (b + d) * (b + d));
                }
            }
            for (long l = 0; l < lanes; l++)
                for (int p = 0; p < 2; p++) {
                    float *o = job->out + (c0 + l) * frames * STFT_BINS + (f + p) * STFT_BINS;
                    for (int k = 0; k < STFT_BINS; k++) o[k] = mag[p][k][l];
                }
        }
    }
    return NULL;
}

/* out (n x frames * 129): the magnitudes for n chunks (see above); frames even, and the
 * reflection shorter than the row. Split over threads by chunks. */
void stft_magnitudes_fft(const float *audio, long n, long chunk, long row, long frames, long hop,
                         const float *window, float *out, int threads) {
    struct stft_job jobs[MAX_THREADS];
    int count = thread_count(threads);
    long per = (n + count - 1) / count;
    per = (per + STFT_LANES - 1) / STFT_LANES * STFT_LANES;
    int used = 0;
    for (long first = 0; first < n && used < count; first += per, used++)
        jobs[used] = (struct stft_job){audio, window, first, first + per < n ? first + per : n, chunk, row, frames, hop, out};
    if (used) run_jobs(stft_run, jobs, sizeof jobs[0], used);
}

/* Median of 7 along each row of x (rows x n, contiguous) into out, the row reflected at
 * its ends (numpy's "reflect": no edge repeated), as timing._median_filter computes it:
 * a 16-exchange sorting network per value, over eight values at a time. n >= 4. */
#define CSWAP(a, b) { float lo_ = a < b ? a : b, hi_ = a < b ? b : a; a = lo_; b = hi_; }
CLONES_WIDE void median7_rows(const float *x, long rows, long n, float *out) {
    float *p = malloc(sizeof(float) * (n + 6));
    if (!p) return;
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * n;
        for (long k = 0; k < 3; k++) {
            p[k] = row[3 - k];
            p[n + 3 + k] = row[n - 2 - k];
        }
        memcpy(p + 3, row, sizeof(float) * n);
        float *o = out + r * n;
#pragma omp simd
        for (long j = 0; j < n; j++) {
            float a0 = p[j], a1 = p[j + 1], a2 = p[j + 2], a3 = p[j + 3], a4 = p[j + 4], a5 = p[j + 5], a6 = p[j + 6];
            CSWAP(a0, a6) CSWAP(a2, a3) CSWAP(a4, a5)
            CSWAP(a0, a2) CSWAP(a1, a4) CSWAP(a3, a6)
            CSWAP(a0, a1) CSWAP(a2, a5) CSWAP(a3, a4)
            CSWAP(a1, a2) CSWAP(a4, a6)
            CSWAP(a2, a3) CSWAP(a4, a5)
            CSWAP(a1, a2) CSWAP(a3, a4) CSWAP(a5, a6)
            o[j] = a3;
        }
    }
    free(p);
}
#undef CSWAP

/* Dynamic time warping for word alignment: the minimum-cost monotonic path through
 * cost (n x m), as timing.dtw computes it in NumPy (the same recurrence, the same
 * tie-breaking: diagonal, then up, then left). rows/cols get the path (at most
 * n + m entries); returns its length, or STATUS_NO_MEMORY. */
long dtw_path(const float *cost, long n, long m, long *rows, long *cols) {
    long w = m + 1;
    double *acc = malloc(sizeof(double) * (n + 1) * w);
    signed char *trace = malloc((size_t)(n + 1) * w);
    if (!acc || !trace) {
        free(acc);
        free(trace);
        return STATUS_NO_MEMORY;
    }
    for (long k = 0; k < (n + 1) * w; k++) acc[k] = INFINITY;
    acc[0] = 0.0;
    for (long i = 1; i <= n; i++)
        for (long j = 1; j <= m; j++) {
            double c0 = acc[(i - 1) * w + j - 1], c1 = acc[(i - 1) * w + j], c2 = acc[i * w + j - 1], best = c0;
            signed char t = 0;
            if (c1 < best) best = c1, t = 1;
            if (c2 < best) best = c2, t = 2;
            acc[i * w + j] = (double)cost[(i - 1) * m + j - 1] + best;
            trace[i * w + j] = t;
        }
    for (long j = 0; j <= m; j++) trace[j] = 2;
    for (long i = 0; i <= n; i++) trace[i * w] = 1;
    long i = n, j = m, len = 0;
    while (i > 0 || j > 0) { /* backwards; reversed below */
        if (i >= 1 && j >= 1) rows[len] = i - 1, cols[len] = j - 1, len++;
        signed char t = trace[i * w + j];
        if (t == 0) i--, j--;
        else if (t == 1) i--;
        else j--;
    }
    for (long a = 0, b = len - 1; a < b; a++, b--) {
        long r = rows[a], c = cols[a];
        rows[a] = rows[b], cols[a] = cols[b], rows[b] = r, cols[b] = c;
    }
    free(acc);
    free(trace);
    return len;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels",
    "Vectorized exp (softmax rows) and erf GELU for the CPU; called through ctypes by cpu_ops.", -1, NULL,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
