// SPDX-License-Identifier: GPL-2.0-only
/* virtio-vsock: stream connections between the guest and host Unix sockets, with credit-based flow control. */
#include "devices/virtio/vsock.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>

#include "lib/log.h"
#include "lib/util.h"

#define HDR_SIZE sizeof(struct virtio_vsock_hdr)
#define TAG_LISTEN UINT64_MAX
#define TX_BUDGET 256          /* tx chains per kick before we yield to other work */
#define ACCEPT_BUDGET 32       /* host connections accepted per wake-up */
#define FIRST_HOST_PORT (1u << 30)

/* What a connection still has to tell the guest, one packet each. */
enum {
	P_REQUEST = 1u << 0,
	P_RESPONSE = 1u << 1,
	P_CREDIT_UPDATE = 1u << 2,
	P_CREDIT_REQUEST = 1u << 3,
	P_DATA = 1u << 4,       /* the host socket is readable (or at EOF) */
	P_SHUTDOWN = 1u << 5,
};

enum conn_state {
	CONN_FREE = 0,
	CONN_HANDSHAKE,   /* accepted from the listening socket, reading "CONNECT <port>\n" */
	CONN_CONNECTING,  /* REQUEST for the guest queued or sent, waiting for RESPONSE */
	CONN_ESTABLISHED,
};

struct vsock_conn {
	enum conn_state state;
	uint32_t gen;             /* tells a reused slot from the one an epoll event was for */
	int fd;                   /* host stream socket */
	uint32_t events;          /* epoll events registered for fd (0: not in the epoll set) */
	uint32_t local_port;      /* host side (CID 2) */
	uint32_t peer_port;       /* guest side */
	unsigned pending;         /* P_* */
	int rx_prev, rx_next;     /* in the device's rx list when in_rxq */
	bool in_rxq;

	/* Host to guest: what the guest told us about its receive buffer. */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;          /* payload bytes sent to the guest */
	bool credit_requested;
	bool host_eof;            /* the host socket read EOF: SHUTDOWN(SEND) queued or sent */
	uint32_t shut_flags;      /* flags for the queued P_SHUTDOWN */

	/* Guest to host: payload accepted and not yet written lives in buf (a ring of
	 * VSOCK_BUF_ALLOC bytes, allocated on first use). rx_cnt - fwd_cnt == buf_len. */
	uint32_t rx_cnt, fwd_cnt, last_fwd_cnt;
	uint8_t *buf;
	uint32_t buf_head, buf_len;
	uint32_t peer_shut;       /* VIRTIO_VSOCK_SHUTDOWN_* the guest sent */
	bool host_wr_shut;        /* shutdown(SHUT_WR) done on fd */

	char line[VSOCK_LINE_MAX];
	unsigned line_len;
};

static struct virtio_vsock *to_vs(struct virtio_dev *vdev)
{
	return container_of(vdev, struct virtio_vsock, vdev);
}

static int conn_slot(const struct virtio_vsock *vs, const struct vsock_conn *c)
{
	return (int)(c - vs->conns);
}

/* --- connection table --------------------------------------------------------------------- */

static struct vsock_conn *conn_find(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port)
{
	/* A linear scan over at most VSOCK_MAX_CONNS slots: a few microseconds, and no
	 * guest-controlled hash to attack. */
	for (unsigned i = 0; i < VSOCK_MAX_CONNS && vs->nr_conns; i++) {
		struct vsock_conn *c = &vs->conns[i];

		if (c->state > CONN_HANDSHAKE && c->local_port == local_port && c->peer_port == peer_port)
			return c;
	}
	return NULL;
}

static bool local_port_used(struct virtio_vsock *vs, uint32_t port)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (vs->conns[i].state > CONN_HANDSHAKE && vs->conns[i].local_port == port)
			return true;
	return false;
}

static struct vsock_conn *conn_alloc(struct virtio_vsock *vs, int fd)
{
	if (vs->nr_conns >= VSOCK_MAX_CONNS)
		return NULL;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &vs->conns[i];
		uint32_t gen = c->gen + 1;

		if (c->state != CONN_FREE)
			continue;
		*c = (struct vsock_conn){ .gen = gen, .fd = fd, .rx_prev = -1, .rx_next = -1 };
		vs->nr_conns++;
		return c;
	}
	return NULL;
}

static void rxq_unlink(struct virtio_vsock *vs, struct vsock_conn *c)
{
	if (!c->in_rxq)
		return;
	if (c->rx_prev >= 0)
		vs->conns[c->rx_prev].rx_next = c->rx_next;
	else
		vs->rxq_head = c->rx_next;
	if (c->rx_next >= 0)
		vs->conns[c->rx_next].rx_prev = c->rx_prev;
	else
		vs->rxq_tail = c->rx_prev;
	c->rx_prev = c->rx_next = -1;
	c->in_rxq = false;
}

