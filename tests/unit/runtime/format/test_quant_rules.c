/*
 * test_quant_rules.c - llama.cpp's file types and per-tensor type rules
 * (runtime/format/quant_rules.h), checked against what llama-quantize chose
 * for the shared files (hearth-kjv-llama-q4_k_m: 4 layers, GQA 4) and
 * against the rules' definitions for the other mixtures.
 * Ownership: tests only; no files.
 */
#include "runtime/format/quant_rules.h"

#include <string.h>

#include "test.h"

/* Type of blk.L.<what> for a 4-layer model after the earlier layers were
 * counted, as quantize walks them (by layer). */
static hearth_dtype layer_type(hearth_ftype f, const hearth_quant_model *m, const char *what, int layer) {
    hearth_quant_counters c = {0};
    hearth_dtype t = HEARTH_F32;
    char name[64];
    for (int l = 0; l <= layer; l++) {
        snprintf(name, sizeof name, "blk.%d.%s", l, what);
        t = hearth_quant_tensor_type(f, false, m, &c, name, 256);
    }
    return t;
}

static void test_names(void) {
    hearth_ftype f;
    CHECK(hearth_ftype_from_name("q4_k_m", &f) && f == HEARTH_FTYPE_Q4_K_M);
    CHECK(hearth_ftype_from_name("Q4_K_M", &f) && f == HEARTH_FTYPE_Q4_K_M);
    CHECK(hearth_ftype_from_name("q4_k", &f) && f == HEARTH_FTYPE_Q4_K_M);
    CHECK(hearth_ftype_from_name("Q8_0", &f) && f == HEARTH_FTYPE_Q8_0 &&
          hearth_ftype_base_type(f) == HEARTH_Q8_0);
    CHECK(hearth_ftype_from_name("bf16", &f) && f == HEARTH_FTYPE_BF16);
    CHECK(!hearth_ftype_from_name("q4_k_x", &f));
    CHECK(!hearth_ftype_from_name("", &f));
    CHECK(!hearth_ftype_from_name(NULL, &f));
    CHECK(hearth_ftype_from_name("15", &f) && f == HEARTH_FTYPE_Q4_K_M);
    CHECK(hearth_ftype_from_name("26", &f) && f == HEARTH_FTYPE_IQ3_S);
    CHECK(!hearth_ftype_from_name("21", &f)); /* no such LLAMA_FTYPE here (Q2_K_S is not offered) */
    CHECK(!hearth_ftype_from_name("2x", &f) && !hearth_ftype_from_name("-1", &f));
    CHECK(strcmp(hearth_ftype_name(HEARTH_FTYPE_Q5_K_M), "Q5_K_M") == 0);
    CHECK_CONTAINS(hearth_ftype_list(), "Q4_K_M");
}

static void test_wants(void) {
    CHECK(hearth_quant_wants("blk.0.attn_q.weight", 2));
    CHECK(hearth_quant_wants("token_embd.weight", 2));
    CHECK(!hearth_quant_wants("blk.0.attn_norm.weight", 1));
    CHECK(!hearth_quant_wants("blk.0.attn_q_norm.weight", 2)); /* a norm, even if 2-D */
    CHECK(!hearth_quant_wants("blk.0.attn_q.bias", 2));
    CHECK(!hearth_quant_wants("blk.0.ffn_gate_inp.weight", 2));
    CHECK(!hearth_quant_wants("output.weight", 1));
}

