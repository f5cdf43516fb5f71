/*
 * grammar_schema.c - JSON Schema -> GBNF text, and the JSON value grammar.
 *
 * Supported subset: type (one or a list) object / array / string / number /
 * integer / boolean / null; properties, required, additionalProperties
 * (false, true or a schema); items, minItems, maxItems; enum, const; anyOf,
 * oneOf (as anyOf: exclusivity is not enforced), allOf (object schemas merged,
 * types intersected); $ref to "#", "#/$defs/NAME" or "#/definitions/NAME"
 * (recursion allowed); string minLength / maxLength and format date, time,
 * date-time, uuid; true / {} for any JSON value. Annotations (title,
 * description, default, examples, $schema, $id, $comment) are ignored.
 * Other keywords are ignored, or with strict an error that names them.
 *
 * What the grammar generates is a subset of what the schema accepts: object
 * properties come in the order the schema lists them, and properties not
 * listed appear only when additionalProperties says so explicitly.
 * Owner: the converter owns its buffers; the result string goes to the caller.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "grammar_impl.h"

#define SCHEMA_MAX_DEPTH 64
#define SCHEMA_MAX_REFS 128
#define SCHEMA_MAX_REPEAT 4096

static const char JSON_GBNF[] =
    "ws ::= ( \" \" | \"\\n\" [ \\t]{0,8} )?\n"
    "value ::= object | array | string | number | boolean | null\n"
    "object ::= \"{\" ws ( string ws \":\" ws value ws ( \",\" ws string ws \":\" ws value ws )* )? \"}\"\n"
    "array ::= \"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"\n"
    "string ::= \"\\\"\" char* \"\\\"\"\n"
    "char ::= [^\"\\\\\\x00-\\x1f] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )\n"
    "number ::= integer ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?\n"
    "integer ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} )\n"
    "boolean ::= \"true\" | \"false\"\n"
    "null ::= \"null\"\n"
    "date ::= [0-9]{4} \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"3\" [01] )\n"
    "time ::= ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{1,6} )? "
    "( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )\n"
    "hex4 ::= [0-9a-fA-F]{4}\n"
    "uuid ::= hex4 hex4 \"-\" hex4 \"-\" hex4 \"-\" hex4 \"-\" hex4 hex4 hex4\n";

const char *hearth_grammar_json_gbnf(void) {
    return JSON_GBNF;
}

typedef char rname[32];

typedef struct conv {
    strbuf out;
    const cJSON *root;
    bool strict;
    hearth_error *err;
    bool failed;
    int n;
    int depth;
    struct {
        char *ref;
        rname name;
    } refs[SCHEMA_MAX_REFS];
    int n_refs;
} conv;

static bool fail(conv *c, const char *fmt, const char *arg) {
    if (!c->failed) {
        char msg[400];
        snprintf(msg, sizeof msg, fmt, arg ? arg : "");
        hearth_error_set(c->err, HEARTH_ERR_INVALID, "json schema: %s", msg);
    }
    c->failed = true;
    return false;
}

static void new_name(conv *c, rname out) {
    snprintf(out, sizeof(rname), "s%d", ++c->n);
}

/* A GBNF literal for the bytes s[0..n). */
static void add_literal(strbuf *b, const char *s, size_t n) {
    strbuf_addc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            strbuf_addc(b, '\\');
            strbuf_addc(b, (char)ch);
        } else if (ch < 0x20 || ch == 0x7f) {
            strbuf_printf(b, "\\x%02x", ch);
        } else {
            strbuf_addc(b, (char)ch);
        }
    }
    strbuf_addc(b, '"');
}

/* A literal matching v's compact JSON text. */
static bool add_json_literal(conv *c, strbuf *b, const cJSON *v) {
    char *t = cJSON_PrintUnformatted(v);
    if (!t) return fail(c, "out of memory%s", NULL);
    add_literal(b, t, strlen(t));
    free(t);
    return true;
}

static void emit_rule(conv *c, const char *name, const strbuf *body) {
    strbuf_printf(&c->out, "%s ::= %s\n", name, body->p ? body->p : "\"\"");
}

static bool gen(conv *c, const cJSON *s, rname out);

