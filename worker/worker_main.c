// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmms-worker: runs one VM. In the foreground (`--config vm.xml`) it opens its own resources
 * and puts the console on the terminal, like `lkvm run`; under vmmsd (`--control-fd N`) it
 * opens no host path at all: the definition and every resource arrive over the control
 * channel (worker/control.h). Both modes share one machine life cycle below.
 *
 * Exit status: 0 guest powered off, 1 host error, 2 bad usage or definition, 3 guest reboot
 * with on_reboot=destroy, 4 guest crashed, 5 turned off from the host (signal or "stop").
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/sysinfo.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "lib/ctlproto.h"
#include "lib/domxml.h"
#include "lib/log.h"
#include "lib/util.h"
#include "worker/control.h"
#include "worker/machine.h"
#include "worker/vsock_host.h"
#include "worker/seccomp.h"

enum {
	EXIT_POWEROFF = 0,
	EXIT_HOST_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_REBOOT = 3,
	EXIT_CRASH = 4,
	EXIT_TURNED_OFF = 5,
};

#define SHUTDOWN_GRACE_S 30
#define LINGER_S 10 /* control mode: how long undelivered final events wait for a controller */

static const char usage_text[] =
	"Usage: vmms-worker --config FILE [OPTIONS]\n"
	"       vmms-worker --control-fd N [OPTIONS]\n"
	"Runs one virtual machine: from a libvirt domain XML definition in the foreground, with\n"
	"its serial console on this terminal, or under vmmsd over a control socket.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE   VM definition (libvirt domain XML, type='kvm')\n"
	"      --control-fd N  serve the control channel on the listening Unix socket N\n"
	"                      (the definition and all resources arrive over it)\n"
	"      --schema FILE   RelaxNG schema to validate against, in the foreground\n"
	"                      (default " DOMXML_DEFAULT_SCHEMA "); under vmmsd\n"
	"                      the definition was validated when it was defined\n"
	"      --seccomp MODE  kill (default), trap, log or off: what a system call outside\n"
	"                      the allow-lists does\n"
	"      --check         validate the definition and the host resources, then exit\n"
	"      --vsock-socket PATH  host side of <vsock>: programs connect to PATH and write\n"
	"                      'CONNECT <port>\\n' to reach a guest port; guest connections to\n"
	"                      host port P go to PATH_P (without it, they are refused)\n"
	"  -v, --verbose       log debug messages\n"
	"  -h, --help          show this help\n"
	"\n"
	"Signals: SIGTERM presses the ACPI power button (the guest shuts down; after 30 s the\n"
	"VM is turned off), SIGINT and SIGQUIT turn the VM off at once.\n"
	"\n"
	"Exit status: 0 guest powered off, 1 host error, 2 bad usage or definition,\n"
	"3 guest rebooted and on_reboot is destroy, 4 guest crashed, 5 turned off from the host.\n";

struct worker_opts {
	const char *config;
	const char *schema;
	int control_fd;
	enum worker_seccomp_mode seccomp;
	bool check_only;
	const char *vsock_socket;
};

enum worker_state {
	W_UNCONFIGURED, /* control mode, before "configure" */
	W_CONFIGURED,   /* machine built, not started */
	W_RUNNING,
	W_PAUSED,
	W_STOPPED,      /* final: the worker exits */
};

/* Foreground mode: the definition is mapped at once (the mapping checks every value itself)
 * and validated against the RelaxNG schema in a child process while the machine is built;
 * the vCPUs start only once the schema has accepted it. A process rather than a thread: the
 * compiled schema (4 MiB of heap, libxml2's RelaxNG code) lives and dies in the child, and
 * never becomes the worker's resident memory for the VM's whole life. */
struct schema_verdict {
	int r;
	char err[512];
};

struct schema_check {
	int fd;                 /* the child's verdict arrives here (one write of a schema_verdict) */
	struct schema_verdict v;
};

