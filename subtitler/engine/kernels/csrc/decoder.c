/*
 * A whole decoding step of Whisper's text decoder on the CPU, in one call: token and
 * position embedding, every layer's self-attention over the cached positions,
 * cross-attention over the window's audio, MLP, the final norm and the logits.
 * cpu_decoder.py holds the weights and the caches and calls it through ctypes.
 *
 * MLX runs a step of tiny.en as about 520 operations, each dispatched to its CPU
 * stream and each a call into the BLAS (see cpu_decoder.py for what that cost).
 * Here a step is a fixed program run by `threads` threads at once, each taking its
 * share of every product's output rows or of the heads, with a spinning barrier
 * between the phases that depend on each other (eight a layer); the layer norms,
 * cheap, are computed by every thread into a buffer of its own, so they need none.
 *
 * Products are the block kernel of common.h over float32 weights: a step
 * multiplies a few rows (1 greedy, the beams, the samples) by each weight matrix,
 * so each matrix is read once for all of them, and memory reads bound the step.
 * The output embedding is read in float16 when the caller has such a table.
 *
 * Cache layout. Positions all rows share (the prompt) are `prefix_k`/`prefix_v`,
 * (H, P, D) per layer. Each row's own positions are stored per (position, slot):
 * `own_k`/`own_v` (capacity, rows, H, D), and `history` (rows, capacity) says which
 * slot holds row r's position p. A step writes row r's new keys and values into slot
 * r of its position; beam search reorders rows by rewriting `history` alone
 * (decoder_reorder), so no cached key or value is ever copied.
 */
#include "common.h"

#include <sched.h>

struct dec_layer { /* the product weights (*_w but the norms') are of the model's weights_kind */
    const float *attn_ln_w, *attn_ln_b;
    const void *qkv_w;
    const float *qkv_b;
    const void *attn_out_w;
    const float *attn_out_b, *cross_ln_w, *cross_ln_b;
    const void *cross_q_w;
    const float *cross_q_b;
    const void *cross_out_w;
    const float *cross_out_b;
    const void *cross_kt, *cross_vt; /* the window's keys and values, (H, D, S) each: of the model's cross_kind */
    const float *mlp_ln_w, *mlp_ln_b;
    const void *mlp1_w;
    const float *mlp1_b;
    const void *mlp2_w;
    const float *mlp2_b;
    const float *prefix_k, *prefix_v; /* (H, P, D) each */
    float *own_k, *own_v;             /* (capacity, rows, H, D) each */
    /* int8 weights: each product's scale per output row (NULL otherwise) */
    const float *qkv_s, *attn_out_s, *cross_q_s, *cross_out_s, *mlp1_s, *mlp2_s;
    /* int8 keys and values (CROSS_Q8): a scale per head and position, (H, S) each */
    const float *cross_k_scale, *cross_v_scale;
};

enum { WEIGHTS_F32 = 0, WEIGHTS_F16 = 1, WEIGHTS_Q8 = 2 };
enum { CROSS_F32 = 0, CROSS_F16 = 1, CROSS_Q8 = 2 }; /* how cross_kt, cross_vt hold the keys and values */

struct dec_model {
    long n_state, n_head, n_layer, n_vocab, n_audio; /* C, H, layers, V, S */
    long prefix, rows, capacity;                     /* P, n, own positions per row */
    long weights_kind; /* the layers' product weights (qkv_w ... mlp2_w): a WEIGHTS_ */
    float eps;
    const float *token_embedding;      /* (V, C), or NULL: the tokens are looked up in embedding_f16 */
    const uint16_t *embedding_f16;     /* (V, C) in float16 for the logits (and the lookups), or NULL */
    const float *positional_embedding; /* (n_ctx, C) */
    const float *ln_w, *ln_b;
    int32_t *history; /* (rows, capacity) */
    struct dec_layer *layers;
    const int8_t *embedding_q8;   /* (V, C) in int8 for the logits, or NULL */
    const float *embedding_scale; /* (V) its scale per row */
    const float *embedding_bias;  /* (V) added to the int8 logits, or NULL */
    long cross_kind;              /* a CROSS_: float16 is half what a step reads of them, int8 a quarter */
    long int16_inputs;            /* 1: int8 products by rows_q8_int16 (the inputs rounded to int16) */
};

