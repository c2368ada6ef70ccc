// SPDX-License-Identifier: GPL-2.0-only
/* The worker manager: spawns sandboxed workers, drives them over their control sockets, watches them. */
#include "parent/workers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/ctlproto.h"
#include "lib/jsonframe.h"
#include "lib/log.h"
#include "lib/util.h"
#include "parent/cgroup.h"
#include "parent/console.h"
#include "parent/registry.h"
#include "parent/sandbox.h"

#define START_TIMEOUT_MS 30000
#define OP_TIMEOUT_MS 15000
#define EXIT_GRACE_MS 5000
#define MAX_PENDING 16
#define WORKER_NOFILE 256
#define TICK_MS 250

/* REQ_STREAMS and REQ_VCONN are "fds" after a reattach: new console streams and a new vsock
 * connector for a running worker. */
enum req_kind { REQ_FDS, REQ_CONFIGURE, REQ_START, REQ_PAUSE, REQ_RESUME, REQ_RESET, REQ_STOP, REQ_QUERY, REQ_STREAMS,
		REQ_VCONN, REQ_SHUTDOWN };

static const char *const req_cmd[] = {
	[REQ_FDS] = "fds", [REQ_CONFIGURE] = "configure", [REQ_START] = "start", [REQ_PAUSE] = "pause",
	[REQ_RESUME] = "resume", [REQ_RESET] = "reset", [REQ_STOP] = "stop", [REQ_QUERY] = "query",
	[REQ_STREAMS] = "fds", [REQ_VCONN] = "fds",
	[REQ_SHUTDOWN] = "shutdown",
};

enum src_kind { SRC_CTL, SRC_PID, SRC_TIMER, SRC_VCONN };

struct wvm;

struct src {
	enum src_kind kind;
	struct wvm *vm;
};

struct wvm {
	struct wvm *next;
	struct workers *w;
	char name[VM_NAME_MAX + 1];
	pid_t pid;
	int pidfd;
	int ctl;                    /* connected control socket, -1 when none */
	int vconn;                  /* our end of the vsock connector (lib/ctlproto.h), -1 none */
	struct src vconn_src;
	bool own_child;             /* spawned by this vmmsd: reaped with waitid */
	struct src ctl_src, pid_src;
	int state;                  /* EnabledState last reported */
	int prev_state;             /* to go back to when a pause/resume is refused */
	bool busy;                  /* an operation is under way */
	enum worker_op op;
	char job[64];               /* job to finish, "" when none */
	struct { uint64_t id; enum req_kind kind; } pend[MAX_PENDING];
	size_t npend;
	uint64_t next_id;
	char *rbuf;
	size_t rlen, rcap;
	bool stop_requested;        /* turn off asked: an exit is orderly */
	bool killed;                /* we sent SIGKILL */
	bool got_stopped;           /* the worker's last event arrived */
	bool eof;                   /* the worker closed the control channel */
	char outcome[32];
	char reason[VM_REASON_MAX];
	char fail[VM_REASON_MAX];   /* why we gave up on this worker ("" none) */
	int64_t deadline;           /* ms (CLOCK_MONOTONIC); 0 none */
	int64_t started;            /* ms when the spawn began, for logs */
	struct vm_cgroup cg;
};

