// SPDX-License-Identifier: GPL-2.0-only
/* Modern virtio-pci transport: register model, MSI-X over irqfd, kicks over ioeventfd, io thread. */
#include "devices/virtio/pci.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "lib/log.h"
#include "lib/util.h"

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FMASK 0x4000
#define MSIX_ENTRY_MASKED 1u
#define ISR_QUEUE 1
#define ISR_CONFIG 2

#define EV_STOP UINT64_MAX
#define EV_WATCH 0x100 /* epoll tags: queue index, EV_WATCH + watch index, EV_STOP */

#define TRANSPORT_FEATURES ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_EVENT_IDX) | \
			    (1ULL << VIRTIO_RING_F_INDIRECT_DESC))

static void put_le16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void put_le32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put_le64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }

static void kick(int fd)
{
	uint64_t one = 1;

	/* The eventfd counter cannot overflow in practice; EAGAIN would still mean "pending". */
	(void)!write(fd, &one, sizeof(one));
}

bool virtio_dev_running(const struct virtio_dev *vdev)
{
	return (vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) && !vdev->broken && !vdev->paused;
}

bool virtio_has_feature(const struct virtio_dev *vdev, unsigned bit)
{
	return bit < 64 && (vdev->guest_features & (1ULL << bit));
}

/* --- interrupts --------------------------------------------------------------------------- */

static bool msix_masked(const struct virtio_dev *vdev, unsigned v)
{
	return vdev->msix_fmask || (vdev->vectors[v].ctrl & MSIX_ENTRY_MASKED);
}

static void msix_fire(struct virtio_dev *vdev, unsigned v)
{
	struct virtio_msix_vector *vec;

	if (v >= vdev->nr_vectors)
		return;
	vec = &vdev->vectors[v];
	if (msix_masked(vdev, v)) {
		vdev->pba |= 1ULL << v; /* delivered when the guest unmasks */
		return;
	}
	if (vec->irqfd_on)
		kick(vec->fd);
	else if (vdev->irq && vdev->irq->ops->msi_signal)
		(void)vdev->irq->ops->msi_signal(vdev->irq, ((uint64_t)vec->addr_hi << 32) | vec->addr_lo,
						 vec->data);
}

/* Brings vector v's GSI route and irqfd in line with the table and the mask bits. */
static void msix_vector_update(struct virtio_dev *vdev, unsigned v)
{
	struct virtio_msix_vector *vec = &vdev->vectors[v];
	const struct hv_irq_ops *ops = vdev->irq ? vdev->irq->ops : NULL;

	if (!vdev->msix_enabled || msix_masked(vdev, v)) {
		if (vec->irqfd_on && ops && ops->irqfd)
			(void)ops->irqfd(vdev->irq, vec->fd, (unsigned)vec->gsi, false);
		vec->irqfd_on = false;
		return;
	}
	if (ops && ops->msi_alloc && ops->msi_update && ops->irqfd) {
		if (vec->gsi < 0) {
			unsigned gsi;

			if (ops->msi_alloc(vdev->irq, &gsi) == 0)
				vec->gsi = (int)gsi;
		}
		if (vec->gsi >= 0 &&
		    ops->msi_update(vdev->irq, (unsigned)vec->gsi,
				    ((uint64_t)vec->addr_hi << 32) | vec->addr_lo, vec->data) == 0 &&
		    !vec->irqfd_on)
			vec->irqfd_on = ops->irqfd(vdev->irq, vec->fd, (unsigned)vec->gsi, true) == 0;
	}
	if (vdev->pba & (1ULL << v)) {
		vdev->pba &= ~(1ULL << v);
		msix_fire(vdev, v);
	}
}

static void intx_update(struct virtio_dev *vdev)
{
	bool level = vdev->isr != 0 && !vdev->msix_enabled;

	if (level == vdev->intx_level)
		return;
	vdev->intx_level = level;
	pci_dev_set_intx(&vdev->pci, level); /* the host bridge shares one line among slots */
}

static void virtio_irq(struct virtio_dev *vdev, uint16_t vector, uint8_t isr_bit)
{
	if (vdev->msix_enabled) {
		if (vector != VIRTIO_NO_VECTOR)
			msix_fire(vdev, vector);
		return;
	}
	vdev->isr |= isr_bit;
	intx_update(vdev);
}