enum { MAX_HEAD = 256 };

#ifdef X86_KERNELS

/* ---------------------------------------------------------------- dense layers */

/* Products over float32 weights; those over float16 weights are rows_f16 (kernels.c):
 * Whisper's weights are published in float16, so those are the float32 products,
 * reading half the memory. */
ROWS_KERNELS(float_rows, float, V8, AVX2_F16C, LOAD8_F32, LOAD1_F32, ROWS_8)

/* [*a, *b): thread tid's share of [0, total), cut at multiples of `align`. */
static void share(long total, int tid, int threads, long align, long *a, long *b) {
    long blocks = (total + align - 1) / align;
    long lo = blocks * tid / threads * align, hi = blocks * (tid + 1) / threads * align;
    *a = lo < total ? lo : total;
    *b = hi < total ? hi : total;
}

/* ---------------------------------------------------------------- the threads' barrier */

struct barrier {
    int arrived, sense, threads;
};

static void barrier_wait(struct barrier *b, int *local_sense) {
    if (b->threads == 1) return;
    int sense = !*local_sense;
    *local_sense = sense;
    if (__atomic_add_fetch(&b->arrived, 1, __ATOMIC_ACQ_REL) == b->threads) {
        __atomic_store_n(&b->arrived, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->sense, sense, __ATOMIC_RELEASE);
    } else {
        /* Spin (a phase lasts microseconds), but yield the core once it takes long:
         * a thread we wait for may have been descheduled on a busy machine. */
        for (long spins = 0; __atomic_load_n(&b->sense, __ATOMIC_ACQUIRE) != sense; spins++)
            if (spins < 20000)
                _mm_pause();
            else
                sched_yield();
    }
}

/* ---------------------------------------------------------------- attention */

static inline AVX2_F16C float dot(const float *a, const float *b, long n) {
    float total = 0.0f;
#pragma omp simd reduction(+ : total)
    for (long i = 0; i < n; i++) total += a[i] * b[i];
    return total;
}

/* exp(x - max) over x[0 .. n) in place; returns 1 / the sum (0 for a row of -inf). */
static AVX2_F16C float softmax_in_place(float *x, long n) {
    float sum;
    softmax_rows_exp(x, 1, n, n, &sum);
    return sum > 0.0f ? 1.0f / sum : 0.0f;
}

/* Self-attention of every row for heads [h0, h1): the new position's keys and values
 * (in qkv) go to the cache first, then each row attends over the prefix and its own
 * positions 0 .. length. Output: att (rows x C). scores: P + capacity floats. */
static AVX2_F16C void self_attention(const struct dec_model *m, const struct dec_layer *L, const float *qkv,
                                     long length, float *att, float *scores, long h0, long h1) {
    long n = m->rows, C = m->n_state, H = m->n_head, D = C / H, P = m->prefix;
    float scale = 1.0f / __builtin_sqrtf((float)D), q[MAX_HEAD];
    for (long i = 0; i < n; i++) {
        const float *row = qkv + i * 3 * C;
        for (long h = h0; h < h1; h++) {
            long slot = ((length * n + i) * H + h) * D;
            memcpy(L->own_k + slot, row + C + h * D, sizeof(float) * D);
            memcpy(L->own_v + slot, row + 2 * C + h * D, sizeof(float) * D);
        }
    }
    for (long i = 0; i < n; i++) {
        const int32_t *hist = m->history + i * m->capacity;
        for (long h = h0; h < h1; h++) {
            const float *pk = L->prefix_k + h * P * D, *pv = L->prefix_v + h * P * D;
            for (long d = 0; d < D; d++) q[d] = qkv[i * 3 * C + h * D + d] * scale;
            for (long j = 0; j < P; j++) scores[j] = dot(q, pk + j * D, D);
            for (long j = 0; j <= length; j++)
                scores[P + j] = dot(q, L->own_k + ((j * n + hist[j]) * H + h) * D, D);
            float inv = softmax_in_place(scores, P + length + 1);
            float *o = att + i * C + h * D;
            for (long d = 0; d < D; d++) o[d] = 0.0f;
            for (long j = 0; j <= P + length; j++) {
                const float *v = j < P ? pv + j * D : L->own_v + (((j - P) * n + hist[j - P]) * H + h) * D;
                float w = scores[j] * inv;
#pragma omp simd
                for (long d = 0; d < D; d++) o[d] += w * v[d];
            }
        }
    }
}

