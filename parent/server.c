// SPDX-License-Identifier: GPL-2.0-only
/* vmmsd's single epoll loop: accept, SO_PEERCRED checks, bounded lines and output queues, signals. */
#include "parent/server.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/domxml.h"
#include "lib/jsonframe.h"
#include "lib/log.h"
#include "lib/util.h"
#include "parent/console.h"
#include "parent/guest.h"
#include "parent/ns.h"
#include "parent/registry.h"
#include "parent/workers.h"

#define MAX_EVENTS 64
#define TAG_LISTEN ((void *)1)
#define TAG_SIGNAL ((void *)2)
#define TAG_WORKERS ((void *)3)
#define TAG_CONSOLES ((void *)4)
#define TAG_GUESTS ((void *)5)

struct client {
	struct server *srv;
	int fd;
	uid_t uid;
	struct jsonline in;
	char *out;
	size_t out_len, out_off, out_cap;
	uint32_t events;     /* registered epoll events */
	bool closing;        /* close once the queue is flushed */
	bool dead;           /* close at the end of this loop iteration */
	bool draining;       /* output shut down; discarding input until EOF (so no RST eats the reply) */
	size_t drained;
	char *console_vm;    /* AttachConsole accepted: hand the connection over after the reply */
	bool console_write, console_force;
	char *guest_vm;      /* AttachGuestChannel accepted: hand the connection over after the reply */
	struct client *next;
};

struct server {
	const struct vmmsd_config *cfg;
	int epfd, lfd, sigfd;
	struct registry *reg;
	struct workers *workers;
	struct consoles *consoles;
	struct guests *guests;
	struct ns ns;
	struct client *clients;
	unsigned nclients;
	gid_t gid;
	bool have_gid;
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

int server_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t salen;
	size_t n;
	int fd, r = 0;

	if (!path || !*path)
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';   /* abstract namespace */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* ---- clients ------------------------------------------------------------------------------ */

static void client_kill(struct client *c)
{
	c->dead = true;
}

static void client_update_events(struct client *c)
{
	/* A closing client is not read any more: without EPOLLIN, unread input cannot spin us. */
	uint32_t want = (c->closing && !c->draining ? 0 : EPOLLIN) | (c->out_len > c->out_off ? EPOLLOUT : 0);
	struct epoll_event ev = { .events = want, .data.ptr = c };

	if (want == c->events)
		return;
	c->events = want;
	if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		client_kill(c);
}

static void client_flush(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				client_kill(c);
			break;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->closing && !c->draining) {
			/* Lingering close: a close with unread input would reset the connection and
			 * could destroy the error line still in flight. Discard input up to a bound. */
			if (shutdown(c->fd, SHUT_WR) < 0)
				client_kill(c);
			c->draining = true;
		}
	}
	if (!c->dead)
		client_update_events(c);
}

/* Queue one message line. A client whose queue would pass the limit is dropped: it is not
 * reading, and it must never hold up the loop or the other clients. */
