/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A running machine: guest memory, the KVM VM and its vCPU threads, the buses and devices,
 * assembled from a VM definition and the resources the caller opened (or the parent handed
 * over). One machine is one boot: a guest reboot with on_reboot=restart tears it down and
 * builds a fresh one over the same resources.
 */
#ifndef VMMS_WORKER_MACHINE_H
#define VMMS_WORKER_MACHINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"
#include "devices/pci.h"
#include "hv/kvm.h"
#include "hv/mem.h"
#include "lib/domxml.h"
#include "worker/chardev.h"

/* How a boot ended; the worker's exit status follows from it (see worker_main.c). */
enum machine_outcome {
	MACHINE_RUNNING = 0,
	MACHINE_POWEROFF,   /* guest powered off (ACPI S5) */
	MACHINE_REBOOT,     /* guest asked for a reset (ACPI reset register, i8042, KVM event) */
	MACHINE_CRASH,      /* triple fault, internal error, guest panic */
	MACHINE_HOST_ERROR, /* the VMM failed */
	MACHINE_TURNED_OFF, /* stopped from the host (signal or control channel) */
};

/* The threads a machine creates, for machine_resources.thread_init. */
enum machine_thread {
	MACHINE_THREAD_VCPU,
	MACHINE_THREAD_IO, /* called on a short-lived thread that then starts the io threads */
};

/* Host resources, opened once for all boots of a worker. */
struct machine_resources {
	int kvm_fd;
	int kernel_fd;
	int initrd_fd; /* -1 if none */
	int disk_fds[VM_MAX_DISKS];
	struct chardev serial;
	struct chardev console;
	struct vsock_host *vsock; /* worker/vsock_host.h; NULL: the vsock device has no host side */
	/* Optional: called on every thread the machine creates before it touches the guest (the
	 * worker narrows its seccomp filter there). A negative return stops the boot with a host
	 * error. */
	int (*thread_init)(void *opaque, enum machine_thread kind);
	void *thread_opaque;
};

struct machine_devices; /* worker/devices.c */
struct vsock_host;      /* worker/vsock_host.h */

struct vcpu_thread {
	struct machine *m;
	struct hv_vcpu *vcpu;
	pthread_t thread;
	bool started;
};

struct machine {
	const struct vm_config *cfg;
	struct machine_resources *res;
	struct gmem mem;
	struct hv_vm *vm;
	struct bus pio, mmio;
	struct pci_host pci;
	struct machine_devices *devs;
	unsigned nr_vcpus;
	struct vcpu_thread *vcpus;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool paused;            /* vCPUs parked by machine_pause() */
	unsigned parked;        /* vCPU threads currently parked */
	enum machine_outcome outcome;
	char outcome_detail[256];
	int wake_fd;            /* eventfd: the main loop learns the outcome changed */
	uint64_t boot_ns;       /* CLOCK_MONOTONIC at machine_start */
};

/* Builds the machine (memory, VM, devices, firmware tables, kernel loaded, vCPUs created).
 * On failure writes one line into err and returns -errno; nothing is left allocated. */
int machine_create(const struct vm_config *cfg, struct machine_resources *res, struct machine **ret,
		   char *err, size_t errlen);
int machine_start(struct machine *m);
/* Records the outcome of this boot (the first one wins) and wakes the main loop. Any thread. */
void machine_request_stop(struct machine *m, enum machine_outcome why, const char *detail);
/* Parks every vCPU (returns once all are parked) / lets them run again. */
int machine_pause(struct machine *m);
int machine_resume(struct machine *m);
/* Presses the ACPI power button (orderly shutdown request to the guest). */
void machine_power_button(struct machine *m);
/* Stops and joins the vCPU threads (after an outcome is set), then frees everything. */
void machine_destroy(struct machine *m);
/* Feeds console input from the main loop. */
void machine_console_input(struct machine *m, const uint8_t *buf, size_t len);
enum machine_outcome machine_outcome(struct machine *m);
const char *machine_outcome_name(enum machine_outcome o);

/* worker/devices.c: the device set of a machine. */
int machine_devices_create(struct machine *m, char *err, size_t errlen);
void machine_devices_destroy(struct machine *m);
void machine_devices_start(struct machine *m);
void machine_devices_pause(struct machine *m, bool pause);
int machine_devices_power_button(struct machine *m);
size_t machine_devices_serial_input(struct machine *m, const uint8_t *buf, size_t len);

#endif
