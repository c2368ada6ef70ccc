/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtio-vsock (virtio 1.2 section 5.10) in userspace, with the host side on stream sockets
 * in the style of Firecracker: a host program connects to a listening Unix socket and writes
 * "CONNECT <port>\n" to reach a guest port (answered "OK <hostport>\n" once the guest
 * accepts); a guest connecting to host CID 2 port P is handed to a connector callback (the
 * worker connects to "<socket>_P"). Only stream sockets; every guest packet is hostile:
 * bounded lengths, per-connection buffering capped at the buf_alloc we advertise, at most
 * VSOCK_MAX_CONNS connections, RST for anything that does not fit.
 *
 * This file opens no host path: it gets an already-listening fd and a connector.
 */
#ifndef VMMS_DEVICES_VIRTIO_VSOCK_H
#define VMMS_DEVICES_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/pci.h"

#define VSOCK_HOST_CID 2
#define VSOCK_MAX_CONNS 1024          /* connections of one device, both directions */
#define VSOCK_BUF_ALLOC (64u * 1024)  /* guest-to-host bytes we buffer per connection (advertised) */
#define VSOCK_MAX_PKT (64u * 1024)    /* largest payload accepted in one guest packet */
#define VSOCK_CTL_QUEUE 256           /* connectionless replies (RST) waiting for an rx buffer */
#define VSOCK_LINE_MAX 32             /* "CONNECT 4294967295\n" fits */

enum {
	VSOCK_RXQ = 0,
	VSOCK_TXQ = 1,
	VSOCK_EVQ = 2,
};

/* The host side of guest-initiated connections. */
struct virtio_vsock_host_ops {
	/* A connected, non-blocking stream socket for host port `port`, or -errno (the guest
	 * then gets RST). Called on the io thread with the device lock held: must not block.
	 * The device owns the fd afterwards. */
	int (*connect)(void *opaque, uint32_t port);
};

/* Counters, for tests and statistics. */
struct virtio_vsock_stats {
	uint64_t rst_sent;       /* RST packets put on the rx queue */
	uint64_t bad_packets;    /* tx packets dropped as malformed (length, cid, type) */
	uint64_t credit_abuse;   /* connections reset for sending beyond our credit */
	uint64_t ctl_dropped;    /* replies dropped because VSOCK_CTL_QUEUE was full */
	uint64_t conns_refused;  /* connections refused at VSOCK_MAX_CONNS */
};

struct vsock_conn; /* vsock.c */

struct virtio_vsock {
	struct virtio_dev vdev; /* first */
	uint64_t guest_cid;
	int listen_fd;          /* ours (a dup), -1 when host-initiated connections are off */
	int epfd;               /* listen fd + connection fds; one watch of the io thread */
	const struct virtio_vsock_host_ops *host_ops;
	void *host_opaque;

	struct vsock_conn *conns; /* [VSOCK_MAX_CONNS] */
	unsigned nr_conns;
	int rxq_head, rxq_tail;   /* connections with packets for the guest (slot indices) */
	uint32_t next_port;       /* host ports for host-initiated connections */
	struct {
		uint64_t src_cid;
		uint32_t src_port, dst_port;
	} ctl[VSOCK_CTL_QUEUE];   /* pending RSTs for packets that have no connection */
	unsigned ctl_head, ctl_len;
	bool event_pending;       /* TRANSPORT_RESET to post on the event queue */
	struct virtio_vsock_stats stats;
	struct vq_chain chain;    /* io thread scratch: tx and event queue */
	struct vq_chain rxchain;  /* io thread scratch: rx queue */
};

/* guest_cid must be >= 3 and < 0xffffffff. listen_fd: a listening stream socket for
 * host-initiated connections, or -1; the device uses a duplicate, the caller keeps its own.
 * host_ops may be NULL (guest-initiated connections are refused). Torn down by
 * virtio_dev_destroy(&vs->vdev). 0 or -errno. */
int virtio_vsock_init(struct virtio_vsock *vs, const struct gmem *mem, struct hv_irq *irq, const char *id,
		      uint64_t guest_cid, int listen_fd, const struct virtio_vsock_host_ops *host_ops,
		      void *host_opaque);
/* Drops every connection and tells the guest driver (TRANSPORT_RESET event), e.g. after the
 * machine was restored and host-side connections are gone. Takes the device lock. */
void virtio_vsock_transport_reset(struct virtio_vsock *vs);
/* Number of live connections (device lock taken). */
unsigned virtio_vsock_nr_conns(struct virtio_vsock *vs);

#endif
