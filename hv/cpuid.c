// SPDX-License-Identifier: GPL-2.0-only
/* CPUID for vCPUs: the supported table from KVM, patched per vCPU for topology and features. */
#include "hv/kvm_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lib/util.h"

#define CPUID_MAX_ENTRIES 4096U
#define CPUID_SPARE_ENTRIES 16U /* room for the leaves hv_cpuid_patch() may add */

#define KVM_SIG_EBX 0x4b4d564bU /* "KVMK" */
#define KVM_SIG_ECX 0x564b4d56U /* "VMKV" */
#define KVM_SIG_EDX 0x0000004dU /* "M\0\0\0" */

#define AMD_SIG_EBX 0x68747541U /* "Auth" */
#define HYGON_SIG_EBX 0x6f677948U /* "Hygo" */

/* Leaf 1 */
#define F1_ECX_MONITOR (1U << 3)
#define F1_ECX_VMX (1U << 5)
#define F1_ECX_PDCM (1U << 15)
#define F1_ECX_HYPERVISOR (1U << 31)
#define F1_EDX_HTT (1U << 28)
/* Leaf 7.0 */
#define F7_EBX_SGX (1U << 2)
#define F7_ECX_SGX_LC (1U << 30)
/* Leaf 0x80000001 */
#define F81_ECX_SVM (1U << 2)

struct kvm_cpuid_entry2 *hv_cpuid_find(struct kvm_cpuid2 *cpuid, uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function != function)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index)
			continue;
		return e;
	}
	return NULL;
}

static void cpuid_remove(struct kvm_cpuid2 *cpuid, uint32_t function)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function != function)
			cpuid->entries[n++] = cpuid->entries[i];
	cpuid->nent = n;
}

static struct kvm_cpuid_entry2 *cpuid_add(struct kvm_cpuid2 *cpuid, unsigned max_entries,
					  uint32_t function, uint32_t index, uint32_t flags)
{
	struct kvm_cpuid_entry2 *e;

	if (cpuid->nent >= max_entries)
		return NULL;
	e = &cpuid->entries[cpuid->nent++];
	*e = (struct kvm_cpuid_entry2){ .function = function, .index = index, .flags = flags };
	return e;
}

/* Bits of the APIC ID that number cores in the package: ceil(log2(nr)). */
static unsigned core_bits_for(unsigned nr)
{
	unsigned bits = 0;

	while ((1U << bits) < nr)
		bits++;
	return bits;
}

