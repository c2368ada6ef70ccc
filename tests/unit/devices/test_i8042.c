// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of the i8042 controller: self tests, command byte, port toggles, keyboard replies, reset line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "devices/i8042.h"
#include "lib/util.h"
#include "tests/unit/support/fake_irq.h"

#define GSI 1
#define STR_OBF 0x01
#define STR_IBF 0x02
#define STR_SYS 0x04
#define STR_CMD 0x08
#define STR_AUXDATA 0x20

struct fixture {
	struct bus pio;
	struct fake_irq fi;
	struct i8042 k;
	unsigned resets;
	bool lock_free_in_reset;
};

static void on_reset(void *opaque)
{
	struct fixture *f = opaque;

	f->resets++;
	/* The callback runs without the controller's lock (it may touch devices). */
	if (pthread_mutex_trylock(&f->k.lock) == 0) {
		f->lock_free_in_reset = true;
		pthread_mutex_unlock(&f->k.lock);
	}
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(bus_init(&f->pio, "pio"), 0);
	fake_irq_init(&f->fi);
	assert_int_equal(i8042_init(&f->k, &f->pio, &f->fi.irq, GSI, on_reset, f), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	f->k.dev.ops->destroy(&f->k.dev);
	assert_int_equal(f->pio.nr, 0);
	bus_destroy(&f->pio);
	fake_irq_destroy(&f->fi);
	free(f);
	return 0;
}

static uint8_t status(struct fixture *f)
{
	uint8_t v = 0;

	assert_true(bus_read(&f->pio, 0x64, &v, 1));
	return v;
}

static uint8_t data(struct fixture *f)
{
	uint8_t v = 0;

	assert_true(bus_read(&f->pio, 0x60, &v, 1));
	return v;
}

static void cmd(struct fixture *f, uint8_t v)
{
	assert_true(bus_write(&f->pio, 0x64, &v, 1));
}

static void put(struct fixture *f, uint8_t v)
{
	assert_true(bus_write(&f->pio, 0x60, &v, 1));
}

/* Linux's i8042_command(): write the command, then read each reply byte once OBF is set. */
static int command(struct fixture *f, uint8_t c, const uint8_t *param, unsigned nparam, uint8_t *reply, unsigned nreply)
{
	cmd(f, c);
	for (unsigned i = 0; i < nparam; i++) {
		if (status(f) & STR_IBF)
			return -1;
		put(f, param[i]);
	}
	for (unsigned i = 0; i < nreply; i++) {
		if (!(status(f) & STR_OBF))
			return -1; /* would time out */
		reply[i] = data(f);
	}
	return 0;
}

static void test_power_on_status(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(status(f) & (STR_OBF | STR_IBF | STR_AUXDATA), 0);
	assert_true(status(f) & STR_SYS);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 0);
}

static void test_self_tests(void **state)
{
	struct fixture *f = *state;
	uint8_t r;

	assert_int_equal(command(f, 0xaa, NULL, 0, &r, 1), 0);
	assert_int_equal(r, 0x55);
	assert_true(status(f) & STR_CMD);
	assert_int_equal(command(f, 0xab, NULL, 0, &r, 1), 0);
	assert_int_equal(r, 0x00);
	assert_false(status(f) & STR_OBF);
	/* A write to the data port clears the command flag. */
	put(f, 0xf4);
	assert_false(status(f) & STR_CMD);
}

static void test_command_byte(void **state)
{
	struct fixture *f = *state;
	uint8_t ctr, v = 0x47;

	assert_int_equal(command(f, 0x20, NULL, 0, &ctr, 1), 0);
	assert_int_equal(ctr, 0x65);
	assert_int_equal(command(f, 0x60, &v, 1, NULL, 0), 0);
	assert_int_equal(command(f, 0x20, NULL, 0, &ctr, 1), 0);
	assert_int_equal(ctr, 0x47);
	/* Port toggles Linux uses (i8042_toggle_aux, disabling the keyboard). */
	cmd(f, 0xa7);
	assert_int_equal(command(f, 0x20, NULL, 0, &ctr, 1), 0);
	assert_int_equal(ctr, 0x67);
	cmd(f, 0xa8);
	cmd(f, 0xad);
	assert_int_equal(command(f, 0x20, NULL, 0, &ctr, 1), 0);
	assert_int_equal(ctr, 0x57);
	cmd(f, 0xae);
	assert_int_equal(command(f, 0x20, NULL, 0, &ctr, 1), 0);
	assert_int_equal(ctr, 0x47);
	/* The SYS flag in the status follows the command byte. */
	v = 0x40;
	assert_int_equal(command(f, 0x60, &v, 1, NULL, 0), 0);
	assert_false(status(f) & STR_SYS);
	/* Other controller RAM bytes. */
	v = 0x99;
	assert_int_equal(command(f, 0x7f, &v, 1, NULL, 0), 0);
	assert_int_equal(command(f, 0x3f, NULL, 0, &ctr, 1), 0);
	assert_int_equal(ctr, 0x99);
	assert_false(status(f) & STR_OBF);
}

static void test_keyboard_irq(void **state)
{
	struct fixture *f = *state;
	uint8_t v = 0x44; /* KBDINT off */

	/* Command byte has KBDINT: a reply raises IRQ 1, reading it lowers it. */
	cmd(f, 0xaa);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 1);
	assert_int_equal(data(f), 0x55);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 0);
	assert_int_equal(command(f, 0x60, &v, 1, NULL, 0), 0);
	cmd(f, 0xaa);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 0);
	assert_true(status(f) & STR_OBF);
	assert_int_equal(data(f), 0x55);
	assert_int_equal(f->fi.line_calls[GSI], f->fi.raises[GSI] + f->fi.lowers[GSI]);
}

