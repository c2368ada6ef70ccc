// SPDX-License-Identifier: GPL-2.0-only
/* Tests for the KVM layer: GSI routing table, CPUID patching, and (with /dev/kvm) a tiny guest. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "hv/kvm.h"
#include "hv/mem.h"
#include "lib/util.h"

/* ---- GSI routing table ------------------------------------------------------------------- */

static const struct kvm_irq_routing_entry *find_route(const struct kvm_irq_routing *r, uint32_t gsi,
						      uint32_t type, uint32_t chip)
{
	for (uint32_t i = 0; i < r->nr; i++) {
		const struct kvm_irq_routing_entry *e = &r->entries[i];

		if (e->gsi != gsi || e->type != type)
			continue;
		if (type == KVM_IRQ_ROUTING_IRQCHIP && e->u.irqchip.irqchip != chip)
			continue;
		return e;
	}
	return NULL;
}

static unsigned routes_for(const struct kvm_irq_routing *r, uint32_t gsi)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < r->nr; i++)
		n += r->entries[i].gsi == gsi;
	return n;
}

static struct hv_gsi_table *table_new(void)
{
	struct hv_gsi_table *t = malloc(sizeof(*t));

	assert_non_null(t);
	memset(t, 0xa5, sizeof(*t)); /* init must not rely on zeroed memory */
	hv_gsi_table_init(t);
	return t;
}

static void test_gsi_default_routes(void **state)
{
	struct hv_gsi_table *t = table_new();
	struct kvm_irq_routing *r = NULL;
	const struct kvm_irq_routing_entry *e;

	assert_int_equal(hv_gsi_routing_build(t, &r), 0);
	/* 7 PIC master (no cascade pin 2) + 8 PIC slave + 23 IOAPIC (no GSI 2). */
	assert_int_equal(r->nr, 38);
	assert_int_equal(hv_gsi_table_entries(t), 38);

	/* GSI 0, the PIT: PIC master pin 0 and IOAPIC pin 2 (the MADT override). */
	e = find_route(r, 0, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQCHIP_PIC_MASTER);
	assert_non_null(e);
	assert_int_equal(e->u.irqchip.pin, 0);
	e = find_route(r, 0, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQCHIP_IOAPIC);
	assert_non_null(e);
	assert_int_equal(e->u.irqchip.pin, 2);
	assert_int_equal(routes_for(r, 0), 2);
	/* GSI 2 is the cascade: unrouted. */
	assert_int_equal(routes_for(r, 2), 0);
	/* COM1 (4): master pin 4 + IOAPIC pin 4. */
	e = find_route(r, 4, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQCHIP_PIC_MASTER);
	assert_non_null(e);
	assert_int_equal(e->u.irqchip.pin, 4);
	e = find_route(r, 4, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQCHIP_IOAPIC);
	assert_non_null(e);
	assert_int_equal(e->u.irqchip.pin, 4);
	/* SCI (9): slave pin 1 + IOAPIC pin 9. */
	e = find_route(r, 9, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQCHIP_PIC_SLAVE);
	assert_non_null(e);
	assert_int_equal(e->u.irqchip.pin, 1);
	e = find_route(r, 9, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQCHIP_IOAPIC);
	assert_non_null(e);
	assert_int_equal(e->u.irqchip.pin, 9);
	/* 16-23: IOAPIC only. */
	for (uint32_t gsi = 16; gsi < 24; gsi++) {
		assert_int_equal(routes_for(r, gsi), 1);
		e = find_route(r, gsi, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQCHIP_IOAPIC);
		assert_non_null(e);
		assert_int_equal(e->u.irqchip.pin, gsi);
	}
	assert_int_equal(routes_for(r, 24), 0);
	free(r);
	free(t);
}

