// SPDX-License-Identifier: GPL-2.0-only
/* vmms-guestd's effects on the guest system: orderly power-off/reboot, clock, FIFREEZE/FITHAW. */
#include "guest-additions/guestd_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#define TERM_WAIT_MS 5000     /* processes get this long after SIGTERM */
#define INIT_WAIT_S 60        /* an init system gets this long to stop us before we do it */

/* Runs argv, waiting at most timeout_ms. Its exit status, or -errno / -ETIMEDOUT. */
static int run_wait(char *const argv[], int timeout_ms)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execvp(argv[0], argv);
		_exit(127);
	}
	for (int waited = 0;; waited += 50) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (waited >= timeout_ms) {
			kill(pid, SIGKILL);
			(void)waitpid(pid, NULL, 0);
			return -ETIMEDOUT;
		}
		usleep(50 * 1000);
	}
}

/* PID 1 is a real init (sysvinit, busybox init, ...) rather than a script or a shell, so its
 * poweroff/reboot commands will stop the system. */
static bool pid1_is_init(void)
{
	char buf[256];
	int fd = open("/proc/1/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n;
	const char *base;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	base = strrchr(buf, '/');
	base = base ? base + 1 : buf;
	return strcmp(base, "init") == 0;
}

/* Any process left other than us, PID 1 and kernel threads (empty cmdline)? */
static bool others_alive(void)
{
	DIR *dp = opendir("/proc");
	struct dirent *e;
	pid_t self = getpid();
	bool found = false;

	if (!dp)
		return false;
	while (!found && (e = readdir(dp))) {
		char path[64], c;
		pid_t pid;
		int fd;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = (pid_t)atoi(e->d_name);
		if (pid == self || pid == 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		found = read(fd, &c, 1) == 1;
		close(fd);
	}
	closedir(dp);
	return found;
}

static void reap_ours(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* Unmounts what it can, newest mount first, and makes the rest read-only. */
static void unmount_all(void)
{
	char *mnts[512];
	size_t n = 0;
	FILE *f = fopen("/proc/self/mounts", "re");
	char line[4096];

	while (f && n < ARRAY_SIZE(mnts) && fgets(line, sizeof(line), f)) {
		char mnt[4096];
		if (sscanf(line, "%*s %4095s", mnt) == 1)
			mnts[n++] = strdup(mnt);
	}
	if (f)
		fclose(f);
	while (n > 0) {
		char *m = mnts[--n];
		if (!m)
			continue;
		if (umount2(m, 0) < 0 && mount(NULL, m, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
			log_debug("%s stays mounted read-write", m);
		free(m);
	}
}

static int sys_power(void *ctx, bool restart)
{
	char *systemctl[] = { "systemctl", restart ? "reboot" : "poweroff", NULL };
	char *initcmd[] = { restart ? "reboot" : "poweroff", NULL };
	unsigned long deadline;

	/* The guest's own shutdown first: services stop in order, file systems are clean. */
	if (access("/run/systemd/system", F_OK) == 0) {
		if (run_wait(systemctl, 30000) == 0) {
			log_info("systemctl %s started", systemctl[1]);
			for (int i = 0; i < INIT_WAIT_S * 10; i++)
				usleep(100 * 1000);
		}
		log_warning("systemd did not stop the system: doing it ourselves");
	} else if (pid1_is_init()) {
		if (run_wait(initcmd, 30000) == 0) {
			for (int i = 0; i < INIT_WAIT_S * 10; i++)
				usleep(100 * 1000);
		}
		log_warning("init did not stop the system: doing it ourselves");
	}

	/* No init system to ask (the bundled image's /init is a script): the orderly sequence. */
	log_info("stopping processes, unmounting, %s", restart ? "rebooting" : "powering off");
	sync();
	(void)kill(-1, SIGTERM);
	deadline = TERM_WAIT_MS / 50;
	for (unsigned long i = 0; i < deadline; i++) {
		reap_ours();
		if (!others_alive())
			break;
		usleep(50 * 1000);
	}
	(void)kill(-1, SIGKILL);
	usleep(200 * 1000);
	reap_ours();
	sync();
	unmount_all();
	sync();
	if (reboot(restart ? RB_AUTOBOOT : RB_POWER_OFF) < 0)
		return -errno;
	return 0;
}

static int sys_set_time(void *ctx, const struct timespec *ts)
{
	return clock_settime(CLOCK_REALTIME, ts) < 0 ? -errno : 0;
}

static int sys_freeze(void *ctx, const char *mountpoint, bool freeze)
{
	int fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, freeze ? FIFREEZE : FITHAW, 0) < 0)
		e = -errno;
	close(fd);
	/* Thawing what is not frozen (someone else thawed it) is not an error. */
	if (!freeze && e == -EINVAL)
		e = 0;
	return e;
}

const struct guestd_sys_ops guestd_sys_real = {
	.power = sys_power,
	.set_time = sys_set_time,
	.freeze = sys_freeze,
};
