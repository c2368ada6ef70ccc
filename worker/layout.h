/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The guest-physical and I/O-port map of a vmms machine. Only worker/ decides where things
 * live; test guests (tests/guests) include this header to find the devices.
 */
#ifndef VMMS_WORKER_LAYOUT_H
#define VMMS_WORKER_LAYOUT_H

/* Memory map */
#define LAYOUT_ZERO_PAGE      0x7000ULL      /* Linux boot_params / PVH start_info */
#define LAYOUT_BOOT_GDT       0x9000ULL
#define LAYOUT_BOOT_PML4      0xA000ULL      /* boot page tables: PML4, PDPT, PDs (0xA000-0xFFFF) */
#define LAYOUT_BOOT_TSS       0x10000ULL     /* TSS + I/O permission bitmap, 0x10000-0x12FFF */
#define LAYOUT_CMDLINE        0x20000ULL
#define LAYOUT_CMDLINE_MAX    0x10000ULL
#define LAYOUT_ACPI_BASE      0xE0000ULL     /* RSDP and tables, 0xE0000-0xFFFFF */
#define LAYOUT_ACPI_SIZE      0x20000ULL
#define LAYOUT_KERNEL         0x100000ULL    /* 1 MiB */
#define LAYOUT_PCI_HOLE       0xC0000000ULL  /* 3 GiB: RAM above this moves above 4 GiB */
#define LAYOUT_PCI_MMIO       0xC0000000ULL  /* 32-bit BAR window */
#define LAYOUT_PCI_MMIO_SIZE  0x20000000ULL
#define LAYOUT_PCI_ECAM       0xE0000000ULL  /* ECAM, bus 0 only */
#define LAYOUT_PCI_ECAM_SIZE  0x100000ULL
#define LAYOUT_IOAPIC         0xFEC00000ULL
#define LAYOUT_LAPIC          0xFEE00000ULL
#define LAYOUT_HIGH_RAM       0x100000000ULL /* 4 GiB */

/* I/O ports */
#define LAYOUT_PORT_I8042     0x60           /* 0x60 and 0x64 */
#define LAYOUT_PORT_RTC       0x70           /* 0x70-0x71 */
#define LAYOUT_PORT_COM1      0x3f8
#define LAYOUT_PORT_PCI_CONF  0xcf8          /* 0xcf8-0xcff */
#define LAYOUT_PORT_PM1A_EVT  0x600          /* 4 bytes: PM1 status + enable */
#define LAYOUT_PORT_PM1A_CNT  0x604          /* 2 bytes */
#define LAYOUT_PORT_PM_TMR    0x608          /* 4 bytes */
#define LAYOUT_PORT_RESET     0x60c          /* 1 byte, FADT RESET_REG, value 1 */
#define LAYOUT_PORT_GPE0      0x610          /* 4 bytes */
#define LAYOUT_PCI_PIO        0xc000         /* I/O BAR window 0xc000-0xffff */
#define LAYOUT_PCI_PIO_SIZE   0x4000

/* Interrupts (GSI) */
#define LAYOUT_IRQ_I8042      1
#define LAYOUT_IRQ_COM1       4
#define LAYOUT_IRQ_RTC        8
#define LAYOUT_IRQ_SCI        9
#define LAYOUT_IRQ_PCI_INTX   10 /* INTx pins of every PCI slot share 10/11 (unused with MSI-X) */

/* ACPI S5 sleep type written to PM1a_CNT.SLP_TYP by the guest to power off */
#define LAYOUT_SLP_TYP_S5     5
#define LAYOUT_RESET_VALUE    1              /* written to LAYOUT_PORT_RESET to reset */
#define LAYOUT_GPE0_LEN       4

/* The ACPI PM block as designated initializers. The FADT (struct acpi_config) and the PM device
 * (struct acpi_pm_config) name these fields alike, and must describe the same ports, or the
 * guest's power-off and reset writes go nowhere. Only the SCI differs in name (sci_irq, sci_gsi:
 * both LAYOUT_IRQ_SCI). */
#define LAYOUT_ACPI_PM_FIELDS                                                                 \
	.pm1a_evt = LAYOUT_PORT_PM1A_EVT, .pm1a_cnt = LAYOUT_PORT_PM1A_CNT,                     \
	.pm_tmr = LAYOUT_PORT_PM_TMR, .reset_port = LAYOUT_PORT_RESET,                          \
	.reset_value = LAYOUT_RESET_VALUE, .gpe0_blk = LAYOUT_PORT_GPE0,                        \
	.gpe0_len = LAYOUT_GPE0_LEN, .slp_typ_s5 = LAYOUT_SLP_TYP_S5

#endif