static void test_gsi_msi_alloc_set_free(void **state)
{
	struct hv_gsi_table *t = table_new();
	struct kvm_irq_routing *r = NULL;
	const struct kvm_irq_routing_entry *e;
	unsigned a, b, c;

	assert_int_equal(hv_gsi_table_alloc(t, &a), 0);
	assert_int_equal(hv_gsi_table_alloc(t, &b), 0);
	assert_int_equal(a, HV_GSI_MSI_FIRST);
	assert_int_equal(b, HV_GSI_MSI_FIRST + 1);
	/* Allocated but not programmed: no entry. */
	assert_int_equal(hv_gsi_table_entries(t), 38);

	assert_int_equal(hv_gsi_table_set(t, b, 0x1fee01000ULL, 0x4031), 1);
	assert_int_equal(hv_gsi_table_set(t, b, 0x1fee01000ULL, 0x4031), 0); /* unchanged */
	assert_int_equal(hv_gsi_table_set(t, a, 0xfee00000ULL, 0x30), 1);
	assert_int_equal(hv_gsi_table_entries(t), 40);

	assert_int_equal(hv_gsi_routing_build(t, &r), 0);
	assert_int_equal(r->nr, 40);
	/* MSI routes follow the default ones in GSI order. */
	assert_int_equal(r->entries[38].gsi, a);
	assert_int_equal(r->entries[39].gsi, b);
	e = find_route(r, b, KVM_IRQ_ROUTING_MSI, 0);
	assert_non_null(e);
	assert_int_equal(e->u.msi.address_lo, 0xfee01000U);
	assert_int_equal(e->u.msi.address_hi, 0x1);
	assert_int_equal(e->u.msi.data, 0x4031);
	free(r);

	/* Free the programmed a: table changes; a is reused by the next allocation. */
	assert_int_equal(hv_gsi_table_free(t, a), 1);
	assert_int_equal(hv_gsi_table_entries(t), 39);
	assert_int_equal(hv_gsi_table_alloc(t, &c), 0);
	assert_int_equal(c, a);
	assert_int_equal(hv_gsi_table_entries(t), 39); /* reused, not yet programmed */
	/* Free of an unprogrammed GSI needs no reload. */
	assert_int_equal(hv_gsi_table_free(t, c), 0);

	/* Not MSI GSIs, or not allocated: refused. */
	assert_int_equal(hv_gsi_table_set(t, 5, 0xfee00000ULL, 0), -EINVAL);
	assert_int_equal(hv_gsi_table_set(t, a, 0xfee00000ULL, 0), -EINVAL);
	assert_int_equal(hv_gsi_table_set(t, HV_GSI_MSI_FIRST + HV_GSI_MSI_NR, 0, 0), -EINVAL);
	assert_int_equal(hv_gsi_table_free(t, 5), -EINVAL);
	assert_int_equal(hv_gsi_table_free(t, a), -EINVAL);
	assert_int_equal(hv_gsi_table_free(t, UINT32_MAX), -EINVAL);
	free(t);
}

static void test_gsi_table_full(void **state)
{
	struct hv_gsi_table *t = table_new();
	unsigned gsi;

	for (unsigned i = 0; i < HV_GSI_MSI_NR; i++) {
		assert_int_equal(hv_gsi_table_alloc(t, &gsi), 0);
		assert_int_equal(gsi, HV_GSI_MSI_FIRST + i);
		assert_int_equal(hv_gsi_table_set(t, gsi, 0xfee00000ULL, i), 1);
	}
	gsi = 12345;
	assert_int_equal(hv_gsi_table_alloc(t, &gsi), -ENOSPC);
	assert_int_equal(gsi, 12345); /* untouched on failure */
	assert_int_equal(hv_gsi_table_entries(t), 38 + HV_GSI_MSI_NR);

	assert_int_equal(hv_gsi_table_free(t, HV_GSI_MSI_FIRST + 500), 1);
	assert_int_equal(hv_gsi_table_alloc(t, &gsi), 0);
	assert_int_equal(gsi, HV_GSI_MSI_FIRST + 500);
	assert_int_equal(hv_gsi_table_alloc(t, &gsi), -ENOSPC);
	free(t);
}

/* ---- CPUID ------------------------------------------------------------------------------- */

#define CPUID_CAP 64

static struct kvm_cpuid2 *cpuid_new(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_CAP * sizeof(c->entries[0]));

	assert_non_null(c);
	return c;
}

