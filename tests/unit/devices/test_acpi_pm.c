// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of ACPI fixed hardware: PM1 status/enable/control, S5 power-off, PM timer, reset register, GPE0, SCI. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#include "devices/acpi_pm.h"
#include "lib/util.h"
#include "tests/unit/support/fake_irq.h"

#define EVT 0x600
#define CNT 0x604
#define TMR 0x608
#define RST 0x60c
#define GPE 0x610
#define SCI 9
#define S5 5

struct fixture {
	struct bus pio;
	struct fake_irq fi;
	struct acpi_pm pm;
	unsigned poweroffs, resets;
	bool lock_free;
};

static void note_lock(struct fixture *f)
{
	f->lock_free = pthread_mutex_trylock(&f->pm.lock) == 0;
	if (f->lock_free)
		pthread_mutex_unlock(&f->pm.lock);
}

static void on_poweroff(void *opaque)
{
	struct fixture *f = opaque;

	f->poweroffs++;
	note_lock(f);
}

static void on_reset(void *opaque)
{
	struct fixture *f = opaque;

	f->resets++;
	note_lock(f);
}

static const struct acpi_pm_config base_cfg = {
	.sci_gsi = SCI,
	.pm1a_evt = EVT,
	.pm1a_cnt = CNT,
	.pm_tmr = TMR,
	.reset_port = RST,
	.reset_value = 1,
	.gpe0_blk = GPE,
	.gpe0_len = 4,
	.slp_typ_s5 = S5,
	.poweroff = on_poweroff,
	.reset = on_reset,
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct acpi_pm_config cfg = base_cfg;

	assert_non_null(f);
	assert_int_equal(bus_init(&f->pio, "pio"), 0);
	fake_irq_init(&f->fi);
	cfg.pio = &f->pio;
	cfg.irq = &f->fi.irq;
	cfg.opaque = f;
	assert_int_equal(acpi_pm_init(&f->pm, &cfg), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	f->pm.dev.ops->destroy(&f->pm.dev);
	assert_int_equal(f->pio.nr, 0);
	bus_destroy(&f->pio);
	fake_irq_destroy(&f->fi);
	free(f);
	return 0;
}

static uint32_t in(struct fixture *f, uint16_t port, unsigned len)
{
	uint32_t v = 0;

	assert_true(bus_read(&f->pio, port, &v, len));
	return v;
}

static void out(struct fixture *f, uint16_t port, uint32_t v, unsigned len)
{
	assert_true(bus_write(&f->pio, port, &v, len));
}

static int sci(struct fixture *f)
{
	return fake_irq_level(&f->fi, SCI);
}

static void test_power_on_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in(f, EVT, 2), 0);
	assert_int_equal(in(f, EVT + 2, 2), 0);
	assert_int_equal(in(f, CNT, 2), ACPI_PM1_CNT_SCI_EN);
	assert_int_equal(in(f, GPE, 4), 0);
	assert_int_equal(sci(f), 0);
}

static void test_power_button_raises_sci(void **state)
{
	struct fixture *f = *state;

	/* Not enabled: status set, no SCI. */
	acpi_pm_power_button(&f->pm);
	assert_int_equal(in(f, EVT, 2), ACPI_PM1_PWRBTN);
	assert_int_equal(sci(f), 0);
	/* The OS enables PWRBTN_EN (it clears stale status first, as Linux does). */
	out(f, EVT, ACPI_PM1_PWRBTN, 2);
	out(f, EVT + 2, ACPI_PM1_PWRBTN, 2);
	assert_int_equal(in(f, EVT + 2, 2), ACPI_PM1_PWRBTN);
	assert_int_equal(sci(f), 0);
	acpi_pm_power_button(&f->pm);
	assert_int_equal(sci(f), 1);
	assert_int_equal(f->fi.raises[SCI], 1);
	/* Writing 0 clears nothing; writing 1 clears and drops the SCI. */
	out(f, EVT, 0, 2);
	assert_int_equal(sci(f), 1);
	out(f, EVT, ACPI_PM1_PWRBTN, 2);
	assert_int_equal(in(f, EVT, 2), 0);
	assert_int_equal(sci(f), 0);
	/* Byte access to the high status byte works the same. */
	acpi_pm_power_button(&f->pm);
	assert_int_equal(sci(f), 1);
	out(f, EVT + 1, ACPI_PM1_PWRBTN >> 8, 1);
	assert_int_equal(sci(f), 0);
	/* Status set while enabled, then enable cleared: SCI follows. */
	acpi_pm_power_button(&f->pm);
	out(f, EVT + 2, 0, 2);
	assert_int_equal(sci(f), 0);
	out(f, EVT + 2, ACPI_PM1_PWRBTN, 4 - 2);
	assert_int_equal(sci(f), 1);
	/* SCI_EN off masks it. */
	out(f, CNT, 0, 2);
	assert_int_equal(sci(f), 0);
	out(f, CNT, ACPI_PM1_CNT_SCI_EN, 2);
	assert_int_equal(sci(f), 1);
	assert_int_equal(f->fi.line_calls[SCI], f->fi.raises[SCI] + f->fi.lowers[SCI]);
	/* Enable bits that do not exist do not stick. */
	out(f, EVT + 2, 0xffff, 2);
	assert_int_equal(in(f, EVT + 2, 2), 0x0721);
}