void virtio_queue_interrupt(struct virtio_dev *vdev, unsigned q)
{
	if (q >= vdev->ops->nr_queues || !vdev->queues[q].enabled)
		return;
	if (vq_should_notify(&vdev->queues[q].vq))
		virtio_irq(vdev, vdev->queues[q].msix_vector, ISR_QUEUE);
}

void virtio_config_changed(struct virtio_dev *vdev)
{
	vdev->config_generation++;
	if (vdev->status & VIRTIO_CONFIG_S_DRIVER_OK)
		virtio_irq(vdev, vdev->msix_config, ISR_CONFIG);
}

void virtio_set_needs_reset(struct virtio_dev *vdev, int err)
{
	vdev->errors++;
	vdev->last_error = err;
	if (vdev->broken)
		return;
	log_debug("%s: guest queue error (%d), device needs reset", vdev->pci.dev.id, err);
	vdev->broken = true;
	vdev->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	if (vdev->status & VIRTIO_CONFIG_S_DRIVER_OK)
		virtio_irq(vdev, vdev->msix_config, ISR_CONFIG);
}

int virtio_queue_pop(struct virtio_dev *vdev, unsigned q, struct vq_chain *ret)
{
	int r;

	if (q >= vdev->ops->nr_queues || !vdev->queues[q].enabled || !virtio_dev_running(vdev))
		return 0;
	r = vq_pop(&vdev->queues[q].vq, ret);
	if (r < 0)
		virtio_set_needs_reset(vdev, r);
	return r;
}

/* --- kicks -------------------------------------------------------------------------------- */

static void ioeventfd_set(struct virtio_dev *vdev, unsigned q, bool on)
{
	struct virtio_queue *vq = &vdev->queues[q];
	const struct hv_irq_ops *ops = vdev->irq ? vdev->irq->ops : NULL;

	if (!ops || !ops->ioeventfd)
		return;
	if (vq->ioeventfd_on && !on) {
		(void)ops->ioeventfd(vdev->irq, vq->kick_fd, vq->ioeventfd_addr, 0, false, -1, false);
		vq->ioeventfd_on = false;
	} else if (!vq->ioeventfd_on && on && vdev->bar_enabled && vdev->bar_addr) {
		vq->ioeventfd_addr = vdev->bar_addr + VIRTIO_PCI_NOTIFY_OFF + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT;
		vq->ioeventfd_on = ops->ioeventfd(vdev->irq, vq->kick_fd, vq->ioeventfd_addr, 0, false, -1, true) == 0;
	}
}

static void kick_all(struct virtio_dev *vdev)
{
	for (unsigned q = 0; q < vdev->ops->nr_queues; q++)
		if (vdev->queues[q].enabled)
			kick(vdev->queues[q].kick_fd);
}

/* --- common configuration ----------------------------------------------------------------- */

static void queue_enable(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_queue *vq = &vdev->queues[q];
	int r;

	r = vq_enable(&vq->vq, vdev->mem, vq->size, vq->desc, vq->driver, vq->device,
		      virtio_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX),
		      virtio_has_feature(vdev, VIRTIO_RING_F_INDIRECT_DESC));
	if (r < 0) {
		virtio_set_needs_reset(vdev, r);
		return;
	}
	vq->enabled = true;
	ioeventfd_set(vdev, q, true);
}

static void queues_reset(struct virtio_dev *vdev)
{
	for (unsigned q = 0; q < vdev->ops->nr_queues; q++) {
		struct virtio_queue *vq = &vdev->queues[q];

		ioeventfd_set(vdev, q, false);
		vq_disable(&vq->vq);
		vq->enabled = false;
		vq->size = (uint16_t)vdev->ops->queue_max;
		vq->msix_vector = VIRTIO_NO_VECTOR;
		vq->desc = vq->driver = vq->device = 0;
	}
}

static void dev_reset_locked(struct virtio_dev *vdev)
{
	queues_reset(vdev);
	if (vdev->ops->reset)
		vdev->ops->reset(vdev);
	vdev->status = 0;
	vdev->broken = false;
	vdev->guest_features = 0;
	vdev->dfselect = vdev->gfselect = 0;
	vdev->queue_sel = 0;
	vdev->msix_config = VIRTIO_NO_VECTOR;
	vdev->isr = 0;
	intx_update(vdev);
}

