// SPDX-License-Identifier: GPL-2.0-only
/* vmms-guestd's loop: listening socket, clients, request dispatch, replies, power requests. */
#include "guest-additions/guestd_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#define POWER_FLUSH_MS 2000   /* at most this long to get the shutdown reply out first */

int64_t guestd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int guestd_buf_append(struct guestd_buf *b, const void *p, size_t n)
{
	if (b->head > 0 && b->head + b->len + n > b->cap) {
		memmove(b->data, b->data + b->head, b->len);
		b->head = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		unsigned char *q;

		while (cap < b->len + n)
			cap *= 2;
		q = realloc(b->data, cap);
		if (!q)
			return -ENOMEM;
		b->data = q;
		b->cap = cap;
	}
	memcpy(b->data + b->head + b->len, p, n);
	b->len += n;
	return 0;
}

void guestd_buf_consume(struct guestd_buf *b, size_t n)
{
	b->head += n;
	b->len -= n;
	if (b->len == 0) {
		b->head = 0;
		/* Give back a large buffer once it has drained, so a burst does not pin memory. */
		if (b->cap > 1024 * 1024) {
			free(b->data);
			b->data = NULL;
			b->cap = 0;
		}
	}
}

void guestd_buf_free(struct guestd_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static void client_flush(struct guestd_client *c)
{
	while (!c->dead && c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.data + c->out.head, c->out.len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = true;
			return;
		}
		guestd_buf_consume(&c->out, (size_t)n);
	}
}

int guestd_send(struct guestd_client *c, json_t *msg)
{
	char *frame;
	size_t len;
	int e;

	if (!msg) {
		c->dead = true;
		return -ENOMEM;
	}
	e = guestproto_encode(msg, &frame, &len);
	json_decref(msg);
	if (e < 0) {
		c->dead = true;
		return e;
	}
	e = guestd_buf_append(&c->out, frame, len);
	free(frame);
	if (e < 0) {
		c->dead = true;
		return e;
	}
	client_flush(c);
	return 0;
}

static json_t *id_json(int64_t id)
{
	return id < 0 ? json_null() : json_integer(id);
}

int guestd_reply(struct guestd_client *c, int64_t id, json_t *fields)
{
	json_t *m = fields ? fields : json_object();

	if (!m || json_object_set_new(m, "id", id_json(id)) < 0 ||
	    json_object_set_new(m, "type", json_string("reply")) < 0 ||
	    json_object_set_new(m, "ok", json_true()) < 0) {
		json_decref(m);
		c->dead = true;
		return -ENOMEM;
	}
	return guestd_send(c, m);
}

int guestd_reply_err(struct guestd_client *c, int64_t id, int err, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	err = err < 0 ? -err : err;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return guestd_send(c, json_pack("{s:o, s:s, s:b, s:s, s:i}", "id", id_json(id),
					"type", "reply", "ok", 0, "error", text, "errno", err ? err : EIO));
}

static int op_ping(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	struct timespec up;

	clock_gettime(CLOCK_BOOTTIME, &up);
	return guestd_reply(c, id, json_pack("{s:s, s:i, s:I, s:I}", "version", GUESTD_VERSION,
					     "protocol", GUESTPROTO_VERSION,
					     "uptime", (json_int_t)up.tv_sec,
					     "agent_uptime", (json_int_t)((guestd_now_ms() - d->start_ms) / 1000)));
}

/* The reply goes out first; the loop starts the power action once it is sent (or after
 * POWER_FLUSH_MS). */
static int op_power(struct guestd *d, struct guestd_client *c, int64_t id, bool reboot)
{
	if (d->power_pending)
		return guestd_reply_err(c, id, EALREADY, "a %s is already under way",
					d->power_pending == 2 ? "reboot" : "shutdown");
	d->power_pending = reboot ? 2 : 1;
	d->power_at_ms = guestd_now_ms() + POWER_FLUSH_MS;
	log_info("%s requested by the host", reboot ? "reboot" : "shutdown");
	return guestd_reply(c, id, NULL);
}

static int op_shutdown(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	return op_power(d, c, id, false);
}

static int op_reboot(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	return op_power(d, c, id, true);
}

struct guestd_op {
	const char *name;
	int (*fn)(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);
};