static void rxq_append(struct virtio_vsock *vs, struct vsock_conn *c)
{
	int slot = conn_slot(vs, c);

	if (c->in_rxq)
		return;
	c->rx_prev = vs->rxq_tail;
	c->rx_next = -1;
	if (vs->rxq_tail >= 0)
		vs->conns[vs->rxq_tail].rx_next = slot;
	else
		vs->rxq_head = slot;
	vs->rxq_tail = slot;
	c->in_rxq = true;
}

static void conn_free(struct virtio_vsock *vs, struct vsock_conn *c)
{
	if (c->state == CONN_FREE)
		return;
	rxq_unlink(vs, c);
	if (c->fd >= 0) {
		if (c->events)
			(void)epoll_ctl(vs->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	free(c->buf);
	*c = (struct vsock_conn){ .gen = c->gen, .fd = -1, .rx_prev = -1, .rx_next = -1 };
	vs->nr_conns--;
}

static void conns_drop_all(struct virtio_vsock *vs)
{
	for (unsigned i = 0; vs->conns && i < VSOCK_MAX_CONNS; i++)
		conn_free(vs, &vs->conns[i]);
	vs->rxq_head = vs->rxq_tail = -1;
	vs->ctl_head = vs->ctl_len = 0;
}

static void conn_queue(struct virtio_vsock *vs, struct vsock_conn *c, unsigned what)
{
	c->pending |= what;
	rxq_append(vs, c);
}

/* Bytes the guest can still take on this connection. */
static uint32_t conn_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	/* The guest's numbers are hostile: a fwd_cnt ahead of what we sent wraps to a huge
	 * in-flight count and, like a buf_alloc below what is in flight, means no credit. */
	if (in_flight > c->peer_buf_alloc)
		return 0;
	return c->peer_buf_alloc - in_flight;
}

/* Brings the epoll registration of c->fd in line with what the connection can do now. */
static void conn_update_events(struct virtio_vsock *vs, struct vsock_conn *c)
{
	uint32_t ev = 0;
	struct epoll_event e;
	int op;

	if (c->fd < 0)
		return;
	switch (c->state) {
	case CONN_HANDSHAKE:
		ev = EPOLLIN;
		break;
	case CONN_CONNECTING:
		/* Only a full close (a host that gave up waiting for the guest) matters here;
		 * early data or a half-close waits until the guest answers. */
		ev = EPOLLHUP;
		break;
	case CONN_ESTABLISHED:
		if (!(c->pending & P_DATA) && !c->host_eof && !(c->peer_shut & VIRTIO_VSOCK_SHUTDOWN_RCV) &&
		    conn_peer_credit(c) > 0)
			ev |= EPOLLIN;
		if (c->buf_len)
			ev |= EPOLLOUT;
		break;
	default:
		break;
	}
	if (ev == c->events)
		return;
	/* An fd we want nothing from leaves the set: level-triggered EPOLLHUP would otherwise
	 * wake the io thread in a loop. */
	op = !ev ? EPOLL_CTL_DEL : c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	e = (struct epoll_event){ .events = ev, .data.u64 = ((uint64_t)c->gen << 32) | (uint32_t)conn_slot(vs, c) };
	if (epoll_ctl(vs->epfd, op, c->fd, &e) == 0)
		c->events = ev;
}

static void ctl_rst(struct virtio_vsock *vs, uint64_t src_cid, uint32_t src_port, uint32_t dst_port)
{
	unsigned i;

	if (vs->ctl_len >= VSOCK_CTL_QUEUE) {
		/* A guest that floods us without taking replies loses them; memory stays bounded. */
		vs->stats.ctl_dropped++;
		return;
	}
	i = (vs->ctl_head + vs->ctl_len++) % VSOCK_CTL_QUEUE;
	vs->ctl[i].src_cid = src_cid;
	vs->ctl[i].src_port = src_port;
	vs->ctl[i].dst_port = dst_port;
}

/* Resets a connection: the host socket is closed now, the guest gets RST. */
static void conn_reset(struct virtio_vsock *vs, struct vsock_conn *c)
{
	if (c->state == CONN_CONNECTING || c->state == CONN_ESTABLISHED)
		ctl_rst(vs, VSOCK_HOST_CID, c->local_port, c->peer_port);
	conn_free(vs, c);
}

/* --- guest to host: buffered bytes -------------------------------------------------------- */

static ssize_t host_send(int fd, struct iovec *iov, unsigned nr)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = nr };
	ssize_t n;

	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	return n < 0 ? -errno : n;
}

