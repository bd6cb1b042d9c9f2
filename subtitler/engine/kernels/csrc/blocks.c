/*
 * Transformer blocks over many rows on the CPU, in one call: the audio encoder's
 * (1500 rows a window) and the text decoder's over a prompt (the initial tokens of a
 * window, up to a few hundred). For each block: layer norm, the fused query/key/value
 * product, self-attention (attention_d64; causal by `mask` in the decoder), the output
 * product added to the residual; in the decoder, layer norm and cross-attention over
 * the window's keys and values; then layer norm and the MLP with its GELU; and the
 * final layer norm when the model has one here. cpu_blocks.py holds the weights and
 * calls it through ctypes.
 *
 * The products go to the preloaded BLAS's sgemm (passed in), which runs them on its
 * own threads; biases and residuals ride on them (the output starts as the bias, or
 * as the residual plus the bias, and sgemm adds the product to it). Under MLX an
 * encoder block was some twenty operations, each a pass over memory of its own, and
 * each of the CPU kernels a round trip through a host copy.
 *
 * The norms and GELU run on this thread alone: after each product the BLAS's idle
 * workers busy-wait on the other core for a while (see _blas.rest_workers, which
 * `rest` is), so a second thread of ours would share a core with one of them. The
 * attention, which splits its rows over `threads`, rests them first.
 */
#include "common.h"

struct block_layer {
    const float *attn_ln_w, *attn_ln_b, *qkv_w, *qkv_b, *attn_out_w, *attn_out_b;
    /* cross-attention (the decoder; NULL in the encoder): keys and values (H, 64, S) */
    const float *cross_ln_w, *cross_ln_b, *cross_q_w, *cross_q_b, *cross_out_w, *cross_out_b;
    const float *cross_kt, *cross_vt;
    const float *mlp_ln_w, *mlp_ln_b, *mlp1_w, *mlp1_b, *mlp2_w, *mlp2_b;
    float *keys, *values; /* NULL, or (H, T, 64): this layer's self-attention keys and values, written */
    float *cross_q; /* NULL, or (T, C): this layer's cross-attention queries (unscaled), written (word timing) */
    /* int8 products (the int8 compute type; NULL otherwise, and the float32 *_w above are
     * then not read): weights (n x k), a scale per output row, and each row's sum */
    struct q8 {
        const int8_t *w;
        const float *scale;
        const int32_t *sum;
    } qkv_q, attn_out_q, cross_q_q, cross_out_q, mlp1_q, mlp2_q;
};

/* oneDNN's dnnl_gemm_u8s8s32, row-major: C = (A - ao)(B - bo) + beta C + co */
typedef int (*gemm_u8s8s32_fn)(char transa, char transb, char offsetc, int64_t m, int64_t n, int64_t k, float alpha,
                               const uint8_t *a, int64_t lda, uint8_t ao, const int8_t *b, int64_t ldb, int8_t bo,
                               float beta, int32_t *c, int64_t ldc, const int32_t *co);

struct blocks {
    long n_state, n_head, n_layer, n_audio; /* C, H, layers, S (cross-attention positions) */
    float eps;
    const float *ln_w, *ln_b; /* the final norm, or NULL */
    struct block_layer *layers;
    void *gemm_u8; /* the int8 products' integer product: dnnl_gemm_u8s8s32 (VNNI), q8_gemm (AVX2), or NULL */
    long int16_inputs; /* without gemm_u8: 1 for the int8 products by q8i_product (AVX2), 0 widened for sgemm */
};

/* ------------------------------------------------------------------ int8 products */

/* Scratch of the int8 products: the activations with a scale and zero point per row (in
 * u8 for oneDNN, in 11 bits for q8_gemm), the integer product, and (q8_gemm) the weights
 * packed in 16 bits. */
struct q8_scratch {
    uint8_t *a;
    int16_t *a16;
    float *scale;
    int32_t *zero, *c;
    int16_t *packed;
};

/* ---- q8_gemm: the integer product on AVX2 alone */