struct workers {
	struct worker_config cfg;
	workers_state_fn cb;
	void *userdata;
	int epfd, tfd;
	struct src timer_src;
	struct wvm *vms;
	bool timer_armed;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int workers_new(const struct worker_config *cfg, workers_state_fn cb, void *userdata,
		struct workers **ret)
{
	struct workers *w = calloc(1, sizeof(*w));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!w)
		return -ENOMEM;
	w->cfg = *cfg;
	w->cb = cb;
	w->userdata = userdata;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	w->timer_src.kind = SRC_TIMER;
	ev.data.ptr = &w->timer_src;
	if (w->epfd < 0 || w->tfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tfd, &ev) < 0) {
		int r = -errno;

		if (w->epfd >= 0)
			close(w->epfd);
		if (w->tfd >= 0)
			close(w->tfd);
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

static void vm_close_fds(struct wvm *v)
{
	if (v->vconn >= 0) {
		(void)epoll_ctl(v->w->epfd, EPOLL_CTL_DEL, v->vconn, NULL);
		close(v->vconn);
		v->vconn = -1;
	}
	if (v->ctl >= 0) {
		(void)epoll_ctl(v->w->epfd, EPOLL_CTL_DEL, v->ctl, NULL);
		close(v->ctl);
		v->ctl = -1;
	}
	if (v->pidfd >= 0) {
		(void)epoll_ctl(v->w->epfd, EPOLL_CTL_DEL, v->pidfd, NULL);
		close(v->pidfd);
		v->pidfd = -1;
	}
}

static void vm_free(struct wvm *v)
{
	vm_close_fds(v);
	free(v->rbuf);
	free(v);
}

void workers_free(struct workers *w)
{
	if (!w)
		return;
	while (w->vms) {
		struct wvm *v = w->vms;

		w->vms = v->next;
		/* The workers keep running: a restarted vmmsd reattaches them. */
		vm_free(v);
	}
	close(w->epfd);
	close(w->tfd);
	free(w);
}

int workers_fd(struct workers *w)
{
	return w->epfd;
}

static struct wvm *vm_find(struct workers *w, const char *name)
{
	for (struct wvm *v = w->vms; v; v = v->next)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

static void vm_unlink(struct workers *w, struct wvm *gone)
{
	for (struct wvm **pp = &w->vms; *pp; pp = &(*pp)->next)
		if (*pp == gone) {
			*pp = gone->next;
			return;
		}
}

static void arm_timer(struct workers *w)
{
	bool want = false;
	struct itimerspec its = { 0 };

	for (struct wvm *v = w->vms; v; v = v->next)
		if (v->deadline)
			want = true;
	if (want == w->timer_armed)
		return;
	if (want) {
		its.it_value.tv_nsec = TICK_MS * 1000000L;
		its.it_interval.tv_nsec = TICK_MS * 1000000L;
	}
	(void)timerfd_settime(w->tfd, 0, &its, NULL);
	w->timer_armed = want;
}

static void set_state(struct wvm *v, int state, int health, const char *reason)
{
	v->state = state;
	if (v->w->cb)
		v->w->cb(v->w->userdata, v->name, state, health, state == VM_STATE_OFF ? 0 : v->pid, reason);
}

static void finish_job(struct wvm *v, int code, const char *desc)
{
	if (v->job[0] && v->w->cfg.job_done)
		v->w->cfg.job_done(v->w->userdata, v->job, code, desc);
	v->job[0] = '\0';
}

static int vm_dir(const struct workers *w, const char *name, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/vms/%s", w->cfg.runtime_dir, name) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static void cgroup_name(const struct vm_entry *vm, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%.8s", vm->name, vm->id);
}

static void runtime_cleanup(struct workers *w, const char *name)
{
	char dir[PATH_MAX], p[PATH_MAX + 32];

	if (vm_dir(w, name, dir, sizeof(dir)) < 0)
		return;
	snprintf(p, sizeof(p), "%s/control.sock", dir);
	(void)unlink(p);
	snprintf(p, sizeof(p), "%s/pid", dir);
	(void)unlink(p);
	snprintf(p, sizeof(p), "%s/vsock.sock", dir);
	(void)unlink(p);
	snprintf(p, sizeof(p), "%s/root", dir);
	(void)rmdir(p);
}

/* ---- sending ------------------------------------------------------------------------------- */

static int send_req(struct wvm *v, enum req_kind kind, json_t *msg, const int *fds, size_t nfds)
{
	int r;

	if (!msg)
		return -ENOMEM;
	if (v->ctl < 0 || v->npend >= MAX_PENDING) {
		json_decref(msg);
		return v->ctl < 0 ? -ENOTCONN : -EBUSY;
	}
	v->next_id++;
	json_object_set_new(msg, "id", json_integer((json_int_t)v->next_id));
	json_object_set_new(msg, "cmd", json_string(req_cmd[kind]));
	r = jsonframe_send(v->ctl, msg, fds, nfds);
	json_decref(msg);
	if (r < 0)
		return r;
	v->pend[v->npend].id = v->next_id;
	v->pend[v->npend].kind = kind;
	v->npend++;
	return 0;
}

static void kill_worker(struct wvm *v, const char *why)
{
	if (why && !v->fail[0])
		snprintf(v->fail, sizeof(v->fail), "%s", why);
	if (v->pidfd >= 0 && !v->killed) {
		(void)syscall(SYS_pidfd_send_signal, v->pidfd, SIGKILL, NULL, 0);
		v->killed = true;
	}
	v->deadline = 0;
}

static void ctl_readable(struct wvm *v);
static void vconn_readable(struct wvm *v);
static void vconn_drop(struct wvm *v);

/* ---- the end of a worker ----------------------------------------------------------------- */

static void worker_gone(struct wvm *v)
{
	struct workers *w = v->w;
	struct vm_entry *vm = w->cfg.reg ? registry_find(w->cfg.reg, v->name) : NULL;
	char reason[VM_REASON_MAX] = "", status[96] = "";
	int health = VM_HEALTH_OK;
	siginfo_t si = { 0 };

	/* The last words (a reply, the "stopped" event) may still sit in the socket. */
	if (v->ctl >= 0)
		ctl_readable(v);
	if (v->own_child && v->pidfd >= 0 && syscall(SYS_waitid, P_PIDFD, v->pidfd, &si, WEXITED | WNOHANG, NULL) == 0 &&
	    si.si_pid) {
		if (si.si_code == CLD_EXITED)
			snprintf(status, sizeof(status), "exit status %d", si.si_status);
		else
			snprintf(status, sizeof(status), "killed by signal %d (%s)", si.si_status, strsignal(si.si_status));
	}
	if (v->fail[0]) {
		health = VM_HEALTH_MAJOR_FAILURE;
		snprintf(reason, sizeof(reason), "%s", v->fail);
	} else if (v->got_stopped) {
		if (strcmp(v->outcome, "crash") == 0) {
			health = VM_HEALTH_MAJOR_FAILURE;
			snprintf(reason, sizeof(reason), "the guest crashed%s%.200s", v->reason[0] ? ": " : "", v->reason);
		} else if (strcmp(v->outcome, "host-error") == 0) {
			health = VM_HEALTH_CRITICAL;
			snprintf(reason, sizeof(reason), "worker error%s%.200s", v->reason[0] ? ": " : "", v->reason);
		} else if (strcmp(v->outcome, "poweroff") == 0) {
			snprintf(reason, sizeof(reason), "the guest powered off");
		} else if (strcmp(v->outcome, "reboot") == 0) {
			snprintf(reason, sizeof(reason), "the guest rebooted (on_reboot is destroy)");
		}
	} else if (!v->stop_requested) {
		health = VM_HEALTH_CRITICAL;
		snprintf(reason, sizeof(reason), "the worker (pid %d) died unexpectedly%s%s", (int)v->pid,
			 status[0] ? ": " : "", status);
	}
	log_info("VM %s: worker %d ended%s%s%s%s", v->name, (int)v->pid, status[0] ? " (" : "", status,
		 status[0] ? ")" : "", reason[0] ? "; " : "");
	if (reason[0])
		log_info("VM %s: %s", v->name, reason);
	if (v->job[0])
		finish_job(v, WORKER_JOB_FAILED, reason[0] ? reason : "the worker exited before the operation completed");
	if (w->cfg.consoles)
		console_vm_close(w->cfg.consoles, v->name);
	cgroup_destroy(&v->cg);
	runtime_cleanup(w, v->name);
	if (vm) {
		vm->worker_pid = 0;
		vm->pid = 0;
	}
	vm_unlink(w, v);
	vm_close_fds(v);
	set_state(v, VM_STATE_OFF, health, reason);
	vm_free(v);
	arm_timer(w);
}

/* ---- replies and events ------------------------------------------------------------------ */

static int state_of(const char *s)
{
	if (!s)
		return 0;
	if (strcmp(s, CTL_STATE_RUNNING) == 0)
		return VM_STATE_RUNNING;
	if (strcmp(s, CTL_STATE_PAUSED) == 0)
		return VM_STATE_PAUSED;
	return 0;
}

static void on_reply(struct wvm *v, enum req_kind kind, json_t *msg)
{
	bool ok = json_is_true(json_object_get(msg, "ok"));
	json_t *e = json_object_get(msg, "error");
	const char *emsg = json_string_value(json_object_get(e, "message"));
	const char *ename = json_string_value(json_object_get(e, "name"));
	char desc[VM_REASON_MAX];

	if (!ok) {
		/* The worker's words are hostile text: bounded by the buffer and never a format. */
		snprintf(desc, sizeof(desc), "%s: %s%s%s", req_cmd[kind], ename ? ename : "Failed", emsg ? ": " : "",
			 emsg ? emsg : "");
		log_warning("VM %s: worker refused %s", v->name, desc);
	}
	switch (kind) {
	case REQ_FDS:
	case REQ_CONFIGURE:
	case REQ_START:
		if (!ok) {
			finish_job(v, WORKER_JOB_FAILED, desc);
			v->busy = false;
			kill_worker(v, desc);
			return;
		}
		if (kind == REQ_START) {
			v->busy = false;
			v->deadline = 0;
			log_info("VM %s: running (worker pid %d, %lld ms)", v->name, (int)v->pid,
				 (long long)(mono_ms() - v->started));
			set_state(v, VM_STATE_RUNNING, VM_HEALTH_OK, "");
			finish_job(v, 0, NULL);
		}
		return;
	case REQ_PAUSE:
	case REQ_RESUME:
	case REQ_RESET:
		v->busy = false;
		v->deadline = 0;
		if (!ok) {
			finish_job(v, ename && strcmp(ename, "InvalidState") == 0 ? WORKER_JOB_INVALID_STATE : WORKER_JOB_FAILED, desc);
			set_state(v, v->prev_state, VM_HEALTH_OK, NULL);
			return;
		}
		set_state(v, kind == REQ_PAUSE ? VM_STATE_PAUSED : VM_STATE_RUNNING, VM_HEALTH_OK, NULL);
		finish_job(v, 0, NULL);
		return;
	case REQ_SHUTDOWN:
		return;   /* the power button: refusals are logged above, the guest decides */
	case REQ_STOP:
		if (!ok)
			kill_worker(v, NULL);   /* turned off either way */
		else
			v->deadline = mono_ms() + EXIT_GRACE_MS;
		return;
	case REQ_QUERY: {
		int st = state_of(json_string_value(json_object_get(msg, "state")));

		v->busy = false;
		v->deadline = 0;
		if (!ok || !st) {
			kill_worker(v, "the reattached worker reports no running guest");
			return;
		}
		log_info("VM %s: reattached to worker %d (%s)", v->name, (int)v->pid, st == VM_STATE_RUNNING ? "running" : "paused");
		set_state(v, st, VM_HEALTH_OK, NULL);
		return;
	}
	case REQ_STREAMS:
		/* The guest runs on either way; only its console output is lost from now on. */
		if (!ok)
			log_warning("VM %s: the console is not reconnected: %s", v->name, desc);
		else
			log_info("VM %s: console reconnected", v->name);
		return;
	case REQ_VCONN:
		/* The guest runs on either way; only its connections to host ports are refused. */
		if (!ok) {
			log_warning("VM %s: the vsock connector is not reconnected: %s", v->name, desc);
			if (v->vconn >= 0)
				vconn_drop(v);
		} else {
			log_info("VM %s: vsock connector reconnected", v->name);
		}
		return;
	}
}

static void on_event(struct wvm *v, json_t *msg)
{
	const char *ev = json_string_value(json_object_get(msg, "event"));
	const char *reason = json_string_value(json_object_get(msg, "reason"));

	if (!ev)
		return;
	if (strcmp(ev, "stopped") == 0) {
		const char *o = json_string_value(json_object_get(msg, "outcome"));

		v->got_stopped = true;
		snprintf(v->outcome, sizeof(v->outcome), "%s", o ? o : "");
		snprintf(v->reason, sizeof(v->reason), "%s", reason ? reason : "");
		/* It exits now; make sure it does. */
		if (!v->deadline)
			v->deadline = mono_ms() + EXIT_GRACE_MS;
	} else if (strcmp(ev, "state") == 0) {
		int st = state_of(json_string_value(json_object_get(msg, "state")));

		/* A change the worker made by itself (not one we are waiting for). */
		if (st && !v->busy && st != v->state && !v->stop_requested)
			set_state(v, st, VM_HEALTH_OK, NULL);
	} else if (strcmp(ev, "reboot") == 0) {
		log_info("VM %s: the guest rebooted", v->name);
	}
}

static void on_message(struct wvm *v, json_t *msg)
{
	json_t *id = json_object_get(msg, "id");

	if (!json_is_object(msg))
		return;
	if (!id) {
		on_event(v, msg);
		return;
	}
	/* Replies come in request order; anything else is a confused worker. */
	if (!json_is_integer(id) || v->npend == 0 || (uint64_t)json_integer_value(id) != v->pend[0].id) {
		kill_worker(v, "the worker broke the control protocol (unexpected reply)");
		return;
	}
	{
		enum req_kind kind = v->pend[0].kind;

		memmove(v->pend, v->pend + 1, (v->npend - 1) * sizeof(v->pend[0]));
		v->npend--;
		on_reply(v, kind, msg);
	}
}

/* Read and act on whatever the worker sent; never frees v. */
static void ctl_readable(struct wvm *v)
{
	for (;;) {
		ssize_t n;

		if (v->rcap - v->rlen < 65536) {
			size_t cap = v->rcap ? v->rcap * 2 : 131072;
			char *nb;

			if (cap > 2 * (size_t)JSONFRAME_MAX + 8) {
				kill_worker(v, "the worker sent an oversized control message");
				return;
			}
			nb = realloc(v->rbuf, cap);
			if (!nb)
				return;
			v->rbuf = nb;
			v->rcap = cap;
		}
		n = recv(v->ctl, v->rbuf + v->rlen, v->rcap - v->rlen, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			/* The worker closed the channel: it is exiting. Without a "stopped" event this is
			 * a failure; either way the pidfd reports the end. */
			(void)epoll_ctl(v->w->epfd, EPOLL_CTL_DEL, v->ctl, NULL);
			close(v->ctl);
			v->ctl = -1;
			v->eof = true;
			if (!v->deadline)
				v->deadline = mono_ms() + EXIT_GRACE_MS;
			break;
		}
		v->rlen += (size_t)n;
		for (;;) {
			json_t *msg = NULL;
			size_t used = 0;
			int r = jsonframe_decode(v->rbuf, v->rlen, &msg, &used);

			if (r == 0)
				break;
			if (r < 0) {
				v->rlen = 0;
				kill_worker(v, "the worker sent a malformed control message");
				return;
			}
			memmove(v->rbuf, v->rbuf + used, v->rlen - used);
			v->rlen -= used;
			on_message(v, msg);
			json_decref(msg);
			if (v->killed)
				return;
		}
	}
}

/* ---- the vsock connector (lib/ctlproto.h) -------------------------------------------------- */

static void vconn_drop(struct wvm *v)
{
	(void)epoll_ctl(v->w->epfd, EPOLL_CTL_DEL, v->vconn, NULL);
	close(v->vconn);
	v->vconn = -1;
}

/* Connects to "<vm dir>/vsock.sock_<port>" for the worker: the path is built here from the
 * VM's name (ours) and a u32, so the worker can reach nothing else. Unix connects complete or
 * fail at once; SOCK_NONBLOCK keeps a full backlog from holding the loop (EAGAIN). */
static int vconn_connect(struct wvm *v, uint32_t port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[PATH_MAX];
	int fd, r;

	if (vm_dir(v->w, v->name, dir, sizeof(dir)) < 0 ||
	    (size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vsock.sock_%u", dir, port) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r == -ENOENT ? -ECONNREFUSED : r;
	}
	return fd;
}

/* Requests from the worker: each datagram is hostile (wrong size, magic, any port). At most
 * CTL_VSOCK_BURST per wakeup, so one VM cannot monopolise the daemon; the rest waits for the
 * next round (level-triggered). Replies never block: one the worker does not take is lost. */
static void vconn_readable(struct wvm *v)
{
	for (unsigned i = 0; i < CTL_VSOCK_BURST && v->vconn >= 0; i++) {
		struct ctl_vsock_req req;
		struct ctl_vsock_reply rep = { .magic = CTL_VSOCK_MAGIC };
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} cm = { 0 };
		struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;
		int fd;

		/* No control buffer: descriptors a worker might attach are discarded by the kernel. */
		n = recv(v->vconn, &req, sizeof(req), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			vconn_drop(v);
			return;
		}
		if (n != (ssize_t)sizeof(req) || req.magic != CTL_VSOCK_MAGIC) {
			log_debug("VM %s: malformed vsock connector request (%zd bytes) ignored", v->name, n);
			continue;
		}
		rep.token = req.token;
		fd = vconn_connect(v, req.port);
		rep.status = fd < 0 ? fd : 0;
		if (fd >= 0) {
			struct cmsghdr *c;

			mh.msg_control = cm.buf;
			mh.msg_controllen = sizeof(cm.buf);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
		}
		log_debug("VM %s: guest connects to host port %u: %s", v->name, req.port,
			  fd < 0 ? strerror(-fd) : "connected");
		if (sendmsg(v->vconn, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN)
			log_debug("VM %s: vsock connector reply: %s", v->name, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
}

static void tick(struct workers *w)
{
	int64_t now = mono_ms();
	uint64_t exp;

	while (read(w->tfd, &exp, sizeof(exp)) > 0)
		;
	for (struct wvm *v = w->vms; v; v = v->next) {
		if (!v->deadline || now < v->deadline)
			continue;
		if (v->busy && v->op == WORKER_START)
			kill_worker(v, "the worker did not start the guest in time");
		else if (v->busy && (v->op == WORKER_PAUSE || v->op == WORKER_RESUME || v->op == WORKER_RESET))
			kill_worker(v, "the worker did not answer in time");
		else if (v->eof && !v->got_stopped && !v->stop_requested)
			kill_worker(v, "the worker closed its control channel without a stopped event");
		else
			kill_worker(v, NULL);   /* told to stop or said it stopped, but has not exited */
	}
	arm_timer(w);
}

void workers_dispatch(struct workers *w)
{
	struct epoll_event evs[32];
	int n = epoll_wait(w->epfd, evs, (int)ARRAY_SIZE(evs), 0);

	for (int i = 0; i < n; i++) {
		struct src *s = evs[i].data.ptr;
		struct wvm *v;

		if (s->kind == SRC_TIMER) {
			tick(w);
			continue;
		}
		/* An earlier event of this round may have freed the VM: look it up again. */
		for (v = w->vms; v && v != s->vm; v = v->next)
			;
		if (!v)
			continue;
		if (s->kind == SRC_CTL && v->ctl >= 0)
			ctl_readable(v);
		else if (s->kind == SRC_VCONN && v->vconn >= 0)
			vconn_readable(v);
		else if (s->kind == SRC_PID)
			worker_gone(v);
	}
	arm_timer(w);
}

/* ---- starting ---------------------------------------------------------------------------- */

static uid_t alloc_uid(struct workers *w, struct vm_entry *vm)
{
	size_t n = registry_count(w->cfg.reg);

	if (vm->uid >= w->cfg.uid_min && vm->uid <= w->cfg.uid_max && vm->uid != 0) {
		bool clash = false;

		for (size_t i = 0; i < n; i++) {
			struct vm_entry *o = registry_at(w->cfg.reg, i);

			if (o != vm && o->uid == vm->uid)
				clash = true;
		}
		if (!clash)
			return vm->uid;
	}
	for (uint64_t u = w->cfg.uid_min; u <= w->cfg.uid_max && u != 0; u++) {
		bool used = false;

		for (size_t i = 0; i < n && !used; i++)
			used = registry_at(w->cfg.reg, i)->uid == (uid_t)u;
		if (!used)
			return (uid_t)u;
	}
	return 0;
}

struct opened {
	int fds[CTL_MAX_FDS * 3];
	char names[CTL_MAX_FDS * 3][VM_NAME_MAX + 8];
	size_t n;
};

static void opened_close(struct opened *o)
{
	for (size_t i = 0; i < o->n; i++)
		if (o->fds[i] >= 0)
			close(o->fds[i]);
	o->n = 0;
}

static int open_one(struct opened *o, const char *name, const char *what, const char *path, int flags, char *err,
		    size_t errlen)
{
	int fd;

	if (o->n >= ARRAY_SIZE(o->fds))
		return -E2BIG;
	fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int r = -errno;

		snprintf(err, errlen, "cannot open %s %s: %s", what, path, strerror(-r));
		return r;
	}
	if (strcmp(name, "kvm") != 0) {
		struct stat st;

		/* A definition names files; a directory or a device there is a mistake. */
		if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || (S_ISBLK(st.st_mode) && strncmp(name, "disk:", 5) == 0))) {
			snprintf(err, errlen, "%s %s is not a regular file", what, path);
			close(fd);
			return -EINVAL;
		}
	}
	o->fds[o->n] = fd;
	snprintf(o->names[o->n], sizeof(o->names[0]), "%s", name);
	o->n++;
	return 0;
}

/* Every resource is opened here, as root, and checked against the definition only. */
static int open_resources(const struct vm_config *c, struct opened *o, char *err, size_t errlen)
{
	int r;

	if ((r = open_one(o, "kvm", "/dev/kvm", "/dev/kvm", O_RDWR, err, errlen)) < 0)
		return r;
	if (!c->kernel) {
		snprintf(err, errlen, "the definition has no <kernel>; firmware boot is not supported");
		return -EINVAL;
	}
	if ((r = open_one(o, "kernel", "kernel", c->kernel, O_RDONLY, err, errlen)) < 0)
		return r;
	if (c->initrd && (r = open_one(o, "initrd", "initrd", c->initrd, O_RDONLY, err, errlen)) < 0)
		return r;
	for (unsigned i = 0; i < c->nr_disks; i++) {
		char name[VM_NAME_MAX + 8], what[64];

		snprintf(name, sizeof(name), "disk:%s", c->disks[i].target);
		snprintf(what, sizeof(what), "disk %s", c->disks[i].target);
		if ((r = open_one(o, name, what, c->disks[i].path, c->disks[i].readonly ? O_RDONLY : O_RDWR, err, errlen)) < 0)
			return r;
	}
	return 0;
}

static int make_listener(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	(void)unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 || listen(fd, 4) < 0) {
		r = -errno;
		snprintf(err, errlen, "control socket %s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}

static int connect_ctl(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Requests are small and the worker reads them promptly; a stuck worker must not hold
	 * the daemon's loop for more than this. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static int watch(struct wvm *v)
{
	struct epoll_event ev = { .events = EPOLLIN };

	v->ctl_src = (struct src){ .kind = SRC_CTL, .vm = v };
	v->pid_src = (struct src){ .kind = SRC_PID, .vm = v };
	ev.data.ptr = &v->pid_src;
	if (epoll_ctl(v->w->epfd, EPOLL_CTL_ADD, v->pidfd, &ev) < 0)
		return -errno;
	if (v->ctl >= 0) {
		ev.data.ptr = &v->ctl_src;
		if (epoll_ctl(v->w->epfd, EPOLL_CTL_ADD, v->ctl, &ev) < 0)
			return -errno;
	}
	return 0;
}

static int write_pidfile(const char *dir, pid_t pid)
{
	char p[PATH_MAX + 16], tmp[PATH_MAX + 16], buf[32];
	int fd, r;

	snprintf(p, sizeof(p), "%s/pid", dir);
	snprintf(tmp, sizeof(tmp), "%s/.pid.tmp", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	r = write_full(fd, buf, strlen(buf));
	close(fd);
	if (r == 0 && rename(tmp, p) < 0)
		r = -errno;
	return r;
}

struct place_ctx {
	struct vm_cgroup *cg;
};

static int place_in_cgroup(void *ud, pid_t pid, char *err, size_t errlen)
{
	struct place_ctx *p = ud;

	return cgroup_attach(p->cg, pid, err, errlen);
}

/* The loader and library directory of a dynamically linked worker, bound read-only into the
 * empty root (a static worker gets nothing). */
static int start_worker(struct workers *w, struct vm_entry *vm, struct wvm *v, char *err, size_t errlen)
{
	const struct vm_config *c = vm->cfg;
	struct opened o = { .n = 0 };
	char dir[PATH_MAX], p[PATH_MAX + 32], root[PATH_MAX + 32], cgname[128];
	struct cgroup_limits lim;
	struct place_ctx pctx = { .cg = &v->cg };
	struct sandbox_spec spec = { 0 };
	char *argv[] = { "vmms-worker", "--control-fd", "3", NULL, NULL, NULL };
	int listen_fd = -1, exe = -1, nul = -1, logfd = -1, sp[2] = { -1, -1 }, vc[2] = { -1, -1 }, r;
	uid_t uid;
	bool has_serial = c->serial.kind != VM_CHARDEV_NONE && c->serial.kind != VM_CHARDEV_NULL;
	bool has_console = c->console.kind != VM_CHARDEV_NONE;

	uid = alloc_uid(w, vm);
	if (!uid) {
		snprintf(err, errlen, "no free worker uid in %u-%u", (unsigned)w->cfg.uid_min, (unsigned)w->cfg.uid_max);
		return -EUSERS;
	}
	if (vm->uid != uid) {
		vm->uid = uid;
		(void)registry_save_state(w->cfg.reg, vm);
	}
	r = open_resources(c, &o, err, errlen);
	if (r < 0)
		goto out;
	exe = open(w->cfg.worker_path, O_RDONLY | O_CLOEXEC);
	if (exe < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open the worker program %s: %s", w->cfg.worker_path, strerror(-r));
		goto out;
	}
	/* The worker's root is an empty tmpfs: a dynamically linked worker would find no loader
	 * there. It is linked static (Makefile) and needs no file at all: the definition was
	 * validated against the schema here, at define time, and the worker maps it without the
	 * schema (DOMXML_NO_SCHEMA). Refuse anything else with a message, not a failed exec. */
	r = sandbox_elf_interp(exe, p, sizeof(p));
	if (r != 0) {
		if (r > 0)
			snprintf(err, errlen, "the worker program %s is dynamically linked (loader %s); vmmsd runs workers on an empty root: build it static (make WORKER_STATIC=1)",
				 w->cfg.worker_path, p);
		else
			snprintf(err, errlen, "the worker program %s is not a 64-bit ELF program", w->cfg.worker_path);
		r = r > 0 ? -ENOEXEC : r;
		goto out;
	}
	snprintf(p, sizeof(p), "%s/vms", w->cfg.runtime_dir);
	if ((r = vm_dir(w, vm->name, dir, sizeof(dir))) < 0 || (mkdir(p, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
		r = r < 0 ? r : -errno;
		snprintf(err, errlen, "cannot create the runtime directory %s: %s", dir, strerror(-r));
		goto out;
	}
	snprintf(root, sizeof(root), "%s/root", dir);
	if (mkdir(root, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", root, strerror(-r));
		goto out;
	}
	snprintf(p, sizeof(p), "%s/control.sock", dir);
	listen_fd = make_listener(p, err, errlen);
	if (listen_fd < 0) {
		r = listen_fd;
		goto out;
	}
	if (c->vsock.enabled) {
		/* The vsock host side: the worker accepts on it (CONNECT <port>), vmmsd's guest
		 * services manager (parent/guest.c) connects there to reach vmms-guestd. Root only. */
		int vfd;

		snprintf(p, sizeof(p), "%s/vsock.sock", dir);
		vfd = make_listener(p, err, errlen);
		if (vfd < 0) {
			r = vfd;
			goto out;
		}
		o.fds[o.n] = vfd;
		snprintf(o.names[o.n++], sizeof(o.names[0]), "vsock");
		/* ... and the connector, for the guest's own connections to host ports
		 * (lib/ctlproto.h): the worker cannot reach "vsock.sock_<port>" itself. */
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, vc) < 0) {
			r = -errno;
			snprintf(err, errlen, "socketpair: %s", strerror(-r));
			goto out;
		}
		o.fds[o.n] = vc[1];
		snprintf(o.names[o.n++], sizeof(o.names[0]), CTL_VSOCK_CONNECTOR);
		vc[1] = -1;
	}
	if (has_serial || has_console) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
			r = -errno;
			snprintf(err, errlen, "socketpair: %s", strerror(-r));
			goto out;
		}
		o.fds[o.n] = sp[1];
		snprintf(o.names[o.n++], sizeof(o.names[0]), "%s", has_serial ? "serial" : "console");
		sp[1] = -1;
	}
	if (has_serial && has_console) {
		/* Only one stream per VM goes to the console multiplexer: the virtio console gets a
		 * stream of its own that ends here (its output is discarded). */
		int cp[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cp) < 0) {
			r = -errno;
			goto out;
		}
		o.fds[o.n] = cp[1];
		snprintf(o.names[o.n++], sizeof(o.names[0]), "console");
		(void)shutdown(cp[0], SHUT_WR);
		close(cp[0]);
	}
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	snprintf(p, sizeof(p), "%s/worker.log", dir);
	logfd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	cgroup_limits_from(c, &lim);
	cgroup_name(vm, cgname, sizeof(cgname));
	r = cgroup_create(w->cfg.cgroup_root, cgname, &lim, &v->cg, err, errlen);
	if (r < 0)
		goto out;
	if (v->cg.missing[0])
		log_info("VM %s: cgroup controllers not available, not limited: %s", vm->name, v->cg.missing);
	spec.exe_fd = exe;
	spec.argv = argv;
	spec.stdio[0] = nul;
	spec.stdio[1] = logfd >= 0 ? logfd : nul;
	spec.stdio[2] = logfd >= 0 ? logfd : nul;
	spec.fds = &listen_fd;
	spec.nfds = 1;
	spec.uid = uid;
	spec.gid = (gid_t)uid;
	spec.root_dir = root;
	spec.hostname = vm->name;
	spec.nofile = WORKER_NOFILE;
	spec.place = place_in_cgroup;
	spec.userdata = &pctx;
	r = sandbox_spawn(&spec, &v->pid, &v->pidfd, err, errlen);
	if (r < 0) {
		cgroup_destroy(&v->cg);
		goto out;
	}
	v->own_child = true;
	if (write_pidfile(dir, v->pid) < 0)
		log_warning("VM %s: cannot write %s/pid", vm->name, dir);
	vm->worker_pid = v->pid;
	vm->pid = v->pid;
	snprintf(p, sizeof(p), "%s/control.sock", dir);
	v->ctl = connect_ctl(p);
	if (v->ctl < 0) {
		r = v->ctl;
		snprintf(err, errlen, "cannot connect to the worker's control socket: %s", strerror(-r));
		goto out_kill;
	}
	if ((r = watch(v)) < 0) {
		snprintf(err, errlen, "epoll: %s", strerror(-r));
		goto out_kill;
	}
	if (vc[0] >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &v->vconn_src };

		v->vconn_src = (struct src){ .kind = SRC_VCONN, .vm = v };
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, vc[0], &ev) < 0) {
			r = -errno;
			snprintf(err, errlen, "epoll: %s", strerror(-r));
			goto out_kill;
		}
		v->vconn = vc[0];
		vc[0] = -1;
	}
	for (size_t i = 0; i < o.n; i += CTL_MAX_FDS) {
		size_t k = MIN((size_t)CTL_MAX_FDS, o.n - i);
		json_t *names = json_array();

		for (size_t j = 0; j < k; j++)
			json_array_append_new(names, json_string(o.names[i + j]));
		r = send_req(v, REQ_FDS, json_pack("{s:o}", "names", names), o.fds + i, k);
		if (r < 0)
			break;
	}
	if (r == 0)
		r = send_req(v, REQ_CONFIGURE, json_pack("{s:s%}", "xml", vm->xml, vm->xml_len), NULL, 0);
	if (r == 0)
		r = send_req(v, REQ_START, json_object(), NULL, 0);
	if (r < 0) {
		snprintf(err, errlen, "cannot send to the worker's control socket: %s", strerror(-r));
		goto out_kill;
	}
	if (sp[0] >= 0 && w->cfg.consoles) {
		int cr = console_vm_open(w->cfg.consoles, vm->name, sp[0]);

		sp[0] = -1;   /* owned (or closed) by the console multiplexer now */
		if (cr < 0)
			log_warning_errno(cr, "VM %s: console", vm->name);
	}
	r = 0;
	goto out;
out_kill:
	kill_worker(v, NULL);
	while (waitpid(v->pid, NULL, 0) < 0 && errno == EINTR)
		;
	vm_close_fds(v);
	cgroup_destroy(&v->cg);
	vm->worker_pid = 0;
	vm->pid = 0;
out:
	opened_close(&o);
	for (int i = 0; i < 2; i++) {
		if (sp[i] >= 0)
			close(sp[i]);
		if (vc[i] >= 0)
			close(vc[i]);
	}
	if (listen_fd >= 0)
		close(listen_fd);
	if (exe >= 0)
		close(exe);
	if (nul >= 0)
		close(nul);
	if (logfd >= 0)
		close(logfd);
	if (r < 0)
		runtime_cleanup(w, vm->name);
	return r;
}

