/* SPDX-License-Identifier: GPL-2.0-only */
/* vmms-guestd internals shared by its files: clients, running commands, file writes, limits. */
#ifndef VMMS_GUESTD_INT_H
#define VMMS_GUESTD_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "guest-additions/guestd.h"
#include "lib/guestproto.h"

#define GUESTD_VERSION "1.0"
#define GUESTD_MAX_CLIENTS 16
#define GUESTD_MAX_EXECS 16            /* running commands per client */
#define GUESTD_MAX_FILES 4             /* file-writes in progress per client */
#define GUESTD_OUTQ_HIGH (256u * 1024) /* above this a client's output producers pause */
#define GUESTD_STDIN_HIGH (256u * 1024) /* above this a client's requests are not read */
#define GUESTD_MAX_ARGS 1024           /* argv and env entries each */
#define GUESTD_MAX_FROZEN 64
#define GUESTD_MAX_KVP 256             /* host-set pairs kept */
#define GUESTD_DRAIN_MS 2000           /* after a command exits, wait this long for its pipes */
#define GUESTD_FREEZE_DEFAULT_S 60
#define GUESTD_FREEZE_MAX_S 600

/* A byte queue: data[head, head+len) is pending. */
struct guestd_buf {
	unsigned char *data;
	size_t head;
	size_t len;
	size_t cap;
};

int guestd_buf_append(struct guestd_buf *b, const void *p, size_t n);
void guestd_buf_consume(struct guestd_buf *b, size_t n);
void guestd_buf_free(struct guestd_buf *b);

struct guestd_exec {
	uint64_t id;
	pid_t pid;
	int in_fd, out_fd, err_fd;     /* agent's pipe ends, -1 once closed */
	struct guestd_buf in;          /* stdin bytes from the host not yet written */
	bool in_eof;                   /* host ended stdin: close in_fd once drained */
	bool reaped;
	bool timed_out;
	int status;                    /* wait status, once reaped */
	int64_t kill_at_ms;            /* timeout; 0 none */
	int64_t drain_until_ms;        /* set when reaped */
};

struct guestd_file {
	uint64_t id;
	int fd;
	char *path;
	char *tmp;
	unsigned mode;
	uint64_t size;
	uint64_t written;
};

struct guestd_client {
	int fd;
	struct guestproto_reader rd;
	struct guestd_buf out;
	struct guestd_exec *execs[GUESTD_MAX_EXECS];
	struct guestd_file *files[GUESTD_MAX_FILES];
	bool dead;                     /* close at the end of this turn */
};

struct guestd {
	struct guestd_config cfg;
	const struct guestd_sys_ops *sys;
	int listen_fd;
	char *unix_path;               /* unlinked on free */
	int sig_fd;
	struct guestd_client *clients[GUESTD_MAX_CLIENTS];
	bool stop;
	char *frozen[GUESTD_MAX_FROZEN];
	unsigned nfrozen;
	struct guestd_client *freezer;  /* the client whose disconnect thaws */
	int64_t thaw_at_ms;
	int power_pending;             /* 0, 1 power off, 2 reboot */
	int64_t power_at_ms;
	int64_t start_ms;
};

int64_t guestd_now_ms(void);

/* Queue a message (consumed) for the client. 0 or -errno (the client is then marked dead). */
int guestd_send(struct guestd_client *c, json_t *msg);
/* A final reply: fields (consumed, may be NULL) plus id, type "reply", ok true. id < 0: null. */
int guestd_reply(struct guestd_client *c, int64_t id, json_t *fields);
int guestd_reply_err(struct guestd_client *c, int64_t id, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Op handlers: the request has a valid id. They reply (or arrange to) themselves; a negative
 * return closes the client. */
int guestd_op_exec(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);
int guestd_op_stdin(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);
int guestd_op_signal(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);
int guestd_op_kvp_get(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);
int guestd_op_kvp_set(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);
int guestd_op_kvp_list(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);
int guestd_op_fsfreeze(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);
int guestd_op_fsthaw(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);
int guestd_op_time_sync(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);
int guestd_op_file_write(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);
int guestd_op_file_data(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg);

/* Commands: poll wiring, reaping, timeouts, teardown. */
bool guestd_client_stdin_full(const struct guestd_client *c);
void guestd_exec_io(struct guestd_client *c, struct guestd_exec *x, int fd, short revents);
/* Reaps, kills on timeout, finishes commands whose output has all been sent; *next_ms is
 * lowered to the next deadline. */
void guestd_exec_tick(struct guestd_client *c, int64_t now, int64_t *next_ms);
void guestd_exec_kill_all(struct guestd_client *c);
void guestd_file_abort_all(struct guestd_client *c);
/* Thaw every file system frozen by the agent (in reverse order). Returns how many thawed. */
unsigned guestd_thaw_all(struct guestd *d);

/* Bounded readers for the facts. */
json_t *guestd_os_release(const char *path);
json_t *guestd_addresses(void);

#endif