static void test_q4_k_m(void) {
    hearth_quant_model m = {4, 4, true, false, 0};
    hearth_quant_counters c = {0};
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_Q4_K_M, false, &m, &c, "output.weight", 256) == HEARTH_Q6_K);
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_Q4_K_M, false, &m, &c, "token_embd.weight", 256) ==
          HEARTH_Q4_K);
    /* use_more_bits(i, 4): layers 2 and 3 (what hearth-kjv-llama-q4_k_m holds) */
    const int want6[4] = {0, 0, 1, 1};
    for (int l = 0; l < 4; l++) {
        hearth_dtype v = layer_type(HEARTH_FTYPE_Q4_K_M, &m, "attn_v.weight", l);
        hearth_dtype d = layer_type(HEARTH_FTYPE_Q4_K_M, &m, "ffn_down.weight", l);
        CHECKF(v == (want6[l] ? HEARTH_Q6_K : HEARTH_Q4_K), "attn_v layer %d: %s", l, hearth_dtype_name(v));
        CHECKF(d == (want6[l] ? HEARTH_Q6_K : HEARTH_Q4_K), "ffn_down layer %d: %s", l, hearth_dtype_name(d));
        CHECK(layer_type(HEARTH_FTYPE_Q4_K_M, &m, "attn_q.weight", l) == HEARTH_Q4_K);
        CHECK(layer_type(HEARTH_FTYPE_Q4_K_M, &m, "ffn_up.weight", l) == HEARTH_Q4_K);
    }
    /* 32 layers: first/last eighth and every third between */
    hearth_quant_model big = {32, 8, true, false, 0};
    CHECK(layer_type(HEARTH_FTYPE_Q4_K_M, &big, "attn_v.weight", 0) == HEARTH_Q6_K);
    CHECK(layer_type(HEARTH_FTYPE_Q4_K_M, &big, "attn_v.weight", 4) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_Q4_K_M, &big, "attn_v.weight", 6) == HEARTH_Q6_K);
    CHECK(layer_type(HEARTH_FTYPE_Q4_K_M, &big, "attn_v.weight", 28) == HEARTH_Q6_K);
}

static void test_other_mixtures(void) {
    hearth_quant_model m = {4, 4, true, false, 0}, m1 = {4, 1, true, false, 0};
    CHECK(layer_type(HEARTH_FTYPE_Q2_K, &m, "attn_v.weight", 0) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_Q2_K, &m1, "attn_v.weight", 0) == HEARTH_Q3_K);
    CHECK(layer_type(HEARTH_FTYPE_Q2_K, &m, "ffn_down.weight", 1) == HEARTH_Q3_K);
    CHECK(layer_type(HEARTH_FTYPE_Q2_K, &m, "attn_output.weight", 1) == HEARTH_Q3_K);
    CHECK(layer_type(HEARTH_FTYPE_Q2_K, &m, "ffn_up.weight", 1) == HEARTH_Q2_K);
    CHECK(layer_type(HEARTH_FTYPE_Q3_K_M, &m, "attn_v.weight", 1) == HEARTH_Q5_K);
    CHECK(layer_type(HEARTH_FTYPE_Q3_K_M, &m, "attn_v.weight", 2) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_Q3_K_M, &m, "ffn_down.weight", 0) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_Q3_K_M, &m, "attn_output.weight", 0) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_Q5_K_M, &m, "ffn_down.weight", 3) == HEARTH_Q6_K);
    CHECK(layer_type(HEARTH_FTYPE_Q5_K_M, &m, "ffn_down.weight", 0) == HEARTH_Q5_K);
    /* IQ4_NL / IQ4_XS without an importance matrix: attn_v Q5_K at GQA >= 4, the
     * first eighth of ffn_down Q5_K (32 layers: 0..3), the rest the base type */
    hearth_quant_model m32 = {32, 4, true, false, 0};
    CHECK(layer_type(HEARTH_FTYPE_IQ4_XS, &m, "attn_v.weight", 2) == HEARTH_Q5_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ4_NL, &m1, "attn_v.weight", 2) == HEARTH_IQ4_NL);
    CHECK(layer_type(HEARTH_FTYPE_IQ4_XS, &m32, "ffn_down.weight", 3) == HEARTH_Q5_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ4_XS, &m32, "ffn_down.weight", 4) == HEARTH_IQ4_XS);
    CHECK(layer_type(HEARTH_FTYPE_IQ4_NL, &m32, "attn_output.weight", 0) == HEARTH_IQ4_NL);
    /* with an importance matrix (llama.cpp): IQ4 keeps ffn_down in its type; Q4_0/Q5_0
     * give the first eighth of ffn_down Q4_1/Q5_1 */
    hearth_quant_model m32i = {32, 4, true, true, 0};
    CHECK(layer_type(HEARTH_FTYPE_IQ4_XS, &m32i, "ffn_down.weight", 0) == HEARTH_IQ4_XS);
    CHECK(layer_type(HEARTH_FTYPE_Q4_0, &m32i, "ffn_down.weight", 3) == HEARTH_Q4_1);
    CHECK(layer_type(HEARTH_FTYPE_Q4_0, &m32i, "ffn_down.weight", 4) == HEARTH_Q4_0);
    CHECK(layer_type(HEARTH_FTYPE_Q5_0, &m32i, "ffn_down.weight", 0) == HEARTH_Q5_1);
    CHECK(layer_type(HEARTH_FTYPE_Q4_0, &m32, "ffn_down.weight", 0) == HEARTH_Q4_0);
    hearth_ftype f;
    CHECK(hearth_ftype_from_name("iq4_xs", &f) && f == HEARTH_FTYPE_IQ4_XS);
    CHECK(hearth_ftype_from_name("IQ4_NL", &f) && f == HEARTH_FTYPE_IQ4_NL);
    CHECK(hearth_quant_fallback(HEARTH_IQ4_XS, 64) == HEARTH_IQ4_NL);
    CHECK(hearth_quant_fallback(HEARTH_IQ4_XS, 48) == HEARTH_F16);
    hearth_quant_counters c = {0};
    /* Q8_0 keeps output in Q8_0; tied embeddings get the output rule */
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_Q8_0, false, &m, &c, "output.weight", 256) == HEARTH_Q8_0);
    hearth_quant_model tied = {2, 4, false, false, 0};
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_Q4_0, false, &tied, &c, "token_embd.weight", 256) ==
          HEARTH_Q6_K);
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_Q4_0, false, &m, &c, "output.weight", 256) == HEARTH_Q6_K);
}

