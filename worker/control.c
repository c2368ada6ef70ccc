// SPDX-License-Identifier: GPL-2.0-only
/* Control channel, worker side: accept, peer check, non-blocking framed requests, events. */
#include "worker/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/jsonframe.h"
#include "lib/log.h"
#include "lib/util.h"

/* One request being read: header, then body, with the descriptors that came with it. */
struct ctl_frame {
	unsigned char hdr[4];
	size_t hdr_have;
	char *body;
	size_t body_len, body_have;
	int fds[CTL_MAX_FDS];
	size_t nfds;
	bool fds_overflow;
};

struct ctl {
	int listen_fd, conn_fd, epfd;
	uint64_t tag_listen, tag_conn;
	bool listen_watched;
	const struct ctl_ops *ops;
	void *opaque;
	struct ctl_frame fr;
	struct ctl_fds fds;
	bool fds_frozen;
	bool in_request;          /* events wait until the reply is sent */
	json_t *queue[CTL_EVENT_QUEUE];
	size_t q_head, q_len;
	uint64_t events_dropped;
};

static const char *const cmd_names[] = {
	[CTL_CMD_CONFIGURE] = "configure", [CTL_CMD_START] = "start", [CTL_CMD_PAUSE] = "pause",
	[CTL_CMD_RESUME] = "resume", [CTL_CMD_RESET] = "reset", [CTL_CMD_STOP] = "stop",
	[CTL_CMD_SHUTDOWN] = "shutdown", [CTL_CMD_QUERY] = "query",
};

int ctl_cmd_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(cmd_names); i++)
		if (strcmp(s, cmd_names[i]) == 0)
			return (int)i;
	return -1;
}

