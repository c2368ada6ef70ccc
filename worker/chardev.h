/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Character backends for the guest's serial console and virtio-console: the terminal,
 * a file, a Unix socket (listening or connecting), or nothing. Output is written from vCPU
 * and io threads; input is read on the main loop and pushed into the device.
 */
#ifndef VMMS_WORKER_CHARDEV_H
#define VMMS_WORKER_CHARDEV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/domxml.h"

struct chardev {
	enum vm_chardev_kind kind;
	int out_fd;     /* where guest output goes, -1 for none */
	int in_fd;      /* where guest input comes from, -1 for none */
	int listen_fd;  /* UNIX bind mode: accepting socket */
	pthread_mutex_t lock;
	uint64_t dropped; /* bytes dropped: a socket peer did not read, or none was attached */
	char desc[128]; /* for messages: "file /var/log/x", "unix socket /run/x" */
};

/* Opens the backend described by cfg. On failure writes a one-line message into err. */
int chardev_open(struct chardev *c, const struct vm_chardev *cfg, char *err, size_t errlen);
/* Wraps fds handed over by the parent (out_fd may equal in_fd for a socket). */
void chardev_from_fds(struct chardev *c, int out_fd, int in_fd);
void chardev_close(struct chardev *c);
/*
 * Gives a socket backend a new peer (the parent's new end after vmmsd restarted): the old
 * descriptors are closed and fd becomes both output and input, all under the lock, so a vCPU
 * writing at the same moment writes whole to the old stream or to the new one, never to a
 * closed (or reused) descriptor. Takes fd, also on failure. *dropped (may be NULL) gets the
 * bytes dropped since the last replacement. 0, or -EINVAL for a backend that is not a socket
 * handed over by the parent.
 */
int chardev_replace(struct chardev *c, int fd, uint64_t *dropped);
/* Writes guest output; never blocks on a socket (drops and counts instead, also while the
 * socket has no peer). */
void chardev_write(struct chardev *c, const uint8_t *buf, size_t len);
/* Accepts a pending connection on a listening socket (called from the main loop). */
int chardev_accept(struct chardev *c);
/* Reads available input into buf; 0 on EOF (peer gone), -EAGAIN when none. */
ssize_t chardev_read(struct chardev *c, uint8_t *buf, size_t len);

#endif
