/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The worker sandbox: start a program in new mount, pid, ipc, uts and net namespaces, on an
 * empty read-only root, with only the descriptors handed to it, rlimits, its own uid/gid, no
 * capabilities, an empty bounding set and no_new_privs (the order of Firecracker's jailer).
 * The root stays empty: the program is executed by descriptor and must be static (it has no
 * loader or library to find there; sandbox_elf_interp() tells a caller beforehand).
 */
#ifndef VMMS_PARENT_SANDBOX_H
#define VMMS_PARENT_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SANDBOX_MAX_FDS 32

struct sandbox_spec {
	int exe_fd;                 /* the program, opened by the caller (executed by descriptor:
				     * the new root holds no files) */
	char *const *argv;
	char *const *envp;          /* NULL: an empty environment */
	int stdio[3];               /* become 0, 1, 2 (-1: that descriptor stays closed) */
	const int *fds;             /* become 3, 4, ... in this order */
	size_t nfds;
	uid_t uid;                  /* not 0 */
	gid_t gid;                  /* not 0 */
	const char *root_dir;       /* an existing directory the empty root (a tmpfs) is mounted
				     * on inside the new mount namespace; the host sees nothing */
	const char *hostname;       /* for the new uts namespace, or NULL */
	unsigned long nofile;       /* RLIMIT_NOFILE; 0: 64 + nfds */
	unsigned long nproc;        /* RLIMIT_NPROC for the new uid; 0: unlimited */
	/* Runs in the parent while the child waits, before anything of the child runs (cgroup
	 * placement). A negative return kills the child and fails the spawn. May be NULL. */
	int (*place)(void *userdata, pid_t pid, char *err, size_t errlen);
	void *userdata;
};

/*
 * Start the program. On success the child has called execve; *ret_pid is its pid (in the
 * caller's pid namespace, the init of its own) and *ret_pidfd a pidfd for it (close-on-exec).
 * The child is a new session leader, so no terminal signal nor the caller's process group
 * reaches it. On failure -errno, err names the step that failed, and the child is reaped.
 */
int sandbox_spawn(const struct sandbox_spec *s, pid_t *ret_pid, int *ret_pidfd, char *err, size_t errlen);

/*
 * Read the ELF program header of the file open at fd: 1 with its PT_INTERP path (the dynamic
 * loader) copied into interp, 0 for a static program, -ENOEXEC when not a 64-bit ELF or the
 * header is malformed (hostile input: every offset is bounded). Pure apart from pread.
 */
int sandbox_elf_interp(int fd, char *interp, size_t len);

/* Human-readable name of a child step reported through the error pipe (for messages). */
const char *sandbox_step_name(int step);

#endif