static void conn_forwarded(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t n)
{
	c->fwd_cnt += n;
	/* The guest believes rx_cnt - last_fwd_cnt bytes of our buffer are in use. Once that is
	 * over half and we have freed some, tell it, or a guest out of credit would wait forever. */
	if (c->fwd_cnt != c->last_fwd_cnt && c->rx_cnt - c->last_fwd_cnt > VSOCK_BUF_ALLOC / 2)
		conn_queue(vs, c, P_CREDIT_UPDATE);
}

static void conn_finish_guest_side(struct virtio_vsock *vs, struct vsock_conn *c)
{
	if (c->buf_len)
		return;
	if ((c->peer_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) && !c->host_wr_shut) {
		(void)shutdown(c->fd, SHUT_WR);
		c->host_wr_shut = true;
	}
	if ((c->peer_shut & (VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV)) ==
	    (VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV))
		/* Clean close (virtio 1.2 5.10.6.6): the guest is done both ways, answer RST. */
		conn_reset(vs, c);
}

/* Writes what is buffered to the host socket. */
static void conn_flush(struct virtio_vsock *vs, struct vsock_conn *c)
{
	while (c->buf_len) {
		uint32_t first = MIN(c->buf_len, VSOCK_BUF_ALLOC - c->buf_head);
		struct iovec iov[2] = {
			{ c->buf + c->buf_head, first },
			{ c->buf, c->buf_len - first },
		};
		ssize_t n = host_send(c->fd, iov, c->buf_len > first ? 2 : 1);

		if (n < 0) {
			conn_reset(vs, c);
			return;
		}
		if (n == 0)
			break;
		c->buf_head = (uint32_t)((c->buf_head + (uint32_t)n) % VSOCK_BUF_ALLOC);
		c->buf_len -= (uint32_t)n;
		conn_forwarded(vs, c, (uint32_t)n);
	}
	conn_finish_guest_side(vs, c);
	if (c->state != CONN_FREE)
		conn_update_events(vs, c);
}

/* Picks [skip, skip+len) out of iov into out; returns the number of segments. */
static unsigned iov_slice(const struct iovec *iov, unsigned nr, size_t skip, size_t len, struct iovec *out)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nr && len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		out[n].iov_base = (uint8_t *)iov[i].iov_base + skip;
		out[n].iov_len = MIN(l - skip, len);
		len -= out[n].iov_len;
		skip = 0;
		n++;
	}
	return n;
}

/* An RW payload of len bytes from the guest (already checked against the chain). */
static void conn_guest_data(struct virtio_vsock *vs, struct vsock_conn *c, const struct vq_chain *ch, uint32_t len)
{
	struct iovec seg[VQ_MAX_SIZE];
	uint32_t done = 0;

	if (c->buf_len + (uint64_t)len > VSOCK_BUF_ALLOC) {
		/* More than the credit we gave: a guest that ignores flow control loses the
		 * connection rather than growing our memory. */
		vs->stats.credit_abuse++;
		conn_reset(vs, c);
		return;
	}
	c->rx_cnt += len;
	if (!c->buf_len) {
		unsigned nseg = iov_slice(ch->iov, ch->nr_out, HDR_SIZE, len, seg);
		ssize_t n = host_send(c->fd, seg, nseg);

		if (n < 0) {
			conn_reset(vs, c);
			return;
		}
		done = (uint32_t)n;
		conn_forwarded(vs, c, done);
	}
	if (done < len) {
		uint32_t rest = len - done, tail, first;

		if (!c->buf) {
			c->buf = malloc(VSOCK_BUF_ALLOC);
			if (!c->buf) {
				conn_reset(vs, c);
				return;
			}
			c->buf_head = 0;
		}
		tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
		first = MIN(rest, VSOCK_BUF_ALLOC - tail);
		vq_iov_read(ch->iov, ch->nr_out, HDR_SIZE + done, c->buf + tail, first);
		if (rest > first)
			vq_iov_read(ch->iov, ch->nr_out, HDR_SIZE + done + first, c->buf, rest - first);
		c->buf_len += rest;
	}
	conn_update_events(vs, c);
}

/* --- guest packets (tx queue) ------------------------------------------------------------- */

static void conn_established(struct virtio_vsock *vs, struct vsock_conn *c)
{
	char ok[32];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);
	struct iovec iov = { ok, (size_t)n };

	c->state = CONN_ESTABLISHED;
	/* A fresh socket has room for a dozen bytes; anything else means the host is gone. */
	if (host_send(c->fd, &iov, 1) != n) {
		conn_reset(vs, c);
		return;
	}
	conn_update_events(vs, c);
}