static const struct guestd_op guestd_ops[] = {
	{ .name = "ping", .fn = op_ping },
	{ .name = "shutdown", .fn = op_shutdown },
	{ .name = "reboot", .fn = op_reboot },
	{ .name = "exec", .fn = guestd_op_exec },
	{ .name = "stdin", .fn = guestd_op_stdin },
	{ .name = "signal", .fn = guestd_op_signal },
	{ .name = "kvp-get", .fn = guestd_op_kvp_get },
	{ .name = "kvp-set", .fn = guestd_op_kvp_set },
	{ .name = "kvp-list", .fn = guestd_op_kvp_list },
	{ .name = "fsfreeze", .fn = guestd_op_fsfreeze },
	{ .name = "fsthaw", .fn = guestd_op_fsthaw },
	{ .name = "time-sync", .fn = guestd_op_time_sync },
	{ .name = "file-write", .fn = guestd_op_file_write },
	{ .name = "file-data", .fn = guestd_op_file_data },
};

/* One request from the host (hostile): id and op are checked here, fields by the handler. */
static int client_dispatch(struct guestd *d, struct guestd_client *c, json_t *msg)
{
	const char *op = json_string_value(json_object_get(msg, "op"));
	uint64_t id;

	if (guestproto_msg_id(msg, &id) < 0)
		return guestd_reply_err(c, -1, EINVAL, "request without a valid \"id\" (an integer 0..2^53-1)");
	if (!op)
		return guestd_reply_err(c, (int64_t)id, EINVAL, "request without \"op\"");
	for (size_t i = 0; i < ARRAY_SIZE(guestd_ops); i++)
		if (strcmp(guestd_ops[i].name, op) == 0)
			return guestd_ops[i].fn(d, c, (int64_t)id, msg);
	return guestd_reply_err(c, (int64_t)id, EOPNOTSUPP, "unknown op \"%.64s\"", op);
}

/* Handles buffered requests while the client's queues have room. */
static void client_process(struct guestd *d, struct guestd_client *c)
{
	while (!c->dead && c->out.len < GUESTD_OUTQ_HIGH && !guestd_client_stdin_full(c)) {
		json_t *msg;
		int e = guestproto_reader_next(&c->rd, &msg);

		if (e == 0)
			return;
		if (e == -EBADMSG) {
			(void)guestd_reply_err(c, -1, EBADMSG, "malformed message: not one JSON object");
			continue;
		}
		if (e < 0) {
			/* An oversized length: the stream cannot be resynchronised. */
			(void)guestd_reply_err(c, -1, -e, "message over %u bytes; closing", GUESTPROTO_MAX_MSG);
			client_flush(c);
			c->dead = true;
			return;
		}
		if (client_dispatch(d, c, msg) < 0)
			c->dead = true;
		json_decref(msg);
	}
}

static void client_free(struct guestd *d, struct guestd_client *c)
{
	guestd_exec_kill_all(c);
	guestd_file_abort_all(c);
	if (d->freezer == c) {
		unsigned n = guestd_thaw_all(d);
		if (n)
			log_warning("client went away with %u file systems frozen: thawed", n);
	}
	close(c->fd);
	guestproto_reader_free(&c->rd);
	guestd_buf_free(&c->out);
	free(c);
}

int guestd_add_client(struct guestd *d, int fd)
{
	struct guestd_client *c;
	int fl;

	for (size_t i = 0; i < GUESTD_MAX_CLIENTS; i++) {
		if (d->clients[i])
			continue;
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return -ENOMEM;
		}
		fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		c->fd = fd;
		guestproto_reader_init(&c->rd);
		d->clients[i] = c;
		return 0;
	}
	close(fd);
	return -EMFILE;
}

unsigned guestd_client_count(const struct guestd *d)
{
	unsigned n = 0;

	for (size_t i = 0; i < GUESTD_MAX_CLIENTS; i++)
		n += d->clients[i] != NULL;
	return n;
}

