// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmms-worker: runs one VM. In the foreground (`--config vm.xml`) it opens its own resources
 * and puts the console on the terminal, like `lkvm run`; under vmmsd the parent opens them
 * and hands over file descriptors.
 *
 * Exit status: 0 guest powered off, 1 host error, 2 bad usage or definition, 3 guest reboot
 * with on_reboot=destroy, 4 guest crashed, 5 turned off from the host (signal).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/sysinfo.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "lib/domxml.h"
#include "lib/log.h"
#include "lib/util.h"
#include "worker/machine.h"

enum {
	EXIT_POWEROFF = 0,
	EXIT_HOST_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_REBOOT = 3,
	EXIT_CRASH = 4,
	EXIT_TURNED_OFF = 5,
};

#define SHUTDOWN_GRACE_S 30

static const char usage_text[] =
	"Usage: vmms-worker --config FILE [OPTIONS]\n"
	"Runs one virtual machine from a libvirt domain XML definition in the foreground,\n"
	"with its serial console on this terminal.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE   VM definition (libvirt domain XML, type='kvm')\n"
	"      --schema FILE   RelaxNG schema to validate against\n"
	"                      (default " DOMXML_DEFAULT_SCHEMA ")\n"
	"      --check         validate the definition and the host resources, then exit\n"
	"  -v, --verbose       log debug messages\n"
	"  -h, --help          show this help\n"
	"\n"
	"Signals: SIGTERM presses the ACPI power button (the guest shuts down; after 30 s the\n"
	"VM is turned off), SIGINT and SIGQUIT turn the VM off at once.\n"
	"\n"
	"Exit status: 0 guest powered off, 1 host error, 2 bad usage or definition,\n"
	"3 guest rebooted and on_reboot is destroy, 4 guest crashed, 5 turned off by a signal.\n";

struct worker_opts {
	const char *config;
	const char *schema;
	bool check_only;
};

static int parse_args(int argc, char **argv, struct worker_opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "schema", required_argument, NULL, 's' },
		{ "check", no_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 's': o->schema = optarg; break;
		case 'k': o->check_only = true; break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'h': fputs(usage_text, stdout); exit(0);
		default:
			fputs("Try 'vmms-worker --help'.\n", stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'; try 'vmms-worker --help'", argv[optind]);
		return -EINVAL;
	}
	if (!o->config) {
		log_error("no VM definition given; use --config FILE (see --help)");
		return -EINVAL;
	}
	return 0;
}

static int open_image(const char *what, const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return log_error_errno(errno, "%s %s: cannot open it", what, path);
	return fd;
}

/* Memory the definition asks for against what the host has. */
static int check_host_limits(const struct vm_config *cfg)
{
	struct sysinfo si;

	if (sysinfo(&si) == 0) {
		uint64_t total = (uint64_t)si.totalram * si.mem_unit;

		if (cfg->memory > total) {
			log_error("memory %llu MiB: more than this host has (%llu MiB); lower <memory>",
				  (unsigned long long)(cfg->memory >> 20), (unsigned long long)(total >> 20));
			return -E2BIG;
		}
	}
	return 0;
}

static int resources_open(const struct vm_config *cfg, struct machine_resources *res)
{
	char err[512] = "";
	int r;

	*res = (struct machine_resources){ .kvm_fd = -1, .kernel_fd = -1, .initrd_fd = -1 };
	for (unsigned i = 0; i < VM_MAX_DISKS; i++)
		res->disk_fds[i] = -1;
	if (!cfg->kernel) {
		log_error("no <kernel> in <os>: vmms boots a kernel directly (firmware boot is not supported yet)");
		return -EINVAL;
	}
	res->kernel_fd = open_image("kernel", cfg->kernel, O_RDONLY);
	if (res->kernel_fd < 0)
		return res->kernel_fd;
	if (cfg->initrd) {
		res->initrd_fd = open_image("initrd", cfg->initrd, O_RDONLY);
		if (res->initrd_fd < 0)
			return res->initrd_fd;
	}
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		const struct vm_disk *d = &cfg->disks[i];
		char what[64];

		snprintf(what, sizeof(what), "disk %s", d->target);
		res->disk_fds[i] = open_image(what, d->path, d->readonly ? O_RDONLY : O_RDWR);
		if (res->disk_fds[i] < 0)
			return res->disk_fds[i];
	}
	r = hv_kvm_open(&res->kvm_fd);
	if (r < 0)
		return log_error_errno(r, "/dev/kvm: cannot open it (is KVM available and are you in group kvm?)");
	r = chardev_open(&res->serial, &cfg->serial, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return r;
	}
	r = chardev_open(&res->console, &cfg->console, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return r;
	}
	return 0;
}

