/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The worker manager: starts, stops, pauses, resumes and resets the vmms-worker of a VM and
 * reports state changes through a callback. vmmsd's namespace calls only this interface.
 * Each worker runs in the sandbox (parent/sandbox.h) under its VM's cgroup (parent/cgroup.h)
 * and is driven over its control socket (lib/ctlproto.h); workers outlive vmmsd and are
 * reattached by a restarted one.
 */
#ifndef VMMS_PARENT_WORKERS_H
#define VMMS_PARENT_WORKERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vm_entry;
struct workers;
struct registry;
struct consoles;

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

/* WORKER_SHUTDOWN presses the ACPI power button: accepted at once, no job, no state change
 * (the guest's power-off reports Off later). */
enum worker_op { WORKER_START, WORKER_STOP, WORKER_PAUSE, WORKER_RESUME, WORKER_RESET, WORKER_SHUTDOWN };

/* Msvm_ConcreteJob ErrorCode values the manager reports. */
#define WORKER_JOB_FAILED 32768
#define WORKER_JOB_INVALID_STATE 32775

/* A job finished: error_code 0 (Completed) or WORKER_JOB_* with a one-line description. */
typedef void (*workers_job_fn)(void *userdata, const char *job_id, int error_code, const char *desc);

struct worker_config {
	const char *runtime_dir;   /* workers' sockets live in <runtime_dir>/vms/<name>/ */
	uid_t uid_min, uid_max;    /* per-VM uids (and gids) are taken from this range */
	/* The vmms-worker program. NULL: this manager cannot run VMs (every request answers
	 * -EOPNOTSUPP), as in unit tests of the namespace. */
	const char *worker_path;
	struct registry *reg;      /* for uid allocation, persisting and reattaching */
	struct consoles *consoles; /* serial streams go here; NULL: the serial port is dropped */
	const char *cgroup_root;   /* NULL: /sys/fs/cgroup */
	const char *schema;        /* the domain schema the worker validates against; its
				    * directory is bound read-only into the sandbox. NULL: none */
	workers_job_fn job_done;   /* NULL: jobs are not reported */
};

/* A VM changed state: new EnabledState, HealthState, the worker's pid (0 when none) and, for
 * a stop, the reason ("" when orderly). Called from the daemon's loop, never re-entrantly. */
typedef void (*workers_state_fn)(void *userdata, const char *vm_name, int enabled_state,
				 int health, pid_t pid, const char *reason);

int workers_new(const struct worker_config *cfg, workers_state_fn cb, void *userdata,
		struct workers **ret);
/* Forget the workers (they keep running; a restarted vmmsd reattaches them). NULL is fine. */
void workers_free(struct workers *w);

/*
 * Ask vm's worker to perform op. job_id (or NULL) is the Msvm_ConcreteJob reported through
 * job_done when the operation completes or fails. 0 when accepted (the state callback
 * reports progress; a failure found later finishes the job with an error), -EOPNOTSUPP when
 * this manager cannot run VMs, -EBUSY while another operation of vm is under way, another
 * -errno otherwise; err gets one line. A start that fails before the worker runs (a missing
 * file, the sandbox) returns the error here and has emitted Starting then Off.
 */
int workers_request(struct workers *w, struct vm_entry *vm, const char *job_id, enum worker_op op,
		    char *err, size_t errlen);

/*
 * After a restart: for every VM recorded as running, connect to its worker's control socket,
 * verify the peer (SO_PEERCRED pid equal to the pid file's and a live pidfd's, uid equal to
 * the VM's worker uid), query it, hand it a new console stream (lib/ctlproto.h) and mark the
 * VM Running or Paused; a VM whose worker is gone or not verified is set Off with HealthState
 * Major Failure and the reason (logged). Returns how many were reattached.
 */
int workers_reattach(struct workers *w);

/* Descriptor for the daemon's epoll loop (-1 when there is nothing to watch) and its handler. */
int workers_fd(struct workers *w);
void workers_dispatch(struct workers *w);

#endif
