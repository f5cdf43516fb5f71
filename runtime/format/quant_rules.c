/*
 * quant_rules.c - llama.cpp's file types and per-tensor type rules for
 * `hearth quantize` (see quant_rules.h). The rules follow llama.cpp's
 * llama_tensor_get_type (dc02e1f) for every file type Hearth names, IQ types
 * and the 8-expert bumps included; not its Falcon and 70B-only rules. Facts
 * taken from its source, code written here.
 * Stateless apart from the caller's counters.
 */
#include "quant_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct ftype_entry {
    const char *name;
    hearth_ftype ftype;
    hearth_dtype base;
} ftype_entry;

static const ftype_entry k_ftypes[] = {
    {"F32", HEARTH_FTYPE_F32, HEARTH_F32},
    {"F16", HEARTH_FTYPE_F16, HEARTH_F16},
    {"BF16", HEARTH_FTYPE_BF16, HEARTH_BF16},
    {"Q8_0", HEARTH_FTYPE_Q8_0, HEARTH_Q8_0},
    {"Q4_0", HEARTH_FTYPE_Q4_0, HEARTH_Q4_0},
    {"Q4_1", HEARTH_FTYPE_Q4_1, HEARTH_Q4_1},
    {"Q5_0", HEARTH_FTYPE_Q5_0, HEARTH_Q5_0},
    {"Q5_1", HEARTH_FTYPE_Q5_1, HEARTH_Q5_1},
    {"Q2_K", HEARTH_FTYPE_Q2_K, HEARTH_Q2_K},
    {"Q3_K_S", HEARTH_FTYPE_Q3_K_S, HEARTH_Q3_K},
    {"Q3_K_M", HEARTH_FTYPE_Q3_K_M, HEARTH_Q3_K},
    {"Q3_K_L", HEARTH_FTYPE_Q3_K_L, HEARTH_Q3_K},
    {"Q4_K_S", HEARTH_FTYPE_Q4_K_S, HEARTH_Q4_K},
    {"Q4_K_M", HEARTH_FTYPE_Q4_K_M, HEARTH_Q4_K},
    {"Q5_K_S", HEARTH_FTYPE_Q5_K_S, HEARTH_Q5_K},
    {"Q5_K_M", HEARTH_FTYPE_Q5_K_M, HEARTH_Q5_K},
    {"Q6_K", HEARTH_FTYPE_Q6_K, HEARTH_Q6_K},
    {"IQ4_NL", HEARTH_FTYPE_IQ4_NL, HEARTH_IQ4_NL},
    {"IQ4_XS", HEARTH_FTYPE_IQ4_XS, HEARTH_IQ4_XS},
    /* llama.cpp's IQ file types; IQ2_S's base is IQ2_XS and IQ3_XS's IQ3_S, as there */
    {"IQ3_XXS", HEARTH_FTYPE_IQ3_XXS, HEARTH_IQ3_XXS},
    {"IQ3_XS", HEARTH_FTYPE_IQ3_XS, HEARTH_IQ3_S},
    {"IQ3_S", HEARTH_FTYPE_IQ3_S, HEARTH_IQ3_S},
    {"IQ3_M", HEARTH_FTYPE_IQ3_M, HEARTH_IQ3_S},
    {"IQ2_XXS", HEARTH_FTYPE_IQ2_XXS, HEARTH_IQ2_XXS},
    {"IQ2_XS", HEARTH_FTYPE_IQ2_XS, HEARTH_IQ2_XS},
    {"IQ2_S", HEARTH_FTYPE_IQ2_S, HEARTH_IQ2_XS},
    {"IQ2_M", HEARTH_FTYPE_IQ2_M, HEARTH_IQ2_S},
    {"IQ1_S", HEARTH_FTYPE_IQ1_S, HEARTH_IQ1_S},
    {"IQ1_M", HEARTH_FTYPE_IQ1_M, HEARTH_IQ1_M},
};
#define N_FTYPES (sizeof k_ftypes / sizeof k_ftypes[0])