static struct wvm *vm_new(struct workers *w, const char *name)
{
	struct wvm *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->w = w;
	v->ctl = -1;
	v->vconn = -1;
	v->pidfd = -1;
	snprintf(v->name, sizeof(v->name), "%s", name);
	return v;
}

int workers_request(struct workers *w, struct vm_entry *vm, const char *job_id, enum worker_op op,
		    char *err, size_t errlen)
{
	struct wvm *v;
	int r;

	if (!w->cfg.worker_path || !w->cfg.reg) {
		/* No state change is reported: nothing happened. */
		snprintf(err, errlen, "NotSupported: this vmmsd has no worker program configured");
		return -EOPNOTSUPP;
	}
	v = vm_find(w, vm->name);
	if (op == WORKER_START) {
		if (v) {
			snprintf(err, errlen, "VM '%s' already has a worker (pid %d)", vm->name, (int)v->pid);
			return -EBUSY;
		}
		v = vm_new(w, vm->name);
		if (!v)
			return -ENOMEM;
		if (job_id)
			snprintf(v->job, sizeof(v->job), "%s", job_id);
		v->busy = true;
		v->op = op;
		v->started = mono_ms();
		v->deadline = v->started + START_TIMEOUT_MS;
		set_state(v, VM_STATE_STARTING, VM_HEALTH_OK, "");
		r = start_worker(w, vm, v, err, errlen);
		if (r < 0) {
			log_warning("VM %s: start failed: %s", vm->name, err);
			v->job[0] = '\0';   /* the caller reports the failure of its job */
			set_state(v, VM_STATE_OFF, VM_HEALTH_OK, err);
			vm_free(v);
			return r;
		}
		v->next = w->vms;
		w->vms = v;
		arm_timer(w);
		return 0;
	}
	if (!v || v->ctl < 0) {
		snprintf(err, errlen, "VM '%s' has no worker to talk to", vm->name);
		return -ESRCH;
	}
	if (op == WORKER_STOP) {
		/* Turn off wins over anything under way. */
		if (v->stop_requested) {
			snprintf(err, errlen, "VM '%s' is already being turned off", vm->name);
			return -EBUSY;
		}
		if (v->job[0])
			finish_job(v, WORKER_JOB_FAILED, "the VM was turned off");
		v->stop_requested = true;
		v->busy = false;
		set_state(v, VM_STATE_STOPPING, VM_HEALTH_OK, NULL);
		if (send_req(v, REQ_STOP, json_object(), NULL, 0) < 0)
			kill_worker(v, NULL);
		else
			v->deadline = mono_ms() + EXIT_GRACE_MS;
		arm_timer(w);
		return 0;
	}
	if (v->busy || v->stop_requested) {
		snprintf(err, errlen, "VM '%s' is changing state; try again when it is done", vm->name);
		return -EBUSY;
	}
	if (op == WORKER_SHUTDOWN) {
		r = send_req(v, REQ_SHUTDOWN, json_object(), NULL, 0);
		if (r < 0)
			snprintf(err, errlen, "cannot reach the worker: %s", strerror(-r));
		return r;
	}
	{
		enum req_kind kind = op == WORKER_PAUSE ? REQ_PAUSE : op == WORKER_RESUME ? REQ_RESUME : REQ_RESET;

		r = send_req(v, kind, json_object(), NULL, 0);
		if (r < 0) {
			snprintf(err, errlen, "cannot reach the worker: %s", strerror(-r));
			return r;
		}
		v->busy = true;
		v->op = op;
		v->prev_state = v->state;
		v->deadline = mono_ms() + OP_TIMEOUT_MS;
		if (job_id)
			snprintf(v->job, sizeof(v->job), "%s", job_id);
		if (op == WORKER_PAUSE)
			set_state(v, VM_STATE_PAUSING, VM_HEALTH_OK, NULL);
		else if (op == WORKER_RESUME)
			set_state(v, VM_STATE_RESUMING, VM_HEALTH_OK, NULL);
		arm_timer(w);
	}
	return 0;
}

