// SPDX-License-Identifier: GPL-2.0-only
/* Worker cgroups: limits from a definition, v1->v2 weight, /proc/<pid>/cgroup parsing, and (as root) a real group. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "parent/cgroup.h"

static void test_limits_from(void **state)
{
	struct vm_config c = { .memory = 256ULL << 20, .vcpus = 2 };
	struct cgroup_limits l;

	cgroup_limits_from(&c, &l);
	assert_int_equal(l.memory_max, (256ULL << 20) + CGROUP_MEMORY_OVERHEAD);
	assert_int_equal(l.cpu_shares, 1024);
	assert_int_equal(l.cpu_quota_pct, 200);
	assert_int_equal(l.pids_max, CGROUP_PIDS_BASE + 4);
	c.vcpus = 0;   /* never 0 CPUs of cap */
	cgroup_limits_from(&c, &l);
	assert_int_equal(l.cpu_quota_pct, 100);
}

static void test_shares_to_weight(void **state)
{
	assert_int_equal(cgroup_shares_to_weight(2), 1);
	assert_int_equal(cgroup_shares_to_weight(262144), 10000);
	assert_int_equal(cgroup_shares_to_weight(1024), 39);   /* runc's mapping of the default */
	assert_int_equal(cgroup_shares_to_weight(0), 1);       /* clamped, not wrapped */
	assert_int_equal(cgroup_shares_to_weight(UINT32_MAX), 10000);
}

static void test_self_path(void **state)
{
	const char *hybrid = "12:pids:/user.slice\n4:cpu,cpuacct:/system.slice/vmmsd.service\n"
			     "3:memory:/process_api/abc\n1:name=systemd:/x\n0::/system.slice/vmmsd.service\n";
	char p[256];

	assert_int_equal(cgroup_self_path(hybrid, "memory", p, sizeof(p)), 0);
	assert_string_equal(p, "/process_api/abc");
	assert_int_equal(cgroup_self_path(hybrid, "cpu", p, sizeof(p)), 0);
	assert_string_equal(p, "/system.slice/vmmsd.service");
	assert_int_equal(cgroup_self_path(hybrid, "cpuacct", p, sizeof(p)), 0);
	assert_int_equal(cgroup_self_path(hybrid, "pids", p, sizeof(p)), 0);
	assert_string_equal(p, "/user.slice");
	assert_int_equal(cgroup_self_path(hybrid, NULL, p, sizeof(p)), 0);
	assert_string_equal(p, "/system.slice/vmmsd.service");
	/* "cpu" must not match "cpuset", nor "systemd" the name= hierarchy. */
	assert_int_equal(cgroup_self_path("5:cpuset:/a\n", "cpu", p, sizeof(p)), -ENOENT);
	assert_int_equal(cgroup_self_path(hybrid, "systemd", p, sizeof(p)), -ENOENT);
	assert_int_equal(cgroup_self_path("0::/\n", NULL, p, sizeof(p)), 0);
	assert_string_equal(p, "/");
	/* Malformed and oversized input. */
	assert_int_equal(cgroup_self_path("garbage\n", "memory", p, sizeof(p)), -EINVAL);
	assert_int_equal(cgroup_self_path("3:memory\n", "memory", p, sizeof(p)), -EINVAL);
	assert_int_equal(cgroup_self_path("3:memory:relative\n", "memory", p, sizeof(p)), -EINVAL);
	assert_int_equal(cgroup_self_path("3:memory:/a/very/long/path\n", "memory", p, 8), -ENAMETOOLONG);
	assert_int_equal(cgroup_self_path("", "memory", p, sizeof(p)), -ENOENT);
}

static long read_num(const char *dir, const char *file)
{
	char path[PATH_MAX + 64], buf[64] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atol(buf) : -1;
}

/* As root on a host with cgroups: a real group gets the limits and a process. */
static void test_real_group(void **state)
{
	struct vm_config c = { .memory = 64ULL << 20, .vcpus = 1 };
	struct cgroup_limits l;
	struct vm_cgroup cg, again;
	char err[512] = "", name[64];
	pid_t pid;
	int st, r;

	if (geteuid() != 0 || access("/sys/fs/cgroup", W_OK) < 0)
		skip();
	cgroup_limits_from(&c, &l);
	snprintf(name, sizeof(name), "unit-test-%d", (int)getpid());
	r = cgroup_create(NULL, name, &l, &cg, err, sizeof(err));
	if (r == -EROFS || r == -EACCES)
		skip();
	assert_int_equal(r, 0);
	assert_int_not_equal(cg.mode, CGROUP_NONE);
	if (cg.mode == CGROUP_V1) {
		if (cg.have[CGROUP_MEMORY])
			assert_int_equal(read_num(cg.dir[CGROUP_MEMORY], "memory.limit_in_bytes"), (long)l.memory_max);
		if (cg.have[CGROUP_CPU]) {
			assert_int_equal(read_num(cg.dir[CGROUP_CPU], "cpu.shares"), 1024);
			assert_int_equal(read_num(cg.dir[CGROUP_CPU], "cpu.cfs_quota_us"), 100000);
		}
		if (cg.have[CGROUP_PIDS])
			assert_int_equal(read_num(cg.dir[CGROUP_PIDS], "pids.max"), (long)l.pids_max);
	} else if (cg.have[CGROUP_MEMORY]) {
		assert_int_equal(read_num(cg.dir[0], "memory.max"), (long)l.memory_max);
	}
	/* A child placed in the group shows up in its cgroup.procs. */
	pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(cgroup_attach(&cg, pid, err, sizeof(err)), 0);
	for (int i = 0; i < CGROUP_NCTRL; i++) {
		const char *d = cg.mode == CGROUP_V2 ? cg.dir[0] : cg.dir[i];

		if (cg.have[i])
			assert_int_equal(read_num(d, "cgroup.procs"), pid);
	}
	/* Lookup finds the same paths without creating anything. */
	assert_int_equal(cgroup_lookup(NULL, name, &again), 0);
	assert_string_equal(again.dir[0], cg.dir[0]);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	cgroup_destroy(&cg);
	for (int i = 0; i < CGROUP_NCTRL; i++)
		if (cg.dir[i][0])
			assert_int_equal(access(cg.dir[i], F_OK), -1);
	/* A name with a slash is refused: it would escape the vmms level. */
	assert_int_equal(cgroup_create(NULL, "../evil", &l, &cg, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits_from),
		cmocka_unit_test(test_shares_to_weight),
		cmocka_unit_test(test_self_path),
		cmocka_unit_test(test_real_group),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
