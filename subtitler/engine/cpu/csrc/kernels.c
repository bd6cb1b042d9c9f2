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

/* Each row of x (rows x cols, row stride ld) becomes exp(row - max(row)), in place;
 * sums[i] gets the row's sum. A row of -inf stays 0 with a sum of 0. */
CLONES void softmax_rows_exp(float *x, long rows, long cols, long ld, float *sums) {
    for (long i = 0; i < rows; i++) {
        float *row = x + i * ld;
        float peak = -__builtin_inff();
#pragma omp simd reduction(max : peak)
        for (long j = 0; j < cols; j++) peak = row[j] > peak ? row[j] : peak;
        if (!(peak > -__builtin_inff())) peak = 0.0f;
#pragma omp simd
        for (long j = 0; j < cols; j++) row[j] = exp_cephes(row[j] - peak);
        float total = 0.0f;
#pragma omp simd reduction(+ : total)
        for (long j = 0; j < cols; j++) total += row[j];
        sums[i] = total;
    }
}

/* out = x * (1 + erf(x / sqrt 2)) / 2 over n values (out may be x). */
CLONES void gelu(const float *x, float *out, long n) {
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
ROWS_KERNELS(half_rows, uint16_t, LOAD8_F16, LOAD1_F16)
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
    half_rows_for[n](table, k, x, out, ldo, bias, add, r0, r1);
#else
    (void)table; (void)k; (void)x; (void)n; (void)out; (void)ldo; (void)bias; (void)add; (void)r0; (void)r1;
#endif
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
 * is short. Here each thread takes six query rows at a time: their scores against
 * every key (a 6 x 16 register block over 16-key panels, the kernel shape BLIS uses
 * on AVX2), the softmax while those 6 x S scores are still in cache, then their
 * product with the values (6 x 16 blocks again), normalised on the way out.
 * Keys and values are packed once per head (16-key panels; 16-column chunks),
 * from any layout attention_heads takes. Same arguments as attention_heads, less
 * the sgemm and the scratch; returns -1 where the CPU lacks AVX2 + FMA.
 */

#ifdef X86_KERNELS
enum { ATT_D = 64, ATT_ROWS = 6, ATT_PANEL = 16 };

struct att_job {
    const float *qp, *kp, *vp, *mask;
    float *out;
    long t, s, s_pad, ldo, col, b0, b1; /* row blocks [b0, b1) */
};

/* c (rows x 16, row stride ldc) = a (6 x n, row stride lda) times b (n x 16, row stride
 * ldb), each row times scale[r] when scale is given: 12 accumulators in registers. */
static inline AVX2_FMA __attribute__((always_inline)) void mul_6x16(const float *a, long lda, const float *b,
                                                                   long ldb, long n, float *c, long ldc,
                                                                   const float *scale, long rows) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
           c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
           c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
           c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (long i = 0; i < n; i++) {
        __m256 b0 = _mm256_loadu_ps(b + i * ldb), b1 = _mm256_loadu_ps(b + i * ldb + 8), x;
        x = _mm256_broadcast_ss(a + 0 * lda + i); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a + 1 * lda + i); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a + 2 * lda + i); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a + 3 * lda + i); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a + 4 * lda + i); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a + 5 * lda + i); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    __m256 acc[ATT_ROWS][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (long r = 0; r < rows; r++) {
        __m256 f = _mm256_set1_ps(scale ? scale[r] : 1.0f);
        _mm256_storeu_ps(c + r * ldc, _mm256_mul_ps(acc[r][0], f));
        _mm256_storeu_ps(c + r * ldc + 8, _mm256_mul_ps(acc[r][1], f));
    }
}

/* Scores (6 x s_pad, row stride s_pad) of six packed query rows against every panel of 16 keys. */
static AVX2_FMA void att_block_scores(const float *qp, const float *kp, long panels, float *sc, long s_pad) {
    for (long p = 0; p < panels; p++)
        mul_6x16(qp, ATT_D, kp + p * ATT_D * ATT_PANEL, ATT_PANEL, ATT_D, sc + p * ATT_PANEL, s_pad, NULL, ATT_ROWS);
}

/* out rows (16 columns at a time) = scores (6 x s) times values (s x 64), row r times inv[r]. */
static AVX2_FMA void att_block_values(const float *sc, long s_pad, const float *vp, long s, const float *inv,
                                      float *out, long ldo, long rows) {
    for (long c = 0; c < ATT_D; c += 16)  /* the values' chunk of 16 columns lies row after row */
        mul_6x16(sc, s_pad, vp + c * s, 16, s, out + c, ldo, inv, rows);
}

static void *att_job_run(void *arg) {
    struct att_job *j = arg;
    float *sc = malloc(sizeof(float) * ATT_ROWS * j->s_pad);
    float sums[ATT_ROWS], inv[ATT_ROWS];
    if (!sc) return (void *)1;
    for (long b = j->b0; b < j->b1; b++) {
        long i0 = b * ATT_ROWS, rows = j->t - i0 < ATT_ROWS ? j->t - i0 : ATT_ROWS;
        att_block_scores(j->qp + i0 * ATT_D, j->kp, j->s_pad / ATT_PANEL, sc, j->s_pad);
        for (long r = 0; r < ATT_ROWS; r++) {
            float *row = sc + r * j->s_pad;
            if (j->mask && r < rows)
                for (long c = 0; c < j->s; c++) row[c] += j->mask[(i0 + r) * j->s + c];
            for (long c = j->s; c < j->s_pad; c++) row[c] = -__builtin_inff();
        }
        softmax_rows_exp(sc, ATT_ROWS, j->s_pad, j->s_pad, sums);
        for (long r = 0; r < ATT_ROWS; r++) inv[r] = sums[r] > 0.0f ? 1.0f / sums[r] : 0.0f;
        att_block_values(sc, j->s_pad, j->vp, j->s, inv, j->out + i0 * j->ldo + j->col, j->ldo, rows);
    }
    free(sc);
    return NULL;
}