/* ---- reattach ---------------------------------------------------------------------------- */

static int read_pidfile(const char *dir, pid_t *ret)
{
	char p[PATH_MAX + 16];
	void *buf;
	size_t len;
	char text[32];
	long x;
	char *end;
	int r;

	snprintf(p, sizeof(p), "%s/pid", dir);
	r = read_file_max(p, sizeof(text) - 1, &buf, &len);
	if (r < 0)
		return r;
	memcpy(text, buf, len);
	text[len] = '\0';
	free(buf);
	x = strtol(text, &end, 10);
	if (end == text || (*end && *end != '\n') || x < 2 || x > (1 << 22))
		return -EINVAL;
	*ret = (pid_t)x;
	return 0;
}

/* Whether pidfd refers to a process that is still running and has the pid pid (in our pid
 * namespace). /proc/self/fdinfo names the pid of a pidfd; poll says whether it exited. */
static bool pidfd_is(int pidfd, pid_t pid)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	char p[64], buf[512];
	const char *line;
	ssize_t n;
	int fd;

	if (poll(&pfd, 1, 0) != 0)
		return false;   /* readable: it exited (or an error) */
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", pidfd);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	line = strstr(buf, "\nPid:");
	if (!line && strncmp(buf, "Pid:", 4) == 0)
		line = buf - 1;
	return line && strtol(line + 5, NULL, 10) == (long)pid;
}