static const char *const KNOWN[] = {"minimum",
                                    "maximum",
                                    "exclusiveMinimum",
                                    "exclusiveMaximum", /* integers */
                                    "type",
                                    "properties",
                                    "required",
                                    "additionalProperties",
                                    "items",
                                    "minItems",
                                    "maxItems",
                                    "enum",
                                    "const",
                                    "anyOf",
                                    "oneOf",
                                    "allOf",
                                    "$ref",
                                    "$defs",
                                    "definitions",
                                    "format",
                                    "minLength",
                                    "maxLength",
                                    "title",
                                    "description",
                                    "default",
                                    "examples",
                                    "$schema",
                                    "$id",
                                    "$comment",
                                    NULL};

static bool check_keywords(conv *c, const cJSON *s) {
    if (!c->strict) return true;
    for (const cJSON *k = s->child; k; k = k->next) {
        bool ok = false;
        for (int i = 0; KNOWN[i] && !ok; i++)
            ok = !strcmp(k->string, KNOWN[i]);
        if (!ok)
            return fail(c, "keyword '%s' is not supported with strict: true (see docs/API.md for the subset)",
                        k->string);
    }
    return true;
}

/* Non-negative integer keyword, -1 when absent. */
static bool get_count(conv *c, const cJSON *s, const char *key, long *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(s, key);
    *v = -1;
    if (!x) return true;
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble != (double)(long)x->valuedouble)
        return fail(c, "'%s' must be a non-negative whole number", key);
    if (x->valuedouble > SCHEMA_MAX_REPEAT) return fail(c, "'%s' above 4096 is not supported", key);
    *v = (long)x->valuedouble;
    return true;
}

static const cJSON *resolve_ref(conv *c, const char *ref) {
    if (!strcmp(ref, "#")) return c->root;
    const char *p = NULL;
    const cJSON *defs = NULL;
    if (!strncmp(ref, "#/$defs/", 8)) {
        p = ref + 8;
        defs = cJSON_GetObjectItemCaseSensitive(c->root, "$defs");
    } else if (!strncmp(ref, "#/definitions/", 14)) {
        p = ref + 14;
        defs = cJSON_GetObjectItemCaseSensitive(c->root, "definitions");
    } else {
        fail(c, "$ref '%s' is not supported (only \"#\", \"#/$defs/NAME\", \"#/definitions/NAME\")", ref);
        return NULL;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(defs, p);
    if (!d) fail(c, "$ref '%s' points at nothing", ref);
    return d;
}

static bool gen_ref(conv *c, const char *ref, rname out) {
    for (int i = 0; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].ref, ref)) return snprintf(out, sizeof(rname), "%s", c->refs[i].name), true;
    if (c->n_refs == SCHEMA_MAX_REFS) return fail(c, "more than 128 distinct $ref targets%s", NULL);
    const cJSON *t = resolve_ref(c, ref);
    if (!t) return false;
    int k = c->n_refs++;
    c->refs[k].ref = strdup(ref);
    if (!c->refs[k].ref) return fail(c, "out of memory%s", NULL);
    new_name(c, out);
    snprintf(c->refs[k].name, sizeof c->refs[k].name, "%s", out);
    rname inner;
    if (!gen(c, t, inner)) return false;
    strbuf_printf(&c->out, "%s ::= %s\n", out, inner);
    return true;
}

/* ---------------------------------------------------------------- types */

static bool gen_string(conv *c, const cJSON *s, strbuf *b) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, "format");
    if (cJSON_IsString(f)) {
        const char *fs = f->valuestring;
        const char *body = !strcmp(fs, "date")        ? "date"
                           : !strcmp(fs, "time")      ? "time"
                           : !strcmp(fs, "date-time") ? "date \"T\" time"
                           : !strcmp(fs, "uuid")      ? "uuid"
                                                      : NULL;
        if (body) {
            strbuf_printf(b, "\"\\\"\" %s \"\\\"\"", body);
            return true;
        }
        if (c->strict)
            return fail(
                c, "string format '%s' is not supported with strict: true (date, time, date-time, uuid are)",
                fs);
    }
    if (c->strict && cJSON_GetObjectItemCaseSensitive(s, "pattern"))
        return fail(c, "'pattern' is not supported with strict: true%s", NULL);
    long mn, mx;
    if (!get_count(c, s, "minLength", &mn) || !get_count(c, s, "maxLength", &mx)) return false;
    if (mn >= 0 && mx >= 0 && mn > mx)
        return fail(c, "minLength is above maxLength: no string can satisfy it%s", NULL);
    if (mn < 0 && mx < 0) {
        strbuf_adds(b, "string");
    } else if (mx < 0) {
        strbuf_printf(b, "\"\\\"\" char{%ld,} \"\\\"\"", mn);
    } else {
        strbuf_printf(b, "\"\\\"\" char{%ld,%ld} \"\\\"\"", mn < 0 ? 0 : mn, mx);
    }
    return true;
}

