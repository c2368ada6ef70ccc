// SPDX-License-Identifier: GPL-2.0-only
/* Guest services manager: heartbeat, guest facts, host pairs, orderly shutdown and channel relays over vsock. */
#include "parent/guest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/guestproto.h"
#include "lib/log.h"
#include "lib/util.h"
#include "parent/registry.h"

#define TICK_MS 500
#define CTL_OUT_MAX (256u * 1024)   /* control connection: small requests only */
#define HS_MAX 64                   /* the worker's handshake answer line */
#define MAX_FACT 4096
#define KVP_FILE "kvp.json"          /* host pairs, kept with the VM in the registry */
/* 256 pairs of a 64-byte key and a 4096-byte value, escaped as \uXXXX at worst, and framing. */
#define KVP_FILE_MAX ((size_t)GUEST_MAX_HOST_ITEMS * (GUESTPROTO_KEY_MAX + 6 * GUESTPROTO_VALUE_MAX + 16) + 64)

enum src_kind { SRC_TIMER, SRC_CTL, SRC_CHAN_CLIENT, SRC_CHAN_AGENT };

struct gsrc {
	enum src_kind kind;
	void *p;
};

/* A bounded output queue. */
struct gbuf {
	char *p;
	size_t off, len, cap;
};

/* One connection to the agent through the worker's vsock socket. */
struct aconn {
	int fd;
	bool ready;                 /* the worker answered OK to CONNECT */
	char hs[HS_MAX];
	size_t hslen;
	int64_t since;              /* ms when the connection began */
	uint32_t events;
};

struct gvm {
	struct gvm *next;
	struct guests *g;
	char name[VM_NAME_MAX + 1];
	bool running;
	int hb;                     /* GUEST_HB_* */
	bool answered;              /* the agent answered since the VM started */
	struct aconn a;
	struct gsrc src;
	struct guestproto_reader rd;
	struct gbuf out;
	uint64_t next_id;
	uint64_t ping_id;           /* outstanding ping, 0 none */
	int64_t ping_sent;
	int64_t last_ping;
	uint64_t kvp_id;
	int64_t kvp_sent, last_kvp;
	uint64_t shutdown_id;
	uint64_t time_sync_id;      /* outstanding time-sync, 0 none */
	bool paused;                /* last reported state was Paused */
	bool time_sync_due;         /* resumed: set the guest's clock at the next contact */
	int64_t next_connect;
	json_t *facts;              /* guest intrinsic items: object of strings */
	json_t *host;               /* host items: object of strings */
	bool host_broken;           /* KVP_FILE could not be loaded: kept, and not overwritten */
	char agent_version[32];
	/* A shutdown under way. */
	bool sd_pending;
	bool sd_force, sd_acpi, sd_forced;
	int64_t sd_deadline;
	unsigned sd_timeout_s;
	char sd_job[64];
};

struct chan {
	struct chan *next;
	struct guests *g;
	char vm[VM_NAME_MAX + 1];
	int cfd;
	uint32_t cevents;
	struct aconn a;
	struct gsrc csrc, asrc;
	struct guestproto_reader crd;
	struct gbuf to_agent, to_client;
	bool client_eof, agent_eof;
	bool closing;               /* flush to_client, then close */
	bool dead;
};

