/*
 * quant_iq2.c - the grid search tables of IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S/IQ1_M
 * and the IQ2 row quantizers (the IQ1 ones are in quant_iq1.c; shared parts
 * in quant_iq_grid.h). See quant_iq2.h.
 *
 * Owns: four table sets in static storage (the grids as 2l+1 bytes, the
 * pattern map and the neighbour lists), each written once by its
 * pthread_once initialiser and read-only afterwards. Nothing else is global.
 * Invariants: the tables equal ggml's iq2xs_init_impl output entry for entry
 * (the unit test checks the counts and hashes); every float expression of
 * the searches keeps ggml's operand order (core/ is built without FMA
 * contraction), so a row gives llama-quantize's bytes; rows are independent.
 * Nothing here prints, allocates or exits.
 */
#include "core/quant_iq2.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/dtype_iq.h"
#include "core/quant_iq_grid.h"
#include "core/quant_weighted.h"

/* ---------------------------------------------------------------- tables */

/* Neighbour storage per set: list entries + one count per off-grid pattern
 * (the totals ggml's init computes for these grids; build() checks them). */
enum {
    NB_XXS = 373964 + 43436,
    NB_XS = 508542 + 43180,
    NB_1S = 1333695 + 41644,
    NB_S = 166432 + 42668,
};

static uint64_t grid_xxs[256], grid_xs[512], grid_s[1024], grid_1s[2048];
static uint16_t nb_xxs[NB_XXS], nb_xs[NB_XS], nb_s[NB_S], nb_1s[NB_1S];
static int32_t map_store[4][HEARTH_IQ2_KMAP_SIZE];

typedef struct set_def {
    const uint64_t *src; /* the format grid (dtype_iq_grids.c) */
    bool ternary;        /* IQ1: bytes -1/0/1; IQ2: magnitudes 0x08/0x19/0x2b */
    int size, nwant;
    uint64_t *grid;
    uint16_t *nb;
    int64_t nb_cap;
} set_def;

static const set_def set_defs[4] = {
    {hearth_iq2xxs_grid, false, 256, 2, grid_xxs, nb_xxs, NB_XXS},
    {hearth_iq2xs_grid, false, 512, 2, grid_xs, nb_xs, NB_XS},
    {hearth_iq1s_grid, true, 2048, 3, grid_1s, nb_1s, NB_1S},
    {hearth_iq2s_grid, false, 1024, 1, grid_s, nb_s, NB_S},
};

static hearth_iq2_tables tables[4];
static bool tables_ok[4];

/* Level 0..2 of one grid byte. */
static int grid_level(uint8_t b, bool ternary) {
    if (ternary) return (int8_t)b + 1;
    return b == 0x08 ? 0 : b == 0x19 ? 1 : 2;
}

/* The neighbours of off-grid pattern i: every grid point at one of the
 * nwant smallest distances, by distance then index. Returns the count, or
 * -1 when they do not fit in nb[0 .. cap). */
static int list_neighbours(const set_def *d, int i, uint16_t *nb, int64_t cap) {
    int pos[8], dist[2048], sel[3], nsel = 0;
    for (int k = 0; k < 8; ++k)
        pos[k] = 2 * ((i >> 2 * k) & 3) + 1;
    for (int j = 0; j < d->size; ++j) {
        int d2 = 0;
        for (int k = 0; k < 8; ++k) {
            const int diff = hearth_iq_grid8(d->grid[j], k) - pos[k];
            d2 += diff * diff;
        }
        dist[j] = d2;
    }
    for (int last = -1; nsel < d->nwant; last = sel[nsel++]) {
        int m = -1;
        for (int j = 0; j < d->size; ++j)
            if (dist[j] > last && (m < 0 || dist[j] < m)) m = dist[j];
        if (m < 0) break;
        sel[nsel] = m;
    }
    int n = 0;
    for (int s = 0; s < nsel; ++s)
        for (int j = 0; j < d->size; ++j) {
            if (dist[j] != sel[s]) continue;
            if (1 + n >= cap) return -1;
            nb[1 + n++] = (uint16_t)j;
        }
    nb[0] = (uint16_t)n;
    return n;
}

