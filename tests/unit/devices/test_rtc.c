// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of the CMOS RTC: BCD/binary/12h formats, UIP, consistent readouts, setting the clock, CMOS RAM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#include "devices/rtc.h"
#include "lib/util.h"

struct fixture {
	struct bus pio;
	struct rtc rtc;
	struct timespec clock;
	long step_ns; /* the fake clock advances this much on every read */
	unsigned clock_reads;
};

static int fake_now(void *opaque, struct timespec *ret)
{
	struct fixture *f = opaque;

	*ret = f->clock;
	f->clock_reads++;
	f->clock.tv_nsec += f->step_ns;
	while (f->clock.tv_nsec >= 1000000000L) {
		f->clock.tv_nsec -= 1000000000L;
		f->clock.tv_sec++;
	}
	return 0;
}

static void set_clock(struct fixture *f, int y, int mon, int d, int h, int mi, int s, long ns)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s };

	f->clock.tv_sec = timegm(&tm);
	f->clock.tv_nsec = ns;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(bus_init(&f->pio, "pio"), 0);
	assert_int_equal(rtc_init(&f->rtc, &f->pio, 0x70), 0);
	f->rtc.now = fake_now;
	f->rtc.now_opaque = f;
	set_clock(f, 2024, 2, 29, 13, 45, 7, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	f->rtc.dev.ops->destroy(&f->rtc.dev);
	assert_int_equal(f->pio.nr, 0);
	bus_destroy(&f->pio);
	free(f);
	return 0;
}

static uint8_t cmos_read(struct fixture *f, uint8_t idx)
{
	uint8_t v = 0;

	assert_true(bus_write(&f->pio, 0x70, &idx, 1));
	assert_true(bus_read(&f->pio, 0x71, &v, 1));
	return v;
}

static void cmos_write(struct fixture *f, uint8_t idx, uint8_t v)
{
	assert_true(bus_write(&f->pio, 0x70, &idx, 1));
	assert_true(bus_write(&f->pio, 0x71, &v, 1));
}

static void test_bcd_24h_default(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(cmos_read(f, 0x0b), 0x02);
	assert_int_equal(cmos_read(f, 0x00), 0x07);
	assert_int_equal(cmos_read(f, 0x02), 0x45);
	assert_int_equal(cmos_read(f, 0x04), 0x13);
	assert_int_equal(cmos_read(f, 0x06), 0x05); /* Thursday: day 5, Sunday = 1 */
	assert_int_equal(cmos_read(f, 0x07), 0x29);
	assert_int_equal(cmos_read(f, 0x08), 0x02);
	assert_int_equal(cmos_read(f, 0x09), 0x24);
	assert_int_equal(cmos_read(f, 0x32), 0x20);
	/* The NMI-mask bit in the index is ignored. */
	assert_int_equal(cmos_read(f, 0x80 | 0x04), 0x13);
	assert_int_equal(cmos_read(f, 0x0a), 0x26);
	assert_int_equal(cmos_read(f, 0x0d), 0x80);
}

static void test_binary_and_12h(void **state)
{
	struct fixture *f = *state;

	cmos_write(f, 0x0b, 0x06); /* binary, 24h */
	assert_int_equal(cmos_read(f, 0x00), 7);
	assert_int_equal(cmos_read(f, 0x02), 45);
	assert_int_equal(cmos_read(f, 0x04), 13);
	assert_int_equal(cmos_read(f, 0x07), 29);
	assert_int_equal(cmos_read(f, 0x09), 24);
	assert_int_equal(cmos_read(f, 0x32), 20);
	cmos_write(f, 0x0b, 0x04); /* binary, 12h: 1 PM */
	assert_int_equal(cmos_read(f, 0x04), 0x80 | 1);
	cmos_write(f, 0x0b, 0x00); /* BCD, 12h */
	assert_int_equal(cmos_read(f, 0x04), 0x81);
	set_clock(f, 2024, 1, 1, 0, 30, 0, 0);
	assert_int_equal(cmos_read(f, 0x04), 0x12); /* 12 AM */
	set_clock(f, 2024, 1, 1, 12, 30, 0, 0);
	assert_int_equal(cmos_read(f, 0x04), 0x92); /* 12 PM */
	set_clock(f, 2024, 1, 1, 23, 0, 0, 0);
	assert_int_equal(cmos_read(f, 0x04), 0x91);
}

