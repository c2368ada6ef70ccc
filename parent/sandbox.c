// SPDX-License-Identifier: GPL-2.0-only
/* The worker sandbox: namespaces, an empty root, descriptors, rlimits, uid/gid, capabilities, exec. */
#include "parent/sandbox.h"

#include <cap-ng.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util.h"

/* Steps of the child, reported to the parent through the error pipe when one fails. */
enum step {
	STEP_SYNC = 1, STEP_SETSID, STEP_BOUNDING, STEP_MOUNT_PRIVATE, STEP_MOUNT_ROOT, STEP_PIVOT, STEP_UMOUNT_OLD, STEP_REMOUNT_RO, STEP_HOSTNAME, STEP_FDS, STEP_RLIMIT,
	STEP_SIGNALS, STEP_AMBIENT, STEP_SETGROUPS, STEP_SETGID, STEP_SETUID, STEP_CAPS,
	STEP_NO_NEW_PRIVS, STEP_VERIFY, STEP_EXEC,
};

const char *sandbox_step_name(int step)
{
	static const char *const names[] = {
		[STEP_SYNC] = "waiting for the parent", [STEP_SETSID] = "setsid",
		[STEP_BOUNDING] = "dropping the capability bounding set",
		[STEP_MOUNT_PRIVATE] = "making / private", [STEP_MOUNT_ROOT] = "mounting the empty root",
		[STEP_PIVOT] = "pivot_root",
		[STEP_UMOUNT_OLD] = "unmounting the old root", [STEP_REMOUNT_RO] = "making the root read-only",
		[STEP_HOSTNAME] = "sethostname", [STEP_FDS] = "arranging descriptors",
		[STEP_RLIMIT] = "setrlimit", [STEP_SIGNALS] = "resetting signals",
		[STEP_AMBIENT] = "clearing ambient capabilities", [STEP_SETGROUPS] = "setgroups",
		[STEP_SETGID] = "setresgid", [STEP_SETUID] = "setresuid",
		[STEP_CAPS] = "clearing capabilities (libcap-ng)", [STEP_NO_NEW_PRIVS] = "PR_SET_NO_NEW_PRIVS",
		[STEP_VERIFY] = "verifying that no capability is left", [STEP_EXEC] = "execveat",
	};

	return step > 0 && (size_t)step < ARRAY_SIZE(names) && names[step] ? names[step] : "unknown step";
}

int sandbox_elf_interp(int fd, char *interp, size_t len)
{
	Elf64_Ehdr eh;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256 ||
	    !range_within(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), (uint64_t)st.st_size))
		return -ENOEXEC;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != (ssize_t)sizeof(ph))
			return -ENOEXEC;
		if (ph.p_type != PT_INTERP)
			continue;
		/* The loader path must fit, lie inside the file and end in its NUL. */
		if (ph.p_filesz < 2 || ph.p_filesz > len || ph.p_filesz > PATH_MAX ||
		    !range_within(ph.p_offset, ph.p_filesz, (uint64_t)st.st_size))
			return -ENOEXEC;
		if (pread(fd, interp, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz ||
		    interp[ph.p_filesz - 1] != '\0' || strlen(interp) != ph.p_filesz - 1 || interp[0] != '/')
			return -ENOEXEC;
		return 1;
	}
	return 0;
}

struct child_report {
	int step;
	int err;
};

static __attribute__((noreturn)) void child_fail(int errfd, int step, int err)
{
	struct child_report rep = { .step = step, .err = err };

	(void)!write(errfd, &rep, sizeof(rep));
	_exit(127);
}

/* Runs between clone3 and execveat. The caller is single-threaded, so the copied address
 * space holds no lock taken by another thread; still, only the libcap-ng state is touched. */
