// SPDX-License-Identifier: GPL-2.0-only
/* Console multiplexer: serial output to a rotated log and to attached clients, input from one writer. */
#include "parent/console.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "parent/registry.h"

#define CON_READ_CHUNK 16384
#define CON_READS_PER_DISPATCH 8      /* fairness: one chatty VM cannot starve the loop */
#define CON_MAX_EVENTS 64

enum con_kind { CON_KIND_VM = 1, CON_KIND_CLIENT };

struct con_vm;

struct con_client {
	enum con_kind kind;           /* first: epoll data.ptr points here */
	struct con_vm *vm;
	int fd;
	bool writer;
	bool eof;                     /* the client half-closed: no more input */
	bool closing;                 /* close once out is flushed */
	bool dead;
	uint32_t events;
	char who[96];
	char *out;
	size_t out_len, out_off, out_cap;
	struct con_client *next;
};

struct con_vm {
	enum con_kind kind;           /* first: epoll data.ptr points here */
	struct consoles *cs;
	char name[VM_NAME_MAX + 1];
	int fd;                       /* parent's end of the serial socketpair, -1 when stopped */
	uint32_t events;
	int log_fd;                   /* console.log, -1 until first written or when unavailable */
	uint64_t log_size;
	char replay[CONSOLE_REPLAY_BYTES];
	size_t replay_len;
	char *in;                     /* input queued for the worker */
	size_t in_len;
	struct con_client *clients;
	unsigned nclients;
	struct con_client *writer;
	struct con_vm *next;
};

struct consoles {
	int epfd;
	char root[PATH_MAX];
	size_t log_max;
	unsigned log_keep;
	struct con_vm *vms;
};

/* ---- the log ------------------------------------------------------------------------------- */

static int vm_dir_open(struct consoles *cs, const char *name)
{
	char path[PATH_MAX + VM_NAME_MAX + 8];

	if ((size_t)snprintf(path, sizeof(path), "%s/vms/%s", cs->root, name) >= sizeof(path))
		return -ENAMETOOLONG;
	/* The registry owns the directory: it exists exactly while the VM is defined. Creating it
	 * here would make a later DefineSystem of that name fail. */
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	return fd < 0 ? -errno : fd;
}

static int log_open(struct con_vm *v)
{
	int dfd = vm_dir_open(v->cs, v->name), fd;
	struct stat st;

	if (dfd < 0)
		return dfd;
	fd = openat(dfd, "console.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
	if (fd < 0) {
		int r = -errno;

		close(dfd);
		return r;
	}
	close(dfd);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	v->log_fd = fd;
	v->log_size = (uint64_t)st.st_size;
	return 0;
}

/* console.log -> .1 -> .2 ... -> .keep (the oldest falls off); keep 0: start the log afresh. */
static int log_rotate(struct con_vm *v)
{
	struct consoles *cs = v->cs;
	int dfd, r = 0;

	if (v->log_fd >= 0) {
		close(v->log_fd);
		v->log_fd = -1;
	}
	dfd = vm_dir_open(cs, v->name);
	if (dfd < 0)
		return dfd;
	if (cs->log_keep == 0) {
		if (unlinkat(dfd, "console.log", 0) < 0 && errno != ENOENT)
			r = -errno;
	} else {
		char from[32], to[32];

		for (unsigned i = cs->log_keep; i > 1; i--) {
			snprintf(from, sizeof(from), "console.log.%u", i - 1);
			snprintf(to, sizeof(to), "console.log.%u", i);
			if (renameat(dfd, from, dfd, to) < 0 && errno != ENOENT)
				r = -errno;
		}
		if (renameat(dfd, "console.log", dfd, "console.log.1") < 0 && errno != ENOENT)
			r = -errno;
	}
	close(dfd);
	if (r < 0)
		return r;
	return log_open(v);
}

/* Append guest output; every file stays at most log_max bytes. Failures lose log data only. */
static void log_append(struct con_vm *v, const char *data, size_t len)
{
	size_t max = v->cs->log_max;

	if (v->log_fd < 0 && log_open(v) < 0)
		return;
	while (len > 0) {
		size_t room = v->log_size >= max ? 0 : (size_t)(max - v->log_size), n;
		ssize_t w;

		if (room == 0) {
			if (log_rotate(v) < 0)
				return;
			continue;
		}
		n = MIN(room, len);
		w = write(v->log_fd, data, n);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			log_debug("console log of VM %s: %s", v->name, w < 0 ? strerror(errno) : "short write");
			return;
		}
		v->log_size += (uint64_t)w;
		data += w;
		len -= (size_t)w;
	}
}

