// SPDX-License-Identifier: GPL-2.0-only
/*
 * Sandbox tests: the ELF loader probe (hostile headers), argument checks, and, as root, real
 * spawns: busybox (static) and, when VMMS_SANDBOX_PROBE names the static probe
 * (tests/e2e/sandbox_probe.c), every escape attempt the probe makes must be denied.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "parent/sandbox.h"

#define TEST_UID 200777
#define TEST_GID 200777

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("elf", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

static void test_elf_interp_self(void **state)
{
	char interp[PATH_MAX];
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	/* The test binary is dynamic (sanitizers need the loader). */
	assert_int_equal(sandbox_elf_interp(fd, interp, sizeof(interp)), 1);
	assert_true(interp[0] == '/');
	assert_non_null(strstr(interp, "ld-linux"));
	close(fd);
}

static void test_elf_interp_static_and_hostile(void **state)
{
	struct {
		Elf64_Ehdr eh;
		Elf64_Phdr ph;
		char path[16];
	} img;
	char interp[64];
	int fd;

	memset(&img, 0, sizeof(img));
	memcpy(img.eh.e_ident, ELFMAG, SELFMAG);
	img.eh.e_ident[EI_CLASS] = ELFCLASS64;
	img.eh.e_phentsize = sizeof(Elf64_Phdr);
	img.eh.e_phoff = offsetof(__typeof__(img), ph);
	img.eh.e_phnum = 1;
	img.ph.p_type = PT_LOAD;
	fd = memfd_with(&img, sizeof(img));
	assert_int_equal(sandbox_elf_interp(fd, interp, sizeof(interp)), 0);   /* static */
	close(fd);

	img.ph.p_type = PT_INTERP;
	img.ph.p_offset = offsetof(__typeof__(img), path);
	memcpy(img.path, "/lib/ld.so", 11);
	img.ph.p_filesz = 11;
	fd = memfd_with(&img, sizeof(img));
	assert_int_equal(sandbox_elf_interp(fd, interp, sizeof(interp)), 1);
	assert_string_equal(interp, "/lib/ld.so");
	close(fd);

	/* Not NUL-terminated inside p_filesz. */
	img.ph.p_filesz = 10;
	fd = memfd_with(&img, sizeof(img));
	assert_int_equal(sandbox_elf_interp(fd, interp, sizeof(interp)), -ENOEXEC);
	close(fd);
	/* Interpreter beyond the end of the file, and a huge size. */
	img.ph.p_filesz = 11;
	img.ph.p_offset = 1u << 30;
	fd = memfd_with(&img, sizeof(img));
	assert_int_equal(sandbox_elf_interp(fd, interp, sizeof(interp)), -ENOEXEC);
	close(fd);
	img.ph.p_offset = offsetof(__typeof__(img), path);
	img.ph.p_filesz = UINT64_MAX;
	fd = memfd_with(&img, sizeof(img));
	assert_int_equal(sandbox_elf_interp(fd, interp, sizeof(interp)), -ENOEXEC);
	close(fd);
	/* Program headers past the end, and a header that wraps. */
	img.ph.p_filesz = 11;
	img.eh.e_phoff = UINT64_MAX - 8;
	fd = memfd_with(&img, sizeof(img));
	assert_int_equal(sandbox_elf_interp(fd, interp, sizeof(interp)), -ENOEXEC);
	close(fd);
	/* Not an ELF at all. */
	fd = memfd_with("#!/bin/sh\n", 10);
	assert_int_equal(sandbox_elf_interp(fd, interp, sizeof(interp)), -ENOEXEC);
	close(fd);
}

static void test_spawn_refuses_root_uid(void **state)
{
	char *argv[] = { "x", NULL };
	struct sandbox_spec s = { .exe_fd = 0, .argv = argv, .uid = 0, .gid = 5, .root_dir = "/tmp",
				  .stdio = { -1, -1, -1 } };
	char err[256];
	pid_t pid;
	int pidfd;

	assert_int_equal(sandbox_spawn(&s, &pid, &pidfd, err, sizeof(err)), -EINVAL);
	s.uid = 5;
	s.root_dir = "relative";
	assert_int_equal(sandbox_spawn(&s, &pid, &pidfd, err, sizeof(err)), -EINVAL);
}

struct placed {
	pid_t pid;
	int calls;
	int fail;
};

static int place_cb(void *ud, pid_t pid, char *err, size_t errlen)
{
	struct placed *p = ud;

	p->pid = pid;
	p->calls++;
	if (p->fail) {
		snprintf(err, errlen, "no cgroup for you");
		return -EIO;
	}
	return 0;
}