/* The four dot products of w with v0 .. v3 (n values each, of type T read by LOAD8 and
 * LOAD1), eight accumulators: dot4 over float32 values, dot4_f16 over float16 ones. */
#define DOT4(NAME, T, LOAD8, LOAD1)                                                                       \
    static inline AVX2_F16C __attribute__((always_inline)) void NAME(                                    \
        const float *w, const T *v0, const T *v1, const T *v2, const T *v3, long n, float out[4]) {      \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),            \
               a3 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(),            \
               b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();                                      \
        long s = 0;                                                                                      \
        for (; s + 16 <= n; s += 16) {                                                                   \
            __m256 x = _mm256_loadu_ps(w + s), y = _mm256_loadu_ps(w + s + 8);                           \
            a0 = _mm256_fmadd_ps(x, LOAD8(v0 + s), a0);                                                  \
            a1 = _mm256_fmadd_ps(x, LOAD8(v1 + s), a1);                                                  \
            a2 = _mm256_fmadd_ps(x, LOAD8(v2 + s), a2);                                                  \
            a3 = _mm256_fmadd_ps(x, LOAD8(v3 + s), a3);                                                  \
            b0 = _mm256_fmadd_ps(y, LOAD8(v0 + s + 8), b0);                                              \
            b1 = _mm256_fmadd_ps(y, LOAD8(v1 + s + 8), b1);                                              \
            b2 = _mm256_fmadd_ps(y, LOAD8(v2 + s + 8), b2);                                              \
            b3 = _mm256_fmadd_ps(y, LOAD8(v3 + s + 8), b3);                                              \
        }                                                                                                \
        out[0] = hsum8(_mm256_add_ps(a0, b0));                                                           \
        out[1] = hsum8(_mm256_add_ps(a1, b1));                                                           \
        out[2] = hsum8(_mm256_add_ps(a2, b2));                                                           \
        out[3] = hsum8(_mm256_add_ps(a3, b3));                                                           \
        for (; s < n; s++) {                                                                             \
            out[0] += w[s] * LOAD1(v0 + s);                                                              \
            out[1] += w[s] * LOAD1(v1 + s);                                                              \
            out[2] += w[s] * LOAD1(v2 + s);                                                              \
            out[3] += w[s] * LOAD1(v3 + s);                                                              \
        }                                                                                                \
    }
DOT4(dot4, float, LOAD8_F32, LOAD1_F32)
DOT4(dot4_f16, uint16_t, LOAD8_F16, LOAD1_F16)
DOT4(dot4_q8, int8_t, LOAD8_Q8, LOAD1_Q8)

/* sc[0 .. S) += c0 k0 + c1 k1 + c2 k2 + c3 k3: four rows of keys into a row's scores,
 * float32 ones (left to the compiler) or float16 ones (8 converted a load). */
static inline AVX2_F16C __attribute__((always_inline)) void add4(float *sc, const float *k0, const float *k1,
                                                                 const float *k2, const float *k3, float c0,
                                                                 float c1, float c2, float c3, long S) {
#pragma omp simd
    for (long s = 0; s < S; s++) sc[s] += c0 * k0[s] + c1 * k1[s] + c2 * k2[s] + c3 * k3[s];
}

/* add4 over float16 keys (add4_f16) or int8 ones (add4_q8), 8 converted a load. */
#define ADD4_CONVERTED(NAME, T, LOAD8, LOAD1)                                                                  \
    static inline AVX2_F16C __attribute__((always_inline)) void NAME(float *sc, const T *k0, const T *k1,     \
                                                                     const T *k2, const T *k3, float c0,      \
                                                                     float c1, float c2, float c3, long S) {  \
        __m256 v0 = _mm256_set1_ps(c0), v1 = _mm256_set1_ps(c1), v2 = _mm256_set1_ps(c2),                    \
               v3 = _mm256_set1_ps(c3);                                                                       \
        long s = 0;                                                                                           \
        for (; s + 8 <= S; s += 8) {                                                                          \
            __m256 t = _mm256_mul_ps(v0, LOAD8(k0 + s));                                                      \
            t = _mm256_fmadd_ps(v1, LOAD8(k1 + s), t);                                                        \
            t = _mm256_fmadd_ps(v2, LOAD8(k2 + s), t);                                                        \
            t = _mm256_fmadd_ps(v3, LOAD8(k3 + s), t);                                                        \
            _mm256_storeu_ps(sc + s, _mm256_add_ps(_mm256_loadu_ps(sc + s), t));                              \
        }                                                                                                     \
        for (; s < S; s++) sc[s] += c0 * LOAD1(k0 + s) + c1 * LOAD1(k1 + s) + c2 * LOAD1(k2 + s) + c3 * LOAD1(k3 + s); \
    }
