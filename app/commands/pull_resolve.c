/*
 * pull_resolve.c - model spec -> download plan for `hearth pull` (pull.h).
 *
 * URL: one file, named after the URL's last path element. hf.co/ORG/REPO
 * [:QUANT]: GET {endpoint}/api/models/ORG/REPO, take the "siblings" entries
 * whose "rfilename" ends in .gguf and contains QUANT (case-insensitive,
 * default Q4_K_M); one file, or every part of one split model
 * (NAME-00001-of-0000N.gguf ...); several other matches are refused with
 * the list. A catalog name: its entry's hf_repo + file (+ sha256) from
 * models/catalog.yaml, read with libyaml.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "app/commands/pull.h"

/* snprintf into an error buffer (a long path is cut, never overflows). */
static void errf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

const char *pull_catalog_path(void) {
    const char *e = getenv("HEARTH_CATALOG");
    if (e && *e) return access(e, R_OK) == 0 ? e : NULL;
    if (access("/usr/share/hearth/catalog.yaml", R_OK) == 0) return "/usr/share/hearth/catalog.yaml";
#ifdef HEARTH_SOURCE_DIR
    if (access(HEARTH_SOURCE_DIR "/models/catalog.yaml", R_OK) == 0)
        return HEARTH_SOURCE_DIR "/models/catalog.yaml";
#endif
    return NULL;
}

static const char *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key) {
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        if (k && v && k->type == YAML_SCALAR_NODE && v->type == YAML_SCALAR_NODE &&
            !strcmp((const char *)k->data.scalar.value, key))
            return (const char *)v->data.scalar.value;
    }
    return NULL;
}

static yaml_node_t *map_node(yaml_document_t *doc, yaml_node_t *map, const char *key) {
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

/* 1 found (repo, file, sha filled), 0 not in the catalog, -1 error. */
static int catalog_find(const char *name, char *repo, char *file, char *sha, char *errbuf, size_t cap) {
    const char *path = pull_catalog_path();
    if (!path) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    yaml_parser_t ps;
    yaml_document_t doc;
    yaml_parser_initialize(&ps);
    yaml_parser_set_input_file(&ps, f);
    int found = 0;
    if (!yaml_parser_load(&ps, &doc)) {
        errf(errbuf, cap, "catalog %s: YAML error at line %zu: %s", path, ps.problem_mark.line + 1,
             ps.problem ? ps.problem : "?");
        yaml_parser_delete(&ps);
        fclose(f);
        return -1;
    }
    yaml_node_t *models = map_node(&doc, yaml_document_get_root_node(&doc), "models");
    if (models && models->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = models->data.sequence.items.start; it < models->data.sequence.items.top;
             it++) {
            yaml_node_t *m = yaml_document_get_node(&doc, *it);
            const char *n = map_get(&doc, m, "name");
            if (!n || strcmp(n, name)) continue;
            const char *r = map_get(&doc, m, "hf_repo"), *fl = map_get(&doc, m, "file"),
                       *s = map_get(&doc, m, "sha256");
            if (!r || !fl) {
                errf(errbuf, cap, "catalog %s: entry %s lacks hf_repo or file", path, name);
                found = -1;
                break;
            }
            snprintf(repo, 512, "%s", r);
            snprintf(file, 512, "%s", fl);
            snprintf(sha, 65, "%s", s && strlen(s) == 64 ? s : "");
            found = 1;
            break;
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&ps);
    fclose(f);
    return found;
}

static const char *strcasestr_(const char *h, const char *n) {
    size_t ln = strlen(n);
    for (; *h; h++)
        if (!strncasecmp(h, n, ln)) return h;
    return NULL;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

/* hf.co/ORG/REPO[:QUANT] -> the matching GGUF file(s) through the API. */
static int resolve_hf(const char *repo, const char *quant, int *n, char (*url)[2048], char (*file)[512],
                      int max, char *errbuf, size_t cap) {
    char api[2048];
    long status = 0;
    snprintf(api, sizeof api, "%s/api/models/%s", pull_hf_endpoint(), repo);
    char *body = pull_http_get(api, &status, errbuf, cap);
    if (!body) return -1;
    if (status != 200) {
        errf(errbuf, cap, "%s: HTTP %ld%s", api, status,
             status == 404 || status == 401 ? " (no such repository, or it is private/gated)" : "");
        free(body);
        return -1;
    }
    cJSON *j = cJSON_Parse(body);
    free(body);
    cJSON *sib = cJSON_GetObjectItemCaseSensitive(j, "siblings");
    if (!cJSON_IsArray(sib)) {
        errf(errbuf, cap, "%s: the answer has no \"siblings\" file list", api);
        cJSON_Delete(j);
        return -1;
    }
    *n = 0;
    int others = 0;
    char all[1024] = "";
    cJSON *it;
    cJSON_ArrayForEach(it, sib) {
        const char *fn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "rfilename"));
        if (!fn || !ends_with(fn, ".gguf")) continue;
        if (strlen(all) + strlen(fn) + 3 < sizeof all) strcat(strcat(all, " "), fn);
        if (!strcasestr_(fn, quant)) continue;
        const char *split = strstr(fn, "-of-");
        if (*n > 0 && !(split && strstr(file[0], "-of-"))) others++;
        if (*n < max && strlen(fn) < 512 && !strchr(fn, '/')) {
            snprintf(file[*n], 512, "%s", fn);
            snprintf(url[*n], 2048, "%s/%s/resolve/main/%s", pull_hf_endpoint(), repo, fn);
            (*n)++;
        }
    }
    cJSON_Delete(j);
    if (*n == 0) {
        errf(errbuf, cap, "%s has no GGUF file of quantization %s; its GGUF files:%s", repo, quant,
             *all ? all : " none");
        return -1;
    }
    if (others) {
        errf(errbuf, cap, "%s has several GGUF files matching %s:%s; name the quantization exactly", repo,
             quant, all);
        return -1;
    }
    /* split parts sort by their -0000k- number; the API lists them in name order already */
    return 0;
}