static void resources_close(struct machine_resources *res)
{
	if (res->kvm_fd >= 0)
		close(res->kvm_fd);
	if (res->kernel_fd >= 0)
		close(res->kernel_fd);
	if (res->initrd_fd >= 0)
		close(res->initrd_fd);
	for (unsigned i = 0; i < VM_MAX_DISKS; i++)
		if (res->disk_fds[i] >= 0)
			close(res->disk_fds[i]);
	chardev_close(&res->serial);
	chardev_close(&res->console);
}

/* Terminal in raw mode while the guest owns it; restored at exit. */
static struct termios saved_tio;
static bool tio_saved;

static void terminal_restore(void)
{
	if (tio_saved)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

static void terminal_raw(void)
{
	struct termios tio;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return;
	tio_saved = true;
	atexit(terminal_restore);
	tio = saved_tio;
	tio.c_lflag &= ~(ICANON | ECHO | IEXTEN);
	tio.c_iflag &= ~(ICRNL | IXON);
	(void)tcsetattr(STDIN_FILENO, TCSANOW, &tio);
}

static int epoll_add(int ep, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	if (fd < 0)
		return 0;
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

enum { TAG_WAKE = 1, TAG_SIGNAL, TAG_SERIAL_IN, TAG_SERIAL_LISTEN };

/* One boot: runs until the machine has an outcome. */
static enum machine_outcome run_machine(struct machine *m, int sfd)
{
	struct chardev *serial = &m->res->serial;
	uint64_t deadline_ns = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0 || epoll_add(ep, m->wake_fd, TAG_WAKE) < 0 || epoll_add(ep, sfd, TAG_SIGNAL) < 0 ||
	    epoll_add(ep, serial->in_fd, TAG_SERIAL_IN) < 0 || epoll_add(ep, serial->listen_fd, TAG_SERIAL_LISTEN) < 0) {
		machine_request_stop(m, MACHINE_HOST_ERROR, "cannot set up the event loop");
		goto out;
	}
	while (machine_outcome(m) == MACHINE_RUNNING) {
		struct epoll_event evs[8];
		int timeout = deadline_ns ? 1000 : -1;
		int n = epoll_wait(ep, evs, ARRAY_SIZE(evs), timeout);

		if (deadline_ns) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			if ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec > deadline_ns)
				machine_request_stop(m, MACHINE_TURNED_OFF, "guest did not shut down in time after SIGTERM");
		}
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u64) {
			case TAG_WAKE: {
				uint64_t v;
				(void)!read(m->wake_fd, &v, sizeof(v));
				break;
			}
			case TAG_SIGNAL: {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					break;
				if (si.ssi_signo == SIGTERM && !deadline_ns) {
					struct timespec ts;

					log_info("SIGTERM: pressing the power button; turning off in %d s if the guest does not shut down",
						 SHUTDOWN_GRACE_S);
					machine_power_button(m);
					clock_gettime(CLOCK_MONOTONIC, &ts);
					deadline_ns = (uint64_t)(ts.tv_sec + SHUTDOWN_GRACE_S) * 1000000000ULL;
				} else {
					machine_request_stop(m, MACHINE_TURNED_OFF, strsignal((int)si.ssi_signo));
				}
				break;
			}
			case TAG_SERIAL_IN: {
				uint8_t buf[256];
				ssize_t len = chardev_read(serial, buf, sizeof(buf));

				if (len > 0)
					machine_console_input(m, buf, (size_t)len);
				else if (len == 0 || (len < 0 && len != -EAGAIN))
					(void)epoll_ctl(ep, EPOLL_CTL_DEL, serial->in_fd >= 0 ? serial->in_fd : STDIN_FILENO, NULL);
				break;
			}
			case TAG_SERIAL_LISTEN:
				if (chardev_accept(serial) == 0)
					(void)epoll_add(ep, serial->in_fd, TAG_SERIAL_IN);
				break;
			}
		}
	}