struct guests {
	struct guest_config cfg;
	int epfd, tfd;
	struct gsrc tsrc;
	struct gvm *vms;
	struct chan *chans;
	unsigned nchans;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- buffers ------------------------------------------------------------------------------- */

static size_t gbuf_pending(const struct gbuf *b)
{
	return b->len - b->off;
}

static int gbuf_add(struct gbuf *b, const void *data, size_t n, size_t max)
{
	if (gbuf_pending(b) + n > max)
		return -ENOBUFS;
	if (b->off && b->len + n > b->cap) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = MAX(b->cap ? b->cap * 2 : 4096, b->len + n);
		char *p = realloc(b->p, cap);

		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

/* Write what the socket takes. 0 (maybe with bytes left), or -errno when the peer is gone. */
static int gbuf_flush(struct gbuf *b, int fd)
{
	while (gbuf_pending(b)) {
		ssize_t n = send(fd, b->p + b->off, gbuf_pending(b), MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		b->off += (size_t)n;
	}
	b->off = b->len = 0;
	return 0;
}

static void gbuf_free(struct gbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static int gbuf_add_msg(struct gbuf *b, const json_t *msg, size_t max)
{
	char *buf;
	size_t len;
	int r;

	if (!msg)
		return -ENOMEM;
	r = guestproto_encode(msg, &buf, &len);
	if (r < 0)
		return r;
	r = gbuf_add(b, buf, len, max);
	free(buf);
	return r;
}

/* ---- agent connections --------------------------------------------------------------------- */

static int sock_path(const struct guests *g, const char *vm, struct sockaddr_un *sa)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/vms/%s/vsock.sock", g->cfg.runtime_dir, vm) >=
	    sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

static void aconn_close(struct guests *g, struct aconn *a)
{
	if (a->fd >= 0) {
		(void)epoll_ctl(g->epfd, EPOLL_CTL_DEL, a->fd, NULL);
		close(a->fd);
	}
	a->fd = -1;
	a->ready = false;
	a->hslen = 0;
	a->events = 0;
}

static void aconn_watch(struct guests *g, struct aconn *a, uint32_t events, struct gsrc *src)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	if (a->fd < 0 || events == a->events)
		return;
	if (epoll_ctl(g->epfd, EPOLL_CTL_MOD, a->fd, &ev) == 0)
		a->events = events;
}

/* Non-blocking connect to the worker's socket and the CONNECT line; the answer comes later. */
static int aconn_start(struct guests *g, const char *vm, struct aconn *a, struct gsrc *src)
{
	struct sockaddr_un sa;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = src };
	char req[32];
	int fd, r, n;

	r = sock_path(g, vm, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A Unix connect completes at once or fails (EAGAIN: the worker's backlog is full). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	n = snprintf(req, sizeof(req), "CONNECT %u\n", VMMS_GUESTD_PORT);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
		r = -errno ? -errno : -EIO;
		close(fd);
		return r;
	}
	if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	a->fd = fd;
	a->ready = false;
	a->hslen = 0;
	a->since = mono_ms();
	a->events = EPOLLIN;
	return 0;
}

/* Read the worker's answer (hostile text, bounded) a byte at a time so no byte of the guest's
 * stream is taken. 1 ready, 0 more to come, -errno refused or broken. */
static int aconn_handshake(struct aconn *a)
{
	for (;;) {
		ssize_t n;

		if (a->hslen >= sizeof(a->hs) - 1)
			return -EPROTO;
		n = recv(a->fd, a->hs + a->hslen, 1, MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
		if (n == 0)
			return -ECONNREFUSED;
		if (a->hs[a->hslen] == '\n') {
			a->hs[a->hslen] = '\0';
			if (strncmp(a->hs, "OK", 2) != 0 || (a->hs[2] != '\0' && a->hs[2] != ' '))
				return -ECONNREFUSED;
			a->ready = true;
			return 1;
		}
		a->hslen++;
	}
}

/* ---- per-VM state -------------------------------------------------------------------------- */

static struct gvm *gvm_find(struct guests *g, const char *name)
{
	for (struct gvm *v = g->vms; v; v = v->next)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

static struct gvm *gvm_get(struct guests *g, const char *name)
{
	struct gvm *v = gvm_find(g, name);

	if (v || strlen(name) > VM_NAME_MAX)
		return v;
	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->g = g;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->a.fd = -1;
	v->hb = GUEST_HB_NO_CONTACT;
	v->src = (struct gsrc){ .kind = SRC_CTL, .p = v };
	v->facts = json_object();
	v->host = json_object();
	v->next_id = 1;
	guestproto_reader_init(&v->rd);
	if (!v->facts || !v->host) {
		json_decref(v->facts);
		json_decref(v->host);
		free(v);
		return NULL;
	}
	v->next = g->vms;
	g->vms = v;
	return v;
}

static void set_hb(struct gvm *v, int hb)
{
	int old = v->hb;

	if (old == hb)
		return;
	v->hb = hb;
	log_info("VM %s: heartbeat %s", v->name, hb == GUEST_HB_OK ? "OK" : hb == GUEST_HB_LOST ? "lost" : "no contact");
	if (v->g->cfg.heartbeat)
		v->g->cfg.heartbeat(v->g->cfg.userdata, v->name, old, hb);
}

static void ctl_close(struct gvm *v)
{
	aconn_close(v->g, &v->a);
	guestproto_reader_free(&v->rd);
	guestproto_reader_init(&v->rd);
	gbuf_free(&v->out);
	v->ping_id = v->kvp_id = v->shutdown_id = v->time_sync_id = 0;
}

/* The agent stopped answering (or never did): drop the connection, try again later. */
static void ctl_fail(struct gvm *v, const char *why)
{
	if (v->a.ready || v->answered)
		log_debug("VM %s: guest agent connection: %s", v->name, why);
	ctl_close(v);
	v->next_connect = mono_ms() + (v->g->cfg.interval_ms ? v->g->cfg.interval_ms : 3000);
	if (v->running)
		set_hb(v, v->answered ? GUEST_HB_LOST : GUEST_HB_NO_CONTACT);
}

static void finish_sd_job(struct gvm *v, int code, const char *desc)
{
	if (v->sd_job[0] && v->g->cfg.job_done)
		v->g->cfg.job_done(v->g->cfg.userdata, v->sd_job, code, desc);
	v->sd_job[0] = '\0';
	v->sd_pending = false;
}

static int worker_op(struct gvm *v, enum worker_op op, char *err, size_t errlen)
{
	struct vm_entry *vm;

	if (!v->g->cfg.workers || !v->g->cfg.reg) {
		snprintf(err, errlen, "this vmmsd has no worker manager");
		return -ENOTCONN;
	}
	vm = registry_find(v->g->cfg.reg, v->name);
	if (!vm) {
		snprintf(err, errlen, "VM '%s' is not defined", v->name);
		return -ESRCH;
	}
	return workers_request(v->g->cfg.workers, vm, NULL, op, err, errlen);
}

/* No agent to ask, or it refused: the ACPI power button instead. */
static int sd_acpi(struct gvm *v, char *err, size_t errlen)
{
	int r = worker_op(v, WORKER_SHUTDOWN, err, errlen);

	if (r == 0) {
		v->sd_acpi = true;
		log_info("VM %s: no guest agent answers; pressed the power button", v->name);
	}
	return r;
}

static int ctl_send(struct gvm *v, json_t *msg)
{
	int r = gbuf_add_msg(&v->out, msg, CTL_OUT_MAX);

	json_decref(msg);
	if (r < 0)
		return r;
	r = gbuf_flush(&v->out, v->a.fd);
	aconn_watch(v->g, &v->a, EPOLLIN | (gbuf_pending(&v->out) ? EPOLLOUT : 0), &v->src);
	return r;
}

static uint64_t take_id(struct gvm *v)
{
	if (v->next_id >= GUESTPROTO_ID_MAX)
		v->next_id = 1;
	return v->next_id++;
}

static void send_ping(struct gvm *v, int64_t now)
{
	v->ping_id = take_id(v);
	v->ping_sent = v->last_ping = now;
	if (ctl_send(v, guestproto_req_ping(v->ping_id)) < 0)
		ctl_fail(v, "cannot send");
}

static void send_kvp_get(struct gvm *v, int64_t now)
{
	v->kvp_id = take_id(v);
	v->kvp_sent = v->last_kvp = now;
	if (ctl_send(v, guestproto_req_kvp_get(v->kvp_id)) < 0)
		ctl_fail(v, "cannot send");
}

static void push_host_item(struct gvm *v, const char *key, const char *value)
{
	if (v->a.fd < 0 || !v->a.ready)
		return;
	if (ctl_send(v, guestproto_req_kvp_set(take_id(v), key, value)) < 0)
		ctl_fail(v, "cannot send");
}

static void send_shutdown(struct gvm *v)
{
	v->shutdown_id = take_id(v);
	if (ctl_send(v, guestproto_req_shutdown(v->shutdown_id, false)) < 0)
		ctl_fail(v, "cannot send");
}

/* Copy one bounded string fact from the agent's reply (hostile) into facts. */
/* After a resume the guest's clock lags by the time it was paused: set it from ours. Sent as
 * soon as the agent's channel is up (now, or when it reconnects: a long pause times the
 * heartbeat out and drops the channel). */
static void send_time_sync(struct gvm *v)
{
	struct timespec now;

	v->time_sync_due = false;
	clock_gettime(CLOCK_REALTIME, &now);
	v->time_sync_id = take_id(v);
	if (ctl_send(v, guestproto_req_time_sync(v->time_sync_id, &now)) < 0)
		ctl_fail(v, "cannot send");
}

static void fact(json_t *facts, const char *key, const json_t *val)
{
	const char *s = json_string_value(val);

	if (s && json_string_length(val) <= MAX_FACT && strlen(s) == json_string_length(val))
		(void)json_object_set_new(facts, key, json_string(s));
}

/* kvp-get's reply, from the guest: every member type-checked, lengths bounded. */
static void take_facts(struct gvm *v, const json_t *r)
{
	json_t *f = json_object(), *os = json_object_get(r, "os"), *k = json_object_get(r, "kernel");
	json_t *addrs = json_object_get(r, "addresses"), *a;
	char v4[1024] = "", v6[2048] = "";
	size_t i;

	if (!f)
		return;
	fact(f, "FullyQualifiedDomainName", json_object_get(r, "hostname"));
	if (json_is_object(os)) {
		fact(f, "OSName", json_object_get(os, json_object_get(os, "PRETTY_NAME") ? "PRETTY_NAME" : "NAME"));
		fact(f, "OSVersion", json_object_get(os, "VERSION_ID"));
		fact(f, "OSId", json_object_get(os, "ID"));
	}
	if (json_is_object(k)) {
		fact(f, "OSKernelName", json_object_get(k, "sysname"));
		fact(f, "OSKernelVersion", json_object_get(k, "release"));
		fact(f, "ProcessorArchitecture", json_object_get(k, "machine"));
	}
	fact(f, "IntegrationServicesVersion", json_object_get(r, "agent_version"));
	if (json_is_array(addrs)) {
		json_array_foreach(addrs, i, a) {
			const char *fam = json_string_value(json_object_get(a, "family"));
			const char *ad = json_string_value(json_object_get(a, "address"));
			char *dst;
			size_t cap, used;

			if (i >= 64 || !fam || !ad || strlen(ad) > 64)
				break;
			dst = strcmp(fam, "inet") == 0 ? v4 : strcmp(fam, "inet6") == 0 ? v6 : NULL;
			if (!dst)
				continue;
			cap = dst == v4 ? sizeof(v4) : sizeof(v6);
			used = strlen(dst);
			/* Each address is validated as printable by refusing separators and controls. */
			if (strpbrk(ad, ";\n\r\t "))
				continue;
			if (used + strlen(ad) + 2 < cap)
				snprintf(dst + used, cap - used, "%s%s", used ? ";" : "", ad);
		}
	}
	(void)json_object_set_new(f, "NetworkAddressIPv4", json_string(v4));
	(void)json_object_set_new(f, "NetworkAddressIPv6", json_string(v6));
	json_decref(v->facts);
	v->facts = f;
}

static void on_ctl_msg(struct gvm *v, json_t *m)
{
	const char *type = json_string_value(json_object_get(m, "type"));
	uint64_t id;

	if (!type || strcmp(type, "reply") != 0 || guestproto_msg_id(m, &id) < 0)
		return;
	if (id == v->ping_id) {
		v->ping_id = 0;
		if (guestproto_reply_status(m, NULL) == 0) {
			bool first = !v->answered;

			v->answered = true;
			set_hb(v, GUEST_HB_OK);
			if (first || v->last_kvp == 0)
				send_kvp_get(v, mono_ms());
		}
	} else if (id == v->kvp_id) {
		v->kvp_id = 0;
		if (guestproto_reply_status(m, NULL) == 0)
			take_facts(v, m);
	} else if (id == v->time_sync_id) {
		const char *msg = NULL;

		v->time_sync_id = 0;
		if (guestproto_reply_status(m, &msg) < 0)
			log_warning("VM %s: the guest agent could not set the clock after resume: %.200s", v->name,
				    msg ? msg : "no reason");
		else
			log_debug("VM %s: guest clock set after resume", v->name);
	} else if (id == v->shutdown_id) {
		const char *msg = NULL;

		v->shutdown_id = 0;
		if (guestproto_reply_status(m, &msg) < 0 && v->sd_pending && !v->sd_acpi) {
			char err[256];

			log_warning("VM %s: the guest agent refused to shut down: %.200s", v->name, msg ? msg : "no reason");
			if (sd_acpi(v, err, sizeof(err)) < 0)
				log_warning("VM %s: power button: %s", v->name, err);
		}
	}
}

static void ctl_ready(struct gvm *v)
{
	const char *k;
	json_t *val;

	/* Fresh agent (or first contact): it gets every host pair again; they are idempotent. */
	json_object_foreach(v->host, k, val) {
		push_host_item(v, k, json_string_value(val));
		if (v->a.fd < 0)
			return;
	}
	if (v->time_sync_due)
		send_time_sync(v);
	if (v->a.fd < 0)
		return;
	send_ping(v, mono_ms());
	if (v->a.fd >= 0 && v->sd_pending && !v->sd_acpi && !v->shutdown_id)
		send_shutdown(v);
}

static void ctl_event(struct gvm *v, uint32_t events)
{
	if (v->a.fd < 0)
		return;
	if (!v->a.ready) {
		int r = aconn_handshake(&v->a);

		if (r < 0) {
			ctl_fail(v, "refused");
			return;
		}
		if (r == 0)
			return;
		ctl_ready(v);
		if (v->a.fd < 0)
			return;
	}
	if (events & EPOLLOUT) {
		if (gbuf_flush(&v->out, v->a.fd) < 0) {
			ctl_fail(v, "write failed");
			return;
		}
		aconn_watch(v->g, &v->a, EPOLLIN | (gbuf_pending(&v->out) ? EPOLLOUT : 0), &v->src);
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (int rounds = 0; rounds < 16; rounds++) {
		int r = guestproto_reader_fill(&v->rd, v->a.fd);
		json_t *m;
		int n;

		if (r == -EAGAIN)
			return;
		while ((n = guestproto_reader_next(&v->rd, &m)) != 0) {
			if (n == -EBADMSG)
				continue;
			if (n < 0) {
				ctl_fail(v, "malformed frame");
				return;
			}
			on_ctl_msg(v, m);
			json_decref(m);
			if (v->a.fd < 0)
				return;
		}
		if (r == 0) {
			ctl_fail(v, "closed");
			return;
		}
		if (r < 0 && r != -ENOBUFS) {
			ctl_fail(v, "read failed");
			return;
		}
	}
}

static void gvm_tick(struct gvm *v, int64_t now)
{
	const struct guest_config *c = &v->g->cfg;
	int64_t interval = c->interval_ms ? c->interval_ms : 3000, timeout = c->timeout_ms ? c->timeout_ms : 5000;
	int64_t refresh = c->kvp_refresh_ms ? c->kvp_refresh_ms : 15000;

	if (v->sd_pending && v->sd_deadline && now >= v->sd_deadline) {
		char err[256] = "";

		if (v->sd_force && !v->sd_forced) {
			log_info("VM %s: the guest did not shut down in %u s; turning it off", v->name, v->sd_timeout_s);
			v->sd_forced = true;
			v->sd_deadline = 0;
			if (worker_op(v, WORKER_STOP, err, sizeof(err)) < 0) {
				char desc[400];

				snprintf(desc, sizeof(desc), "the guest did not shut down in %u s and cannot be turned off: %s",
					 v->sd_timeout_s, err);
				finish_sd_job(v, WORKER_JOB_FAILED, desc);
			}
		} else if (!v->sd_force) {
			char desc[200];

			snprintf(desc, sizeof(desc), "the guest did not shut down within %u s; it is still running (use Force to turn it off)",
				 v->sd_timeout_s);
			finish_sd_job(v, WORKER_JOB_FAILED, desc);
		}
	}
	if (!v->running)
		return;
	if (v->a.fd < 0) {
		if (now >= v->next_connect) {
			int r = aconn_start(v->g, v->name, &v->a, &v->src);

			if (r < 0)
				ctl_fail(v, "cannot connect");
		}
		return;
	}
	if (!v->a.ready) {
		if (now - v->a.since > timeout)
			ctl_fail(v, "no answer to CONNECT");
		return;
	}
	if (v->ping_id && now - v->ping_sent > timeout) {
		ctl_fail(v, "ping timed out");
		return;
	}
	if (v->kvp_id && now - v->kvp_sent > timeout) {
		v->kvp_id = 0;
	}
	if (!v->ping_id && now - v->last_ping >= interval)
		send_ping(v, now);
	if (v->a.fd >= 0 && !v->kvp_id && v->answered && now - v->last_kvp >= refresh)
		send_kvp_get(v, now);
}

/* ---- channels ------------------------------------------------------------------------------ */

static void chan_free(struct chan *ch)
{
	struct guests *g = ch->g;

	aconn_close(g, &ch->a);
	if (ch->cfd >= 0) {
		(void)epoll_ctl(g->epfd, EPOLL_CTL_DEL, ch->cfd, NULL);
		close(ch->cfd);
	}
	guestproto_reader_free(&ch->crd);
	gbuf_free(&ch->to_agent);
	gbuf_free(&ch->to_client);
	free(ch);
}

static void reap_chans(struct guests *g)
{
	struct chan **pp = &g->chans;

	while (*pp) {
		struct chan *ch = *pp;

		if (ch->dead) {
			*pp = ch->next;
			chan_free(ch);
			g->nchans--;
		} else {
			pp = &ch->next;
		}
	}
}

/* Tell the client why, then close once that is out. */
static void chan_fail(struct chan *ch, const char *why)
{
	json_t *m = json_pack("{s:n, s:s, s:b, s:s}", "id", "type", "channel", "ok", 0, "error", why);

	(void)gbuf_add_msg(&ch->to_client, m, GUEST_CHANNEL_BUF + 4096);
	json_decref(m);
	aconn_close(ch->g, &ch->a);
	ch->closing = true;
}

static void chan_update(struct chan *ch)
{
	struct guests *g = ch->g;
	uint32_t want;
	struct epoll_event ev;

	if (ch->dead)
		return;
	if (ch->closing && !gbuf_pending(&ch->to_client)) {
		ch->dead = true;
		return;
	}
	if (!ch->closing && ch->client_eof && !gbuf_pending(&ch->to_agent)) {
		ch->dead = true;
		return;
	}
	if (!ch->closing && ch->agent_eof && !gbuf_pending(&ch->to_client)) {
		ch->dead = true;
		return;
	}
	/* Backpressure: a side is read only while the queue toward the other side has room. */
	want = (gbuf_pending(&ch->to_client) ? EPOLLOUT : 0) |
	       (!ch->closing && ch->a.ready && !ch->client_eof && gbuf_pending(&ch->to_agent) < GUEST_CHANNEL_BUF ? EPOLLIN : 0);
	if (want != ch->cevents) {
		ev = (struct epoll_event){ .events = want, .data.ptr = &ch->csrc };
		if (epoll_ctl(g->epfd, EPOLL_CTL_MOD, ch->cfd, &ev) < 0)
			ch->dead = true;
		ch->cevents = want;
	}
	if (ch->a.fd >= 0) {
		want = (!ch->a.ready || (!ch->agent_eof && gbuf_pending(&ch->to_client) < GUEST_CHANNEL_BUF) ? EPOLLIN : 0) |
		       (ch->a.ready && gbuf_pending(&ch->to_agent) ? EPOLLOUT : 0);
		aconn_watch(g, &ch->a, want, &ch->asrc);
	}
}

static bool chan_op_allowed(const char *op)
{
	static const char *const ok[] = { "exec", "stdin", "signal", "file-write", "file-data", "ping", "kvp-get", "kvp-list" };

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (strcmp(op, ok[i]) == 0)
			return true;
	return false;
}

/* Frames from the management client (hostile): only the channel's ops reach the agent. */
static void chan_take_client_frames(struct chan *ch)
{
	json_t *m;
	int n;

	while ((n = guestproto_reader_next(&ch->crd, &m)) != 0) {
		const char *op;
		uint64_t id;

		if (n < 0) {
			chan_fail(ch, n == -EMSGSIZE ? "frame too large" : "a frame is not one JSON object");
			return;
		}
		op = json_string_value(json_object_get(m, "op"));
		if (!op || guestproto_msg_id(m, &id) < 0 || !chan_op_allowed(op)) {
			json_t *r = json_pack("{s:O?, s:s, s:b, s:s, s:i}", "id", json_object_get(m, "id"), "type", "reply",
					      "ok", 0, "error", "only exec, stdin, signal, file-write, file-data, ping, kvp-get and kvp-list go over a guest channel",
					      "errno", EPERM);

			(void)gbuf_add_msg(&ch->to_client, r, GUEST_CHANNEL_BUF + 4096);
			json_decref(r);
		} else if (gbuf_add_msg(&ch->to_agent, m, GUEST_CHANNEL_BUF + GUESTPROTO_MAX_MSG + 4) < 0) {
			json_decref(m);
			chan_fail(ch, "out of memory");
			return;
		}
		json_decref(m);
		if (gbuf_pending(&ch->to_agent) >= GUEST_CHANNEL_BUF)
			return;   /* the rest waits in the reader and the socket */
	}
}

static void chan_client_event(struct chan *ch, uint32_t events)
{
	if (events & EPOLLOUT) {
		if (gbuf_flush(&ch->to_client, ch->cfd) < 0) {
			ch->dead = true;
			return;
		}
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !ch->closing && ch->a.ready && !ch->client_eof &&
	    gbuf_pending(&ch->to_agent) < GUEST_CHANNEL_BUF) {
		int r = guestproto_reader_fill(&ch->crd, ch->cfd);

		chan_take_client_frames(ch);
		if (r == 0) {
			ch->client_eof = true;
		} else if (r < 0 && r != -EAGAIN && r != -ENOBUFS) {
			ch->dead = true;
			return;
		}
		if (!ch->closing && gbuf_pending(&ch->to_agent) && gbuf_flush(&ch->to_agent, ch->a.fd) < 0)
			ch->agent_eof = true, gbuf_free(&ch->to_agent);
	} else if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLOUT)) {
		if (ch->closing || !ch->a.ready)
			ch->dead = true;
	}
}

static void chan_agent_event(struct chan *ch, uint32_t events)
{
	if (ch->a.fd < 0)
		return;
	if (!ch->a.ready) {
		int r = aconn_handshake(&ch->a);
		json_t *m;

		if (r < 0) {
			chan_fail(ch, "the guest agent does not answer on its vsock port (is vmms-guestd running in the guest?)");
			return;
		}
		if (r == 0)
			return;
		m = json_pack("{s:n, s:s, s:b}", "id", "type", "channel", "ok", 1);
		(void)gbuf_add_msg(&ch->to_client, m, GUEST_CHANNEL_BUF + 4096);
		json_decref(m);
		/* Frames the client sent together with its request. */
		chan_take_client_frames(ch);
		(void)gbuf_flush(&ch->to_client, ch->cfd);
		return;
	}
	if ((events & EPOLLOUT) && gbuf_flush(&ch->to_agent, ch->a.fd) < 0) {
		ch->agent_eof = true;
		gbuf_free(&ch->to_agent);
		aconn_close(ch->g, &ch->a);
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !ch->agent_eof &&
	    gbuf_pending(&ch->to_client) < GUEST_CHANNEL_BUF) {
		char buf[64 * 1024];
		ssize_t n = recv(ch->a.fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0) {
			if (gbuf_add(&ch->to_client, buf, (size_t)n, GUEST_CHANNEL_BUF + sizeof(buf)) < 0)
				ch->dead = true;
			else if (gbuf_flush(&ch->to_client, ch->cfd) < 0)
				ch->dead = true;
		} else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			ch->agent_eof = true;
			aconn_close(ch->g, &ch->a);
		}
	}
}

static void chan_tick(struct chan *ch, int64_t now)
{
	unsigned timeout = ch->g->cfg.timeout_ms ? ch->g->cfg.timeout_ms : 5000;

	if (ch->a.fd >= 0 && !ch->a.ready && now - ch->a.since > timeout)
		chan_fail(ch, "the guest agent did not answer in time (is vmms-guestd running in the guest?)");
}

int guests_channel_check(struct guests *g, const char *vm, char *err, size_t errlen)
{
	struct gvm *v = gvm_find(g, vm);

	if (!v || !v->running) {
		snprintf(err, errlen, "VM '%s' is not running with a vsock device (<vsock model='virtio'>)", vm);
		return -ESRCH;
	}
	if (g->nchans >= GUEST_MAX_CHANNELS) {
		snprintf(err, errlen, "too many guest channels are open (at most %d); try again later", GUEST_MAX_CHANNELS);
		return -EUSERS;
	}
	return 0;
}

int guests_channel_attach(struct guests *g, const char *vm, int fd, const void *out, size_t outlen,
			  const void *in, size_t inlen)
{
	struct chan *ch = calloc(1, sizeof(*ch));
	struct epoll_event ev = { .events = EPOLLOUT };
	int r;

	if (!ch) {
		close(fd);
		return -ENOMEM;
	}
	ch->g = g;
	ch->cfd = fd;
	ch->a.fd = -1;
	snprintf(ch->vm, sizeof(ch->vm), "%s", vm);
	ch->csrc = (struct gsrc){ .kind = SRC_CHAN_CLIENT, .p = ch };
	ch->asrc = (struct gsrc){ .kind = SRC_CHAN_AGENT, .p = ch };
	guestproto_reader_init(&ch->crd);
	ev.data.ptr = &ch->csrc;
	ch->cevents = EPOLLOUT;
	if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		ch->cfd = -1;
		close(fd);
		chan_free(ch);
		return r;
	}
	ch->next = g->chans;
	g->chans = ch;
	g->nchans++;
	if ((outlen && gbuf_add(&ch->to_client, out, outlen, outlen) < 0) ||
	    (inlen && guestproto_reader_feed(&ch->crd, in, inlen) < 0)) {
		ch->dead = true;
		return -ENOMEM;
	}
	r = aconn_start(g, vm, &ch->a, &ch->asrc);
	if (r < 0) {
		char why[160];

		snprintf(why, sizeof(why), "cannot reach the VM's vsock socket: %s", strerror(-r));
		chan_fail(ch, why);
	}
	(void)gbuf_flush(&ch->to_client, ch->cfd);
	chan_update(ch);
	return 0;
}

/* ---- the manager --------------------------------------------------------------------------- */

/* KVP_FILE's text is hostile: an object of at most GUEST_MAX_HOST_ITEMS valid keys to strings. */
int guests_kvp_parse(const char *text, size_t len, json_t **ret, char *err, size_t errlen)
{
	json_error_t je;
	const char *k;
	json_t *j, *val;

	if (len > KVP_FILE_MAX) {
		snprintf(err, errlen, "larger than %zu bytes", KVP_FILE_MAX);
		return -EFBIG;
	}
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		snprintf(err, errlen, "not JSON: line %d: %.120s", je.line, je.text);
		return -EINVAL;
	}
	if (!json_is_object(j)) {
		snprintf(err, errlen, "not a JSON object");
		goto bad;
	}
	if (json_object_size(j) > GUEST_MAX_HOST_ITEMS) {
		snprintf(err, errlen, "%zu pairs, more than %d", json_object_size(j), GUEST_MAX_HOST_ITEMS);
		goto bad;
	}
	json_object_foreach(j, k, val) {
		if (!guestproto_key_valid(k)) {
			snprintf(err, errlen, "key '%.80s' is not valid", k);
			goto bad;
		}
		if (!json_is_string(val) || json_string_length(val) > GUESTPROTO_VALUE_MAX ||
		    strlen(json_string_value(val)) != json_string_length(val)) {
			snprintf(err, errlen, "the value of '%s' is not a string of at most %d bytes", k,
				 GUESTPROTO_VALUE_MAX);
			goto bad;
		}
	}
	*ret = j;
	return 0;
bad:
	json_decref(j);
	return -EINVAL;
}

static struct gvm *gvm_get(struct guests *g, const char *name);

/* The host pairs of every registered VM that has them; a bad file is reported and left alone. */
static void guests_load_host_items(struct guests *g)
{
	struct registry *reg = g->cfg.reg;

	for (size_t i = 0; reg && i < registry_count(reg); i++) {
		struct vm_entry *vm = registry_at(reg, i);
		char err[256] = "";
		struct gvm *v;
		json_t *host = NULL;
		size_t len;
		char *text;
		int r;

		r = registry_read_file(reg, vm, KVP_FILE, KVP_FILE_MAX, &text, &len);
		if (r == -ENOENT)
			continue;
		if (r == 0) {
			r = guests_kvp_parse(text, len, &host, err, sizeof(err));
			free(text);
		} else {
			snprintf(err, sizeof(err), "%s", r == -EFBIG ? "too large" : strerror(-r));
		}
		v = gvm_get(g, vm->name);
		if (!v) {
			json_decref(host);
			log_warning("VM %s: out of memory loading its host key-value pairs", vm->name);
			continue;
		}
		if (r < 0) {
			v->host_broken = true;
			log_warning("VM %s: ignoring its host key-value pairs (%s, kept as it is): %s", vm->name,
				    KVP_FILE, err);
			continue;
		}
		json_decref(v->host);
		v->host = host;
	}
}

int guests_new(const struct guest_config *cfg, struct guests **ret)
{
	struct guests *g = calloc(1, sizeof(*g));
	struct itimerspec its = { .it_interval = { 0, TICK_MS * 1000000L }, .it_value = { 0, TICK_MS * 1000000L } };
	struct epoll_event ev = { .events = EPOLLIN };

	if (!g)
		return -ENOMEM;
	g->cfg = *cfg;
	g->epfd = epoll_create1(EPOLL_CLOEXEC);
	g->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	g->tsrc = (struct gsrc){ .kind = SRC_TIMER, .p = g };
	ev.data.ptr = &g->tsrc;
	if (g->epfd < 0 || g->tfd < 0 || epoll_ctl(g->epfd, EPOLL_CTL_ADD, g->tfd, &ev) < 0 ||
	    timerfd_settime(g->tfd, 0, &its, NULL) < 0) {
		int r = -errno;

		if (g->epfd >= 0)
			close(g->epfd);
		if (g->tfd >= 0)
			close(g->tfd);
		free(g);
		return r;
	}
	guests_load_host_items(g);
	*ret = g;
	return 0;
}

static void gvm_free(struct gvm *v)
{
	ctl_close(v);
	guestproto_reader_free(&v->rd);
	json_decref(v->facts);
	json_decref(v->host);
	free(v);
}

void guests_free(struct guests *g)
{
	if (!g)
		return;
	for (struct chan *ch = g->chans; ch; ch = ch->next)
		ch->dead = true;
	reap_chans(g);
	while (g->vms) {
		struct gvm *v = g->vms;

		g->vms = v->next;
		gvm_free(v);
	}
	close(g->tfd);
	close(g->epfd);
	free(g);
}

int guests_fd(struct guests *g)
{
	return g->epfd;
}

void guests_dispatch(struct guests *g)
{
	struct epoll_event evs[32];
	int n = epoll_wait(g->epfd, evs, ARRAY_SIZE(evs), 0);

	for (int i = 0; i < n; i++) {
		struct gsrc *s = evs[i].data.ptr;

		switch (s->kind) {
		case SRC_TIMER: {
			uint64_t x;
			int64_t now = mono_ms();

			(void)!read(g->tfd, &x, sizeof(x));
			for (struct gvm *v = g->vms; v; v = v->next)
				gvm_tick(v, now);
			for (struct chan *ch = g->chans; ch; ch = ch->next)
				chan_tick(ch, now);
			break;
		}
		case SRC_CTL:
			ctl_event(s->p, evs[i].events);
			break;
		case SRC_CHAN_CLIENT: {
			struct chan *ch = s->p;

			if (!ch->dead)
				chan_client_event(ch, evs[i].events);
			break;
		}
		case SRC_CHAN_AGENT: {
			struct chan *ch = s->p;

			if (!ch->dead)
				chan_agent_event(ch, evs[i].events);
			break;
		}
		}
	}
	for (struct chan *ch = g->chans; ch; ch = ch->next)
		chan_update(ch);
	reap_chans(g);
}

void guests_vm_state(struct guests *g, const char *vm, bool has_vsock, int enabled_state)
{
	bool up = enabled_state == VM_STATE_RUNNING || enabled_state == VM_STATE_PAUSED;
	struct gvm *v = gvm_find(g, vm);

	if (!v && (!has_vsock || !up))
		return;
	if (!v)
		v = gvm_get(g, vm);
	if (!v)
		return;
	if (up && has_vsock) {
		if (enabled_state == VM_STATE_PAUSED) {
			v->paused = true;
		} else if (v->paused) {
			v->paused = false;
			v->time_sync_due = true;
			if (v->a.fd >= 0 && v->a.ready)
				send_time_sync(v);
		}
		if (!v->running) {
			v->running = true;
			v->answered = false;
			v->next_connect = 0;
			v->last_kvp = 0;
			set_hb(v, GUEST_HB_NO_CONTACT);
		}
		return;
	}
	/* Transitions keep the agent's channel: a pause or resume does not end the guest. */
	if (enabled_state == VM_STATE_STOPPING || enabled_state == VM_STATE_SHUTTING_DOWN ||
	    enabled_state == VM_STATE_PAUSING || enabled_state == VM_STATE_RESUMING)
		return;
	v->paused = v->time_sync_due = false;
	if (v->running || v->a.fd >= 0) {
		v->running = false;
		ctl_close(v);
		json_decref(v->facts);
		v->facts = json_object();
		set_hb(v, GUEST_HB_NO_CONTACT);
	}
	if (v->sd_pending && (enabled_state == VM_STATE_OFF || enabled_state == VM_STATE_SAVED))
		finish_sd_job(v, 0, NULL);
}

void guests_vm_forget(struct guests *g, const char *vm)
{
	struct gvm **pp = &g->vms;

	while (*pp) {
		struct gvm *v = *pp;

		if (strcmp(v->name, vm) == 0) {
			*pp = v->next;
			if (v->sd_pending)
				finish_sd_job(v, WORKER_JOB_FAILED, "the VM was destroyed");
			gvm_free(v);
			return;
		}
		pp = &v->next;
	}
}

int guests_heartbeat(struct guests *g, const char *vm)
{
	struct gvm *v = gvm_find(g, vm);

	return v && v->running ? v->hb : GUEST_HB_NO_CONTACT;
}

json_t *guests_kvp_guest(struct guests *g, const char *vm)
{
	struct gvm *v = gvm_find(g, vm);

	return v ? json_deep_copy(v->facts) : json_object();
}

json_t *guests_kvp_host(struct guests *g, const char *vm)
{
	struct gvm *v = gvm_find(g, vm);

	return v ? json_deep_copy(v->host) : json_object();
}

/* Keep host (v's pairs after a change) with the VM before the change is made: a restart keeps it. */
static int host_items_save(struct gvm *v, json_t *host, char *err, size_t errlen)
{
	struct registry *reg = v->g->cfg.reg;
	struct vm_entry *vm = reg ? registry_find(reg, v->name) : NULL;
	char *s;
	int r;

	if (!vm || strcmp(vm->name, v->name) != 0)
		return 0;   /* not registered (tests without a registry): memory only */
	if (v->host_broken) {
		snprintf(err, errlen, "VM '%s': its stored host items (%s) could not be loaded; fix or remove that file "
			 "and restart vmmsd", v->name, KVP_FILE);
		return -EIO;
	}
	if (json_object_size(host) == 0)
		return registry_write_file(reg, vm, KVP_FILE, NULL, 0) < 0 ?
		       (snprintf(err, errlen, "VM '%s': could not remove %s", v->name, KVP_FILE), -EIO) : 0;
	s = json_dumps(host, JSON_COMPACT | JSON_SORT_KEYS);
	if (!s)
		return -ENOMEM;
	r = registry_write_file(reg, vm, KVP_FILE, s, strlen(s));
	free(s);
	if (r < 0) {
		snprintf(err, errlen, "VM '%s': could not store its host items: %s", v->name, strerror(-r));
		return r;
	}
	return 0;
}

int guests_kvp_host_set(struct guests *g, const char *vm, int mode, const char *key, const char *value,
			char *err, size_t errlen)
{
	struct gvm *v;
	json_t *next;
	bool have;
	int r;

	if (!guestproto_key_valid(key)) {
		snprintf(err, errlen, "key '%.80s' is not valid: 1 to %d of A-Z a-z 0-9 . _ -, not starting with '.'",
			 key ? key : "", GUESTPROTO_KEY_MAX);
		return -EINVAL;
	}
	if (mode != 2 && (!value || strlen(value) > GUESTPROTO_VALUE_MAX)) {
		snprintf(err, errlen, "the value of '%s' must be a string of at most %d bytes", key, GUESTPROTO_VALUE_MAX);
		return -EINVAL;
	}
	v = gvm_get(g, vm);
	if (!v)
		return -ENOMEM;
	have = json_object_get(v->host, key) != NULL;
	if (mode == 0 && have) {
		snprintf(err, errlen, "VM '%s' already has a host item '%s' (modify it instead)", vm, key);
		return -EEXIST;
	}
	if (mode != 0 && !have) {
		snprintf(err, errlen, "VM '%s' has no host item '%s'", vm, key);
		return -ENOENT;
	}
	if (mode != 2 && !have && json_object_size(v->host) >= GUEST_MAX_HOST_ITEMS) {
		snprintf(err, errlen, "VM '%s' has %d host items already (the most)", vm, GUEST_MAX_HOST_ITEMS);
		return -ENOSPC;
	}
	next = json_deep_copy(v->host);
	if (!next)
		return -ENOMEM;
	if (mode == 2) {
		(void)json_object_del(next, key);
	} else if (json_object_set_new(next, key, json_string(value)) < 0) {
		json_decref(next);
		snprintf(err, errlen, "the value of '%s' must be UTF-8 text", key);
		return -EINVAL;
	}
	r = host_items_save(v, next, err, errlen);
	if (r < 0) {
		json_decref(next);
		return r;
	}
	json_decref(v->host);
	v->host = next;
	push_host_item(v, key, mode == 2 ? NULL : value);
	return 0;
}

int guests_shutdown(struct guests *g, const char *vm, bool force, unsigned timeout_s, const char *reason,
		    const char *job_id, char *err, size_t errlen)
{
	struct gvm *v = gvm_find(g, vm);
	int r;

	if (!v || !v->running) {
		/* No vsock: only the power button can be asked. */
		v = v ? v : gvm_get(g, vm);
		if (!v)
			return -ENOMEM;
	}
	if (v->sd_pending) {
		snprintf(err, errlen, "VM '%s' is already shutting down", vm);
		return -EBUSY;
	}
	v->sd_force = force;
	v->sd_forced = false;
	v->sd_acpi = false;
	v->sd_timeout_s = timeout_s ? MIN(timeout_s, 86400u) : GUEST_SHUTDOWN_TIMEOUT_S;
	if (v->running && v->a.fd >= 0 && v->a.ready && v->hb == GUEST_HB_OK) {
		send_shutdown(v);
		log_info("VM %s: asked the guest agent to shut down%s%.200s", vm, reason && *reason ? ": " : "",
			 reason ? reason : "");
	}
	if (!v->shutdown_id) {
		r = sd_acpi(v, err, errlen);
		if (r < 0)
			return r == -ESRCH ? -ESRCH : r;
	}
	v->sd_pending = true;
	v->sd_deadline = mono_ms() + (int64_t)v->sd_timeout_s * 1000;
	snprintf(v->sd_job, sizeof(v->sd_job), "%s", job_id ? job_id : "");
	return 0;
}
