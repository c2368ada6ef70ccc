/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The KVM layer: a VM over /dev/kvm (irqchip, PIT, memslots, GSI routing), its vCPUs (CPUID,
 * MSRs, LAPIC wiring, register access) and the KVM_RUN loop, which reports port and MMIO
 * exits through a small callback table and knows no device. The pure helpers (GSI routing
 * table, CPUID patching) are exported so unit tests check them without /dev/kvm.
 */
#ifndef VMMS_HV_KVM_H
#define VMMS_HV_KVM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "hv/irq.h"
#include "hv/mem.h"

struct hv_vm;
struct hv_vcpu;

/* Fixed addresses KVM needs below 4 GiB for its real-mode TSS and EPT identity map; the
 * machine layout must keep RAM and devices off [HV_IDENTITY_MAP_ADDR, HV_TSS_ADDR + 3 pages). */
#define HV_TSS_ADDR          0xfffbd000ULL
#define HV_IDENTITY_MAP_ADDR 0xfffbc000ULL

/* The signal hv_vcpu_kick() sends; hv_signals_init() installs a no-op handler for it. */
#define HV_KICK_SIGNAL SIGUSR1

/* More vCPUs than this need x2APIC-only topologies (8-bit xAPIC IDs, 0xff is broadcast). */
#define HV_MAX_VCPUS 255U

/* ---- /dev/kvm and the VM ---------------------------------------------------------------- */

/* Opens /dev/kvm (O_RDWR|O_CLOEXEC), for a worker started in the foreground. 0 or -errno. */
int hv_kvm_open(int *ret_fd);
/* Checks KVM_GET_API_VERSION == 12 and every capability vmms needs. 0, -EPROTO (wrong API
 * version) or -EOPNOTSUPP (a capability missing); on failure *ret_missing (may be NULL)
 * names what is missing, e.g. "KVM_CAP_IRQFD" (a static string). */
int hv_kvm_check(int kvm_fd, const char **ret_missing);

/* Creates a VM: checks the API (hv_kvm_check, same errors), sets the TSS and identity-map
 * addresses, creates the in-kernel irqchip and PIT (speaker port dummy), installs the default
 * GSI routes and reads the supported CPUID. kvm_fd is duplicated, the caller keeps its own.
 * 0 or -errno; *ret untouched on failure. */
int hv_vm_create(int kvm_fd, struct hv_vm **ret);
/* NULL-safe. Destroy every vCPU first. */
void hv_vm_destroy(struct hv_vm *vm);
/* How many vCPUs the machine will have (default 1); sets the CPUID topology, call before the
 * first hv_vcpu_create(). -E2BIG above KVM_CAP_MAX_VCPUS or HV_MAX_VCPUS, -EINVAL for 0,
 * -EBUSY once a vCPU exists. */
int hv_vm_set_nr_vcpus(struct hv_vm *vm, unsigned nr);
unsigned hv_vm_max_vcpus(const struct hv_vm *vm);
/* Registers one memslot per region of m (slot i = m->r[i]). m must outlive the VM.
 * -E2BIG when the host has fewer memslots, -EBUSY when memory is already set. */
int hv_vm_set_memory(struct hv_vm *vm, const struct gmem *m);
/* The interrupt interface devices use, valid as long as the VM. */
struct hv_irq *hv_vm_irq(struct hv_vm *vm);
/* The raw VM fd, for state save/restore ioctls this layer does not wrap yet. */
int hv_vm_fd(const struct hv_vm *vm);

/* ---- GSI routing table (pure) ------------------------------------------------------------ */

/* GSI 0-15: PIC and IOAPIC as QEMU and kvmtool wire them (GSI 0 -> IOAPIC pin 2, the PIT
 * override the MADT must declare; GSI 2 unrouted); 16-23: IOAPIC pins; 24 up: MSI routes. */
#define HV_GSI_LEGACY_NR 24U
#define HV_GSI_MSI_FIRST 24U
#define HV_GSI_MSI_NR    1000U

struct hv_msi_route {
	uint64_t addr;
	uint32_t data;
	bool used; /* allocated */
	bool set; /* programmed: only these get a routing entry */
};