ADD4_CONVERTED(add4_f16, uint16_t, LOAD8_F16, LOAD1_F16)
ADD4_CONVERTED(add4_q8, int8_t, LOAD8_Q8, LOAD1_Q8)

/* x[0 .. n) *= scale[0 .. n): int8 keys' scales into the scores, values' into the weights. */
static inline AVX2_F16C void scale_by(float *x, const float *scale, long n) {
#pragma omp simd
    for (long i = 0; i < n; i++) x[i] *= scale[i];
}

/* Cross-attention of every row over the window's S positions for heads [h0, h1).
 * Keys and values are stored transposed, (D, S) per head, so the scores grow by
 * whole rows of keys (four at a time) and each output value is a dot product along
 * a row of values. q: the rows' queries (rows x C). scores: rows * S floats.
 * cross_attention reads float32 keys and values; cross_attention_f16 float16 ones
 * (half the bytes); cross_attention_q8 int8 ones with a scale per head and position
 * (the int8 steps: a quarter of the bytes, where float16 was a fifth of a tiny.en
 * step's reads): each score is scaled by its key's, each weight by its value's. T is
 * read by LOAD1, the scores grown by ADD4 and the values summed by DOT4. */
#define CROSS_ATTENTION(NAME, T, LOAD1, ADD4, DOT4)                                                     \
    static AVX2_F16C void NAME(const struct dec_model *m, const struct dec_layer *L, const float *q,     \
                               float *att, float *scores, long h0, long h1) {                            \
        long n = m->rows, C = m->n_state, H = m->n_head, D = C / H, S = m->n_audio;                     \
        float scale = 1.0f / __builtin_sqrtf((float)D), inv[LOGITS_MAX_N];                               \
        for (long h = h0; h < h1; h++) {                                                                 \
            const T *kt = (const T *)L->cross_kt + h * D * S, *vt = (const T *)L->cross_vt + h * D * S;  \
            memset(scores, 0, sizeof(float) * n * S);                                                    \
            long d = 0;                                                                                  \
            for (; d + 4 <= D; d += 4) {                                                                 \
                const T *k0 = kt + d * S, *k1 = k0 + S, *k2 = k1 + S, *k3 = k2 + S;                      \
                for (long i = 0; i < n; i++) {                                                           \
                    const float *qi = q + i * C + h * D + d;                                             \
                    float c0 = qi[0] * scale, c1 = qi[1] * scale, c2 = qi[2] * scale, c3 = qi[3] * scale; \
                    ADD4(scores + i * S, k0, k1, k2, k3, c0, c1, c2, c3, S);                              \
                }                                                                                        \
            }                                                                                            \
            for (; d < D; d++)                                                                           \
                for (long i = 0; i < n; i++) {                                                           \
                    float c = q[i * C + h * D + d] * scale, *sc = scores + i * S;                        \
                    for (long s = 0; s < S; s++) sc[s] += c * LOAD1(kt + d * S + s);                     \
                }                                                                                        \
            for (long i = 0; i < n; i++) {                                                               \
                if (L->cross_k_scale) scale_by(scores + i * S, L->cross_k_scale + h * S, S);             \
                inv[i] = softmax_in_place(scores + i * S, S);                                            \
                if (L->cross_v_scale) scale_by(scores + i * S, L->cross_v_scale + h * S, S);             \
            }                                                                                            \
            for (d = 0; d + 4 <= D; d += 4) {                                                            \
                const T *v0 = vt + d * S;                                                                \
                for (long i = 0; i < n; i++) {                                                           \
                    float out[4];                                                                        \
                    DOT4(scores + i * S, v0, v0 + S, v0 + 2 * S, v0 + 3 * S, S, out);                    \
                    for (int e = 0; e < 4; e++) att[i * C + h * D + d + e] = out[e] * inv[i];            \
                }                                                                                        \
            }                                                                                            \
            for (; d < D; d++)                                                                           \
                for (long i = 0; i < n; i++) {                                                           \
                    float total = 0.0f;                                                                  \
                    for (long s = 0; s < S; s++) total += scores[i * S + s] * LOAD1(vt + d * S + s);     \
                    att[i * C + h * D + d] = total * inv[i];                                             \
                }                                                                                        \
        }                                                                                                \
    }