/* Spawn exe with argv in the sandbox; stdout and stderr go to a pipe whose text is returned. */
static char *run_sandboxed(const char *exe, char **argv, const int *fds, size_t nfds, struct placed *pl,
			   int *ret_status, int *ret_r, char *err, size_t errlen)
{
	char tmpl[] = "/tmp/vmms-sbx-XXXXXX";
	int out[2], nul, exefd, pidfd = -1, st = -1;
	static char buf[65536];
	size_t len = 0;
	ssize_t n;
	pid_t pid = 0;
	struct sandbox_spec s = { 0 };

	assert_non_null(mkdtemp(tmpl));
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	exefd = open(exe, O_RDONLY | O_CLOEXEC);
	assert_true(nul >= 0 && exefd >= 0);
	s.exe_fd = exefd;
	s.argv = argv;
	s.stdio[0] = nul;
	s.stdio[1] = out[1];
	s.stdio[2] = out[1];
	s.fds = fds;
	s.nfds = nfds;
	s.uid = TEST_UID;
	s.gid = TEST_GID;
	s.root_dir = tmpl;
	s.hostname = "probe";
	s.place = place_cb;
	s.userdata = pl;
	*ret_r = sandbox_spawn(&s, &pid, &pidfd, err, errlen);
	close(out[1]);
	close(nul);
	close(exefd);
	while (len < sizeof(buf) - 1 && (n = read(out[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(out[0]);
	if (*ret_r == 0) {
		assert_int_equal(waitpid(pid, &st, 0), pid);
		close(pidfd);
	}
	*ret_status = st;
	/* The mount lived only in the child's namespace: the host directory is still empty. */
	assert_int_equal(rmdir(tmpl), 0);
	return buf;
}

static bool have_root(void)
{
	return geteuid() == 0;
}

static bool static_busybox(void)
{
	char interp[PATH_MAX];
	int fd = open("/bin/busybox", O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return false;
	r = sandbox_elf_interp(fd, interp, sizeof(interp));
	close(fd);
	return r == 0;
}

static void test_spawn_busybox(void **state)
{
	char *argv[] = { "busybox", "sh", "-c",
			 /* builtins and nofork applets only: there is no busybox binary to exec inside */
			 "read x </etc/passwd; echo passwd=$?; echo uid=$(id -u) gid=$(id -g); echo pid=$$; "
			 "set -- /* /.[!.]*; echo root=\"$*\"; hostname; echo fd3 >&3 && echo fd3ok", NULL };
	struct placed pl = { 0 };
	char err[256] = "", *out;
	int st, r, p[2];

	if (!have_root() || !static_busybox())
		skip();
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	out = run_sandboxed("/bin/busybox", argv, &p[1], 1, &pl, &st, &r, err, sizeof(err));
	close(p[1]);
	printf("%s", out);
	assert_int_equal(r, 0);
	assert_int_equal(pl.calls, 1);
	assert_true(pl.pid > 0);
	assert_true(WIFEXITED(st));
	/* No /etc/passwd; the VM's ids; pid 1 of its own namespace; globs match nothing in /. */
	assert_non_null(strstr(out, "passwd=1"));
	assert_non_null(strstr(out, "uid=200777 gid=200777"));
	assert_non_null(strstr(out, "pid=1\n"));
	assert_non_null(strstr(out, "root=/* /.[!.]*\nprobe\n"));
	/* Handed descriptor 3 works. */
	assert_non_null(strstr(out, "fd3ok"));
	{
		char b[8] = "";

		assert_int_equal(read(p[0], b, sizeof(b) - 1), 4);
		assert_string_equal(b, "fd3\n");
	}
	close(p[0]);
}

static void test_spawn_place_failure_and_exec_failure(void **state)
{
	char *argv[] = { "busybox", "true", NULL };
	struct placed pl = { .fail = 1 };
	char err[256] = "";
	int st, r;

	if (!have_root() || !static_busybox())
		skip();
	run_sandboxed("/bin/busybox", argv, NULL, 0, &pl, &st, &r, err, sizeof(err));
	assert_int_equal(r, -EIO);
	assert_string_equal(err, "no cgroup for you");
	/* A dynamic program without its loader bound in cannot start: the failure names exec. */
	pl.fail = 0;
	run_sandboxed("/proc/self/exe", argv, NULL, 0, &pl, &st, &r, err, sizeof(err));
	assert_int_equal(r, -ENOENT);
	assert_non_null(strstr(err, "execveat"));
}

static void test_spawn_probe(void **state)
{
	const char *probe = getenv("VMMS_SANDBOX_PROBE");
	char hostpid[16], *argv[] = { "probe", hostpid, NULL };
	struct placed pl = { 0 };
	char err[256] = "", *out;
	int st, r, p[2];
	static const char *const denied[] = {
		"open_etc_passwd", "open_proc", "open_dev_kvm", "create_file", "kill_host_pid",
		"kill_all", "setuid_0", "setgid_0", "mount_proc", "chroot", "connect_localhost",
	};

	if (!have_root() || !probe)
		skip();
	snprintf(hostpid, sizeof(hostpid), "%d", (int)getpid());
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	out = run_sandboxed(probe, argv, &p[0], 1, &pl, &st, &r, err, sizeof(err));
	close(p[0]);
	close(p[1]);
	printf("%s", out);
	assert_int_equal(r, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		char want[64];

		snprintf(want, sizeof(want), "%s denied ", denied[i]);
		if (!strstr(out, want))
			fail_msg("escape attempt %s was not denied:\n%s", denied[i], out);
	}
	assert_non_null(strstr(out, "uid 200777 gid 200777 pid 1\n"));
	assert_non_null(strstr(out, "caps eff 0 prm 0 inh 0\n"));
	assert_non_null(strstr(out, "root_entries 0\n"));
	/* Only 0-2 and the one handed descriptor. */
	assert_non_null(strstr(out, "fd 0\nfd 1\nfd 2\nfd 3\ndone\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf_interp_self),
		cmocka_unit_test(test_elf_interp_static_and_hostile),
		cmocka_unit_test(test_spawn_refuses_root_uid),
		cmocka_unit_test(test_spawn_busybox),
		cmocka_unit_test(test_spawn_place_failure_and_exec_failure),
		cmocka_unit_test(test_spawn_probe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
