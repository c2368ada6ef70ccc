/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ACPI tables for the guest: RSDP (revision 2), RSDT, XSDT, FADT (revision 6, full hardware
 * model), FACS, MADT, MCFG and a DSDT written by a small AML encoder. Power button: the
 * FADT fixed-feature button (PWR_BUTTON flag clear), raised through PM1 PWRBTN_STS + SCI; there
 * is no PNP0C0C device. SMI_CMD is 0: the PM device must report SCI_EN set in PM1a_CNT.
 */
#ifndef VMMS_HV_ACPI_H
#define VMMS_HV_ACPI_H

#include <stddef.h>
#include <stdint.h>

struct acpi_config {
	unsigned nr_cpus;            /* 1..255: LAPIC ids and processor ids 0..nr_cpus-1 */
	uint64_t ioapic_addr, lapic_addr;
	uint16_t pm1a_evt, pm1a_cnt, pm_tmr, reset_port;
	uint8_t reset_value;
	uint16_t gpe0_blk;           /* 0: none */
	uint8_t gpe0_len;            /* bytes, even */
	unsigned sci_irq;            /* ISA IRQ = GSI; overridden to level, active high */
	uint64_t ecam_base, ecam_size; /* ecam_size 0: no MCFG; 1 MiB per bus */
	uint64_t pci_mmio_base, pci_mmio_size; /* PCI0 _CRS memory window */
	uint8_t slp_typ_s5;          /* SLP_TYP value for \_S5_ */
	uint16_t com1_port;          /* 0: no COM1 device in the DSDT */
	uint8_t com1_irq;
};

/* Builds every table into buf, which the caller copies to guest-physical `base` (below 4 GiB;
 * the RSDP comes first, so base 16-byte aligned and in 0xE0000-0xFFFFF lets a guest find it
 * by scanning). Returns 0 with the RSDP's guest address and the bytes used, -EINVAL for a
 * bad config or -ENOSPC when size is too small. buf is scratch on failure. */
int acpi_build(void *buf, size_t size, uint64_t base, const struct acpi_config *cfg,
	       uint64_t *ret_rsdp, size_t *ret_len);

/* Sum of the bytes (a valid table sums to 0). */
uint8_t acpi_checksum(const void *p, size_t len);
/* The 32-bit compressed EISA id ("PNP0A08") as AML stores it. */
uint32_t acpi_eisa_id(const char *id);

#endif
