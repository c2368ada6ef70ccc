/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The guest services manager: vmmsd's side of the guest additions (vmms-guestd). For each
 * running VM with a vsock device it keeps one connection to the agent through the VM's vsock
 * socket <runtime>/vms/<name>/vsock.sock (`CONNECT 5150`), polls a heartbeat, fetches guest
 * facts, pushes host-set key-value pairs, asks for orderly shutdowns, and relays guest
 * channels (exec, file copy) between management clients and fresh agent connections. All of
 * it runs non-blocking on the daemon's loop: a silent or hostile guest costs a timeout, never
 * a stalled daemon, and every buffer is bounded.
 */
#ifndef VMMS_PARENT_GUEST_H
#define VMMS_PARENT_GUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "parent/workers.h"

struct guests;
struct registry;

/* Msvm_HeartbeatComponent OperationalStatus values. */
enum guest_heartbeat {
	GUEST_HB_OK = 2,
	GUEST_HB_NO_CONTACT = 12,     /* the agent has not answered since the VM started */
	GUEST_HB_LOST = 13,           /* it answered before and does not now */
};

#define GUEST_MAX_HOST_ITEMS 256     /* host-set pairs per VM (the agent keeps as many) */
#define GUEST_MAX_CHANNELS 32        /* relayed channels over all VMs */
#define GUEST_CHANNEL_BUF (256u * 1024) /* per direction; reading stops while it is full */
#define GUEST_SHUTDOWN_TIMEOUT_S 60  /* default for InitiateShutdown/RequestStateChange(4) */

/* The heartbeat of vm changed from old to cur. */
typedef void (*guests_heartbeat_fn)(void *userdata, const char *vm, int old, int cur);

struct guest_config {
	const char *runtime_dir;     /* the vsock socket is <runtime_dir>/vms/<name>/vsock.sock */
	struct registry *reg;        /* for the worker manager's requests; may be NULL */
	struct workers *workers;     /* power button and turn-off; NULL: neither is available */
	unsigned interval_ms;        /* heartbeat period; 0: 3000 */
	unsigned timeout_ms;         /* connect and reply timeout; 0: 5000 */
	unsigned kvp_refresh_ms;     /* guest facts refresh; 0: 15000 */
	guests_heartbeat_fn heartbeat;  /* optional */
	workers_job_fn job_done;        /* shutdown jobs; optional */
	void *userdata;
};

int guests_new(const struct guest_config *cfg, struct guests **ret);
/* Closes every connection and channel. NULL is fine. */
void guests_free(struct guests *g);

/* Descriptor for the daemon's epoll loop and its handler. */
int guests_fd(struct guests *g);
void guests_dispatch(struct guests *g);

/*
 * The worker manager reported vm's EnabledState. has_vsock: its definition has a vsock
 * device. Running starts the heartbeat (No Contact until the agent answers); any state but
 * running/paused ends it, completes a pending shutdown job, and drops the guest's facts.
 */
void guests_vm_state(struct guests *g, const char *vm, bool has_vsock, int enabled_state);
/* vm was destroyed: forget it (host-set pairs included). */
void guests_vm_forget(struct guests *g, const char *vm);

/* OperationalStatus of vm's heartbeat: GUEST_HB_*; GUEST_HB_NO_CONTACT when not tracked. */
int guests_heartbeat(struct guests *g, const char *vm);
/* Guest facts of vm as a new object of string values (empty when none are known). */
json_t *guests_kvp_guest(struct guests *g, const char *vm);
/* Host-set pairs of vm as a new object of string values. */
json_t *guests_kvp_host(struct guests *g, const char *vm);
/*
 * Set (value non-NULL) or remove a host pair of vm; pushed to the agent now when connected and
 * on every reconnection. mode: 0 add (-EEXIST when present), 1 modify (-ENOENT when absent),
 * 2 remove (-ENOENT when absent). 0 or -errno (-EINVAL bad key or value, -ENOSPC too many,
 * -EIO or another -errno: the change could not be stored with the VM and was not made), err
 * gets one line. The pairs of a registered VM are kept in its registry directory (kvp.json).
 */
int guests_kvp_host_set(struct guests *g, const char *vm, int mode, const char *key, const char *value,
			char *err, size_t errlen);

/*
 * Check the text of a VM's stored host pairs (kvp.json, hostile): an object of at most
 * GUEST_MAX_HOST_ITEMS valid keys to strings of at most GUESTPROTO_VALUE_MAX bytes. 0 with a
 * new object in *ret, or -EINVAL/-EFBIG with one line in err. guests_new loads them for every
 * registered VM; a file that fails is reported, kept as it is, and host changes of that VM are
 * refused (-EIO) until it is fixed or removed.
 */
int guests_kvp_parse(const char *text, size_t len, json_t **ret, char *err, size_t errlen);
/*
 * Orderly shutdown of the running vm: the agent's shutdown when it answers, else the ACPI
 * power button through the worker. job_id (or NULL) completes when the VM is off. After
 * timeout_s (0: GUEST_SHUTDOWN_TIMEOUT_S) the VM is turned off when force, else the job fails
 * and the VM keeps running. 0, -ESRCH not running, -EBUSY a shutdown is already under way,
 * -ENOTCONN neither the agent nor a worker can be asked; err gets one line.
 */
int guests_shutdown(struct guests *g, const char *vm, bool force, unsigned timeout_s, const char *reason,
		    const char *job_id, char *err, size_t errlen);

/*
 * Whether a channel to vm's agent can be opened now: 0, -ESRCH (not running or no vsock),
 * -EUSERS (GUEST_MAX_CHANNELS). err gets one line.
 */
int guests_channel_check(struct guests *g, const char *vm, char *err, size_t errlen);
/*
 * Take over a management connection (fd, non-blocking) as a guest channel of vm: out/outlen
 * are bytes still owed to the client (its last reply), in/inlen bytes it already sent after
 * the request. vmmsd opens a fresh agent connection and sends the client one frame
 * {"type":"channel","ok":true} (or false with "error", then closes); afterwards frames from the
 * client are checked (ops exec, stdin, signal, file-write, file-data, ping, kvp-get, kvp-list)
 * and forwarded, and the agent's frames are relayed back as they are. fd is owned by the
 * manager from here on, also on failure. 0 or -errno.
 */
int guests_channel_attach(struct guests *g, const char *vm, int fd, const void *out, size_t outlen,
			  const void *in, size_t inlen);

#endif