static bool gen_array(conv *c, const cJSON *s, strbuf *b) {
    long mn, mx;
    if (!get_count(c, s, "minItems", &mn) || !get_count(c, s, "maxItems", &mx)) return false;
    if (mn >= 0 && mx >= 0 && mn > mx)
        return fail(c, "minItems is above maxItems: no array can satisfy it%s", NULL);
    if (mn < 0) mn = 0;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(s, "items");
    rname v = "value";
    if (it && !gen(c, it, v)) return false;
    if (mx == 0) {
        strbuf_adds(b, "\"[\" ws \"]\"");
        return true;
    }
    strbuf_adds(b, "\"[\" ws ");
    if (mn == 0) strbuf_adds(b, "( ");
    strbuf_printf(b, "%s ws ( \",\" ws %s ws )", v, v);
    long lo = mn > 0 ? mn - 1 : 0;
    if (mx < 0)
        strbuf_printf(b, "{%ld,}", lo);
    else
        strbuf_printf(b, "{%ld,%ld}", lo, mx - 1);
    if (mn == 0) strbuf_adds(b, " )?");
    strbuf_adds(b, " \"]\"");
    return true;
}

/* Objects: properties in schema order; A_i (nothing written yet) and B_i
 * (something written: a comma first) rules so commas come out right with
 * optional properties. */
static bool gen_object(conv *c, const cJSON *s, strbuf *b) {
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    if (props && !cJSON_IsObject(props)) return fail(c, "'properties' must be an object%s", NULL);
    if (req && !cJSON_IsArray(req)) return fail(c, "'required' must be an array of names%s", NULL);
    if (add && !cJSON_IsBool(add) && !cJSON_IsObject(add))
        return fail(c, "'additionalProperties' must be a boolean or a schema%s", NULL);
    bool add_any = add && (cJSON_IsTrue(add) || cJSON_IsObject(add));
    for (const cJSON *r = req ? req->child : NULL; r; r = r->next) {
        if (!cJSON_IsString(r)) return fail(c, "'required' must be an array of names%s", NULL);
        if (!cJSON_GetObjectItemCaseSensitive(props, r->valuestring) && !add_any)
            return fail(c,
                        "required property '%s' is not among the properties and additionalProperties is not "
                        "allowed: no object can satisfy it",
                        r->valuestring);
    }
    rname addv = "value";
    if (cJSON_IsObject(add) && !gen(c, add, addv)) return false;
    int n = cJSON_GetArraySize(props);
    rname a_next, b_next; /* the rules for position i + 1 */
    new_name(c, a_next);
    new_name(c, b_next);
    if (add_any) {
        strbuf_printf(&c->out,
                      "%s ::= ( string ws \":\" ws %s ws ( \",\" ws string ws \":\" ws %s ws )* )?\n", a_next,
                      addv, addv);
        strbuf_printf(&c->out, "%s ::= ( \",\" ws string ws \":\" ws %s ws )*\n", b_next, addv);
    } else {
        strbuf_printf(&c->out, "%s ::= \"\"\n%s ::= \"\"\n", a_next, b_next);
    }
    for (int i = n - 1; i >= 0; i--) {
        const cJSON *p = cJSON_GetArrayItem(props, i);
        rname v, kv, ai, bi;
        if (!gen(c, p, v)) return false;
        bool required = false;
        for (const cJSON *r = req ? req->child : NULL; r && !required; r = r->next)
            required = cJSON_IsString(r) && !strcmp(r->valuestring, p->string);
        new_name(c, kv);
        new_name(c, ai);
        new_name(c, bi);
        strbuf key = {0};
        cJSON *ks = cJSON_CreateString(p->string);
        char *kt = ks ? cJSON_PrintUnformatted(ks) : NULL;
        cJSON_Delete(ks);
        if (!kt) return fail(c, "out of memory%s", NULL);
        add_literal(&key, kt, strlen(kt));
        free(kt);
        strbuf_printf(&c->out, "%s ::= %s ws \":\" ws %s ws\n", kv, key.p, v);
        strbuf_free(&key);
        if (required) {
            strbuf_printf(&c->out, "%s ::= %s %s\n%s ::= \",\" ws %s %s\n", ai, kv, b_next, bi, kv, b_next);
        } else {
            strbuf_printf(&c->out, "%s ::= %s %s | %s\n%s ::= \",\" ws %s %s | %s\n", ai, kv, b_next, a_next,
                          bi, kv, b_next, b_next);
        }
        memcpy(a_next, ai, sizeof a_next);
        memcpy(b_next, bi, sizeof b_next);
    }
    strbuf_printf(b, "\"{\" ws %s \"}\"", a_next);
    return true;
}

