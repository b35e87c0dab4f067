/* What this machine offers, as a node registers it: online CPUs (sysconf),
 * the clock of one core in MHz (/proc/cpuinfo "cpu MHz", else cpufreq's
 * cpuinfo_max_freq), memory (/proc/meminfo MemTotal) and the disk of the
 * agent's data dir (statvfs). Paths are parameters so tests can feed files. */
#pragma once

#include <jansson.h>

#include "lib/err.h"

struct st_host_sources {
    const char *cpuinfo;     /* NULL = /proc/cpuinfo */
    const char *cpufreq_max; /* NULL = /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq */
    const char *meminfo;     /* NULL = /proc/meminfo */
};

/* *ret = {"vcpus", "cpu_mhz", "memory_mb", "disk_gb"} (compute/model.h).
 * A fact that cannot be read is an error naming its source, except the
 * clock, which falls back to 1000 MHz with a warning (some virtual machines
 * publish neither). */
int st_host_capacity(const char *data_dir, const struct st_host_sources *src, json_t **ret,
                     struct st_err **err);