struct hv_gsi_table {
	unsigned nr_set;
	struct hv_msi_route msi[HV_GSI_MSI_NR];
};

void hv_gsi_table_init(struct hv_gsi_table *t);
/* Lowest free MSI GSI (freed ones are reused). -ENOSPC when all are taken. */
int hv_gsi_table_alloc(struct hv_gsi_table *t, unsigned *ret_gsi);
/* Program an allocated MSI GSI. 1 when the entry changed, 0 when it was already so, -EINVAL
 * for a GSI that is not an allocated MSI GSI. */
int hv_gsi_table_set(struct hv_gsi_table *t, unsigned gsi, uint64_t addr, uint32_t data);
/* 1 when the freed GSI had a routing entry (table must be reloaded), 0 if not, -EINVAL. */
int hv_gsi_table_free(struct hv_gsi_table *t, unsigned gsi);
/* Number of routing entries hv_gsi_routing_build() produces. */
unsigned hv_gsi_table_entries(const struct hv_gsi_table *t);
/* Builds the KVM_SET_GSI_ROUTING argument (default routes, then programmed MSI routes in GSI
 * order) in a malloc'ed buffer the caller frees. 0 or -ENOMEM. */
int hv_gsi_routing_build(const struct hv_gsi_table *t, struct kvm_irq_routing **ret);

/* ---- CPUID (pure) ------------------------------------------------------------------------ */

/* Rewrites cpuid (from KVM_GET_SUPPORTED_CPUID) for vCPU index of nr: APIC ID = index, one
 * core per vCPU with one thread in one package (leaves 0x1, 0x4, 0xB, 0x1F, 0x80000008 on
 * AMD), hypervisor bit, KVM leaves 0x40000000/0x40000001 (added if absent, features kept from
 * the supported table), and hides what the worker does not support (VMX/SVM nesting, SGX,
 * MONITOR/MWAIT, the PMU). cpuid->nent may grow up to max_entries. 0, -EINVAL (index >= nr,
 * nr > HV_MAX_VCPUS) or -ENOSPC. */
int hv_cpuid_patch(struct kvm_cpuid2 *cpuid, unsigned max_entries, unsigned index, unsigned nr);
/* Entry for (function, index), honouring KVM_CPUID_FLAG_SIGNIFCANT_INDEX; NULL if absent. */
struct kvm_cpuid_entry2 *hv_cpuid_find(struct kvm_cpuid2 *cpuid, uint32_t function, uint32_t index);

/* ---- vCPUs ------------------------------------------------------------------------------- */

/* Creates vCPU index (its APIC ID): KVM_CREATE_VCPU, maps kvm_run, sets CPUID, initial MSRs
 * (MISC_ENABLE fast strings, APIC base 0xfee00000 enabled, BSP flag on index 0, TSC 0),
 * LAPIC LINT0 ExtINT / LINT1 NMI, MP state runnable for index 0 and uninitialized (waiting
 * for INIT/SIPI) for the others. -EINVAL for index >= hv_vm_set_nr_vcpus(), -EEXIST twice. */
int hv_vcpu_create(struct hv_vm *vm, unsigned index, struct hv_vcpu **ret);
/* NULL-safe; the vCPU must not be running. */
void hv_vcpu_destroy(struct hv_vcpu *vcpu);
unsigned hv_vcpu_index(const struct hv_vcpu *vcpu);
int hv_vcpu_fd(const struct hv_vcpu *vcpu);

int hv_vcpu_get_regs(struct hv_vcpu *vcpu, struct kvm_regs *regs);
int hv_vcpu_set_regs(struct hv_vcpu *vcpu, const struct kvm_regs *regs);
int hv_vcpu_get_sregs(struct hv_vcpu *vcpu, struct kvm_sregs *sregs);
int hv_vcpu_set_sregs(struct hv_vcpu *vcpu, const struct kvm_sregs *sregs);
int hv_vcpu_get_fpu(struct hv_vcpu *vcpu, struct kvm_fpu *fpu);
int hv_vcpu_set_fpu(struct hv_vcpu *vcpu, const struct kvm_fpu *fpu);
/* KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_UNINITIALIZED, ... */
int hv_vcpu_get_mp_state(struct hv_vcpu *vcpu, uint32_t *ret_state);
int hv_vcpu_set_mp_state(struct hv_vcpu *vcpu, uint32_t state);

