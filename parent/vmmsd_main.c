// SPDX-License-Identifier: GPL-2.0-only
/* vmmsd: the Virtual Machine Management Service daemon (options, configuration, daemonizing). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "parent/config.h"
#include "parent/server.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmmsd [--config FILE] [--state-dir DIR] [--runtime-dir DIR] [--foreground]\n"
		"\n"
		"  -c, --config FILE      settings (default %s; a missing default file is fine)\n"
		"  -s, --state-dir DIR    VM definitions live in DIR/vms (overrides state_dir)\n"
		"  -r, --runtime-dir DIR  the socket is DIR/vmms.sock (overrides runtime_dir)\n"
		"  -f, --foreground       do not detach; log to stderr\n"
		"  -h, --help             this text\n", VMMSD_DEFAULT_CONFIG);
}

/* Fork; the parent waits until the child listens (or fails) and exits with its status. */
static int daemonize(int *ready_fd)
{
	int p[2];
	pid_t pid;
	char b;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		int st;

		close(p[1]);
		if (read(p[0], &b, 1) == 1)
			_exit(0);
		if (waitpid(pid, &st, 0) == pid && WIFEXITED(st))
			_exit(WEXITSTATUS(st) ? WEXITSTATUS(st) : 1);
		_exit(1);
	}
	close(p[0]);
	if (setsid() < 0)
		return -errno;
	{
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (nul >= 0) {
			dup2(nul, STDIN_FILENO);
			dup2(nul, STDOUT_FILENO);
			close(nul);
		}
	}
	*ready_fd = p[1];
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "runtime-dir", required_argument, NULL, 'r' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct vmmsd_config cfg;
	const char *config = NULL, *state = NULL, *runtime = NULL;
	bool foreground = false;
	char err[512];
	int c, r, ready_fd = -1;

	while ((c = getopt_long(argc, argv, "c:s:r:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 's': state = optarg; break;
		case 'r': runtime = optarg; break;
		case 'f': foreground = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vmmsd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	log_set_prefix("vmmsd");
	vmmsd_config_defaults(&cfg);
	r = vmmsd_config_load(&cfg, config ? config : VMMSD_DEFAULT_CONFIG, err, sizeof(err));
	if (r < 0 && !(r == -ENOENT && !config)) {
		fprintf(stderr, "vmmsd: %s\n", err);
		return 1;
	}
	log_set_level((enum log_level)cfg.log_level);
	for (int i = 0; i < 2; i++) {
		const char *v = i ? runtime : state;
		char *dst = i ? cfg.runtime_dir : cfg.state_dir;

		if (!v)
			continue;
		if (!*v || strlen(v) >= sizeof(cfg.state_dir)) {
			fprintf(stderr, "vmmsd: %s: bad directory\n", v);
			return 2;
		}
		if (v[0] == '/')
			snprintf(dst, sizeof(cfg.state_dir), "%s", v);
		else {
			char cwd[sizeof(cfg.state_dir)];

			if (!getcwd(cwd, sizeof(cwd)) ||
			    (size_t)snprintf(dst, sizeof(cfg.state_dir), "%s/%s", cwd, v) >= sizeof(cfg.state_dir)) {
				fprintf(stderr, "vmmsd: %s: path too long\n", v);
				return 2;
			}
		}
	}
	if (!foreground) {
		r = daemonize(&ready_fd);
		if (r < 0) {
			fprintf(stderr, "vmmsd: cannot detach: %s\n", strerror(-r));
			return 1;
		}
	}
	r = server_run(&cfg, ready_fd);
	return r < 0 ? 1 : 0;
}