/* c (m x n, int32, row stride n) = a (m x k, 16-bit) times b (n x k, int8)^T, exactly, for
 * CPUs without VNNI (where oneDNN's u8 x s8 product adds pairs in 16 bits and saturates):
 * b widened to 16 bits, vpmaddwd adds each pair of products in 32: 16 products an instruction
 * against the FMA's 8, about 1.6x a cycle with the adds (benchmarks/README.md). With a's values within
 * Q8_A_TOP (2047) no sum over k <= 5120 (large-v3's widest) leaves int32, so the activations
 * get 11 bits where oneDNN's take 8: their rounding then moves the encoder's output less
 * than the int8 weights do. b is packed in panels of Q8_NR columns: for each pair of k, the
 * 16 columns' two values. */
enum { Q8_MR = 6, Q8_NR = 16, Q8_A_BLOCK = 192 * 1024 /* bytes of a's rows taken together */, Q8_A_TOP = 2047 };

/* 1 when q8_gemm runs for n columns of k on this CPU. */
static int q8_gemm_fits(long n, long k) { return have_avx2_fma() && n % Q8_NR == 0 && k % 2 == 0 && k <= 5120; }

#ifdef X86_KERNELS
/* panel p of b (n x k) into panel; its columns from n on are zeros */
static void q8_pack_panel(const int8_t *b, long n, long k, long p, int16_t *panel) {
    for (long i = 0; i < Q8_NR; i++) {
        if (p * Q8_NR + i >= n) {
            for (long q = 0; q < k / 2; q++) panel[q * 2 * Q8_NR + 2 * i] = panel[q * 2 * Q8_NR + 2 * i + 1] = 0;
            continue;
        }
        const int8_t *row = b + (p * Q8_NR + i) * k;
        for (long q = 0; q < k / 2; q++) {
            panel[q * 2 * Q8_NR + 2 * i] = row[2 * q];
            panel[q * 2 * Q8_NR + 2 * i + 1] = row[2 * q + 1];
        }
    }
}

/* panels p0 .. p1 of b (n x k, n a multiple of Q8_NR) into packed */
static void q8_pack(const int8_t *b, long n, long k, int16_t *packed, long p0, long p1) {
    for (long p = p0; p < p1; p++) q8_pack_panel(b, n, k, p, packed + p * Q8_NR * k);
}

/* c (Q8_MR x Q8_NR, row stride ldc) = a's rows (row stride lda) times one panel */
static AVX2_FMA void q8_tile(const int16_t *a, long lda, const int16_t *panel, long k, int32_t *c, long ldc) {
    __m256i acc[Q8_MR][2];
    UNROLL for (int r = 0; r < Q8_MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (long q = 0; q < k / 2; q++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(panel + q * 2 * Q8_NR)),
                b1 = _mm256_loadu_si256((const __m256i *)(panel + q * 2 * Q8_NR + Q8_NR));
        UNROLL for (int r = 0; r < Q8_MR; r++) {
            int32_t pair;
            memcpy(&pair, a + r * lda + 2 * q, sizeof pair);
            __m256i av = _mm256_set1_epi32(pair);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
        }
    }
    UNROLL for (int r = 0; r < Q8_MR; r++) {
        _mm256_storeu_si256((__m256i *)(c + r * ldc), acc[r][0]);
        _mm256_storeu_si256((__m256i *)(c + r * ldc + 8), acc[r][1]);
    }
}

/* rows r0 .. r1 of c (r0 a multiple of Q8_MR): a block of a's rows at a time (Q8_A_BLOCK
 * bytes of them, which stay in L2) against every panel. A last tile of fewer than Q8_MR
 * rows goes through `last` (Q8_MR x k: those rows, then zeros). */