CROSS_ATTENTION(cross_attention, float, LOAD1_F32, add4, dot4)
CROSS_ATTENTION(cross_attention_f16, uint16_t, LOAD1_F16, add4_f16, dot4_f16)
CROSS_ATTENTION(cross_attention_q8, int8_t, LOAD1_Q8, add4_q8, dot4_q8)

/* ---------------------------------------------------------------- the step */

struct step {
    const struct dec_model *m;
    const int32_t *tokens;
    long length; /* own positions before this one */
    float *logits;
    float *x, *qkv, *att, *q, *hidden; /* shared: rows x C, 3C, C, C, 4C */
    struct barrier bar;
    int go;
};

struct step_job {
    struct step *s;
    int tid;
    float *normed; /* rows x C, this thread's */
    float *scores; /* this thread's */
};

/* rows_q8's product, by integer products where the model asks for them (and they run). */
static void q8_products(const struct dec_model *m, const int8_t *w, const float *scale, long k, const float *x, long n,
                        float *o, long ldo, const float *bias, int add, long r0, long r1) {
    if (!m->int16_inputs || rows_q8_int16(w, scale, k, x, n, o, ldo, bias, add, r0, r1) != STATUS_OK)
        rows_q8(w, scale, k, x, n, o, ldo, bias, add, r0, r1);
}

/* o = x (rows x k) times w^T + bias for this thread's share of w's `out` rows; w is
 * float16, or int8 with a scale per row, when the model says so. */
static void dense(const struct step_job *job, const void *w, const float *scale, const float *bias, long out,
                  long k, const float *x, float *o, long ldo, int add) {
    long r0, r1, n = job->s->m->rows;
    share(out, job->tid, job->s->bar.threads, 8, &r0, &r1);
    if (r1 <= r0) return;
    if (job->s->m->weights_kind == WEIGHTS_Q8)
        q8_products(job->s->m, w, scale, k, x, n, o, ldo, bias, add, r0, r1);
    else if (job->s->m->weights_kind == WEIGHTS_F16)
        rows_f16(w, k, x, n, o, ldo, bias, add, r0, r1);
    else
        float_rows_for[n](w, k, x, o, ldo, bias, add, NULL, r0, r1);
}

/* out[a:b) = the float16 row's values plus p's (a token's embedding looked up in float16). */
static AVX2_F16C __attribute__((noinline)) void half_row_plus(const uint16_t *e, const float *p, float *out, long a,
                                                              long b) {
    for (long c = a; c < b; c++) out[c] = _cvtsh_ss(e[c]) + p[c];
}