/* The one stream of a VM that goes to the console multiplexer (as in start_worker): the
 * serial port when the definition has one, else the virtio console; NULL when neither. */
static const char *console_stream_name(const struct vm_config *c)
{
	if (!c)
		return NULL;
	if (c->serial.kind != VM_CHARDEV_NONE && c->serial.kind != VM_CHARDEV_NULL)
		return "serial";
	if (c->console.kind != VM_CHARDEV_NONE && c->console.kind != VM_CHARDEV_NULL)
		return "console";
	return NULL;
}

/* The serial stream ended with the previous vmmsd: hand the reattached worker a new one
 * ("fds" after configure replaces it, lib/ctlproto.h) and feed our end to the console
 * multiplexer. The guest's output written meanwhile was dropped by the worker. */
static int reattach_console(struct workers *w, struct vm_entry *vm, struct wvm *v)
{
	const char *name = console_stream_name(vm->cfg);
	int sp[2], r;

	if (!name || !w->cfg.consoles)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	r = send_req(v, REQ_STREAMS, json_pack("{s:[s]}", "names", name), &sp[1], 1);
	close(sp[1]);
	if (r < 0) {
		close(sp[0]);
		return r;
	}
	return console_vm_open(w->cfg.consoles, vm->name, sp[0]);   /* owns sp[0] now */
}