bool ctl_fd_name_valid(const char *name)
{
	static const char *const fixed[] = { "kvm", "kernel", "initrd", "serial", "console", "vsock", CTL_VSOCK_CONNECTOR };
	size_t n;

	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		if (strcmp(name, fixed[i]) == 0)
			return true;
	if (strncmp(name, "disk:", 5) != 0)
		return false;
	n = strlen(name + 5);
	if (n == 0 || n > CTL_TARGET_MAX)
		return false;
	for (const char *p = name + 5; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

static void frame_reset(struct ctl_frame *fr)
{
	close_fds(fr->fds, fr->nfds);
	free(fr->body);
	*fr = (struct ctl_frame){};
}

static void fds_init(struct ctl_fds *f)
{
	*f = (struct ctl_fds){ .kvm = -1, .kernel = -1, .initrd = -1, .serial = -1, .console = -1, .vsock = -1,
			     .vsock_connector = -1 };
	for (unsigned i = 0; i < VM_MAX_DISKS; i++)
		f->disks[i].fd = -1;
}

static void fds_close(struct ctl_fds *f)
{
	int *fixed[] = { &f->kvm, &f->kernel, &f->initrd, &f->serial, &f->console, &f->vsock, &f->vsock_connector };

	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		if (*fixed[i] >= 0)
			close(*fixed[i]);
	for (unsigned i = 0; i < f->nr_disks; i++)
		if (f->disks[i].fd >= 0)
			close(f->disks[i].fd);
	fds_init(f);
}

int ctl_new(int listen_fd, const struct ctl_ops *ops, void *opaque, struct ctl **ret)
{
	struct ctl *c;
	int type = 0, acc = 0;
	socklen_t len = sizeof(type);

	/* The descriptor comes from whoever started us: it must be a listening stream socket. */
	if (getsockopt(listen_fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	len = sizeof(acc);
	if (type != SOCK_STREAM || getsockopt(listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc)
		return -ENOTSOCK;
	/* A connection's SO_PEERCRED is the credentials of the last listen() on the socket: that
	 * was vmmsd, which made it. Listening again (allowed on a listening socket) makes every
	 * later connection name this worker, which a reattaching vmmsd verifies. A connection
	 * already waiting in the backlog keeps the old credentials. */
	if (listen(listen_fd, CTL_LISTEN_BACKLOG) < 0)
		return -errno;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->listen_fd = listen_fd;
	c->conn_fd = -1;
	c->epfd = -1;
	c->ops = ops;
	c->opaque = opaque;
	fds_init(&c->fds);
	(void)fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
	*ret = c;
	return 0;
}

void ctl_free(struct ctl *c)
{
	if (!c)
		return;
	if (c->conn_fd >= 0)
		close(c->conn_fd);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	frame_reset(&c->fr);
	fds_close(&c->fds);
	for (size_t i = 0; i < c->q_len; i++)
		json_decref(c->queue[(c->q_head + i) % CTL_EVENT_QUEUE]);
	free(c);
}

static void watch(struct ctl *c, int fd, uint64_t tag, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	if (c->epfd < 0 || fd < 0)
		return;
	(void)epoll_ctl(c->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev);
}

int ctl_attach(struct ctl *c, int epfd, uint64_t tag_listen, uint64_t tag_conn)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag_listen };

	c->epfd = epfd;
	c->tag_listen = tag_listen;
	c->tag_conn = tag_conn;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->listen_fd, &ev) < 0)
		return -errno;
	c->listen_watched = true;
	return 0;
}

struct ctl_fds *ctl_fds(struct ctl *c)
{
	return &c->fds;
}

void ctl_fds_freeze(struct ctl *c)
{
	c->fds_frozen = true;
}

bool ctl_connected(const struct ctl *c)
{
	return c->conn_fd >= 0;
}

size_t ctl_pending(const struct ctl *c)
{
	return c->q_len;
}

/* ---- sending ------------------------------------------------------------------------------ */

static void conn_close(struct ctl *c, const char *why)
{
	if (c->conn_fd < 0)
		return;
	log_info("control: controller disconnected (%s); the VM keeps running", why);
	watch(c, c->conn_fd, c->tag_conn, false);
	close(c->conn_fd);
	c->conn_fd = -1;
	frame_reset(&c->fr);
	/* Serve the next controller (a restarted vmmsd reattaching). */
	if (!c->listen_watched) {
		watch(c, c->listen_fd, c->tag_listen, true);
		c->listen_watched = true;
	}
}

static int send_msg(struct ctl *c, json_t *msg)
{
	int r;

	if (c->conn_fd < 0)
		return -ENOTCONN;
	r = jsonframe_send(c->conn_fd, msg, NULL, 0);
	if (r < 0)
		conn_close(c, r == -EAGAIN ? "it stopped reading" : strerror(-r));
	return r;
}

static void queue_push(struct ctl *c, json_t *ev)
{
	if (c->q_len == CTL_EVENT_QUEUE) {
		json_decref(c->queue[c->q_head]);
		c->q_head = (c->q_head + 1) % CTL_EVENT_QUEUE;
		c->q_len--;
		c->events_dropped++;
	}
	c->queue[(c->q_head + c->q_len) % CTL_EVENT_QUEUE] = ev;
	c->q_len++;
}

/* Delivers queued events in order while a controller is connected. */
static void queue_flush(struct ctl *c)
{
	while (c->q_len && c->conn_fd >= 0) {
		json_t *ev = c->queue[c->q_head];

		if (send_msg(c, ev) < 0)
			return; /* kept for the next controller */
		json_decref(ev);
		c->q_head = (c->q_head + 1) % CTL_EVENT_QUEUE;
		c->q_len--;
	}
}

void ctl_emit(struct ctl *c, json_t *event)
{
	if (!event)
		return;
	queue_push(c, event);
	if (!c->in_request)
		queue_flush(c);
}

/* ---- requests ----------------------------------------------------------------------------- */

static int fail(struct ctl_error *err, const char *name, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct ctl_error *err, const char *name, int r, const char *fmt, ...)
{
	va_list ap;

	err->name = name;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return r;
}

static int *fd_slot(struct ctl_fds *f, const char *name, bool create)
{
	if (strcmp(name, "kvm") == 0)
		return &f->kvm;
	if (strcmp(name, "kernel") == 0)
		return &f->kernel;
	if (strcmp(name, "initrd") == 0)
		return &f->initrd;
	if (strcmp(name, "serial") == 0)
		return &f->serial;
	if (strcmp(name, "console") == 0)
		return &f->console;
	if (strcmp(name, "vsock") == 0)
		return &f->vsock;
	if (strcmp(name, CTL_VSOCK_CONNECTOR) == 0)
		return &f->vsock_connector;
	for (unsigned i = 0; i < f->nr_disks; i++)
		if (strcmp(f->disks[i].target, name + 5) == 0)
			return &f->disks[i].fd;
	if (!create || f->nr_disks == VM_MAX_DISKS)
		return NULL;
	snprintf(f->disks[f->nr_disks].target, sizeof(f->disks[0].target), "%s", name + 5);
	f->disks[f->nr_disks].fd = -1;
	return &f->disks[f->nr_disks++].fd;
}

static int sock_type(int fd)
{
	int type = -1;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ? -1 : type;
}

/* What kind of file each name must be: the parent is trusted to open the right thing, but a
 * mix-up should be an error naming the descriptor, not a strange failure later. */
static int fd_check_type(const char *name, int fd, struct ctl_error *err)
{
	struct stat st;
	bool ok;

	if (fstat(fd, &st) < 0)
		return fail(err, "InvalidParameter", -errno, "descriptor '%s': cannot stat it: %s", name,
			    strerror(errno));
	if (strcmp(name, "kvm") == 0)
		ok = S_ISCHR(st.st_mode);
	else if (strcmp(name, "kernel") == 0 || strcmp(name, "initrd") == 0)
		ok = S_ISREG(st.st_mode);
	else if (strcmp(name, "serial") == 0 || strcmp(name, "console") == 0 || strcmp(name, "vsock") == 0)
		ok = S_ISSOCK(st.st_mode);
	else if (strcmp(name, CTL_VSOCK_CONNECTOR) == 0)
		ok = S_ISSOCK(st.st_mode) && sock_type(fd) == SOCK_SEQPACKET;
	else
		ok = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
	if (!ok)
		return fail(err, "InvalidParameter", -EINVAL, "descriptor '%s': wrong kind of file (%s)", name,
			    strcmp(name, "kvm") == 0 ? "want /dev/kvm" :
			    strcmp(name, "serial") == 0 || strcmp(name, "console") == 0 ? "want a stream socket" :
			    strcmp(name, "vsock") == 0 ? "want a listening Unix socket" :
			    strcmp(name, CTL_VSOCK_CONNECTOR) == 0 ? "want a SOCK_SEQPACKET socket" :
			    strncmp(name, "disk:", 5) == 0 ? "want a regular file or block device" :
			    "want a regular file");
	return 0;
}

static bool replaceable(const char *name)
{
	return strcmp(name, "serial") == 0 || strcmp(name, "console") == 0 || strcmp(name, CTL_VSOCK_CONNECTOR) == 0;
}

/* "fds" after configure: only new streams for "serial" and "console" (a restarted vmmsd's
 * console) and a new "vsock-connector" (its vsock connector), each name at most once,
 * handed to the worker all together or not at all. */
static int cmd_fds_replace(struct ctl *c, json_t *names, struct ctl_error *err)
{
	struct ctl_frame *fr = &c->fr;
	const char *list[CTL_MAX_FDS];
	size_t n = json_array_size(names);
	int r;

	if (!c->ops->replace_fds)
		return fail(err, "InvalidState", -EBUSY, "the VM is configured; descriptors can no longer change");
	for (size_t i = 0; i < n; i++) {
		const char *name = json_string_value(json_array_get(names, i));

		if (!name || !ctl_fd_name_valid(name))
			return fail(err, "InvalidParameter", -EINVAL, "name %zu: not a descriptor name", i);
		if (!replaceable(name))
			return fail(err, "InvalidState", -EBUSY,
				    "the VM is configured; only 'serial', 'console' and '" CTL_VSOCK_CONNECTOR "' can be replaced");
		for (size_t j = 0; j < i; j++)
			if (strcmp(name, list[j]) == 0)
				return fail(err, "InvalidParameter", -EEXIST, "descriptor '%s' named twice", name);
		r = fd_check_type(name, fr->fds[i], err);
		if (r < 0)
			return r;
		list[i] = name;
	}
	r = c->ops->replace_fds(c->opaque, list, fr->fds, n, err);
	if (r < 0)
		return r;
	/* Whatever the handler took is -1 now; frame_reset closes nothing it owns. */
	return 0;
}

/* "fds": all or nothing; on success the descriptors move into c->fds. */
static int cmd_fds(struct ctl *c, json_t *req, struct ctl_error *err)
{
	struct ctl_frame *fr = &c->fr;
	json_t *names = json_object_get(req, "names");
	size_t n;
	int r;

	if (!json_is_array(names))
		return fail(err, "InvalidParameter", -EINVAL, "'names' must be an array of descriptor names");
	n = json_array_size(names);
	if (n != fr->nfds)
		return fail(err, "InvalidParameter", -EINVAL, "%zu names for %zu descriptors", n, fr->nfds);
	if (n == 0)
		return fail(err, "InvalidParameter", -EINVAL, "no descriptors attached");
	if (c->fds_frozen)
		return cmd_fds_replace(c, names, err);
	for (size_t i = 0; i < n; i++) {
		const char *name = json_string_value(json_array_get(names, i));
		int *slot;

		if (!name || !ctl_fd_name_valid(name))
			return fail(err, "InvalidParameter", -EINVAL,
				    "name %zu: not a descriptor name (kvm, kernel, initrd, serial, console, vsock, vsock-connector, disk:<target>)", i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(name, json_string_value(json_array_get(names, j))) == 0)
				return fail(err, "InvalidParameter", -EEXIST, "descriptor '%s' named twice", name);
		slot = fd_slot(&c->fds, name, false);
		if (slot && *slot >= 0)
			return fail(err, "InvalidParameter", -EEXIST, "descriptor '%s' was already given", name);
		if (!slot && strncmp(name, "disk:", 5) == 0 && c->fds.nr_disks == VM_MAX_DISKS)
			return fail(err, "InvalidParameter", -E2BIG, "more than %d disks", VM_MAX_DISKS);
		r = fd_check_type(name, fr->fds[i], err);
		if (r < 0)
			return r;
	}
	/* Count the new disks first so that all of them fit before anything moves. */
	{
		unsigned new_disks = 0;

		for (size_t i = 0; i < n; i++) {
			const char *name = json_string_value(json_array_get(names, i));

			if (strncmp(name, "disk:", 5) == 0 && !fd_slot(&c->fds, name, false))
				new_disks++;
		}
		if (c->fds.nr_disks + new_disks > VM_MAX_DISKS)
			return fail(err, "InvalidParameter", -E2BIG, "more than %d disks", VM_MAX_DISKS);
	}
	for (size_t i = 0; i < n; i++) {
		int *slot = fd_slot(&c->fds, json_string_value(json_array_get(names, i)), true);

		*slot = fr->fds[i];
		fr->fds[i] = -1;
	}
	fr->nfds = 0;
	return 0;
}

static json_t *error_reply(json_t *id, const struct ctl_error *err)
{
	return json_pack("{s:O?,s:b,s:{s:s,s:s}}", "id", id, "ok", 0, "error", "name",
			 err->name ? err->name : "Failed", "message", err->message);
}

/* A complete frame: decode, check, run, reply. The body came from another process. */
static void serve_frame(struct ctl *c)
{
	struct ctl_frame *fr = &c->fr;
	struct ctl_error err = { .name = NULL };
	json_t *req = NULL, *id = NULL, *reply = NULL;
	const char *cmd_name;
	int cmd, r = -EINVAL;

	c->in_request = true;
	req = json_loadb(fr->body ? fr->body : "", fr->body_len, JSON_REJECT_DUPLICATES, NULL);
	if (!req || !json_is_object(req)) {
		fail(&err, "InvalidParameter", -EBADMSG, "a request is one JSON object");
		goto reply;
	}
	id = json_object_get(req, "id");
	if (!json_is_integer(id) || json_integer_value(id) < 0) {
		id = NULL;
		fail(&err, "InvalidParameter", -EINVAL, "'id' missing or not a non-negative integer");
		goto reply;
	}
	cmd_name = json_string_value(json_object_get(req, "cmd"));
	if (!cmd_name) {
		fail(&err, "InvalidParameter", -EINVAL, "'cmd' missing or not a string");
		goto reply;
	}
	if (fr->fds_overflow) {
		fail(&err, "InvalidParameter", -E2BIG, "more than %d descriptors in one message", CTL_MAX_FDS);
		goto reply;
	}
	if (strcmp(cmd_name, "fds") == 0) {
		r = cmd_fds(c, req, &err);
		goto reply;
	}
	if (fr->nfds) {
		fail(&err, "InvalidParameter", -EINVAL, "descriptors attached to '%.32s'; only 'fds' carries them",
		     cmd_name);
		goto reply;
	}
	cmd = ctl_cmd_parse(cmd_name);
	if (cmd < 0) {
		fail(&err, "NotSupported", -EOPNOTSUPP, "unknown command '%.32s'", cmd_name);
		goto reply;
	}
	reply = json_object();
	if (!reply) {
		fail(&err, "Failed", -ENOMEM, "out of memory");
		goto reply;
	}
	r = c->ops->command(c->opaque, (enum ctl_cmd)cmd, req, reply, &err);
reply:
	if (r < 0) {
		json_decref(reply);
		reply = error_reply(id, &err);
	} else {
		if (!reply)
			reply = json_object();
		if (reply) {
			(void)json_object_set(reply, "id", id);
			(void)json_object_set_new(reply, "ok", json_true());
			(void)json_object_set_new(reply, "state", json_string(c->ops->state(c->opaque)));
		}
	}
	if (reply)
		(void)send_msg(c, reply);
	json_decref(reply);
	json_decref(req);
	frame_reset(fr);
	c->in_request = false;
	queue_flush(c);
}

/* Takes the SCM_RIGHTS descriptors of one recvmsg into the frame being read. */
static void take_fds(struct ctl_frame *fr, struct msghdr *mh)
{
	if (mh->msg_flags & MSG_CTRUNC)
		fr->fds_overflow = true; /* the kernel dropped what did not fit */
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (fr->nfds < CTL_MAX_FDS) {
				fr->fds[fr->nfds++] = fd;
			} else {
				close(fd);
				fr->fds_overflow = true;
			}
		}
	}
}