static void client_send(struct client *c, json_t *msg)
{
	char *s;
	size_t n, pending;

	if (c->dead || !msg)
		return;
	s = json_dumps(msg, JSON_COMPACT);
	if (!s) {
		client_kill(c);
		return;
	}
	n = strlen(s);
	pending = c->out_len - c->out_off;
	if (pending + n + 1 > c->srv->cfg->client_queue_max) {
		log_warning("client fd %d (uid %u) does not read its replies; dropped", c->fd, (unsigned)c->uid);
		free(s);
		client_kill(c);
		return;
	}
	if (c->out_off > 0 && c->out_len + n + 1 > c->out_cap) {
		memmove(c->out, c->out + c->out_off, pending);
		c->out_len = pending;
		c->out_off = 0;
	}
	if (c->out_len + n + 1 > c->out_cap) {
		size_t cap = MAX(c->out_cap * 2, c->out_len + n + 1);
		char *nb = realloc(c->out, cap);

		if (!nb) {
			free(s);
			client_kill(c);
			return;
		}
		c->out = nb;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out[c->out_len + n] = '\n';
	c->out_len += n + 1;
	free(s);
	client_flush(c);
}

static void client_fail_and_close(struct client *c, enum ns_errcode code, const char *msg)
{
	json_t *e = ns_rpc_error(NULL, code, msg);

	client_send(c, e);
	json_decref(e);
	c->closing = true;
	client_flush(c);
}

static void client_free(struct server *s, struct client *c)
{
	ns_client_gone(&s->ns, c);
	if (c->fd >= 0) {
		(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	free(c->console_vm);
	free(c->guest_vm);
	jsonline_free(&c->in);
	free(c->out);
	free(c);
	s->nclients--;
}

static void reap_clients(struct server *s)
{
	struct client **pp = &s->clients;

	while (*pp) {
		struct client *c = *pp;

		if (c->dead) {
			*pp = c->next;
			client_free(s, c);
		} else {
			pp = &c->next;
		}
	}
}

static void console_handoff(struct client *c);
static void guest_handoff(struct client *c);

static void client_readable(struct client *c)
{
	for (;;) {
		char *line;
		size_t len;
		int r = jsonline_read(&c->in, c->fd);

		if (r == -EAGAIN)
			return;
		/* Take every whole line before looking at what the read said. */
		for (;;) {
			int n = jsonline_next(&c->in, &line, &len);
			json_t *resp;

			if (n == 0)
				break;
			if (n < 0) {
				r = -EMSGSIZE;
				break;
			}
			if (c->closing || c->dead)
				return;
			if (len == 0)
				continue;
			resp = ns_rpc_handle(&c->srv->ns, c, line, len);
			client_send(c, resp);
			json_decref(resp);
			if (c->console_vm) {
				console_handoff(c);
				return;
			}
			if (c->guest_vm) {
				guest_handoff(c);
				return;
			}
		}
		if (r == -EMSGSIZE) {
			char msg[128];

			snprintf(msg, sizeof(msg), "request line longer than %zu bytes; closing the connection",
				 c->srv->cfg->max_line);
			client_fail_and_close(c, NS_ERR_INVALID_REQUEST, msg);
			return;
		}
		if (r == 0) {
			c->closing = true;
			client_flush(c);
			return;
		}
		if (r < 0) {
			client_kill(c);
			return;
		}
		if (c->dead || c->closing)
			return;
	}
}

static bool peer_allowed(struct server *s, const struct ucred *cr)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	gid_t groups[256];
	int ng = (int)ARRAY_SIZE(groups);

	if (cr->uid == 0 || cr->uid == geteuid())
		return true;
	if (!s->have_gid)
		return false;
	if (cr->gid == s->gid)
		return true;
	if (getpwuid_r(cr->uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
		return false;
	if (getgrouplist(pwp->pw_name, pwp->pw_gid, groups, &ng) < 0)
		return false;
	for (int i = 0; i < ng; i++)
		if (groups[i] == s->gid)
			return true;
	return false;
}

static void accept_clients(struct server *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ucred cr;
		socklen_t crlen = sizeof(cr);
		struct client *c;
		struct epoll_event ev;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warning_errno(errno, "accept on %s", s->sock_path);
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = s;
		c->fd = fd;
		c->events = EPOLLIN;
		jsonline_init(&c->in, s->cfg->max_line);
		ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			jsonline_free(&c->in);
			free(c);
			continue;
		}
		c->next = s->clients;
		s->clients = c;
		s->nclients++;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
			client_kill(c);
			continue;
		}
		c->uid = cr.uid;
		if (!peer_allowed(s, &cr)) {
			char msg[160];

			log_info("refused uid %u gid %u pid %d: not root and not in group %s", (unsigned)cr.uid,
				 (unsigned)cr.gid, (int)cr.pid, s->cfg->socket_group);
			snprintf(msg, sizeof(msg), "access denied: uid %u is not root and not a member of group '%s'",
				 (unsigned)cr.uid, s->cfg->socket_group);
			client_fail_and_close(c, NS_ERR_ACCESS_DENIED, msg);
			continue;
		}
		if (s->nclients > s->cfg->max_clients) {
			char msg[128];

			snprintf(msg, sizeof(msg), "too many clients (at most %u); try again later", s->cfg->max_clients);
			client_fail_and_close(c, NS_ERR_LIMIT, msg);
		}
	}
}

/* ---- consoles: AttachConsole turns the connection into a raw console stream ------------------ */

static void console_forget_hook(void *userdata, const char *vm)
{
	struct server *s = userdata;

	console_vm_forget(s->consoles, vm);
	guests_vm_forget(s->guests, vm);
}

static int console_attach_hook(void *userdata, void *client, const char *vm, bool write, bool force,
			       struct ns_error *e)
{
	struct server *s = userdata;
	struct client *c = client;
	char err[256];
	int r = console_attach_check(s->consoles, vm, write, force, err, sizeof(err));

	if (r < 0)
		return ns_fail(e, r == -EBUSY ? NS_ERR_INVALID_STATE : r == -EUSERS ? NS_ERR_LIMIT : NS_ERR_INVALID_PARAMS,
			       "%s", err);
	free(c->console_vm);
	c->console_vm = strdup(vm);
	if (!c->console_vm)
		return ns_fail(e, NS_ERR_INTERNAL, "out of memory");
	c->console_write = write;
	c->console_force = force;
	return 0;
}

/* The reply is queued: give the socket, the unsent reply and any input already read after the
 * request line to the console multiplexer, which owns the connection from now on. */
static void console_handoff(struct client *c)
{
	struct server *s = c->srv;
	struct ucred cr = { 0 };
	socklen_t crlen = sizeof(cr);
	char who[96];
	int fd = c->fd, r;

	if (c->dead || c->closing)
		return;
	(void)getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen);
	snprintf(who, sizeof(who), "uid %u pid %d", (unsigned)cr.uid, (int)cr.pid);
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
	c->fd = -1;
	r = console_attach(s->consoles, c->console_vm, fd, c->console_write, c->console_force, c->out + c->out_off,
			   c->out_len - c->out_off, c->in.buf + c->in.taken, c->in.len - c->in.taken, who);
	if (r < 0)
		log_warning_errno(r, "console of VM %s: cannot attach %s", c->console_vm, who);
	else
		log_info("console of VM %s: %s attached (%s)", c->console_vm, who, c->console_write ? "write" : "read");
	client_kill(c);
}