/* llama-quantize's short aliases. */
static const struct {
    const char *alias;
    hearth_ftype ftype;
} k_aliases[] = {{"Q3_K", HEARTH_FTYPE_Q3_K_M}, {"Q4_K", HEARTH_FTYPE_Q4_K_M}, {"Q5_K", HEARTH_FTYPE_Q5_K_M}};

bool hearth_ftype_from_name(const char *name, hearth_ftype *out) {
    if (!name) return false;
    for (size_t i = 0; i < N_FTYPES; i++)
        if (strcasecmp(name, k_ftypes[i].name) == 0) {
            *out = k_ftypes[i].ftype;
            return true;
        }
    for (size_t i = 0; i < sizeof k_aliases / sizeof k_aliases[0]; i++)
        if (strcasecmp(name, k_aliases[i].alias) == 0) {
            *out = k_aliases[i].ftype;
            return true;
        }
    /* llama-quantize also takes the LLAMA_FTYPE number ("15" = Q4_K_M) */
    char *end;
    long v = name[0] >= '0' && name[0] <= '9' ? strtol(name, &end, 10) : -1;
    if (v >= 0 && !*end)
        for (size_t i = 0; i < N_FTYPES; i++)
            if ((long)k_ftypes[i].ftype == v) {
                *out = k_ftypes[i].ftype;
                return true;
            }
    return false;
}

const char *hearth_ftype_name(hearth_ftype f) {
    for (size_t i = 0; i < N_FTYPES; i++)
        if (k_ftypes[i].ftype == f) return k_ftypes[i].name;
    return "?";
}

const char *hearth_ftype_list(void) {
    static char buf[512];
    if (!buf[0]) {
        size_t n = 0;
        for (size_t i = 0; i < N_FTYPES; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? ", " : "", k_ftypes[i].name);
    }
    return buf;
}

hearth_dtype hearth_ftype_base_type(hearth_ftype f) {
    for (size_t i = 0; i < N_FTYPES; i++)
        if (k_ftypes[i].ftype == f) return k_ftypes[i].base;
    return HEARTH_F32;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool hearth_quant_wants(const char *name, uint32_t n_dims) {
    if (!ends_with(name, "weight") || n_dims < 2) return false;
    if (strstr(name, "_norm.weight")) return false;
    static const char *const keep[] = {"ffn_gate_inp.weight", "position_embd.weight", "token_types.weight",
                                       "rope_freqs.weight", "attn_rel_b.weight"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (strstr(name, keep[i])) return false;
    return true;
}

hearth_dtype hearth_quant_fallback(hearth_dtype t, int64_t ne0) {
    if (ne0 % hearth_dtype_info(t)->block_size == 0) return t;
    hearth_dtype f;
    switch (t) {
    case HEARTH_IQ1_S:
    case HEARTH_IQ1_M:
    case HEARTH_IQ2_XXS:
    case HEARTH_IQ2_XS:
    case HEARTH_IQ2_S:
    case HEARTH_IQ3_XXS:
    case HEARTH_IQ3_S:
    case HEARTH_IQ4_XS: f = HEARTH_IQ4_NL; break;
    case HEARTH_Q2_K:
    case HEARTH_Q3_K: f = HEARTH_Q4_0; break;
    case HEARTH_Q4_K: f = HEARTH_Q5_0; break;
    case HEARTH_Q5_K: f = HEARTH_Q5_1; break;
    case HEARTH_Q6_K: f = HEARTH_Q8_0; break;
    default: f = HEARTH_F16; break;
    }
    if (ne0 % hearth_dtype_info(f)->block_size != 0) f = HEARTH_F16;
    return f;
}

bool hearth_quant_requires_imatrix(hearth_ftype f, const char *name, hearth_dtype t) {
    (void)f; /* llama.cpp's one ftype-dependent case, Q2_K in a Q2_K_S file, is not a type here */
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "per_layer_token_embd.weight") ||
        !strcmp(name, "output.weight"))
        return false;
    switch (t) {
    case HEARTH_IQ3_XXS:
    case HEARTH_IQ2_XXS:
    case HEARTH_IQ2_XS:
    case HEARTH_IQ2_S:
    case HEARTH_IQ1_M:
    case HEARTH_IQ1_S: return true;
    default: return false;
    }
}

