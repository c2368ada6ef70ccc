// SPDX-License-Identifier: GPL-2.0-only
/* Worker control groups: a group per VM below vmmsd's own, in the v2 tree or the v1 controllers. */
#include "parent/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

static const char *const ctrl_name[CGROUP_NCTRL] = {
	[CGROUP_MEMORY] = "memory",
	[CGROUP_CPU] = "cpu",
	[CGROUP_PIDS] = "pids",
};

void cgroup_limits_from(const struct vm_config *cfg, struct cgroup_limits *ret)
{
	unsigned vcpus = cfg->vcpus ? cfg->vcpus : 1;

	ret->memory_max = cfg->memory + CGROUP_MEMORY_OVERHEAD;
	ret->cpu_shares = CGROUP_DEFAULT_SHARES;
	ret->cpu_quota_pct = vcpus * 100;
	ret->pids_max = CGROUP_PIDS_BASE + 2 * vcpus;
}

unsigned cgroup_shares_to_weight(unsigned shares)
{
	if (shares < 2)
		shares = 2;
	if (shares > 262144)
		shares = 262144;
	return 1 + (unsigned)(((uint64_t)(shares - 2) * 9999) / 262142);
}

int cgroup_self_path(const char *text, const char *controller, char *ret, size_t len)
{
	const char *line = text;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t ll = nl ? (size_t)(nl - line) : strlen(line);
		const char *c1 = memchr(line, ':', ll), *c2;
		bool match = false;

		if (!c1)
			return -EINVAL;
		c2 = memchr(c1 + 1, ':', ll - (size_t)(c1 + 1 - line));
		if (!c2)
			return -EINVAL;
		if (!controller) {
			match = c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
		} else {
			/* The middle field is a comma-separated controller list ("cpu,cpuacct"). */
			const char *p = c1 + 1;
			size_t cl = strlen(controller);

			while (p < c2) {
				const char *comma = memchr(p, ',', (size_t)(c2 - p));
				const char *end = comma ? comma : c2;

				if ((size_t)(end - p) == cl && memcmp(p, controller, cl) == 0)
					match = true;
				p = end + 1;
			}
		}
		if (match) {
			size_t pl = ll - (size_t)(c2 + 1 - line);

			if (pl == 0 || c2[1] != '/')
				return -EINVAL;
			if (pl >= len)
				return -ENAMETOOLONG;
			memcpy(ret, c2 + 1, pl);
			ret[pl] = '\0';
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

static int write_str(const char *dir, const char *file, const char *val, char *err, size_t errlen)
{
	char path[PATH_MAX + 64];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		r = -errno;
	else {
		if (write(fd, val, strlen(val)) < 0)
			r = -errno;
		close(fd);
	}
	if (r < 0 && err)
		snprintf(err, errlen, "cgroup: cannot write '%s' to %s: %s", val, path, strerror(-r));
	return r;
}

static bool exists(const char *dir, const char *file)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

static int mkdir_ok(const char *path)
{
	return mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static bool name_ok(const char *name)
{
	return name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) < 128;
}

/* A /proc file reports size 0: read until the end. NUL-terminated; -EFBIG when it does not fit. */
static int read_proc(const char *path, char *buf, size_t len)
{
	size_t have = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + have, len - 1 - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;

			close(fd);
			return r;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		if (have == len - 1) {
			close(fd);
			return -EFBIG;
		}
	}
	close(fd);
	buf[have] = '\0';
	return 0;
}

/* Fill ret's paths; creates nothing. */
static int cgroup_paths(const char *root, const char *name, struct vm_cgroup *ret)
{
	char self[4096], base[PATH_MAX];
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!root)
		root = CGROUP_DEFAULT_ROOT;
	if (!name_ok(name))
		return -EINVAL;
	r = read_proc("/proc/self/cgroup", self, sizeof(self));
	if (r < 0)
		return r;
	snprintf(base, sizeof(base), "%s/cgroup.controllers", root);
	if (access(base, F_OK) == 0) {
		char own[PATH_MAX];

		ret->mode = CGROUP_V2;
		r = cgroup_self_path(self, NULL, own, sizeof(own));
		if (r < 0)
			return r;
		if ((size_t)snprintf(ret->dir[0], PATH_MAX, "%s%s/vmms/%s", root, strcmp(own, "/") ? own : "", name) >= PATH_MAX)
			return -ENAMETOOLONG;
		return 0;
	}
	ret->mode = CGROUP_V1;
	for (int i = 0; i < CGROUP_NCTRL; i++) {
		char own[PATH_MAX], top[PATH_MAX + 16];

		snprintf(top, sizeof(top), "%s/%s", root, ctrl_name[i]);
		if (!exists(top, "cgroup.procs") || cgroup_self_path(self, ctrl_name[i], own, sizeof(own)) < 0)
			continue;
		if ((size_t)snprintf(ret->dir[i], PATH_MAX, "%s%s/vmms/%s", top, strcmp(own, "/") ? own : "", name) >= PATH_MAX)
			return -ENAMETOOLONG;
	}
	return 0;
}

