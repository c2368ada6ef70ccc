/* SPDX-License-Identifier: GPL-2.0-only */
/* vmms-guestd, the guest agent: a single-threaded poll loop serving the guestproto protocol. */
#ifndef VMMS_GUESTD_H
#define VMMS_GUESTD_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct guestd;

/* What the agent does to the system; tests replace these so they never power off, freeze or
 * set the clock of the machine running them. Each returns 0 or -errno. */
struct guestd_sys_ops {
	/* The guest's orderly power-off or reboot; returns only when it could not be started. */
	int (*power)(void *ctx, bool restart);
	int (*set_time)(void *ctx, const struct timespec *realtime);
	/* FIFREEZE (freeze true) or FITHAW on the file system mounted at mountpoint. */
	int (*freeze)(void *ctx, const char *mountpoint, bool freeze);
};

extern const struct guestd_sys_ops guestd_sys_real;

struct guestd_config {
	const char *kvp_dir;        /* host-set pairs, one file per key; NULL: /run/vmms/kvp */
	const char *mounts_file;    /* NULL: /proc/self/mounts */
	const char *os_release;     /* NULL: /etc/os-release, then /usr/lib/os-release */
	const struct guestd_sys_ops *sys;  /* NULL: guestd_sys_real */
	void *sys_ctx;
	uint64_t file_max;          /* largest file-write; 0: 4 GiB */
};

/* 0 with *ret, or -errno. Ignores SIGPIPE and blocks SIGCHLD in the calling thread (the loop
 * reads it from a signalfd). */
int guestd_new(const struct guestd_config *cfg, struct guestd **ret);
/* Ends every client (running commands are killed, frozen file systems thawed). NULL is fine. */
void guestd_free(struct guestd *d);
/* Listen on "vsock:PORT" or "unix:PATH". 0 or -errno (-EAFNOSUPPORT: no vsock in this kernel). */
int guestd_listen(struct guestd *d, const char *spec);
/* Serve an already connected stream socket (taken over, also on failure). 0, -EMFILE too many. */
int guestd_add_client(struct guestd *d, int fd);
/* One turn of the loop, waiting at most max_wait_ms (-1: until something happens). 0 or -errno. */
int guestd_run_once(struct guestd *d, int max_wait_ms);
/* Loop until guestd_stop; 0 or a fatal -errno. */
int guestd_run(struct guestd *d);
void guestd_stop(struct guestd *d);
unsigned guestd_client_count(const struct guestd *d);

#endif
