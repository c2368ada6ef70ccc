// SPDX-License-Identifier: GPL-2.0-only
/* Per-thread-kind seccomp allow-lists for the worker, built with libseccomp. */
#include "worker/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/kvm.h>

#include "lib/util.h"

/* Which filters list a rule. The base filter lists every rule (it is the union); K_FG rules
 * only when the worker runs in the foreground. */
#define K_BASE 0x1u
#define K_VCPU 0x2u
#define K_IO   0x4u
#define K_FG   0x8u
#define K_ALL  (K_BASE | K_VCPU | K_IO)

enum sc_arg {
	ARG_ANY = 0,
	ARG_NO_EXEC,      /* mmap/mprotect: arg 2 (prot) without PROT_EXEC: no new code */
	ARG_THREAD,       /* clone: arg 0 (flags) has CLONE_THREAD: threads, never processes */
	ARG_OWN_TGID,     /* tgkill: arg 0 is our own process */
	ARG_EMPTY_PATH,   /* newfstatat: only with AT_EMPTY_PATH (fstat on an fd) */
	ARG_IOCTL,        /* ioctl: only the requests in sc_ioctls for this kind */
	ARG_UNIX,         /* socket: AF_UNIX only */
	ARG_NNP,          /* prctl: only PR_SET_NO_NEW_PRIVS (libseccomp sets it when loading) */
	ARG_ENOSYS,       /* clone3: fail with ENOSYS so glibc falls back to clone (whose flags
			   * a filter can see; clone3 passes them in memory) */
};

struct sc_rule {
	const char *name;
	unsigned kinds;
	enum sc_arg arg;
};

