// SPDX-License-Identifier: GPL-2.0-only
/*
 * Sandbox probe: run inside the worker sandbox (static, no files needed), it tries to break
 * out and prints one line per attempt, "NAME allowed" or "NAME denied ERRNO-NAME". The tests
 * assert that every escape attempt is denied. argv[1]: a host pid to try to signal.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, int r)
{
	if (r >= 0)
		printf("%s allowed\n", name);
	else
		printf("%s denied %s\n", name, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
}

int main(int argc, char **argv)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };
	pid_t host = argc > 1 ? (pid_t)atoi(argv[1]) : 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(22) };
	DIR *d;
	int fd, n = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	printf("uid %u gid %u pid %d\n", (unsigned)getuid(), (unsigned)getgid(), (int)getpid());
	report("open_etc_passwd", open("/etc/passwd", O_RDONLY));
	report("open_proc", open("/proc/self/status", O_RDONLY));
	report("open_dev_kvm", open("/dev/kvm", O_RDWR));
	report("create_file", open("/probe-file", O_WRONLY | O_CREAT, 0600));
	report("kill_host_pid", kill(host, 0));
	report("kill_all", kill(-1, 0));
	report("setuid_0", setuid(0));
	report("setgid_0", setgid(0));
	report("mount_proc", mount("proc", "/", "proc", 0, NULL));
	report("chroot", chroot("/"));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	report("connect_localhost", fd < 0 ? fd : connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	if (fd >= 0)
		close(fd);
	syscall(SYS_capget, &hdr, data);
	printf("caps eff %x prm %x inh %x\n", data[0].effective | data[1].effective,
	       data[0].permitted | data[1].permitted, data[0].inheritable | data[1].inheritable);
	d = opendir("/");
	if (d) {
		struct dirent *de;

		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				printf("root_entry %s\n", de->d_name), n++;
		closedir(d);
	}
	printf("root_entries %d\n", n);
	for (int i = 0; i < 1024; i++)
		if (fcntl(i, F_GETFD) >= 0)
			printf("fd %d\n", i);
	printf("done\n");
	return 0;
}