/* llama.cpp's use_more_bits: first and last eighth, and every third between. */
static bool more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* The 2-bit and 1-bit file types, which llama.cpp treats as one group. */
static bool iq2_group(hearth_ftype f) {
    return f == HEARTH_FTYPE_IQ2_XXS || f == HEARTH_FTYPE_IQ2_XS || f == HEARTH_FTYPE_IQ1_S ||
           f == HEARTH_FTYPE_IQ2_S || f == HEARTH_FTYPE_IQ2_M || f == HEARTH_FTYPE_IQ1_M;
}

/* The tensor classes llama.cpp's rules distinguish (its tensor_get_category). */
typedef enum {
    CAT_OTHER,
    CAT_OUTPUT,
    CAT_TOKEN_EMBD,
    CAT_ATTN_V, /* attn_v, attn_qkv, attn_kv_b */
    CAT_ATTN_K,
    CAT_ATTN_Q,
    CAT_ATTN_OUTPUT,
    CAT_FFN_UP,
    CAT_FFN_GATE,
    CAT_FFN_DOWN,
} q_cat;

static q_cat category(const char *name) {
    if (!strcmp(name, "output.weight")) return CAT_OUTPUT;
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "per_layer_token_embd.weight"))
        return CAT_TOKEN_EMBD;
    if (strstr(name, "attn_qkv.weight") || strstr(name, "attn_kv_b.weight") || strstr(name, "attn_v.weight"))
        return CAT_ATTN_V;
    if (strstr(name, "attn_k.weight")) return CAT_ATTN_K;
    if (strstr(name, "attn_q.weight")) return CAT_ATTN_Q;
    if (strstr(name, "attn_output.weight")) return CAT_ATTN_OUTPUT;
    if (strstr(name, "ffn_up")) return CAT_FFN_UP;
    if (strstr(name, "ffn_gate")) return CAT_FFN_GATE;
    if (strstr(name, "ffn_down")) return CAT_FFN_DOWN;
    return CAT_OTHER;
}

static hearth_dtype output_type(hearth_ftype f, hearth_dtype t, int64_t ne0) {
    if (ne0 % hearth_dtype_info(t)->block_size != 0) return HEARTH_Q8_0;
    if (iq2_group(f) || f == HEARTH_FTYPE_IQ3_XXS) return HEARTH_Q5_K;
    return t != HEARTH_Q8_0 ? HEARTH_Q6_K : t;
}

static hearth_dtype token_embd_type(hearth_ftype f, hearth_dtype t) {
    switch (f) {
    case HEARTH_FTYPE_IQ2_XXS:
    case HEARTH_FTYPE_IQ2_XS:
    case HEARTH_FTYPE_IQ1_S:
    case HEARTH_FTYPE_IQ1_M: return HEARTH_Q2_K;
    case HEARTH_FTYPE_IQ2_S:
    case HEARTH_FTYPE_IQ2_M:
    case HEARTH_FTYPE_IQ3_XXS: return HEARTH_IQ3_S;
    default: return t;
    }
}

/* IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M, IQ1_S, IQ1_M: attn_v, the first eighth of
 * ffn_down and attn_output get a bigger type. */
static hearth_dtype iq2_group_type(hearth_ftype f, const hearth_quant_model *m, q_cat cat, int idown,
                                   hearth_dtype t) {
    const bool s_or_m = f == HEARTH_FTYPE_IQ2_S || f == HEARTH_FTYPE_IQ2_M;
    switch (cat) {
    case CAT_ATTN_V:
        if (m->n_gqa >= 4 || m->n_expert >= 4) return HEARTH_Q4_K;
        return s_or_m ? HEARTH_IQ3_S : HEARTH_Q2_K;
    case CAT_ATTN_K: return m->n_expert == 8 ? HEARTH_Q4_K : t;
    case CAT_FFN_DOWN:
        if (idown < m->n_layer / 8) return s_or_m ? HEARTH_IQ3_S : HEARTH_Q2_K;
        return t;
    case CAT_ATTN_OUTPUT:
        if (m->n_expert == 8) return HEARTH_Q5_K;
        if (f == HEARTH_FTYPE_IQ1_S || f == HEARTH_FTYPE_IQ1_M) return HEARTH_IQ2_XXS;
        return s_or_m ? HEARTH_IQ3_S : t;
    default: return t;
    }
}