static void *step_run(void *arg) {
    struct step_job *job = arg;
    struct step *s = job->s;
    while (!__atomic_load_n(&s->go, __ATOMIC_ACQUIRE)) sched_yield(); /* until every thread has started */
    const struct dec_model *m = s->m;
    int tid = job->tid, threads = s->bar.threads, sense = 0;
    long n = m->rows, C = m->n_state, H = m->n_head, V = m->n_vocab, pos = m->prefix + s->length, a, b;

    share(C, tid, threads, 8, &a, &b);
    for (long i = 0; i < n; i++) {
        const float *p = m->positional_embedding + pos * C;
        if (m->token_embedding) {
            const float *e = m->token_embedding + (long)s->tokens[i] * C;
            for (long c = a; c < b; c++) s->x[i * C + c] = e[c] + p[c];
        } else {
            half_row_plus(m->embedding_f16 + (long)s->tokens[i] * C, p, s->x + i * C, a, b);
        }
    }
    long h0, h1;
    share(H, tid, threads, 1, &h0, &h1);
    barrier_wait(&s->bar, &sense);

    for (long l = 0; l < m->n_layer; l++) {
        const struct dec_layer *L = m->layers + l;
        layer_norm(s->x, job->normed, n, C, L->attn_ln_w, L->attn_ln_b, m->eps);
        dense(job, L->qkv_w, L->qkv_s, L->qkv_b, 3 * C, C, job->normed, s->qkv, 3 * C, 0);
        barrier_wait(&s->bar, &sense);
        self_attention(m, L, s->qkv, s->length, s->att, job->scores, h0, h1);
        barrier_wait(&s->bar, &sense);
        dense(job, L->attn_out_w, L->attn_out_s, L->attn_out_b, C, C, s->att, s->x, C, 1);
        barrier_wait(&s->bar, &sense);

        layer_norm(s->x, job->normed, n, C, L->cross_ln_w, L->cross_ln_b, m->eps);
        dense(job, L->cross_q_w, L->cross_q_s, L->cross_q_b, C, C, job->normed, s->q, C, 0);
        barrier_wait(&s->bar, &sense);
        if (m->cross_kind == CROSS_Q8)
            cross_attention_q8(m, L, s->q, s->att, job->scores, h0, h1);
        else if (m->cross_kind == CROSS_F16)
            cross_attention_f16(m, L, s->q, s->att, job->scores, h0, h1);
        else
            cross_attention(m, L, s->q, s->att, job->scores, h0, h1);
        barrier_wait(&s->bar, &sense);
        dense(job, L->cross_out_w, L->cross_out_s, L->cross_out_b, C, C, s->att, s->x, C, 1);
        barrier_wait(&s->bar, &sense);

        layer_norm(s->x, job->normed, n, C, L->mlp_ln_w, L->mlp_ln_b, m->eps);
        dense(job, L->mlp1_w, L->mlp1_s, L->mlp1_b, 4 * C, C, job->normed, s->hidden, 4 * C, 0);
        share(4 * C, tid, threads, 8, &a, &b);
        for (long i = 0; i < n && b > a; i++) gelu(s->hidden + i * 4 * C + a, s->hidden + i * 4 * C + a, b - a);
        barrier_wait(&s->bar, &sense);
        dense(job, L->mlp2_w, L->mlp2_s, L->mlp2_b, C, 4 * C, s->hidden, s->x, C, 1);
        barrier_wait(&s->bar, &sense);
    }
    layer_norm(s->x, job->normed, n, C, m->ln_w, m->ln_b, m->eps);
    share(V, tid, threads, 8, &a, &b);
    if (b > a) {
        if (m->embedding_q8)
            q8_products(m, m->embedding_q8, m->embedding_scale, C, job->normed, n, s->logits, V, m->embedding_bias, 0,
                        a, b);
        else if (m->embedding_f16)
            rows_f16(m->embedding_f16, C, job->normed, n, s->logits, V, NULL, 0, a, b);
        else
            float_rows_for[n](m->token_embedding, C, job->normed, s->logits, V, NULL, 0, NULL, a, b);
    }
    return NULL;
}

