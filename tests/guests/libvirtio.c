// SPDX-License-Identifier: GPL-2.0-only
/* The test guests' polling virtio-pci (modern) driver; see libvirtio.h. */
#include "tests/guests/libguest.h"
#include "tests/guests/libvirtio.h"

#define CC(field) offsetof(struct virtio_pci_common_cfg, field)
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_WALK_MAX 48
#define VPCI_NO_VECTOR 0xffff
/* Completion wait bound in TSC ticks: a few seconds on any machine we run on. */
#define VQ_TIMEOUT_TICKS 10000000000ULL

static uint64_t common(struct vpci_dev *d, size_t off)
{
	return d->common + off;
}

uint8_t vpci_status(struct vpci_dev *d)
{
	return mmio_read8(common(d, CC(device_status)));
}

static void status_set(struct vpci_dev *d, uint8_t bits)
{
	mmio_write8(common(d, CC(device_status)), (uint8_t)(vpci_status(d) | bits));
}

int vpci_open(struct vpci_dev *d, uint16_t device_id, const char *tname)
{
	unsigned int dev, fn, i;
	uint8_t ptr;
	uint16_t cmd;
	int have_common = 0, have_notify = 0, have_isr = 0;

	memset(d, 0, sizeof(*d));
	if (pci_find(VIRTIO_PCI_VENDOR, device_id, &dev, &fn) < 0) {
		guest_fail(tname, "no PCI function %04x:%04x on bus 0", VIRTIO_PCI_VENDOR,
			   device_id);
		return -1;
	}
	d->pci_dev = dev;
	d->pci_fn = fn;
	cmd = pci_cfg_read16(dev, fn, 0x04);
	if (!(cmd & 0x2)) {
		guest_fail(tname, "memory decode not enabled by the worker (command 0x%04x)", cmd);
		return -1;
	}
	/* Bus mastering is the driver's job, as Linux's pci_set_master() does it. */
	pci_cfg_write16(dev, fn, 0x04, (uint16_t)(cmd | 0x6));
	if (!(pci_cfg_read16(dev, fn, 0x06) & 0x10)) {
		guest_fail(tname, "status register has no capability list");
		return -1;
	}
	ptr = pci_cfg_read8(dev, fn, 0x34) & 0xfc;
	for (i = 0; ptr && i < PCI_CAP_WALK_MAX; i++) {
		uint8_t id = pci_cfg_read8(dev, fn, ptr);
		uint8_t next = pci_cfg_read8(dev, fn, ptr + 1) & 0xfc;

		if (ptr < 0x40) {
			guest_fail(tname, "capability pointer 0x%02x inside the header", ptr);
			return -1;
		}
		if (id == PCI_CAP_ID_VNDR) {
			uint8_t type = pci_cfg_read8(dev, fn, ptr + 3);
			uint8_t bar = pci_cfg_read8(dev, fn, ptr + 4);
			uint32_t off = pci_cfg_read32(dev, fn, ptr + 8);
			uint32_t len = pci_cfg_read32(dev, fn, ptr + 12);
			uint64_t base = bar <= 5 ? pci_bar_addr(dev, fn, bar) : 0;

			/* The first capability of each type is the one to use (spec 4.1.4). */
			if (type >= VIRTIO_PCI_CAP_COMMON_CFG && type <= VIRTIO_PCI_CAP_DEVICE_CFG) {
				if (!base || base + off + len > 0x100000000ULL) {
					guest_fail(tname,
						   "cap type %u: BAR%u base 0x%lx + 0x%x not in 32-bit MMIO",
						   type, bar, (unsigned long)base, off);
					return -1;
				}
			}
			if (type == VIRTIO_PCI_CAP_COMMON_CFG && !have_common) {
				d->common = base + off;
				have_common = len >= sizeof(struct virtio_pci_common_cfg);
				if (!have_common) {
					guest_fail(tname, "common cfg length %u too small", len);
					return -1;
				}
			} else if (type == VIRTIO_PCI_CAP_NOTIFY_CFG && !have_notify) {
				d->notify = base + off;
				d->notify_mult = pci_cfg_read32(dev, fn, ptr + 16);
				have_notify = 1;
			} else if (type == VIRTIO_PCI_CAP_ISR_CFG && !have_isr) {
				d->isr = base + off;
				have_isr = 1;
			} else if (type == VIRTIO_PCI_CAP_DEVICE_CFG && !d->device) {
				d->device = base + off;
				d->device_len = len;
			}
		}
		ptr = next;
	}
	if (ptr) {
		guest_fail(tname, "capability list does not end within %d entries",
			   PCI_CAP_WALK_MAX);
		return -1;
	}
	if (!have_common || !have_notify || !have_isr) {
		guest_fail(tname, "missing virtio capability: common=%d notify=%d isr=%d",
			   have_common, have_notify, have_isr);
		return -1;
	}
	guest_printf("INFO %s: 00:%02x.%x common=0x%lx notify=0x%lx mult=%u isr=0x%lx device=0x%lx\n",
		     tname, dev, fn, (unsigned long)d->common, (unsigned long)d->notify,
		     d->notify_mult, (unsigned long)d->isr, (unsigned long)d->device);
	return 0;
}

