/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The interrupt and notification interface devices use. hv/kvm implements it over the
 * in-kernel irqchip (KVM_IRQ_LINE, GSI routing, irqfd, ioeventfd); unit tests supply a fake.
 * Devices never issue a KVM ioctl themselves.
 */
#ifndef VMMS_HV_IRQ_H
#define VMMS_HV_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct hv_irq;

struct hv_irq_ops {
	/* Drive a legacy GSI (IOAPIC pin; ISA IRQs 0-15 also reach the PIC). 0 or -errno. */
	int (*line_set)(struct hv_irq *irq, unsigned gsi, int level);
	/* Allocate a GSI for an MSI route (address/data as the guest programmed them). */
	int (*msi_alloc)(struct hv_irq *irq, unsigned *ret_gsi);
	/* Point an MSI GSI at a new address/data (masked vectors: the caller detaches the irqfd). */
	int (*msi_update)(struct hv_irq *irq, unsigned gsi, uint64_t addr, uint32_t data);
	void (*msi_free)(struct hv_irq *irq, unsigned gsi);
	/* Inject one MSI directly (KVM_SIGNAL_MSI), for devices not using irqfd. */
	int (*msi_signal)(struct hv_irq *irq, uint64_t addr, uint32_t data);
	/* Attach/detach an eventfd that raises gsi when written (irqfd). */
	int (*irqfd)(struct hv_irq *irq, int fd, unsigned gsi, bool assign);
	/* Attach/detach an eventfd written by the kernel when the guest writes addr (ioeventfd).
	 * len 0 matches any width; datamatch < 0 matches any value. */
	int (*ioeventfd)(struct hv_irq *irq, int fd, uint64_t addr, unsigned len, bool pio,
			 int64_t datamatch, bool assign);
};

struct hv_irq {
	const struct hv_irq_ops *ops;
};

#endif