static void status_write(struct virtio_dev *vdev, uint8_t v)
{
	uint8_t old = vdev->status;

	if (v == 0) {
		dev_reset_locked(vdev);
		return;
	}
	/* FEATURES_OK is accepted only for a subset of ours that includes VERSION_1 (no legacy);
	 * left clear, the driver reads it back and gives up (virtio 1.2 3.1.1). */
	if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    (!(vdev->guest_features & (1ULL << VIRTIO_F_VERSION_1)) ||
	     (vdev->guest_features & ~vdev->host_features)))
		v &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
	if ((v & VIRTIO_CONFIG_S_DRIVER_OK) && !(v & VIRTIO_CONFIG_S_FEATURES_OK))
		v &= (uint8_t)~VIRTIO_CONFIG_S_DRIVER_OK;
	vdev->status = (uint8_t)(v & ~VIRTIO_CONFIG_S_NEEDS_RESET) |
		       (vdev->broken ? VIRTIO_CONFIG_S_NEEDS_RESET : 0);
	if ((v & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		int r = vdev->ops->activate ? vdev->ops->activate(vdev) : 0;

		if (r < 0)
			virtio_set_needs_reset(vdev, r);
		else
			kick_all(vdev); /* buffers made available before DRIVER_OK */
	}
}

static void common_read_all(struct virtio_dev *vdev, uint8_t *b)
{
	const struct virtio_queue *vq = vdev->queue_sel < vdev->ops->nr_queues ?
					&vdev->queues[vdev->queue_sel] : NULL;

	memset(b, 0, VIRTIO_PCI_COMMON_LEN);
	put_le32(b + VIRTIO_PCI_COMMON_DFSELECT, vdev->dfselect);
	put_le32(b + VIRTIO_PCI_COMMON_DF, vdev->dfselect < 2 ?
		 (uint32_t)(vdev->host_features >> (32 * vdev->dfselect)) : 0);
	put_le32(b + VIRTIO_PCI_COMMON_GFSELECT, vdev->gfselect);
	put_le32(b + VIRTIO_PCI_COMMON_GF, vdev->gfselect < 2 ?
		 (uint32_t)(vdev->guest_features >> (32 * vdev->gfselect)) : 0);
	put_le16(b + VIRTIO_PCI_COMMON_MSIX, vdev->msix_config);
	put_le16(b + VIRTIO_PCI_COMMON_NUMQ, (uint16_t)vdev->ops->nr_queues);
	b[VIRTIO_PCI_COMMON_STATUS] = vdev->status;
	b[VIRTIO_PCI_COMMON_CFGGENERATION] = vdev->config_generation;
	put_le16(b + VIRTIO_PCI_COMMON_Q_SELECT, vdev->queue_sel);
	if (!vq)
		return; /* queue_size 0 tells the driver the queue does not exist */
	put_le16(b + VIRTIO_PCI_COMMON_Q_SIZE, vq->size);
	put_le16(b + VIRTIO_PCI_COMMON_Q_MSIX, vq->msix_vector);
	put_le16(b + VIRTIO_PCI_COMMON_Q_ENABLE, vq->enabled);
	put_le16(b + VIRTIO_PCI_COMMON_Q_NOFF, vdev->queue_sel);
	put_le64(b + VIRTIO_PCI_COMMON_Q_DESCLO, vq->desc);
	put_le64(b + VIRTIO_PCI_COMMON_Q_AVAILLO, vq->driver);
	put_le64(b + VIRTIO_PCI_COMMON_Q_USEDLO, vq->device);
}

struct field {
	uint8_t off, size;
};