static void cpuid_put(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx, bool indexed, uint32_t eax,
		      uint32_t ebx, uint32_t ecx, uint32_t edx)
{
	assert_true(c->nent < CPUID_CAP);
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = fn, .index = idx,
		.flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
		.eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx,
	};
}

/* A host table shaped like KVM_GET_SUPPORTED_CPUID on an Intel machine with SMT. */
static struct kvm_cpuid2 *cpuid_intel(bool with_kvm_leaves)
{
	struct kvm_cpuid2 *c = cpuid_new();

	cpuid_put(c, 0, 0, false, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69); /* GenuineIntel */
	cpuid_put(c, 1, 0, false, 0x806c1, 0x00100800 /* clflush 8, 16 logical */,
		  (1U << 5) /* VMX */ | (1U << 21) /* x2APIC */ | (1U << 15) /* PDCM */,
		  (1U << 28) | (1U << 9));
	/* L1d (level 1, type 1), L2 (2, 3), L3 (3, 3), end. Host sharing fields set. */
	cpuid_put(c, 4, 0, true, (0x3fU << 26) | (1U << 14) | (1 << 5) | 1, 0, 0, 0);
	cpuid_put(c, 4, 1, true, (0x3fU << 26) | (1U << 14) | (2 << 5) | 3, 0, 0, 0);
	cpuid_put(c, 4, 2, true, (0x3fU << 26) | (0xfU << 14) | (3 << 5) | 3, 0, 0, 0);
	cpuid_put(c, 4, 3, true, 0, 0, 0, 0);
	cpuid_put(c, 7, 0, true, 0, (1U << 2) /* SGX */ | (1U << 0), (1U << 30), 0);
	cpuid_put(c, 0xa, 0, false, 0x07300805, 0, 0, 0x603);
	cpuid_put(c, 0xb, 0, true, 1, 2, 0x100, 7);
	cpuid_put(c, 0xb, 1, true, 4, 16, 0x201, 7);
	cpuid_put(c, 0x12, 0, true, 1, 0, 0, 0);
	cpuid_put(c, 0x1f, 0, true, 1, 2, 0x100, 7);
	cpuid_put(c, 0x1f, 1, true, 4, 16, 0x201, 7);
	if (with_kvm_leaves) {
		cpuid_put(c, 0x40000000, 0, false, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d);
		cpuid_put(c, 0x40000001, 0, false, 0x1234, 0, 0, 0);
		cpuid_put(c, 0x40000010, 0, false, 1, 2, 3, 4); /* beyond our max leaf */
	}
	cpuid_put(c, 0x80000000, 0, false, 0x80000008, 0, 0, 0);
	cpuid_put(c, 0x80000001, 0, false, 0, 0, (1U << 2) | 1, 0);
	return c;
}

static struct kvm_cpuid_entry2 *must_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	struct kvm_cpuid_entry2 *e = hv_cpuid_find(c, fn, idx);

	assert_non_null(e);
	return e;
}

static void assert_kvm_signature(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e = must_find(c, 0x40000000, 0);
	char sig[12];

	memcpy(sig, &e->ebx, 4);
	memcpy(sig + 4, &e->ecx, 4);
	memcpy(sig + 8, &e->edx, 4);
	assert_memory_equal(sig, "KVMKVMKVM\0\0\0", 12);
	assert_int_equal(e->eax, 0x40000001);
}