/* ---- the run loop ------------------------------------------------------------------------ */

/* Exit callbacks, called on the vCPU thread. data is the guest's value (write) or where the
 * value goes (read: fill all size/len bytes; unmapped reads should return all ones). Return
 * 0 to continue, or -errno to make hv_vcpu_run() return that error. A NULL callback reads
 * all ones and ignores writes. String I/O (rep ins/outs) arrives as one call per element. */
struct hv_exit_ops {
	int (*pio)(void *opaque, uint16_t port, void *data, unsigned size, bool is_write);
	int (*mmio)(void *opaque, uint64_t gpa, void *data, unsigned len, bool is_write);
};

enum hv_stop {
	HV_STOP_REQUESTED = 1,        /* hv_vcpu_kick(): pause/stop asked */
	HV_STOP_SHUTDOWN,             /* KVM_EXIT_SHUTDOWN: triple fault */
	HV_STOP_SYSTEM_EVENT_RESET,   /* KVM_EXIT_SYSTEM_EVENT reset */
	HV_STOP_SYSTEM_EVENT_SHUTDOWN,/* KVM_EXIT_SYSTEM_EVENT shutdown */
	HV_STOP_SYSTEM_EVENT_CRASH,   /* KVM_EXIT_SYSTEM_EVENT crash (guest panic) */
	HV_STOP_INTERNAL_ERROR,       /* internal error, failed entry, unknown exit: see describe */
	HV_STOP_HLT,                  /* KVM_EXIT_HLT (only seen without in-kernel irqchip) */
};

/* Runs the vCPU on the calling thread until a stop; returns an enum hv_stop value (> 0) or
 * -errno (a failed KVM_RUN, or an error a callback returned). A kick that arrives before or
 * during the call makes it return HV_STOP_REQUESTED; the request stays until
 * hv_vcpu_clear_stop(). A stop leaves no IN or MMIO read half done (KVM completes it before
 * the return), so the state can be saved. -EBUSY if the vCPU is already running on another
 * thread. The calling thread must not block HV_KICK_SIGNAL. */
int hv_vcpu_run(struct hv_vcpu *vcpu, const struct hv_exit_ops *ops, void *opaque);
/* Asks the vCPU to stop: safe from any thread (and from its own callbacks), any time; not
 * from a signal handler (it takes a lock so it never signals a thread that has moved on). */
void hv_vcpu_kick(struct hv_vcpu *vcpu);
/* Withdraws a stop request, before running the vCPU again. */
void hv_vcpu_clear_stop(struct hv_vcpu *vcpu);
bool hv_vcpu_stop_requested(const struct hv_vcpu *vcpu);
/* A one-line account of the last stop, without the vCPU number (the caller adds it), e.g.
 * "triple fault at RIP 0x1000 (CS base 0x0)" or "internal error suberror 1 (emulation
 * failure) at RIP ...". Always NUL-terminates. */
void hv_vcpu_describe_exit(const struct hv_vcpu *vcpu, char *buf, size_t len);

/* Installs a no-op handler for HV_KICK_SIGNAL without SA_RESTART, so the signal only
 * interrupts KVM_RUN. Process-wide; call once before starting vCPU threads. 0 or -errno. */
int hv_signals_init(void);

/* Exit counters, written only by the vCPU thread; read them from any thread. */
struct hv_vcpu_stats {
	uint64_t runs;      /* KVM_RUN calls */
	uint64_t exits;     /* exits returned to user space (all kinds) */
	uint64_t pio;
	uint64_t mmio;
	uint64_t intr;      /* KVM_RUN interrupted by a signal or immediate_exit */
	uint64_t hlt;
	uint64_t other;
};
void hv_vcpu_get_stats(const struct hv_vcpu *vcpu, struct hv_vcpu_stats *ret);

#endif