static void build_set(int s) {
    const set_def *d = &set_defs[s];
    int32_t *map = map_store[s];
    for (int i = 0; i < HEARTH_IQ2_KMAP_SIZE; ++i)
        map[i] = -1;
    for (int k = 0; k < d->size; ++k) {
        uint64_t g = 0;
        int u = 0;
        for (int j = 0; j < 8; ++j) {
            const int l = grid_level(hearth_iq_grid8(d->src[k], j), d->ternary);
            g |= (uint64_t)(2 * l + 1) << (8 * j);
            u |= l << (2 * j);
        }
        d->grid[k] = g;
        if (u >= HEARTH_IQ2_KMAP_SIZE) return;
        map[u] = k;
    }
    int64_t off = 0, n_nb = 0, n_off = 0;
    for (int i = 0; i < HEARTH_IQ2_KMAP_SIZE; ++i) {
        if (map[i] >= 0) continue;
        const int n = list_neighbours(d, i, d->nb + off, d->nb_cap - off);
        if (n <= 0) return;
        map[i] = (int32_t)(-(off + 1));
        off += 1 + n;
        n_nb += n;
        ++n_off;
    }
    tables[s] = (hearth_iq2_tables){d->grid, map, d->nb, d->size, d->nwant, n_nb, n_off};
    tables_ok[s] = true;
}

static pthread_once_t set_once[4] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                     PTHREAD_ONCE_INIT};
static void build_xxs(void) {
    build_set(0);
}
static void build_xs(void) {
    build_set(1);
}
static void build_1s(void) {
    build_set(2);
}
static void build_s(void) {
    build_set(3);
}

const hearth_iq2_tables *hearth_iq2_tables_for(hearth_dtype t) {
    static void (*const builders[4])(void) = {build_xxs, build_xs, build_1s, build_s};
    int s;
    switch (t) {
    case HEARTH_IQ2_XXS: s = 0; break;
    case HEARTH_IQ2_XS: s = 1; break;
    case HEARTH_IQ1_S:
    case HEARTH_IQ1_M: s = 2; break;
    case HEARTH_IQ2_S: s = 3; break;
    default: return NULL;
    }
    pthread_once(&set_once[s], builders[s]);
    return tables_ok[s] ? &tables[s] : NULL;
}

/* ---------------------------------------------------------------- IQ2 search */

/* Pattern of 8 levels L[0..7] (each 0..2 from the searches). */
static int pattern8(const int8_t *L) {
    int u = 0;
    for (int i = 0; i < 8; ++i)
        u |= L[i] << 2 * i;
    return u;
}

/* ggml's iq2_find_best_neighbour: the neighbour of off-grid pattern u with
 * the least weighted squared error at `scale`; its levels go to L. */
static int iq2_best_neighbour(const hearth_iq2_tables *t, int u, const float *xval, const float *weight,
                              float scale, int8_t *L) {
    const uint16_t *nb = t->neighbours - t->map[u] - 1;
    float best_d2 = FLT_MAX;
    int gi = nb[1]; /* ggml asserts one is found; with NaN input keep the nearest */
    for (int j = 1; j <= nb[0]; ++j) {
        const uint64_t g = t->grid[nb[j]];
        float d2 = 0;
        for (int i = 0; i < 8; ++i) {
            float q = hearth_iq_grid8(g, i);
            float diff = scale * q - xval[i];
            d2 += weight[i] * diff * diff;
        }
        if (d2 < best_d2) {
            best_d2 = d2;
            gi = nb[j];
        }
    }
    for (int i = 0; i < 8; ++i)
        L[i] = (int8_t)((hearth_iq_grid8(t->grid[gi], i) - 1) / 2);
    return gi;
}