static void test_cpuid_topology(void **state)
{
	struct kvm_cpuid2 *c = cpuid_intel(true);
	struct kvm_cpuid_entry2 *e;

	/* vCPU 2 of 3: two bits of core ID. */
	assert_int_equal(hv_cpuid_patch(c, CPUID_CAP, 2, 3), 0);

	e = must_find(c, 1, 0);
	assert_int_equal(e->ebx >> 24, 2); /* APIC ID */
	assert_int_equal((e->ebx >> 16) & 0xff, 3); /* logical processors */
	assert_int_equal(e->ebx & 0xffff, 0x0800); /* CLFLUSH size kept */
	assert_true(e->ecx & (1U << 31)); /* hypervisor */
	assert_false(e->ecx & (1U << 5)); /* VMX hidden */
	assert_false(e->ecx & (1U << 15)); /* PDCM hidden with the PMU */
	assert_true(e->ecx & (1U << 21)); /* x2APIC kept */
	assert_true(e->edx & (1U << 28)); /* HTT: more than one logical processor */

	e = must_find(c, 4, 0); /* L1d: one thread; 4 core IDs in the package */
	assert_int_equal((e->eax >> 14) & 0xfff, 0);
	assert_int_equal(e->eax >> 26, 3);
	assert_int_equal(e->eax & 0x3fff, (1 << 5) | 1);
	e = must_find(c, 4, 1); /* L2 */
	assert_int_equal((e->eax >> 14) & 0xfff, 0);
	e = must_find(c, 4, 2); /* L3: the whole package */
	assert_int_equal((e->eax >> 14) & 0xfff, 3);
	assert_int_equal(e->eax >> 26, 3);
	e = must_find(c, 4, 3); /* terminator unchanged */
	assert_int_equal(e->eax, 0);

	for (uint32_t leaf = 0xb; leaf <= 0x1f; leaf += 0x14) {
		e = must_find(c, leaf, 0); /* SMT level */
		assert_int_equal(e->eax, 0);
		assert_int_equal(e->ebx, 1);
		assert_int_equal(e->ecx, 0x100);
		assert_int_equal(e->edx, 2);
		e = must_find(c, leaf, 1); /* core level */
		assert_int_equal(e->eax, 2);
		assert_int_equal(e->ebx, 3);
		assert_int_equal(e->ecx, 0x201);
		assert_int_equal(e->edx, 2);
		e = must_find(c, leaf, 2); /* end */
		assert_int_equal((e->ecx >> 8) & 0xff, 0);
		assert_int_equal(e->ebx, 0);
		assert_int_equal(e->edx, 2);
		assert_null(hv_cpuid_find(c, leaf, 3));
	}

	e = must_find(c, 7, 0);
	assert_int_equal(e->ebx, 1); /* SGX hidden, the rest kept */
	assert_int_equal(e->ecx, 0);
	e = must_find(c, 0xa, 0);
	assert_int_equal(e->eax | e->ebx | e->ecx | e->edx, 0);
	assert_null(hv_cpuid_find(c, 0x12, 0));
	e = must_find(c, 0x80000001, 0);
	assert_int_equal(e->ecx, 1); /* SVM hidden */

	assert_kvm_signature(c);
	e = must_find(c, 0x40000001, 0);
	assert_int_equal(e->eax, 0x1234); /* features as KVM offered them */
	assert_null(hv_cpuid_find(c, 0x40000010, 0));
	free(c);
}

static void test_cpuid_single_vcpu(void **state)
{
	struct kvm_cpuid2 *c = cpuid_intel(true);
	struct kvm_cpuid_entry2 *e;

	assert_int_equal(hv_cpuid_patch(c, CPUID_CAP, 0, 1), 0);
	e = must_find(c, 1, 0);
	assert_int_equal(e->ebx >> 24, 0);
	assert_int_equal((e->ebx >> 16) & 0xff, 1);
	assert_false(e->edx & (1U << 28));
	e = must_find(c, 4, 2);
	assert_int_equal((e->eax >> 14) & 0xfff, 0);
	assert_int_equal(e->eax >> 26, 0);
	e = must_find(c, 0xb, 1);
	assert_int_equal(e->eax, 0);
	assert_int_equal(e->ebx, 1);
	free(c);
}

static void test_cpuid_adds_kvm_leaves(void **state)
{
	struct kvm_cpuid2 *c = cpuid_intel(false);
	unsigned n;

	assert_null(hv_cpuid_find(c, 0x40000000, 0));
	assert_int_equal(hv_cpuid_patch(c, CPUID_CAP, 1, 2), 0);
	assert_kvm_signature(c);
	assert_int_equal(must_find(c, 0x40000001, 0)->eax, 0);

	/* Patching twice is stable (same entry count, same values). */
	n = c->nent;
	assert_int_equal(hv_cpuid_patch(c, CPUID_CAP, 1, 2), 0);
	assert_int_equal(c->nent, n);
	assert_int_equal(must_find(c, 1, 0)->ebx >> 24, 1);
	free(c);
}

