/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The worker manager: starts, stops, pauses, resumes and resets the vmms-worker of a VM and
 * reports state changes through a callback. vmmsd's namespace calls only this interface.
 */
#ifndef VMMS_PARENT_WORKERS_H
#define VMMS_PARENT_WORKERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vm_entry;
struct workers;

/* EnabledState values (Hyper-V v2, see ARCHITECTURE.md). */
enum vm_state {
	VM_STATE_RUNNING = 2,
	VM_STATE_OFF = 3,
	VM_STATE_SHUTTING_DOWN = 4,
	VM_STATE_SAVED = 6,
	VM_STATE_PAUSED = 9,
	VM_STATE_STARTING = 10,
	VM_STATE_SAVING = 32773,
	VM_STATE_STOPPING = 32774,
	VM_STATE_PAUSING = 32776,
	VM_STATE_RESUMING = 32777,
};

/* HealthState values. */
enum vm_health { VM_HEALTH_OK = 5, VM_HEALTH_MAJOR_FAILURE = 20, VM_HEALTH_CRITICAL = 25 };

enum worker_op { WORKER_START, WORKER_STOP, WORKER_PAUSE, WORKER_RESUME, WORKER_RESET };

struct worker_config {
	const char *runtime_dir;   /* workers' sockets live in <runtime_dir>/vms/<name>/ */
	uid_t uid_min, uid_max;    /* per-VM uids are taken from this range */
};

/* A VM changed state: new EnabledState, HealthState, the worker's pid (0 when none) and, for
 * a stop, the reason ("" when orderly). Called from the daemon's loop, never re-entrantly. */
typedef void (*workers_state_fn)(void *userdata, const char *vm_name, int enabled_state,
				 int health, pid_t pid, const char *reason);

int workers_new(const struct worker_config *cfg, workers_state_fn cb, void *userdata,
		struct workers **ret);
void workers_free(struct workers *w);

/*
 * Ask vm's worker to perform op. 0 when accepted (the state callback reports progress),
 * -EOPNOTSUPP when this build cannot run VMs, another -errno otherwise; err gets one line.
 */
int workers_request(struct workers *w, struct vm_entry *vm, enum worker_op op, char *err,
		    size_t errlen);

/* Descriptor for the daemon's epoll loop (-1 when there is nothing to watch) and its handler. */
int workers_fd(struct workers *w);
void workers_dispatch(struct workers *w);

#endif
