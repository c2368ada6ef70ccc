// SPDX-License-Identifier: GPL-2.0-only
/* ACPI fixed hardware: PM1a event/control, PM timer, reset register, GPE0, SCI and the power button. */
#include "devices/acpi_pm.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"

#define PM1_BM 0x0010
#define PM1_STS_MASK (ACPI_PM1_TMR | PM1_BM | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC | ACPI_PM1_WAK)
#define PM1_EN_MASK (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC)
#define PM1_CNT_BM_RLD 0x0002
/* Bits of PM1_CNT that read back; SLP_EN and GBL_RLS are write-only. */
#define PM1_CNT_MASK (ACPI_PM1_CNT_SCI_EN | PM1_CNT_BM_RLD | ACPI_PM1_CNT_SLP_TYP_MASK)

enum acpi_pm_action { PM_NONE, PM_POWEROFF, PM_RESET };

uint32_t acpi_pm_timer_read(void)
{
	struct timespec ts;
	uint64_t ticks;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	/* Split so nothing overflows: seconds * 3.58 MHz, then the fraction. */
	ticks = (uint64_t)ts.tv_sec * ACPI_PM_TIMER_HZ + (uint64_t)ts.tv_nsec * ACPI_PM_TIMER_HZ / 1000000000ULL;
	return (uint32_t)(ticks & 0xffffff);
}

/* SCI: level while an enabled event is pending and the OS owns the events (SCI_EN); changed
 * on a change only (caller holds the lock). */
static void acpi_pm_update_sci(struct acpi_pm *pm)
{
	bool pending = (pm->pm1_sts & pm->pm1_en & PM1_EN_MASK) != 0;
	int level;

	for (unsigned i = 0; i < pm->cfg.gpe0_len / 2; i++)
		pending |= (pm->gpe_sts[i] & pm->gpe_en[i]) != 0;
	level = pending && (pm->pm1_cnt & ACPI_PM1_CNT_SCI_EN);
	if (level == pm->level)
		return;
	pm->level = level;
	if (pm->cfg.irq)
		(void)pm->cfg.irq->ops->line_set(pm->cfg.irq, pm->cfg.sci_gsi, level);
}

static void acpi_pm_run(const struct acpi_pm *pm, enum acpi_pm_action a)
{
	if (a == PM_POWEROFF && pm->cfg.poweroff)
		pm->cfg.poweroff(pm->cfg.opaque);
	else if (a == PM_RESET && pm->cfg.reset)
		pm->cfg.reset(pm->cfg.opaque);
}

/* --- PM1a event block: status (write 1 to clear) at 0-1, enable at 2-3 --------------------- */

static void pm1_evt_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct acpi_pm *pm = dev;
	uint8_t *d = data;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < len; i++) {
		uint64_t o = offset + i;
		uint16_t reg = o < 2 ? pm->pm1_sts : pm->pm1_en;

		d[i] = o < 4 ? (uint8_t)(reg >> (8 * (o & 1))) : 0xff;
	}
	pthread_mutex_unlock(&pm->lock);
}

static void pm1_evt_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct acpi_pm *pm = dev;
	const uint8_t *d = data;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < len; i++) {
		uint64_t o = offset + i;
		unsigned shift = 8 * (unsigned)(o & 1);

		if (o < 2)
			pm->pm1_sts &= (uint16_t)~(d[i] << shift);
		else if (o < 4)
			pm->pm1_en = (uint16_t)(((pm->pm1_en & ~(0xff << shift)) | d[i] << shift) & PM1_EN_MASK);
	}
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static const struct bus_ops pm1_evt_ops = { .read = pm1_evt_read, .write = pm1_evt_write };

/* --- PM1a control -------------------------------------------------------------------------- */

static void pm1_cnt_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct acpi_pm *pm = dev;
	uint8_t *d = data;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < len; i++)
		d[i] = offset + i < 2 ? (uint8_t)(pm->pm1_cnt >> (8 * (offset + i))) : 0xff;
	pthread_mutex_unlock(&pm->lock);
}

static void pm1_cnt_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct acpi_pm *pm = dev;
	const uint8_t *d = data;
	enum acpi_pm_action a = PM_NONE;
	uint16_t v;
	bool slp_en;

	pthread_mutex_lock(&pm->lock);
	v = pm->pm1_cnt;
	for (unsigned i = 0; i < len; i++) {
		unsigned shift = 8 * (unsigned)(offset + i);

		if (offset + i < 2)
			v = (uint16_t)((v & ~(0xff << shift)) | d[i] << shift);
	}
	slp_en = v & ACPI_PM1_CNT_SLP_EN;
	pm->pm1_cnt = v & PM1_CNT_MASK;
	/* Entering a sleep state: only S5 (soft off) exists here; other types are ignored. */
	if (slp_en && ((v & ACPI_PM1_CNT_SLP_TYP_MASK) >> ACPI_PM1_CNT_SLP_TYP_SHIFT) == pm->cfg.slp_typ_s5)
		a = PM_POWEROFF;
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	acpi_pm_run(pm, a);
}

static const struct bus_ops pm1_cnt_ops = { .read = pm1_cnt_read, .write = pm1_cnt_write };

/* --- PM timer (read-only, 24 bits) --------------------------------------------------------- */

static void pm_tmr_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	uint32_t t = acpi_pm_timer_read();
	uint8_t *d = data;

	for (unsigned i = 0; i < len; i++)
		d[i] = offset + i < 4 ? (uint8_t)(t >> (8 * (offset + i))) : 0xff;
}

static void pm_tmr_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
}

static const struct bus_ops pm_tmr_ops = { .read = pm_tmr_read, .write = pm_tmr_write };

/* --- reset register ------------------------------------------------------------------------ */

