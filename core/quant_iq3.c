/*
 * quant_iq3.c - IQ3_XXS and IQ3_S row quantizers (see quant_iq3.h): ggml's
 * quantize_row_iq3_xxs_impl / quantize_row_iq3_s_impl searches and its
 * iq3xs_init_impl tables; facts taken from llama.cpp's source (dc02e1f),
 * code written here.
 *
 * Per group of 32 values: signs are split off (IQ3_XXS keeps an even number
 * of negatives per 8, flipping the least important one), then a set of trial
 * scales is tried; at each, every 4 values are rounded to 3-bit levels and,
 * when that point is not in the grid, replaced by the neighbour of least
 * weighted error. The scale of best weighted fit is kept and refitted, and
 * the group scales are stored as 4-bit multiples of one f16 super-scale.
 *
 * State: k_tab, built once by pthread_once from the grids of
 * dtype_iq_grids.c into static arrays, read-only afterwards.
 * Invariants: every float expression keeps ggml's operand order (core/ is
 * built without FMA contraction); rows are independent (any split of rows
 * over threads gives the same bytes). Nothing here prints or exits.
 */
#include "quant_iq3.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "dtype_iq.h"

#define IMIN(a, b) ((a) < (b) ? (a) : (b))
#define IMAX(a, b) ((a) > (b) ? (a) : (b))
#define EPS_IQ3_XXS 1e-8f /* ggml's GROUP_MAX_EPS_IQ3_XXS */
#define KMAP 4096         /* 4 values x 3 bits */
#define KMAXQ 8

/* Neighbour entries (a count then the indices, per off-grid point) of the two
 * grids: computed from the grids and checked when the tables are built. */
#define NB_CAP_256 22825
#define NB_CAP_512 28317

typedef struct iq3_tab {
    int8_t pos[512][4]; /* 2*level + 1 per value, as ggml's the_grid */
    int map[KMAP];      /* grid index, or -(offset of the neighbour list + 1) */
    uint16_t *nb;
    int n_nb, cap, grid_size;
    bool ok;
} iq3_tab;

static uint16_t k_nb256[NB_CAP_256], k_nb512[NB_CAP_512];
static iq3_tab k_tab[2] = {{.nb = k_nb256, .cap = NB_CAP_256, .grid_size = 256},
                           {.nb = k_nb512, .cap = NB_CAP_512, .grid_size = 512}};
static pthread_once_t k_once = PTHREAD_ONCE_INIT;

static inline int nint(float v) {
    float b = v + 12582912.f;
    uint32_t u;
    memcpy(&u, &b, sizeof u);
    return (int)(u & 0x007FFFFF) - 0x00400000;
}

/* The grid entries closest to the off-grid lattice point u (squared distance),
 * all of the nwant smallest distances, in order of (distance, index) as ggml's
 * qsort gives them. Returns false when the table is full. */
static bool add_neighbours(iq3_tab *t, int u, int nwant) {
    int8_t p[4];
    int d2[512], best[3], nbest = 0;
    for (int k = 0; k < 4; ++k)
        p[k] = (int8_t)(2 * ((u >> 3 * k) & 7) + 1);
    for (int j = 0; j < t->grid_size; ++j) {
        int d = 0;
        for (int k = 0; k < 4; ++k)
            d += (t->pos[j][k] - p[k]) * (t->pos[j][k] - p[k]);
        d2[j] = d;
        /* keep the nwant smallest distinct distances, ascending */
        int i = 0;
        while (i < nbest && best[i] < d)
            i++;
        if (i < nbest && best[i] == d) continue;
        if (i >= nwant) continue;
        for (int m = IMIN(nbest, nwant - 1); m > i; --m)
            best[m] = best[m - 1];
        best[i] = d;
        if (nbest < nwant) nbest++;
    }
    const int start = t->n_nb;
    if (start >= t->cap) return false;
    int n = 0, at = start + 1;
    for (int b = 0; b < nbest; ++b)
        for (int j = 0; j < t->grid_size; ++j)
            if (d2[j] == best[b]) {
                if (at >= t->cap) return false;
                t->nb[at++] = (uint16_t)j;
                n++;
            }
    t->nb[start] = (uint16_t)n;
    t->map[u] = -(start + 1);
    t->n_nb = at;
    return true;
}