static void guest_request(struct virtio_vsock *vs, const struct virtio_vsock_hdr *h, uint32_t dst_port,
			  uint32_t src_port)
{
	struct vsock_conn *c = conn_find(vs, dst_port, src_port);
	int fd;

	if (c) {
		/* A second REQUEST for a live connection: the guest is confused or hostile. */
		conn_reset(vs, c);
		return;
	}
	if (vs->nr_conns >= VSOCK_MAX_CONNS || !vs->host_ops || !vs->host_ops->connect) {
		if (vs->nr_conns >= VSOCK_MAX_CONNS)
			vs->stats.conns_refused++;
		ctl_rst(vs, VSOCK_HOST_CID, dst_port, src_port);
		return;
	}
	fd = vs->host_ops->connect(vs->host_opaque, dst_port);
	if (fd < 0) {
		ctl_rst(vs, VSOCK_HOST_CID, dst_port, src_port);
		return;
	}
	c = conn_alloc(vs, fd);
	if (!c) {
		close(fd);
		ctl_rst(vs, VSOCK_HOST_CID, dst_port, src_port);
		return;
	}
	c->state = CONN_ESTABLISHED;
	c->local_port = dst_port;
	c->peer_port = src_port;
	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	conn_queue(vs, c, P_RESPONSE);
	conn_update_events(vs, c);
}

/* One packet from the guest. Every header field is hostile; it was copied out of guest memory
 * once, so the guest cannot change it while we look. */
static void guest_packet(struct virtio_vsock *vs, const struct vq_chain *ch)
{
	struct virtio_vsock_hdr h;
	struct vsock_conn *c;
	uint32_t len, src_port, dst_port, flags;
	uint16_t op, type;
	uint64_t src_cid, dst_cid;

	if (ch->out_len < HDR_SIZE) {
		vs->stats.bad_packets++;
		return;
	}
	vq_iov_read(ch->iov, ch->nr_out, 0, &h, HDR_SIZE);
	src_cid = le64toh(h.src_cid);
	dst_cid = le64toh(h.dst_cid);
	src_port = le32toh(h.src_port);
	dst_port = le32toh(h.dst_port);
	len = le32toh(h.len);
	type = le16toh(h.type);
	op = le16toh(h.op);
	flags = le32toh(h.flags);

	if (src_cid != vs->guest_cid) {
		/* Spoofed source: there is nobody to answer. */
		vs->stats.bad_packets++;
		return;
	}
	c = conn_find(vs, dst_port, src_port);
	if (len > VSOCK_MAX_PKT || len > ch->out_len - HDR_SIZE) {
		vs->stats.bad_packets++;
		if (c)
			conn_reset(vs, c);
		return;
	}
	if (op == VIRTIO_VSOCK_OP_RST) {
		/* Never answer RST with RST. */
		if (c)
			conn_free(vs, c);
		return;
	}
	if (dst_cid != VSOCK_HOST_CID || type != VIRTIO_VSOCK_TYPE_STREAM) {
		/* Another VM's CID, or seqpacket (not offered): refuse, the guest's connect fails fast. */
		if (type != VIRTIO_VSOCK_TYPE_STREAM)
			vs->stats.bad_packets++;
		if (c)
			conn_reset(vs, c);
		else
			ctl_rst(vs, dst_cid, dst_port, src_port);
		return;
	}
	if (op == VIRTIO_VSOCK_OP_REQUEST) {
		guest_request(vs, &h, dst_port, src_port);
		return;
	}
	if (!c) {
		ctl_rst(vs, VSOCK_HOST_CID, dst_port, src_port);
		return;
	}
	/* buf_alloc and fwd_cnt ride on every packet (virtio 1.2 5.10.6.3). */
	c->peer_buf_alloc = le32toh(h.buf_alloc);
	c->peer_fwd_cnt = le32toh(h.fwd_cnt);
	c->credit_requested = false;

	switch (op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != CONN_CONNECTING || (c->pending & P_REQUEST)) {
			conn_reset(vs, c);
			return;
		}
		conn_established(vs, c);
		return;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (c->state != CONN_ESTABLISHED) {
			conn_reset(vs, c);
			return;
		}
		c->peer_shut |= flags & (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
		conn_finish_guest_side(vs, c);
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != CONN_ESTABLISHED || (c->peer_shut & VIRTIO_VSOCK_SHUTDOWN_SEND)) {
			conn_reset(vs, c);
			return;
		}
		if (len)
			conn_guest_data(vs, c, ch, len);
		return;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		if (c->state != CONN_ESTABLISHED) {
			conn_reset(vs, c);
			return;
		}
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		if (c->state != CONN_ESTABLISHED) {
			conn_reset(vs, c);
			return;
		}
		conn_queue(vs, c, P_CREDIT_UPDATE);
		break;
	default:
		vs->stats.bad_packets++;
		conn_reset(vs, c);
		return;
	}
	if (c->state != CONN_FREE)
		conn_update_events(vs, c);
}

/* --- host to guest (rx queue) ------------------------------------------------------------- */