int vpci_reset(struct vpci_dev *d, const char *tname)
{
	unsigned int i;

	mmio_write8(common(d, CC(device_status)), 0);
	/* The device may finish its reset asynchronously; the driver waits for 0 (spec 4.1.4.3.2). */
	for (i = 0; i < 100000; i++) {
		if (vpci_status(d) == 0)
			return 0;
		cpu_relax();
	}
	guest_fail(tname, "device_status reads 0x%02x after reset", vpci_status(d));
	return -1;
}

int vpci_negotiate(struct vpci_dev *d, uint64_t want, const char *tname)
{
	uint64_t offered;
	uint8_t st;

	if (vpci_reset(d, tname) < 0)
		return -1;
	status_set(d, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	status_set(d, VIRTIO_CONFIG_S_DRIVER);
	mmio_write32(common(d, CC(device_feature_select)), 0);
	offered = mmio_read32(common(d, CC(device_feature)));
	mmio_write32(common(d, CC(device_feature_select)), 1);
	offered |= (uint64_t)mmio_read32(common(d, CC(device_feature))) << 32;
	guest_printf("INFO %s: device features 0x%lx\n", tname, (unsigned long)offered);
	if (!(offered & (1ULL << VIRTIO_F_VERSION_1))) {
		guest_fail(tname, "device does not offer VIRTIO_F_VERSION_1 (features 0x%lx)",
			   (unsigned long)offered);
		return -1;
	}
	d->features = (offered & want) | (1ULL << VIRTIO_F_VERSION_1);
	mmio_write32(common(d, CC(guest_feature_select)), 0);
	mmio_write32(common(d, CC(guest_feature)), (uint32_t)d->features);
	mmio_write32(common(d, CC(guest_feature_select)), 1);
	mmio_write32(common(d, CC(guest_feature)), (uint32_t)(d->features >> 32));
	status_set(d, VIRTIO_CONFIG_S_FEATURES_OK);
	st = vpci_status(d);
	if (!(st & VIRTIO_CONFIG_S_FEATURES_OK)) {
		guest_fail(tname, "device refused features 0x%lx (status 0x%02x)",
			   (unsigned long)d->features, st);
		return -1;
	}
	/* No MSI-X: configuration changes get no vector. */
	mmio_write16(common(d, CC(msix_config)), VPCI_NO_VECTOR);
	return 0;
}

int vpci_driver_ok(struct vpci_dev *d, const char *tname)
{
	uint8_t st;

	status_set(d, VIRTIO_CONFIG_S_DRIVER_OK);
	st = vpci_status(d);
	if ((st & VIRTIO_CONFIG_S_NEEDS_RESET) || !(st & VIRTIO_CONFIG_S_DRIVER_OK)) {
		guest_fail(tname, "device_status 0x%02x after DRIVER_OK", st);
		return -1;
	}
	return 0;
}

uint32_t vpci_cfg_read32(struct vpci_dev *d, unsigned int off)
{
	unsigned int i;
	uint32_t v = 0;

	for (i = 0; i < 100; i++) {
		uint8_t gen = mmio_read8(common(d, CC(config_generation)));

		v = mmio_read32(d->device + off);
		if (mmio_read8(common(d, CC(config_generation))) == gen)
			break;
	}
	return v;
}

int vq_setup(struct vq *q, struct vpci_dev *d, unsigned int index, uint64_t base,
	     unsigned int max_size, const char *tname)
{
	unsigned int size;
	uint16_t noff, vec;
	uint64_t desc = base, avail = base + 0x1000, used = base + 0x2000;

	memset(q, 0, sizeof(*q));
	if (index >= mmio_read16(common(d, CC(num_queues)))) {
		guest_fail(tname, "queue %u not present (num_queues %u)", index,
			   mmio_read16(common(d, CC(num_queues))));
		return -1;
	}
	mmio_write16(common(d, CC(queue_select)), (uint16_t)index);
	size = mmio_read16(common(d, CC(queue_size)));
	if (size == 0 || (size & (size - 1))) {
		guest_fail(tname, "queue %u: bad maximum size %u", index, size);
		return -1;
	}
	while (size > max_size || size > 256)
		size /= 2;
	mmio_write16(common(d, CC(queue_size)), (uint16_t)size);
	memset((void *)(uintptr_t)base, 0, 0x3000);
	mmio_write16(common(d, CC(queue_msix_vector)), VPCI_NO_VECTOR);
	vec = mmio_read16(common(d, CC(queue_msix_vector)));
	if (vec != VPCI_NO_VECTOR) {
		guest_fail(tname, "queue %u: msix vector reads 0x%x, wrote 0xffff", index, vec);
		return -1;
	}
	mmio_write32(common(d, CC(queue_desc_lo)), (uint32_t)desc);
	mmio_write32(common(d, CC(queue_desc_hi)), (uint32_t)(desc >> 32));
	mmio_write32(common(d, CC(queue_avail_lo)), (uint32_t)avail);
	mmio_write32(common(d, CC(queue_avail_hi)), (uint32_t)(avail >> 32));
	mmio_write32(common(d, CC(queue_used_lo)), (uint32_t)used);
	mmio_write32(common(d, CC(queue_used_hi)), (uint32_t)(used >> 32));
	noff = mmio_read16(common(d, CC(queue_notify_off)));
	mmio_write16(common(d, CC(queue_enable)), 1);
	if (mmio_read16(common(d, CC(queue_enable))) != 1) {
		guest_fail(tname, "queue %u: queue_enable does not read back 1", index);
		return -1;
	}
	q->dev = d;
	q->index = index;
	q->size = size;
	q->desc = (struct vring_desc *)(uintptr_t)desc;
	q->avail = (struct vring_avail *)(uintptr_t)avail;
	q->used = (struct vring_used *)(uintptr_t)used;
	q->notify_addr = d->notify + (uint64_t)noff * d->notify_mult;
	return 0;
}

int vq_run(struct vq *q, const struct vq_buf *bufs, unsigned int n, uint32_t *ret_len,
	   const char *tname)
{
	volatile struct vring_used *used = q->used;
	uint32_t writable = 0, id, len;
	uint64_t start;
	unsigned int i;

	if (n == 0 || n > q->size) {
		guest_fail(tname, "chain of %u buffers does not fit queue of %u", n, q->size);
		return -1;
	}
	/* One chain in flight at a time, so it always starts at descriptor 0. */
	for (i = 0; i < n; i++) {
		q->desc[i].addr = bufs[i].addr;
		q->desc[i].len = bufs[i].len;
		q->desc[i].flags = (uint16_t)((i + 1 < n ? VRING_DESC_F_NEXT : 0) |
					      (bufs[i].device_writes ? VRING_DESC_F_WRITE : 0));
		q->desc[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
		if (bufs[i].device_writes)
			writable += bufs[i].len;
	}
	q->avail->ring[q->avail_idx % q->size] = 0;
	/* The ring entry must be visible before the index that publishes it. */
	barrier();
	q->avail_idx++;
	*(volatile uint16_t *)&q->avail->idx = q->avail_idx;
	/* And the index before the notify, which the device may handle on another thread. */
	mb();
	mmio_write16(q->notify_addr, (uint16_t)q->index);

	start = rdtsc();
	while (used->idx == q->used_idx) {
		if (rdtsc() - start > VQ_TIMEOUT_TICKS) {
			guest_fail(tname, "queue %u: no completion (used idx %u, device status 0x%02x)",
				   q->index, used->idx, vpci_status(q->dev));
			return -1;
		}
		cpu_relax();
	}
	/* Read the used element only after seeing the index that covers it. */
	barrier();
	id = used->ring[q->used_idx % q->size].id;
	len = used->ring[q->used_idx % q->size].len;
	q->used_idx++;
	if (used->idx != q->used_idx) {
		guest_fail(tname, "queue %u: used idx jumped to %u, expected %u", q->index,
			   used->idx, q->used_idx);
		return -1;
	}
	if (id != 0) {
		guest_fail(tname, "queue %u: used id %u, expected head 0", q->index, id);
		return -1;
	}
	if (len > writable) {
		guest_fail(tname, "queue %u: used len %u exceeds writable %u", q->index, len,
			   writable);
		return -1;
	}
	if (ret_len)
		*ret_len = len;
	return 0;
}