out:
	if (ep >= 0)
		close(ep);
	return machine_outcome(m);
}

int main(int argc, char **argv)
{
	struct worker_opts o = {};
	struct vm_config *cfg = NULL;
	struct machine_resources res;
	struct rlimit no_core = { 0, 0 };
	char err[512] = "";
	int status = EXIT_HOST_ERROR, sfd = -1, r;
	sigset_t set;

	log_set_prefix("vmms-worker");
	(void)setrlimit(RLIMIT_CORE, &no_core);
	if (parse_args(argc, argv, &o) < 0)
		return EXIT_USAGE;
	r = domxml_parse_file(o.config, o.schema, &cfg, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return EXIT_USAGE;
	}
	if (check_host_limits(cfg) < 0) {
		vm_config_free(cfg);
		return EXIT_USAGE;
	}
	if (resources_open(cfg, &res) < 0) {
		resources_close(&res);
		vm_config_free(cfg);
		return EXIT_USAGE;
	}

	/* Signals are taken on the main loop; vCPU threads unblock only the kick signal. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, HV_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, HV_KICK_SIGNAL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);

	for (unsigned boot = 0;; boot++) {
		struct machine *m = NULL;
		enum machine_outcome out;

		r = machine_create(cfg, &res, &m, err, sizeof(err));
		if (r < 0) {
			log_error("%s: %s", cfg->name, err);
			status = r == -ENOEXEC || r == -EINVAL || r == -E2BIG || r == -ENOMEM ? EXIT_USAGE : EXIT_HOST_ERROR;
			break;
		}
		if (o.check_only) {
			machine_destroy(m);
			printf("%s: definition and resources OK\n", cfg->name);
			status = 0;
			break;
		}
		if (boot == 0 && res.serial.kind == VM_CHARDEV_STDIO)
			terminal_raw();
		r = machine_start(m);
		out = r < 0 ? MACHINE_HOST_ERROR : run_machine(m, sfd);
		if (out != MACHINE_POWEROFF && out != MACHINE_REBOOT)
			log_error("%s: %s (%s)", cfg->name, machine_outcome_name(out), m->outcome_detail);
		else
			log_debug("%s: %s", cfg->name, machine_outcome_name(out));
		machine_destroy(m);
		/* libvirt's <on_poweroff>, <on_reboot>, <on_crash>: restart means boot again. */
		if ((out == MACHINE_REBOOT && cfg->on_reboot == VM_ACTION_RESTART) ||
		    (out == MACHINE_POWEROFF && cfg->on_poweroff == VM_ACTION_RESTART) ||
		    (out == MACHINE_CRASH && cfg->on_crash == VM_ACTION_RESTART))
			continue;
		switch (out) {
		case MACHINE_POWEROFF: status = EXIT_POWEROFF; break;
		case MACHINE_REBOOT: status = EXIT_REBOOT; break;
		case MACHINE_CRASH: status = EXIT_CRASH; break;
		case MACHINE_TURNED_OFF: status = EXIT_TURNED_OFF; break;
		default: status = EXIT_HOST_ERROR; break;
		}
		break;
	}
	terminal_restore();
	if (sfd >= 0)
		close(sfd);
	resources_close(&res);
	vm_config_free(cfg);
	return status;
}