/* ---- guest channels: AttachGuestChannel relays guest agent frames (parent/guest.h) ---------- */

static int guest_attach_hook(void *userdata, void *client, const char *vm, struct ns_error *e)
{
	struct server *s = userdata;
	struct client *c = client;
	char err[256];
	int r = guests_channel_check(s->guests, vm, err, sizeof(err));

	if (r < 0)
		return ns_fail(e, r == -EUSERS ? NS_ERR_LIMIT : NS_ERR_INVALID_STATE, "%s", err);
	free(c->guest_vm);
	c->guest_vm = strdup(vm);
	if (!c->guest_vm)
		return ns_fail(e, NS_ERR_INTERNAL, "out of memory");
	return 0;
}

/* As console_handoff: the socket, the unsent reply and input already read go to the manager. */
static void guest_handoff(struct client *c)
{
	struct server *s = c->srv;
	int fd = c->fd, r;

	if (c->dead || c->closing)
		return;
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
	c->fd = -1;
	r = guests_channel_attach(s->guests, c->guest_vm, fd, c->out + c->out_off, c->out_len - c->out_off,
				  c->in.buf + c->in.taken, c->in.len - c->in.taken);
	if (r < 0)
		log_warning_errno(r, "VM %s: cannot open a guest channel for uid %u", c->guest_vm, (unsigned)c->uid);
	client_kill(c);
}

static void guest_heartbeat(void *userdata, const char *vm, int old, int cur)
{
	struct server *s = userdata;

	ns_guest_heartbeat_changed(&s->ns, vm, old, cur);
}

static void notify_client(void *userdata, void *client, json_t *note)
{
	client_send(client, note);
}

static void worker_state(void *userdata, const char *vm_name, int enabled_state, int health, pid_t pid,
			 const char *reason)
{
	struct server *s = userdata;
	struct vm_entry *vm = registry_find(s->reg, vm_name);

	ns_vm_state_changed(&s->ns, vm_name, enabled_state, health, pid, reason);
	if (s->guests)
		guests_vm_state(s->guests, vm_name, vm && vm->cfg && vm->cfg->vsock.enabled, enabled_state);
}

static void worker_job_done(void *userdata, const char *job_id, int error_code, const char *desc)
{
	struct server *s = userdata;

	for (size_t i = 0; i < s->ns.njobs; i++)
		if (strcmp(s->ns.jobs[i].id, job_id) == 0 && s->ns.jobs[i].state == 4)
			ns_job_finish(&s->ns, &s->ns.jobs[i], error_code, desc);
}

static void registry_problem(const char *name, const char *problem, void *userdata)
{
	log_warning("VM entry '%s' not loaded (left on disk untouched): %s", name, problem);
}

static int parse_definition(const char *xml, size_t len, const char *schema, struct vm_config **ret,
			    char *err, size_t errlen)
{
	return domxml_parse(xml, len, schema, ret, err, errlen);
}