static bool build(iq3_tab *t) {
    const bool xxs = t->grid_size == 256;
    for (int k = 0; k < t->grid_size; ++k)
        for (int i = 0; i < 4; ++i) {
            /* IQ3_XXS magnitudes are 4, 12, ..., 52, 62 (level * 8 + 4, the last 62), IQ3_S's 2l+1 */
            const int b = xxs ? (int)((hearth_iq3xxs_grid[k] >> 8 * i) & 0xFF)
                              : (int)((hearth_iq3s_grid[k] >> 8 * i) & 0xFF);
            t->pos[k][i] = (int8_t)(2 * (xxs ? b / 8 : b / 2) + 1);
        }
    for (int i = 0; i < KMAP; ++i)
        t->map[i] = -1;
    for (int k = 0; k < t->grid_size; ++k) {
        int u = 0;
        for (int i = 0; i < 4; ++i)
            u |= ((t->pos[k][i] - 1) / 2) << 3 * i;
        t->map[u] = k;
    }
    for (int u = 0; u < KMAP; ++u)
        if (t->map[u] < 0 && !add_neighbours(t, u, xxs ? 2 : 3)) return false;
    return t->n_nb == t->cap;
}

static void build_all(void) {
    for (int g = 0; g < 2; ++g)
        k_tab[g].ok = build(&k_tab[g]);
}

static const iq3_tab *tables(int grid_size) {
    pthread_once(&k_once, build_all);
    const iq3_tab *t = &k_tab[grid_size == 256 ? 0 : 1];
    return t->ok ? t : NULL;
}

int hearth_iq3_neighbour_count(int grid_size) {
    const iq3_tab *t = tables(grid_size);
    return t ? t->n_nb : 0;
}

/* ggml iq3_find_best_neighbour: of the listed grid points, the one of least
 * weighted squared error at `scale`; its levels go to L. */
static int best_neighbour(const iq3_tab *t, int u, const float *xval, const float *weight, float scale,
                          int8_t *L) {
    const uint16_t *nb = t->nb + (-t->map[u] - 1);
    float best_d2 = FLT_MAX;
    int gi = nb[1];
    for (int j = 1; j <= nb[0]; ++j) {
        const int8_t *pg = t->pos[nb[j]];
        float d2 = 0;
        for (int i = 0; i < 4; ++i) {
            float q = pg[i];
            float diff = scale * q - xval[i];
            d2 += weight[i] * diff * diff;
        }
        if (d2 < best_d2) {
            best_d2 = d2;
            gi = nb[j];
        }
    }
    for (int i = 0; i < 4; ++i)
        L[i] = (int8_t)((t->pos[gi][i] - 1) / 2);
    return gi;
}

/* Levels of 4 values at inverse scale id, as a lattice point index. */
static int lattice_point(const float *xv, float id, int8_t *L) {
    int u = 0;
    for (int i = 0; i < 4; ++i) {
        int l = nint(0.5f * (id * xv[i] - 1));
        l = IMAX(0, IMIN(KMAXQ - 1, l));
        if (L) L[i] = (int8_t)l;
        u |= l << 3 * i;
    }
    return u;
}

static void fit(const float *xval, const float *weight, const int8_t *L, float *sumqx, float *sumq2) {
    float sx = 0, s2 = 0;
    for (int i = 0; i < 32; ++i) {
        float w = weight[i];
        float q = 2 * L[i] + 1;
        sx += w * xval[i] * q;
        s2 += w * q * q;
    }
    *sumqx = sx;
    *sumq2 = s2;
}

/* The scale search of one group of 32 magnitudes xval (> 0 max). ntry: the
 * trial steps each side (15 for IQ3_XXS, 9 for IQ3_S); refine_all: IQ3_S
 * re-rounds every quad at the final scale, IQ3_XXS only the off-grid ones
 * (whose initial on-grid flags are true vs false). L gets the levels. */
