/* Host capacity facts; see host.h. */
#include "agent/host.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/log.h"

#define HOST_DEFAULT_MHZ 1000

/* The value of the first line "key<spaces/tabs>: value" of a /proc file. */
static const char *proc_field(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, key, klen) == 0) {
            const char *p = line + klen;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == ':')
                return p + 1;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return NULL;
}

static unsigned cpu_mhz(const struct st_host_sources *src)
{
    st_autofree char *text = NULL;
    if (st_read_file(src && src->cpuinfo ? src->cpuinfo : "/proc/cpuinfo", 4 << 20, &text, NULL,
                     NULL) == 0) {
        const char *v = proc_field(text, "cpu MHz");
        double mhz = v ? strtod(v, NULL) : 0;
        if (mhz >= 1)
            return (unsigned)(mhz + 0.5);
    }
    st_autofree char *khz = NULL;
    const char *freq = src && src->cpufreq_max
                           ? src->cpufreq_max
                           : "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq";
    if (st_read_file(freq, 64, &khz, NULL, NULL) == 0) {
        unsigned long k = strtoul(khz, NULL, 10);
        if (k >= 1000)
            return (unsigned)(k / 1000);
    }
    st_log_warn("host_cpu_mhz_unknown", "assumed=%d hint=\"neither cpuinfo nor cpufreq give it\"",
                HOST_DEFAULT_MHZ);
    return HOST_DEFAULT_MHZ;
}

int st_host_capacity(const char *data_dir, const struct st_host_sources *src, json_t **ret,
                     struct st_err **err)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        return st_err_errno(err, "sysconf(_SC_NPROCESSORS_ONLN)");

    const char *meminfo = src && src->meminfo ? src->meminfo : "/proc/meminfo";
    st_autofree char *text = NULL;
    int r = st_read_file(meminfo, 1 << 20, &text, NULL, err);
    if (r < 0)
        return st_err_prefix(err, r, "reading memory size");
    const char *v = proc_field(text, "MemTotal");
    unsigned long long kb = v ? strtoull(v, NULL, 10) : 0;
    if (!kb)
        return st_err_set(err, -EINVAL, "%s: no MemTotal line", meminfo);

    struct statvfs vfs;
    if (statvfs(data_dir, &vfs) < 0)
        return st_err_errno(err, "statvfs %s", data_dir);
    unsigned long long disk = (unsigned long long)vfs.f_blocks * vfs.f_frsize;

    *ret = json_pack("{s:I,s:I,s:I,s:I}", "vcpus", (json_int_t)cpus, "cpu_mhz",
                     (json_int_t)cpu_mhz(src), "memory_mb", (json_int_t)(kb / 1024), "disk_gb",
                     (json_int_t)(disk >> 30));
    if (!*ret)
        abort();
    return 0;
}
