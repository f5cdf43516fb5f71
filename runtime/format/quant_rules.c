/*
 * quant_rules.c - llama.cpp's file types and per-tensor type rules for
 * `hearth quantize` (see quant_rules.h). The rules follow llama.cpp's
 * llama_tensor_get_type for the dense (non-expert, non-Falcon) models Hearth
 * loads; facts taken from its source, code written here.
 * Stateless apart from the caller's counters.
 */
#include "quant_rules.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct ftype_entry {
    const char *name;
    hearth_ftype ftype;
    hearth_dtype base;
} ftype_entry;

static const ftype_entry k_ftypes[] = {
    {"F32", HEARTH_FTYPE_F32, HEARTH_F32},        {"F16", HEARTH_FTYPE_F16, HEARTH_F16},
    {"BF16", HEARTH_FTYPE_BF16, HEARTH_BF16},     {"Q8_0", HEARTH_FTYPE_Q8_0, HEARTH_Q8_0},
    {"Q4_0", HEARTH_FTYPE_Q4_0, HEARTH_Q4_0},     {"Q4_1", HEARTH_FTYPE_Q4_1, HEARTH_Q4_1},
    {"Q5_0", HEARTH_FTYPE_Q5_0, HEARTH_Q5_0},     {"Q5_1", HEARTH_FTYPE_Q5_1, HEARTH_Q5_1},
    {"Q2_K", HEARTH_FTYPE_Q2_K, HEARTH_Q2_K},     {"Q3_K_S", HEARTH_FTYPE_Q3_K_S, HEARTH_Q3_K},
    {"Q3_K_M", HEARTH_FTYPE_Q3_K_M, HEARTH_Q3_K}, {"Q3_K_L", HEARTH_FTYPE_Q3_K_L, HEARTH_Q3_K},
    {"Q4_K_S", HEARTH_FTYPE_Q4_K_S, HEARTH_Q4_K}, {"Q4_K_M", HEARTH_FTYPE_Q4_K_M, HEARTH_Q4_K},
    {"Q5_K_S", HEARTH_FTYPE_Q5_K_S, HEARTH_Q5_K}, {"Q5_K_M", HEARTH_FTYPE_Q5_K_M, HEARTH_Q5_K},
    {"Q6_K", HEARTH_FTYPE_Q6_K, HEARTH_Q6_K},     {"IQ4_NL", HEARTH_FTYPE_IQ4_NL, HEARTH_IQ4_NL},
    {"IQ4_XS", HEARTH_FTYPE_IQ4_XS, HEARTH_IQ4_XS},
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
    return false;
}

const char *hearth_ftype_name(hearth_ftype f) {
    for (size_t i = 0; i < N_FTYPES; i++)
        if (k_ftypes[i].ftype == f) return k_ftypes[i].name;
    return "?";
}

const char *hearth_ftype_list(void) {
    static char buf[256];
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
    case HEARTH_Q2_K:
    case HEARTH_Q3_K: f = HEARTH_Q4_0; break;
    case HEARTH_IQ4_XS: f = HEARTH_IQ4_NL; break;
    case HEARTH_Q4_K: f = HEARTH_Q5_0; break;
    case HEARTH_Q5_K: f = HEARTH_Q5_1; break;
    case HEARTH_Q6_K: f = HEARTH_Q8_0; break;
    default: f = HEARTH_F16; break;
    }
    if (ne0 % hearth_dtype_info(f)->block_size != 0) f = HEARTH_F16;
    return f;
}

/* llama.cpp's use_more_bits: first and last eighth, and every third between. */
static bool more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static hearth_dtype attn_v_type(hearth_ftype f, const hearth_quant_model *m, int i, hearth_dtype t) {
    switch (f) {
    case HEARTH_FTYPE_Q2_K: return m->n_gqa >= 4 ? HEARTH_Q4_K : HEARTH_Q3_K;
    case HEARTH_FTYPE_Q3_K_M: return i < 2 ? HEARTH_Q5_K : HEARTH_Q4_K;
    case HEARTH_FTYPE_Q3_K_L: return HEARTH_Q5_K;
    case HEARTH_FTYPE_Q4_K_M:
    case HEARTH_FTYPE_Q5_K_M: return more_bits(i, m->n_layer) ? HEARTH_Q6_K : t;
    case HEARTH_FTYPE_Q4_K_S: return i < 4 ? HEARTH_Q5_K : t;
    case HEARTH_FTYPE_IQ4_NL:
    case HEARTH_FTYPE_IQ4_XS: return m->n_gqa >= 4 ? HEARTH_Q5_K : t;
    default: return t;
    }
}

static hearth_dtype ffn_down_type(hearth_ftype f, const hearth_quant_model *m, int i, hearth_dtype t) {
    int n = m->n_layer;
    switch (f) {
    case HEARTH_FTYPE_Q2_K: return HEARTH_Q3_K;
    case HEARTH_FTYPE_Q3_K_M: return i < n / 16 ? HEARTH_Q5_K : HEARTH_Q4_K;
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

static hearth_dtype attn_output_type(hearth_ftype f, hearth_dtype t) {
    switch (f) {
    case HEARTH_FTYPE_Q2_K: return HEARTH_Q3_K;
    case HEARTH_FTYPE_Q3_K_M: return HEARTH_Q4_K;
    case HEARTH_FTYPE_Q3_K_L: return HEARTH_Q5_K;
    default: return t;
    }
}

hearth_dtype hearth_quant_tensor_type(hearth_ftype f, bool pure, const hearth_quant_model *m,
                                      hearth_quant_counters *c, const char *name, int64_t ne0) {
    hearth_dtype t = hearth_ftype_base_type(f);
    bool quantized = t != HEARTH_F32 && t != HEARTH_F16 && t != HEARTH_BF16;
    bool is_v = strstr(name, "attn_v.weight") != NULL, is_down = strstr(name, "ffn_down") != NULL;
    int iv = c->i_attn_v, idown = c->i_ffn_down;
    if (is_v) c->i_attn_v++;
    if (is_down) c->i_ffn_down++;
    if (pure || !quantized) return hearth_quant_fallback(t, ne0);

    bool is_output =
        strcmp(name, "output.weight") == 0 || (!m->has_output && strcmp(name, "token_embd.weight") == 0);
    if (is_output) {
        if (t != HEARTH_Q8_0) t = HEARTH_Q6_K;
    } else if (is_v) {
        t = attn_v_type(f, m, iv, t);
    } else if (is_down) {
        t = ffn_down_type(f, m, idown, t);
    } else if (strstr(name, "attn_output.weight")) {
        t = attn_output_type(f, t);
    } else if (strstr(name, "attn_qkv.weight")) {
        if (f == HEARTH_FTYPE_Q3_K_M || f == HEARTH_FTYPE_Q3_K_L)
            t = HEARTH_Q4_K;
        else if (f == HEARTH_FTYPE_Q4_K_M)
            t = HEARTH_Q5_K;
        else if (f == HEARTH_FTYPE_Q5_K_M)
            t = HEARTH_Q6_K;
    }
    return hearth_quant_fallback(t, ne0);
}
