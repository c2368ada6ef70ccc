/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The modern (virtio 1.x, no legacy) virtio-pci transport: one PCI function per device with
 * the common/notify/ISR/device-config structures in a 64-bit memory BAR, MSI-X in a second
 * BAR, feature negotiation, the status state machine, queue setup, kicks through ioeventfd
 * and interrupts through irqfd. A virtio device model supplies only a small ops table; its
 * queues are served on one io thread per device, never on vCPU threads.
 *
 * Locking: vdev->lock guards all transport and device state. It is taken by BAR and config
 * callbacks (vCPU threads; pci host lock held outside it), by the io thread around every
 * handler, and by the main thread for device input (console). Device ops run with it held.
 */
#ifndef VMMS_DEVICES_VIRTIO_PCI_H
#define VMMS_DEVICES_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/pci.h"
#include "devices/virtio/queue.h"
#include "hv/irq.h"
#include "hv/mem.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040

/* BAR layout (BAR 4, 64-bit memory, 16 KiB) and the MSI-X BAR (BAR 1, 4 KiB). */
#define VIRTIO_PCI_BAR 4
#define VIRTIO_PCI_BAR_SIZE 0x4000
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_COMMON_LEN 0x0040
#define VIRTIO_PCI_ISR_OFF 0x1000
#define VIRTIO_PCI_ISR_LEN 0x0004
#define VIRTIO_PCI_DEVCFG_OFF 0x2000
#define VIRTIO_PCI_DEVCFG_MAX 0x1000
#define VIRTIO_PCI_NOTIFY_OFF 0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_MSIX_BAR 1
#define VIRTIO_MSIX_BAR_SIZE 0x1000
#define VIRTIO_MSIX_PBA_OFF 0x800

#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_NO_VECTOR 0xffff

struct virtio_dev;

struct virtio_dev_ops {
	const char *name;          /* "virtio-blk", for messages */
	uint32_t device_id;        /* VIRTIO_ID_* */
	uint32_t class_code;       /* PCI class, e.g. 0x018000 */
	uint64_t features;         /* device features; the transport adds VERSION_1, EVENT_IDX, INDIRECT_DESC */
	unsigned nr_queues;        /* <= VIRTIO_MAX_QUEUES */
	unsigned queue_max;        /* <= VQ_MAX_SIZE, power of two */
	size_t config_size;        /* <= VIRTIO_PCI_DEVCFG_MAX */
	/* Device config space; offset+len already checked against config_size. */
	void (*config_read)(struct virtio_dev *vdev, unsigned offset, void *data, unsigned len);
	void (*config_write)(struct virtio_dev *vdev, unsigned offset, const void *data, unsigned len);
	/* The guest kicked queue q (io thread; device running, not paused). */
	void (*queue_notify)(struct virtio_dev *vdev, unsigned q);
	/* DRIVER_OK was set with these features: 0, or -errno to put the device in NEEDS_RESET. */
	int (*activate)(struct virtio_dev *vdev);
	/* Device reset: drop in-flight work (queues are already disabled). */
	void (*reset)(struct virtio_dev *vdev);
	/* Pause: finish in-flight I/O so guest memory is no longer written. Optional. */
	void (*quiesce)(struct virtio_dev *vdev);
	/* Frees the model's own resources; the io thread is already stopped. Optional. */
	void (*destroy)(struct virtio_dev *vdev);
};

struct virtio_queue {
	struct vq vq;
	uint16_t size;             /* queue_size as the driver set it */
	uint16_t msix_vector;
	bool enabled;
	uint64_t desc, driver, device;
	int kick_fd;               /* eventfd: ioeventfd target and io thread wake-up */
	bool ioeventfd_on;
	uint64_t ioeventfd_addr;
};

struct virtio_msix_vector {
	uint32_t addr_lo, addr_hi, data, ctrl;
	int gsi;                   /* -1 until first unmasked use */
	int fd;                    /* eventfd wired to gsi with irqfd */
	bool irqfd_on;
};

#define VIRTIO_MAX_WATCHES 4
struct virtio_watch {
	int fd;
	void (*fn)(struct virtio_dev *vdev, void *opaque);
	void *opaque;
};

struct virtio_dev {
	struct pci_dev pci;        /* first: the worker plugs &vdev->pci into the host */
	const struct virtio_dev_ops *ops;
	const struct gmem *mem;
	struct hv_irq *irq;
	pthread_mutex_t lock;

	uint64_t host_features, guest_features;
	uint32_t dfselect, gfselect;
	uint8_t status;
	uint8_t isr;
	uint8_t config_generation;
	uint16_t queue_sel;
	uint16_t msix_config;
	bool broken;               /* NEEDS_RESET set: queues are no longer served */
	bool paused;
	bool intx_level;
	struct virtio_queue queues[VIRTIO_MAX_QUEUES];

	int msix_cap;              /* offset of the MSI-X capability in config space */
	unsigned nr_vectors;
	bool msix_enabled, msix_fmask;
	struct virtio_msix_vector vectors[VIRTIO_MAX_QUEUES + 1];
	uint64_t pba;

	uint64_t bar_addr;         /* where BAR 4 is decoded, for ioeventfds */
	bool bar_enabled;

	int epfd, stop_fd;
	bool thread_started;
	pthread_t thread;
	struct virtio_watch watches[VIRTIO_MAX_WATCHES];
	unsigned nr_watches;
	uint64_t errors;           /* queue errors seen, for tests and statistics */
	int last_error;
};

/* Builds the PCI function (header, capabilities, BARs) and the queue eventfds. Does not start
 * the io thread. The caller then plugs &vdev->pci with pci_host_add(). 0 or -errno. */
int virtio_dev_init(struct virtio_dev *vdev, const struct virtio_dev_ops *ops,
		    const struct gmem *mem, struct hv_irq *irq, const char *id);
/* Starts the io thread. */
int virtio_dev_start(struct virtio_dev *vdev);
/* Stops the io thread, frees GSIs and eventfds. Accepts a device that was never started. */
void virtio_dev_destroy(struct virtio_dev *vdev);
/* Device reset from the machine (as a status write of 0). */
void virtio_dev_reset(struct virtio_dev *vdev);
/* Pause: after return the io thread touches no guest memory until resume. */
void virtio_dev_pause(struct virtio_dev *vdev);
void virtio_dev_resume(struct virtio_dev *vdev);

/* For device models (vdev->lock held) ------------------------------------------------------ */
/* True when DRIVER_OK is set and the device is neither broken nor paused. */
bool virtio_dev_running(const struct virtio_dev *vdev);
bool virtio_has_feature(const struct virtio_dev *vdev, unsigned bit);
/* Pop from queue q: like vq_pop, but an error puts the device in NEEDS_RESET. */
int virtio_queue_pop(struct virtio_dev *vdev, unsigned q, struct vq_chain *ret);
/* Raise queue q's interrupt if the driver wants one for what was pushed. */
void virtio_queue_interrupt(struct virtio_dev *vdev, unsigned q);
void virtio_config_changed(struct virtio_dev *vdev);
/* Sets DEVICE_NEEDS_RESET, stops serving queues and raises a config interrupt. */
void virtio_set_needs_reset(struct virtio_dev *vdev, int err);
/* Runs fn on the io thread (lock held) whenever fd is readable; fn must drain fd. */
int virtio_dev_watch(struct virtio_dev *vdev, int fd, void (*fn)(struct virtio_dev *vdev, void *opaque),
		     void *opaque);

#endif
