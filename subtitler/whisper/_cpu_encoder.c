/*
 * The audio encoder's transformer blocks on the CPU, in one call: for each block,
 * layer norm, the fused query/key/value product, attention (attention_d64), the
 * output product added to the residual, layer norm, the MLP with its GELU, and the
 * final layer norm. cpu_encoder.py holds the weights and calls it through ctypes.
 *
 * The products go to the preloaded BLAS's sgemm (passed in), which runs them on its
 * own threads; biases and residuals ride on them (the output starts as the bias, or
 * as the residual plus the bias, and sgemm adds the product to it).
 * Under MLX the same block was some twenty operations, each a pass over memory of
 * its own, and each of the CPU kernels a round trip through a host copy.
 *
 * The norms and GELU run on this thread alone: after each product the BLAS's idle
 * workers busy-wait on the other core for a while (see _blas.rest_workers, which
 * `rest` is), so a second thread of ours would share a core with one of them. The
 * attention, which splits its rows over `threads`, rests them first.
 */
#include "_cpu_common.h"

struct enc_layer {
    const float *attn_ln_w, *attn_ln_b, *qkv_w, *qkv_b, *attn_out_w, *attn_out_b;
    const float *mlp_ln_w, *mlp_ln_b, *mlp1_w, *mlp1_b, *mlp2_w, *mlp2_b;
};

struct enc_model {
    long n_state, n_head, n_layer;
    float eps;
    const float *ln_post_w, *ln_post_b;
    struct enc_layer *layers;
};

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

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

/* 1 when encoder_blocks runs on this CPU (AVX2 and FMA, for attention_d64). */
int encoder_supported(void) { return have_avx2_fma(); }

/* x (t x C, contiguous) goes through every block and the final norm, in place.
 * Returns 0; -1 when unsupported here (heads other than 64 values, no AVX2), -2 when
 * out of memory. */
int encoder_blocks(const struct enc_model *m, float *x, long t, void *sgemm_address, void (*rest)(void),
                   int threads) {
    long C = m->n_state, H = m->n_head;
    if (!have_avx2_fma() || C != H * 64) return -1;
    sgemm_fn sgemm = (sgemm_fn)sgemm_address;
    float *normed = malloc(sizeof(float) * t * C), *qkv = malloc(sizeof(float) * t * 3 * C),
          *att = malloc(sizeof(float) * t * C), *hidden = malloc(sizeof(float) * t * 4 * C);
    int status = 0;
    if (!normed || !qkv || !att || !hidden) {
        status = -2;
        goto done;
    }
    float scale = 0.125f; /* 64 ** -0.5 */
    for (long l = 0; l < m->n_layer; l++) {
        const struct enc_layer *L = m->layers + l;
        layer_norm(x, normed, t, C, L->attn_ln_w, L->attn_ln_b, m->eps);
        rows_bias(qkv, t, 3 * C, L->qkv_b, 0);
        add_product(sgemm, normed, t, C, L->qkv_w, 3 * C, qkv);
        if (rest) rest();
        status = attention_d64(H, t, t, scale, qkv, 64, 3 * C, qkv + C, 64, 3 * C, 0, qkv + 2 * C, 64, 3 * C, 0,
                               att, C, NULL, threads);
        if (status) goto done;
        rows_bias(x, t, C, L->attn_out_b, 1);
        add_product(sgemm, att, t, C, L->attn_out_w, C, x);

        layer_norm(x, normed, t, C, L->mlp_ln_w, L->mlp_ln_b, m->eps);
        rows_bias(hidden, t, 4 * C, L->mlp1_b, 0);
        add_product(sgemm, normed, t, C, L->mlp1_w, 4 * C, hidden);
        gelu(hidden, hidden, t * 4 * C);
        rows_bias(x, t, C, L->mlp2_b, 1);
        add_product(sgemm, hidden, t, 4 * C, L->mlp2_w, C, x);
    }
    layer_norm(x, normed, t, C, m->ln_post_w, m->ln_post_b, m->eps);
    memcpy(x, normed, sizeof(float) * t * C);
done:
    free(normed);
    free(qkv);
    free(att);
    free(hidden);
    return status;
}