/*
 * Reads what is available of the current frame, never past its end (descriptors belong to
 * the frame whose bytes carried them, so no read may span two frames). 1 when the frame is
 * complete, 0 when more is needed later, -errno when the connection must be closed.
 */
static int read_frame(struct ctl *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct ctl_frame *fr = &c->fr;

	for (;;) {
		struct iovec iov;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
		ssize_t n;

		if (fr->hdr_have < sizeof(fr->hdr)) {
			iov = (struct iovec){ fr->hdr + fr->hdr_have, sizeof(fr->hdr) - fr->hdr_have };
		} else {
			if (fr->body_have == fr->body_len)
				return 1;
			iov = (struct iovec){ fr->body + fr->body_have, fr->body_len - fr->body_have };
		}
		n = recvmsg(c->conn_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		take_fds(fr, &mh);
		if (n == 0)
			return fr->hdr_have || fr->nfds ? -EPROTO : -ECONNRESET;
		if (fr->hdr_have < sizeof(fr->hdr)) {
			fr->hdr_have += (size_t)n;
			if (fr->hdr_have == sizeof(fr->hdr)) {
				uint32_t len = (uint32_t)fr->hdr[0] << 24 | (uint32_t)fr->hdr[1] << 16 |
					       (uint32_t)fr->hdr[2] << 8 | fr->hdr[3];

				/* The announced length is hostile: bound it before allocating. */
				if (len > CTL_MAX_MESSAGE)
					return -EMSGSIZE;
				fr->body_len = len;
				fr->body = malloc(len ? len : 1);
				if (!fr->body)
					return -ENOMEM;
			}
		} else {
			fr->body_have += (size_t)n;
		}
	}
}

static void serve_conn(struct ctl *c)
{
	for (unsigned i = 0; i < CTL_FRAMES_PER_WAKE && c->conn_fd >= 0; i++) {
		int r = read_frame(c);

		if (r == 0)
			return;
		if (r < 0) {
			if (r == -EMSGSIZE) {
				/* The stream cannot be resynchronised: say why, then hang up. */
				struct ctl_error err;
				json_t *rep;

				fail(&err, "InvalidParameter", r, "frame longer than %u bytes", CTL_MAX_MESSAGE);
				rep = error_reply(NULL, &err);
				if (rep)
					(void)send_msg(c, rep);
				json_decref(rep);
			}
			conn_close(c, r == -ECONNRESET ? "end of stream" : strerror(-r));
			return;
		}
		serve_frame(c);
	}
}

static bool peer_allowed(int fd, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0)
		return false;
	/* vmmsd runs as root; a worker run by hand (tests) is controlled by its own user. */
	return cred->uid == 0 || cred->uid == getuid() || cred->uid == geteuid();
}

