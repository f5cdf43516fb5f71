/*
 * grow.c - hearth_grow (contract in grow.h).
 */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>

bool hearth_grow(void **arr, size_t *cap, size_t need, size_t elem_size) {
    if (need <= *cap) return true;
    size_t n = *cap > SIZE_MAX / 2 ? need : *cap * 2;
    if (n < need) n = need;
    if (n < 8) n = 8;
    if (elem_size && n > SIZE_MAX / elem_size) return false;
    void *p = realloc(*arr, n * elem_size);
    if (!p) return false;
    *arr = p;
    *cap = n;
    return true;
}
