/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The worker's seccomp allow-lists (libseccomp), one per thread kind. A base filter, the
 * union of what every thread needs (it is also the main thread's list: the main thread must
 * be able to rebuild the whole machine on reset), is loaded process-wide before any guest
 * code runs; vCPU and io threads then stack a narrower filter of their own (filters stack,
 * the strictest answer wins). No list allows open/openat, execve, ptrace, mount or any other
 * way to reach a host path or another process; under vmmsd none allows socket or connect
 * either (a foreground worker's vsock may connect to "<path>_P" listeners: AF_UNIX only).
 */
#ifndef VMMS_WORKER_SECCOMP_H
#define VMMS_WORKER_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>

enum worker_seccomp_mode {
	WORKER_SECCOMP_KILL = 0, /* forbidden syscall: the process is killed (SIGSYS, audited) */
	WORKER_SECCOMP_TRAP,     /* forbidden syscall: a line naming it on stderr, then exit 1 */
	WORKER_SECCOMP_LOG,      /* forbidden syscall: allowed, but logged by the kernel (audit) */
	WORKER_SECCOMP_OFF,      /* no filter at all */
};

enum worker_seccomp_kind {
	WORKER_SECCOMP_BASE = 0, /* process-wide; the main thread's list */
	WORKER_SECCOMP_VCPU,     /* vCPU threads: KVM_RUN and bus dispatch */
	WORKER_SECCOMP_IO,       /* virtio io threads: io_uring, eventfds, interrupts */
};

/* The default when --seccomp is not given: kill, or log in sanitizer builds (ASan and
 * LeakSanitizer need ptrace, clone of processes and /proc reads the lists refuse). */
enum worker_seccomp_mode worker_seccomp_default_mode(void);
/* "kill", "trap", "log", "off". 0 or -EINVAL. */
int worker_seccomp_parse_mode(const char *s, enum worker_seccomp_mode *ret);
const char *worker_seccomp_kind_name(enum worker_seccomp_kind kind);

/* Whether the list of kind names syscall (by name) at all, with or without argument
 * conditions. foreground adds what a worker run by hand needs (terminal ioctls). */
bool worker_seccomp_lists(enum worker_seccomp_kind kind, bool foreground, const char *syscall);

/* Builds the filter of kind into a libseccomp context (a scmp_filter_ctx, void * here so
 * callers need not include seccomp.h) without loading it. -errno. */
int worker_seccomp_build(enum worker_seccomp_kind kind, enum worker_seccomp_mode mode, bool foreground,
			 void **ret_ctx);
void worker_seccomp_free(void *ctx);

/*
 * Sets no_new_privs and loads the filter of kind on the calling thread (the base filter on
 * every thread of the process, TSYNC). Nothing for WORKER_SECCOMP_OFF. Call the base filter
 * after every host resource is open and before any guest code runs. 0 or -errno.
 */
int worker_seccomp_install(enum worker_seccomp_kind kind, enum worker_seccomp_mode mode, bool foreground);

#endif