/* Grid index of the 8 levels L, or of their nearest grid point when they
 * are off the grid (ggml aborts there; it cannot happen with finite input). */
static int iq2_index(const hearth_iq2_tables *t, const int8_t *L) {
    const int u = pattern8(L);
    if (u < 0 || u >= HEARTH_IQ2_KMAP_SIZE) return 0;
    const int gi = t->map[u];
    return gi >= 0 ? gi : t->neighbours[-gi - 1 + 1];
}

/* Levels of 8 values at inverse scale id, mapped onto the grid (ggml's inner
 * step, shared by every IQ2 search). Returns true when already on it. */
static bool iq2_round8(const hearth_iq2_tables *t, const float *xval, const float *waux, float id,
                       float scale, int8_t *L) {
    const int kMaxQ = 3;
    for (int i = 0; i < 8; ++i) {
        int l = hearth_iq_nint(0.5f * (id * xval[i] - 1));
        L[i] = (int8_t)IQ_MAX(0, IQ_MIN(kMaxQ - 1, l));
    }
    const int u = pattern8(L);
    if (t->map[u] >= 0) return true;
    iq2_best_neighbour(t, u, xval, waux, scale, L);
    return false;
}

/* sum w x q and sum w q^2 over n values with q = 2L + 1. */
static void iq2_sums(int n, const float *weight, const float *xval, const int8_t *L, float *sumqx,
                     float *sumq2) {
    float sx = 0, s2 = 0;
    for (int i = 0; i < n; ++i) {
        float w = weight[i];
        float q = 2 * L[i] + 1;
        sx += w * xval[i] * q;
        s2 += w * q * q;
    }
    *sumqx = sx;
    *sumq2 = s2;
}

/* Signs of 8 values with an even count of negatives (IQ2_XXS, IQ2_XS): the
 * value of least weighted magnitude gets its sign flipped when needed. */
static uint8_t iq2_even_signs(const float *xb, const float *weight, float *xval) {
    int nflip = 0;
    uint8_t s = 0;
    for (int i = 0; i < 8; ++i) {
        if (xb[i] >= 0)
            xval[i] = xb[i];
        else {
            xval[i] = -xb[i];
            ++nflip;
            s |= (uint8_t)(1 << i);
        }
    }
    if (nflip % 2) {
        int imin = 0;
        float min = weight[imin] * xb[imin] * xb[imin];
        for (int i = 1; i < 8; ++i) {
            float ax = weight[i] * xb[i] * xb[i];
            if (ax < min) {
                min = ax;
                imin = i;
            }
        }
        xval[imin] = -xval[imin];
        s ^= (uint8_t)(1 << imin);
    }
    return s & 127;
}

/* IQ2_XXS's search for one group of 32 (4 x 8): *out_scale and levels L.
 * False when the group has no scale (its weights are all zero). */
