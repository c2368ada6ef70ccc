/* SPDX-License-Identifier: GPL-2.0-only */
/* Per-VM control groups for workers: memory, CPU weight and cap, pids; cgroup v2 or v1. */
#ifndef VMMS_PARENT_CGROUP_H
#define VMMS_PARENT_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/domxml.h"

#define CGROUP_DEFAULT_ROOT "/sys/fs/cgroup"
#define CGROUP_MEMORY_OVERHEAD (64ULL << 20) /* worker code, threads, queues beyond guest RAM */
#define CGROUP_DEFAULT_SHARES 1024           /* v1 cpu.shares; v2 cpu.weight is derived */
#define CGROUP_CPU_PERIOD_US 100000
#define CGROUP_PIDS_BASE 64

enum cgroup_mode { CGROUP_NONE = 0, CGROUP_V1, CGROUP_V2 };
enum cgroup_ctrl { CGROUP_MEMORY = 0, CGROUP_CPU, CGROUP_PIDS, CGROUP_NCTRL };

struct cgroup_limits {
	uint64_t memory_max;    /* bytes */
	unsigned cpu_shares;    /* v1 cpu.shares, 2..262144 */
	unsigned cpu_quota_pct; /* 100 = one whole CPU per period; 0 = no cap */
	unsigned pids_max;
};

struct vm_cgroup {
	enum cgroup_mode mode;
	/* v1: one directory per controller; v2: dir[0] is the group, the others are empty. */
	char dir[CGROUP_NCTRL][PATH_MAX];
	bool have[CGROUP_NCTRL];
	char missing[64];       /* absent controllers, space separated ("" when none) */
};

/* The limits for a definition: guest memory + overhead, default shares, vcpus x 100 % cap,
 * CGROUP_PIDS_BASE + 2 per vCPU. Pure. */
void cgroup_limits_from(const struct vm_config *cfg, struct cgroup_limits *ret);
/* v1 cpu.shares to v2 cpu.weight (1..10000), as runc and systemd convert. Pure. */
unsigned cgroup_shares_to_weight(unsigned shares);
/*
 * Find a process's group in the text of /proc/<pid>/cgroup: for a v1 controller ("memory",
 * also inside a "cpu,cpuacct" list) or, with controller NULL, the v2 "0::" line. 0 with the
 * path (starting with '/'), -ENOENT when absent, -EINVAL when malformed, -ENAMETOOLONG. Pure.
 */
int cgroup_self_path(const char *text, const char *controller, char *ret, size_t len);

/*
 * Create the group `name` (one path component, no '/') under "vmms" below vmmsd's own group in
 * each controller below root (NULL: CGROUP_DEFAULT_ROOT) and write the limits. A controller
 * that is not there is recorded in ret->missing and skipped; every other failure is an error
 * (-errno, err says which file). A group left by an earlier run is reused.
 */
int cgroup_create(const char *root, const char *name, const struct cgroup_limits *lim,
		  struct vm_cgroup *ret, char *err, size_t errlen);
/* The paths of an existing group (for a reattached worker), without touching anything. */
int cgroup_lookup(const char *root, const char *name, struct vm_cgroup *ret);
/* Move pid into every controller's group. 0 or -errno with err. */
int cgroup_attach(const struct vm_cgroup *cg, pid_t pid, char *err, size_t errlen);
/* Remove the groups (they must be empty: the worker has exited). Best effort. */
void cgroup_destroy(struct vm_cgroup *cg);

#endif