static const struct field common_fields[] = {
	{ VIRTIO_PCI_COMMON_DFSELECT, 4 }, { VIRTIO_PCI_COMMON_DF, 4 },
	{ VIRTIO_PCI_COMMON_GFSELECT, 4 }, { VIRTIO_PCI_COMMON_GF, 4 },
	{ VIRTIO_PCI_COMMON_MSIX, 2 }, { VIRTIO_PCI_COMMON_NUMQ, 2 },
	{ VIRTIO_PCI_COMMON_STATUS, 1 }, { VIRTIO_PCI_COMMON_CFGGENERATION, 1 },
	{ VIRTIO_PCI_COMMON_Q_SELECT, 2 }, { VIRTIO_PCI_COMMON_Q_SIZE, 2 },
	{ VIRTIO_PCI_COMMON_Q_MSIX, 2 }, { VIRTIO_PCI_COMMON_Q_ENABLE, 2 },
	{ VIRTIO_PCI_COMMON_Q_NOFF, 2 }, { VIRTIO_PCI_COMMON_Q_DESCLO, 8 },
	{ VIRTIO_PCI_COMMON_Q_AVAILLO, 8 }, { VIRTIO_PCI_COMMON_Q_USEDLO, 8 },
	{ VIRTIO_PCI_COMMON_Q_NDATA, 2 }, { VIRTIO_PCI_COMMON_Q_RESET, 2 },
};

static uint16_t vector_check(const struct virtio_dev *vdev, uint64_t v)
{
	/* A vector the device cannot use reads back as NO_VECTOR (virtio 1.2 4.1.5.1.2). */
	return v < vdev->nr_vectors ? (uint16_t)v : VIRTIO_NO_VECTOR;
}

static void common_field_write(struct virtio_dev *vdev, unsigned off, uint64_t v)
{
	struct virtio_queue *vq = vdev->queue_sel < vdev->ops->nr_queues ?
				  &vdev->queues[vdev->queue_sel] : NULL;
	bool qwritable = vq && !vq->enabled;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		vdev->dfselect = (uint32_t)v;
		break;
	case VIRTIO_PCI_COMMON_GFSELECT:
		vdev->gfselect = (uint32_t)v;
		break;
	case VIRTIO_PCI_COMMON_GF:
		if (vdev->gfselect < 2 && !(vdev->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
			unsigned shift = 32 * vdev->gfselect;

			vdev->guest_features &= ~(0xffffffffULL << shift);
			vdev->guest_features |= (v & 0xffffffffULL) << shift;
		}
		break;
	case VIRTIO_PCI_COMMON_MSIX:
		vdev->msix_config = vector_check(vdev, v);
		break;
	case VIRTIO_PCI_COMMON_STATUS:
		status_write(vdev, (uint8_t)v);
		break;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		vdev->queue_sel = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		/* Checked (power of two, <= max) when the queue is enabled. */
		if (qwritable && v <= vdev->ops->queue_max)
			vq->size = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (vq)
			vq->msix_vector = vector_check(vdev, v);
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (qwritable && v == 1)
			queue_enable(vdev, vdev->queue_sel);
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
		if (qwritable)
			vq->desc = v;
		break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
		if (qwritable)
			vq->driver = v;
		break;
	case VIRTIO_PCI_COMMON_Q_USEDLO:
		if (qwritable)
			vq->device = v;
		break;
	default:
		break; /* read-only */
	}
}

/* Guest input: any offset and width. A write must fall inside one field; 64-bit fields also
 * take the two 32-bit halves drivers write separately. */
static void common_write(struct virtio_dev *vdev, unsigned off, const void *data, unsigned len)
{
	uint8_t all[VIRTIO_PCI_COMMON_LEN];

	for (unsigned i = 0; i < ARRAY_SIZE(common_fields); i++) {
		const struct field *f = &common_fields[i];
		uint64_t v = 0;

		if (off < f->off || off + len > (unsigned)f->off + f->size)
			continue;
		common_read_all(vdev, all);
		memcpy(all + off, data, len);
		memcpy(&v, all + f->off, f->size);
		common_field_write(vdev, f->off, le64toh(v));
		return;
	}
}

/* --- BAR 4 -------------------------------------------------------------------------------- */

