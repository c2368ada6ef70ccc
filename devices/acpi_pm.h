/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ACPI fixed hardware on I/O ports (what the FADT points at): PM1a event block (status +
 * enable), PM1a control (SCI_EN, SLP_TYP, SLP_EN: entering S5 powers off), the 24-bit PM
 * timer, the FADT reset register and a GPE0 block. The SCI is a level-triggered GSI, high
 * while any enabled status bit is set. The power button sets PWRBTN_STS so the guest's ACPI
 * driver runs an orderly shutdown.
 */
#ifndef VMMS_DEVICES_ACPI_PM_H
#define VMMS_DEVICES_ACPI_PM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/irq.h"

#define ACPI_PM_TIMER_HZ 3579545ULL
#define ACPI_PM_GPE0_MAX 16 /* bytes in the GPE0 block (half status, half enable) */

/* PM1 status/enable bits. */
#define ACPI_PM1_TMR 0x0001
#define ACPI_PM1_GBL 0x0020
#define ACPI_PM1_PWRBTN 0x0100
#define ACPI_PM1_SLPBTN 0x0200
#define ACPI_PM1_RTC 0x0400
#define ACPI_PM1_WAK 0x8000 /* status only */
/* PM1 control bits. */
#define ACPI_PM1_CNT_SCI_EN 0x0001
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK 0x1c00
#define ACPI_PM1_CNT_SLP_EN 0x2000

struct acpi_pm_config {
	struct bus *pio;
	struct hv_irq *irq;
	unsigned sci_gsi;
	uint16_t pm1a_evt;      /* 4 ports: status, enable */
	uint16_t pm1a_cnt;      /* 2 ports */
	uint16_t pm_tmr;        /* 4 ports */
	uint16_t reset_port;    /* 1 port (FADT RESET_REG) */
	uint8_t reset_value;    /* value that resets (FADT RESET_VALUE) */
	uint16_t gpe0_blk;      /* gpe0_len ports; 0 = none */
	unsigned gpe0_len;      /* even, 2..ACPI_PM_GPE0_MAX */
	uint8_t slp_typ_s5;     /* SLP_TYP of \_S5 in the DSDT */
	/* Called from the vCPU thread that wrote the register, without the device lock. */
	void (*poweroff)(void *opaque);
	void (*reset)(void *opaque);
	void *opaque;
};

struct acpi_pm {
	struct device dev;
	pthread_mutex_t lock;
	struct acpi_pm_config cfg;
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	uint8_t gpe_sts[ACPI_PM_GPE0_MAX / 2], gpe_en[ACPI_PM_GPE0_MAX / 2];
	int level;              /* level last driven on the SCI */
	bool mapped_evt, mapped_cnt, mapped_tmr, mapped_reset, mapped_gpe;
};

/* Maps the blocks on cfg->pio (copied). 0 or -errno (-EINVAL for a bad gpe0_len). */
int acpi_pm_init(struct acpi_pm *pm, const struct acpi_pm_config *cfg);
void acpi_pm_destroy(struct acpi_pm *pm);
void acpi_pm_reset(struct acpi_pm *pm);
/* Presses the power button: sets PWRBTN_STS (SCI when the guest enabled PWRBTN_EN). */
void acpi_pm_power_button(struct acpi_pm *pm);
/* Sets GPE0 status bit `bit` (hotplug and other general-purpose events). -EINVAL past the block. */
int acpi_pm_gpe_raise(struct acpi_pm *pm, unsigned bit);
/* The PM timer value (24 bits) the guest would read now. */
uint32_t acpi_pm_timer_read(void);

#endif