static float group_search(const iq3_tab *t, const float *xval, const float *weight, const float *waux,
                          float max, int ntry, bool xxs, int8_t L[32]) {
    int8_t Laux[32];
    bool on[8], on_aux[8];
    float best = 0, scale = max / (2 * KMAXQ - 1), sumqx, sumq2;
    for (int k = 0; k < 8; ++k)
        on[k] = xxs;
    memset(L, 0, 32);
    for (int is = -ntry; is <= ntry; ++is) {
        float id = (2 * KMAXQ - 1 + is * 0.2f) / max;
        float this_scale = 1 / id;
        for (int k = 0; k < 8; ++k) {
            const int u = lattice_point(xval + 4 * k, id, Laux + 4 * k);
            on_aux[k] = t->map[u] >= 0;
            if (!on_aux[k]) best_neighbour(t, u, xval + 4 * k, waux + 4 * k, this_scale, Laux + 4 * k);
        }
        fit(xval, weight, Laux, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            memcpy(L, Laux, 32);
            memcpy(on, on_aux, sizeof on);
        }
    }
    int n_off = 0;
    for (int k = 0; k < 8; ++k)
        n_off += !on[k];
    if (n_off > 0 && scale > 0) {
        float id = 1 / scale;
        for (int k = 0; k < 8; ++k) {
            if (xxs && on[k]) continue;
            const int u = lattice_point(xval + 4 * k, id, NULL);
            int gi = t->map[u];
            if (gi < 0) gi = best_neighbour(t, u, xval + 4 * k, waux + 4 * k, scale, L + 4 * k);
            for (int i = 0; i < 4; ++i)
                L[4 * k + i] = (int8_t)((t->pos[gi][i] - 1) / 2);
        }
        fit(xval, weight, L, &sumqx, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    return scale;
}

static void group_weights(const float *xb, const float *qw, float sigma2, float *weight, float *waux) {
    for (int i = 0; i < 32; ++i)
        weight[i] = qw ? qw[i] * sqrtf(sigma2 + xb[i] * xb[i]) : xb[i] * xb[i];
    for (int i = 0; i < 32; ++i)
        waux[i] = sqrtf(weight[i]);
}

static float block_sigma2(const float *x) {
    float sumx2 = 0;
    for (int i = 0; i < QK_K; ++i)
        sumx2 += x[i] * x[i];
    return 2 * sumx2 / QK_K;
}

/* Grid index of the levels of quad k (always on the grid after the search). */
static int quad_index(const iq3_tab *t, const int8_t *L) {
    int u = 0;
    for (int i = 0; i < 4; ++i)
        u |= L[i] << 3 * i;
    return t->map[u] < 0 ? 0 : t->map[u];
}

static void iq3_xxs_block(const iq3_tab *t, const float *xbl, const float *qwbl, block_iq3_xxs *y) {
    float scales[QK_K / 32], weight[32], waux[32], xval[32], max_scale = 0;
    int8_t L[32];
    uint8_t q3[3 * QK_K / 8];
    uint32_t sas[QK_K / 32] = {0}; /* scales_and_signs */
    memset(q3, 0, sizeof q3);
    const float sigma2 = block_sigma2(xbl);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
        const float *xb = xbl + 32 * ib;
        uint8_t block_signs[4];
        group_weights(xb, qwbl ? qwbl + 32 * ib : NULL, sigma2, weight, waux);
        for (int k = 0; k < 4; ++k) {
            int nflip = 0;
            uint8_t s = 0;
            for (int i = 0; i < 8; ++i) {
                if (xb[8 * k + i] >= 0)
                    xval[8 * k + i] = xb[8 * k + i];
                else {
                    xval[8 * k + i] = -xb[8 * k + i];
                    ++nflip;
                    s |= (uint8_t)(1 << i);
                }
            }
            if (nflip % 2) {
                int imin = 0;
                float min = weight[8 * k + imin] * xb[8 * k + imin] * xb[8 * k + imin];
                for (int i = 1; i < 8; ++i) {
                    float ax = weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
                    if (ax < min) {
                        min = ax;
                        imin = i;
                    }
                }
                xval[8 * k + imin] = -xval[8 * k + imin];
                s ^= (uint8_t)(1 << imin);
            }
            block_signs[k] = s & 127;
        }
        float max = xval[0];
        for (int i = 1; i < 32; ++i)
            max = max > xval[i] ? max : xval[i];
        if (max < EPS_IQ3_XXS) {
            scales[ib] = 0;
            continue;
        }
        float scale = group_search(t, xval, weight, waux, max, 15, true, L);
        if (scale < 0) {
            scale = -scale;
            for (int k = 0; k < 4; ++k)
                block_signs[k] = (uint8_t)(~block_signs[k] & 127);
        }
        for (int k = 0; k < 8; ++k)
            q3[8 * ib + k] = (uint8_t)quad_index(t, L + 4 * k);
        sas[ib] = block_signs[0] | ((uint32_t)block_signs[1] << 7) | ((uint32_t)block_signs[2] << 14) |
                  ((uint32_t)block_signs[3] << 21);
        scales[ib] = scale;
        max_scale = max_scale > scale ? max_scale : scale;
    }
    memset(y, 0, sizeof *y);
    if (!max_scale) return;
    float d = max_scale / 31;
    y->d = hearth_f32_to_f16(d * 1.0125f);
    float id = 1 / d;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
        int l = nint(0.5f * (id * scales[ib] - 1));
        l = IMAX(0, IMIN(15, l));
        sas[ib] |= (uint32_t)l << 28;
    }
    memcpy(y->qs, q3, QK_K / 4);
    memcpy(y->qs + QK_K / 4, sas, sizeof sas);
}