static hearth_dtype attn_v_type(hearth_ftype f, const hearth_quant_model *m, int i, hearth_dtype t) {
    const bool gqa4 = m->n_gqa >= 4;
    switch (f) {
    case HEARTH_FTYPE_Q2_K: t = gqa4 ? HEARTH_Q4_K : HEARTH_Q3_K; break;
    case HEARTH_FTYPE_IQ3_XXS:
        t = gqa4 ? HEARTH_Q4_K : !m->has_imatrix ? HEARTH_IQ3_S : HEARTH_IQ3_XXS;
        break;
    case HEARTH_FTYPE_IQ3_XS:
    case HEARTH_FTYPE_IQ3_S: t = gqa4 ? HEARTH_Q4_K : t; break;
    case HEARTH_FTYPE_IQ3_M: t = HEARTH_Q4_K; break;
    case HEARTH_FTYPE_Q3_K_M: t = i < 2 ? HEARTH_Q5_K : HEARTH_Q4_K; break;
    case HEARTH_FTYPE_Q3_K_L: t = HEARTH_Q5_K; break;
    case HEARTH_FTYPE_IQ4_NL:
    case HEARTH_FTYPE_IQ4_XS: t = gqa4 ? HEARTH_Q5_K : t; break;
    case HEARTH_FTYPE_Q4_K_M:
    case HEARTH_FTYPE_Q5_K_M: t = more_bits(i, m->n_layer) ? HEARTH_Q6_K : t; break;
    case HEARTH_FTYPE_Q4_K_S: t = i < 4 ? HEARTH_Q5_K : t; break;
    default: break;
    }
    return m->n_expert == 8 ? HEARTH_Q8_0 : t;
}

static hearth_dtype ffn_down_type(hearth_ftype f, const hearth_quant_model *m, int i, hearth_dtype t) {
    int n = m->n_layer;
    switch (f) {
    case HEARTH_FTYPE_Q2_K: return HEARTH_Q3_K;
    case HEARTH_FTYPE_IQ3_XXS: return m->has_imatrix ? t : i < n / 8 ? HEARTH_Q4_K : HEARTH_Q3_K;
    case HEARTH_FTYPE_Q3_K_M: return i < n / 16 ? HEARTH_Q5_K : HEARTH_Q4_K;
    case HEARTH_FTYPE_IQ3_M: return i < n / 8 || (m->n_expert == 8 && more_bits(i, n)) ? HEARTH_Q4_K : t;
    case HEARTH_FTYPE_Q3_K_L: return HEARTH_Q5_K;
    case HEARTH_FTYPE_Q4_K_M:
    case HEARTH_FTYPE_Q5_K_M: return more_bits(i, n) ? HEARTH_Q6_K : t;
    case HEARTH_FTYPE_Q4_K_S: return i < n / 8 ? HEARTH_Q5_K : t;
    case HEARTH_FTYPE_IQ4_NL:
    case HEARTH_FTYPE_IQ4_XS: return i < n / 8 && !m->has_imatrix ? HEARTH_Q5_K : t;
    /* llama.cpp guards the first eighth with the 4/5-bit types that have a min, only with an imatrix */
    case HEARTH_FTYPE_Q4_0: return i < n / 8 && m->has_imatrix ? HEARTH_Q4_1 : t;
    case HEARTH_FTYPE_Q5_0: return i < n / 8 && m->has_imatrix ? HEARTH_Q5_1 : t;
    default: return t;
    }
}