/* x2APIC topology (leaf 0xB or 0x1F): SMT level with one thread, core level with nr cores. */
static int topology_leaf(struct kvm_cpuid2 *cpuid, unsigned max_entries, uint32_t leaf,
			 unsigned index, unsigned nr, unsigned core_bits)
{
	struct kvm_cpuid_entry2 *e;

	cpuid_remove(cpuid, leaf);
	for (uint32_t sub = 0; sub < 3; sub++) {
		e = cpuid_add(cpuid, max_entries, leaf, sub, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
		if (!e)
			return -ENOSPC;
		e->edx = index;
		if (sub == 0) { /* SMT: shift 0, one logical processor, type 1 */
			e->eax = 0;
			e->ebx = 1;
			e->ecx = 0 | (1U << 8);
		} else if (sub == 1) { /* core: shift to the package ID, nr processors, type 2 */
			e->eax = core_bits;
			e->ebx = nr;
			e->ecx = 1 | (2U << 8);
		} else { /* end of the list: type 0 (invalid), ECX[7:0] echoes the subleaf */
			e->ecx = sub;
		}
	}
	return 0;
}

int hv_cpuid_patch(struct kvm_cpuid2 *cpuid, unsigned max_entries, unsigned index, unsigned nr)
{
	unsigned core_bits = core_bits_for(nr);
	uint32_t max_basic = 0;
	bool amd = false;
	struct kvm_cpuid_entry2 *e;
	int r;

	if (nr == 0 || nr > HV_MAX_VCPUS || index >= nr || cpuid->nent > max_entries)
		return -EINVAL;

	e = hv_cpuid_find(cpuid, 0, 0);
	if (e) {
		max_basic = e->eax;
		amd = e->ebx == AMD_SIG_EBX || e->ebx == HYGON_SIG_EBX;
	}

	for (unsigned i = 0; i < cpuid->nent; i++) {
		e = &cpuid->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0xffffU) | (nr << 16) | (index << 24);
			e->ecx &= ~(F1_ECX_MONITOR | F1_ECX_VMX | F1_ECX_PDCM);
			e->ecx |= F1_ECX_HYPERVISOR;
			if (nr > 1)
				e->edx |= F1_EDX_HTT;
			else
				e->edx &= ~F1_EDX_HTT;
			break;
		case 4:
			/* Deterministic cache parameters: EAX[4:0] 0 ends the list. */
			if ((e->eax & 0x1f) == 0)
				break;
			e->eax &= 0x3fffU;
			e->eax |= (((1U << core_bits) - 1) & 0x3f) << 26;
			/* L1/L2 belong to one core (one thread); L3 is shared by the package. */
			if (((e->eax >> 5) & 7) >= 3)
				e->eax |= (((1U << core_bits) - 1) & 0xfff) << 14;
			break;
		case 5: /* MONITOR/MWAIT is hidden */
		case 0xa: /* no vPMU: its MSRs are not saved or migrated */
		case 0x8000000a: /* no nested SVM */
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		case 7:
			if (e->index == 0) {
				e->ebx &= ~F7_EBX_SGX;
				e->ecx &= ~F7_ECX_SGX_LC;
			}
			break;
		case 0x80000001:
			e->ecx &= ~F81_ECX_SVM;
			break;
		case 0x80000008:
			if (amd) /* NC = cores - 1, ApicIdCoreIdSize */
				e->ecx = (e->ecx & ~0xf0ffU) | (core_bits << 12) | ((nr - 1) & 0xff);
			break;
		case 0x8000001e:
			if (amd) { /* extended APIC ID; core ID; one thread per core; node 0 */
				e->eax = index;
				e->ebx = index & 0xff;
				e->ecx = 0;
			}
			break;
		default:
			break;
		}
	}
	cpuid_remove(cpuid, 0x12); /* SGX */

	if (max_basic >= 0xb) {
		r = topology_leaf(cpuid, max_entries, 0xb, index, nr, core_bits);
		if (r < 0)
			return r;
	}
	if (max_basic >= 0x1f && hv_cpuid_find(cpuid, 0x1f, 0)) {
		r = topology_leaf(cpuid, max_entries, 0x1f, index, nr, core_bits);
		if (r < 0)
			return r;
	}

	/* KVM paravirt leaves: signature with max leaf 0x40000001, features as KVM offers them. */
	for (uint32_t f = 0x40000002; f <= 0x400000ff; f++)
		cpuid_remove(cpuid, f);
	e = hv_cpuid_find(cpuid, 0x40000000, 0);
	if (!e)
		e = cpuid_add(cpuid, max_entries, 0x40000000, 0, 0);
	if (!e)
		return -ENOSPC;
	e->eax = 0x40000001;
	e->ebx = KVM_SIG_EBX;
	e->ecx = KVM_SIG_ECX;
	e->edx = KVM_SIG_EDX;
	if (!hv_cpuid_find(cpuid, 0x40000001, 0) && !cpuid_add(cpuid, max_entries, 0x40000001, 0, 0))
		return -ENOSPC;
	return 0;
}

int hv_cpuid_load_supported(struct hv_vm *vm)
{
	unsigned n = 256;

	for (;;) {
		struct kvm_cpuid2 *c;

		c = calloc(1, sizeof(*c) + (n + CPUID_SPARE_ENTRIES) * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			free(vm->cpuid);
			vm->cpuid = c;
			vm->cpuid_capacity = n + CPUID_SPARE_ENTRIES;
			return 0;
		}
		int err = errno;

		free(c);
		if (err != E2BIG || n >= CPUID_MAX_ENTRIES)
			return -err;
		n *= 2;
	}
}