static void test_uip_and_flags(void **state)
{
	struct fixture *f = *state;

	f->clock.tv_nsec = 999900000L; /* inside the last 244 us */
	assert_int_equal(cmos_read(f, 0x0a), 0x80 | 0x26);
	f->clock.tv_nsec = 0;
	assert_int_equal(cmos_read(f, 0x0a), 0x26);
	/* A guest polling UIP sees it clear soon: the clock moves on. */
	f->clock.tv_nsec = 999900000L;
	f->step_ns = 100000;
	{
		unsigned polls = 0;

		while ((cmos_read(f, 0x0a) & 0x80) && polls < 100)
			polls++;
		assert_true(polls < 5);
	}
	f->step_ns = 0;
	/* UIP and register D are read-only. */
	cmos_write(f, 0x0a, 0xff);
	f->clock.tv_nsec = 0;
	assert_int_equal(cmos_read(f, 0x0a), 0x7f);
	cmos_write(f, 0x0d, 0x00);
	assert_int_equal(cmos_read(f, 0x0d), 0x80);
	/* Register C: update-ended after a second passed, read-to-clear. */
	(void)cmos_read(f, 0x0c);
	assert_int_equal(cmos_read(f, 0x0c), 0);
	f->clock.tv_sec++;
	assert_int_equal(cmos_read(f, 0x0c), 0x10);
	assert_int_equal(cmos_read(f, 0x0c), 0);
	/* With UIE enabled the flag also shows IRQF. */
	cmos_write(f, 0x0b, 0x12);
	f->clock.tv_sec++;
	assert_int_equal(cmos_read(f, 0x0c), 0x90);
}

static unsigned bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0xf);
}

/* mc146818_avoid_UIP()/mc146818_get_time() as in Linux 6.1, over a clock that moves 50 ms
 * per access across a century boundary: the result must be one real instant, never a mix. */
static void test_consistent_readout_across_rollover(void **state)
{
	struct fixture *f = *state;
	unsigned tries = 0;
	unsigned sec = 0, min = 0, hour = 0, mday = 0, mon = 0, year = 0, century = 0;

	set_clock(f, 1999, 12, 31, 23, 59, 59, 700000000L);
	f->step_ns = 50000000L;
	for (; tries < 100; tries++) {
		uint8_t s0 = cmos_read(f, 0x00);

		if (cmos_read(f, 0x0a) & 0x80)
			continue;
		if (s0 != cmos_read(f, 0x00))
			continue;
		sec = bcd(s0);
		min = bcd(cmos_read(f, 0x02));
		hour = bcd(cmos_read(f, 0x04));
		mday = bcd(cmos_read(f, 0x07));
		mon = bcd(cmos_read(f, 0x08));
		year = bcd(cmos_read(f, 0x09));
		century = bcd(cmos_read(f, 0x32));
		if (cmos_read(f, 0x0a) & 0x80)
			continue;
		if (s0 != cmos_read(f, 0x00))
			continue;
		break;
	}
	assert_true(tries < 100);
	assert_true(tries >= 1); /* the first pass straddled midnight and was thrown away */
	if (century == 19)
		assert_true(year == 99 && mon == 12 && mday == 31 && hour == 23 && min == 59 && sec == 59);
	else
		assert_true(century == 20 && year == 0 && mon == 1 && mday == 1 && hour == 0 && min == 0);
}

static void test_guest_sets_time(void **state)
{
	struct fixture *f = *state;

	cmos_write(f, 0x0b, 0x82); /* SET, BCD, 24h */
	/* Frozen while SET: time registers read what they held. */
	f->clock.tv_sec += 3;
	assert_int_equal(cmos_read(f, 0x00), 0x07);
	cmos_write(f, 0x00, 0x10);
	cmos_write(f, 0x02, 0x09);
	cmos_write(f, 0x04, 0x08);
	cmos_write(f, 0x07, 0x15);
	cmos_write(f, 0x08, 0x06);
	cmos_write(f, 0x09, 0x30);
	cmos_write(f, 0x32, 0x20);
	assert_int_equal(cmos_read(f, 0x02), 0x09);
	cmos_write(f, 0x0b, 0x02);
	assert_int_equal(cmos_read(f, 0x00), 0x10);
	assert_int_equal(cmos_read(f, 0x04), 0x08);
	assert_int_equal(cmos_read(f, 0x09), 0x30);
	assert_int_equal(cmos_read(f, 0x08), 0x06);
	assert_int_equal(cmos_read(f, 0x06), 0x07); /* 2030-06-15 is a Saturday */
	/* And it keeps running with host time. */
	f->clock.tv_sec += 5;
	assert_int_equal(cmos_read(f, 0x00), 0x15);

	/* Hostile values (hour 0x3f, not BCD for a valid hour) leave the clock alone. */
	cmos_write(f, 0x0b, 0x82);
	cmos_write(f, 0x04, 0x3f);
	cmos_write(f, 0x0b, 0x02);
	assert_int_equal(cmos_read(f, 0x04), 0x08);
	cmos_write(f, 0x0b, 0x82);
	cmos_write(f, 0x08, 0x13); /* month 13 */
	cmos_write(f, 0x0b, 0x02);
	assert_int_equal(cmos_read(f, 0x08), 0x06);

	/* Without SET, writes to the time are dropped; alarms are RAM. */
	cmos_write(f, 0x00, 0x59);
	assert_int_equal(cmos_read(f, 0x00), 0x15);
	cmos_write(f, 0x01, 0x33);
	cmos_write(f, 0x05, 0x44);
	assert_int_equal(cmos_read(f, 0x01), 0x33);
	assert_int_equal(cmos_read(f, 0x05), 0x44);
}

