/*
 * vk_backend.h - what the Vulkan backend offers beyond backend.h: creation
 * and the device list. Declared here once, for the registry
 * (backends/registry.c) and the backend's own tests; runtime/ never includes
 * this (it knows devices only through backend.h).
 *
 * Owner: the Vulkan backend (backends/vulkan, internals in its README.md).
 *
 * Environment, read when the backend is created:
 *   HEARTH_VK_SUBGROUPS=0   shared-memory reductions instead of subgroup ops
 *   HEARTH_VK_STORAGE16=0   32-bit word reads instead of 16/8-bit storage
 * Compiled pipelines are cached in $XDG_CACHE_HOME/hearth (or
 * ~/.cache/hearth), one file per device and driver version.
 */
#ifndef HEARTH_VK_BACKEND_H
#define HEARTH_VK_BACKEND_H

#include <stdbool.h>

#include "backends/backend.h"

/* device >= 0: that device (vulkan:N). device < 0: the best-ranked usable
 * device, a software rasteriser (lavapipe) only when allow_software. NULL
 * with one clear line in err when there is none. */
hearth_backend *hearth_vulkan_backend_create(int device, bool allow_software, hearth_error *err);

/* The Vulkan devices, for hearth info --devices: up to cap into out, ranked
 * like create's device < 0 (the one it would take has auto_pick set); the
 * count, or -1 with err saying why none can be used (no loader, ...). */
int hearth_vulkan_devices(hearth_device_desc *out, int cap, hearth_error *err);

#endif