int guestd_new(const struct guestd_config *cfg, struct guestd **ret)
{
	struct guestd *d = calloc(1, sizeof(*d));
	sigset_t mask;

	if (!d)
		return -ENOMEM;
	if (cfg)
		d->cfg = *cfg;
	if (!d->cfg.kvp_dir)
		d->cfg.kvp_dir = "/run/vmms/kvp";
	if (!d->cfg.mounts_file)
		d->cfg.mounts_file = "/proc/self/mounts";
	if (!d->cfg.file_max)
		d->cfg.file_max = 4 * GiB;
	d->sys = d->cfg.sys ? d->cfg.sys : &guestd_sys_real;
	d->listen_fd = -1;
	d->start_ms = guestd_now_ms();
	/* Writes to a command's stdin or a closed client must fail with EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	d->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	/* Without a signalfd the loop still reaps: it wakes at least every 100 ms then. */
	*ret = d;
	return 0;
}

void guestd_free(struct guestd *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < GUESTD_MAX_CLIENTS; i++)
		if (d->clients[i])
			client_free(d, d->clients[i]);
	(void)guestd_thaw_all(d);
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	if (d->unix_path) {
		unlink(d->unix_path);
		free(d->unix_path);
	}
	if (d->sig_fd >= 0)
		close(d->sig_fd);
	free(d);
}

int guestd_listen(struct guestd *d, const char *spec)
{
	int fd, e;

	if (d->listen_fd >= 0)
		return -EBUSY;
	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		const char *path = spec + 5;

		if (!*path || strlen(path) >= sizeof(sa.sun_path))
			return -EINVAL;
		strcpy(sa.sun_path, path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		(void)unlink(path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
			e = -errno;
			close(fd);
			return e;
		}
		d->unix_path = strdup(path);
	} else if (strncmp(spec, "vsock:", 6) == 0) {
		struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY };
		char *end;
		unsigned long port;

		errno = 0;
		port = strtoul(spec + 6, &end, 0);
		if (errno || end == spec + 6 || *end || port > UINT32_MAX)
			return -EINVAL;
		sa.svm_port = (unsigned)port;
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
			e = -errno;
			close(fd);
			return e;
		}
	} else {
		return -EINVAL;
	}
	d->listen_fd = fd;
	return 0;
}

void guestd_stop(struct guestd *d)
{
	d->stop = true;
}

static void accept_clients(struct guestd *d)
{
	for (;;) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int e;

		if (fd < 0)
			return;
		e = guestd_add_client(d, fd);
		if (e < 0)
			log_warning_errno(e, "connection refused");
	}
}

enum tag_kind { TAG_LISTEN, TAG_SIGNAL, TAG_CLIENT, TAG_EXEC };

struct poll_tag {
	enum tag_kind kind;
	struct guestd_client *c;
	struct guestd_exec *x;
};

#define POLL_MAX (2 + GUESTD_MAX_CLIENTS * (1 + 3 * GUESTD_MAX_EXECS))

static void add_poll(struct pollfd *p, struct poll_tag *t, size_t *n, int fd, short ev,
		     enum tag_kind kind, struct guestd_client *c, struct guestd_exec *x)
{
	if (fd < 0 || !ev)
		return;
	p[*n] = (struct pollfd){ .fd = fd, .events = ev };
	t[*n] = (struct poll_tag){ .kind = kind, .c = c, .x = x };
	(*n)++;
}

static void power_tick(struct guestd *d, int64_t now, int64_t *next)
{
	bool flushed = true;
	int e;

	if (!d->power_pending)
		return;
	for (size_t i = 0; i < GUESTD_MAX_CLIENTS; i++)
		if (d->clients[i] && !d->clients[i]->dead && d->clients[i]->out.len)
			flushed = false;
	if (!flushed && now < d->power_at_ms) {
		*next = MIN(*next, d->power_at_ms);
		return;
	}
	e = d->sys->power(d->cfg.sys_ctx, d->power_pending == 2);
	if (e < 0)
		log_error_errno(e, "%s failed", d->power_pending == 2 ? "reboot" : "shutdown");
	d->power_pending = 0;
}