static void bar_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct virtio_dev *vdev = opaque;
	uint8_t buf[VIRTIO_PCI_COMMON_LEN];

	memset(data, 0, len);
	if (len == 0 || len > 8)
		return;
	pthread_mutex_lock(&vdev->lock);
	if (off < VIRTIO_PCI_COMMON_LEN && off + len <= VIRTIO_PCI_COMMON_LEN) {
		common_read_all(vdev, buf);
		memcpy(data, buf + off, len);
	} else if (off >= VIRTIO_PCI_ISR_OFF && off < VIRTIO_PCI_ISR_OFF + VIRTIO_PCI_ISR_LEN) {
		/* Reading the ISR acknowledges it and drops the INTx line. */
		if (off == VIRTIO_PCI_ISR_OFF)
			*(uint8_t *)data = vdev->isr;
		vdev->isr = 0;
		intx_update(vdev);
	} else if (off >= VIRTIO_PCI_DEVCFG_OFF && off - VIRTIO_PCI_DEVCFG_OFF + len <= vdev->ops->config_size) {
		if (vdev->ops->config_read)
			vdev->ops->config_read(vdev, (unsigned)(off - VIRTIO_PCI_DEVCFG_OFF), data, len);
	}
	pthread_mutex_unlock(&vdev->lock);
}

static void bar_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct virtio_dev *vdev = opaque;

	if (len == 0 || len > 8)
		return;
	if (off >= VIRTIO_PCI_NOTIFY_OFF) {
		/* A kick that no ioeventfd caught: same path as one that was. */
		uint64_t q = (off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;

		if (q < vdev->ops->nr_queues)
			kick(vdev->queues[q].kick_fd);
		return;
	}
	pthread_mutex_lock(&vdev->lock);
	if (off < VIRTIO_PCI_COMMON_LEN && off + len <= VIRTIO_PCI_COMMON_LEN)
		common_write(vdev, (unsigned)off, data, len);
	else if (off >= VIRTIO_PCI_DEVCFG_OFF && off - VIRTIO_PCI_DEVCFG_OFF + len <= vdev->ops->config_size &&
		 vdev->ops->config_write)
		vdev->ops->config_write(vdev, (unsigned)(off - VIRTIO_PCI_DEVCFG_OFF), data, len);
	pthread_mutex_unlock(&vdev->lock);
}

static const struct bus_ops virtio_bar_ops = {
	.read = bar_read,
	.write = bar_write,
};

/* --- MSI-X BAR ---------------------------------------------------------------------------- */

static void vector_bytes(const struct virtio_msix_vector *vec, uint8_t *b)
{
	put_le32(b, vec->addr_lo);
	put_le32(b + 4, vec->addr_hi);
	put_le32(b + 8, vec->data);
	put_le32(b + 12, vec->ctrl);
}

static void msix_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct virtio_dev *vdev = opaque;
	uint8_t b[16];

	memset(data, 0, len);
	if (len == 0 || len > 8)
		return;
	pthread_mutex_lock(&vdev->lock);
	if (off < 16ULL * vdev->nr_vectors && off % 16 + len <= 16) {
		vector_bytes(&vdev->vectors[off / 16], b);
		memcpy(data, b + off % 16, len);
	} else if (off >= VIRTIO_MSIX_PBA_OFF && off + len <= VIRTIO_MSIX_PBA_OFF + 8) {
		put_le64(b, vdev->pba);
		memcpy(data, b + (off - VIRTIO_MSIX_PBA_OFF), len);
	}
	pthread_mutex_unlock(&vdev->lock);
}

static void msix_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct virtio_dev *vdev = opaque;
	struct virtio_msix_vector *vec;
	uint8_t b[16];
	uint32_t w[4];

	if (len == 0 || len > 8 || off >= 16ULL * vdev->nr_vectors || off % 16 + len > 16)
		return; /* PBA is read-only */
	pthread_mutex_lock(&vdev->lock);
	vec = &vdev->vectors[off / 16];
	vector_bytes(vec, b);
	memcpy(b + off % 16, data, len);
	memcpy(w, b, 16);
	vec->addr_lo = le32toh(w[0]);
	vec->addr_hi = le32toh(w[1]);
	vec->data = le32toh(w[2]);
	vec->ctrl = le32toh(w[3]) & MSIX_ENTRY_MASKED; /* other control bits are reserved */
	msix_vector_update(vdev, (unsigned)(off / 16));
	pthread_mutex_unlock(&vdev->lock);
}

static const struct bus_ops virtio_msix_ops = {
	.read = msix_read,
	.write = msix_write,
};

/* --- PCI hooks ---------------------------------------------------------------------------- */