static bool iq2_xxs_group(const hearth_iq2_tables *t, const float *xval, const float *weight,
                          const float *waux, int8_t *L, float *out_scale) {
    const int kMaxQ = 3;
    int8_t Laux[32];
    float scale = hearth_quant_qp_levels(32, kMaxQ + 1, xval, (uint8_t *)L, weight);
    float eff_max = scale * kMaxQ;
    if (eff_max <= 0) return false;
    float best = 0, sumqx, sumq2;
    for (int is = -6; is <= 6; ++is) {
        float id = (2 * kMaxQ - 1 + is * 0.1f) / eff_max;
        float this_scale = 1 / id;
        for (int k = 0; k < 4; ++k)
            iq2_round8(t, xval + 8 * k, waux + 8 * k, id, this_scale, Laux + 8 * k);
        iq2_sums(32, weight, xval, Laux, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            memcpy(L, Laux, 32);
        }
    }
    if (scale > 0) {
        float id = 1 / scale;
        for (int k = 0; k < 4; ++k) {
            iq2_round8(t, xval + 8 * k, waux + 8 * k, id, scale, L + 8 * k);
        }
        iq2_sums(32, weight, xval, L, &sumqx, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    *out_scale = scale;
    return true;
}

static void iq2_xxs_row(const hearth_iq2_tables *t, const float *x, block_iq2_xxs *y, int64_t n,
                        const float *qw) {
    float scales[QK_K / 32], weight[32], xval[32], waux[32];
    int8_t L[32];
    uint8_t block_signs[4];
    uint32_t q2[2 * (QK_K / 32)];
    for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
        y[ibl].d = hearth_f32_to_f16(0.f);
        memset(q2, 0, QK_K / 4);
        float max_scale = 0;
        const float *xbl = x + QK_K * ibl;
        float sumx2 = 0;
        for (int i = 0; i < QK_K; ++i)
            sumx2 += xbl[i] * xbl[i];
        float sigma2 = sumx2 / QK_K;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            const float *xb = xbl + 32 * ib;
            for (int i = 0; i < 32; ++i)
                weight[i] = (qw ? qw[QK_K * ibl + 32 * ib + i] : 1.0f) * sqrtf(sigma2 + xb[i] * xb[i]);
            for (int i = 0; i < 32; ++i)
                waux[i] = sqrtf(weight[i]);
            for (int k = 0; k < 4; ++k)
                block_signs[k] = iq2_even_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k);
            float max = xval[0];
            for (int i = 1; i < 32; ++i)
                max = IQ_MAX(max, xval[i]);
            float scale;
            if (max < IQ_EPS || !iq2_xxs_group(t, xval, weight, waux, L, &scale)) {
                scales[ib] = 0; /* an empty group: (almost) zero, or no weight */
                continue;
            }
            if (scale < 0) { /* ggml: never happens; flip the signs to keep the scale positive */
                scale = -scale;
                for (int k = 0; k < 4; ++k)
                    block_signs[k] = (uint8_t)(~block_signs[k] & 127);
            }
            for (int k = 0; k < 4; ++k) {
                q2[2 * ib + 0] |= (uint32_t)iq2_index(t, L + 8 * k) << 8 * k;
                q2[2 * ib + 1] |= (uint32_t)block_signs[k] << 7 * k;
            }
            scales[ib] = scale;
            max_scale = IQ_MAX(max_scale, scale);
        }
        if (!max_scale) {
            memset(y[ibl].qs, 0, QK_K / 4);
            continue;
        }
        float d = max_scale / 31;
        y[ibl].d = hearth_f32_to_f16(d);
        float id = 1 / d;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            int l = hearth_iq_nint(0.5f * (id * scales[ib] - 1));
            l = IQ_MAX(0, IQ_MIN(15, l));
            q2[2 * ib + 1] |= (uint32_t)l << 28;
        }
        memcpy(y[ibl].qs, q2, QK_K / 4);
    }
}

/* The search of IQ2_XS and IQ2_S for one group of 16 (2 x 8), max > eps:
 * 19 trial scales, then the off-grid halves redone at the best one. */