/* ---- setup -------------------------------------------------------------------------------- */

static int listen_socket(struct server *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *lp = getenv("LISTEN_PID"), *lf = getenv("LISTEN_FDS");
	mode_t old;
	int fd, r;

	if (lp && lf && (pid_t)atol(lp) == getpid() && atoi(lf) == 1) {
		/* Socket activation: systemd passed the listening socket as fd 3. */
		s->lfd = 3;
		(void)fcntl(3, F_SETFD, FD_CLOEXEC);
		(void)fcntl(3, F_SETFL, fcntl(3, F_GETFL) | O_NONBLOCK);
		snprintf(s->sock_path, sizeof(s->sock_path), "(socket activation)");
		return 0;
	}
	if (mkdir(s->cfg->runtime_dir, 0755) < 0 && errno != EEXIST)
		return log_error_errno(errno, "cannot create runtime directory %s", s->cfg->runtime_dir);
	if ((size_t)snprintf(s->sock_path, sizeof(s->sock_path), "%s/vmms.sock", s->cfg->runtime_dir) >= sizeof(s->sock_path))
		return log_error_errno(ENAMETOOLONG, "runtime directory %s is too long for a socket path", s->cfg->runtime_dir);
	memcpy(sa.sun_path, s->sock_path, strlen(s->sock_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(errno, "socket");
	/* A live daemon answers on the path: refuse to steal it. A dead one's socket is stale. */
	{
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			close(fd);
			return log_error_errno(EADDRINUSE, "another vmmsd is serving %s", s->sock_path);
		}
		if (probe >= 0)
			close(probe);
	}
	(void)unlink(s->sock_path);
	old = umask(0117);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		r = log_error_errno(errno, "cannot bind %s", s->sock_path);
		close(fd);
		return r;
	}
	if (s->have_gid && chown(s->sock_path, (uid_t)-1, s->gid) < 0)
		log_warning_errno(errno, "cannot give %s to group %s", s->sock_path, s->cfg->socket_group);
	if (chmod(s->sock_path, 0660) < 0)
		log_warning_errno(errno, "chmod 0660 %s", s->sock_path);
	if (listen(fd, 128) < 0) {
		r = log_error_errno(errno, "listen on %s", s->sock_path);
		close(fd);
		return r;
	}
	s->lfd = fd;
	return 0;
}