static void test_cpuid_errors(void **state)
{
	struct kvm_cpuid2 *c = cpuid_intel(false);

	assert_int_equal(hv_cpuid_patch(c, CPUID_CAP, 3, 3), -EINVAL);
	assert_int_equal(hv_cpuid_patch(c, CPUID_CAP, 0, 0), -EINVAL);
	assert_int_equal(hv_cpuid_patch(c, CPUID_CAP, 0, HV_MAX_VCPUS + 1), -EINVAL);
	/* No room for the topology and KVM leaves. */
	assert_int_equal(hv_cpuid_patch(c, c->nent, 0, 2), -ENOSPC);
	free(c);
}

/* ---- on /dev/kvm ------------------------------------------------------------------------- */

struct pio_log {
	struct hv_vcpu *vcpu;
	unsigned writes;
	uint16_t port[8];
	uint8_t val[8];
	unsigned size[8];
	bool saw_read;
	bool kick_on_read;
};

static int pio_cb(void *opaque, uint16_t port, void *data, unsigned size, bool is_write)
{
	struct pio_log *l = opaque;

	if (!is_write) {
		assert_int_equal(port, 0x3f9);
		memset(data, 0, size);
		*(uint8_t *)data = 0x5a;
		l->saw_read = true;
		if (l->kick_on_read)
			hv_vcpu_kick(l->vcpu);
		return 0;
	}
	if (l->writes < ARRAY_SIZE(l->port)) {
		l->port[l->writes] = port;
		l->val[l->writes] = *(uint8_t *)data;
		l->size[l->writes] = size;
	}
	l->writes++;
	if (port == 0x3fa) /* the program's last instruction before hlt */
		hv_vcpu_kick(l->vcpu);
	return 0;
}

static const struct hv_exit_ops test_ops = { .pio = pio_cb };

struct kvm_fixture {
	int kvm_fd;
	struct gmem mem;
	struct hv_vm *vm;
	struct hv_vcpu *vcpu;
};

static int kvm_setup(void **state)
{
	struct kvm_fixture *f = calloc(1, sizeof(*f));
	const struct gmem_layout layout = { .gpa = 0, .size = 64 * MiB };

	assert_non_null(f);
	f->kvm_fd = -1;
	f->mem.fd = -1;
	*state = f;
	if (hv_kvm_open(&f->kvm_fd) < 0)
		return 0; /* the tests skip */
	assert_int_equal(hv_signals_init(), 0);
	assert_int_equal(gmem_init(&f->mem, &layout, 1, false), 0);
	assert_int_equal(hv_vm_create(f->kvm_fd, &f->vm), 0);
	assert_int_equal(hv_vm_set_memory(f->vm, &f->mem), 0);
	return 0;
}

static int kvm_teardown(void **state)
{
	struct kvm_fixture *f = *state;

	hv_vcpu_destroy(f->vcpu);
	hv_vm_destroy(f->vm);
	if (f->mem.fd >= 0)
		gmem_destroy(&f->mem);
	if (f->kvm_fd >= 0)
		close(f->kvm_fd);
	free(f);
	return 0;
}

/* Real-mode code at gpa 0x1000 run with CS base 0x1000, IP 0. */
static void load_real_mode(struct kvm_fixture *f, const uint8_t *code, size_t len)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0, .rflags = 2 };

	assert_int_equal(gmem_write(&f->mem, 0x1000, code, len), 0);
	assert_int_equal(gmem_write(&f->mem, 0x20, "xyz", 3), 0);
	assert_int_equal(hv_vcpu_get_sregs(f->vcpu, &sregs), 0);
	sregs.cs.base = 0x1000;
	sregs.cs.selector = 0x100;
	assert_int_equal(hv_vcpu_set_sregs(f->vcpu, &sregs), 0);
	assert_int_equal(hv_vcpu_set_regs(f->vcpu, &regs), 0);
}