static float iq2_group16(const hearth_iq2_tables *t, const float *xval, const float *weight,
                         const float *waux, float max, int8_t *L) {
    const int kMaxQ = 3;
    int8_t Laux[16];
    bool is_on_grid[2] = {true, true}, is_on_grid_aux[2];
    float best = 0, sumqx, sumq2;
    float scale = max / (2 * kMaxQ - 1);
    for (int is = -9; is <= 9; ++is) {
        float id = (2 * kMaxQ - 1 + is * 0.1f) / max;
        float this_scale = 1 / id;
        for (int k = 0; k < 2; ++k)
            is_on_grid_aux[k] = iq2_round8(t, xval + 8 * k, waux + 8 * k, id, this_scale, Laux + 8 * k);
        iq2_sums(16, weight, xval, Laux, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            memcpy(L, Laux, 16);
            is_on_grid[0] = is_on_grid_aux[0];
            is_on_grid[1] = is_on_grid_aux[1];
        }
    }
    if ((!is_on_grid[0] || !is_on_grid[1]) && scale > 0) {
        float id = 1 / scale;
        for (int k = 0; k < 2; ++k)
            if (!is_on_grid[k]) iq2_round8(t, xval + 8 * k, waux + 8 * k, id, scale, L + 8 * k);
        iq2_sums(16, weight, xval, L, &sumqx, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    return scale;
}

/* The 4-bit group scales of IQ2_XS / IQ2_S, two per byte. */
static void iq2_pack_scales16(const float *scales, float d, uint8_t out[QK_K / 32]) {
    float id = 1 / d;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
        int l = hearth_iq_nint(0.5f * (id * scales[ib] - 1));
        l = IQ_MAX(0, IQ_MIN(15, l));
        if (ib % 2 == 0)
            out[ib / 2] = (uint8_t)l;
        else
            out[ib / 2] |= (uint8_t)(l << 4);
    }
}

static void iq2_xs_row(const hearth_iq2_tables *t, const float *x, block_iq2_xs *y, int64_t n,
                       const float *qw) {
    float scales[QK_K / 16], weight[16], xval[16], waux[16];
    int8_t L[16];
    uint8_t block_signs[2];
    uint16_t q2[2 * (QK_K / 16)];
    for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
        y[ibl].d = hearth_f32_to_f16(0.f);
        memset(q2, 0, QK_K / 4);
        memset(y[ibl].scales, 0, QK_K / 32);
        float max_scale = 0;
        const float *xbl = x + QK_K * ibl;
        float sumx2 = 0;
        for (int i = 0; i < QK_K; ++i)
            sumx2 += xbl[i] * xbl[i];
        float sigma2 = sumx2 / QK_K;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            const float *xb = xbl + 16 * ib;
            for (int i = 0; i < 16; ++i)
                weight[i] = (qw ? qw[QK_K * ibl + 16 * ib + i] : 1.0f) * sqrtf(sigma2 + xb[i] * xb[i]);
            for (int i = 0; i < 16; ++i)
                waux[i] = sqrtf(weight[i]);
            for (int k = 0; k < 2; ++k)
                block_signs[k] = iq2_even_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k);
            float max = xval[0];
            for (int i = 1; i < 16; ++i)
                max = IQ_MAX(max, xval[i]);
            memset(L, 0, 16);
            if (max < IQ_EPS) {
                scales[ib] = 0;
                continue;
            }
            float scale = iq2_group16(t, xval, weight, waux, max, L);
            if (scale < 0) {
                scale = -scale;
                for (int k = 0; k < 2; ++k)
                    block_signs[k] = (uint8_t)(~block_signs[k] & 127);
            }
            for (int k = 0; k < 2; ++k)
                q2[2 * ib + k] = (uint16_t)(iq2_index(t, L + 8 * k) | (block_signs[k] << 9));
            scales[ib] = scale;
            max_scale = IQ_MAX(max_scale, scale);
        }
        if (!max_scale) {
            memset(y[ibl].qs, 0, QK_K / 4);
            continue;
        }
        float d = max_scale / 31;
        y[ibl].d = hearth_f32_to_f16(d);
        iq2_pack_scales16(scales, d, y[ibl].scales);
        memcpy(y[ibl].qs, q2, QK_K / 4);
    }
}