static void iq3_s_block(const iq3_tab *t, const float *xbl, const float *qwbl, block_iq3_s *y) {
    float scales[QK_K / 32], weight[32], waux[32], xval[32], max_scale = 0;
    int8_t L[32];
    memset(y, 0, sizeof *y);
    /* ggml advances these only past groups that are not all zero */
    uint8_t *qs = y->qs, *signs = y->signs;
    const float sigma2 = block_sigma2(xbl);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
        const float *xb = xbl + 32 * ib;
        uint8_t block_signs[4];
        group_weights(xb, qwbl ? qwbl + 32 * ib : NULL, sigma2, weight, waux);
        for (int k = 0; k < 4; ++k) {
            uint8_t s = 0;
            for (int i = 0; i < 8; ++i) {
                if (xb[8 * k + i] >= 0)
                    xval[8 * k + i] = xb[8 * k + i];
                else {
                    xval[8 * k + i] = -xb[8 * k + i];
                    s |= (uint8_t)(1 << i);
                }
            }
            block_signs[k] = s;
        }
        float max = xval[0];
        for (int i = 1; i < 32; ++i)
            max = max > xval[i] ? max : xval[i];
        if (!max) {
            scales[ib] = 0;
            continue;
        }
        float scale = group_search(t, xval, weight, waux, max, 9, false, L);
        if (scale < 0) {
            scale = -scale;
            for (int k = 0; k < 4; ++k)
                block_signs[k] = (uint8_t)~block_signs[k];
        }
        for (int k = 0; k < 8; ++k) {
            const int gi = quad_index(t, L + 4 * k);
            qs[k] = (uint8_t)(gi & 255);
            y->qh[(ib * 8 + k) / 8] |= (uint8_t)((gi >> 8) << ((ib * 8 + k) % 8));
        }
        qs += 8;
        memcpy(signs, block_signs, 4);
        signs += 4;
        scales[ib] = scale;
        max_scale = max_scale > scale ? max_scale : scale;
    }
    if (!max_scale) return;
    float d = max_scale / 31;
    y->d = hearth_f32_to_f16(d * 1.033f);
    float id = 1 / d;
    for (int ib = 0; ib < QK_K / 32; ib += 2) {
        int l1 = nint(0.5f * (id * scales[ib + 0] - 1));
        l1 = IMAX(0, IMIN(15, l1));
        int l2 = nint(0.5f * (id * scales[ib + 1] - 1));
        l2 = IMAX(0, IMIN(15, l2));
        y->scales[ib / 2] = (uint8_t)(l1 | (l2 << 4));
    }
}

bool hearth_iq3_xxs_quantize(const float *x, void *dst, int64_t n, const float *qw) {
    const iq3_tab *t = tables(256);
    if (!t || n < 0 || n % QK_K) return false;
    block_iq3_xxs *y = dst;
    for (int64_t i = 0; i < n / QK_K; ++i)
        iq3_xxs_block(t, x + QK_K * i, qw ? qw + QK_K * i : NULL, &y[i]);
    return true;
}

bool hearth_iq3_s_quantize(const float *x, void *dst, int64_t n, const float *qw) {
    const iq3_tab *t = tables(512);
    if (!t || n < 0 || n % QK_K) return false;
    block_iq3_s *y = dst;
    for (int64_t i = 0; i < n / QK_K; ++i)
        iq3_s_block(t, x + QK_K * i, qw ? qw + QK_K * i : NULL, &y[i]);
    return true;
}

void hearth_iq3_xxs_from_float(const float *x, void *dst, int64_t n) {
    if (!hearth_iq3_xxs_quantize(x, dst, n, NULL) && n > 0 && n % QK_K == 0)
        memset(dst, 0, (size_t)(n / QK_K) * sizeof(block_iq3_xxs));
}

void hearth_iq3_s_from_float(const float *x, void *dst, int64_t n) {
    if (!hearth_iq3_s_quantize(x, dst, n, NULL) && n > 0 && n % QK_K == 0)
        memset(dst, 0, (size_t)(n / QK_K) * sizeof(block_iq3_s));
}