static const struct sc_rule sc_rules[] = {
	/* every thread: memory, locks, plain fd I/O, time, its own signals and exit */
	{ "read", K_ALL, ARG_ANY }, { "write", K_ALL, ARG_ANY }, { "readv", K_ALL, ARG_ANY }, { "writev", K_ALL, ARG_ANY },
	{ "close", K_ALL, ARG_ANY }, { "futex", K_ALL, ARG_ANY }, { "exit", K_ALL, ARG_ANY }, { "exit_group", K_ALL, ARG_ANY },
	{ "rt_sigreturn", K_ALL, ARG_ANY }, { "rt_sigprocmask", K_ALL, ARG_ANY }, { "restart_syscall", K_ALL, ARG_ANY },
	{ "clock_gettime", K_ALL, ARG_ANY }, { "clock_nanosleep", K_ALL, ARG_ANY }, { "nanosleep", K_ALL, ARG_ANY },
	{ "gettimeofday", K_ALL, ARG_ANY }, { "gettid", K_ALL, ARG_ANY }, { "getpid", K_ALL, ARG_ANY }, { "sched_yield", K_ALL, ARG_ANY },
	{ "tgkill", K_ALL, ARG_OWN_TGID },
	{ "mmap", K_ALL, ARG_NO_EXEC }, { "mprotect", K_ALL, ARG_NO_EXEC }, { "munmap", K_ALL, ARG_ANY },
	{ "madvise", K_ALL, ARG_ANY }, { "brk", K_ALL, ARG_ANY }, { "mremap", K_ALL, ARG_ANY },
	{ "ioctl", K_ALL, ARG_IOCTL },
	/* guest output to a socket (chardev_write), io_uring submission on a device reset */
	{ "sendto", K_ALL, ARG_ANY }, { "io_uring_enter", K_ALL, ARG_ANY },
	/* io threads (and the short-lived thread that starts them, hence clone); epoll_ctl also on
	 * vCPU threads: a device activated or reset by a status write (a vCPU exit) adds or drops
	 * the fds its io thread watches (virtio-vsock's listening socket and connections) */
	{ "epoll_wait", K_BASE | K_IO, ARG_ANY }, { "epoll_pwait", K_BASE | K_IO, ARG_ANY }, { "epoll_ctl", K_ALL, ARG_ANY },
	{ "pread64", K_BASE | K_IO, ARG_ANY }, { "pwrite64", K_BASE | K_IO, ARG_ANY }, { "preadv", K_BASE | K_IO, ARG_ANY },
	{ "pwritev", K_BASE | K_IO, ARG_ANY }, { "preadv2", K_BASE | K_IO, ARG_ANY }, { "pwritev2", K_BASE | K_IO, ARG_ANY },
	{ "fsync", K_BASE | K_IO, ARG_ANY }, { "fdatasync", K_BASE | K_IO, ARG_ANY }, { "fallocate", K_BASE | K_IO, ARG_ANY },
	{ "getrandom", K_BASE | K_IO, ARG_ANY }, { "recvfrom", K_BASE | K_IO, ARG_ANY }, { "recvmsg", K_BASE | K_IO, ARG_ANY },
	{ "sendmsg", K_BASE | K_IO, ARG_ANY },
	/* virtio-vsock serves host connections on its io thread */
	{ "accept4", K_BASE | K_IO, ARG_ANY }, { "fcntl", K_BASE | K_IO, ARG_ANY },
	{ "shutdown", K_BASE | K_IO, ARG_ANY },
	/* a foreground worker's vsock reaches host listeners at "<path>_P" itself (under vmmsd
	 * the worker has no host paths to reach) */
	{ "socket", K_BASE | K_IO | K_FG, ARG_UNIX }, { "connect", K_BASE | K_IO | K_FG, ARG_ANY },
	/* ... and removes its vsock socket file when the VM ends (main thread) */
	{ "unlink", K_BASE | K_FG, ARG_ANY },
	{ "clone", K_BASE | K_IO, ARG_THREAD }, { "clone3", K_BASE | K_IO, ARG_ENOSYS },
	{ "set_robust_list", K_BASE | K_IO, ARG_ANY }, { "rseq", K_BASE | K_IO, ARG_ANY }, { "sigaltstack", K_BASE | K_IO, ARG_ANY },
	/* the main thread: control channel, event loop, rebuilding the machine on reset */
	{ "getsockopt", K_BASE, ARG_ANY }, { "setsockopt", K_BASE, ARG_ANY },
	{ "epoll_create1", K_BASE, ARG_ANY }, { "eventfd2", K_BASE, ARG_ANY }, { "memfd_create", K_BASE, ARG_ANY },
	{ "ftruncate", K_BASE, ARG_ANY }, { "lseek", K_BASE, ARG_ANY }, { "fstat", K_BASE, ARG_ANY },
	{ "newfstatat", K_BASE, ARG_EMPTY_PATH }, { "dup", K_BASE, ARG_ANY },
	{ "io_uring_setup", K_BASE, ARG_ANY }, { "io_uring_register", K_BASE, ARG_ANY }, { "rt_sigaction", K_BASE, ARG_ANY },
	{ "getuid", K_BASE, ARG_ANY }, { "geteuid", K_BASE, ARG_ANY }, { "getgid", K_BASE, ARG_ANY }, { "getegid", K_BASE, ARG_ANY },
	{ "getppid", K_BASE, ARG_ANY }, { "sysinfo", K_BASE, ARG_ANY }, { "sched_getaffinity", K_BASE, ARG_ANY },
	/* what a new vCPU or io thread needs to stack its own filter over this one */
	{ "seccomp", K_BASE, ARG_ANY }, { "prctl", K_BASE, ARG_NNP },
};

struct sc_ioctl {
	unsigned long req;
	unsigned kinds;
};