/* ---------------------------------------------------------------- integer ranges */

/* The largest magnitude the integer rule writes: 16 digits. */
#define INT_LIMIT 9999999999999999LL

/* Digit strings a <= z of one length n: an expression matching exactly the
 * n-digit strings between them (llama.cpp's construction: a common first
 * digit, or the first digit's run, the digits between, the last digit's run). */
static void digits_between(strbuf *b, const char *a, const char *z, int n) {
    if (n == 0) return;
    if (!strncmp(a, z, (size_t)n)) {
        strbuf_printf(b, "\"%.*s\" ", n, a);
        return;
    }
    bool a_low = true, z_high = true;
    for (int i = 1; i < n; i++) {
        a_low &= a[i] == '0';
        z_high &= z[i] == '9';
    }
    if (a[0] == z[0]) {
        strbuf_printf(b, "\"%c\" ", a[0]);
        digits_between(b, a + 1, z + 1, n - 1);
        return;
    }
    if (a_low && z_high) {
        strbuf_printf(b, "[%c-%c] ", a[0], z[0]);
        if (n > 1) strbuf_printf(b, "[0-9]{%d} ", n - 1);
        return;
    }
    char nines[20], zeros[20];
    memset(nines, '9', sizeof nines);
    memset(zeros, '0', sizeof zeros);
    strbuf_printf(b, "( \"%c\" ", a[0]);
    digits_between(b, a + 1, nines, n - 1);
    if (z[0] - a[0] > 1) {
        strbuf_printf(b, "| [%c-%c] ", a[0] + 1, z[0] - 1);
        if (n > 1) strbuf_printf(b, "[0-9]{%d} ", n - 1);
    }
    strbuf_printf(b, "| \"%c\" ", z[0]);
    digits_between(b, zeros, z + 1, n - 1);
    strbuf_adds(b, ") ");
}

/* The decimal integers lo..hi, 0 <= lo <= hi: one alternative per length. */
static void nonneg_range(strbuf *b, long long lo, long long hi) {
    char a[24], z[24];
    int la = snprintf(a, sizeof a, "%lld", lo), lz = snprintf(z, sizeof z, "%lld", hi);
    strbuf_adds(b, "( ");
    for (int n = la; n <= lz; n++) {
        char from[24], to[24];
        if (n == la) {
            memcpy(from, a, (size_t)n + 1);
        } else {
            from[0] = '1';
            memset(from + 1, '0', (size_t)n - 1);
        }
        if (n == lz) {
            memcpy(to, z, (size_t)n + 1);
        } else {
            memset(to, '9', (size_t)n);
        }
        if (n > la) strbuf_adds(b, "| ");
        digits_between(b, from, to, n);
    }
    strbuf_adds(b, ") ");
}

/* An integer bound: minimum/maximum, or exclusiveMinimum/exclusiveMaximum as
 * numbers (JSON Schema 6+), into *v (rounded inwards). */