static void hdr_fill(struct virtio_vsock *vs, struct virtio_vsock_hdr *h, uint64_t src_cid, uint32_t src_port,
		     uint32_t dst_port, uint16_t op, uint32_t len, uint32_t flags, uint32_t fwd_cnt)
{
	*h = (struct virtio_vsock_hdr){
		.src_cid = htole64(src_cid),
		.dst_cid = htole64(vs->guest_cid),
		.src_port = htole32(src_port),
		.dst_port = htole32(dst_port),
		.len = htole32(len),
		.type = htole16(VIRTIO_VSOCK_TYPE_STREAM),
		.op = htole16(op),
		.flags = htole32(flags),
		.buf_alloc = htole32(VSOCK_BUF_ALLOC),
		.fwd_cnt = htole32(fwd_cnt),
	};
}

/* Peeks at the host socket: 1 data, 0 EOF, -EAGAIN nothing yet, other -errno an error. */
static int host_peek(int fd)
{
	char b;
	ssize_t n;

	do
		n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n > 0;
}

/* Chooses c's next packet, or none (returns false) when it has nothing it can send now. */
static bool conn_next_packet(struct virtio_vsock *vs, struct vsock_conn *c, uint16_t *op, uint32_t *flags)
{
	*flags = 0;
	if (c->pending & P_REQUEST) {
		c->pending &= ~P_REQUEST;
		*op = VIRTIO_VSOCK_OP_REQUEST;
		return true;
	}
	if (c->pending & P_RESPONSE) {
		c->pending &= ~P_RESPONSE;
		*op = VIRTIO_VSOCK_OP_RESPONSE;
		return true;
	}
	if (c->pending & P_CREDIT_UPDATE) {
		c->pending &= ~P_CREDIT_UPDATE;
		*op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
		return true;
	}
	if (c->pending & P_CREDIT_REQUEST) {
		c->pending &= ~P_CREDIT_REQUEST;
		*op = VIRTIO_VSOCK_OP_CREDIT_REQUEST;
		return true;
	}
	while (c->pending & P_DATA) {
		int r;

		if (c->state != CONN_ESTABLISHED || (c->peer_shut & VIRTIO_VSOCK_SHUTDOWN_RCV)) {
			c->pending &= ~P_DATA;
			break;
		}
		if (conn_peer_credit(c) == 0) {
			c->pending &= ~P_DATA;
			if (!c->credit_requested) {
				c->credit_requested = true;
				*op = VIRTIO_VSOCK_OP_CREDIT_REQUEST;
				return true;
			}
			break;
		}
		r = host_peek(c->fd);
		if (r == 1) {
			*op = VIRTIO_VSOCK_OP_RW;
			return true;
		}
		c->pending &= ~P_DATA;
		if (r == -EAGAIN)
			break;
		/* EOF or error: the host will send nothing more. */
		c->host_eof = true;
		c->pending |= P_SHUTDOWN;
		c->shut_flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
		if (r < 0 || c->host_wr_shut)
			c->shut_flags |= VIRTIO_VSOCK_SHUTDOWN_RCV;
	}
	if (c->pending & P_SHUTDOWN) {
		c->pending &= ~P_SHUTDOWN;
		*op = VIRTIO_VSOCK_OP_SHUTDOWN;
		*flags = c->shut_flags;
		return true;
	}
	return false;
}

/* Writes c's packet op into the rx chain ch. Returns the bytes written (0: the connection
 * failed and was reset, ch is unused). */
static uint32_t conn_fill(struct virtio_vsock *vs, struct vsock_conn *c, const struct vq_chain *ch, uint16_t op,
			  uint32_t flags)
{
	const struct iovec *in = ch->iov + ch->nr_out;
	struct virtio_vsock_hdr h;
	uint32_t len = 0;

	if (op == VIRTIO_VSOCK_OP_RW) {
		struct iovec seg[VQ_MAX_SIZE];
		uint64_t room = MIN(ch->in_len - HDR_SIZE, (uint64_t)VSOCK_MAX_PKT);
		uint32_t want = (uint32_t)MIN(room, (uint64_t)conn_peer_credit(c));
		unsigned nseg = iov_slice(in, ch->nr_in, HDR_SIZE, want, seg);
		ssize_t n;

		do
			n = readv(c->fd, seg, (int)nseg);
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			/* The peek said there was data and nobody else reads this fd: an error. */
			conn_reset(vs, c);
			return 0;
		}
		len = (uint32_t)n;
		c->tx_cnt += len;
		if (len < want)
			c->pending &= ~P_DATA; /* drained: epoll tells us about more */
	}
	hdr_fill(vs, &h, VSOCK_HOST_CID, c->local_port, c->peer_port, op, len, flags, c->fwd_cnt);
	c->last_fwd_cnt = c->fwd_cnt;
	vq_iov_write(in, ch->nr_in, 0, &h, HDR_SIZE);
	if (op == VIRTIO_VSOCK_OP_REQUEST)
		c->state = CONN_CONNECTING;
	return (uint32_t)HDR_SIZE + len;
}

