/*
 * Matrix-vector products for MLX's one-row matrix products (Linux CPU).
 *
 * MLX's CPU backend sends every matrix product to cblas_sgemm, one call per head
 * for batched products. A decoding step is all one-row products: the projections
 * (1 x 384 by 384 x 1152), the attention of each head over its keys and values
 * (1 x 64 by 64 x 1500), the output embedding (1 x 384 by 384 x 51864). OpenBLAS
 * 0.3.21 packs the whole right-hand matrix for each of them; as a matrix-vector
 * product (sgemv) the same work needs no packing. Measured here: a head's 1 x 64 by
 * 64 x 1500 product 31 -> 7 us, the logits 6.8 -> 3.3 ms, a greedy decoding step
 * 18.4 -> 12.7 ms. (OpenBLAS 0.3.27 added the same forwarding as a build option,
 * GEMM_GEMV_FORWARD; the builds at hand do not have it.)
 *
 * This library defines cblas_sgemm. Loaded into the global symbol scope before
 * MLX, it is the cblas_sgemm MLX binds to. Row-major products with one row or one
 * column become sgemv. Products of a few rows (beam search, best-of-N sampling)
 * become one sgemv per row over blocks of the right-hand matrix small enough to
 * stay in cache, so it is read from memory once: the 5-row logits 12.7 -> 8.3 ms.
 * Everything else goes to the BLAS's own sgemm, unchanged.
 *
 * It is also the bridge to BLAS builds whose symbols are renamed, as the OpenBLAS
 * of Python wheels are: scipy-openblas32 exports scipy_cblas_sgemm, NumPy's bundled
 * OpenBLAS scipy_cblas_sgemm64_ with 64-bit integers (ILP64). init() takes the
 * prefix, the suffix and the integer width; with forwarding off (enable(0)) every
 * product goes to that sgemm as it is. subtitler_blas_sgemm is the plain bridge
 * for our C kernels. subtitler/engine/kernels/blas.py loads it
 * (SUBTITLER_GEMV_FORWARD=0 turns the sgemv forwarding off).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <stdio.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
enum { FEW_ROWS = 8 };
static const long BLOCK_BYTES = 3L << 20; /* a block of the right-hand matrix that stays in cache */

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int, float,
                         float *, int);
typedef long long i64;
typedef void (*sgemm64_fn)(i64, i64, i64, i64, i64, i64, float, const float *, i64, const float *, i64,
                           float, float *, i64);
typedef void (*sgemv64_fn)(i64, i64, i64, i64, float, const float *, i64, const float *, i64, float,
                           float *, i64);

static void *blas_sgemm, *blas_sgemv; /* the BLAS's own, of 32- or 64-bit integers */
static int ilp64;
static int enabled = 1;
static long forwarded;

/* The BLAS's sgemm with this file's 32-bit integers, whatever its own width. */
void subtitler_blas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                          const float *b, int ldb, float beta, float *c, int ldc) {
    if (ilp64)
        ((sgemm64_fn)blas_sgemm)(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        ((sgemm_fn)blas_sgemm)(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void blas_gemv(int order, int t, int m, int n, float alpha, const float *a, int lda, const float *x,
                      int incx, float beta, float *y, int incy) {
    if (ilp64)
        ((sgemv64_fn)blas_sgemv)(order, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
    else
        ((sgemv_fn)blas_sgemv)(order, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
}

/* Resolve the BLAS's own sgemm and sgemv, named prefix + "cblas_sgemm" + suffix, in
 * the library at blas_path (opened privately). 1 when both are found. */
int subtitler_gemv_forward_init(const char *blas_path, const char *prefix, const char *suffix, int int64) {
    char mm_name[128], mv_name[128];
    void *lib = dlopen(blas_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return 0;
    snprintf(mm_name, sizeof mm_name, "%scblas_sgemm%s", prefix, suffix);
    snprintf(mv_name, sizeof mv_name, "%scblas_sgemv%s", prefix, suffix);
    void *mm = dlsym(lib, mm_name), *mv = dlsym(lib, mv_name);
    if (!mm || !mv) return 0;
    blas_sgemm = mm;
    blas_sgemv = mv;
    ilp64 = int64;
    return 1;
}

void subtitler_gemv_forward_enable(int on) { enabled = on; }

/* How many products went to sgemv so far. */
long subtitler_gemv_forward_count(void) { return __atomic_load_n(&forwarded, __ATOMIC_RELAXED); }

/* One row of c = alpha * a_row . op(b) + beta * c_row, as sgemv over b. */
static void row_times(int tb, int n, int k, float alpha, const float *a_row, int inc_a, const float *b,
                      int ldb, float beta, float *c_row, int inc_c) {
    if (tb == NO_TRANS) /* b is k x n: c_row = b^T a_row */
        blas_gemv(ROW_MAJOR, TRANS, k, n, alpha, b, ldb, a_row, inc_a, beta, c_row, inc_c);
    else /* b is n x k: c_row = b a_row */
        blas_gemv(ROW_MAJOR, NO_TRANS, n, k, alpha, b, ldb, a_row, inc_a, beta, c_row, inc_c);
}

void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc) {
    if (enabled && order == ROW_MAJOR && k > 0) {
        if (m == 1 && n > 1) {
            row_times(tb, n, k, alpha, a, ta == NO_TRANS ? 1 : lda, b, ldb, beta, c, 1);
            __atomic_fetch_add(&forwarded, 1, __ATOMIC_RELAXED);
            return;
        }
        if (n == 1 && m > 1) { /* c (m x 1) = op(a) (m x k) . op(b) (k x 1): a's rows against b */
            int inc_b = tb == NO_TRANS ? ldb : 1;
            if (ta == NO_TRANS)
                blas_gemv(ROW_MAJOR, NO_TRANS, m, k, alpha, a, lda, b, inc_b, beta, c, ldc);
            else
                blas_gemv(ROW_MAJOR, TRANS, k, m, alpha, a, lda, b, inc_b, beta, c, ldc);
            __atomic_fetch_add(&forwarded, 1, __ATOMIC_RELAXED);
            return;
        }
        if (m > 1 && m <= FEW_ROWS) { /* column blocks of op(b), each read by every row while cached */
            long cols = BLOCK_BYTES / ((long)k * (long)sizeof(float));
            int block = cols >= n ? n : (cols < 64 ? 64 : (int)cols);
            for (int j = 0; j < n; j += block) {
                int nb = n - j < block ? n - j : block;
                const float *bj = tb == NO_TRANS ? b + j : b + (long)j * ldb;
                for (int i = 0; i < m; i++) {
                    const float *row = ta == NO_TRANS ? a + (long)i * lda : a + i;
                    row_times(tb, nb, k, alpha, row, ta == NO_TRANS ? 1 : lda, bj, ldb, beta, c + (long)i * ldc + j, 1);
                }
            }
            __atomic_fetch_add(&forwarded, 1, __ATOMIC_RELAXED);
            return;
        }
    }
    subtitler_blas_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* A module object too, so that packagers and importlib see an ordinary extension. */
static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_gemv_forward",
    "cblas_sgemm that sends MLX's one-row products to sgemv; loaded by subtitler.engine.kernels.blas.", -1, NULL,
};

PyMODINIT_FUNC PyInit__gemv_forward(void) { return PyModule_Create(&module); }