static void test_keyboard_replies(void **state)
{
	struct fixture *f = *state;

	put(f, 0xf2); /* identify, translated */
	assert_int_equal(data(f), 0xfa);
	assert_int_equal(data(f), 0xab);
	assert_int_equal(data(f), 0x41);
	put(f, 0xff); /* reset */
	assert_int_equal(data(f), 0xfa);
	assert_int_equal(data(f), 0xaa);
	put(f, 0xed); /* LEDs + parameter */
	assert_int_equal(data(f), 0xfa);
	put(f, 0x07);
	assert_int_equal(data(f), 0xfa);
	put(f, 0xee);
	assert_int_equal(data(f), 0xee);
	put(f, 0x12); /* not a command */
	assert_int_equal(data(f), 0xfe);
	assert_false(status(f) & STR_OBF);
	/* Reading with nothing queued returns the last byte again, no harm. */
	assert_int_equal(data(f), 0xfe);
}

static void test_aux_absent(void **state)
{
	struct fixture *f = *state;
	uint8_t p = 0x5a, r;

	/* AUX loop: the byte comes back without the AUX flag (Linux: "auxerr", no timeout). */
	cmd(f, 0xd3);
	put(f, p);
	assert_true(status(f) & STR_OBF);
	assert_false(status(f) & STR_AUXDATA);
	assert_int_equal(data(f), 0x5a);
	/* AUX interface test reports a stuck line: Linux gives up on the AUX port. */
	assert_int_equal(command(f, 0xa9, NULL, 0, &r, 1), 0);
	assert_true(r != 0 && r != 0xfa && r != 0xff);
	/* A byte for the AUX device gets "resend" from nobody, flagged AUX, no IRQ 1. */
	cmd(f, 0xd4);
	put(f, 0xf2);
	assert_int_equal(status(f) & (STR_OBF | STR_AUXDATA), STR_OBF | STR_AUXDATA);
	assert_int_equal(fake_irq_level(&f->fi, GSI), 0);
	assert_int_equal(data(f), 0xfe);
	/* D2 echoes as keyboard data. */
	cmd(f, 0xd2);
	put(f, 0x1c);
	assert_false(status(f) & STR_AUXDATA);
	assert_int_equal(data(f), 0x1c);
}

static void test_reset_line(void **state)
{
	struct fixture *f = *state;
	uint8_t v;

	cmd(f, 0xff); /* pulse nothing */
	assert_int_equal(f->resets, 0);
	cmd(f, 0xfe);
	assert_int_equal(f->resets, 1);
	assert_true(f->lock_free_in_reset);
	/* Output port: read it, write it with the reset bit set (no reset), then clear. */
	assert_int_equal(command(f, 0xd0, NULL, 0, &v, 1), 0);
	assert_int_equal(v & 0x03, 0x03);
	v = 0x03;
	assert_int_equal(command(f, 0xd1, &v, 1, NULL, 0), 0);
	assert_int_equal(f->resets, 1);
	v = 0x02;
	assert_int_equal(command(f, 0xd1, &v, 1, NULL, 0), 0);
	assert_int_equal(f->resets, 2);
	/* A20 gate commands touch only bit 1. */
	cmd(f, 0xdd);
	assert_int_equal(command(f, 0xd0, NULL, 0, &v, 1), 0);
	assert_int_equal(v & 0x02, 0);
	assert_int_equal(f->resets, 2);
}

/* arch/x86/kernel/reboot.c, BOOT_KBD: wait for IBF clear, then 0xFE to 0x64, ten times. */
static void test_linux_reboot_k(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < 10; i++) {
		unsigned spins = 0;

		while ((status(f) & STR_IBF) && spins < 0x10000)
			spins++;
		assert_int_equal(spins, 0);
		cmd(f, 0xfe);
	}
	assert_int_equal(f->resets, 10);
	assert_int_equal(f->k.resets, 10);
}

static void test_queue_bounded(void **state)
{
	struct fixture *f = *state;
	unsigned n = 0;

	for (unsigned i = 0; i < 40; i++)
		cmd(f, 0xaa);
	while ((status(f) & STR_OBF) && n < 100) {
		assert_int_equal(data(f), 0x55);
		n++;
	}
	assert_int_equal(n, I8042_QUEUE_SIZE);
	/* Widths other than a byte do not fit the one-port ranges. */
	{
		uint16_t w;

		assert_false(bus_read(&f->pio, 0x60, &w, 2));
		assert_false(bus_read(&f->pio, 0x64, &w, 2));
	}
	/* Reset brings back the power-on state. */
	cmd(f, 0xad);
	f->k.dev.ops->reset(&f->k.dev);
	assert_int_equal(f->k.ram[0], 0x65);
	assert_false(status(f) & STR_OBF);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_random_storm(void **state)
{
	struct fixture *f = *state;
	uint64_t s = 0x2545f4914f6cdd1dULL;

	for (unsigned i = 0; i < 20000; i++) {
		uint64_t r = rnd(&s);
		uint8_t v = (uint8_t)(r >> 8);
		uint16_t port = (r & 2) ? 0x64 : 0x60;

		if (r & 1)
			(void)bus_write(&f->pio, port, &v, 1);
		else
			(void)bus_read(&f->pio, port, &v, 1);
	}
	assert_true(f->k.q_count <= I8042_QUEUE_SIZE);
	assert_int_equal(f->resets, f->k.resets);
	assert_int_equal(f->fi.line_calls[GSI], f->fi.raises[GSI] + f->fi.lowers[GSI]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_power_on_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_tests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyboard_irq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyboard_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aux_absent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_linux_reboot_k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_storm, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
