/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The worker's end of the control channel (lib/ctlproto.h): accepts one controller at a
 * time on the listening socket vmmsd handed over, checks the peer's uid, reads length-framed
 * requests without ever blocking the main loop, keeps the descriptors sent with "fds",
 * answers every request exactly once and sends events in order (queued, bounded, while no
 * controller is connected, and delivered to the next one). The commands themselves are run
 * by the worker through struct ctl_ops; this file knows no machine.
 */
#ifndef VMMS_WORKER_CONTROL_H
#define VMMS_WORKER_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/ctlproto.h"
#include "lib/domxml.h"

#define CTL_TARGET_MAX 32       /* longest disk target name in "disk:<target>" */
#define CTL_EVENT_QUEUE 64      /* events kept while no controller is connected */
#define CTL_FRAMES_PER_WAKE 16  /* requests served per readable event (fairness) */
#define CTL_SEND_TIMEOUT_S 5    /* a controller that does not read for this long is dropped */
#define CTL_LISTEN_BACKLOG 4    /* connections waiting while one controller is served */

enum ctl_cmd {
	CTL_CMD_CONFIGURE,
	CTL_CMD_START,
	CTL_CMD_PAUSE,
	CTL_CMD_RESUME,
	CTL_CMD_RESET,
	CTL_CMD_STOP,
	CTL_CMD_SHUTDOWN,
	CTL_CMD_QUERY,
};

/* The descriptors received so far, by name; -1 where none. */
struct ctl_fds {
	int kvm, kernel, initrd, serial, console;
	int vsock; /* listening Unix socket of the vsock host side (optional) */
	int vsock_connector; /* SOCK_SEQPACKET to vmmsd's connector (lib/ctlproto.h; optional) */
	unsigned nr_disks;
	struct {
		char target[CTL_TARGET_MAX + 1];
		int fd;
	} disks[VM_MAX_DISKS];
};

struct ctl_error {
	const char *name;  /* InvalidState, InvalidParameter, NotSupported, Failed */
	char message[512];
};

struct ctl_ops {
	/* Runs one command (req is the whole request object, already checked for id and cmd).
	 * Adds any reply fields to reply. 0, or -errno with err filled in. */
	int (*command)(void *opaque, enum ctl_cmd cmd, json_t *req, json_t *reply, struct ctl_error *err);
	/* The state every reply carries (CTL_STATE_*). */
	const char *(*state)(void *opaque);
	/* After ctl_fds_freeze(): an "fds" request that names only "serial" and "console"
	 * replaces those streams (vmmsd restarted and made new ones). names[i] goes with fds[i],
	 * already checked (valid, distinct, stream sockets). All or nothing: on success the
	 * callee owns every descriptor and sets fds[i] to -1; on failure it sets err and takes
	 * none. NULL: such requests are refused with InvalidState. */
	int (*replace_fds)(void *opaque, const char *const *names, int *fds, size_t n, struct ctl_error *err);
};

struct ctl;

/* Takes listen_fd (closed by ctl_free) and calls listen() on it again, so that SO_PEERCRED of
 * a controller's connection names this process (pid and uid), not whoever created the
 * socket: a restarted vmmsd checks it before it trusts the worker. 0 or -errno. */
int ctl_new(int listen_fd, const struct ctl_ops *ops, void *opaque, struct ctl **ret);
/* Closes the connection, the listening socket and every descriptor still held. NULL-safe. */
void ctl_free(struct ctl *c);
/* Registers the listening socket (and later each connection) with an epoll set: events on
 * them come back with these tags, for ctl_handle(). */
int ctl_attach(struct ctl *c, int epfd, uint64_t tag_listen, uint64_t tag_conn);
/* Serves a readiness event with one of the two tags. */
void ctl_handle(struct ctl *c, uint64_t tag);

/* Descriptors received with "fds"; a command handler may take one by setting it to -1. */
struct ctl_fds *ctl_fds(struct ctl *c);
/* No more "fds" requests accepted (after configure): they get InvalidState, except the
 * replacement of "serial" and "console" through ctl_ops.replace_fds. */
void ctl_fds_freeze(struct ctl *c);

/* Sends an event (steals the reference): after the reply when a request is being served,
 * at once when a controller is connected, else queued for the next one (oldest dropped
 * beyond CTL_EVENT_QUEUE). */
void ctl_emit(struct ctl *c, json_t *event);
bool ctl_connected(const struct ctl *c);
/* Events not yet delivered. */
size_t ctl_pending(const struct ctl *c);

/* Pure checks, exported for tests. A descriptor name: "kvm", "kernel", "initrd", "serial",
 * "console", "vsock", "vsock-connector" or "disk:<target>" (target 1..CTL_TARGET_MAX of [a-z0-9]). */
bool ctl_fd_name_valid(const char *name);
/* The command named s, or -1. */
int ctl_cmd_parse(const char *s);

#endif