static hearth_dtype attn_output_type(hearth_ftype f, const hearth_quant_model *m, hearth_dtype t) {
    if (m->n_expert == 8) {
        switch (f) {
        case HEARTH_FTYPE_Q2_K:
        case HEARTH_FTYPE_IQ3_XS:
        case HEARTH_FTYPE_IQ3_XXS:
        case HEARTH_FTYPE_Q3_K_S:
        case HEARTH_FTYPE_Q3_K_M:
        case HEARTH_FTYPE_IQ4_NL:
        case HEARTH_FTYPE_Q4_K_S:
        case HEARTH_FTYPE_Q4_K_M:
        case HEARTH_FTYPE_IQ3_S:
        case HEARTH_FTYPE_IQ3_M:
        case HEARTH_FTYPE_IQ4_XS: return HEARTH_Q5_K;
        default: return t;
        }
    }
    switch (f) {
    case HEARTH_FTYPE_Q2_K: return HEARTH_Q3_K;
    case HEARTH_FTYPE_IQ3_XXS: return HEARTH_IQ3_S;
    case HEARTH_FTYPE_Q3_K_M: return HEARTH_Q4_K;
    case HEARTH_FTYPE_Q3_K_L: return HEARTH_Q5_K;
    case HEARTH_FTYPE_IQ3_M: return HEARTH_Q4_K;
    default: return t;
    }
}

/* The middle three quarters of ffn_gate / ffn_up get IQ3_XXS under IQ3_XS. */
static hearth_dtype ffn_gate_up_type(hearth_ftype f, const hearth_quant_model *m, int i, hearth_dtype t) {
    int n = m->n_layer;
    return f == HEARTH_FTYPE_IQ3_XS && i >= n / 8 && i < 7 * n / 8 ? HEARTH_IQ3_XXS : t;
}

static hearth_dtype mixture_type(hearth_ftype f, const hearth_quant_model *m, q_cat cat, const int *idx,
                                 hearth_dtype t, int64_t ne0) {
    if (cat == CAT_OUTPUT || (!m->has_output && cat == CAT_TOKEN_EMBD)) return output_type(f, t, ne0);
    if (cat == CAT_TOKEN_EMBD) return token_embd_type(f, t);
    if (iq2_group(f)) return iq2_group_type(f, m, cat, idx[CAT_FFN_DOWN], t);
    switch (cat) {
    case CAT_ATTN_V: return attn_v_type(f, m, idx[CAT_ATTN_V], t);
    case CAT_ATTN_K:
        if (m->n_expert == 8) return HEARTH_Q8_0;
        return f == HEARTH_FTYPE_IQ3_XS ? HEARTH_IQ3_XXS : f == HEARTH_FTYPE_IQ3_XXS ? HEARTH_IQ2_S : t;
    case CAT_ATTN_Q:
        return f == HEARTH_FTYPE_IQ3_XS ? HEARTH_IQ3_XXS : f == HEARTH_FTYPE_IQ3_XXS ? HEARTH_IQ2_S : t;
    case CAT_FFN_DOWN: return ffn_down_type(f, m, idx[CAT_FFN_DOWN], t);
    case CAT_ATTN_OUTPUT: return attn_output_type(f, m, t);
    case CAT_FFN_GATE: return ffn_gate_up_type(f, m, idx[CAT_FFN_GATE], t);
    case CAT_FFN_UP: return ffn_gate_up_type(f, m, idx[CAT_FFN_UP], t);
    default: return t;
    }
}

hearth_dtype hearth_quant_tensor_type(hearth_ftype f, bool pure, const hearth_quant_model *m,
                                      hearth_quant_counters *c, const char *name, int64_t ne0) {
    hearth_dtype t = hearth_ftype_base_type(f);
    bool quantized = t != HEARTH_F32 && t != HEARTH_F16 && t != HEARTH_BF16;
    const q_cat cat = category(name);
    int idx[CAT_FFN_DOWN + 1] = {0};
    idx[CAT_ATTN_V] = c->i_attn_v;
    idx[CAT_FFN_DOWN] = c->i_ffn_down;
    idx[CAT_FFN_GATE] = c->i_ffn_gate;
    idx[CAT_FFN_UP] = c->i_ffn_up;
    if (cat == CAT_ATTN_V) c->i_attn_v++;
    if (cat == CAT_FFN_DOWN) c->i_ffn_down++;
    if (cat == CAT_FFN_GATE) c->i_ffn_gate++;
    if (cat == CAT_FFN_UP) c->i_ffn_up++;
    if (pure || !quantized) return hearth_quant_fallback(t, ne0);
    return hearth_quant_fallback(mixture_type(f, m, cat, idx, t, ne0), ne0);
}