static bool int_bound(conv *c, const cJSON *s, bool lower, long long *v) {
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(s, lower ? "minimum" : "maximum");
    const cJSON *exc = cJSON_GetObjectItemCaseSensitive(s, lower ? "exclusiveMinimum" : "exclusiveMaximum");
    *v = lower ? -INT_LIMIT : INT_LIMIT;
    const cJSON *both[2] = {inc, exc};
    for (int k = 0; k < 2; k++) {
        const cJSON *x = both[k];
        if (!x) continue;
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
            return fail(c, "'%s' must be a number (the boolean form of draft 4 is not supported)",
                        k ? (lower ? "exclusiveMinimum" : "exclusiveMaximum")
                          : (lower ? "minimum" : "maximum"));
        double d = x->valuedouble, r = lower ? ceil(d) : floor(d);
        if (k && r == d) r += lower ? 1 : -1;
        if (r < -(double)INT_LIMIT) r = -(double)INT_LIMIT;
        if (r > (double)INT_LIMIT) r = (double)INT_LIMIT;
        long long q = (long long)r;
        if (lower ? q > *v : q < *v) *v = q;
    }
    return true;
}

/* type integer with bounds: exactly the integers in them (as the integer rule writes them). */
static bool gen_int_range(conv *c, const cJSON *s, strbuf *b) {
    long long lo, hi;
    if (!int_bound(c, s, true, &lo) || !int_bound(c, s, false, &hi)) return false;
    if (lo > hi) {
        char m[96];
        snprintf(m, sizeof m, "%lld and maximum %lld", lo, hi);
        return fail(c, "no integer satisfies minimum %s: the schema can never be met", m);
    }
    if (lo >= 0) {
        nonneg_range(b, lo, hi);
    } else if (hi < 0) {
        strbuf_adds(b, "\"-\" ");
        nonneg_range(b, -hi, -lo);
    } else {
        strbuf_adds(b, "( \"-\" ");
        nonneg_range(b, 1, -lo);
        strbuf_adds(b, "| ");
        nonneg_range(b, 0, hi);
        strbuf_adds(b, ") ");
    }
    return true;
}

static bool gen_type(conv *c, const cJSON *s, const char *t, strbuf *b) {
    if (!strcmp(t, "string")) return gen_string(c, s, b);
    if (!strcmp(t, "array")) return gen_array(c, s, b);
    if (!strcmp(t, "object")) return gen_object(c, s, b);
    static const char *const NUM_KW[] = {"minimum",          "maximum",    "exclusiveMinimum",
                                         "exclusiveMaximum", "multipleOf", NULL};
    if (!strcmp(t, "number") || !strcmp(t, "integer")) {
        bool integer = t[0] == 'i', bounded = false;
        for (int i = 0; NUM_KW[i]; i++) {
            if (!cJSON_GetObjectItemCaseSensitive(s, NUM_KW[i])) continue;
            if (integer && i < 4) {
                bounded = true; /* integer bounds are enforced exactly */
                continue;
            }
            if (c->strict)
                return fail(
                    c,
                    integer
                        ? "keyword '%s' is not supported with strict: true"
                        : "keyword '%s' is not supported with strict: true on numbers (it is on integers)",
                    NUM_KW[i]);
        }
        if (bounded) return gen_int_range(c, s, b);
        strbuf_adds(b, integer ? "integer" : "number");
        return true;
    }
    if (!strcmp(t, "boolean") || !strcmp(t, "null")) {
        strbuf_adds(b, t);
        return true;
    }
    return fail(c, "unknown type '%s' (string, number, integer, boolean, null, object, array)", t);
}

/* ---------------------------------------------------------------- combinators */

static bool gen_alternatives(conv *c, const cJSON *list, const char *kw, strbuf *b) {
    if (!cJSON_IsArray(list) || !cJSON_GetArraySize(list))
        return fail(c, "'%s' must be a non-empty array of schemas", kw);
    int ok_n = 0;
    for (const cJSON *x = list->child; x; x = x->next) {
        rname v;
        size_t mark = c->out.n;
        if (!gen(c, x, v)) {
            if (c->err && c->err->code != HEARTH_ERR_INVALID) return false;
            if (strstr(c->err ? c->err->msg : "", "not supported")) return false;
            c->failed = false; /* an unsatisfiable branch only drops out */
            c->out.n = mark;
            continue;
        }
        strbuf_printf(b, "%s%s", ok_n++ ? " | " : "", v);
    }
    if (!ok_n) return fail(c, "no alternative of '%s' can be satisfied", kw);
    return true;
}