static void reset_reg_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	memset(data, 0, len);
}

static void reset_reg_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct acpi_pm *pm = dev;

	if (*(const uint8_t *)data == pm->cfg.reset_value)
		acpi_pm_run(pm, PM_RESET);
}

static const struct bus_ops reset_reg_ops = { .read = reset_reg_read, .write = reset_reg_write };

/* --- GPE0: status bytes (write 1 to clear), then enable bytes ------------------------------ */

static void gpe0_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct acpi_pm *pm = dev;
	unsigned half = pm->cfg.gpe0_len / 2;
	uint8_t *d = data;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < len; i++) {
		uint64_t o = offset + i;

		d[i] = o < half ? pm->gpe_sts[o] : o < 2 * half ? pm->gpe_en[o - half] : 0xff;
	}
	pthread_mutex_unlock(&pm->lock);
}

static void gpe0_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct acpi_pm *pm = dev;
	unsigned half = pm->cfg.gpe0_len / 2;
	const uint8_t *d = data;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < len; i++) {
		uint64_t o = offset + i;

		if (o < half)
			pm->gpe_sts[o] &= (uint8_t)~d[i];
		else if (o < 2 * half)
			pm->gpe_en[o - half] = d[i];
	}
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static const struct bus_ops gpe0_ops = { .read = gpe0_read, .write = gpe0_write };

/* --- events from the host ------------------------------------------------------------------ */

void acpi_pm_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts |= ACPI_PM1_PWRBTN;
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

int acpi_pm_gpe_raise(struct acpi_pm *pm, unsigned bit)
{
	if (bit >= 8 * (pm->cfg.gpe0_len / 2))
		return -EINVAL;
	pthread_mutex_lock(&pm->lock);
	pm->gpe_sts[bit / 8] |= (uint8_t)(1u << (bit % 8));
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

void acpi_pm_reset(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts = pm->pm1_en = 0;
	/* No SMI_CMD in the FADT: the machine is always in ACPI mode, SCI_EN set. */
	pm->pm1_cnt = ACPI_PM1_CNT_SCI_EN;
	memset(pm->gpe_sts, 0, sizeof(pm->gpe_sts));
	memset(pm->gpe_en, 0, sizeof(pm->gpe_en));
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static void acpi_pm_dev_reset(struct device *dev)
{
	acpi_pm_reset(container_of(dev, struct acpi_pm, dev));
}

static void acpi_pm_dev_destroy(struct device *dev)
{
	acpi_pm_destroy(container_of(dev, struct acpi_pm, dev));
}

static const struct device_ops acpi_pm_device_ops = {
	.name = "acpi-pm",
	.reset = acpi_pm_dev_reset,
	.destroy = acpi_pm_dev_destroy,
};

static void acpi_pm_unmap(struct acpi_pm *pm)
{
	struct bus *pio = pm->cfg.pio;

	if (pm->mapped_gpe)
		(void)bus_unmap(pio, pm->cfg.gpe0_blk, pm);
	if (pm->mapped_reset)
		(void)bus_unmap(pio, pm->cfg.reset_port, pm);
	if (pm->mapped_tmr)
		(void)bus_unmap(pio, pm->cfg.pm_tmr, pm);
	if (pm->mapped_cnt)
		(void)bus_unmap(pio, pm->cfg.pm1a_cnt, pm);
	if (pm->mapped_evt)
		(void)bus_unmap(pio, pm->cfg.pm1a_evt, pm);
	pm->mapped_gpe = pm->mapped_reset = pm->mapped_tmr = pm->mapped_cnt = pm->mapped_evt = false;
}

int acpi_pm_init(struct acpi_pm *pm, const struct acpi_pm_config *cfg)
{
	int r;

	memset(pm, 0, sizeof(*pm));
	if (!cfg->pio || (cfg->gpe0_blk && (cfg->gpe0_len < 2 || cfg->gpe0_len > ACPI_PM_GPE0_MAX ||
					    cfg->gpe0_len % 2)))
		return -EINVAL;
	pm->cfg = *cfg;
	if (!cfg->gpe0_blk)
		pm->cfg.gpe0_len = 0;
	pm->dev = (struct device){ .ops = &acpi_pm_device_ops, .id = "acpi-pm" };
	r = -pthread_mutex_init(&pm->lock, NULL);
	if (r < 0)
		return r;
	acpi_pm_reset(pm);

	r = bus_map(cfg->pio, cfg->pm1a_evt, 4, &pm1_evt_ops, pm);
	if (r < 0)
		goto err;
	pm->mapped_evt = true;
	r = bus_map(cfg->pio, cfg->pm1a_cnt, 2, &pm1_cnt_ops, pm);
	if (r < 0)
		goto err;
	pm->mapped_cnt = true;
	r = bus_map(cfg->pio, cfg->pm_tmr, 4, &pm_tmr_ops, pm);
	if (r < 0)
		goto err;
	pm->mapped_tmr = true;
	r = bus_map(cfg->pio, cfg->reset_port, 1, &reset_reg_ops, pm);
	if (r < 0)
		goto err;
	pm->mapped_reset = true;
	if (pm->cfg.gpe0_len) {
		r = bus_map(cfg->pio, cfg->gpe0_blk, pm->cfg.gpe0_len, &gpe0_ops, pm);
		if (r < 0)
			goto err;
		pm->mapped_gpe = true;
	}
	return 0;
err:
	acpi_pm_unmap(pm);
	pthread_mutex_destroy(&pm->lock);
	pm->cfg.pio = NULL;
	return r;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm || !pm->cfg.pio)
		return;
	acpi_pm_unmap(pm);
	pthread_mutex_destroy(&pm->lock);
	pm->cfg.pio = NULL;
}