static void q8_rows(const int16_t *a, const int16_t *packed, int32_t *c, long n, long k, long r0, long r1,
                    int16_t *last) {
    long block = Q8_A_BLOCK / (2 * k) / Q8_MR * Q8_MR, whole = r0 + (r1 - r0) / Q8_MR * Q8_MR;
    if (block < Q8_MR) block = Q8_MR;
    int32_t tail[Q8_MR * Q8_NR];
    if (whole < r1) {
        memcpy(last, a + whole * k, sizeof(int16_t) * (r1 - whole) * k);
        memset(last + (r1 - whole) * k, 0, sizeof(int16_t) * (Q8_MR - (r1 - whole)) * k);
    }
    for (long rb = r0; rb < r1; rb += block) {
        long rows = r1 - rb < block ? r1 - rb : block;
        for (long p = 0; p < n / Q8_NR; p++)
            for (long i = rb; i < rb + rows; i += Q8_MR) {
                int32_t *out = c + i * n + p * Q8_NR;
                if (i < whole) {
                    q8_tile(a + i * k, k, packed + p * Q8_NR * k, k, out, n);
                } else {
                    q8_tile(last, k, packed + p * Q8_NR * k, k, tail, Q8_NR);
                    for (long r = 0; r < r1 - i; r++) memcpy(out + r * n, tail + r * Q8_NR, sizeof tail[0] * Q8_NR);
                }
            }
    }
}
#endif

/* What q8_gemm's threads each do: pack their share of b's panels (phase 0), then their rows. */
struct q8_gemm_part {
    const int16_t *a;
    const int8_t *b;
    int32_t *c;
    int16_t *packed, *last;
    long n, k, p0, p1, r0, r1;
    int phase;
};

static void *q8_gemm_part_run(void *arg) {
#ifdef X86_KERNELS
    struct q8_gemm_part *p = arg;
    if (p->phase == 0)
        q8_pack(p->b, p->n, p->k, p->packed, p->p0, p->p1);
    else
        q8_rows(p->a, p->packed, p->c, p->n, p->k, p->r0, p->r1, p->last);
#else
    (void)arg;
#endif
    return NULL;
}

/* c (m x n) = a (m x k, 16-bit, each within Q8_A_TOP) times b (n x k, int8)^T, exact, over
 * `threads`; `packed` holds n x k 16-bit values. Returns a STATUS_ (UNSUPPORTED: no AVX2, n
 * not a multiple of 16, k odd or over 5120). */
static int q8_gemm_into(long m, long n, long k, const int16_t *a, const int8_t *b, int32_t *c, int16_t *packed,
                        int threads) {
    if (!q8_gemm_fits(n, k)) return STATUS_UNSUPPORTED;
    struct q8_gemm_part parts[MAX_THREADS];
    threads = thread_count(threads);
    long panels = n / Q8_NR, tiles = (m + Q8_MR - 1) / Q8_MR;
    int16_t *last = malloc(sizeof(int16_t) * threads * Q8_MR * k);
    if (!last) return STATUS_NO_MEMORY;
    for (int i = 0; i < threads; i++) {
        long r0 = tiles * i / threads * Q8_MR, r1 = tiles * (i + 1) / threads * Q8_MR;
        parts[i] = (struct q8_gemm_part){a, b, c, packed, last + i * Q8_MR * k, n, k,
                                         panels * i / threads, panels * (i + 1) / threads,
                                         r0 < m ? r0 : m, r1 < m ? r1 : m, 0};
    }
    run_jobs(q8_gemm_part_run, parts, sizeof parts[0], threads);
    for (int i = 0; i < threads; i++) parts[i].phase = 1;
    run_jobs(q8_gemm_part_run, parts, sizeof parts[0], threads);
    free(last);
    return STATUS_OK;
}

/* q8_gemm_into with its own packing buffer. blocks_forward takes its address in the place
 * of oneDNN's dnnl_gemm_u8s8s32 (struct blocks' gemm_u8) and then calls q8_gemm_into. */
int q8_gemm(long m, long n, long k, const int16_t *a, const int8_t *b, int32_t *c, int threads) {
    int16_t *packed = malloc(sizeof(int16_t) * n * k);
    if (!packed) return STATUS_NO_MEMORY;
    int status = q8_gemm_into(m, n, k, a, b, c, packed, threads);
    free(packed);
    return status;
}

/* 1 when q8_gemm runs on this CPU (for products whose n is a multiple of 16 and k even, up to 5120). */
int q8_gemm_supported(void) { return q8_gemm_fits(Q8_NR, 2); }

/* ---- q8i_product: rows rounded to int16 times int8 weights (AVX2 without AVX-512) */

#ifdef X86_KERNELS
/* o (rows x cols, row stride ldo) = a tile's integer products scaled back, plus the bias
 * (bias != NULL) or plus what o held (bias == NULL) */