static void test_kvm_vm_limits(void **state)
{
	struct kvm_fixture *f = *state;
	struct hv_vcpu *other = NULL;

	if (!f->vm)
		skip();
	assert_true(hv_vm_max_vcpus(f->vm) >= 1);
	assert_int_equal(hv_vm_set_nr_vcpus(f->vm, hv_vm_max_vcpus(f->vm) + 1), -E2BIG);
	assert_int_equal(hv_vm_set_nr_vcpus(f->vm, 0), -EINVAL);
	assert_int_equal(hv_vm_set_nr_vcpus(f->vm, 2), 0);
	assert_int_equal(hv_vm_set_memory(f->vm, &f->mem), -EBUSY);
	assert_int_equal(hv_vcpu_create(f->vm, 2, &other), -EINVAL);
	assert_int_equal(hv_vcpu_create(f->vm, 0, &f->vcpu), 0);
	assert_int_equal(hv_vcpu_create(f->vm, 0, &other), -EEXIST);
	assert_null(other);
	assert_int_equal(hv_vm_set_nr_vcpus(f->vm, 1), -EBUSY);
	assert_int_equal(hv_vcpu_create(f->vm, 1, &other), 0);
	assert_int_equal(hv_vcpu_index(other), 1);

	/* The CPUID KVM holds for vCPU 1 is the patched one. */
	struct kvm_cpuid2 *c = cpuid_new();
	c->nent = CPUID_CAP;
	if (ioctl(hv_vcpu_fd(other), KVM_GET_CPUID2, c) < 0) {
		/* more entries than CPUID_CAP: retry with room */
		assert_int_equal(errno, E2BIG);
		free(c);
		c = calloc(1, sizeof(*c) + 4096 * sizeof(c->entries[0]));
		assert_non_null(c);
		c->nent = 4096;
		assert_int_equal(ioctl(hv_vcpu_fd(other), KVM_GET_CPUID2, c), 0);
	}
	assert_kvm_signature(c);
	assert_int_equal(must_find(c, 1, 0)->ebx >> 24, 1);
	assert_true(must_find(c, 1, 0)->ecx & (1U << 31));
	free(c);

	uint32_t mp = 99;
	assert_int_equal(hv_vcpu_get_mp_state(f->vcpu, &mp), 0);
	assert_int_equal(mp, KVM_MP_STATE_RUNNABLE);
	assert_int_equal(hv_vcpu_get_mp_state(other, &mp), 0);
	assert_int_equal(mp, KVM_MP_STATE_UNINITIALIZED);
	hv_vcpu_destroy(other);
}

static void test_kvm_irq_ops(void **state)
{
	struct kvm_fixture *f = *state;
	struct hv_irq *irq;
	unsigned gsi;
	int efd, efd2;

	if (!f->vm)
		skip();
	irq = hv_vm_irq(f->vm);
	assert_int_equal(irq->ops->line_set(irq, 4, 1), 0);
	assert_int_equal(irq->ops->line_set(irq, 4, 0), 0);
	assert_int_equal(irq->ops->line_set(irq, HV_GSI_LEGACY_NR, 1), -EINVAL);
	assert_int_equal(irq->ops->msi_alloc(irq, &gsi), 0);
	assert_int_equal(gsi, HV_GSI_MSI_FIRST);
	assert_int_equal(irq->ops->msi_update(irq, gsi, 0xfee00000ULL, 0x41), 0);
	assert_int_equal(irq->ops->msi_update(irq, gsi + 1, 0xfee00000ULL, 0x41), -EINVAL);
	efd = eventfd(0, EFD_CLOEXEC);
	efd2 = eventfd(0, EFD_CLOEXEC);
	assert_true(efd >= 0 && efd2 >= 0);
	assert_int_equal(irq->ops->irqfd(irq, efd, gsi, true), 0);
	assert_int_equal(irq->ops->irqfd(irq, efd, gsi, false), 0);
	assert_int_equal(irq->ops->ioeventfd(irq, efd2, 0xc010, 2, true, -1, true), 0);
	assert_int_equal(irq->ops->ioeventfd(irq, efd2, 0xc010, 2, true, -1, false), 0);
	assert_int_equal(irq->ops->ioeventfd(irq, efd2, 0xd0000000ULL, 4, false, 7, true), 0);
	assert_int_equal(irq->ops->ioeventfd(irq, efd2, 0xd0000000ULL, 4, false, 7, false), 0);
	assert_int_equal(irq->ops->ioeventfd(irq, efd2, 0xd0000000ULL, 3, false, -1, true), -EINVAL);
	assert_int_equal(irq->ops->ioeventfd(irq, efd2, 0xd0000000ULL, 0, false, 1, true), -EINVAL);
	assert_int_equal(irq->ops->ioeventfd(irq, efd2, 0x10000, 1, true, -1, true), -EINVAL);
	/* No vCPU yet: the MSI has no destination and is dropped, not an error. */
	assert_int_equal(irq->ops->msi_signal(irq, 0xfee00000ULL, 0x41), 0);
	assert_int_equal(hv_vcpu_create(f->vm, 0, &f->vcpu), 0);
	assert_int_equal(irq->ops->msi_signal(irq, 0xfee00000ULL, 0x41), 0);
	irq->ops->msi_free(irq, gsi);
	assert_int_equal(irq->ops->msi_alloc(irq, &gsi), 0);
	assert_int_equal(gsi, HV_GSI_MSI_FIRST);
	close(efd);
	close(efd2);
}

