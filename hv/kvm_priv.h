/* SPDX-License-Identifier: GPL-2.0-only */
/* The VM and vCPU structures shared by the files of the KVM layer (not for use outside hv/). */
#ifndef VMMS_HV_KVM_PRIV_H
#define VMMS_HV_KVM_PRIV_H

#include <pthread.h>

#include "hv/kvm.h"

/* The hv_irq implementation: routing table and the lock that serialises its reloads. */
struct hv_kvm_irq {
	struct hv_irq base;
	struct hv_vm *vm;
	pthread_mutex_t lock; /* protects table and the KVM_SET_GSI_ROUTING that follows a change */
	struct hv_gsi_table table;
};

struct hv_vm {
	int kvm_fd; /* our duplicate of the /dev/kvm fd */
	int fd;
	size_t run_size; /* KVM_GET_VCPU_MMAP_SIZE */
	unsigned max_vcpus; /* host limit, capped at HV_MAX_VCPUS */
	unsigned max_memslots;
	unsigned nr_vcpus;
	unsigned vcpus_created; /* a count, to refuse topology changes after the first vCPU */
	bool memory_set;
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID result */
	unsigned cpuid_capacity; /* entries allocated in cpuid */
	pthread_mutex_t vcpus_lock; /* protects vcpus_created and vcpu_index_used */
	bool vcpu_index_used[HV_MAX_VCPUS];
	struct hv_kvm_irq irq;
};

/* Sets up vm->irq (ops, lock, default routes) and loads the routing table. 0 or -errno. */
int hv_irq_init(struct hv_vm *vm);
void hv_irq_fini(struct hv_vm *vm);

/* Reads KVM_GET_SUPPORTED_CPUID into vm->cpuid, with room to add entries. 0 or -errno. */
int hv_cpuid_load_supported(struct hv_vm *vm);

#endif