static void test_dword_evt_access(void **state)
{
	struct fixture *f = *state;

	/* One 32-bit write: clear status (low half) and set enable (high half). */
	acpi_pm_power_button(&f->pm);
	out(f, EVT, (uint32_t)ACPI_PM1_PWRBTN << 16 | ACPI_PM1_PWRBTN, 4);
	assert_int_equal(in(f, EVT, 4), (uint32_t)ACPI_PM1_PWRBTN << 16);
	assert_int_equal(sci(f), 0);
}

static void slp(struct fixture *f, unsigned typ, bool en)
{
	out(f, CNT, ACPI_PM1_CNT_SCI_EN | typ << ACPI_PM1_CNT_SLP_TYP_SHIFT | (en ? ACPI_PM1_CNT_SLP_EN : 0), 2);
}

static void test_poweroff_only_with_s5_and_slp_en(void **state)
{
	struct fixture *f = *state;

	/* Linux writes SLP_TYP first, then SLP_TYP | SLP_EN. */
	slp(f, S5, false);
	assert_int_equal(f->poweroffs, 0);
	assert_int_equal(in(f, CNT, 2), ACPI_PM1_CNT_SCI_EN | S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT);
	for (unsigned typ = 0; typ < 8; typ++)
		if (typ != S5)
			slp(f, typ, true);
	assert_int_equal(f->poweroffs, 0);
	slp(f, S5, true);
	assert_int_equal(f->poweroffs, 1);
	assert_true(f->lock_free);
	/* SLP_EN is write-only. */
	assert_false(in(f, CNT, 2) & ACPI_PM1_CNT_SLP_EN);
	/* A byte write to the high byte with SLP_EN and the S5 type also powers off. */
	out(f, CNT + 1, (ACPI_PM1_CNT_SLP_EN | S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT) >> 8, 1);
	assert_int_equal(f->poweroffs, 2);
	/* A low-byte write never carries SLP_EN. */
	out(f, CNT, 0xff, 1);
	assert_int_equal(f->poweroffs, 2);
	assert_int_equal(f->resets, 0);
}