/* allOf: merge the member schemas into one (properties and required united,
 * types intersected, other keywords: the last one wins). */
static bool gen_all_of(conv *c, const cJSON *s, strbuf *b) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(s, "allOf");
    if (!cJSON_IsArray(list) || !cJSON_GetArraySize(list))
        return fail(c, "'allOf' must be a non-empty array of schemas%s", NULL);
    cJSON *m = cJSON_Duplicate(s, true);
    if (!m) return fail(c, "out of memory%s", NULL);
    cJSON_DeleteItemFromObjectCaseSensitive(m, "allOf");
    cJSON *props = cJSON_CreateObject(), *req = cJSON_CreateArray();
    const cJSON *types = NULL;
    bool ok = props && req;
    for (const cJSON *x = list->child; ok && x; x = x->next) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(x, "$ref");
        if (cJSON_IsString(r)) x = resolve_ref(c, r->valuestring);
        if (!x) {
            ok = false;
            break;
        }
        for (const cJSON *k = x->child; k; k = k->next) {
            if (!strcmp(k->string, "properties")) {
                for (const cJSON *p = k->child; p; p = p->next)
                    if (!cJSON_GetObjectItemCaseSensitive(props, p->string))
                        cJSON_AddItemToObject(props, p->string, cJSON_Duplicate(p, true));
            } else if (!strcmp(k->string, "required")) {
                for (const cJSON *p = k->child; p; p = p->next)
                    cJSON_AddItemToArray(req, cJSON_Duplicate(p, true));
            } else if (!strcmp(k->string, "type")) {
                if (types && cJSON_IsString(types) && cJSON_IsString(k) &&
                    strcmp(types->valuestring, k->valuestring)) {
                    ok = fail(c, "allOf asks for types '%s' and another at once: no value can satisfy it",
                              types->valuestring);
                    break;
                }
                types = k;
            } else if (strcmp(k->string, "$ref")) {
                cJSON_DeleteItemFromObjectCaseSensitive(m, k->string);
                cJSON_AddItemToObject(m, k->string, cJSON_Duplicate(k, true));
            }
        }
    }
    if (ok) {
        if (types) {
            cJSON_DeleteItemFromObjectCaseSensitive(m, "type");
            cJSON_AddItemToObject(m, "type", cJSON_Duplicate(types, true));
        }
        if (cJSON_GetArraySize(props)) {
            cJSON_DeleteItemFromObjectCaseSensitive(m, "properties");
            cJSON_AddItemToObject(m, "properties", props);
            props = NULL;
        }
        if (cJSON_GetArraySize(req)) {
            cJSON_DeleteItemFromObjectCaseSensitive(m, "required");
            cJSON_AddItemToObject(m, "required", req);
            req = NULL;
        }
        rname v;
        ok = gen(c, m, v);
        if (ok) strbuf_adds(b, v);
    }
    cJSON_Delete(props);
    cJSON_Delete(req);
    cJSON_Delete(m);
    return ok;
}