int pull_hf_published_sha(const char *repo, int n, const char (*file)[512], char (*sha)[65]) {
    char api[2048];
    long status = 0;
    char err[512];
    snprintf(api, sizeof api, "%s/api/models/%s/tree/main", pull_hf_endpoint(), repo);
    char *body = pull_http_get(api, &status, err, sizeof err);
    if (!body || status != 200) {
        free(body);
        return 0;
    }
    cJSON *j = cJSON_Parse(body);
    free(body);
    int found = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "path"));
        const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(it, "lfs");
        const char *oid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(lfs, "oid"));
        if (!path || !oid || strlen(oid) != 64) continue;
        for (int i = 0; i < n; i++)
            if (!sha[i][0] && !strcmp(path, file[i])) {
                snprintf(sha[i], 65, "%s", oid);
                found++;
            }
    }
    cJSON_Delete(j);
    return found;
}

int pull_resolve(const char *spec, int *n, char (*url)[2048], char (*file)[512], int max, char *name,
                 size_t name_cap, char *sha, char *hf_repo, char *source, size_t source_cap, char *errbuf,
                 size_t cap) {
    sha[0] = 0;
    hf_repo[0] = 0;
    if (!strncmp(spec, "http://", 7) || !strncmp(spec, "https://", 8)) {
        const char *b = strrchr(spec, '/');
        char base[512];
        snprintf(base, sizeof base, "%s", b + 1);
        char *q = strpbrk(base, "?#");
        if (q) *q = 0;
        if (!*base || strlen(spec) >= 2048) {
            errf(errbuf, cap, "%s: the URL names no file", spec);
            return -1;
        }
        *n = 1;
        snprintf(url[0], 2048, "%s", spec);
        snprintf(file[0], 512, "%s", base);
        snprintf(name, name_cap, "%.*s", (int)(ends_with(base, ".gguf") ? strlen(base) - 5 : strlen(base)),
                 base);
        snprintf(source, source_cap, "%s", spec);
        return 0;
    }
    if (!strncmp(spec, "hf.co/", 6) || !strncmp(spec, "huggingface.co/", 15)) {
        const char *r = strchr(spec, '/') + 1;
        char repo[512];
        snprintf(repo, sizeof repo, "%s", r);
        char *colon = strchr(repo, ':');
        const char *quant = "Q4_K_M";
        if (colon) {
            *colon = 0;
            quant = r + (colon - repo) + 1;
        }
        if (!strchr(repo, '/')) {
            errf(errbuf, cap, "%s: write hf.co/ORG/REPO[:QUANT]", spec);
            return -1;
        }
        if (resolve_hf(repo, quant, n, url, file, max, errbuf, cap)) return -1;
        snprintf(hf_repo, 512, "%s", repo);
        snprintf(name, name_cap, "hf.co/%s:%s", repo, quant);
        snprintf(source, source_cap, "hf.co/%s (%s)", repo, file[0]);
        return 0;
    }
    char repo[512], fl[512];
    int c = catalog_find(spec, repo, fl, sha, errbuf, cap);
    if (c < 0) return -1;
    if (c == 0) {
        const char *cp = pull_catalog_path();
        errf(errbuf, cap,
             "'%s' is not in the catalog (%s); give a catalog name, hf.co/ORG/REPO[:QUANT] or an http(s) URL",
             spec, cp ? cp : "no catalog found: set HEARTH_CATALOG");
        return -1;
    }
    *n = 1;
    snprintf(hf_repo, 512, "%s", repo);
    snprintf(file[0], 512, "%s", fl);
    snprintf(url[0], 2048, "%s/%s/resolve/main/%s", pull_hf_endpoint(), repo, fl);
    snprintf(name, name_cap, "%s", spec);
    snprintf(source, source_cap, "catalog: hf.co/%s (%s)", repo, fl);
    return 0;
}