static void accept_conn(struct ctl *c)
{
	struct timeval tv = { .tv_sec = CTL_SEND_TIMEOUT_S };
	struct ucred cred = { .pid = 0 };
	int fd;

	if (c->conn_fd >= 0)
		return;
	fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!peer_allowed(fd, &cred)) {
		json_t *rep = json_pack("{s:n,s:b,s:{s:s,s:s}}", "id", "ok", 0, "error", "name", "AccessDenied",
					"message", "this uid may not control the worker");

		log_warning("control: refused a controller with uid %u (pid %d)", (unsigned)cred.uid, (int)cred.pid);
		if (rep)
			(void)jsonframe_send(fd, rep, NULL, 0);
		json_decref(rep);
		close(fd);
		return;
	}
	log_info("control: controller connected (pid %d, uid %u)", (int)cred.pid, (unsigned)cred.uid);
	c->conn_fd = fd;
	/* One controller at a time: the next waits in the backlog until this one leaves. */
	if (c->listen_watched) {
		watch(c, c->listen_fd, c->tag_listen, false);
		c->listen_watched = false;
	}
	watch(c, fd, c->tag_conn, true);
	queue_flush(c);
}

void ctl_handle(struct ctl *c, uint64_t tag)
{
	if (tag == c->tag_listen)
		accept_conn(c);
	else if (tag == c->tag_conn && c->conn_fd >= 0)
		serve_conn(c);
}