/* The vsock connector died with the previous vmmsd: hand the reattached worker a new one
 * ("fds" after configure replaces it, lib/ctlproto.h) and serve our end as at start. A
 * message of its own, so that a console refused does not cost the connector, or back. */
static int reattach_vconn(struct workers *w, struct vm_entry *vm, struct wvm *v)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &v->vconn_src };
	int vc[2], r;

	if (!vm->cfg || !vm->cfg->vsock.enabled)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, vc) < 0)
		return -errno;
	v->vconn_src = (struct src){ .kind = SRC_VCONN, .vm = v };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, vc[0], &ev) < 0) {
		r = -errno;
		close(vc[0]);
		close(vc[1]);
		return r;
	}
	v->vconn = vc[0];
	r = send_req(v, REQ_VCONN, json_pack("{s:[s]}", "names", CTL_VSOCK_CONNECTOR), &vc[1], 1);
	close(vc[1]);
	if (r < 0)
		vconn_drop(v);
	return r;
}

static bool was_running(int s)
{
	return s == VM_STATE_RUNNING || s == VM_STATE_PAUSED || s == VM_STATE_STARTING || s == VM_STATE_PAUSING ||
	       s == VM_STATE_RESUMING || s == VM_STATE_STOPPING || s == VM_STATE_SHUTTING_DOWN || s == VM_STATE_SAVING;
}