#endif

int attention_d64(long heads, long t, long s, float scale,
                  const float *q, long q_head, long ldq,
                  const float *k, long k_head, long ldk, int k_rows_are_d,
                  const float *v, long v_head, long ldv, int v_rows_are_d,
                  float *out, long ldo, const float *mask, int threads) {
#ifdef X86_KERNELS
    if (!have_avx2_fma() || t < 1 || s < 1) return STATUS_UNSUPPORTED;
    long blocks = (t + ATT_ROWS - 1) / ATT_ROWS, t_pad = blocks * ATT_ROWS;
    long s_pad = (s + ATT_PANEL - 1) / ATT_PANEL * ATT_PANEL;
    float *qp = calloc((size_t)t_pad * ATT_D, sizeof(float));
    float *kp = calloc((size_t)s_pad * ATT_D, sizeof(float));
    float *vp = malloc(sizeof(float) * s * ATT_D);
    int status = 0;
    if (!qp || !kp || !vp) {
        status = STATUS_NO_MEMORY;
        goto done;
    }
    threads = thread_count(threads);
    if (threads > blocks) threads = (int)blocks;
    for (long h = 0; h < heads; h++) {
        const float *qh = q + h * q_head, *kh = k + h * k_head, *vh = v + h * v_head;
        for (long i = 0; i < t; i++)
            for (long d = 0; d < ATT_D; d++) qp[i * ATT_D + d] = qh[i * ldq + d] * scale;
        /* Packing reads along the operands' rows (the cross-attention's lie transposed):
         * a 202-row prompt's cross-attention over 1500 positions, 6 heads, took 8.2-9.5 ms
         * packing against them, 6.2-6.8 along them (best of 40, four runs each). */
        if (k_rows_are_d)
            for (long d = 0; d < ATT_D; d++)
                for (long j = 0; j < s; j++)
                    kp[(j / ATT_PANEL) * ATT_D * ATT_PANEL + d * ATT_PANEL + j % ATT_PANEL] = kh[d * ldk + j];
        else
            for (long j = 0; j < s; j++)
                for (long d = 0; d < ATT_D; d++)
                    kp[(j / ATT_PANEL) * ATT_D * ATT_PANEL + d * ATT_PANEL + j % ATT_PANEL] = kh[j * ldk + d];
        if (v_rows_are_d)
            for (long d = 0; d < ATT_D; d++)
                for (long j = 0; j < s; j++) vp[(d / 16) * 16 * s + j * 16 + d % 16] = vh[d * ldv + j];
        else
            for (long j = 0; j < s; j++)
                for (long d = 0; d < ATT_D; d++) vp[(d / 16) * 16 * s + j * 16 + d % 16] = vh[j * ldv + d];
        struct att_job jobs[MAX_THREADS];
        for (int i = 0; i < threads; i++)
            jobs[i] = (struct att_job){qp, kp, vp, mask, out, t, s, s_pad, ldo, h * ATT_D,
                                       blocks * i / threads, blocks * (i + 1) / threads};
        if (run_jobs(att_job_run, jobs, sizeof jobs[0], threads)) status = STATUS_NO_MEMORY;
        if (status) break;
    }
done:
    free(qp);
    free(kp);
    free(vp);
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

CLONES_WIDE int lstm_sequence(const float *gates_in, const float *restrict whh_t, long n, long h, float *out,
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
    for (long t = 0; t < n; t++) {
        /* g = gates_in[t] + whh_t' hid, 64 gates at a time held in registers over all of
         * hid (the sum over k in the same order as one gate at a time). */
        for (long r0 = 0; r0 < 4 * h; r0 += LSTM_LANES) {
            const long m = 4 * h - r0 < LSTM_LANES ? 4 * h - r0 : LSTM_LANES;
            float acc[LSTM_LANES];
            memcpy(acc, gates_in + t * 4 * h + r0, sizeof(float) * m);
            if (m == LSTM_LANES) {
                for (long k = 0; k < h; k++) {
                    const float *restrict w = whh_t + k * 4 * h + r0;
                    const float x = hid[k];
#pragma omp simd
                    for (long r = 0; r < LSTM_LANES; r++) acc[r] += w[r] * x;
                }
            } else {
                for (long k = 0; k < h; k++)
                    for (long r = 0; r < m; r++) acc[r] += whh_t[k * 4 * h + r0 + r] * hid[k];
            }
            memcpy(g + r0, acc, sizeof(float) * m);
        }
#pragma omp simd
        for (long r = 0; r < 2 * h; r++) g[r] = sigmoid_c(g[r]); /* input and forget gates */
#pragma omp simd
        for (long r = 2 * h; r < 3 * h; r++) g[r] = 2.0f * sigmoid_c(2.0f * g[r]) - 1.0f; /* tanh: the cell gate */
#pragma omp simd
        for (long r = 3 * h; r < 4 * h; r++) g[r] = sigmoid_c(g[r]); /* output gate */
#pragma omp simd
        for (long k = 0; k < h; k++) {
            cell[k] = g[h + k] * cell[k] + g[k] * g[2 * h + k];
            hid[k] = g[3 * h + k] * (2.0f * sigmoid_c(2.0f * cell[k]) - 1.0f);
        }
        memcpy(out + t * h, hid, sizeof(float) * h);
    }
    memcpy(state, hid, sizeof(float) * h);
    memcpy(state + h, cell, sizeof(float) * h);
    free(hid);
    free(cell);
    free(g);
    return STATUS_OK;
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