static void test_pure_and_fallback(void) {
    hearth_quant_model m = {4, 4, true, false, 0};
    hearth_quant_counters c = {0};
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_Q4_K_M, true, &m, &c, "output.weight", 256) == HEARTH_Q4_K);
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_Q4_K_M, true, &m, &c, "blk.3.attn_v.weight", 256) ==
          HEARTH_Q4_K);
    CHECK(c.i_attn_v == 1);
    /* rows of 64 (stories260K): K-quants fall back to legacy, then F16 */
    CHECK(hearth_quant_fallback(HEARTH_Q4_K, 64) == HEARTH_Q5_0);
    CHECK(hearth_quant_fallback(HEARTH_Q6_K, 64) == HEARTH_Q8_0);
    CHECK(hearth_quant_fallback(HEARTH_Q6_K, 172) == HEARTH_F16);
    CHECK(hearth_quant_fallback(HEARTH_Q4_0, 172) == HEARTH_F16);
    CHECK(hearth_quant_fallback(HEARTH_Q4_0, 64) == HEARTH_Q4_0);
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_F16, false, &m, &c, "output.weight", 172) == HEARTH_F16);
}

/* The IQ file types (llama.cpp's llama_tensor_get_type, dc02e1f): names, base
 * types, the per-tensor bumps and which tensors need an importance matrix. */
