/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The host side of a VM's virtio-vsock: the listening Unix socket host programs connect to
 * ("CONNECT <port>\n"), and the connector that takes a guest's connection to host port P to
 * the listener at "<path>_P". In the foreground the worker binds the socket itself; under
 * vmmsd the parent hands over the listening fd (vsock_host_adopt) and, since a sandboxed
 * worker can neither reach host paths nor create sockets, the parent also hands over a
 * connector (vsock_host_set_connector): the io thread asks vmmsd to connect to "<path>_P"
 * and receives the connected socket (lib/ctlproto.h, "The vsock connector"). Without a path
 * or a connector, guest-initiated connections are refused.
 */
#ifndef VMMS_WORKER_VSOCK_HOST_H
#define VMMS_WORKER_VSOCK_HOST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio/vsock.h"

struct vsock_host {
	int listen_fd;
	char *path;     /* base for "<path>_P"; NULL: guest-initiated connections are refused */
	bool bound;     /* we created path (vsock_host_open) and unlink it on close */
	/* Guards connector_fd and next_token: the io thread uses the connector for a whole
	 * round trip while the main thread may swap it (a restarted vmmsd's new connector). */
	pthread_mutex_t lock;
	int connector_fd; /* SOCK_SEQPACKET to vmmsd (lib/ctlproto.h), -1 none; used when !path */
	uint64_t next_token;
};

/* Binds and listens on path (a stale socket left by a dead worker is replaced; a live one or
 * any other file is an error). On failure writes one line into err. 0 or -errno. */
int vsock_host_open(const char *path, struct vsock_host **ret, char *err, size_t errlen);
/* Takes a listening socket handed over by the parent; path may be NULL. 0 or -errno. */
int vsock_host_adopt(int listen_fd, const char *path, struct vsock_host **ret);
/* Gives h the connector to vmmsd, replacing (and closing) any previous one. Main thread: it
 * sets the receive timeout (CTL_VSOCK_TIMEOUT_MS), which bounds how long a guest's connect
 * can hold the io thread, then swaps under h->lock, so a connect in flight finishes on the
 * old connector first. On success h owns fd; on failure h is unchanged and fd stays the
 * caller's. 0 or -errno. */
int vsock_host_set_connector(struct vsock_host *h, int fd);
/* Closes the socket (and removes the path vsock_host_open created). Accepts NULL. */
void vsock_host_close(struct vsock_host *h);

/* The device's connector over a struct vsock_host (opaque). */
extern const struct virtio_vsock_host_ops vsock_host_ops;

#endif
