// SPDX-License-Identifier: GPL-2.0-only
/* The test-side virtio-pci driver shared by the device unit tests (see virtio_driver.h). */
#include "tests/unit/support/virtio_driver.h"

#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

void vdrv_write(struct virtio_dev *v, uint64_t off, uint64_t val, unsigned len)
{
	v->pci.bars[VIRTIO_PCI_BAR].ops->write(v->pci.bars[VIRTIO_PCI_BAR].opaque, off, &val, len);
}

uint64_t vdrv_read(struct virtio_dev *v, uint64_t off, unsigned len)
{
	uint64_t val = 0;

	v->pci.bars[VIRTIO_PCI_BAR].ops->read(v->pci.bars[VIRTIO_PCI_BAR].opaque, off, &val, len);
	return val;
}

void vdrv_features(struct virtio_dev *v, uint64_t features)
{
	vdrv_write(v, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER, 1);
	vdrv_write(v, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	vdrv_write(v, VIRTIO_PCI_COMMON_GF, (uint32_t)features, 4);
	vdrv_write(v, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	vdrv_write(v, VIRTIO_PCI_COMMON_GF, features >> 32, 4);
	vdrv_write(v, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK, 1);
}

void vdrv_queue(struct virtio_dev *v, unsigned q, uint16_t size, uint64_t desc, uint64_t avail,
		uint64_t used)
{
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_SIZE, size, 2);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_DESCLO, (uint32_t)desc, 4);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_DESCHI, desc >> 32, 4);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_AVAILLO, (uint32_t)avail, 4);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_AVAILHI, avail >> 32, 4);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_USEDLO, (uint32_t)used, 4);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_USEDHI, used >> 32, 4);
	vdrv_write(v, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
}

void vdrv_ok(struct virtio_dev *v)
{
	vdrv_write(v, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK, 1);
}

void vdrv_put_desc(struct gmem *m, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		   uint16_t flags, uint16_t next)
{
	uint8_t *p = gmem_ptr(m, table + 16 * i, 16);

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

void vdrv_add_avail(struct gmem *m, uint64_t avail, uint16_t qsz, uint16_t *idx, uint16_t head)
{
	uint16_t *a = gmem_ptr(m, avail, 6 + 2 * qsz);

	a[2 + (*idx % qsz)] = head;
	(*idx)++;
	/* Release: the device thread must see the slot (and the descriptors) before the index. */
	__atomic_store_n(&a[1], *idx, __ATOMIC_RELEASE);
}

uint16_t vdrv_used_idx(struct gmem *m, uint64_t used)
{
	return __atomic_load_n((uint16_t *)gmem_ptr(m, used + 2, 2), __ATOMIC_ACQUIRE);
}