static void test_cmos_ram_bounds(void **state)
{
	struct fixture *f = *state;
	uint16_t w;

	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			cmos_write(f, (uint8_t)i, (uint8_t)(i ^ 0xa5));
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			assert_int_equal(cmos_read(f, (uint8_t)i), (uint8_t)(i ^ 0xa5));
	/* Index 0xff is 0x7f with the NMI bit. */
	assert_int_equal(cmos_read(f, 0xff), 0x7f ^ 0xa5);
	assert_int_equal(rtc_cmos_get(&f->rtc, 0x7f), 0x7f ^ 0xa5);
	assert_int_equal(rtc_cmos_get(&f->rtc, 128), 0xff);
	assert_int_equal(rtc_cmos_get(&f->rtc, 100000), 0xff);
	rtc_cmos_set(&f->rtc, 128, 1); /* ignored */
	rtc_cmos_set(&f->rtc, 0x40, 0x12);
	assert_int_equal(cmos_read(f, 0x40), 0x12);
	/* The index port reads all ones; a word access writes index then data. */
	assert_true(bus_read(&f->pio, 0x70, &w, 1));
	assert_int_equal(w & 0xff, 0xff);
	w = 0x5541;
	assert_true(bus_write(&f->pio, 0x70, &w, 2));
	assert_int_equal(cmos_read(f, 0x41), 0x55);
	assert_false(bus_read(&f->pio, 0x71, &w, 2)); /* past the two ports */
	/* Reset keeps RAM (battery-backed) and restores A/B. */
	cmos_write(f, 0x0b, 0x06);
	f->rtc.dev.ops->reset(&f->rtc.dev);
	assert_int_equal(cmos_read(f, 0x0b), 0x02);
	assert_int_equal(cmos_read(f, 0x40), 0x12);
}

static void test_memory_bytes(void **state)
{
	struct fixture *f = *state;

	rtc_set_memory(&f->rtc, 3 * GiB, 1 * GiB);
	assert_int_equal(cmos_read(f, 0x15) | cmos_read(f, 0x16) << 8, 640);
	assert_int_equal(cmos_read(f, 0x17) | cmos_read(f, 0x18) << 8, 65535);
	assert_int_equal(cmos_read(f, 0x30) | cmos_read(f, 0x31) << 8, 65535);
	assert_int_equal(cmos_read(f, 0x34) | cmos_read(f, 0x35) << 8, (3072 - 16) * 16);
	assert_int_equal(cmos_read(f, 0x5b) | cmos_read(f, 0x5c) << 8 | cmos_read(f, 0x5d) << 16, 16384);

	rtc_set_memory(&f->rtc, 8 * MiB, 0);
	assert_int_equal(cmos_read(f, 0x17) | cmos_read(f, 0x18) << 8, 7 * 1024);
	assert_int_equal(cmos_read(f, 0x34) | cmos_read(f, 0x35) << 8, 0);
	assert_int_equal(cmos_read(f, 0x5b) | cmos_read(f, 0x5c) << 8 | cmos_read(f, 0x5d) << 16, 0);

	rtc_set_memory(&f->rtc, 512 * KiB, (uint64_t)1 << 50); /* saturates */
	assert_int_equal(cmos_read(f, 0x15) | cmos_read(f, 0x16) << 8, 512);
	assert_int_equal(cmos_read(f, 0x17), 0);
	assert_int_equal(cmos_read(f, 0x5b) | cmos_read(f, 0x5c) << 8 | cmos_read(f, 0x5d) << 16, 0xffffff);
}

static void test_host_clock(void **state)
{
	struct fixture *f = *state;
	struct rtc real;
	struct bus pio;
	uint8_t idx = 0x09, y;
	time_t t = time(NULL);
	struct tm tm;

	/* The real clock source: the year register matches the host's UTC year. */
	assert_int_equal(bus_init(&pio, "pio2"), 0);
	assert_int_equal(rtc_init(&real, &pio, 0x70), 0);
	assert_true(bus_write(&pio, 0x70, &idx, 1));
	assert_true(bus_read(&pio, 0x71, &y, 1));
	gmtime_r(&t, &tm);
	assert_int_equal(bcd(y), tm.tm_year % 100);
	/* A second device on the same ports is refused. */
	{
		struct rtc dup;

		assert_int_equal(rtc_init(&dup, &pio, 0x70), -EEXIST);
		assert_int_equal(rtc_init(&dup, &f->pio, 0x70), -EEXIST);
	}
	rtc_destroy(&real);
	bus_destroy(&pio);
}

static void test_random_storm(void **state)
{
	struct fixture *f = *state;
	uint64_t s = 0x853c49e6748fea9bULL;

	for (unsigned i = 0; i < 20000; i++) {
		uint64_t v;

		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		v = s;
		if (s & 1)
			(void)bus_write(&f->pio, 0x70 + ((s >> 1) & 1), &v, 1u << ((s >> 2) % 2));
		else
			(void)bus_read(&f->pio, 0x70 + ((s >> 1) & 1), &v, 1u << ((s >> 2) % 2));
		f->clock.tv_sec += (time_t)((s >> 8) % 3);
	}
	assert_true(f->rtc.index < RTC_CMOS_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bcd_24h_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_and_12h, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uip_and_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_consistent_readout_across_rollover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_sets_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmos_ram_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_storm, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
