/* SPDX-License-Identifier: GPL-2.0-only */
/* vmmsd's management server: the epoll loop, the socket, access control and client queues. */
#ifndef VMMS_PARENT_SERVER_H
#define VMMS_PARENT_SERVER_H

#include "parent/config.h"

/*
 * Load the registry, listen on <runtime_dir>/vmms.sock and serve until SIGTERM or SIGINT.
 * ready_fd (or -1) gets one byte once the socket listens (used by the daemonizing parent);
 * READY=1 goes to $NOTIFY_SOCKET as well. 0 on a clean exit, -errno on a setup failure.
 */
int server_run(const struct vmmsd_config *cfg, int ready_fd);

/* Send state (e.g. "READY=1") to $NOTIFY_SOCKET when set. 0, or -errno. */
int server_sd_notify(const char *state);

#endif