static void iq2_s_row(const hearth_iq2_tables *t, const float *x, block_iq2_s *y, int64_t n,
                      const float *qw) {
    float scales[QK_K / 16], weight[16], xval[16], waux[16];
    int8_t L[16];
    uint8_t block_signs[2];
    for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
        memset(&y[ibl], 0, sizeof(block_iq2_s));
        y[ibl].d = hearth_f32_to_f16(0.f);
        float max_scale = 0;
        const float *xbl = x + QK_K * ibl;
        float sumx2 = 0;
        for (int i = 0; i < QK_K; ++i)
            sumx2 += xbl[i] * xbl[i];
        float sigma2 = 2 * sumx2 / QK_K;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            const float *xb = xbl + 16 * ib;
            if (qw) {
                const float *q = qw + QK_K * ibl + 16 * ib;
                for (int i = 0; i < 16; ++i)
                    weight[i] = q[i] * sqrtf(sigma2 + xb[i] * xb[i]);
            } else {
                for (int i = 0; i < 16; ++i)
                    weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
            }
            for (int i = 0; i < 16; ++i)
                waux[i] = sqrtf(weight[i]);
            for (int k = 0; k < 2; ++k) { /* IQ2_S stores all 8 signs */
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
            for (int i = 1; i < 16; ++i)
                max = IQ_MAX(max, xval[i]);
            memset(L, 0, 16);
            if (max < IQ_EPS_IQ2_S) {
                scales[ib] = 0;
                continue;
            }
            float scale = iq2_group16(t, xval, weight, waux, max, L);
            if (scale < 0) {
                scale = -scale;
                for (int k = 0; k < 2; ++k)
                    block_signs[k] = (uint8_t)~block_signs[k];
            }
            for (int k = 0; k < 2; ++k) {
                const int gi = iq2_index(t, L + 8 * k), i8 = 2 * ib + k;
                y[ibl].qs[i8] = (uint8_t)(gi & 255);
                y[ibl].qh[i8 / 4] |= (uint8_t)((gi >> 8) << 2 * (i8 % 4));
                y[ibl].qs[QK_K / 8 + i8] = block_signs[k];
            }
            scales[ib] = scale;
            max_scale = IQ_MAX(max_scale, scale);
        }
        if (!max_scale) continue;
        float d = max_scale / 31;
        y[ibl].d = hearth_f32_to_f16(d * 0.9875f);
        iq2_pack_scales16(scales, d, y[ibl].scales);
    }
}

/* ---------------------------------------------------------------- entry points */

bool hearth_iq2_quantize_row(hearth_dtype t, const float *x, void *dst, int64_t n, const float *qw) {
    if (n < 0 || n % QK_K) return false;
    const hearth_iq2_tables *tab = hearth_iq2_tables_for(t);
    if (!tab) return false;
    switch (t) {
    case HEARTH_IQ2_XXS: iq2_xxs_row(tab, x, dst, n, qw); return true;
    case HEARTH_IQ2_XS: iq2_xs_row(tab, x, dst, n, qw); return true;
    case HEARTH_IQ2_S: iq2_s_row(tab, x, dst, n, qw); return true;
    case HEARTH_IQ1_S: hearth_iq1_s_row(tab, x, dst, n, qw); return true;
    case HEARTH_IQ1_M: hearth_iq1_m_row(tab, x, dst, n, qw); return true;
    default: return false;
    }
}

/* The traits table's from_float cannot fail: the tables are static storage
 * and only a changed grid (caught by the unit test) could leave them unbuilt;
 * then the row is written as zeros rather than left undefined. */
static void from_float(hearth_dtype t, const float *x, void *dst, int64_t n) {
    if (!hearth_iq2_quantize_row(t, x, dst, n, NULL)) memset(dst, 0, hearth_dtype_row_size(t, n));
}

void hearth_iq2_xxs_from_float(const float *x, void *dst, int64_t n) {
    from_float(HEARTH_IQ2_XXS, x, dst, n);
}
void hearth_iq2_xs_from_float(const float *x, void *dst, int64_t n) {
    from_float(HEARTH_IQ2_XS, x, dst, n);
}
void hearth_iq2_s_from_float(const float *x, void *dst, int64_t n) {
    from_float(HEARTH_IQ2_S, x, dst, n);
}
void hearth_iq1_s_from_float(const float *x, void *dst, int64_t n) {
    from_float(HEARTH_IQ1_S, x, dst, n);
}
void hearth_iq1_m_from_float(const float *x, void *dst, int64_t n) {
    from_float(HEARTH_IQ1_M, x, dst, n);
}
