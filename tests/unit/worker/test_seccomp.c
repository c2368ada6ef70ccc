// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of the worker's seccomp allow-lists: what each thread kind may and may not call,
 * checked on the lists and on the filters libseccomp builds from them (exported as PFC). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "lib/util.h"
#include "worker/seccomp.h"

static const enum worker_seccomp_kind kinds[] = { WORKER_SECCOMP_BASE, WORKER_SECCOMP_VCPU, WORKER_SECCOMP_IO };

/* Calls that reach host paths, other processes, privileges or new code: in no list. */
static const char *const forbidden[] = {
	"execve", "execveat", "open", "openat", "openat2", "creat", "socketpair", "bind", "listen", "ptrace", "mount", "umount2", "pivot_root", "chroot", "fork", "vfork", "kill",
	"setuid", "setgid", "unshare", "setns", "process_vm_readv", "process_vm_writev", "bpf",
	"perf_event_open", "init_module", "finit_module", "kexec_load", "reboot", "unlinkat",
	"rename", "renameat2", "mkdir", "symlink", "link", "chmod", "fchmod", "chown", "fchown",
	"keyctl", "add_key", "userfaultfd", "name_to_handle_at", "open_by_handle_at", "memfd_secret",
};

/* Under vmmsd the worker has no host path to reach: no new sockets, nothing to unlink. */
static const char *const forbidden_control[] = { "socket", "connect", "unlink" };

static void test_forbidden_in_no_list(void **state)
{
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++)
		for (size_t i = 0; i < ARRAY_SIZE(forbidden_control); i++)
			if (worker_seccomp_lists(kinds[k], false, forbidden_control[i]))
				fail_msg("%s filter lists %s in control mode", worker_seccomp_kind_name(kinds[k]),
					 forbidden_control[i]);
	/* only the foreground vsock connector, never a vCPU */
	assert_true(worker_seccomp_lists(WORKER_SECCOMP_IO, true, "connect"));
	assert_false(worker_seccomp_lists(WORKER_SECCOMP_VCPU, true, "connect"));
	/* a foreground worker's main thread removes its own vsock socket file at exit */
	assert_true(worker_seccomp_lists(WORKER_SECCOMP_BASE, true, "unlink"));
	assert_false(worker_seccomp_lists(WORKER_SECCOMP_VCPU, true, "unlink"));
	assert_false(worker_seccomp_lists(WORKER_SECCOMP_IO, true, "unlink"));
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++)
		for (int fg = 0; fg < 2; fg++)
			for (size_t i = 0; i < ARRAY_SIZE(forbidden); i++)
				if (worker_seccomp_lists(kinds[k], fg, forbidden[i]))
					fail_msg("%s filter (foreground %d) lists %s", worker_seccomp_kind_name(kinds[k]), fg,
						 forbidden[i]);
}

static void test_kinds_differ(void **state)
{
	/* The main thread rebuilds machines and serves the control channel... */
	assert_true(worker_seccomp_lists(WORKER_SECCOMP_BASE, false, "memfd_create"));
	assert_true(worker_seccomp_lists(WORKER_SECCOMP_BASE, false, "accept4"));
	assert_true(worker_seccomp_lists(WORKER_SECCOMP_BASE, false, "recvmsg"));
	/* ...vCPU threads do neither, nor create threads. */
	assert_false(worker_seccomp_lists(WORKER_SECCOMP_VCPU, false, "memfd_create"));
	assert_false(worker_seccomp_lists(WORKER_SECCOMP_VCPU, false, "accept4"));
	assert_false(worker_seccomp_lists(WORKER_SECCOMP_VCPU, false, "clone"));
	assert_false(worker_seccomp_lists(WORKER_SECCOMP_VCPU, false, "seccomp"));
	assert_true(worker_seccomp_lists(WORKER_SECCOMP_VCPU, false, "ioctl"));
	/* io threads: block I/O, but no accepting and no new VMs. */
	assert_true(worker_seccomp_lists(WORKER_SECCOMP_IO, false, "io_uring_enter"));
	assert_true(worker_seccomp_lists(WORKER_SECCOMP_IO, false, "pwrite64"));
	assert_false(worker_seccomp_lists(WORKER_SECCOMP_IO, false, "memfd_create"));
	/* clone3 is answered ENOSYS, never allowed (its flags are out of a filter's sight). */
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++)
		assert_false(worker_seccomp_lists(kinds[k], false, "clone3"));
	/* The base filter is the union: nothing a thread kind lists is refused by it. */
	static const char *const some[] = { "io_uring_enter", "pwrite64", "fallocate", "epoll_wait", "sendto",
					    "getrandom", "tgkill", "futex" };
	for (size_t i = 0; i < ARRAY_SIZE(some); i++)
		assert_true(worker_seccomp_lists(WORKER_SECCOMP_BASE, false, some[i]));
}