static void replay_append(struct con_vm *v, const char *data, size_t len)
{
	if (len >= sizeof(v->replay)) {
		memcpy(v->replay, data + len - sizeof(v->replay), sizeof(v->replay));
		v->replay_len = sizeof(v->replay);
		return;
	}
	if (v->replay_len + len > sizeof(v->replay)) {
		size_t drop = v->replay_len + len - sizeof(v->replay);

		memmove(v->replay, v->replay + drop, v->replay_len - drop);
		v->replay_len -= drop;
	}
	memcpy(v->replay + v->replay_len, data, len);
	v->replay_len += len;
}

/* Seed the replay buffer from the end of the log files, so a restarted vmmsd replays too. */
static void replay_load(struct con_vm *v)
{
	static const char *const files[] = { "console.log.1", "console.log" };
	int dfd = vm_dir_open(v->cs, v->name);

	if (dfd < 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char buf[CONSOLE_REPLAY_BYTES];
		int fd = openat(dfd, files[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		struct stat st;
		off_t off;
		ssize_t n;

		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			off = st.st_size > (off_t)sizeof(buf) ? st.st_size - (off_t)sizeof(buf) : 0;
			n = pread(fd, buf, sizeof(buf), off);
			if (n > 0)
				replay_append(v, buf, (size_t)n);
		}
		close(fd);
	}
	close(dfd);
}

/* ---- epoll helpers -------------------------------------------------------------------------- */

static int ep_set(struct consoles *cs, int fd, uint32_t *cur, uint32_t want, void *ptr)
{
	struct epoll_event ev = { .events = want, .data.ptr = ptr };

	if (*cur == want)
		return 0;
	if (epoll_ctl(cs->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	*cur = want;
	return 0;
}

/* ---- clients ------------------------------------------------------------------------------- */

static void client_update(struct con_client *cl)
{
	uint32_t want = 0;

	if (cl->dead)
		return;
	if (!cl->eof && !cl->closing) {
		/* The writer's input waits while the worker has not taken what is queued. */
		if (!(cl->writer && cl->vm->in_len >= CONSOLE_INPUT_QUEUE_MAX))
			want |= EPOLLIN;
	}
	if (cl->out_len > cl->out_off)
		want |= EPOLLOUT;
	if (ep_set(cl->vm->cs, cl->fd, &cl->events, want, cl) < 0)
		cl->dead = true;
}

static void client_flush(struct con_client *cl)
{
	while (!cl->dead && cl->out_off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				cl->dead = true;
			break;
		}
		cl->out_off += (size_t)n;
	}
	if (cl->out_off == cl->out_len) {
		cl->out_off = cl->out_len = 0;
		if (cl->closing)
			cl->dead = true;
	}
	client_update(cl);
}

/* Queue bytes for a client without ever blocking: a reader that falls further behind than
 * CONSOLE_READER_QUEUE_MAX is dropped, so it cannot hold up the VM or the other readers. */
static void client_queue(struct con_client *cl, const void *data, size_t len)
{
	size_t pending;

	if (cl->dead || len == 0)
		return;
	pending = cl->out_len - cl->out_off;
	if (pending + len > CONSOLE_READER_QUEUE_MAX) {
		log_warning("console of VM %s: client %s is %zu bytes behind; disconnected", cl->vm->name,
			    cl->who, pending + len);
		cl->dead = true;
		return;
	}
	if (cl->out_off > 0 && cl->out_len + len > cl->out_cap) {
		memmove(cl->out, cl->out + cl->out_off, pending);
		cl->out_len = pending;
		cl->out_off = 0;
	}
	if (cl->out_len + len > cl->out_cap) {
		size_t cap = MAX(MAX(cl->out_cap * 2, cl->out_len + len), (size_t)4096);
		char *nb = realloc(cl->out, cap);

		if (!nb) {
			cl->dead = true;
			return;
		}
		cl->out = nb;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, data, len);
	cl->out_len += len;
	client_flush(cl);
}

static void client_close_soon(struct con_client *cl)
{
	cl->closing = true;
	if (cl->vm->writer == cl)
		cl->vm->writer = NULL;
	client_flush(cl);
}

static void client_free(struct con_client *cl)
{
	struct con_vm *v = cl->vm;

	if (v->writer == cl)
		v->writer = NULL;
	(void)epoll_ctl(v->cs->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	free(cl->out);
	free(cl);
	v->nclients--;
}

/* ---- VM streams ---------------------------------------------------------------------------- */

static struct con_vm *vm_find(struct consoles *cs, const char *name)
{
	for (struct con_vm *v = cs->vms; v; v = v->next)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

static struct con_vm *vm_get(struct consoles *cs, const char *name)
{
	struct con_vm *v = vm_find(cs, name);

	if (v)
		return v;
	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->kind = CON_KIND_VM;
	v->cs = cs;
	v->fd = -1;
	v->log_fd = -1;
	snprintf(v->name, sizeof(v->name), "%s", name);
	replay_load(v);
	v->next = cs->vms;
	cs->vms = v;
	return v;
}

static void vm_update(struct con_vm *v)
{
	uint32_t want = EPOLLIN | (v->in_len ? EPOLLOUT : 0);

	if (v->fd >= 0 && ep_set(v->cs, v->fd, &v->events, want, v) < 0)
		log_debug("console of VM %s: epoll: %s", v->name, strerror(errno));
}

static void vm_stream_close(struct con_vm *v)
{
	if (v->fd < 0)
		return;
	(void)epoll_ctl(v->cs->epfd, EPOLL_CTL_DEL, v->fd, NULL);
	close(v->fd);
	v->fd = -1;
	v->events = 0;
	free(v->in);
	v->in = NULL;
	v->in_len = 0;
	for (struct con_client *cl = v->clients; cl; cl = cl->next)
		client_close_soon(cl);
}

static void vm_output(struct con_vm *v, const char *data, size_t len)
{
	log_append(v, data, len);
	replay_append(v, data, len);
	for (struct con_client *cl = v->clients; cl; cl = cl->next)
		if (!cl->closing)
			client_queue(cl, data, len);
}

/* The serial stream carries whatever the guest writes: it is only copied, never parsed. */
static void vm_readable(struct con_vm *v)
{
	char buf[CON_READ_CHUNK];

	for (int i = 0; i < CON_READS_PER_DISPATCH && v->fd >= 0; i++) {
		ssize_t n = read(v->fd, buf, sizeof(buf));

		if (n > 0) {
			vm_output(v, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		/* End of stream or error: the worker is gone. */
		vm_stream_close(v);
		return;
	}
}

static void vm_writable(struct con_vm *v)
{
	while (v->fd >= 0 && v->in_len > 0) {
		ssize_t n = send(v->fd, v->in, v->in_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				/* Input is lost, output may still come: keep the stream until EOF. */
				v->in_len = 0;
			}
			break;
		}
		memmove(v->in, v->in + n, v->in_len - (size_t)n);
		v->in_len -= (size_t)n;
	}
	vm_update(v);
	if (v->writer)
		client_update(v->writer);
}

static void vm_input(struct con_vm *v, const char *data, size_t len)
{
	size_t take;

	if (v->fd < 0 || len == 0)
		return;   /* nobody to type to: input for a stopped VM is discarded */
	if (!v->in) {
		v->in = malloc(CONSOLE_INPUT_QUEUE_MAX);
		if (!v->in)
			return;
	}
	take = MIN(len, CONSOLE_INPUT_QUEUE_MAX - v->in_len);
	memcpy(v->in + v->in_len, data, take);
	v->in_len += take;
	vm_writable(v);
}

static void client_readable(struct con_client *cl)
{
	char buf[CON_READ_CHUNK];
	size_t room = cl->writer ? CONSOLE_INPUT_QUEUE_MAX - MIN(cl->vm->in_len, (size_t)CONSOLE_INPUT_QUEUE_MAX)
				 : sizeof(buf);
	ssize_t n;

	if (room == 0) {
		client_update(cl);
		return;
	}
	n = recv(cl->fd, buf, MIN(room, sizeof(buf)), MSG_DONTWAIT);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			cl->dead = true;
		return;
	}
	if (n == 0) {
		/* Half-closed (e.g. `virtctl console < file` at end of file): it has nothing more
		 * to type, so the writer role is free; output still flows until the VM stops. */
		cl->eof = true;
		if (cl->vm->writer == cl)
			cl->vm->writer = NULL;
		client_update(cl);
		return;
	}
	/* Client bytes are opaque keystrokes for the guest; a reader's are ignored. */
	if (cl->writer && cl->vm->writer == cl)
		vm_input(cl->vm, buf, (size_t)n);
}

/* ---- public API ---------------------------------------------------------------------------- */

int consoles_new(const char *log_dir_root, size_t log_max_bytes, unsigned log_keep, struct consoles **ret)
{
	struct consoles *cs;

	if (!log_dir_root || strlen(log_dir_root) >= sizeof(cs->root) || log_max_bytes == 0 ||
	    log_keep > CONSOLE_LOG_KEEP_MAX)
		return -EINVAL;
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	cs->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cs->epfd < 0) {
		int r = -errno;

		free(cs);
		return r;
	}
	snprintf(cs->root, sizeof(cs->root), "%s", log_dir_root);
	cs->log_max = log_max_bytes;
	cs->log_keep = log_keep;
	*ret = cs;
	return 0;
}

static void vm_free(struct con_vm *v)
{
	vm_stream_close(v);
	while (v->clients) {
		struct con_client *cl = v->clients;

		v->clients = cl->next;
		client_free(cl);
	}
	if (v->log_fd >= 0)
		close(v->log_fd);
	free(v->in);
	free(v);
}

void consoles_free(struct consoles *cs)
{
	if (!cs)
		return;
	while (cs->vms) {
		struct con_vm *v = cs->vms;

		cs->vms = v->next;
		vm_free(v);
	}
	close(cs->epfd);
	free(cs);
}

int consoles_fd(struct consoles *cs)
{
	return cs->epfd;
}

/* Free dead clients, and VM records that have neither a stream nor clients. */
static void consoles_reap(struct consoles *cs)
{
	struct con_vm **vp = &cs->vms;

	while (*vp) {
		struct con_vm *v = *vp;
		struct con_client **pp = &v->clients;

		while (*pp) {
			struct con_client *cl = *pp;

			if (cl->dead) {
				*pp = cl->next;
				client_free(cl);
			} else {
				pp = &cl->next;
			}
		}
		if (v->fd < 0 && !v->clients) {
			*vp = v->next;
			vm_free(v);
		} else {
			vp = &v->next;
		}
	}
}

void consoles_dispatch(struct consoles *cs)
{
	struct epoll_event evs[CON_MAX_EVENTS];
	int n = epoll_wait(cs->epfd, evs, CON_MAX_EVENTS, 0);

	for (int i = 0; i < n; i++) {
		enum con_kind *kind = evs[i].data.ptr;

		if (*kind == CON_KIND_VM) {
			struct con_vm *v = evs[i].data.ptr;

			if (v->fd >= 0 && (evs[i].events & EPOLLOUT))
				vm_writable(v);
			if (v->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				vm_readable(v);
		} else {
			struct con_client *cl = evs[i].data.ptr;

			if (cl->dead)
				continue;
			if (evs[i].events & EPOLLOUT)
				client_flush(cl);
			if (!cl->dead && !cl->eof && !cl->closing && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				client_readable(cl);
			else if (!cl->dead && (evs[i].events & (EPOLLHUP | EPOLLERR)))
				cl->dead = true;
		}
	}
	consoles_reap(cs);
}

int console_vm_open(struct consoles *cs, const char *name, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct con_vm *v;
	int fl;

	if (!name || !registry_name_valid(name) || fd < 0) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	v = vm_get(cs, name);
	if (!v) {
		close(fd);
		return -ENOMEM;
	}
	if (v->fd >= 0) {
		/* A new worker (or a reattached one) replaces the stream; clients stay. */
		(void)epoll_ctl(cs->epfd, EPOLL_CTL_DEL, v->fd, NULL);
		close(v->fd);
		v->in_len = 0;
	}
	ev.data.ptr = v;
	if (epoll_ctl(cs->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;

		close(fd);
		v->fd = -1;
		consoles_reap(cs);
		return r;
	}
	v->fd = fd;
	v->events = EPOLLIN;
	return 0;
}

void console_vm_close(struct consoles *cs, const char *name)
{
	struct con_vm *v = name ? vm_find(cs, name) : NULL;

	if (!v)
		return;
	/* Output the worker wrote before it went away is still in the socket: take it. */
	if (v->fd >= 0)
		vm_readable(v);
	vm_stream_close(v);
	consoles_reap(cs);
}

void console_vm_forget(struct consoles *cs, const char *name)
{
	struct con_vm **vp = &cs->vms;

	for (; *vp; vp = &(*vp)->next) {
		if (strcmp((*vp)->name, name) == 0) {
			struct con_vm *v = *vp;

			*vp = v->next;
			vm_free(v);
			return;
		}
	}
}

bool console_vm_running(struct consoles *cs, const char *name)
{
	struct con_vm *v = vm_find(cs, name);

	return v && v->fd >= 0;
}

unsigned console_nclients(struct consoles *cs, const char *name)
{
	struct con_vm *v = vm_find(cs, name);
	unsigned n = 0;

	if (!v)
		return 0;
	for (struct con_client *cl = v->clients; cl; cl = cl->next)
		n += !cl->dead;
	return n;
}

int console_attach_check(struct consoles *cs, const char *name, bool write, bool force, char *err, size_t errlen)
{
	struct con_vm *v;

	if (!name || !registry_name_valid(name)) {
		snprintf(err, errlen, "'%.80s' is not a valid VM name", name ? name : "(null)");
		return -EINVAL;
	}
	v = vm_find(cs, name);
	if (!v)
		return 0;
	if (v->nclients >= CONSOLE_MAX_CLIENTS) {
		snprintf(err, errlen, "console of VM %s already has %u clients attached (at most %u)", name,
			 v->nclients, CONSOLE_MAX_CLIENTS);
		return -EUSERS;
	}
	if (write && !force && v->writer && !v->writer->dead) {
		snprintf(err, errlen, "console of VM %s is already attached for writing by %s; attach read-only, "
			 "or take it over with Force (virtctl console --force)", name, v->writer->who);
		return -EBUSY;
	}
	return 0;
}

int console_attach(struct consoles *cs, const char *name, int fd, bool write, bool force, const void *pre,
		   size_t pre_len, const void *in, size_t in_len, const char *who)
{
	struct epoll_event ev = { .events = 0 };
	struct con_client *cl;
	struct con_vm *v;
	char err[256];
	int r, fl;

	r = console_attach_check(cs, name, write, force, err, sizeof(err));
	if (r < 0 || (fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		return r < 0 ? r : -errno;
	}
	v = vm_get(cs, name);
	cl = v ? calloc(1, sizeof(*cl)) : NULL;
	if (!cl) {
		close(fd);
		consoles_reap(cs);
		return -ENOMEM;
	}
	cl->kind = CON_KIND_CLIENT;
	cl->vm = v;
	cl->fd = fd;
	snprintf(cl->who, sizeof(cl->who), "%s", who ? who : "a client");
	ev.data.ptr = cl;
	if (epoll_ctl(cs->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		close(fd);
		free(cl);
		consoles_reap(cs);
		return r;
	}
	cl->next = v->clients;
	v->clients = cl;
	v->nclients++;
	if (write) {
		if (v->writer && v->writer != cl) {
			static const char msg[] = "\r\n[vmmsd: console write access taken over by ";
			struct con_client *old = v->writer;

			log_info("console of VM %s: %s takes the writer role over from %s", name, cl->who, old->who);
			client_queue(old, msg, sizeof(msg) - 1);
			client_queue(old, cl->who, strlen(cl->who));
			client_queue(old, "]\r\n", 3);
			client_close_soon(old);
		}
		v->writer = cl;
		cl->writer = true;
	}
	client_queue(cl, pre, pre_len);
	client_queue(cl, v->replay, v->replay_len);
	if (write && in_len)
		vm_input(v, in, in_len);
	/* When nothing runs the client simply waits: console_vm_open() connects it. */
	client_update(cl);
	r = cl->dead ? -EPIPE : 0;
	consoles_reap(cs);   /* a writer taken over, or this client already gone */
	return r;
}
