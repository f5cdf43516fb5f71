/*
 * grow.h - the one growth policy for arrays that are appended to.
 *
 * hearth_grow(&arr, &cap, need, sizeof *arr) makes room for `need` elements:
 * when cap < need the array is realloc'd to max(need, 2 * cap, 8) elements.
 * Returns false (arr and cap unchanged) when the size overflows or memory
 * runs out; the caller reports HEARTH_ERR_NOMEM. `cap` counts elements.
 *
 *     if (!hearth_grow((void **)&v->items, &v->cap, v->n + 1, sizeof *v->items)) return nomem;
 *     v->items[v->n++] = x;
 */
#ifndef HEARTH_GROW_H
#define HEARTH_GROW_H

#include <stdbool.h>
#include <stddef.h>

bool hearth_grow(void **arr, size_t *cap, size_t need, size_t elem_size);

#endif