/* The filter as libseccomp will load it, as text. */
static char *export_pfc(enum worker_seccomp_kind kind, bool fg)
{
	void *ctx = NULL;
	int fd = memfd_create("pfc", MFD_CLOEXEC);
	char *text;
	off_t len;

	assert_true(fd >= 0);
	assert_int_equal(worker_seccomp_build(kind, WORKER_SECCOMP_KILL, fg, &ctx), 0);
	assert_int_equal(seccomp_export_pfc(ctx, fd), 0);
	worker_seccomp_free(ctx);
	len = lseek(fd, 0, SEEK_END);
	assert_true(len > 0);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(pread(fd, text, (size_t)len, 0), len);
	close(fd);
	return text;
}

static bool pfc_has(const char *pfc, const char *name)
{
	char needle[80];

	snprintf(needle, sizeof(needle), "syscall \"%s\"", name);
	return strstr(pfc, needle) != NULL;
}

/* Whether an ioctl request number appears in a comparison of the PFC text. */
static bool pfc_has_request(const char *pfc, unsigned long req)
{
	char needle[40];

	snprintf(needle, sizeof(needle), "0xffffffff == %lu)", req & 0xffffffffUL);
	return strstr(pfc, needle) != NULL;
}

static void test_built_filters(void **state)
{
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		char *pfc = export_pfc(kinds[k], false);

		assert_true(pfc_has(pfc, "ioctl"));
		assert_true(pfc_has(pfc, "futex"));
		for (size_t i = 0; i < ARRAY_SIZE(forbidden_control); i++)
			assert_false(pfc_has(pfc, forbidden_control[i]));
		for (size_t i = 0; i < ARRAY_SIZE(forbidden); i++)
			if (pfc_has(pfc, forbidden[i]))
				fail_msg("built %s filter names %s", worker_seccomp_kind_name(kinds[k]), forbidden[i]);
		/* Everything else is killed. */
		assert_non_null(strstr(pfc, "action KILL_PROCESS"));
		free(pfc);
	}
	char *vcpu = export_pfc(WORKER_SECCOMP_VCPU, false);
	char *base = export_pfc(WORKER_SECCOMP_BASE, false);
	/* ioctl is filtered by request: KVM_RUN for vCPUs, KVM_CREATE_VM only on the main thread. */
	assert_true(pfc_has_request(vcpu, KVM_RUN));
	assert_false(pfc_has_request(vcpu, KVM_CREATE_VM));
	assert_false(pfc_has_request(vcpu, KVM_SET_USER_MEMORY_REGION));
	assert_true(pfc_has_request(base, KVM_CREATE_VM));
	assert_null(strstr(vcpu, "memfd_create"));
	assert_non_null(strstr(base, "memfd_create"));
	free(vcpu);
	free(base);
}

static void test_modes(void **state)
{
	enum worker_seccomp_mode m;

	assert_int_equal(worker_seccomp_parse_mode("kill", &m), 0);
	assert_int_equal(m, WORKER_SECCOMP_KILL);
	assert_int_equal(worker_seccomp_parse_mode("log", &m), 0);
	assert_int_equal(m, WORKER_SECCOMP_LOG);
	assert_int_equal(worker_seccomp_parse_mode("off", &m), 0);
	assert_int_equal(m, WORKER_SECCOMP_OFF);
	assert_int_equal(worker_seccomp_parse_mode("trap", &m), 0);
	assert_int_equal(worker_seccomp_parse_mode("KILL", &m), -EINVAL);
	assert_int_equal(worker_seccomp_parse_mode("", &m), -EINVAL);
	/* This test binary is an ASan build: the default must not kill the sanitizer. */
	assert_int_equal(worker_seccomp_default_mode(), WORKER_SECCOMP_LOG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forbidden_in_no_list),
		cmocka_unit_test(test_kinds_differ),
		cmocka_unit_test(test_built_filters),
		cmocka_unit_test(test_modes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