static void test_iq_mixtures(void) {
    static const struct {
        const char *name;
        hearth_ftype f;
        hearth_dtype base;
    } names[] = {
        {"iq2_xxs", HEARTH_FTYPE_IQ2_XXS, HEARTH_IQ2_XXS}, {"IQ2_XS", HEARTH_FTYPE_IQ2_XS, HEARTH_IQ2_XS},
        {"iq2_s", HEARTH_FTYPE_IQ2_S, HEARTH_IQ2_XS},      {"Iq2_M", HEARTH_FTYPE_IQ2_M, HEARTH_IQ2_S},
        {"iq1_s", HEARTH_FTYPE_IQ1_S, HEARTH_IQ1_S},       {"IQ1_M", HEARTH_FTYPE_IQ1_M, HEARTH_IQ1_M},
        {"iq3_xxs", HEARTH_FTYPE_IQ3_XXS, HEARTH_IQ3_XXS}, {"iq3_xs", HEARTH_FTYPE_IQ3_XS, HEARTH_IQ3_S},
        {"IQ3_S", HEARTH_FTYPE_IQ3_S, HEARTH_IQ3_S},       {"iq3_m", HEARTH_FTYPE_IQ3_M, HEARTH_IQ3_S}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        hearth_ftype f;
        CHECKF(hearth_ftype_from_name(names[i].name, &f) && f == names[i].f &&
                   hearth_ftype_base_type(f) == names[i].base,
               "ftype %s", names[i].name);
        CHECK_CONTAINS(hearth_ftype_list(), hearth_ftype_name(names[i].f));
    }
    hearth_quant_model m = {4, 4, true, false, 0}, mi = {4, 4, true, true, 0}, m1 = {4, 1, true, false, 0},
                       m32 = {32, 1, true, false, 0}, moe = {32, 1, true, true, 8};
    hearth_quant_counters c = {0};
    /* output: Q5_K under the 1/2-bit types and IQ3_XXS, Q6_K otherwise; Q8_0 when its row does not fit */
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_IQ2_XXS, false, &m, &c, "output.weight", 256) == HEARTH_Q5_K);
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_IQ3_XXS, false, &m, &c, "output.weight", 256) == HEARTH_Q5_K);
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_IQ3_S, false, &m, &c, "output.weight", 256) == HEARTH_Q6_K);
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_IQ3_S, false, &m, &c, "output.weight", 64) == HEARTH_Q8_0);
    /* token_embd */
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_IQ1_M, false, &m, &c, "token_embd.weight", 256) ==
          HEARTH_Q2_K);
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_IQ2_M, false, &m, &c, "token_embd.weight", 256) ==
          HEARTH_IQ3_S);
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_IQ3_XXS, false, &m, &c, "token_embd.weight", 256) ==
          HEARTH_IQ3_S);
    CHECK(hearth_quant_tensor_type(HEARTH_FTYPE_IQ3_M, false, &m, &c, "token_embd.weight", 256) ==
          HEARTH_IQ3_S);
    /* IQ3_XXS: attn_v Q4_K at GQA >= 4, else IQ3_S without an imatrix, IQ3_XXS with one;
     * attn_q/attn_k IQ2_S; ffn_down Q4_K/Q3_K without an imatrix; attn_output IQ3_S */
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XXS, &m, "attn_v.weight", 0) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XXS, &m1, "attn_v.weight", 0) == HEARTH_IQ3_S);
    hearth_quant_model m1i = {4, 1, true, true, 0};
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XXS, &m1i, "attn_v.weight", 0) == HEARTH_IQ3_XXS);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XXS, &mi, "attn_q.weight", 1) == HEARTH_IQ2_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XXS, &mi, "attn_k.weight", 1) == HEARTH_IQ2_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XXS, &m32, "ffn_down.weight", 3) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XXS, &m32, "ffn_down.weight", 4) == HEARTH_Q3_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XXS, &mi, "ffn_down.weight", 0) == HEARTH_IQ3_XXS);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XXS, &mi, "attn_output.weight", 0) == HEARTH_IQ3_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XXS, &mi, "ffn_up.weight", 0) == HEARTH_IQ3_XXS);
    /* IQ3_XS: attn_q/attn_k IQ3_XXS, ffn_gate/ffn_up IQ3_XXS in the middle 3/4 of the layers */
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XS, &m, "attn_v.weight", 0) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XS, &m1, "attn_v.weight", 0) == HEARTH_IQ3_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XS, &m, "attn_q.weight", 0) == HEARTH_IQ3_XXS);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XS, &m32, "ffn_gate.weight", 3) == HEARTH_IQ3_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XS, &m32, "ffn_gate.weight", 4) == HEARTH_IQ3_XXS);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XS, &m32, "ffn_up.weight", 27) == HEARTH_IQ3_XXS);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XS, &m32, "ffn_up.weight", 28) == HEARTH_IQ3_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XS, &m32, "ffn_down.weight", 0) == HEARTH_IQ3_S);
    /* IQ3_S: attn_v Q4_K only at GQA >= 4 */
    CHECK(layer_type(HEARTH_FTYPE_IQ3_S, &m, "attn_v.weight", 1) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_S, &m1, "attn_v.weight", 1) == HEARTH_IQ3_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_S, &m, "attn_output.weight", 1) == HEARTH_IQ3_S);
    /* IQ3_M: attn_v, attn_output Q4_K; ffn_down Q4_K in the first eighth */
    CHECK(layer_type(HEARTH_FTYPE_IQ3_M, &m1, "attn_v.weight", 2) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_M, &m, "attn_output.weight", 2) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_M, &m32, "ffn_down.weight", 3) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_M, &m32, "ffn_down.weight", 4) == HEARTH_IQ3_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_M, &m, "attn_q.weight", 0) == HEARTH_IQ3_S);
    /* the 2-bit / 1-bit group */
    CHECK(layer_type(HEARTH_FTYPE_IQ2_XXS, &m, "attn_v.weight", 0) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ2_XXS, &m1, "attn_v.weight", 0) == HEARTH_Q2_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ2_M, &m1, "attn_v.weight", 0) == HEARTH_IQ3_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ2_XS, &m32, "ffn_down.weight", 3) == HEARTH_Q2_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ2_XS, &m32, "ffn_down.weight", 4) == HEARTH_IQ2_XS);
    CHECK(layer_type(HEARTH_FTYPE_IQ2_S, &m32, "ffn_down.weight", 0) == HEARTH_IQ3_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ2_S, &m32, "ffn_up.weight", 0) == HEARTH_IQ2_XS);
    CHECK(layer_type(HEARTH_FTYPE_IQ2_M, &m32, "ffn_up.weight", 0) == HEARTH_IQ2_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ1_S, &m, "attn_output.weight", 0) == HEARTH_IQ2_XXS);
    CHECK(layer_type(HEARTH_FTYPE_IQ2_M, &m, "attn_output.weight", 0) == HEARTH_IQ3_S);
    CHECK(layer_type(HEARTH_FTYPE_IQ2_XXS, &m, "attn_output.weight", 0) == HEARTH_IQ2_XXS);
    /* experts: 8 of them bump attn_v to Q8_0 (attn_k too), attn_output to Q5_K */
    CHECK(layer_type(HEARTH_FTYPE_IQ3_S, &moe, "attn_v.weight", 5) == HEARTH_Q8_0);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_XS, &moe, "attn_k.weight", 5) == HEARTH_Q8_0);
    CHECK(layer_type(HEARTH_FTYPE_IQ4_XS, &moe, "attn_output.weight", 5) == HEARTH_Q5_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ2_XXS, &moe, "attn_v.weight", 5) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ2_XXS, &moe, "attn_k.weight", 5) == HEARTH_Q4_K);
    CHECK(layer_type(HEARTH_FTYPE_IQ3_M, &moe, "ffn_down.weight", 6) == HEARTH_Q4_K); /* more_bits(6, 32) */
    CHECK(layer_type(HEARTH_FTYPE_IQ3_M, &moe, "ffn_down.weight", 5) == HEARTH_IQ3_S);
    /* rows that do not fit 256 fall back to IQ4_NL, then F16 */
    CHECK(hearth_quant_fallback(HEARTH_IQ3_XXS, 64) == HEARTH_IQ4_NL);
    CHECK(hearth_quant_fallback(HEARTH_IQ2_S, 96) == HEARTH_IQ4_NL);
    CHECK(hearth_quant_fallback(HEARTH_IQ1_M, 172) == HEARTH_F16);
    /* which tensors need an importance matrix */
    CHECK(hearth_quant_requires_imatrix(HEARTH_FTYPE_IQ3_XXS, "blk.0.attn_q.weight", HEARTH_IQ3_XXS));
    CHECK(hearth_quant_requires_imatrix(HEARTH_FTYPE_IQ3_XS, "blk.0.attn_q.weight", HEARTH_IQ3_XXS));
    CHECK(hearth_quant_requires_imatrix(HEARTH_FTYPE_IQ1_S, "blk.0.ffn_up.weight", HEARTH_IQ1_S));
    CHECK(hearth_quant_requires_imatrix(HEARTH_FTYPE_IQ2_M, "blk.0.ffn_up.weight", HEARTH_IQ2_S));
    CHECK(!hearth_quant_requires_imatrix(HEARTH_FTYPE_IQ3_S, "blk.0.ffn_up.weight", HEARTH_IQ3_S));
    CHECK(!hearth_quant_requires_imatrix(HEARTH_FTYPE_IQ4_XS, "blk.0.ffn_up.weight", HEARTH_IQ4_XS));
    CHECK(!hearth_quant_requires_imatrix(HEARTH_FTYPE_Q2_K, "blk.0.ffn_up.weight", HEARTH_Q2_K));
    CHECK(!hearth_quant_requires_imatrix(HEARTH_FTYPE_IQ2_XXS, "token_embd.weight", HEARTH_IQ2_XXS));
    CHECK(!hearth_quant_requires_imatrix(HEARTH_FTYPE_IQ2_XXS, "output.weight", HEARTH_IQ2_XXS));
}

int main(void) {
    test_names();
    test_wants();
    test_q4_k_m();
    test_other_mixtures();
    test_pure_and_fallback();
    test_iq_mixtures();
    return test_summary("quant_rules");
}