static void test_kvm_real_mode_pio(void **state)
{
	static const uint8_t code[] = {
		0xba, 0xf8, 0x03, /*  0: mov $0x3f8,%dx */
		0xb0, 'A',        /*  3: mov $'A',%al */
		0xee,             /*  5: out %al,(%dx) */
		0x42,             /*  6: inc %dx */
		0xec,             /*  7: in (%dx),%al: the callback answers 0x5a */
		0xb9, 0x03, 0x00, /*  8: mov $3,%cx */
		0xbe, 0x20, 0x00, /* 11: mov $0x20,%si */
		0x42, 0x42,       /* 14: inc %dx; inc %dx (0x3fb) */
		0xf3, 0x6e,       /* 16: rep outsb: "xyz" from DS:0x20 */
		0x4a,             /* 18: dec %dx (0x3fa) */
		0xee,             /* 19: out %al,(%dx): the callback kicks */
		0xf4,             /* 20: hlt */
		0xeb, 0xfe,       /* 21: jmp . */
	};
	struct kvm_fixture *f = *state;
	struct pio_log log = { 0 };
	struct hv_vcpu_stats st;
	struct kvm_regs regs;
	char line[256];
	int r;

	if (!f->vm)
		skip();
	assert_int_equal(hv_vcpu_create(f->vm, 0, &f->vcpu), 0);
	load_real_mode(f, code, sizeof(code));
	log.vcpu = f->vcpu;

	/* A kick before the run: returns at once without entering the guest. */
	hv_vcpu_kick(f->vcpu);
	assert_true(hv_vcpu_stop_requested(f->vcpu));
	assert_int_equal(hv_vcpu_run(f->vcpu, &test_ops, &log), HV_STOP_REQUESTED);
	assert_int_equal(log.writes, 0);
	hv_vcpu_get_stats(f->vcpu, &st);
	assert_int_equal(st.runs, 0);

	hv_vcpu_clear_stop(f->vcpu);
	r = hv_vcpu_run(f->vcpu, &test_ops, &log);
	hv_vcpu_describe_exit(f->vcpu, line, sizeof(line));
	assert_int_equal(r, HV_STOP_REQUESTED);
	assert_string_equal(line, "stopped on request");
	assert_int_equal(log.writes, 5);
	assert_int_equal(log.port[0], 0x3f8);
	assert_int_equal(log.val[0], 'A');
	assert_int_equal(log.size[0], 1);
	assert_true(log.saw_read);
	/* String output: one call per element, in order. */
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(log.port[1 + i], 0x3fb);
		assert_int_equal(log.val[1 + i], "xyz"[i]);
	}
	assert_int_equal(log.port[4], 0x3fa);
	assert_int_equal(log.val[4], 0x5a); /* the IN result reached the guest's AL */

	hv_vcpu_get_stats(f->vcpu, &st);
	assert_true(st.pio >= 4);
	assert_true(st.exits >= st.pio);
	/* Stopped just after the last OUT, before the hlt. */
	assert_int_equal(hv_vcpu_get_regs(f->vcpu, &regs), 0);
	assert_int_equal(regs.rip, 20);
	assert_int_equal(regs.rax & 0xff, 0x5a);
}