/* The body of schema s (without the type list split). */
static bool gen_body(conv *c, const cJSON *s, strbuf *b) {
    const cJSON *x;
    if ((x = cJSON_GetObjectItemCaseSensitive(s, "allOf"))) return gen_all_of(c, s, b);
    if ((x = cJSON_GetObjectItemCaseSensitive(s, "$ref"))) {
        if (!cJSON_IsString(x)) return fail(c, "'$ref' must be a string%s", NULL);
        rname v;
        if (!gen_ref(c, x->valuestring, v)) return false;
        strbuf_adds(b, v);
        return true;
    }
    if ((x = cJSON_GetObjectItemCaseSensitive(s, "const"))) return add_json_literal(c, b, x);
    if ((x = cJSON_GetObjectItemCaseSensitive(s, "enum"))) {
        if (!cJSON_IsArray(x)) return fail(c, "'enum' must be an array%s", NULL);
        if (!cJSON_GetArraySize(x)) return fail(c, "'enum' is empty: no value can satisfy it%s", NULL);
        for (const cJSON *e = x->child; e; e = e->next) {
            if (e != x->child) strbuf_adds(b, " | ");
            if (!add_json_literal(c, b, e)) return false;
        }
        return true;
    }
    if ((x = cJSON_GetObjectItemCaseSensitive(s, "anyOf"))) return gen_alternatives(c, x, "anyOf", b);
    if ((x = cJSON_GetObjectItemCaseSensitive(s, "oneOf"))) return gen_alternatives(c, x, "oneOf", b);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (cJSON_IsString(t)) return gen_type(c, s, t->valuestring, b);
    if (cJSON_IsArray(t)) {
        if (!cJSON_GetArraySize(t))
            return fail(c, "'type' is an empty list: no value can satisfy it%s", NULL);
        for (const cJSON *e = t->child; e; e = e->next) {
            if (!cJSON_IsString(e)) return fail(c, "'type' entries must be strings%s", NULL);
            strbuf sub = {0};
            bool ok = gen_type(c, s, e->valuestring, &sub);
            if (ok) strbuf_printf(b, "%s( %s )", e == t->child ? "" : " | ", sub.p);
            strbuf_free(&sub);
            if (!ok) return false;
        }
        return true;
    }
    if (t) return fail(c, "'type' must be a string or a list of strings%s", NULL);
    if (cJSON_GetObjectItemCaseSensitive(s, "properties") ||
        cJSON_GetObjectItemCaseSensitive(s, "required") ||
        cJSON_GetObjectItemCaseSensitive(s, "additionalProperties"))
        return gen_object(c, s, b);
    if (cJSON_GetObjectItemCaseSensitive(s, "items")) return gen_array(c, s, b);
    strbuf_adds(b, "value"); /* {} : any JSON value */
    return true;
}

static bool gen(conv *c, const cJSON *s, rname out) {
    if (c->failed) return false;
    if (cJSON_IsTrue(s)) return snprintf(out, sizeof(rname), "value"), true;
    if (cJSON_IsFalse(s)) return fail(c, "schema 'false' accepts nothing%s", NULL);
    if (!cJSON_IsObject(s)) return fail(c, "a schema must be an object or a boolean%s", NULL);
    if (!check_keywords(c, s)) return false;
    if (++c->depth > SCHEMA_MAX_DEPTH) return fail(c, "schema nested deeper than 64 levels%s", NULL);
    strbuf body = {0};
    bool ok = gen_body(c, s, &body);
    c->depth--;
    if (ok) {
        new_name(c, out);
        emit_rule(c, out, &body);
    }
    strbuf_free(&body);
    return ok && !c->out.oom;
}

char *hearth_json_schema_to_gbnf(const char *schema, size_t len, bool strict, hearth_error *err) {
    cJSON *root = cJSON_ParseWithLength(schema, len);
    if (!root) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "json schema: not valid JSON (near byte %ld)",
                         (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - schema : 0));
        return NULL;
    }
    conv c = {.root = root, .strict = strict, .err = err};
    strbuf_adds(&c.out, JSON_GBNF);
    rname top;
    bool ok = gen(&c, root, top);
    if (ok) strbuf_printf(&c.out, "root ::= %s\n", top);
    for (int i = 0; i < c.n_refs; i++)
        free(c.refs[i].ref);
    cJSON_Delete(root);
    if (ok && c.out.oom) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "json schema: out of memory");
        ok = false;
    }
    if (!ok) {
        strbuf_free(&c.out);
        return NULL;
    }
    return strbuf_take(&c.out);
}

hearth_grammar *hearth_grammar_from_json_schema(const char *schema, size_t len, bool strict,
                                                hearth_error *err) {
    char *g = hearth_json_schema_to_gbnf(schema, len, strict, err);
    if (!g) return NULL;
    hearth_grammar *gr = hearth_grammar_parse(g, strlen(g), "root", err);
    if (!gr) hearth_error_prefix(err, "json schema");
    free(g);
    return gr;
}

hearth_grammar *hearth_grammar_json_object(hearth_error *err) {
    strbuf b = {0};
    strbuf_adds(&b, JSON_GBNF);
    strbuf_adds(&b, "root ::= object\n");
    if (b.oom) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "grammar: out of memory");
        return NULL;
    }
    hearth_grammar *g = hearth_grammar_parse(b.p, b.n, "root", err);
    strbuf_free(&b);
    return g;
}