int guestd_run_once(struct guestd *d, int max_wait_ms)
{
	struct pollfd pfd[POLL_MAX];
	struct poll_tag tag[POLL_MAX];
	int64_t now = guestd_now_ms(), next = INT64_MAX;
	size_t n = 0;
	int wait, r;
	bool children = false;

	/* Deadlines (timeouts, thaw, power) and finished commands first. */
	for (size_t i = 0; i < GUESTD_MAX_CLIENTS; i++) {
		struct guestd_client *c = d->clients[i];
		if (!c)
			continue;
		client_process(d, c);
		guestd_exec_tick(c, now, &next);
		for (size_t k = 0; k < GUESTD_MAX_EXECS; k++)
			children |= c->execs[k] && !c->execs[k]->reaped;
	}
	if (d->nfrozen && d->thaw_at_ms) {
		if (now >= d->thaw_at_ms) {
			log_warning("file systems frozen past their timeout: thawing %u", guestd_thaw_all(d));
		} else {
			next = MIN(next, d->thaw_at_ms);
		}
	}
	power_tick(d, now, &next);

	add_poll(pfd, tag, &n, d->listen_fd, POLLIN, TAG_LISTEN, NULL, NULL);
	add_poll(pfd, tag, &n, d->sig_fd, POLLIN, TAG_SIGNAL, NULL, NULL);
	for (size_t i = 0; i < GUESTD_MAX_CLIENTS; i++) {
		struct guestd_client *c = d->clients[i];
		bool room;

		if (!c || c->dead)
			continue;
		room = c->out.len < GUESTD_OUTQ_HIGH;
		add_poll(pfd, tag, &n, c->fd,
			 (short)((room && !guestd_client_stdin_full(c) ? POLLIN : 0) |
				 (c->out.len ? POLLOUT : 0)), TAG_CLIENT, c, NULL);
		for (size_t k = 0; k < GUESTD_MAX_EXECS; k++) {
			struct guestd_exec *x = c->execs[k];
			if (!x)
				continue;
			/* Backpressure: a command's output is read only while its client's queue
			 * has room, so a slow host stalls the command, not our memory. */
			if (room) {
				add_poll(pfd, tag, &n, x->out_fd, POLLIN, TAG_EXEC, c, x);
				add_poll(pfd, tag, &n, x->err_fd, POLLIN, TAG_EXEC, c, x);
			}
			if (x->in.len)
				add_poll(pfd, tag, &n, x->in_fd, POLLOUT, TAG_EXEC, c, x);
		}
	}

	wait = max_wait_ms;
	if (next != INT64_MAX) {
		int64_t left = MAX(next - now, (int64_t)0);
		if (wait < 0 || left < wait)
			wait = (int)MIN(left, (int64_t)INT32_MAX);
	}
	if (children && (d->sig_fd < 0 || wait < 0 || wait > 1000))
		wait = d->sig_fd < 0 ? 100 : 1000;
	r = poll(pfd, n, wait);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;

	for (size_t i = 0; i < n; i++) {
		short rev = pfd[i].revents;

		if (!rev)
			continue;
		switch (tag[i].kind) {
		case TAG_LISTEN:
			accept_clients(d);
			break;
		case TAG_SIGNAL: {
			struct signalfd_siginfo si;
			while (read(d->sig_fd, &si, sizeof(si)) == sizeof(si))
				;
			break;
		}
		case TAG_CLIENT: {
			struct guestd_client *c = tag[i].c;
			if (rev & POLLOUT)
				client_flush(c);
			if (rev & (POLLIN | POLLHUP | POLLERR)) {
				int e = guestproto_reader_fill(&c->rd, c->fd);
				/* End of stream (or an error) is the host going away. */
				if (e == 0 || (e < 0 && e != -EAGAIN && e != -ENOBUFS))
					c->dead = true;
			}
			break;
		}
		case TAG_EXEC:
			if (!tag[i].c->dead)
				guestd_exec_io(tag[i].c, tag[i].x, pfd[i].fd, rev);
			break;
		}
	}

	now = guestd_now_ms();
	for (size_t i = 0; i < GUESTD_MAX_CLIENTS; i++) {
		struct guestd_client *c = d->clients[i];
		int64_t ignored = INT64_MAX;

		if (!c)
			continue;
		client_process(d, c);
		guestd_exec_tick(c, now, &ignored);
		if (c->dead) {
			client_free(d, c);
			d->clients[i] = NULL;
		}
	}
	return 0;
}

int guestd_run(struct guestd *d)
{
	while (!d->stop) {
		int e = guestd_run_once(d, -1);
		if (e < 0)
			return e;
	}
	return 0;
}