/* A stop requested while an IN is pending: the value must reach the guest before
 * hv_vcpu_run() returns, so a saved state is complete. */
static void test_kvm_stop_completes_in(void **state)
{
	static const uint8_t code[] = {
		0xba, 0xf9, 0x03, /* 0: mov $0x3f9,%dx */
		0xec,             /* 3: in (%dx),%al: the callback answers 0x5a and kicks */
		0xeb, 0xfe,       /* 4: jmp . */
	};
	struct kvm_fixture *f = *state;
	struct pio_log log = { .kick_on_read = true };
	struct kvm_regs regs;

	if (!f->vm)
		skip();
	assert_int_equal(hv_vcpu_create(f->vm, 0, &f->vcpu), 0);
	load_real_mode(f, code, sizeof(code));
	log.vcpu = f->vcpu;
	assert_int_equal(hv_vcpu_run(f->vcpu, &test_ops, &log), HV_STOP_REQUESTED);
	assert_true(log.saw_read);
	assert_int_equal(hv_vcpu_get_regs(f->vcpu, &regs), 0);
	assert_int_equal(regs.rax & 0xff, 0x5a);
	assert_int_equal(regs.rip, 4);
}

struct runner {
	struct hv_vcpu *vcpu;
	int ret;
};

static void *run_thread(void *p)
{
	struct runner *rn = p;

	rn->ret = hv_vcpu_run(rn->vcpu, NULL, NULL);
	return NULL;
}

static void test_kvm_kick_from_other_thread(void **state)
{
	static const uint8_t code[] = { 0xeb, 0xfe }; /* jmp . */
	struct kvm_fixture *f = *state;
	struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };
	struct runner rn = { .ret = 0 };
	struct hv_vcpu_stats st;
	pthread_t t;

	if (!f->vm)
		skip();
	assert_int_equal(hv_vcpu_create(f->vm, 0, &f->vcpu), 0);
	load_real_mode(f, code, sizeof(code));
	rn.vcpu = f->vcpu;
	assert_int_equal(pthread_create(&t, NULL, run_thread, &rn), 0);
	nanosleep(&ts, NULL);
	hv_vcpu_kick(f->vcpu);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(rn.ret, HV_STOP_REQUESTED);
	hv_vcpu_get_stats(f->vcpu, &st);
	assert_true(st.runs >= 1);
	assert_true(st.intr >= 1);
}

static void test_kvm_check(void **state)
{
	struct kvm_fixture *f = *state;
	const char *missing = "unset";

	if (f->kvm_fd < 0)
		skip();
	assert_int_equal(hv_kvm_check(f->kvm_fd, &missing), 0);
	assert_string_equal(missing, "unset"); /* untouched on success */
	/* Not a KVM fd: the ioctl fails, and the error comes back. */
	assert_true(hv_kvm_check(STDIN_FILENO, NULL) < 0);
	hv_vm_destroy(NULL);
	hv_vcpu_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gsi_default_routes),
		cmocka_unit_test(test_gsi_msi_alloc_set_free),
		cmocka_unit_test(test_gsi_table_full),
		cmocka_unit_test(test_cpuid_topology),
		cmocka_unit_test(test_cpuid_single_vcpu),
		cmocka_unit_test(test_cpuid_adds_kvm_leaves),
		cmocka_unit_test(test_cpuid_errors),
		cmocka_unit_test_setup_teardown(test_kvm_check, kvm_setup, kvm_teardown),
		cmocka_unit_test_setup_teardown(test_kvm_vm_limits, kvm_setup, kvm_teardown),
		cmocka_unit_test_setup_teardown(test_kvm_irq_ops, kvm_setup, kvm_teardown),
		cmocka_unit_test_setup_teardown(test_kvm_real_mode_pio, kvm_setup, kvm_teardown),
		cmocka_unit_test_setup_teardown(test_kvm_stop_completes_in, kvm_setup, kvm_teardown),
		cmocka_unit_test_setup_teardown(test_kvm_kick_from_other_thread, kvm_setup, kvm_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