static AVX2_F16C void halves_from(const float *src, uint16_t *dst, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

static int supported(const struct dec_model *m) {
    return have_f16c() && m->rows >= 1 && m->rows <= LOGITS_MAX_N && m->n_head >= 1 &&
           m->n_state % m->n_head == 0 && m->n_state / m->n_head <= MAX_HEAD;
}
#endif

/* 1 when decoder_step runs on this CPU (AVX2, FMA, F16C). */
int decoder_supported(void) { return have_f16c(); }

/* dst[0 .. n) = src's float32 values rounded to float16 (to nearest even): the int8
 * steps' cross keys and values, a window's worth in a few milliseconds. Returns a STATUS_. */
int floats_to_halves(const float *src, uint16_t *dst, long n) {
#ifdef X86_KERNELS
    if (!have_f16c()) return STATUS_UNSUPPORTED;
    halves_from(src, dst, n);
    return STATUS_OK;
#else
    (void)src; (void)dst; (void)n;
    return STATUS_UNSUPPORTED;
#endif
}

/* src (heads x d x s, float32: keys or values transposed) as int8 in dst, with a scale
 * per head and position in scale (heads x s): the position's largest magnitude over its
 * d values maps to 127, values round to nearest (a position of zeros gets scale 1). The
 * int8 steps' cross keys and values, read by cross_attention_q8. Plain C: every build. */
/* (fp-contract off: x * inv is rounded before the shift, as NumPy's product is) */
static CLONES __attribute__((optimize("fp-contract=off"))) void q8_positions_head(const float *x, long d, long s, int8_t *dst, float *sc, float *inv) {
    for (long c = 0; c < s; c++) sc[c] = 0.0f;
    for (long r = 0; r < d; r++)
        for (long c = 0; c < s; c++) {
            float a = __builtin_fabsf(x[r * s + c]);
            sc[c] = a > sc[c] ? a : sc[c];
        }
    for (long c = 0; c < s; c++) {
        sc[c] = sc[c] > 0.0f ? sc[c] / 127.0f : 1.0f;
        inv[c] = 1.0f / sc[c];
    }
    for (long r = 0; r < d; r++)
        for (long c = 0; c < s; c++) {
            /* to nearest, ties to even, by the 1.5 * 2^23 shift (|v| <= 127 here): vectorizes */
            float v = x[r * s + c] * inv[c], w = (v + 12582912.0f) - 12582912.0f;
            dst[r * s + c] = (int8_t)(w > 127.0f ? 127.0f : (w < -127.0f ? -127.0f : w));
        }
}

int floats_to_q8_positions(const float *src, long heads, long d, long s, int8_t *dst, float *scale) {
    float *inv = malloc(sizeof(float) * s);
    if (!inv) return STATUS_NO_MEMORY;
    for (long h = 0; h < heads; h++) q8_positions_head(src + h * d * s, d, s, dst + h * d * s, scale + h * s, inv);
    free(inv);
    return STATUS_OK;
}

/* One step for m->rows rows: tokens (rows) at own position `length` (0 after the
 * prefix) -> logits (rows x V). Returns a STATUS_ (TOO_LONG: `length` is past the capacity). */
int decoder_step(const struct dec_model *m, const int32_t *tokens, long length, float *logits, int threads) {
#ifdef X86_KERNELS
    if (!supported(m)) return STATUS_UNSUPPORTED;
    if (length < 0 || length >= m->capacity) return STATUS_TOO_LONG;
    long n = m->rows, C = m->n_state, S = m->n_audio, P = m->prefix;
    long score_floats = n * S > P + m->capacity ? n * S : P + m->capacity;
    threads = thread_count(threads);
    long per_thread = n * C + score_floats;
    float *buffer = malloc(sizeof(float) * (n * 10 * C + threads * per_thread));
    if (!buffer) return STATUS_NO_MEMORY;
    for (long i = 0; i < n; i++) m->history[i * m->capacity + length] = (int32_t)i;
    struct step s = {m, tokens, length, logits, buffer, buffer + n * C, buffer + 4 * n * C, buffer + 5 * n * C,
                     buffer + 6 * n * C, {0, 0, 1}, 0};
    struct step_job jobs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started = 1;
    for (int i = 0; i < threads; i++) {
        float *own = buffer + n * 10 * C + i * per_thread;
        jobs[i] = (struct step_job){&s, i, own, own + n * C};
    }
    for (int i = 1; i < threads; i++) /* a thread that cannot start leaves its share to the others */
        if (pthread_create(&tids[started], NULL, step_run, &jobs[started]) == 0) started++;
    s.bar.threads = started;
    __atomic_store_n(&s.go, 1, __ATOMIC_RELEASE);
    step_run(&jobs[0]);
    for (int i = 1; i < started; i++) pthread_join(tids[i], NULL);
    free(buffer);
    return STATUS_OK;
#else
    (void)m; (void)tokens; (void)length; (void)logits; (void)threads;
    return STATUS_UNSUPPORTED;
#endif
}

/* Row i continues what row src[i] held: its own positions 0 .. count - 1 become
 * src[i]'s (a rewrite of `history`; no key or value moves). Returns a STATUS_. */
int decoder_reorder(const struct dec_model *m, const long *src, long count) {
    long n = m->rows, cap = m->capacity;
    if (count <= 0) return 0;
    int32_t *old = malloc(sizeof(int32_t) * n * count);
    if (!old) return STATUS_NO_MEMORY;
    for (long i = 0; i < n; i++) memcpy(old + i * count, m->history + i * cap, sizeof(int32_t) * count);
    for (long i = 0; i < n; i++) memcpy(m->history + i * cap, old + src[i] * count, sizeof(int32_t) * count);
    free(old);
    return 0;
}