static void virtio_pci_cfg_write(struct pci_dev *pdev, unsigned offset, unsigned len)
{
	struct virtio_dev *vdev = container_of(pdev, struct virtio_dev, pci);
	unsigned ctrl_off = (unsigned)vdev->msix_cap + 2;
	uint16_t ctrl;
	bool was_enabled;

	if (offset + len <= ctrl_off || offset >= ctrl_off + 2)
		return;
	pthread_mutex_lock(&vdev->lock);
	memcpy(&ctrl, pdev->cfg + ctrl_off, 2);
	ctrl = le16toh(ctrl);
	was_enabled = vdev->msix_enabled;
	vdev->msix_enabled = ctrl & MSIX_CTRL_ENABLE;
	vdev->msix_fmask = ctrl & MSIX_CTRL_FMASK;
	for (unsigned v = 0; v < vdev->nr_vectors; v++)
		msix_vector_update(vdev, v);
	if (was_enabled != vdev->msix_enabled)
		intx_update(vdev);
	pthread_mutex_unlock(&vdev->lock);
}

static void virtio_pci_bar_update(struct pci_dev *pdev, unsigned bar, uint64_t addr, bool enabled)
{
	struct virtio_dev *vdev = container_of(pdev, struct virtio_dev, pci);

	if (bar != VIRTIO_PCI_BAR)
		return;
	pthread_mutex_lock(&vdev->lock);
	for (unsigned q = 0; q < vdev->ops->nr_queues; q++)
		ioeventfd_set(vdev, q, false);
	vdev->bar_addr = addr;
	vdev->bar_enabled = enabled;
	for (unsigned q = 0; q < vdev->ops->nr_queues; q++)
		if (vdev->queues[q].enabled)
			ioeventfd_set(vdev, q, true);
	pthread_mutex_unlock(&vdev->lock);
}

static const struct pci_dev_ops virtio_pci_dev_ops = {
	.cfg_write = virtio_pci_cfg_write,
	.bar_update = virtio_pci_bar_update,
};

/* --- device life cycle -------------------------------------------------------------------- */

static struct virtio_dev *to_vdev(struct device *dev)
{
	return container_of(dev, struct virtio_dev, pci.dev);
}

static int dev_realize(struct device *dev) { return virtio_dev_start(to_vdev(dev)); }
static void dev_reset(struct device *dev) { virtio_dev_reset(to_vdev(dev)); }
static void dev_pause(struct device *dev) { virtio_dev_pause(to_vdev(dev)); }
static void dev_resume(struct device *dev) { virtio_dev_resume(to_vdev(dev)); }
static void dev_destroy(struct device *dev) { virtio_dev_destroy(to_vdev(dev)); }

static const struct device_ops virtio_device_ops = {
	.name = "virtio-pci",
	.realize = dev_realize,
	.reset = dev_reset,
	.pause = dev_pause,
	.resume = dev_resume,
	.destroy = dev_destroy,
};

void virtio_dev_reset(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->lock);
	dev_reset_locked(vdev);
	pthread_mutex_unlock(&vdev->lock);
}

void virtio_dev_pause(struct virtio_dev *vdev)
{
	/* The io thread holds the lock whenever it touches guest memory: once we own it and
	 * have set paused, it no longer does. */
	pthread_mutex_lock(&vdev->lock);
	vdev->paused = true;
	if (vdev->ops->quiesce)
		vdev->ops->quiesce(vdev);
	pthread_mutex_unlock(&vdev->lock);
}

void virtio_dev_resume(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->lock);
	vdev->paused = false;
	kick_all(vdev); /* kicks that arrived while paused were drained and dropped */
	pthread_mutex_unlock(&vdev->lock);
}

static void *io_thread(void *opaque)
{
	struct virtio_dev *vdev = opaque;
	struct epoll_event ev[16];

	for (;;) {
		int n = epoll_wait(vdev->epfd, ev, ARRAY_SIZE(ev), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = ev[i].data.u64, cnt;

			if (tag == EV_STOP)
				return NULL;
			if (tag < VIRTIO_MAX_QUEUES) {
				(void)!read(vdev->queues[tag].kick_fd, &cnt, sizeof(cnt));
				pthread_mutex_lock(&vdev->lock);
				if (virtio_dev_running(vdev) && vdev->queues[tag].enabled && vdev->ops->queue_notify)
					vdev->ops->queue_notify(vdev, (unsigned)tag);
				pthread_mutex_unlock(&vdev->lock);
			} else if (tag - EV_WATCH < vdev->nr_watches) {
				struct virtio_watch *w = &vdev->watches[tag - EV_WATCH];

				pthread_mutex_lock(&vdev->lock);
				w->fn(vdev, w->opaque);
				pthread_mutex_unlock(&vdev->lock);
			}
		}
	}
}