int cgroup_lookup(const char *root, const char *name, struct vm_cgroup *ret)
{
	int r = cgroup_paths(root, name, ret);

	if (r < 0)
		return r;
	for (int i = 0; i < CGROUP_NCTRL; i++)
		ret->have[i] = ret->dir[ret->mode == CGROUP_V2 ? 0 : i][0] != '\0';
	return 0;
}

static void note_missing(struct vm_cgroup *cg, enum cgroup_ctrl c)
{
	size_t n = strlen(cg->missing);

	snprintf(cg->missing + n, sizeof(cg->missing) - n, "%s%s", n ? " " : "", ctrl_name[c]);
}

/* mkdir -p of the "vmms" level and the group itself, below an existing parent. */
static int make_group(const char *dir, char *err, size_t errlen)
{
	char up[PATH_MAX];
	char *slash;
	int r;

	snprintf(up, sizeof(up), "%s", dir);
	slash = strrchr(up, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	r = mkdir_ok(up);
	if (r == 0)
		r = mkdir_ok(dir);
	if (r < 0)
		snprintf(err, errlen, "cgroup: cannot create %s: %s", dir, strerror(-r));
	return r;
}

static int create_v1(const struct cgroup_limits *lim, struct vm_cgroup *cg, char *err, size_t errlen)
{
	char v[64];
	int r;

	for (int i = 0; i < CGROUP_NCTRL; i++) {
		if (!cg->dir[i][0]) {
			note_missing(cg, (enum cgroup_ctrl)i);
			continue;
		}
		r = make_group(cg->dir[i], err, errlen);
		if (r < 0)
			return r;
		cg->have[i] = true;
	}
	if (cg->have[CGROUP_MEMORY]) {
		snprintf(v, sizeof(v), "%" PRIu64, lim->memory_max);
		r = write_str(cg->dir[CGROUP_MEMORY], "memory.limit_in_bytes", v, err, errlen);
		if (r < 0)
			return r;
		/* Without a memory+swap limit a worker could push its excess to swap. */
		if (exists(cg->dir[CGROUP_MEMORY], "memory.memsw.limit_in_bytes") &&
		    (r = write_str(cg->dir[CGROUP_MEMORY], "memory.memsw.limit_in_bytes", v, err, errlen)) < 0)
			return r;
	}
	if (cg->have[CGROUP_CPU]) {
		snprintf(v, sizeof(v), "%u", lim->cpu_shares);
		if ((r = write_str(cg->dir[CGROUP_CPU], "cpu.shares", v, err, errlen)) < 0)
			return r;
		snprintf(v, sizeof(v), "%u", CGROUP_CPU_PERIOD_US);
		if ((r = write_str(cg->dir[CGROUP_CPU], "cpu.cfs_period_us", v, err, errlen)) < 0)
			return r;
		if (lim->cpu_quota_pct)
			snprintf(v, sizeof(v), "%llu", (unsigned long long)lim->cpu_quota_pct * CGROUP_CPU_PERIOD_US / 100);
		else
			snprintf(v, sizeof(v), "-1");
		if ((r = write_str(cg->dir[CGROUP_CPU], "cpu.cfs_quota_us", v, err, errlen)) < 0)
			return r;
	}
	if (cg->have[CGROUP_PIDS]) {
		snprintf(v, sizeof(v), "%u", lim->pids_max);
		if ((r = write_str(cg->dir[CGROUP_PIDS], "pids.max", v, err, errlen)) < 0)
			return r;
	}
	return 0;
}

/* v2: the controllers must be enabled in every level's subtree_control from vmmsd's group
 * down. A group with processes cannot delegate ("no internal processes"): vmmsd then moves
 * itself into a leaf beside the workers' groups first. */
static int enable_v2(const char *parent, const char *ctrls, char *err, size_t errlen)
{
	int r = write_str(parent, "cgroup.subtree_control", ctrls, NULL, 0);

	if (r == -EBUSY) {
		char leaf[PATH_MAX + 16], pid[32];

		snprintf(leaf, sizeof(leaf), "%s/vmmsd", parent);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if ((r = mkdir_ok(leaf)) == 0 && (r = write_str(leaf, "cgroup.procs", pid, err, errlen)) == 0)
			r = write_str(parent, "cgroup.subtree_control", ctrls, NULL, 0);
	}
	if (r < 0)
		snprintf(err, errlen, "cgroup: cannot enable '%s' in %s/cgroup.subtree_control: %s", ctrls, parent,
			 strerror(-r));
	return r;
}

/* Whether controller c is offered in dir's cgroup.controllers. */
static bool v2_offers(const char *dir, const char *c)
{
	char p[PATH_MAX + 32], text[512];
	void *buf;
	size_t len;

	snprintf(p, sizeof(p), "%s/cgroup.controllers", dir);
	if (read_file_max(p, sizeof(text) - 1, &buf, &len) < 0)
		return false;
	memcpy(text, buf, len);
	text[len] = '\0';
	free(buf);
	for (char *t = text, *save = NULL, *tok; (tok = strtok_r(t, " \n", &save)); t = NULL)
		if (strcmp(tok, c) == 0)
			return true;
	return false;
}

static int create_v2(const struct cgroup_limits *lim, struct vm_cgroup *cg, char *err, size_t errlen)
{
	char own[PATH_MAX], mid[PATH_MAX], ctrls[64] = "", v[64];
	int r;

	snprintf(mid, sizeof(mid), "%s", cg->dir[0]);
	*strrchr(mid, '/') = '\0';
	snprintf(own, sizeof(own), "%s", mid);
	*strrchr(own, '/') = '\0';
	for (int i = 0; i < CGROUP_NCTRL; i++) {
		if (v2_offers(own, ctrl_name[i])) {
			size_t n = strlen(ctrls);

			snprintf(ctrls + n, sizeof(ctrls) - n, "%s+%s", n ? " " : "", ctrl_name[i]);
			cg->have[i] = true;
		} else {
			note_missing(cg, (enum cgroup_ctrl)i);
		}
	}
	snprintf(mid, sizeof(mid), "%s", cg->dir[0]);
	*strrchr(mid, '/') = '\0';
	if ((r = mkdir_ok(mid)) < 0) {
		snprintf(err, errlen, "cgroup: cannot create %s: %s", mid, strerror(-r));
		return r;
	}
	if (ctrls[0] && ((r = enable_v2(own, ctrls, err, errlen)) < 0 || (r = enable_v2(mid, ctrls, err, errlen)) < 0))
		return r;
	if ((r = mkdir_ok(cg->dir[0])) < 0) {
		snprintf(err, errlen, "cgroup: cannot create %s: %s", cg->dir[0], strerror(-r));
		return r;
	}
	if (cg->have[CGROUP_MEMORY]) {
		snprintf(v, sizeof(v), "%" PRIu64, lim->memory_max);
		if ((r = write_str(cg->dir[0], "memory.max", v, err, errlen)) < 0)
			return r;
		if (exists(cg->dir[0], "memory.swap.max") && (r = write_str(cg->dir[0], "memory.swap.max", "0", err, errlen)) < 0)
			return r;
	}
	if (cg->have[CGROUP_CPU]) {
		snprintf(v, sizeof(v), "%u", cgroup_shares_to_weight(lim->cpu_shares));
		if ((r = write_str(cg->dir[0], "cpu.weight", v, err, errlen)) < 0)
			return r;
		if (lim->cpu_quota_pct)
			snprintf(v, sizeof(v), "%llu %u", (unsigned long long)lim->cpu_quota_pct * CGROUP_CPU_PERIOD_US / 100,
				 CGROUP_CPU_PERIOD_US);
		else
			snprintf(v, sizeof(v), "max %u", CGROUP_CPU_PERIOD_US);
		if ((r = write_str(cg->dir[0], "cpu.max", v, err, errlen)) < 0)
			return r;
	}
	if (cg->have[CGROUP_PIDS]) {
		snprintf(v, sizeof(v), "%u", lim->pids_max);
		if ((r = write_str(cg->dir[0], "pids.max", v, err, errlen)) < 0)
			return r;
	}
	return 0;
}

int cgroup_create(const char *root, const char *name, const struct cgroup_limits *lim,
		  struct vm_cgroup *ret, char *err, size_t errlen)
{
	int r = cgroup_paths(root, name, ret);

	if (r < 0) {
		snprintf(err, errlen, "cgroup: cannot find vmmsd's own group: %s", strerror(-r));
		return r;
	}
	return ret->mode == CGROUP_V2 ? create_v2(lim, ret, err, errlen) : create_v1(lim, ret, err, errlen);
}

int cgroup_attach(const struct vm_cgroup *cg, pid_t pid, char *err, size_t errlen)
{
	char v[32];
	int r;

	snprintf(v, sizeof(v), "%d", (int)pid);
	if (cg->mode == CGROUP_V2)
		return cg->dir[0][0] ? write_str(cg->dir[0], "cgroup.procs", v, err, errlen) : 0;
	for (int i = 0; i < CGROUP_NCTRL; i++)
		if (cg->have[i] && (r = write_str(cg->dir[i], "cgroup.procs", v, err, errlen)) < 0)
			return r;
	return 0;
}

void cgroup_destroy(struct vm_cgroup *cg)
{
	for (int i = 0; i < CGROUP_NCTRL; i++) {
		if (!cg->dir[i][0])
			continue;
		(void)rmdir(cg->dir[i]);
		cg->have[i] = false;
	}
}