/* Puts back what conn_next_packet() took when no receive buffer was there for it. */
static void conn_unpick(struct vsock_conn *c, uint16_t op)
{
	switch (op) {
	case VIRTIO_VSOCK_OP_REQUEST: c->pending |= P_REQUEST; break;
	case VIRTIO_VSOCK_OP_RESPONSE: c->pending |= P_RESPONSE; break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE: c->pending |= P_CREDIT_UPDATE; break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->pending |= P_CREDIT_REQUEST;
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN: c->pending |= P_SHUTDOWN; break;
	default: c->pending |= P_DATA; break;
	}
}

/* Pops the next receive buffer we can use (device-writable, room for a header and at least
 * one byte) into vs->rxchain. Unusable ones go back empty; at most a queue's worth per call. */
static bool rx_pop(struct virtio_vsock *vs, bool *any)
{
	struct virtio_dev *vdev = &vs->vdev;
	struct vq_chain *ch = &vs->rxchain;

	for (unsigned i = 0; i < VQ_MAX_SIZE; i++) {
		if (virtio_queue_pop(vdev, VSOCK_RXQ, ch) != 1)
			return false;
		if (!ch->nr_out && ch->in_len > HDR_SIZE)
			return true;
		vq_push(&vdev->queues[VSOCK_RXQ].vq, ch->head, 0);
		*any = true;
	}
	return false;
}

/* Moves pending packets into the guest's receive buffers while both exist. Each pass either
 * fills a buffer or takes a connection off the list, so it ends. */
static void rx_process(struct virtio_vsock *vs)
{
	struct virtio_dev *vdev = &vs->vdev;
	struct vq_chain *ch = &vs->rxchain;
	bool any = false;

	while (vs->ctl_len || vs->rxq_head >= 0) {
		struct virtio_vsock_hdr h;
		struct vsock_conn *c;
		uint32_t written, flags;
		uint16_t op;

		if (vs->ctl_len) {
			unsigned i = vs->ctl_head;

			if (!rx_pop(vs, &any))
				break;
			hdr_fill(vs, &h, vs->ctl[i].src_cid, vs->ctl[i].src_port, vs->ctl[i].dst_port,
				 VIRTIO_VSOCK_OP_RST, 0, 0, 0);
			vq_iov_write(ch->iov + ch->nr_out, ch->nr_in, 0, &h, HDR_SIZE);
			vs->ctl_head = (vs->ctl_head + 1) % VSOCK_CTL_QUEUE;
			vs->ctl_len--;
			vs->stats.rst_sent++;
			vq_push(&vdev->queues[VSOCK_RXQ].vq, ch->head, HDR_SIZE);
			any = true;
			continue;
		}
		c = &vs->conns[vs->rxq_head];
		rxq_unlink(vs, c);
		if (!conn_next_packet(vs, c, &op, &flags)) {
			conn_update_events(vs, c);
			continue;
		}
		if (!rx_pop(vs, &any)) {
			conn_unpick(c, op);
			rxq_append(vs, c);
			conn_update_events(vs, c);
			break;
		}
		written = conn_fill(vs, c, ch, op, flags);
		if (!written) {
			/* c was reset; its RST goes out on this buffer next round. Hand this one
			 * back empty rather than keep a popped chain. */
			vq_push(&vdev->queues[VSOCK_RXQ].vq, ch->head, 0);
			any = true;
			continue;
		}
		vq_push(&vdev->queues[VSOCK_RXQ].vq, ch->head, written);
		any = true;
		if (c->pending)
			rxq_append(vs, c);
		conn_update_events(vs, c);
	}
	if (any)
		virtio_queue_interrupt(vdev, VSOCK_RXQ);
}

/* --- events ------------------------------------------------------------------------------- */

static void event_process(struct virtio_vsock *vs)
{
	struct virtio_dev *vdev = &vs->vdev;
	struct virtio_vsock_event ev = { .id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET) };

	if (!vs->event_pending || virtio_queue_pop(vdev, VSOCK_EVQ, &vs->chain) != 1)
		return;
	vs->event_pending = false;
	if (vs->chain.in_len >= sizeof(ev)) {
		vq_iov_write(vs->chain.iov + vs->chain.nr_out, vs->chain.nr_in, 0, &ev, sizeof(ev));
		vq_push(&vdev->queues[VSOCK_EVQ].vq, vs->chain.head, sizeof(ev));
	} else {
		vq_push(&vdev->queues[VSOCK_EVQ].vq, vs->chain.head, 0);
	}
	virtio_queue_interrupt(vdev, VSOCK_EVQ);
}