static int epoll_watch(int epfd, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int virtio_dev_watch(struct virtio_dev *vdev, int fd, void (*fn)(struct virtio_dev *vdev, void *opaque),
		     void *opaque)
{
	int r;

	if (vdev->nr_watches >= VIRTIO_MAX_WATCHES)
		return -ENOSPC;
	vdev->watches[vdev->nr_watches] = (struct virtio_watch){ .fd = fd, .fn = fn, .opaque = opaque };
	r = epoll_watch(vdev->epfd, fd, EV_WATCH + vdev->nr_watches);
	if (r < 0)
		return r;
	vdev->nr_watches++;
	return 0;
}

int virtio_dev_start(struct virtio_dev *vdev)
{
	int r;

	if (vdev->thread_started)
		return 0;
	r = -pthread_create(&vdev->thread, NULL, io_thread, vdev);
	if (r < 0)
		return r;
	vdev->thread_started = true;
	return 0;
}

static void transport_free(struct virtio_dev *vdev);

static int add_vendor_cap(struct pci_dev *pdev, uint8_t type, uint32_t off, uint32_t len, unsigned extra)
{
	int cap = pci_dev_add_cap(pdev, PCI_CAP_ID_VNDR, 16 + extra);

	if (cap < 0)
		return cap;
	pdev->cfg[cap + VIRTIO_PCI_CAP_LEN] = (uint8_t)(16 + extra);
	pdev->cfg[cap + VIRTIO_PCI_CAP_CFG_TYPE] = type;
	pdev->cfg[cap + VIRTIO_PCI_CAP_BAR] = VIRTIO_PCI_BAR;
	put_le32(pdev->cfg + cap + VIRTIO_PCI_CAP_OFFSET, off);
	put_le32(pdev->cfg + cap + VIRTIO_PCI_CAP_LENGTH, len);
	return cap;
}

static int pci_setup(struct virtio_dev *vdev)
{
	struct pci_dev *pdev = &vdev->pci;
	const struct virtio_dev_ops *ops = vdev->ops;
	int r, cap;

	pci_dev_init(pdev, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + ops->device_id),
		     ops->class_code, VIRTIO_PCI_VENDOR, (uint16_t)(0x1100 + ops->device_id), 1);
	pdev->ops = &virtio_pci_dev_ops;
	r = pci_dev_set_bar(pdev, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE, false, true, &virtio_bar_ops, vdev);
	if (r < 0)
		return r;
	r = pci_dev_set_bar(pdev, VIRTIO_MSIX_BAR, VIRTIO_MSIX_BAR_SIZE, false, false, &virtio_msix_ops, vdev);
	if (r < 0)
		return r;
	r = add_vendor_cap(pdev, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN, 0);
	if (r < 0)
		return r;
	cap = add_vendor_cap(pdev, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
			     VIRTIO_PCI_NOTIFY_MULT * ops->nr_queues, 4);
	if (cap < 0)
		return cap;
	put_le32(pdev->cfg + cap + VIRTIO_PCI_NOTIFY_CAP_MULT, VIRTIO_PCI_NOTIFY_MULT);
	r = add_vendor_cap(pdev, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, VIRTIO_PCI_ISR_LEN, 0);
	if (r < 0)
		return r;
	if (ops->config_size) {
		r = add_vendor_cap(pdev, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVCFG_OFF,
				   (uint32_t)ops->config_size, 0);
		if (r < 0)
			return r;
	}
	cap = pci_dev_add_cap(pdev, PCI_CAP_ID_MSIX, 12);
	if (cap < 0)
		return cap;
	vdev->msix_cap = cap;
	put_le16(pdev->cfg + cap + 2, (uint16_t)(vdev->nr_vectors - 1));
	put_le32(pdev->cfg + cap + 4, 0 | VIRTIO_MSIX_BAR);
	put_le32(pdev->cfg + cap + 8, VIRTIO_MSIX_PBA_OFF | VIRTIO_MSIX_BAR);
	pdev->wmask[cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;
	return 0;
}

int virtio_dev_init(struct virtio_dev *vdev, const struct virtio_dev_ops *ops,
		    const struct gmem *mem, struct hv_irq *irq, const char *id)
{
	int r;

	if (!ops->nr_queues || ops->nr_queues > VIRTIO_MAX_QUEUES || !ops->queue_max ||
	    ops->queue_max > VQ_MAX_SIZE || (ops->queue_max & (ops->queue_max - 1)) ||
	    ops->config_size > VIRTIO_PCI_DEVCFG_MAX)
		return -EINVAL;
	*vdev = (struct virtio_dev){
		.ops = ops,
		.mem = mem,
		.irq = irq,
		.host_features = ops->features | TRANSPORT_FEATURES,
		.msix_config = VIRTIO_NO_VECTOR,
		.nr_vectors = ops->nr_queues + 1,
		.epfd = -1,
		.stop_fd = -1,
	};
	vdev->pci.dev.ops = &virtio_device_ops;
	vdev->pci.dev.id = id;
	pthread_mutex_init(&vdev->lock, NULL);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vdev->queues[q].kick_fd = -1;
	for (unsigned v = 0; v < ARRAY_SIZE(vdev->vectors); v++)
		vdev->vectors[v] = (struct virtio_msix_vector){ .gsi = -1, .fd = -1, .ctrl = MSIX_ENTRY_MASKED };

	vdev->epfd = epoll_create1(EPOLL_CLOEXEC);
	vdev->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vdev->epfd < 0 || vdev->stop_fd < 0)
		goto fail_errno;
	r = epoll_watch(vdev->epfd, vdev->stop_fd, EV_STOP);
	if (r < 0)
		goto fail;
	for (unsigned q = 0; q < ops->nr_queues; q++) {
		vdev->queues[q].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vdev->queues[q].kick_fd < 0)
			goto fail_errno;
		r = epoll_watch(vdev->epfd, vdev->queues[q].kick_fd, q);
		if (r < 0)
			goto fail;
	}
	for (unsigned v = 0; v < vdev->nr_vectors; v++) {
		vdev->vectors[v].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vdev->vectors[v].fd < 0)
			goto fail_errno;
	}
	queues_reset(vdev);
	r = pci_setup(vdev);
	if (r < 0)
		goto fail;
	return 0;