static int epoll_add(struct server *s, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int server_run(const struct vmmsd_config *cfg, int ready_fd)
{
	struct server s = { .cfg = cfg, .epfd = -1, .lfd = -1, .sigfd = -1 };
	struct domparser parser = { .parse = parse_definition, .free = vm_config_free };
	struct worker_config wc = { .runtime_dir = cfg->runtime_dir, .uid_min = cfg->worker_uid_min,
				    .uid_max = cfg->worker_uid_max, .job_done = worker_job_done };
	char worker_path[PATH_MAX];
	sigset_t mask;
	bool quit = false;
	int r;

	parser.schema = cfg->schema;
	if (cfg->socket_group[0]) {
		struct group gr, *grp = NULL;
		char buf[8192];

		if (getgrnam_r(cfg->socket_group, &gr, buf, sizeof(buf), &grp) == 0 && grp) {
			s.gid = grp->gr_gid;
			s.have_gid = true;
		} else {
			log_warning("group '%s' does not exist: only root and uid %u may use the socket",
				    cfg->socket_group, (unsigned)geteuid());
		}
	}
	r = registry_open(cfg->state_dir, &parser, registry_problem, NULL, &s.reg);
	if (r < 0)
		return log_error_errno(r, "cannot open the registry in %s", cfg->state_dir);
	r = consoles_new(cfg->state_dir, cfg->console_log_max, cfg->console_log_keep, &s.consoles);
	if (r < 0) {
		registry_free(s.reg);
		return log_error_errno(r, "console multiplexer");
	}
	if (cfg->worker_path[0]) {
		snprintf(worker_path, sizeof(worker_path), "%s", cfg->worker_path);
	} else {
		/* Default: the vmms-worker installed beside this vmmsd. */
		ssize_t n = readlink("/proc/self/exe", worker_path, sizeof(worker_path) - 16);
		char *slash;

		worker_path[n > 0 ? n : 0] = '\0';
		slash = strrchr(worker_path, '/');
		if (slash)
			snprintf(slash + 1, 16, "vmms-worker");
		else
			snprintf(worker_path, sizeof(worker_path), "vmms-worker");
	}
	if (access(worker_path, X_OK) < 0)
		log_warning("worker program %s is not there: VMs cannot start (set worker_path)", worker_path);
	wc.worker_path = worker_path;
	wc.reg = s.reg;
	wc.consoles = s.consoles;
	wc.schema = cfg->schema;
	r = workers_new(&wc, worker_state, &s, &s.workers);
	if (r < 0) {
		consoles_free(s.consoles);
		registry_free(s.reg);
		return log_error_errno(r, "worker manager");
	}
	{
		struct guest_config gc = { .runtime_dir = cfg->runtime_dir, .reg = s.reg, .workers = s.workers,
					   .heartbeat = guest_heartbeat, .job_done = worker_job_done, .userdata = &s };

		r = guests_new(&gc, &s.guests);
		if (r < 0) {
			workers_free(s.workers);
			consoles_free(s.consoles);
			registry_free(s.reg);
			return log_error_errno(r, "guest services manager");
		}
	}
	ns_init(&s.ns, s.reg, s.workers, notify_client, &s);
	s.ns.console_attach = console_attach_hook;
	s.ns.console_forget = console_forget_hook;
	s.ns.guests = s.guests;
	s.ns.guest_attach = guest_attach_hook;
	r = workers_reattach(s.workers);
	if (r > 0)
		log_info("reattached %d running worker(s)", r);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s.sigfd < 0 || s.epfd < 0) {
		r = log_error_errno(errno, "signalfd/epoll");
		goto out;
	}
	r = listen_socket(&s);
	if (r < 0)
		goto out;
	if ((r = epoll_add(&s, s.lfd, TAG_LISTEN)) < 0 || (r = epoll_add(&s, s.sigfd, TAG_SIGNAL)) < 0 ||
	    (workers_fd(s.workers) >= 0 && (r = epoll_add(&s, workers_fd(s.workers), TAG_WORKERS)) < 0) ||
	    (r = epoll_add(&s, consoles_fd(s.consoles), TAG_CONSOLES)) < 0 ||
	    (r = epoll_add(&s, guests_fd(s.guests), TAG_GUESTS)) < 0) {
		log_error_errno(r, "epoll_ctl");
		goto out;
	}
	log_info("serving %s on %s (%zu VMs defined)", NS_NAME, s.sock_path, registry_count(s.reg));
	(void)server_sd_notify("READY=1");
	if (ready_fd >= 0) {
		(void)!write(ready_fd, "R", 1);
		close(ready_fd);
	}
	while (!quit) {
		struct epoll_event evs[MAX_EVENTS];
		int n = epoll_wait(s.epfd, evs, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = log_error_errno(errno, "epoll_wait");
			break;
		}
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;

			if (tag == TAG_LISTEN) {
				accept_clients(&s);
			} else if (tag == TAG_SIGNAL) {
				struct signalfd_siginfo si;

				while (read(s.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
					quit = true;
			} else if (tag == TAG_WORKERS) {
				workers_dispatch(s.workers);
			} else if (tag == TAG_CONSOLES) {
				consoles_dispatch(s.consoles);
			} else if (tag == TAG_GUESTS) {
				guests_dispatch(s.guests);
			} else {
				struct client *c = tag;

				if (c->dead)
					continue;
				if (c->draining) {
					char junk[16384];
					ssize_t got = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);

					if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
						client_kill(c);
					else if (got > 0 && (c->drained += (size_t)got) > 4 * c->srv->cfg->max_line)
						client_kill(c);
					continue;
				}
				if (evs[i].events & EPOLLOUT)
					client_flush(c);
				if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->closing)
					client_readable(c);
				else if (!c->dead && c->closing && (evs[i].events & (EPOLLHUP | EPOLLERR)))
					client_kill(c);
			}
		}
		reap_clients(&s);
	}
	log_info("stopping");
	(void)server_sd_notify("STOPPING=1");
	r = 0;
out:
	for (struct client *c = s.clients; c; c = c->next)
		c->dead = true;
	reap_clients(&s);
	ns_fini(&s.ns);
	guests_free(s.guests);
	workers_free(s.workers);
	consoles_free(s.consoles);
	registry_free(s.reg);
	if (s.lfd >= 0) {
		close(s.lfd);
		if (s.sock_path[0] == '/')
			(void)unlink(s.sock_path);
	}
	if (s.sigfd >= 0)
		close(s.sigfd);
	if (s.epfd >= 0)
		close(s.epfd);
	return r;
}