/* --- host sockets ------------------------------------------------------------------------- */

/* Reads "CONNECT <port>\n" without consuming anything after the newline (the host may send
 * its first bytes right behind it). Host input is bounded like guest input. */
static void conn_handshake(struct virtio_vsock *vs, struct vsock_conn *c)
{
	char buf[VSOCK_LINE_MAX];
	size_t room = sizeof(c->line) - 1 - c->line_len, take;
	ssize_t n;
	char *nl, *end;
	unsigned long port;

	n = recv(c->fd, buf, room, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(vs, c);
		return;
	}
	nl = memchr(buf, '\n', (size_t)n);
	take = nl ? (size_t)(nl - buf) + 1 : (size_t)n;
	if (recv(c->fd, c->line + c->line_len, take, MSG_DONTWAIT) != (ssize_t)take) {
		conn_free(vs, c);
		return;
	}
	c->line_len += (unsigned)take;
	c->line[c->line_len] = '\0';
	if (!nl) {
		if (c->line_len >= sizeof(c->line) - 1)
			conn_free(vs, c); /* no newline within the limit */
		return;
	}
	c->line[c->line_len - 1] = '\0';
	if (c->line_len > 1 && c->line[c->line_len - 2] == '\r')
		c->line[c->line_len - 2] = '\0';
	if (strncmp(c->line, "CONNECT ", 8) != 0 || c->line[8] < '0' || c->line[8] > '9') {
		conn_free(vs, c);
		return;
	}
	errno = 0;
	port = strtoul(c->line + 8, &end, 10);
	if (errno || *end || port > UINT32_MAX) {
		conn_free(vs, c);
		return;
	}
	/* A host port no other connection uses; at most VSOCK_MAX_CONNS are taken. */
	for (unsigned i = 0; i <= VSOCK_MAX_CONNS; i++) {
		uint32_t p = vs->next_port++;

		if (vs->next_port < FIRST_HOST_PORT)
			vs->next_port = FIRST_HOST_PORT;
		if (!local_port_used(vs, p)) {
			c->local_port = p;
			break;
		}
	}
	c->peer_port = (uint32_t)port;
	c->state = CONN_CONNECTING;
	c->peer_buf_alloc = 0;
	conn_queue(vs, c, P_REQUEST);
	conn_update_events(vs, c);
}