fail_errno:
	r = -errno;
fail:
	transport_free(vdev);
	return r;
}

void virtio_dev_destroy(struct virtio_dev *vdev)
{
	if (!vdev || !vdev->ops)
		return;
	if (vdev->thread_started) {
		kick(vdev->stop_fd);
		pthread_join(vdev->thread, NULL);
		vdev->thread_started = false;
	}
	pthread_mutex_lock(&vdev->lock);
	queues_reset(vdev);
	pthread_mutex_unlock(&vdev->lock);
	if (vdev->ops->destroy)
		vdev->ops->destroy(vdev);
	transport_free(vdev);
}

/* Releases what virtio_dev_init() set up (the io thread is not running). */
static void transport_free(struct virtio_dev *vdev)
{
	const struct hv_irq_ops *iops = vdev->irq ? vdev->irq->ops : NULL;

	for (unsigned v = 0; v < ARRAY_SIZE(vdev->vectors); v++) {
		struct virtio_msix_vector *vec = &vdev->vectors[v];

		if (vec->irqfd_on && iops && iops->irqfd)
			(void)iops->irqfd(vdev->irq, vec->fd, (unsigned)vec->gsi, false);
		if (vec->gsi >= 0 && iops && iops->msi_free)
			iops->msi_free(vdev->irq, (unsigned)vec->gsi);
		if (vec->fd >= 0)
			close(vec->fd);
		*vec = (struct virtio_msix_vector){ .gsi = -1, .fd = -1 };
	}
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		if (vdev->queues[q].kick_fd >= 0)
			close(vdev->queues[q].kick_fd);
		vdev->queues[q].kick_fd = -1;
	}
	if (vdev->epfd >= 0)
		close(vdev->epfd);
	if (vdev->stop_fd >= 0)
		close(vdev->stop_fd);
	vdev->epfd = vdev->stop_fd = -1;
	pthread_mutex_destroy(&vdev->lock);
	vdev->ops = NULL;
}