static AVX2_FMA void q8_tile_out(const int32_t *tile, long rows, long cols, const float *as, const float *ws,
                                 const float *bias, float *o, long ldo) {
    for (long r = 0; r < rows; r++) {
        const float s = as[r];
        float *row = o + r * ldo;
        if (bias) {
#pragma omp simd
            for (long c = 0; c < cols; c++) row[c] = (float)tile[r * Q8_NR + c] * (s * ws[c]) + bias[c];
        } else {
#pragma omp simd
            for (long c = 0; c < cols; c++) row[c] += (float)tile[r * Q8_NR + c] * (s * ws[c]);
        }
    }
}
#endif

/* Up to this many rows q8i_product reads the weights once per eight rows, by the decoding
 * step's row kernel; from more, once, panel by panel (packing a panel costs about what 20 rows'
 * products over it do). A prompt of tiny.en's decoder, 3 rows: 5.6 ms by panels, 4.8 by rows;
 * 60 rows: 13.3 by panels, 14.3 by rows. */
enum { Q8I_BY_ROWS = 24 };

/* What q8i_product's threads each do: panels p0 .. p1 of the weights (columns of out), for every row. */
struct q8i_part {
    const int16_t *aq, *last; /* the rows rounded to int16; the last partial tile's rows, then zeros */
    const float *as, *ws, *bias;
    const int8_t *w;
    float *out;
    long m, n, k, p0, p1;
};

static void *q8i_part_run(void *arg) {
#ifdef X86_KERNELS
    const struct q8i_part *p = arg;
    const long k = p->k, n = p->n, whole = p->m / Q8_MR * Q8_MR;
    if (p->m <= Q8I_BY_ROWS) { /* the decoding step's row kernel, eight rows at a time, no packing */
        long r0 = p->p0 * Q8_NR, r1 = p->p1 * Q8_NR < n ? p->p1 * Q8_NR : n;
        for (long g = 0; g < p->m; g += LOGITS_MAX_N) {
            long rows = p->m - g < LOGITS_MAX_N ? p->m - g : LOGITS_MAX_N;
            q8i_rows(p->w, p->ws, k, p->aq + g * k, p->as + g, rows, p->out + g * n, n, p->bias, !p->bias, r0, r1);
        }
        return NULL;
    }
    int16_t *panel = malloc(sizeof(int16_t) * Q8_NR * k);
    if (!panel) return arg;
    int32_t tile[Q8_MR * Q8_NR];
    for (long j = p->p0; j < p->p1; j++) {
        q8_pack_panel(p->w, n, k, j, panel);
        const long c0 = j * Q8_NR, cols = n - c0 < Q8_NR ? n - c0 : Q8_NR;
        for (long i = 0; i < p->m; i += Q8_MR) {
            q8_tile(i < whole ? p->aq + i * k : p->last, k, panel, k, tile, Q8_NR);
            q8_tile_out(tile, p->m - i < Q8_MR ? p->m - i : Q8_MR, cols, p->as + i, p->ws + c0,
                        p->bias ? p->bias + c0 : NULL, p->out + i * n + c0, n);
        }
    }
    free(panel);
#else
    (void)arg;
#endif
    return NULL;
}

/* out (m x n) = a (m x k) times w (n x k, int8, a scale per row)^T plus bias, or, with bias
 * NULL, out += that product. a's rows are rounded to int16 as rows_q8_int16 rounds a decoding
 * step's (q8i_inputs: 15 bits up to k = 528), then multiplied by the step's row kernel (up to
 * Q8I_BY_ROWS rows) or by q8_tile, panel by panel of 16 weight rows, each packed by the thread
 * that uses it (so n is any, and nothing the size of w is written). The threads share out's
 * columns. Where rows_q8_int16 runs (else STATUS_UNSUPPORTED), for k even up to 5120. */