static const struct sc_ioctl sc_ioctls[] = {
	/* the run loop and what bus dispatch reaches: interrupts, MSI routes, ioeventfds */
	{ KVM_RUN, K_BASE | K_VCPU },
	{ KVM_IRQ_LINE, K_ALL }, { KVM_SIGNAL_MSI, K_ALL },
	{ KVM_IRQFD, K_BASE | K_VCPU }, { KVM_IOEVENTFD, K_BASE | K_VCPU },
	{ KVM_SET_GSI_ROUTING, K_BASE | K_VCPU },
	{ KVM_GET_REGS, K_BASE | K_VCPU }, { KVM_GET_SREGS, K_BASE | K_VCPU },
	{ KVM_GET_LAPIC, K_BASE | K_VCPU }, { KVM_GET_MP_STATE, K_BASE | K_VCPU },
	{ KVM_GET_FPU, K_BASE | K_VCPU },
	/* building a machine (first boot and every reset), main thread only */
	{ KVM_GET_API_VERSION, K_BASE }, { KVM_CHECK_EXTENSION, K_BASE }, { KVM_CREATE_VM, K_BASE },
	{ KVM_GET_VCPU_MMAP_SIZE, K_BASE }, { KVM_GET_SUPPORTED_CPUID, K_BASE },
	{ KVM_SET_TSS_ADDR, K_BASE }, { KVM_SET_IDENTITY_MAP_ADDR, K_BASE },
	{ KVM_CREATE_IRQCHIP, K_BASE }, { KVM_CREATE_PIT2, K_BASE },
	{ KVM_SET_USER_MEMORY_REGION, K_BASE }, { KVM_CREATE_VCPU, K_BASE }, { KVM_SET_CPUID2, K_BASE },
	{ KVM_SET_MSRS, K_BASE }, { KVM_SET_LAPIC, K_BASE }, { KVM_SET_REGS, K_BASE },
	{ KVM_SET_SREGS, K_BASE }, { KVM_SET_FPU, K_BASE }, { KVM_SET_MP_STATE, K_BASE },
	{ KVM_ENABLE_CAP, K_BASE }, { BLKGETSIZE64, K_BASE },
	/* the terminal a foreground worker restores at exit */
	{ TCGETS, K_BASE | K_FG }, { TCSETS, K_BASE | K_FG }, { TCSETSW, K_BASE | K_FG },
	{ TCSETSF, K_BASE | K_FG }, { TIOCGWINSZ, K_BASE | K_FG },
};

static unsigned kind_bit(enum worker_seccomp_kind kind)
{
	switch (kind) {
	case WORKER_SECCOMP_BASE: return K_BASE;
	case WORKER_SECCOMP_VCPU: return K_VCPU;
	case WORKER_SECCOMP_IO: return K_IO;
	}
	return 0;
}

static bool rule_in(unsigned kinds, enum worker_seccomp_kind kind, bool foreground)
{
	if ((kinds & K_FG) && !foreground)
		return false;
	/* The base filter is the union of all lists, so no thread is refused by it. */
	return kind == WORKER_SECCOMP_BASE ? (kinds & K_ALL) != 0 : (kinds & kind_bit(kind)) != 0;
}

enum worker_seccomp_mode worker_seccomp_default_mode(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return WORKER_SECCOMP_LOG;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return WORKER_SECCOMP_LOG;
#else
	return WORKER_SECCOMP_KILL;
#endif
#else
	return WORKER_SECCOMP_KILL;
#endif
}

int worker_seccomp_parse_mode(const char *s, enum worker_seccomp_mode *ret)
{
	static const char *const names[] = {
		[WORKER_SECCOMP_KILL] = "kill", [WORKER_SECCOMP_TRAP] = "trap",
		[WORKER_SECCOMP_LOG] = "log", [WORKER_SECCOMP_OFF] = "off",
	};

	for (unsigned i = 0; i < ARRAY_SIZE(names); i++)
		if (s && strcmp(s, names[i]) == 0) {
			*ret = (enum worker_seccomp_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *worker_seccomp_kind_name(enum worker_seccomp_kind kind)
{
	switch (kind) {
	case WORKER_SECCOMP_BASE: return "main";
	case WORKER_SECCOMP_VCPU: return "vcpu";
	case WORKER_SECCOMP_IO: return "io";
	}
	return "?";
}

bool worker_seccomp_lists(enum worker_seccomp_kind kind, bool foreground, const char *syscall)
{
	for (size_t i = 0; i < ARRAY_SIZE(sc_rules); i++)
		if (strcmp(sc_rules[i].name, syscall) == 0 && rule_in(sc_rules[i].kinds, kind, foreground))
			return sc_rules[i].arg != ARG_ENOSYS;
	return false;
}

static int add_rule(scmp_filter_ctx ctx, const struct sc_rule *rule, enum worker_seccomp_kind kind, bool foreground)
{
	int nr = seccomp_syscall_resolve_name(rule->name);
	int r = 0;

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not a syscall on this architecture (e.g. a newer one): nothing to allow */
	switch (rule->arg) {
	case ARG_ANY:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	case ARG_NO_EXEC:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	case ARG_THREAD:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	case ARG_OWN_TGID:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	case ARG_EMPTY_PATH:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
	case ARG_UNIX:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	case ARG_NNP:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS));
	case ARG_ENOSYS:
		return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
	case ARG_IOCTL:
		/* The request is an unsigned int the caller may have sign-extended: compare the
		 * low 32 bits only. */
		for (size_t i = 0; i < ARRAY_SIZE(sc_ioctls) && r == 0; i++)
			if (rule_in(sc_ioctls[i].kinds, kind, foreground))
				r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
						     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL,
							     (scmp_datum_t)(sc_ioctls[i].req & 0xffffffffUL)));
		return r;
	}
	return -EINVAL;
}