static void test_reset_register(void **state)
{
	struct fixture *f = *state;

	out(f, RST, 0, 1);
	out(f, RST, 2, 1);
	assert_int_equal(f->resets, 0);
	out(f, RST, 1, 1);
	assert_int_equal(f->resets, 1);
	assert_true(f->lock_free);
	assert_int_equal(in(f, RST, 1), 0);
	assert_int_equal(f->poweroffs, 0);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void test_pm_timer(void **state)
{
	struct fixture *f = *state;
	uint32_t a, b, ticks;
	uint64_t t0, t1;
	struct timespec d = { 0, 20000000L }; /* 20 ms */

	t0 = mono_ns();
	a = in(f, TMR, 4);
	nanosleep(&d, NULL);
	b = in(f, TMR, 4);
	t1 = mono_ns();
	assert_int_equal(a >> 24, 0);
	assert_int_equal(b >> 24, 0);
	ticks = (b - a) & 0xffffff;
	/* 3.579545 MHz over the measured interval, with slack for the reads themselves. */
	assert_true(ticks >= 20000000ULL * ACPI_PM_TIMER_HZ / 1000000000ULL);
	assert_true(ticks <= (t1 - t0) * ACPI_PM_TIMER_HZ / 1000000000ULL + 10);
	/* Read-only; partial reads are slices of the same counter. */
	out(f, TMR, 0, 4);
	assert_true(in(f, TMR + 3, 1) == 0);
	assert_true(((in(f, TMR, 4) - b) & 0xffffff) < ACPI_PM_TIMER_HZ);
}

static void test_gpe0(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(acpi_pm_gpe_raise(&f->pm, 3), 0);
	assert_int_equal(acpi_pm_gpe_raise(&f->pm, 16), -EINVAL);
	assert_int_equal(in(f, GPE, 2), 0x0008);
	assert_int_equal(sci(f), 0);
	out(f, GPE + 2, 0x0008, 2);
	assert_int_equal(in(f, GPE + 2, 2), 0x0008);
	assert_int_equal(sci(f), 1);
	out(f, GPE, 0x0008, 2);
	assert_int_equal(in(f, GPE, 2), 0);
	assert_int_equal(sci(f), 0);
	/* Past the block is not mapped. */
	assert_false(bus_read(&f->pio, GPE + 4, &(uint8_t){ 0 }, 1));
}

static void test_init_errors(void **state)
{
	struct fixture *f = *state;
	struct acpi_pm pm2;
	struct acpi_pm_config cfg = base_cfg;
	struct bus pio;

	cfg.pio = &f->pio;
	cfg.gpe0_len = 3;
	assert_int_equal(acpi_pm_init(&pm2, &cfg), -EINVAL);
	cfg.gpe0_len = 64;
	assert_int_equal(acpi_pm_init(&pm2, &cfg), -EINVAL);
	/* Overlap with the first device: refused, and nothing of it was unmapped. */
	cfg.gpe0_len = 4;
	assert_int_equal(acpi_pm_init(&pm2, &cfg), -EEXIST);
	assert_int_equal(f->pio.nr, 5);
	/* A partial overlap late in the sequence unwinds what was mapped. */
	assert_int_equal(bus_init(&pio, "pio2"), 0);
	assert_int_equal(bus_map(&pio, GPE, 1, f->pio.ranges[0].ops, NULL), 0);
	cfg.pio = &pio;
	assert_int_equal(acpi_pm_init(&pm2, &cfg), -EEXIST);
	assert_int_equal(pio.nr, 1);
	/* No GPE block at all is fine. */
	cfg.gpe0_blk = 0;
	cfg.gpe0_len = 0;
	assert_int_equal(acpi_pm_init(&pm2, &cfg), 0);
	assert_int_equal(pio.nr, 5);
	assert_int_equal(acpi_pm_gpe_raise(&pm2, 0), -EINVAL);
	acpi_pm_destroy(&pm2);
	acpi_pm_destroy(&pm2); /* twice is harmless */
	assert_int_equal(pio.nr, 1);
	bus_destroy(&pio);
}

static void test_random_storm(void **state)
{
	struct fixture *f = *state;
	uint64_t s = 0xda942042e4dd58b5ULL;

	for (unsigned i = 0; i < 20000; i++) {
		uint64_t v;
		uint16_t port;
		unsigned len;

		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		v = s >> 16;
		port = (uint16_t)(0x600 + (s >> 4) % 0x18);
		len = 1u << ((s >> 10) % 3);
		/* Stay away from the two ports that stop the machine: those have their own tests. */
		if ((s & 1) && port != CNT + 1 && !(port <= CNT + 1 && port + len > CNT + 1) && port != RST)
			(void)bus_write(&f->pio, port, &v, len);
		else
			(void)bus_read(&f->pio, port, &v, len);
	}
	assert_int_equal(f->fi.line_calls[SCI], f->fi.raises[SCI] + f->fi.lowers[SCI]);
	assert_int_equal(f->pm.pm1_en & ~0x0721, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_power_on_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_power_button_raises_sci, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dword_evt_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poweroff_only_with_s5_and_slp_en, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pm_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpe0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_storm, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
