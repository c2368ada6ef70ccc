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
};

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
};

/* Maps 0xCF8-0xCFF on pio, ECAM at ecam_base (1 MiB, bus 0) and the two BAR windows. */
int pci_host_init(struct pci_host *host, struct bus *pio, struct bus *mmio, uint64_t ecam_base,
		  uint64_t mmio_base, uint64_t mmio_size, uint32_t pio_base, uint32_t pio_size);
void pci_host_destroy(struct pci_host *host);

/* Fills the standard header (type 0) of a function. */
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

/* Config space access as the guest does it (used by both 0xCFC and ECAM, and by tests). */
void pci_cfg_read(struct pci_host *host, unsigned slot, unsigned offset, void *data, unsigned len);
void pci_cfg_write(struct pci_host *host, unsigned slot, unsigned offset, const void *data, unsigned len);

/* INTx: GSI every slot's INTA# is routed to (one shared line). */
#define PCI_INTX_GSI_DEFAULT 10

#endif