int worker_seccomp_build(enum worker_seccomp_kind kind, enum worker_seccomp_mode mode, bool foreground,
			 void **ret_ctx)
{
	uint32_t def;
	scmp_filter_ctx ctx;
	int r = 0;

	switch (mode) {
	case WORKER_SECCOMP_KILL: def = SCMP_ACT_KILL_PROCESS; break;
	case WORKER_SECCOMP_TRAP: def = SCMP_ACT_TRAP; break;
	case WORKER_SECCOMP_LOG: def = SCMP_ACT_LOG; break;
	default: return -EINVAL;
	}
	ctx = seccomp_init(def);
	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(sc_rules) && r == 0; i++)
		if (rule_in(sc_rules[i].kinds, kind, foreground))
			r = add_rule(ctx, &sc_rules[i], kind, foreground);
	/* The base filter goes on every thread at once; the kernel sets no_new_privs for us
	 * only if we ask (NNP attribute, on by default), we also set it explicitly. */
	if (r == 0 && kind == WORKER_SECCOMP_BASE)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r < 0) {
		seccomp_release(ctx);
		return r;
	}
	*ret_ctx = ctx;
	return 0;
}

void worker_seccomp_free(void *ctx)
{
	if (ctx)
		seccomp_release(ctx);
}

/* Decimal digits of v (>= 0 assumed) at p; returns the length. */
static size_t put_uint(char *p, unsigned long v)
{
	char tmp[24];
	size_t n = 0, len;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	len = n;
	while (n)
		*p++ = tmp[--n];
	return len;
}

/* TRAP mode: the offending thread gets SIGSYS; say which call it was and stop the worker.
 * Only async-signal-safe calls here (no stdio). */
static void sigsys_handler(int sig, siginfo_t *si, void *uc)
{
	static const char a[] = "vmms-worker: seccomp: thread ", b[] = " made forbidden system call ",
			  c[] = "; exiting\n";
	char line[160];
	size_t n = 0;

	memcpy(line + n, a, sizeof(a) - 1);
	n += sizeof(a) - 1;
	n += put_uint(line + n, (unsigned long)gettid());
	memcpy(line + n, b, sizeof(b) - 1);
	n += sizeof(b) - 1;
	n += put_uint(line + n, (unsigned long)(unsigned)si->si_syscall);
	memcpy(line + n, c, sizeof(c) - 1);
	n += sizeof(c) - 1;
	(void)!write(STDERR_FILENO, line, n);
	_exit(1);
}

int worker_seccomp_install(enum worker_seccomp_kind kind, enum worker_seccomp_mode mode, bool foreground)
{
	void *ctx;
	int r;

	if (mode == WORKER_SECCOMP_OFF)
		return 0;
	/* Needed for an unprivileged filter, and what keeps exec from regaining privilege. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (mode == WORKER_SECCOMP_TRAP && kind == WORKER_SECCOMP_BASE) {
		struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };

		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSYS, &sa, NULL) < 0)
			return -errno;
	}
	r = worker_seccomp_build(kind, mode, foreground, &ctx);
	if (r < 0)
		return r;
	r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r < 0 ? r : 0;
}