static int q8i_product(long m, long n, long k, const float *a, const int8_t *w, const float *wscale,
                       const float *bias, float *out, int threads) {
#ifdef X86_KERNELS
    if (!rows_q8_int16_supported() || m < 1 || n < 1 || k % 2 || k > 5120) return STATUS_UNSUPPORTED;
    threads = thread_count(threads);
    const long panels = (n + Q8_NR - 1) / Q8_NR, whole = m / Q8_MR * Q8_MR;
    int16_t *aq = malloc(sizeof(int16_t) * (m + Q8_MR) * k);
    float *as = malloc(sizeof(float) * m);
    int status = aq && as ? STATUS_OK : STATUS_NO_MEMORY;
    if (!status) {
        q8i_inputs(a, m, k, aq, as);
        int16_t *last = aq + m * k; /* the rows from `whole` on, then zeros: a whole tile */
        memcpy(last, aq + whole * k, sizeof(int16_t) * (m - whole) * k);
        memset(last + (m - whole) * k, 0, sizeof(int16_t) * (Q8_MR - (m - whole)) * k);
        struct q8i_part parts[MAX_THREADS];
        for (int i = 0; i < threads; i++)
            parts[i] = (struct q8i_part){aq, last, as, wscale, bias, w, out, m, n, k,
                                         panels * i / threads, panels * (i + 1) / threads};
        if (run_jobs(q8i_part_run, parts, sizeof parts[0], threads)) status = STATUS_NO_MEMORY;
    }
    free(aq);
    free(as);
    return status;
#else
    (void)m; (void)n; (void)k; (void)a; (void)w; (void)wscale; (void)bias; (void)out; (void)threads;
    return STATUS_UNSUPPORTED;
#endif
}

/* out (m x n) = a (m x k) times the int8 table w (n x k, a scale per row)^T plus bias (n): the
 * logits of many rows (word timing's text), the table read once for all of them where the
 * row kernel reads it once per eight rows. q8i_product; a STATUS_. */
int gemm_q8_int16(long m, long n, long k, const float *a, const int8_t *w, const float *wscale, const float *bias,
                  float *out, int threads) {
    return bias ? q8i_product(m, n, k, a, w, wscale, bias, out, threads) : STATUS_UNSUPPORTED;
}

struct q8_part {
    const float *a;
    long k, n, r0, r1;
    const struct q8 *w;
    struct q8_scratch *s;
    float *out;
    int phase; /* 0: quantize rows of a; 1: out += the rows' dequantized products */
};