static void host_accept(struct virtio_vsock *vs)
{
	for (unsigned i = 0; i < ACCEPT_BUDGET; i++) {
		int fd = accept4(vs->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vsock_conn *c;

		if (fd < 0)
			return;
		c = conn_alloc(vs, fd);
		if (!c) {
			vs->stats.conns_refused++;
			close(fd);
			continue;
		}
		c->state = CONN_HANDSHAKE;
		conn_update_events(vs, c);
	}
}

static void host_event(struct virtio_vsock *vs, uint64_t tag, uint32_t events)
{
	uint32_t slot = (uint32_t)tag, gen = (uint32_t)(tag >> 32);
	struct vsock_conn *c;

	if (slot >= VSOCK_MAX_CONNS)
		return;
	c = &vs->conns[slot];
	if (c->state == CONN_FREE || c->gen != gen)
		return; /* freed by an earlier event of this batch */
	if (c->state == CONN_HANDSHAKE) {
		conn_handshake(vs, c);
		return;
	}
	if (c->state == CONN_CONNECTING) {
		if (events & (EPOLLHUP | EPOLLERR))
			conn_reset(vs, c);
		return;
	}
	if ((c->events & EPOLLOUT) && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
		conn_flush(vs, c);
	if (c->state == CONN_FREE || c->gen != gen)
		return;
	if ((c->events & EPOLLIN) && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		conn_queue(vs, c, P_DATA);
		conn_update_events(vs, c);
	}
}

static void host_watch(struct virtio_dev *vdev, void *opaque)
{
	struct virtio_vsock *vs = opaque;
	struct epoll_event ev[64];
	int n = epoll_wait(vs->epfd, ev, ARRAY_SIZE(ev), 0);

	for (int i = 0; i < n; i++) {
		if (ev[i].data.u64 == TAG_LISTEN)
			host_accept(vs);
		else
			host_event(vs, ev[i].data.u64, ev[i].events);
	}
	rx_process(vs);
	(void)vdev;
}

/* --- virtio ops --------------------------------------------------------------------------- */

static void vsock_queue_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_vsock *vs = to_vs(vdev);

	if (q == VSOCK_TXQ) {
		unsigned done = 0;

		while (done < TX_BUDGET && virtio_queue_pop(vdev, VSOCK_TXQ, &vs->chain) == 1) {
			guest_packet(vs, &vs->chain);
			vq_push(&vdev->queues[VSOCK_TXQ].vq, vs->chain.head, 0);
			done++;
		}
		if (done)
			virtio_queue_interrupt(vdev, VSOCK_TXQ);
		if (done == TX_BUDGET) {
			/* Budget spent: come back after other work instead of looping on a guest
			 * that refills as fast as we drain. */
			uint64_t one = 1;

			(void)!write(vdev->queues[VSOCK_TXQ].kick_fd, &one, sizeof(one));
		}
	} else if (q == VSOCK_EVQ) {
		event_process(vs);
	}
	rx_process(vs);
}

static void vsock_config_read(struct virtio_dev *vdev, unsigned offset, void *data, unsigned len)
{
	struct virtio_vsock_config cfg = { .guest_cid = htole64(to_vs(vdev)->guest_cid) };

	memcpy(data, (uint8_t *)&cfg + offset, len);
}

static void vsock_reset(struct virtio_dev *vdev)
{
	struct virtio_vsock *vs = to_vs(vdev);

	/* The guest driver went away (reload, reboot): every connection it had is gone. */
	conns_drop_all(vs);
	vs->event_pending = false;
}

static void vsock_free(struct virtio_vsock *vs)
{
	conns_drop_all(vs);
	free(vs->conns);
	vs->conns = NULL;
	if (vs->epfd >= 0)
		close(vs->epfd);
	if (vs->listen_fd >= 0)
		close(vs->listen_fd);
	vs->epfd = vs->listen_fd = -1;
}

static void vsock_destroy(struct virtio_dev *vdev)
{
	vsock_free(to_vs(vdev));
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "virtio-vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.class_code = 0x088000,
	.nr_queues = 3,
	.queue_max = 256,
	.config_size = sizeof(struct virtio_vsock_config),
	.config_read = vsock_config_read,
	.queue_notify = vsock_queue_notify,
	.reset = vsock_reset,
	.destroy = vsock_destroy,
};

int virtio_vsock_init(struct virtio_vsock *vs, const struct gmem *mem, struct hv_irq *irq, const char *id,
		      uint64_t guest_cid, int listen_fd, const struct virtio_vsock_host_ops *host_ops,
		      void *host_opaque)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_LISTEN };
	int r;

	if (guest_cid < 3 || guest_cid >= UINT32_MAX)
		return -EINVAL;
	vs->guest_cid = guest_cid;
	vs->listen_fd = -1;
	vs->host_ops = host_ops;
	vs->host_opaque = host_opaque;
	vs->nr_conns = 0;
	vs->rxq_head = vs->rxq_tail = -1;
	vs->next_port = FIRST_HOST_PORT;
	vs->ctl_head = vs->ctl_len = 0;
	vs->event_pending = false;
	vs->stats = (struct virtio_vsock_stats){ 0 };
	vs->conns = calloc(VSOCK_MAX_CONNS, sizeof(*vs->conns));
	vs->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!vs->conns || vs->epfd < 0) {
		r = vs->conns ? -errno : -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		vs->conns[i] = (struct vsock_conn){ .fd = -1, .rx_prev = -1, .rx_next = -1 };
	if (listen_fd >= 0) {
		vs->listen_fd = fcntl(listen_fd, F_DUPFD_CLOEXEC, 3);
		if (vs->listen_fd < 0) {
			r = -errno;
			goto fail;
		}
		(void)fcntl(vs->listen_fd, F_SETFL, fcntl(vs->listen_fd, F_GETFL) | O_NONBLOCK);
		if (epoll_ctl(vs->epfd, EPOLL_CTL_ADD, vs->listen_fd, &ev) < 0) {
			r = -errno;
			goto fail;
		}
	}
	r = virtio_dev_init(&vs->vdev, &vsock_ops, mem, irq, id);
	if (r < 0)
		goto fail;
	r = virtio_dev_watch(&vs->vdev, vs->epfd, host_watch, vs);
	if (r < 0) {
		virtio_dev_destroy(&vs->vdev); /* calls vsock_destroy */
		return r;
	}
	return 0;
fail:
	vsock_free(vs);
	return r;
}

void virtio_vsock_transport_reset(struct virtio_vsock *vs)
{
	pthread_mutex_lock(&vs->vdev.lock);
	conns_drop_all(vs);
	vs->event_pending = true;
	event_process(vs);
	pthread_mutex_unlock(&vs->vdev.lock);
}

unsigned virtio_vsock_nr_conns(struct virtio_vsock *vs)
{
	unsigned n;

	pthread_mutex_lock(&vs->vdev.lock);
	n = vs->nr_conns;
	pthread_mutex_unlock(&vs->vdev.lock);
	return n;
}
