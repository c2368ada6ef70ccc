// SPDX-License-Identifier: GPL-2.0-only
/* Interrupts over the in-kernel irqchip: GSI routing table, IRQ lines, MSI, irqfd, ioeventfd. */
#include "hv/kvm_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lib/util.h"

/* ---- the table, pure --------------------------------------------------------------------- */

struct legacy_route {
	uint8_t gsi, chip, pin;
};

/* As QEMU (kvm_pc_setup_irq_routing) and kvmtool do: GSI 2 is the PIC cascade and has no
 * route; GSI 0 (the PIT) reaches IOAPIC pin 2, matching the MADT's ISA IRQ0 -> GSI 2 override. */
static unsigned legacy_routes(struct legacy_route *out)
{
	unsigned n = 0;

	for (unsigned i = 0; i < 8; i++)
		if (i != 2)
			out[n++] = (struct legacy_route){ i, KVM_IRQCHIP_PIC_MASTER, i };
	for (unsigned i = 8; i < 16; i++)
		out[n++] = (struct legacy_route){ i, KVM_IRQCHIP_PIC_SLAVE, i - 8 };
	for (unsigned i = 0; i < HV_GSI_LEGACY_NR; i++) {
		if (i == 0)
			out[n++] = (struct legacy_route){ 0, KVM_IRQCHIP_IOAPIC, 2 };
		else if (i != 2)
			out[n++] = (struct legacy_route){ i, KVM_IRQCHIP_IOAPIC, i };
	}
	return n;
}

#define LEGACY_ROUTES_MAX 48

void hv_gsi_table_init(struct hv_gsi_table *t)
{
	memset(t, 0, sizeof(*t));
}

static struct hv_msi_route *msi_route(struct hv_gsi_table *t, unsigned gsi)
{
	if (gsi < HV_GSI_MSI_FIRST || gsi - HV_GSI_MSI_FIRST >= HV_GSI_MSI_NR)
		return NULL;
	if (!t->msi[gsi - HV_GSI_MSI_FIRST].used)
		return NULL;
	return &t->msi[gsi - HV_GSI_MSI_FIRST];
}

int hv_gsi_table_alloc(struct hv_gsi_table *t, unsigned *ret_gsi)
{
	for (unsigned i = 0; i < HV_GSI_MSI_NR; i++) {
		if (!t->msi[i].used) {
			t->msi[i] = (struct hv_msi_route){ .used = true };
			*ret_gsi = HV_GSI_MSI_FIRST + i;
			return 0;
		}
	}
	return -ENOSPC;
}

int hv_gsi_table_set(struct hv_gsi_table *t, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct hv_msi_route *m = msi_route(t, gsi);

	if (!m)
		return -EINVAL;
	if (m->set && m->addr == addr && m->data == data)
		return 0;
	if (!m->set)
		t->nr_set++;
	m->addr = addr;
	m->data = data;
	m->set = true;
	return 1;
}

int hv_gsi_table_free(struct hv_gsi_table *t, unsigned gsi)
{
	struct hv_msi_route *m = msi_route(t, gsi);
	bool had = false;

	if (!m)
		return -EINVAL;
	if (m->set) {
		t->nr_set--;
		had = true;
	}
	*m = (struct hv_msi_route){ 0 };
	return had;
}

unsigned hv_gsi_table_entries(const struct hv_gsi_table *t)
{
	struct legacy_route legacy[LEGACY_ROUTES_MAX];

	return legacy_routes(legacy) + t->nr_set;
}

int hv_gsi_routing_build(const struct hv_gsi_table *t, struct kvm_irq_routing **ret)
{
	struct legacy_route legacy[LEGACY_ROUTES_MAX];
	unsigned nl = legacy_routes(legacy), n = 0;
	struct kvm_irq_routing *r;

	r = calloc(1, sizeof(*r) + (nl + t->nr_set) * sizeof(r->entries[0]));
	if (!r)
		return -ENOMEM;
	for (unsigned i = 0; i < nl; i++) {
		r->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = legacy[i].gsi,
			.type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = legacy[i].chip, .pin = legacy[i].pin },
		};
	}
	for (unsigned i = 0; i < HV_GSI_MSI_NR && n < nl + t->nr_set; i++) {
		const struct hv_msi_route *m = &t->msi[i];

		if (!m->set)
			continue;
		r->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = HV_GSI_MSI_FIRST + i,
			.type = KVM_IRQ_ROUTING_MSI,
			.u.msi = {
				.address_lo = (uint32_t)m->addr,
				.address_hi = (uint32_t)(m->addr >> 32),
				.data = m->data,
			},
		};
	}
	r->nr = n;
	*ret = r;
	return 0;
}

/* ---- hv_irq over the VM ------------------------------------------------------------------ */

static struct hv_kvm_irq *to_kirq(struct hv_irq *irq)
{
	return container_of(irq, struct hv_kvm_irq, base);
}

/* Called with the lock held. */
static int routing_load(struct hv_kvm_irq *ki)
{
	struct kvm_irq_routing *r;
	int ret;

	ret = hv_gsi_routing_build(&ki->table, &r);
	if (ret < 0)
		return ret;
	ret = ioctl(ki->vm->fd, KVM_SET_GSI_ROUTING, r) < 0 ? -errno : 0;
	free(r);
	return ret;
}

