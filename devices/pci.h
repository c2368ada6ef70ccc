/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * PCI: a host bridge on bus 0 with configuration space through 0xCF8/0xCFC and ECAM, and
 * the config space and BARs of each function. The host bridge decodes BARs itself inside the
 * windows it owns on the PIO and MMIO buses, so a guest moving a BAR never re-enters the bus
 * lock (see devices/bus.h). Config-space writes are masked by a per-byte writable mask.
 */
#ifndef VMMS_DEVICES_PCI_H
#define VMMS_DEVICES_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/irq.h"

#define PCI_CFG_SIZE 4096 /* extended config space (ECAM); 0xCF8 reaches the first 256 bytes */
#define PCI_MAX_SLOTS 32
#define PCI_NUM_BARS 6

struct pci_dev;

struct pci_bar {
	uint64_t size;      /* power of two, 0 = BAR unused */
	bool io;            /* I/O space BAR (else 32- or 64-bit memory) */
	bool mem64;         /* 64-bit memory BAR: takes this BAR and the next */
	const struct bus_ops *ops; /* access within the BAR: offset from the BAR start */
	void *opaque;
	uint64_t addr;      /* current decoded address (valid when enabled in COMMAND) */
	bool decoded;       /* the host decodes it: COMMAND enables it and it lies wholly
			     * inside the host's window (what bar_update last reported) */
};

/* Locking: cfg_write and bar_update run with host->lock held (a device may take its own lock
 * inside them: the order is host->lock, then the device's lock). BAR accesses (pci_bar.ops)
 * run without host->lock, so a device must not call pci_cfg_read/pci_cfg_write or
 * pci_host_add while holding its own lock. */
struct pci_dev_ops {
	/* Called after the standard handling of a config write (mask applied, BARs updated);
	 * the device reacts to its own capabilities (e.g. MSI-X enable). Optional. */
	void (*cfg_write)(struct pci_dev *pdev, unsigned offset, unsigned len);
	/* Called when a BAR's decoded address changes or decoding is switched on/off
	 * (enabled false: BAR no longer decoded). Lets the device move ioeventfds. Optional. */
	void (*bar_update)(struct pci_dev *pdev, unsigned bar, uint64_t addr, bool enabled);
};

struct pci_dev {
	struct device dev;
	const struct pci_dev_ops *ops;
	struct pci_host *host;
	unsigned slot;                 /* device number on bus 0; function 0 only */
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];   /* bits the guest may write */
	uint8_t w1cmask[PCI_CFG_SIZE]; /* bits cleared by writing 1 (status register) */
	unsigned cap_next;             /* where the next capability goes (starts at 0x40) */
	struct pci_bar bars[PCI_NUM_BARS];
};

struct pci_host {
	pthread_mutex_t lock;          /* guards config space and BAR decode of all functions */
	struct bus *pio, *mmio;
	uint64_t ecam_base;
	uint64_t mmio_base, mmio_size; /* 32-bit BAR window, decoded by the host bridge */
	uint64_t mmio_next;
	uint32_t pio_base, pio_size;   /* I/O BAR window */
	uint32_t pio_next;
	uint32_t conf_addr;            /* latched 0xCF8 value */
	struct pci_dev bridge;         /* 00:00.0 host bridge */
	struct pci_dev *slots[PCI_MAX_SLOTS];

	/* INTx: every slot's INTA# is wired to one shared level-triggered GSI. intx_lock is a
	 * leaf lock (taken under host->lock or a device's own lock, never the other way), so a
	 * device may call pci_dev_set_intx() while holding its own lock. */
	pthread_mutex_t intx_lock;
	struct hv_irq *irq;            /* NULL until pci_host_set_irq(): INTx goes nowhere */
	unsigned intx_gsi;
	uint32_t intx_asserted;        /* bit per slot: the function drives INTA# */
	uint32_t intx_disabled;        /* bit per slot: COMMAND.INTX_DISABLE set */
	int intx_level;                /* level last driven on intx_gsi */
};

/* Maps 0xCF8-0xCFF on pio, ECAM at ecam_base (1 MiB, bus 0) and the two BAR windows. */
int pci_host_init(struct pci_host *host, struct bus *pio, struct bus *mmio, uint64_t ecam_base,
		  uint64_t mmio_base, uint64_t mmio_size, uint32_t pio_base, uint32_t pio_size);
void pci_host_destroy(struct pci_host *host);

/* Wires INTx to gsi on irq (call once, before the guest runs). */
void pci_host_set_irq(struct pci_host *host, struct hv_irq *irq, unsigned gsi);

/* Fills the standard header (type 0) of a function: IDs, class, revision, interrupt pin
 * INTA# (set cfg[PCI_INTERRUPT_PIN] to 0 afterwards for a function without INTx), writable
 * COMMAND bits, write-1-to-clear STATUS bits, cache line/latency/interrupt line registers.
 * Clears config space, masks and BARs; leaves pdev->dev and pdev->ops alone. */
void pci_dev_init(struct pci_dev *pdev, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint16_t subsys_vendor, uint16_t subsys_id, uint8_t revision);
/* Declares a BAR before the function is added to the host. */
int pci_dev_set_bar(struct pci_dev *pdev, unsigned bar, uint64_t size, bool io, bool mem64,
		    const struct bus_ops *ops, void *opaque);
/* Appends a capability of len bytes (id and next pointer filled in); returns its offset or
 * -ENOSPC. The device fills the body and sets wmask bits for writable fields. */
int pci_dev_add_cap(struct pci_dev *pdev, uint8_t cap_id, unsigned len);
/* Plugs the function into a free slot (slot < 0: first free), assigns BAR addresses in the
 * windows the way firmware would and enables decoding. */
int pci_host_add(struct pci_host *host, struct pci_dev *pdev, int slot);

/* Drives the function's INTA# (level 0 or 1). The shared GSI is the OR of all functions'
 * pins whose COMMAND.INTX_DISABLE is clear, changed only on a change; STATUS.INTERRUPT
 * reflects the pin. May be called from any thread, also with the device's own lock held;
 * a no-op before the function is added to a host. */
void pci_dev_set_intx(struct pci_dev *pdev, int level);

/* Config space access as the guest does it (used by both 0xCFC and ECAM, and by tests). */
void pci_cfg_read(struct pci_host *host, unsigned slot, unsigned offset, void *data, unsigned len);
void pci_cfg_write(struct pci_host *host, unsigned slot, unsigned offset, const void *data, unsigned len);

/* INTx: GSI every slot's INTA# is routed to (one shared line). */
#define PCI_INTX_GSI_DEFAULT 10

#endif