static int reattach_one(struct workers *w, struct vm_entry *vm, struct wvm *v, char *why, size_t whylen)
{
	char dir[PATH_MAX], p[PATH_MAX + 32], cgname[128];
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	pid_t pid = 0;
	int r;

	if ((r = vm_dir(w, vm->name, dir, sizeof(dir))) < 0 || read_pidfile(dir, &pid) < 0) {
		snprintf(why, whylen, "worker gone while vmmsd was down (no pid file)");
		return -ENOENT;
	}
	if (vm->worker_pid && vm->worker_pid != pid) {
		snprintf(why, whylen, "worker gone while vmmsd was down (pid file %d, recorded %d)", (int)pid,
			 (int)vm->worker_pid);
		return -ESRCH;
	}
	v->pid = pid;
	v->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (v->pidfd < 0) {
		snprintf(why, whylen, "worker gone while vmmsd was down");
		return -ESRCH;
	}
	snprintf(p, sizeof(p), "%s/control.sock", dir);
	v->ctl = connect_ctl(p);
	if (v->ctl < 0) {
		snprintf(why, whylen, "worker gone while vmmsd was down (control socket: %s)", strerror(-v->ctl));
		return v->ctl;
	}
	/*
	 * Who answers? SO_PEERCRED of a connection names whoever last called listen() on the
	 * socket; the worker listens again at startup (worker/control.h), so it is the worker
	 * itself: its pid must be the pid file's (and the pidfd's) and its uid the VM's. A peer
	 * that is root is the vmmsd that created the socket (a worker that never re-listened)
	 * or an impostor: neither is trusted with the VM.
	 */
	if (getsockopt(v->ctl, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
		r = -errno;
		snprintf(why, whylen, "refused to reattach: SO_PEERCRED: %s", strerror(-r));
		return r;
	}
	if (cr.pid != pid || cr.uid != vm->uid || cr.uid == 0) {
		snprintf(why, whylen,
			 "refused to reattach: the control socket's peer is pid %d uid %u, expected the worker pid %d uid %u%s",
			 (int)cr.pid, (unsigned)cr.uid, (int)pid, (unsigned)vm->uid,
			 cr.uid == 0 ? " (root: not a worker's own credentials)" : "");
		return -EPERM;
	}
	/* The pidfd was opened for the pid file's pid before connecting; if that process still
	 * runs now, after the peer was named with the same pid, they are one process. */
	if (!pidfd_is(v->pidfd, pid)) {
		snprintf(why, whylen, "refused to reattach: worker %d exited or was replaced while being verified", (int)pid);
		return -ESRCH;
	}
	cgroup_name(vm, cgname, sizeof(cgname));
	(void)cgroup_lookup(w->cfg.cgroup_root, cgname, &v->cg);
	v->state = vm->last_state;
	if ((r = watch(v)) < 0 || (r = send_req(v, REQ_QUERY, json_object(), NULL, 0)) < 0) {
		snprintf(why, whylen, "cannot query the worker: %s", strerror(-r));
		return r;
	}
	v->busy = true;
	v->op = WORKER_START;
	v->deadline = mono_ms() + OP_TIMEOUT_MS;
	vm->pid = pid;
	vm->worker_pid = pid;
	r = reattach_console(w, vm, v);
	if (r < 0)
		log_warning_errno(r, "VM %s: the console is not reconnected", vm->name);
	r = reattach_vconn(w, vm, v);
	if (r < 0)
		log_warning_errno(r, "VM %s: the vsock connector is not reconnected", vm->name);
	return 0;
}

int workers_reattach(struct workers *w)
{
	int n = 0;

	if (!w->cfg.reg)
		return 0;
	for (size_t i = 0; i < registry_count(w->cfg.reg); i++) {
		struct vm_entry *vm = registry_at(w->cfg.reg, i);
		char why[VM_REASON_MAX] = "";
		struct wvm *v;

		if (!was_running(vm->last_state))
			continue;
		v = vm_new(w, vm->name);
		if (!v)
			return -ENOMEM;
		if (reattach_one(w, vm, v, why, sizeof(why)) < 0) {
			log_warning("VM %s: %s", vm->name, why);
			vm_close_fds(v);
			runtime_cleanup(w, vm->name);
			vm->worker_pid = 0;
			vm->pid = 0;
			set_state(v, VM_STATE_OFF, VM_HEALTH_MAJOR_FAILURE, why);
			vm_free(v);
			continue;
		}
		v->next = w->vms;
		w->vms = v;
		n++;
	}
	arm_timer(w);
	return n;
}