static __attribute__((noreturn)) void child_run(const struct sandbox_spec *s, int gofd, int errfd)
{
	int total = 3 + (int)s->nfds, hi = 64 + total;
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	struct rlimit rl;
	sigset_t all;
	char b;

	/* Wait until the parent has put us in the VM's cgroup. */
	if (read(gofd, &b, 1) != 1)
		child_fail(errfd, STEP_SYNC, EPIPE);
	close(gofd);
	if (setsid() < 0)
		child_fail(errfd, STEP_SETSID, errno);
	/* Bounding set first, while we still hold CAP_SETPCAP (dropping it is one-way). Done with
	 * prctl: libcap-ng's bounding-set path reads /proc/<getpid()>/status, and getpid() here is
	 * 1 of the new pid namespace while /proc is still the host's. */
	capng_clear(CAPNG_SELECT_BOTH);
	for (int c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			child_fail(errfd, STEP_BOUNDING, errno);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(errfd, STEP_MOUNT_PRIVATE, errno);
	if (mount("vmms-root", s->root_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0755,size=64k,nr_inodes=64") < 0)
		child_fail(errfd, STEP_MOUNT_ROOT, errno);
	/* pivot_root(".", ".") stacks the old root on the new one; the lazy unmount then drops
	 * it, so no directory for the old root is ever needed (or left) in the new one. */
	if (chdir(s->root_dir) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		child_fail(errfd, STEP_PIVOT, errno);
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		child_fail(errfd, STEP_UMOUNT_OLD, errno);
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		child_fail(errfd, STEP_REMOUNT_RO, errno);
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		child_fail(errfd, STEP_HOSTNAME, errno);

	/* Descriptors: lift every one we keep above the target range, then lay them out as 0..2,
	 * 3.. in order; the error pipe and the program sit just above, close-on-exec. */
	{
		int src[3 + SANDBOX_MAX_FDS], exe, ep;

		for (int i = 0; i < total; i++) {
			int from = i < 3 ? s->stdio[i] : s->fds[i - 3];

			src[i] = from < 0 ? -1 : fcntl(from, F_DUPFD_CLOEXEC, hi);
			if (from >= 0 && src[i] < 0)
				child_fail(errfd, STEP_FDS, errno);
		}
		exe = fcntl(s->exe_fd, F_DUPFD_CLOEXEC, hi);
		ep = fcntl(errfd, F_DUPFD_CLOEXEC, hi);
		if (exe < 0 || ep < 0)
			child_fail(errfd, STEP_FDS, errno);
		errfd = ep;
		for (int i = 0; i < total; i++) {
			if (src[i] < 0)
				(void)close(i);
			else if (dup2(src[i], i) < 0)
				child_fail(errfd, STEP_FDS, errno);
		}
		if (dup3(errfd, total, O_CLOEXEC) < 0 || dup3(exe, total + 1, O_CLOEXEC) < 0)
			child_fail(errfd, STEP_FDS, errno);
		errfd = total;
		if (syscall(SYS_close_range, total + 2, ~0U, 0) < 0)
			child_fail(errfd, STEP_FDS, errno);
	}
	rl.rlim_cur = rl.rlim_max = s->nofile ? s->nofile : 64 + s->nfds;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		child_fail(errfd, STEP_RLIMIT, errno);
	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		child_fail(errfd, STEP_RLIMIT, errno);
	if (s->nproc) {
		rl.rlim_cur = rl.rlim_max = s->nproc;
		if (setrlimit(RLIMIT_NPROC, &rl) < 0)
			child_fail(errfd, STEP_RLIMIT, errno);
	}
	/* vmmsd blocks and ignores signals for its loop; an exec keeps masks and ignores. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_DFL);
	sigemptyset(&all);
	if (sigprocmask(SIG_SETMASK, &all, NULL) < 0)
		child_fail(errfd, STEP_SIGNALS, errno);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		child_fail(errfd, STEP_AMBIENT, errno);
	if (setgroups(0, NULL) < 0)
		child_fail(errfd, STEP_SETGROUPS, errno);
	if (setresgid(s->gid, s->gid, s->gid) < 0)
		child_fail(errfd, STEP_SETGID, errno);
	if (setresuid(s->uid, s->uid, s->uid) < 0)
		child_fail(errfd, STEP_SETUID, errno);
	/* Leaving uid 0 emptied the permitted and effective sets; this also clears inheritable. */
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_apply(CAPNG_SELECT_CAPS) < 0)
		child_fail(errfd, STEP_CAPS, EPERM);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(errfd, STEP_NO_NEW_PRIVS, errno);
	/* Trust, but verify: nothing in any set, nothing in the bounding set, ids as asked. */
	{
		uid_t ru, eu, su;

		if (syscall(SYS_capget, &hdr, data) < 0 || data[0].effective || data[0].permitted ||
		    data[0].inheritable || data[1].effective || data[1].permitted || data[1].inheritable)
			child_fail(errfd, STEP_VERIFY, EPERM);
		for (int c = 0; c < 64; c++)
			if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
				child_fail(errfd, STEP_VERIFY, EPERM);
		if (getresuid(&ru, &eu, &su) < 0 || ru != s->uid || eu != s->uid || su != s->uid)
			child_fail(errfd, STEP_VERIFY, EPERM);
	}
	{
		static char *const empty[] = { NULL };

		syscall(SYS_execveat, total + 1, "", s->argv, s->envp ? s->envp : empty, AT_EMPTY_PATH);
	}
	child_fail(errfd, STEP_EXEC, errno);
}

int sandbox_spawn(const struct sandbox_spec *s, pid_t *ret_pid, int *ret_pidfd, char *err, size_t errlen)
{
	struct clone_args ca = { 0 };
	int go[2], ep[2], pidfd = -1, r;
	struct child_report rep;
	ssize_t n;
	pid_t pid;

	if (s->nfds > SANDBOX_MAX_FDS || s->uid == 0 || s->gid == 0 ||
	    !s->root_dir || s->root_dir[0] != '/' || s->exe_fd < 0 || !s->argv || !s->argv[0]) {
		snprintf(err, errlen, "sandbox: bad arguments");
		return -EINVAL;
	}
	if (pipe2(go, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(ep, O_CLOEXEC) < 0) {
		r = -errno;
		close(go[0]);
		close(go[1]);
		return r;
	}
	ca.flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_PIDFD;
	ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
	ca.exit_signal = SIGCHLD;
	pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0) {
		close(go[1]);
		close(ep[0]);
		child_run(s, go[0], ep[1]);
	}
	close(go[0]);
	close(ep[1]);
	if (pid < 0) {
		r = -errno;
		snprintf(err, errlen, "sandbox: clone3 with new namespaces: %s", strerror(-r));
		close(go[1]);
		close(ep[0]);
		return r;
	}
	if (s->place && (r = s->place(s->userdata, pid, err, errlen)) < 0) {
		close(go[1]);   /* the child reads EOF and fails at STEP_SYNC */
		goto fail_reap;
	}
	if (write(go[1], "g", 1) != 1) {
		r = -errno;
		snprintf(err, errlen, "sandbox: cannot release the child: %s", strerror(-r));
		close(go[1]);
		goto fail_reap;
	}
	close(go[1]);
	/* EOF without a report: execveat closed the pipe, the program runs. */
	do
		n = read(ep[0], &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		close(ep[0]);
		*ret_pid = pid;
		*ret_pidfd = pidfd;
		return 0;
	}
	if (n == (ssize_t)sizeof(rep)) {
		r = rep.err > 0 ? -rep.err : -EPERM;
		snprintf(err, errlen, "sandbox: %s failed: %s", sandbox_step_name(rep.step), strerror(-r));
	} else {
		r = -EPROTO;
		snprintf(err, errlen, "sandbox: the child died before exec");
	}
fail_reap:
	close(ep[0]);
	(void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	close(pidfd);
	return r;
}