static CLONES void q8_quantize(const struct q8_part *p) {
    for (long r = p->r0; r < p->r1; r++) {
        const float *row = p->a + r * p->k;
        float lo = 0.0f, hi = 0.0f; /* 0 stays exact: zero padding and sparse rows */
#pragma omp simd reduction(min : lo) reduction(max : hi)
        for (long j = 0; j < p->k; j++) { /* comparisons, not fminf: those stay calls into libm */
            float v = row[j];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        const float top = p->s->a16 ? (float)Q8_A_TOP : 255.0f;
        float scale = hi > lo ? (hi - lo) / top : 1.0f, inv = 1.0f / scale;
        float zero = nearbyintf(-lo * inv);
        p->s->scale[r] = scale;
        p->s->zero[r] = (int32_t)zero;
        if (p->s->a16) {
            int16_t *q = p->s->a16 + r * p->k;
#pragma omp simd
            for (long j = 0; j < p->k; j++) {
                float v = nearbyintf(row[j] * inv) + zero;
                q[j] = (int16_t)(v < 0.0f ? 0.0f : v > top ? top : v);
            }
        } else {
            uint8_t *q = p->s->a + r * p->k;
#pragma omp simd
            for (long j = 0; j < p->k; j++) {
                float v = nearbyintf(row[j] * inv) + zero;
                q[j] = (uint8_t)(v < 0.0f ? 0.0f : v > top ? top : v);
            }
        }
    }
}

static CLONES void q8_accumulate(const struct q8_part *p) {
    const float *ws = p->w->scale;
    const int32_t *wsum = p->w->sum;
    for (long r = p->r0; r < p->r1; r++) {
        const int32_t *c = p->s->c + r * p->n, z = p->s->zero[r];
        float *o = p->out + r * p->n, scale = p->s->scale[r];
#pragma omp simd
        for (long j = 0; j < p->n; j++) o[j] += scale * ws[j] * (float)(c[j] - z * wsum[j]);
    }
}

static void *q8_part_run(void *arg) {
    struct q8_part *p = arg;
    if (p->phase == 0)
        q8_quantize(p);
    else
        q8_accumulate(p);
    return NULL;
}

/* out (t x n) += a (t x k) times w (n x k)^T, w in int8: a's rows quantized (asymmetric,
 * a scale and zero point each: 8 bits for oneDNN (VNNI), 11 for q8_gemm (AVX2)), their
 * integer product, then dequantized. */
static int add_product_q8(const struct blocks *m, const float *a, long t, long k, const struct q8 *w, long n,
                          float *out, struct q8_scratch *s, int threads) {
    struct q8_part parts[MAX_THREADS];
    threads = thread_count(threads);
    for (int i = 0; i < threads; i++)
        parts[i] = (struct q8_part){a, k, n, t * i / threads, t * (i + 1) / threads, w, s, out, 0};
    run_jobs(q8_part_run, parts, sizeof parts[0], threads);
    const int32_t no_offset = 0;
    int status = m->gemm_u8 == (void *)q8_gemm
                     ? q8_gemm_into(t, n, k, s->a16, w->w, s->c, s->packed, threads)
                     : ((gemm_u8s8s32_fn)m->gemm_u8)('N', 'T', 'F', t, n, k, 1.0f, s->a, k, 0, w->w, k, 0, 0.0f,
                                                     s->c, n, &no_offset)
                           ? STATUS_UNSUPPORTED
                           : STATUS_OK;
    if (status) return status;
    for (int i = 0; i < threads; i++) parts[i].phase = 1;
    run_jobs(q8_part_run, parts, sizeof parts[0], threads);
    return STATUS_OK;
}


/* c (t x n) += a (t x k) times w (n x k)^T */
static void add_product(sgemm_fn sgemm, const float *a, long t, long k, const float *w, long n, float *c) {
    sgemm(ROW_MAJOR, NO_TRANS, TRANS, (int)t, (int)n, (int)k, 1.0f, a, (int)k, w, (int)k, 1.0f, c, (int)n);
}

/* Each row of c (t x n) becomes `bias` (add == 0) or gains it (add == 1). */
static void rows_bias(float *c, long t, long n, const float *bias, int add) {
    for (long i = 0; i < t; i++) {
        float *row = c + i * n;
        if (add)
            for (long j = 0; j < n; j++) row[j] += bias[j];
        else
            memcpy(row, bias, sizeof(float) * n);
    }
}

/* w (n x k, int8 with a scale per row) as float32 into buf. */
static void dequantize_rows(const struct q8 *w, long n, long k, float *buf) {
    for (long r = 0; r < n; r++) {
        const int8_t *q = w->w + r * k;
        float scale = w->scale[r], *o = buf + r * k;
#pragma omp simd
        for (long j = 0; j < k; j++) o[j] = (float)q[j] * scale;
    }
}

/* out (t x n) += a (t x k) times the layer's product weights: int8 where the layer has them
 * (by the integer product given, else by q8i_product where it runs (the decoder's prompts on
 * AVX2), else dequantized into `wbuf` for sgemm). */
#define PRODUCT(a, t, k, NAME, n, out)                                                                    \
    do {                                                                                                  \
        if (L->NAME##_q.w && m->gemm_u8) {                                                                \
            if ((status = add_product_q8(m, a, t, k, &L->NAME##_q, n, out, &q8s, threads))) goto done;    \
        } else if (L->NAME##_q.w && int16_inputs) {                                                       \
            if ((status = q8i_product(t, n, k, a, L->NAME##_q.w, L->NAME##_q.scale, NULL, out, threads))) \
                goto done;                                                                                \
        } else if (L->NAME##_q.w) {                                                                       \
            dequantize_rows(&L->NAME##_q, n, k, wbuf);                                                    \
            add_product(sgemm, a, t, k, wbuf, n, out);                                                    \
        } else                                                                                            \
            add_product(sgemm, a, t, k, L->NAME##_w, n, out);                                              \
    } while (0)

/* 1 when blocks_forward runs on this CPU (AVX2 and FMA, for attention_d64). */
int blocks_supported(void) { return have_avx2_fma(); }

/* x (t x C, contiguous) goes through every block (and the final norm), in place.
 * mask: NULL, or (t x t) added to the self-attention scores. Returns a STATUS_ (UNSUPPORTED:
 * heads other than 64 values, or no AVX2). */
int blocks_forward(const struct blocks *m, float *x, long t, const float *mask, void *sgemm_address,
                   void (*rest)(void), int threads) {
    long C = m->n_state, H = m->n_head, S = m->n_audio;
    if (!have_avx2_fma() || C != H * 64) return STATUS_UNSUPPORTED;
    sgemm_fn sgemm = (sgemm_fn)sgemm_address;
    float *normed = malloc(sizeof(float) * t * C), *qkv = malloc(sizeof(float) * t * 3 * C),
          *att = malloc(sizeof(float) * t * C), *hidden = malloc(sizeof(float) * t * 4 * C);
    struct q8_scratch q8s = {0};
    const int int16_inputs = !m->gemm_u8 && m->int16_inputs;
    /* a product's weights, dequantized (int8 weights without an integer product) */
    float *wbuf = m->gemm_u8 || int16_inputs ? NULL : malloc(sizeof(float) * 4 * C * C);
    if (m->gemm_u8) {
        if (m->gemm_u8 == (void *)q8_gemm) {
            q8s.a16 = malloc(sizeof(int16_t) * t * 4 * C);
            q8s.packed = malloc(sizeof(int16_t) * 4 * C * C);
        } else
            q8s.a = malloc((size_t)t * 4 * C);
        q8s.scale = malloc(sizeof(float) * t);
        q8s.zero = malloc(sizeof(int32_t) * t);
        q8s.c = malloc(sizeof(int32_t) * t * 4 * C);
    }
    int status = 0;
    if (!normed || !qkv || !att || !hidden || (m->gemm_u8 && (!q8s.scale || !q8s.zero || !q8s.c)) ||
        (m->gemm_u8 && (m->gemm_u8 == (void *)q8_gemm ? !q8s.a16 || !q8s.packed : !q8s.a)) ||
        (!m->gemm_u8 && !int16_inputs && !wbuf)) {
        status = STATUS_NO_MEMORY;
        goto done;
    }
    const float scale = 0.125f; /* 64 ** -0.5 */
    for (long l = 0; l < m->n_layer; l++) {
        const struct block_layer *L = m->layers + l;
        layer_norm(x, normed, t, C, L->attn_ln_w, L->attn_ln_b, m->eps);
        rows_bias(qkv, t, 3 * C, L->qkv_b, 0);
        PRODUCT(normed, t, C, qkv, 3 * C, qkv);
        if (L->keys)
            for (long h = 0; h < H; h++)
                for (long i = 0; i < t; i++) {
                    memcpy(L->keys + (h * t + i) * 64, qkv + i * 3 * C + C + h * 64, sizeof(float) * 64);
                    memcpy(L->values + (h * t + i) * 64, qkv + i * 3 * C + 2 * C + h * 64, sizeof(float) * 64);
                }
        if (rest) rest();
        status = attention_d64(H, t, t, scale, qkv, 64, 3 * C, qkv + C, 64, 3 * C, 0, qkv + 2 * C, 64, 3 * C, 0,
                               att, C, mask, threads);
        if (status) goto done;
        rows_bias(x, t, C, L->attn_out_b, 1);
        PRODUCT(att, t, C, attn_out, C, x);

        if (L->cross_kt) {
            layer_norm(x, normed, t, C, L->cross_ln_w, L->cross_ln_b, m->eps);
            rows_bias(att, t, C, L->cross_q_b, 0); /* the queries, in att until the attention */
            PRODUCT(normed, t, C, cross_q, C, att);
            memcpy(normed, att, sizeof(float) * t * C);
            if (L->cross_q) memcpy(L->cross_q, att, sizeof(float) * t * C);
            if (rest) rest();
            status = attention_d64(H, t, S, scale, normed, 64, C, L->cross_kt, 64 * S, S, 1, L->cross_vt, 64 * S, S,
                                   1, att, C, NULL, threads);
            if (status) goto done;
            rows_bias(x, t, C, L->cross_out_b, 1);
            PRODUCT(att, t, C, cross_out, C, x);
        }

        layer_norm(x, normed, t, C, L->mlp_ln_w, L->mlp_ln_b, m->eps);
        rows_bias(hidden, t, 4 * C, L->mlp1_b, 0);
        PRODUCT(normed, t, C, mlp1, 4 * C, hidden);
        gelu(hidden, hidden, t * 4 * C);
        rows_bias(x, t, C, L->mlp2_b, 1);
        PRODUCT(hidden, t, 4 * C, mlp2, C, x);
    }
    if (m->ln_w) {
        layer_norm(x, normed, t, C, m->ln_w, m->ln_b, m->eps);
        memcpy(x, normed, sizeof(float) * t * C);
    }
done:
    free(normed);
    free(qkv);
    free(att);
    free(hidden);
    free(q8s.a);
    free(q8s.a16);
    free(q8s.scale);
    free(q8s.zero);
    free(q8s.c);
    free(q8s.packed);
    free(wbuf);
    return status;
}

/* rows (t_out x 3c) of x (t_in x c) seen through a kernel of 3 with padding 1 and
 * `stride`: row i holds x[s i - 1], x[s i], x[s i + 1] (zeros outside x). */
static void windows_of_three(const float *x, long t_in, long c, long stride, float *rows, long t_out) {
    for (long i = 0; i < t_out; i++)
        for (long k = 0; k < 3; k++) {
            long src = stride * i + k - 1;
            float *dst = rows + (i * 3 + k) * c;
            if (src < 0 || src >= t_in)
                memset(dst, 0, sizeof(float) * c);
            else
                memcpy(dst, x + src * c, sizeof(float) * c);
        }
}

/* The encoder's stem: out (t x C) = GELU(conv2(GELU(conv1(mel)))) + positions, for mel
 * (2t x n_mels); conv weights as MLX keeps them, (C, 3, in), which is (C, 3 in) in the
 * order of windows_of_three's rows. Each convolution is one sgemm over those rows.
 * Returns a STATUS_. */
int encoder_stem(const float *mel, long frames, long n_mels, const float *w1, const float *b1, const float *w2,
                 const float *b2, const float *positions, long C, float *out, void *sgemm_address) {
    sgemm_fn sgemm = (sgemm_fn)sgemm_address;
    long t = (frames + 1) / 2;
    float *rows = malloc(sizeof(float) * (frames * 3 * n_mels > t * 3 * C ? frames * 3 * n_mels : t * 3 * C));
    float *first = malloc(sizeof(float) * frames * C);
    int status = 0;
    if (!rows || !first) {
        status = STATUS_NO_MEMORY;
        goto done;
    }
    windows_of_three(mel, frames, n_mels, 1, rows, frames);
    rows_bias(first, frames, C, b1, 0);
    add_product(sgemm, rows, frames, 3 * n_mels, w1, C, first);
    gelu(first, first, frames * C);
    windows_of_three(first, frames, C, 2, rows, t);
    rows_bias(out, t, C, b2, 0);
    add_product(sgemm, rows, t, 3 * C, w2, C, out);
    gelu(out, out, t * C);
    for (long i = 0; i < t * C; i++) out[i] += positions[i];
done:
    free(rows);
    free(first);
    return status;
}

/* ------------------------------------------------------------------ oneDNN's sgemm as a CBLAS one */

/* oneDNN's dnnl_sgemm (row-major), set once by kernels/dnnl.py. Its results do not depend
 * on its thread count, where an OpenBLAS sgemm's last bits do: the int8 encoder's
 * quantized activations would carry such a bit into a different subtitle. */
typedef int (*dnnl_sgemm_fn)(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                             int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
static dnnl_sgemm_fn dnnl_sgemm_ptr;

void set_dnnl_sgemm(void *address) { dnnl_sgemm_ptr = (dnnl_sgemm_fn)address; }

/* A CBLAS sgemm (row-major only, as the kernels call it) over oneDNN's. */
void dnnl_sgemm_as_cblas(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc) {
    (void)order;
    dnnl_sgemm_ptr(ta == TRANS ? 'T' : 'N', tb == TRANS ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