struct worker {
	struct worker_opts o;
	bool foreground;
	struct schema_check check;
	struct vm_config *cfg;
	struct machine_resources res;
	bool res_set;
	struct machine *m;
	enum worker_state st;
	struct ctl *ctl;
	int ep, sfd;
	uint64_t deadline_ns;
	bool sandboxed;
	unsigned boots;
	int status;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int parse_args(int argc, char **argv, struct worker_opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "control-fd", required_argument, NULL, 'f' },
		{ "schema", required_argument, NULL, 's' },
		{ "seccomp", required_argument, NULL, 'S' },
		{ "check", no_argument, NULL, 'k' },
		{ "vsock-socket", required_argument, NULL, 'V' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	o->control_fd = -1;
	o->seccomp = worker_seccomp_default_mode();
	while ((c = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 's': o->schema = optarg; break;
		case 'k': o->check_only = true; break;
		case 'V': o->vsock_socket = optarg; break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case 'f': {
			char *end;
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || v < 0 || v > 65535) {
				log_error("--control-fd %s: not a descriptor number", optarg);
				return -EINVAL;
			}
			o->control_fd = (int)v;
			break;
		}
		case 'S':
			if (worker_seccomp_parse_mode(optarg, &o->seccomp) < 0) {
				log_error("--seccomp %s: want kill, trap, log or off", optarg);
				return -EINVAL;
			}
			break;
		default:
			fputs("Try 'vmms-worker --help'.\n", stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'; try 'vmms-worker --help'", argv[optind]);
		return -EINVAL;
	}
	if (o->config && o->control_fd >= 0) {
		log_error("--config and --control-fd exclude each other: under vmmsd the definition arrives over the control channel");
		return -EINVAL;
	}
	if (o->control_fd >= 0 && o->check_only) {
		log_error("--check needs --config");
		return -EINVAL;
	}
	if (!o->config && o->control_fd < 0) {
		log_error("no VM definition given; use --config FILE (see --help)");
		return -EINVAL;
	}
	return 0;
}

static int open_image(const char *what, const char *path, int flags, char *err, size_t errlen)
{
	int fd = open(path, flags | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		int r = -errno;

		snprintf(err, errlen, "%s %s: cannot open it: %s", what, path, strerror(-r));
		return r;
	}
	return fd;
}

/* Memory the definition asks for against what the host has. err gets the message. */
static int check_host_limits(const struct vm_config *cfg, char *err, size_t errlen)
{
	struct sysinfo si;

	if (sysinfo(&si) == 0) {
		uint64_t total = (uint64_t)si.totalram * si.mem_unit;

		if (cfg->memory > total) {
			snprintf(err, errlen, "memory %llu MiB: more than this host has (%llu MiB); lower <memory>",
				 (unsigned long long)(cfg->memory >> 20), (unsigned long long)(total >> 20));
			return -E2BIG;
		}
	}
	return 0;
}

static void resources_init(struct machine_resources *res)
{
	*res = (struct machine_resources){ .kvm_fd = -1, .kernel_fd = -1, .initrd_fd = -1 };
	for (unsigned i = 0; i < VM_MAX_DISKS; i++)
		res->disk_fds[i] = -1;
	chardev_from_fds(&res->serial, -1, -1);
	chardev_from_fds(&res->console, -1, -1);
}

/* Drops borrowed descriptors from res without closing them. */
static void resources_forget(struct machine_resources *res)
{
	res->kvm_fd = res->kernel_fd = res->initrd_fd = -1;
	for (unsigned i = 0; i < VM_MAX_DISKS; i++)
		res->disk_fds[i] = -1;
	res->serial.in_fd = res->serial.out_fd = -1;
	res->console.in_fd = res->console.out_fd = -1;
	if (res->vsock) {
		res->vsock->listen_fd = -1; /* borrowed: still the control channel's */
		res->vsock->connector_fd = -1;
		vsock_host_close(res->vsock);
		res->vsock = NULL;
	}
}

/* Foreground mode: the worker opens what the definition names. err gets the message. */
static int resources_open(const struct vm_config *cfg, struct machine_resources *res, char *err, size_t errlen)
{
	int r;

	if (!cfg->kernel) {
		snprintf(err, errlen, "no <kernel> in <os>: vmms boots a kernel directly (firmware boot is not supported yet)");
		return -EINVAL;
	}
	res->kernel_fd = open_image("kernel", cfg->kernel, O_RDONLY, err, errlen);
	if (res->kernel_fd < 0)
		return res->kernel_fd;
	if (cfg->initrd) {
		res->initrd_fd = open_image("initrd", cfg->initrd, O_RDONLY, err, errlen);
		if (res->initrd_fd < 0)
			return res->initrd_fd;
	}
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		const struct vm_disk *d = &cfg->disks[i];
		char what[64];

		snprintf(what, sizeof(what), "disk %s", d->target);
		res->disk_fds[i] = open_image(what, d->path, d->readonly ? O_RDONLY : O_RDWR, err, errlen);
		if (res->disk_fds[i] < 0)
			return res->disk_fds[i];
	}
	r = hv_kvm_open(&res->kvm_fd);
	if (r < 0) {
		snprintf(err, errlen, "/dev/kvm: cannot open it (is KVM available and are you in group kvm?): %s",
			 strerror(-r));
		return r;
	}
	r = chardev_open(&res->serial, &cfg->serial, err, errlen);
	if (r < 0)
		return r;
	return chardev_open(&res->console, &cfg->console, err, errlen);
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
	vsock_host_close(res->vsock);
	res->vsock = NULL;
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

enum { TAG_WAKE = 1, TAG_SIGNAL, TAG_SERIAL_IN, TAG_SERIAL_LISTEN, TAG_CTL_LISTEN, TAG_CTL_CONN };

/* ---- sandbox ------------------------------------------------------------------------------ */

static int thread_sandbox(void *opaque, enum machine_thread kind)
{
	struct worker *w = opaque;

	return worker_seccomp_install(kind == MACHINE_THREAD_VCPU ? WORKER_SECCOMP_VCPU : WORKER_SECCOMP_IO,
				      w->o.seccomp, w->foreground);
}

/* Every host resource is open: from here on the process needs no new ones. Before any guest
 * code runs, so the guest never meets an unfiltered worker. Fails closed. */
static int sandbox_enter(struct worker *w)
{
	int r;

	if (w->sandboxed || w->o.seccomp == WORKER_SECCOMP_OFF)
		return 0;
	r = worker_seccomp_install(WORKER_SECCOMP_BASE, w->o.seccomp, w->foreground);
	if (r < 0)
		return log_error_errno(r, "cannot install the seccomp filter (use --seccomp=off to run without)");
	w->res.thread_init = thread_sandbox;
	w->res.thread_opaque = w;
	w->sandboxed = true;
	return 0;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

static const char *worker_state_name(enum worker_state st)
{
	switch (st) {
	case W_CONFIGURED: return CTL_STATE_CONFIGURED;
	case W_RUNNING: return CTL_STATE_RUNNING;
	case W_PAUSED: return CTL_STATE_PAUSED;
	case W_UNCONFIGURED:
	case W_STOPPED: return CTL_STATE_OFF;
	}
	return CTL_STATE_OFF;
}

static void emit(struct worker *w, json_t *ev)
{
	if (w->ctl)
		ctl_emit(w->ctl, ev);
	else
		json_decref(ev);
}

static void emit_state(struct worker *w, const char *reason)
{
	emit(w, json_pack("{s:s,s:s,s:s}", "event", "state", "state", worker_state_name(w->st), "reason", reason));
}

static int outcome_status(enum machine_outcome out)
{
	switch (out) {
	case MACHINE_POWEROFF: return EXIT_POWEROFF;
	case MACHINE_REBOOT: return EXIT_REBOOT;
	case MACHINE_CRASH: return EXIT_CRASH;
	case MACHINE_TURNED_OFF: return EXIT_TURNED_OFF;
	default: return EXIT_HOST_ERROR;
	}
}

/* The VM is over: the last events, then the worker exits with status. */
static void worker_finish(struct worker *w, enum machine_outcome out, const char *detail, int status)
{
	w->st = W_STOPPED;
	w->status = status;
	emit_state(w, detail);
	emit(w, json_pack("{s:s,s:s,s:s,s:i}", "event", "stopped", "outcome", machine_outcome_name(out), "reason",
			  detail, "status", status));
}

/* Builds the machine of the next boot over the same resources. */
static int boot_create(struct worker *w, char *err, size_t errlen)
{
	int r = machine_create(w->cfg, &w->res, &w->m, err, errlen);

	if (r < 0)
		return r;
	(void)epoll_add(w->ep, w->m->wake_fd, TAG_WAKE);
	return 0;
}

/* The definition is mapped (and, in the foreground, validated) for good: libxml2's state and
 * the schema go, and the heap they grew is handed back to the kernel, so that the worker's
 * footprint for the VM's whole life is the machine, not its configuration. */
static void parser_release(void)
{
	domxml_release();
	(void)malloc_trim(0);
}

static int boot_start(struct worker *w)
{
	int r;

	if (w->boots == 0)
		parser_release();
	r = sandbox_enter(w);

	if (r < 0)
		return r;
	r = machine_start(w->m);
	if (r < 0)
		return log_error_errno(r, "%s: cannot start the vCPUs", w->cfg->name);
	w->boots++;
	w->st = W_RUNNING;
	return 0;
}

/* Rebuild and start (guest reboot with on_reboot=restart, or "reset"). */
static int boot_again(struct worker *w)
{
	char err[512] = "";
	int r;

	machine_destroy(w->m);
	w->m = NULL;
	r = boot_create(w, err, sizeof(err));
	if (r < 0) {
		log_error("%s: cannot rebuild the machine: %s", w->cfg->name, err);
		worker_finish(w, MACHINE_HOST_ERROR, err, EXIT_HOST_ERROR);
		return r;
	}
	r = boot_start(w);
	if (r < 0) {
		machine_destroy(w->m);
		w->m = NULL;
		worker_finish(w, MACHINE_HOST_ERROR, "cannot start the rebuilt machine", EXIT_HOST_ERROR);
	}
	return r;
}

/* The current boot has an outcome: restart or finish, as the definition says. */
static void boot_ended(struct worker *w)
{
	enum machine_outcome out = machine_outcome(w->m);
	const struct vm_config *cfg = w->cfg;
	char detail[256];

	snprintf(detail, sizeof(detail), "%s", w->m->outcome_detail);
	if (out != MACHINE_POWEROFF && out != MACHINE_REBOOT)
		log_error("%s: %s (%s)", cfg->name, machine_outcome_name(out), detail);
	else
		log_debug("%s: %s", cfg->name, machine_outcome_name(out));
	/* libvirt's <on_poweroff>, <on_reboot>, <on_crash>: restart means boot again. */
	if (w->st != W_CONFIGURED &&
	    ((out == MACHINE_REBOOT && cfg->on_reboot == VM_ACTION_RESTART) ||
	     (out == MACHINE_POWEROFF && cfg->on_poweroff == VM_ACTION_RESTART) ||
	     (out == MACHINE_CRASH && cfg->on_crash == VM_ACTION_RESTART))) {
		if (boot_again(w) == 0)
			emit(w, json_pack("{s:s,s:s,s:s}", "event", "reboot", "outcome", machine_outcome_name(out),
					  "reason", detail));
		return;
	}
	machine_destroy(w->m);
	w->m = NULL;
	worker_finish(w, out, detail, outcome_status(out));
}

static void on_signal(struct worker *w)
{
	struct signalfd_siginfo si;

	if (read(w->sfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (!w->m) {
		if (w->st != W_STOPPED)
			worker_finish(w, MACHINE_TURNED_OFF, strsignal((int)si.ssi_signo), EXIT_TURNED_OFF);
		return;
	}
	if (si.ssi_signo == SIGTERM && w->st == W_RUNNING && !w->deadline_ns) {
		log_info("SIGTERM: pressing the power button; turning off in %d s if the guest does not shut down",
			 SHUTDOWN_GRACE_S);
		machine_power_button(w->m);
		w->deadline_ns = now_ns() + SHUTDOWN_GRACE_S * 1000000000ULL;
	} else {
		machine_request_stop(w->m, MACHINE_TURNED_OFF, strsignal((int)si.ssi_signo));
	}
}

static void on_serial_in(struct worker *w)
{
	struct chardev *serial = &w->res.serial;
	uint8_t buf[256];
	int fd = serial->in_fd;
	ssize_t len = chardev_read(serial, buf, sizeof(buf));

	if (len > 0) {
		if (w->m)
			machine_console_input(w->m, buf, (size_t)len);
	} else if (len == 0 || len != -EAGAIN) {
		(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, fd >= 0 ? fd : STDIN_FILENO, NULL);
	}
}

/* The main loop of both modes: until the worker is stopped. */
static void worker_loop(struct worker *w)
{
	while (w->st != W_STOPPED) {
		struct epoll_event evs[8];
		int n = epoll_wait(w->ep, evs, ARRAY_SIZE(evs), w->deadline_ns ? 1000 : -1);

		if (n < 0 && errno != EINTR) {
			log_error_errno(errno, "epoll_wait");
			if (w->m)
				machine_request_stop(w->m, MACHINE_HOST_ERROR, "event loop failed");
			else
				worker_finish(w, MACHINE_HOST_ERROR, "event loop failed", EXIT_HOST_ERROR);
		}
		if (w->deadline_ns && w->m && now_ns() > w->deadline_ns)
			machine_request_stop(w->m, MACHINE_TURNED_OFF, "guest did not shut down in time after SIGTERM");
		for (int i = 0; i < n && w->st != W_STOPPED; i++) {
			switch (evs[i].data.u64) {
			case TAG_WAKE:
				if (w->m) {
					uint64_t v;
					(void)!read(w->m->wake_fd, &v, sizeof(v));
				}
				break;
			case TAG_SIGNAL:
				on_signal(w);
				break;
			case TAG_SERIAL_IN:
				on_serial_in(w);
				break;
			case TAG_SERIAL_LISTEN:
				if (chardev_accept(&w->res.serial) == 0)
					(void)epoll_add(w->ep, w->res.serial.in_fd, TAG_SERIAL_IN);
				break;
			case TAG_CTL_LISTEN:
			case TAG_CTL_CONN:
				ctl_handle(w->ctl, evs[i].data.u64);
				break;
			}
		}
		if (w->m && w->st != W_STOPPED && machine_outcome(w->m) != MACHINE_RUNNING) {
			w->deadline_ns = 0;
			boot_ended(w);
		}
	}
}

/* ---- control mode: the commands ----------------------------------------------------------- */

static int cerr(struct ctl_error *err, const char *name, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int cerr(struct ctl_error *err, const char *name, int r, const char *fmt, ...)
{
	va_list ap;

	err->name = name;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return r;
}

/* Matches the received descriptors against what the definition needs: every one it needs,
 * none it does not. Fills res (borrowing the descriptors). */
static int match_fds(const struct vm_config *cfg, struct ctl_fds *f, struct machine_resources *res,
		     struct ctl_error *err)
{
	bool want_serial = cfg->serial.kind != VM_CHARDEV_NONE && cfg->serial.kind != VM_CHARDEV_NULL;
	bool want_console = cfg->console.kind != VM_CHARDEV_NONE && cfg->console.kind != VM_CHARDEV_NULL;

	if (f->kvm < 0)
		return cerr(err, "InvalidParameter", -ENOENT, "descriptor 'kvm' (/dev/kvm) was not sent");
	if (!cfg->kernel)
		return cerr(err, "InvalidParameter", -EINVAL,
			    "no <kernel> in <os>: vmms boots a kernel directly (firmware boot is not supported yet)");
	if (f->kernel < 0)
		return cerr(err, "InvalidParameter", -ENOENT, "descriptor 'kernel' (%s) was not sent", cfg->kernel);
	if (cfg->initrd && f->initrd < 0)
		return cerr(err, "InvalidParameter", -ENOENT, "descriptor 'initrd' (%s) was not sent", cfg->initrd);
	if (!cfg->initrd && f->initrd >= 0)
		return cerr(err, "InvalidParameter", -EINVAL, "descriptor 'initrd' sent but the definition has no <initrd>");
	if (want_serial && f->serial < 0)
		return cerr(err, "InvalidParameter", -ENOENT, "descriptor 'serial' was not sent");
	if (!want_serial && f->serial >= 0)
		return cerr(err, "InvalidParameter", -EINVAL, "descriptor 'serial' sent but the definition has no serial port");
	if (want_console && f->console < 0)
		return cerr(err, "InvalidParameter", -ENOENT, "descriptor 'console' was not sent");
	if (!want_console && f->console >= 0)
		return cerr(err, "InvalidParameter", -EINVAL, "descriptor 'console' sent but the definition has no virtio console");
	if (!cfg->vsock.enabled && f->vsock >= 0)
		return cerr(err, "InvalidParameter", -EINVAL, "descriptor 'vsock' sent but the definition has no <vsock>");
	for (unsigned i = 0; i < f->nr_disks; i++) {
		bool found = false;

		for (unsigned j = 0; j < cfg->nr_disks && !found; j++)
			found = strcmp(cfg->disks[j].target, f->disks[i].target) == 0;
		if (!found)
			return cerr(err, "InvalidParameter", -EINVAL, "descriptor 'disk:%s' sent but the definition has no disk %s",
				    f->disks[i].target, f->disks[i].target);
	}
	for (unsigned j = 0; j < cfg->nr_disks; j++) {
		const struct vm_disk *d = &cfg->disks[j];
		int fd = -1, fl;

		for (unsigned i = 0; i < f->nr_disks; i++)
			if (strcmp(d->target, f->disks[i].target) == 0)
				fd = f->disks[i].fd;
		if (fd < 0) {
			resources_forget(res);
			return cerr(err, "InvalidParameter", -ENOENT, "descriptor 'disk:%s' (%s) was not sent", d->target,
				    d->path ? d->path : "");
		}
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 || (!d->readonly && (fl & O_ACCMODE) != O_RDWR)) {
			resources_forget(res);
			return cerr(err, "InvalidParameter", -EBADF,
				    "descriptor 'disk:%s' is not open for reading and writing; open it O_RDWR or mark the disk <readonly/>",
				    d->target);
		}
		res->disk_fds[j] = fd;
	}
	res->kvm_fd = f->kvm;
	res->kernel_fd = f->kernel;
	res->initrd_fd = f->initrd;
	if (want_serial)
		chardev_from_fds(&res->serial, f->serial, f->serial);
	else
		chardev_from_fds(&res->serial, -1, -1);
	if (want_console)
		chardev_from_fds(&res->console, f->console, f->console);
	else
		chardev_from_fds(&res->console, -1, -1);
	if (f->vsock_connector >= 0 && f->vsock < 0)
		return cerr(err, "InvalidParameter", -EINVAL, "descriptor 'vsock-connector' sent without 'vsock'");
	/* The vsock host side is optional: without it the guest's connections are refused.
	 * Guest-initiated ones go through vmmsd's connector when it sent one (no host path is
	 * reachable from here), and are refused otherwise. */
	if (f->vsock >= 0 && vsock_host_adopt(f->vsock, NULL, &res->vsock) < 0) {
		resources_forget(res);
		return cerr(err, "Failed", -ENOMEM, "out of memory");
	}
	if (res->vsock && f->vsock_connector >= 0) {
		int r = vsock_host_set_connector(res->vsock, f->vsock_connector);

		if (r < 0) {
			resources_forget(res);
			return cerr(err, "Failed", r, "descriptor 'vsock-connector': cannot set its timeout: %s", strerror(-r));
		}
	}
	return 0;
}

/* The descriptors now belong to res: forget them in the control channel. */
static void fds_taken(struct ctl_fds *f)
{
	f->kvm = f->kernel = f->initrd = f->serial = f->console = f->vsock = f->vsock_connector = -1;
	for (unsigned i = 0; i < f->nr_disks; i++)
		f->disks[i].fd = -1;
}

static int cmd_configure(struct worker *w, json_t *req, struct ctl_error *err)
{
	json_t *xml = json_object_get(req, "xml");
	struct ctl_fds *f = ctl_fds(w->ctl);
	struct vm_config *cfg = NULL;
	char msg[512] = "";
	int r;

	if (w->st != W_UNCONFIGURED)
		return cerr(err, "InvalidState", -EALREADY, "the VM is already configured (configure is allowed once)");
	if (!json_is_string(xml))
		return cerr(err, "InvalidParameter", -EINVAL, "'xml' missing or not a string");
	/* vmmsd validated this very text against libvirt's schema when it was defined, and it
	 * sends nothing else: map it without compiling the schema again (milliseconds and
	 * megabytes of heap). The mapping still refuses what it does not know and checks every
	 * value (lib/domxml.h, DOMXML_NO_SCHEMA). */
	r = domxml_parse_opts(json_string_value(xml), json_string_length(xml), NULL, DOMXML_NO_SCHEMA, &cfg, msg,
			      sizeof(msg));
	if (r < 0)
		return cerr(err, r == -EOPNOTSUPP ? "NotSupported" : "InvalidParameter", r, "%s", msg);
	r = check_host_limits(cfg, msg, sizeof(msg));
	if (r < 0) {
		vm_config_free(cfg);
		return cerr(err, "InvalidParameter", r, "%s", msg);
	}
	r = match_fds(cfg, f, &w->res, err);
	if (r < 0) {
		vm_config_free(cfg);
		return r;
	}
	w->cfg = cfg;
	r = boot_create(w, msg, sizeof(msg));
	if (r < 0) {
		/* The descriptors stay with the control channel for another try. */
		resources_forget(&w->res);
		w->cfg = NULL;
		vm_config_free(cfg);
		return cerr(err, r == -ENOEXEC || r == -EINVAL || r == -E2BIG ? "InvalidParameter" : "Failed", r,
			    "%s", msg);
	}
	fds_taken(f);
	ctl_fds_freeze(w->ctl);
	w->res_set = true;
	(void)epoll_add(w->ep, w->res.serial.in_fd, TAG_SERIAL_IN);
	w->st = W_CONFIGURED;
	log_info("%s: configured", cfg->name);
	return 0;
}

static int worker_command(void *opaque, enum ctl_cmd cmd, json_t *req, json_t *reply, struct ctl_error *err)
{
	struct worker *w = opaque;
	const char *now = worker_state_name(w->st);
	int r;

	if (w->st == W_STOPPED && cmd != CTL_CMD_QUERY)
		return cerr(err, "InvalidState", -ESHUTDOWN, "the VM is off; the worker is exiting");
	switch (cmd) {
	case CTL_CMD_CONFIGURE:
		return cmd_configure(w, req, err);
	case CTL_CMD_START:
		if (w->st != W_CONFIGURED)
			return cerr(err, "InvalidState", -EINVAL, "VM is %s; start needs a configured VM that never ran",
				    w->st == W_UNCONFIGURED ? "not configured" : now);
		r = boot_start(w);
		if (r < 0) {
			machine_request_stop(w->m, MACHINE_HOST_ERROR, "cannot start the VM");
			return cerr(err, "Failed", r, "cannot start the VM: %s", strerror(-r));
		}
		emit_state(w, "started");
		return 0;
	case CTL_CMD_PAUSE:
		if (w->st != W_RUNNING)
			return cerr(err, "InvalidState", -EINVAL, "VM is %s; only a running VM can be paused", now);
		r = machine_pause(w->m);
		if (r < 0 && r != -EALREADY)
			return cerr(err, "Failed", r, "cannot pause: %s", strerror(-r));
		w->st = W_PAUSED;
		emit_state(w, "paused by the controller");
		return 0;
	case CTL_CMD_RESUME:
		if (w->st != W_PAUSED)
			return cerr(err, "InvalidState", -EINVAL, "VM is %s; only a paused VM can be resumed", now);
		r = machine_resume(w->m);
		if (r < 0 && r != -EALREADY)
			return cerr(err, "Failed", r, "cannot resume: %s", strerror(-r));
		w->st = W_RUNNING;
		emit_state(w, "resumed by the controller");
		return 0;
	case CTL_CMD_RESET:
		if (w->st != W_RUNNING && w->st != W_PAUSED)
			return cerr(err, "InvalidState", -EINVAL, "VM is %s; only a running or paused VM can be reset", now);
		machine_request_stop(w->m, MACHINE_TURNED_OFF, "reset by the controller");
		r = boot_again(w);
		if (r < 0)
			return cerr(err, "Failed", r, "the machine could not be rebuilt; the worker exits");
		emit_state(w, "reset by the controller");
		return 0;
	case CTL_CMD_STOP:
		if (w->m) {
			machine_request_stop(w->m, MACHINE_TURNED_OFF, "turned off by the controller");
			machine_destroy(w->m);
			w->m = NULL;
		}
		worker_finish(w, MACHINE_TURNED_OFF, "turned off by the controller", EXIT_TURNED_OFF);
		return 0;
	case CTL_CMD_SHUTDOWN:
		if (w->st != W_RUNNING)
			return cerr(err, "InvalidState", -EINVAL, "VM is %s; %s", now,
				    w->st == W_PAUSED ? "resume it first" : "only a running VM can be shut down");
		machine_power_button(w->m);
		return 0;
	case CTL_CMD_QUERY:
		(void)json_object_set_new(reply, "version", json_integer(CTL_PROTO_VERSION));
		(void)json_object_set_new(reply, "pid", json_integer(getpid()));
		(void)json_object_set_new(reply, "configured", json_boolean(w->cfg != NULL));
		(void)json_object_set_new(reply, "boots", json_integer(w->boots));
		(void)json_object_set_new(reply, "sandboxed", json_boolean(w->sandboxed));
		if (w->cfg) {
			(void)json_object_set_new(reply, "name", json_string(w->cfg->name));
			(void)json_object_set_new(reply, "vcpus", json_integer(w->cfg->vcpus));
			(void)json_object_set_new(reply, "memory", json_integer((json_int_t)w->cfg->memory));
		}
		if (w->m && w->st != W_CONFIGURED)
			(void)json_object_set_new(reply, "uptime_ms",
						  json_integer((json_int_t)((now_ns() - w->m->boot_ns) / 1000000)));
		return 0;
	}
	return cerr(err, "NotSupported", -EOPNOTSUPP, "unknown command");
}

/* A restarted vmmsd hands over new streams for the serial port and the virtio console: the
 * old ones ended with the old vmmsd. Runs on the main loop, like every read of the input side;
 * the vCPUs write concurrently, which chardev_replace() serialises. */
static int worker_replace_fds(void *opaque, const char *const *names, int *fds, size_t n, struct ctl_error *err)
{
	struct worker *w = opaque;

	if (!w->cfg || w->st == W_STOPPED)
		return cerr(err, "InvalidState", -EINVAL, "the VM is %s; there is no stream to replace",
			    w->cfg ? "off" : "not configured");
	/* All or nothing: every name must be a port the definition has, before anything moves. */
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], CTL_VSOCK_CONNECTOR) == 0) {
			if (!w->res.vsock)
				return cerr(err, "InvalidParameter", -ENOENT,
					    "descriptor '%s' sent but the definition has no vsock", names[i]);
			/* Only a controller's connector (no host path here) can be replaced. */
			if (w->res.vsock->path)
				return cerr(err, "NotSupported", -EOPNOTSUPP, "the vsock host side cannot take a new %s",
					    names[i]);
			continue;
		}
		const struct vm_chardev *cd = strcmp(names[i], "serial") == 0 ? &w->cfg->serial : &w->cfg->console;
		const struct chardev *c = cd == &w->cfg->serial ? &w->res.serial : &w->res.console;

		if (cd->kind == VM_CHARDEV_NONE || cd->kind == VM_CHARDEV_NULL)
			return cerr(err, "InvalidParameter", -ENOENT, "descriptor '%s' sent but the definition has no %s",
				    names[i], cd == &w->cfg->serial ? "serial port" : "virtio console");
		/* Under a controller both are sockets it handed over (match_fds); anything else
		 * has no peer to replace. */
		if (c->kind != VM_CHARDEV_UNIX || c->listen_fd >= 0)
			return cerr(err, "NotSupported", -EOPNOTSUPP, "the %s backend cannot take a new stream", names[i]);
	}
	for (size_t i = 0; i < n; i++) {
		bool serial = strcmp(names[i], "serial") == 0;
		struct chardev *c = serial ? &w->res.serial : &w->res.console;
		uint64_t dropped = 0;
		int fd = fds[i];

		if (strcmp(names[i], CTL_VSOCK_CONNECTOR) == 0) {
			/* Swapped under the host side's lock: the io thread may be using the old one. */
			int r = vsock_host_set_connector(w->res.vsock, fd);

			if (r < 0) {
				log_warning("%s: cannot take the new vsock connector: %s", w->cfg->name, strerror(-r));
				continue; /* fds[i] is still the frame's, which closes it */
			}
			fds[i] = -1;
			log_info("%s: vsock connector replaced by the controller", w->cfg->name);
			continue;
		}
		fds[i] = -1;
		/* Input is watched before the swap, so nothing the guest is sent is missed; the old
		 * descriptor leaves the epoll set when it is closed (its only reference). */
		if (serial && epoll_add(w->ep, fd, TAG_SERIAL_IN) < 0)
			log_warning("%s: cannot watch the new serial stream for input", w->cfg->name);
		if (chardev_replace(c, fd, &dropped) < 0)
			continue; /* checked above; it closed fd, which left the epoll set with it */
		log_info("%s: %s stream replaced by the controller; %llu bytes of guest output dropped while none was attached",
			 w->cfg->name, names[i], (unsigned long long)dropped);
	}
	return 0;
}

static const char *worker_state_cb(void *opaque)
{
	return worker_state_name(((struct worker *)opaque)->st);
}

static const struct ctl_ops worker_ctl_ops = {
	.command = worker_command,
	.state = worker_state_cb,
	.replace_fds = worker_replace_fds,
};

/* Control mode: the final events wait (a little) for a controller to take them. */
static void linger(struct worker *w)
{
	uint64_t until = now_ns() + LINGER_S * 1000000000ULL;

	while (ctl_pending(w->ctl) && now_ns() < until) {
		struct epoll_event ev;
		int n = epoll_wait(w->ep, &ev, 1, 1000);

		if (n == 1 && (ev.data.u64 == TAG_CTL_LISTEN || ev.data.u64 == TAG_CTL_CONN))
			ctl_handle(w->ctl, ev.data.u64);
	}
}

/* ---- main ----------------------------------------------------------------------------------- */

static int signals_setup(void)
{
	sigset_t set;

	/* Signals are taken on the main loop; vCPU threads unblock only the kick signal. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, HV_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, HV_KICK_SIGNAL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* In the child: validate, report, exit without running the parent's exit handlers. */
static __attribute__((noreturn)) void schema_check_child(const char *xml, size_t len, const char *schema, int fd)
{
	struct schema_verdict v = { 0 };

	v.r = domxml_validate(xml, len, schema, v.err, sizeof(v.err));
	_exit(write(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) ? 0 : 1);
}

/* Maps the definition and starts its schema validation beside the machine build. A
 * definition the mapping refuses is parsed again the plain way, schema first, so that the
 * message is the one a user gets without the shortcut. */
static int config_load(struct worker *w, char *err, size_t errlen)
{
	struct schema_check *c = &w->check;
	_cleanup_free_ char *xml = NULL;
	size_t len = 0;
	int p[2], r;

	r = domxml_parse_file_opts(w->o.config, w->o.schema, DOMXML_NO_SCHEMA, &w->cfg, &xml, &len, err, errlen);
	if (r < 0)
		return domxml_parse_file(w->o.config, w->o.schema, &w->cfg, err, errlen);
	/* Single-threaded here (no machine yet), so the child may run any code after fork. The
	 * kernel reaps it (SIGCHLD ignored: the worker has no other children), so the worker
	 * waits for its verdict only, not for its exit, and needs no wait4 under seccomp. */
	(void)signal(SIGCHLD, SIG_IGN);
	if (pipe2(p, O_CLOEXEC) == 0) {
		pid_t pid = fork();

		if (pid == 0) {
			close(p[0]);
			schema_check_child(xml, len, w->o.schema, p[1]);
		}
		close(p[1]);
		if (pid > 0) {
			c->fd = p[0];
			return 0;
		}
		close(p[0]);
	}
	/* No child to be had: validate here, before anything else. */
	c->v.r = domxml_validate(xml, len, w->o.schema, c->v.err, sizeof(c->v.err));
	return 0;
}

/* Waits for the validation: 0 when the schema accepted the definition (or it was validated
 * with the plain parse), else the exit status with the message logged. */
static int config_check_wait(struct worker *w)
{
	struct schema_check *c = &w->check;
	ssize_t n;

	if (c->fd >= 0) {
		do
			n = read(c->fd, &c->v, sizeof(c->v));
		while (n < 0 && errno == EINTR);
		close(c->fd);
		c->fd = -1;
		if (n != (ssize_t)sizeof(c->v)) {
			log_error("%s: the schema validation ended without a verdict; the VM is not started", w->o.config);
			return EXIT_HOST_ERROR;
		}
		c->v.err[sizeof(c->v.err) - 1] = '\0';
	}
	if (c->v.r < 0) {
		log_error("%s: %s", w->o.config, c->v.err);
		return EXIT_USAGE;
	}
	return 0;
}

/* Everything but starting the vCPUs: host limits, resources, the machine. Returns the exit
 * status to fail with (err says why), or 0. */
static int foreground_prepare(struct worker *w, char *err, size_t errlen)
{
	char msg[512] = "";
	int r;

	if (check_host_limits(w->cfg, err, errlen) < 0)
		return EXIT_USAGE;
	w->res_set = true;
	if (resources_open(w->cfg, &w->res, err, errlen) < 0)
		return EXIT_USAGE;
	if (w->o.vsock_socket && !w->cfg->vsock.enabled) {
		snprintf(err, errlen, "--vsock-socket %s: the definition has no <vsock>; add <vsock model='virtio'/>",
			 w->o.vsock_socket);
		return EXIT_USAGE;
	}
	if (w->o.vsock_socket && !w->o.check_only &&
	    vsock_host_open(w->o.vsock_socket, &w->res.vsock, err, errlen) < 0)
		return EXIT_USAGE;
	r = boot_create(w, msg, sizeof(msg));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", w->cfg->name, msg);
		return r == -ENOEXEC || r == -EINVAL || r == -E2BIG || r == -ENOMEM ? EXIT_USAGE : EXIT_HOST_ERROR;
	}
	return 0;
}

static int run_foreground(struct worker *w)
{
	char err[512] = "";
	int status, r;

	if (config_load(w, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return EXIT_USAGE;
	}
	status = foreground_prepare(w, err, sizeof(err));
	/* What starting needs before the vCPUs (releasing the parser, the seccomp filter) is
	 * done while the schema may still be at work. */
	if (status == 0 && !w->o.check_only) {
		parser_release();
		if (sandbox_enter(w) < 0) {
			err[0] = '\0'; /* sandbox_enter() said why */
			status = EXIT_HOST_ERROR;
		}
	}
	/* The schema's verdict first, as if it had run before everything else; no guest
	 * instruction runs on a definition it refused. */
	r = config_check_wait(w);
	if (r != 0)
		return r;
	if (status != 0) {
		if (err[0])
			log_error("%s", err);
		return status;
	}
	if (w->o.check_only) {
		machine_destroy(w->m);
		w->m = NULL;
		printf("%s: definition and resources OK\n", w->cfg->name);
		return 0;
	}
	if (w->res.serial.kind == VM_CHARDEV_STDIO)
		terminal_raw();
	if (epoll_add(w->ep, w->res.serial.in_fd, TAG_SERIAL_IN) < 0 ||
	    epoll_add(w->ep, w->res.serial.listen_fd, TAG_SERIAL_LISTEN) < 0) {
		log_error("cannot set up the event loop");
		return EXIT_HOST_ERROR;
	}
	w->st = W_CONFIGURED;
	if (boot_start(w) < 0)
		return EXIT_HOST_ERROR;
	worker_loop(w);
	return w->status;
}

static int run_control(struct worker *w)
{
	int r = ctl_new(w->o.control_fd, &worker_ctl_ops, w, &w->ctl);

	if (r < 0) {
		log_error_errno(r, "--control-fd %d: not a listening Unix stream socket", w->o.control_fd);
		return EXIT_USAGE;
	}
	r = ctl_attach(w->ctl, w->ep, TAG_CTL_LISTEN, TAG_CTL_CONN);
	if (r < 0) {
		log_error_errno(r, "cannot watch the control socket");
		return EXIT_HOST_ERROR;
	}
	w->st = W_UNCONFIGURED;
	worker_loop(w);
	linger(w);
	return w->status;
}

int main(int argc, char **argv)
{
	struct worker w = { .ep = -1, .sfd = -1, .status = EXIT_HOST_ERROR, .check.fd = -1 };
	struct rlimit no_core = { 0, 0 };
	int status;

	log_set_prefix("vmms-worker");
	(void)setrlimit(RLIMIT_CORE, &no_core);
	resources_init(&w.res);
	/* jansson seeds its hash function from /dev/urandom on first use: do it now, while the
	 * worker may still open files. */
	json_object_seed(0);
	/* glibc loads the time zone file on the first gmtime_r() too (the RTC model uses it). */
	tzset();
	if (parse_args(argc, argv, &w.o) < 0)
		return EXIT_USAGE;
	w.foreground = w.o.control_fd < 0;
	w.sfd = signals_setup();
	w.ep = epoll_create1(EPOLL_CLOEXEC);
	if (w.sfd < 0 || w.ep < 0 || epoll_add(w.ep, w.sfd, TAG_SIGNAL) < 0) {
		log_error_errno(errno, "cannot set up the event loop");
		return EXIT_HOST_ERROR;
	}
	status = w.foreground ? run_foreground(&w) : run_control(&w);

	if (w.m) {
		machine_destroy(w.m);
		w.m = NULL;
	}
	terminal_restore();
	ctl_free(w.ctl);
	if (w.res_set)
		resources_close(&w.res);
	vm_config_free(w.cfg);
	close(w.sfd);
	close(w.ep);
	return status;
}