static int kvm_line_set(struct hv_irq *irq, unsigned gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = level ? 1 : 0 };

	if (gsi >= HV_GSI_LEGACY_NR)
		return -EINVAL;
	return ioctl(to_kirq(irq)->vm->fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static int kvm_msi_alloc(struct hv_irq *irq, unsigned *ret_gsi)
{
	struct hv_kvm_irq *ki = to_kirq(irq);
	int r;

	/* An allocated but unprogrammed GSI has no route, so nothing to reload yet. */
	pthread_mutex_lock(&ki->lock);
	r = hv_gsi_table_alloc(&ki->table, ret_gsi);
	pthread_mutex_unlock(&ki->lock);
	return r;
}

static int kvm_msi_update(struct hv_irq *irq, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct hv_kvm_irq *ki = to_kirq(irq);
	struct hv_msi_route old = { 0 };
	int r;

	pthread_mutex_lock(&ki->lock);
	if (gsi >= HV_GSI_MSI_FIRST && gsi - HV_GSI_MSI_FIRST < HV_GSI_MSI_NR)
		old = ki->table.msi[gsi - HV_GSI_MSI_FIRST];
	r = hv_gsi_table_set(&ki->table, gsi, addr, data);
	if (r > 0) {
		r = routing_load(ki);
		if (r < 0) {
			/* Keep the table equal to what the kernel holds. */
			if (!old.set)
				ki->table.nr_set--;
			ki->table.msi[gsi - HV_GSI_MSI_FIRST] = old;
		}
	}
	pthread_mutex_unlock(&ki->lock);
	return r < 0 ? r : 0;
}

static void kvm_msi_free(struct hv_irq *irq, unsigned gsi)
{
	struct hv_kvm_irq *ki = to_kirq(irq);

	pthread_mutex_lock(&ki->lock);
	if (hv_gsi_table_free(&ki->table, gsi) > 0)
		(void)routing_load(ki); /* a stale route on a free GSI is harmless: no irqfd uses it */
	pthread_mutex_unlock(&ki->lock);
}

static int kvm_msi_signal(struct hv_irq *irq, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = data,
	};

	/* > 0 delivered, 0 blocked by the guest (e.g. APIC disabled), and -1 (seen as EPERM)
	 * when no vCPU matched the guest-programmed destination: as on a real bus, an MSI to
	 * nowhere is dropped, which is not the device's error. */
	if (ioctl(to_kirq(irq)->vm->fd, KVM_SIGNAL_MSI, &msi) < 0 && errno != EPERM)
		return -errno;
	return 0;
}

static int kvm_irqfd(struct hv_irq *irq, int fd, unsigned gsi, bool assign)
{
	struct kvm_irqfd f = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (fd < 0 || gsi >= HV_GSI_MSI_FIRST + HV_GSI_MSI_NR)
		return -EINVAL;
	return ioctl(to_kirq(irq)->vm->fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

static int kvm_ioeventfd(struct hv_irq *irq, int fd, uint64_t addr, unsigned len, bool pio,
			 int64_t datamatch, bool assign)
{
	struct kvm_ioeventfd e = {
		.addr = addr,
		.len = len,
		.fd = fd,
	};

	if (fd < 0)
		return -EINVAL;
	if (len != 0 && len != 1 && len != 2 && len != 4 && len != 8)
		return -EINVAL;
	/* KVM refuses a value match on a width-less (any size) ioeventfd. */
	if (len == 0 && datamatch >= 0)
		return -EINVAL;
	if (pio && (addr > 0xffff || addr + (len ? len : 1) > 0x10000))
		return -EINVAL;
	if (datamatch >= 0) {
		e.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
		e.datamatch = (uint64_t)datamatch;
	}
	if (pio)
		e.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (!assign)
		e.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	return ioctl(to_kirq(irq)->vm->fd, KVM_IOEVENTFD, &e) < 0 ? -errno : 0;
}

static const struct hv_irq_ops kvm_irq_ops = {
	.line_set = kvm_line_set,
	.msi_alloc = kvm_msi_alloc,
	.msi_update = kvm_msi_update,
	.msi_free = kvm_msi_free,
	.msi_signal = kvm_msi_signal,
	.irqfd = kvm_irqfd,
	.ioeventfd = kvm_ioeventfd,
};

int hv_irq_init(struct hv_vm *vm)
{
	struct hv_kvm_irq *ki = &vm->irq;
	int r;

	ki->base.ops = &kvm_irq_ops;
	ki->vm = vm;
	pthread_mutex_init(&ki->lock, NULL);
	hv_gsi_table_init(&ki->table);
	pthread_mutex_lock(&ki->lock);
	r = routing_load(ki);
	pthread_mutex_unlock(&ki->lock);
	return r;
}

void hv_irq_fini(struct hv_vm *vm)
{
	pthread_mutex_destroy(&vm->irq.lock);
	vm->irq.vm = NULL;
}
