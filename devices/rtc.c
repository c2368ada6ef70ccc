// SPDX-License-Identifier: GPL-2.0-only
/* MC146818 CMOS RTC: host UTC time in BCD/binary, registers A-D, CMOS RAM and memory-size bytes. */
#include "devices/rtc.h"

#include <errno.h>
#include <string.h>

#include "lib/util.h"

#define REG_SEC 0x00
#define REG_MIN 0x02
#define REG_HOUR 0x04
#define REG_WDAY 0x06
#define REG_MDAY 0x07
#define REG_MON 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d
#define REG_CENTURY 0x32

#define A_UIP 0x80
#define B_SET 0x80
#define B_UIE 0x10
#define B_DM 0x04    /* binary (else BCD) */
#define B_24H 0x02
#define C_IRQF 0x80
#define C_UF 0x10
#define D_VRT 0x80

/* UIP is set for the last 244 us before the second rolls over, as on the chip; a guest that
 * polls it always sees it clear again (it never sticks). */
#define UIP_WINDOW_NS 244000L

static int rtc_host_now(void *opaque, struct timespec *ret)
{
	return clock_gettime(CLOCK_REALTIME, ret) < 0 ? -errno : 0;
}

static uint8_t rtc_to_bcd(unsigned v)
{
	return (uint8_t)(((v / 10) % 10) << 4 | (v % 10));
}

static bool rtc_binary(const struct rtc *rtc)
{
	return rtc->cmos[REG_B] & B_DM;
}

static uint8_t rtc_encode(const struct rtc *rtc, unsigned v)
{
	return rtc_binary(rtc) ? (uint8_t)v : rtc_to_bcd(v);
}

/* Guest-written value back to a number; junk BCD gives an out-of-range value, checked later. */
static unsigned rtc_decode(const struct rtc *rtc, uint8_t v)
{
	return rtc_binary(rtc) ? v : (unsigned)(v >> 4) * 10 + (v & 0xf);
}

static uint8_t rtc_encode_hour(const struct rtc *rtc, unsigned hour)
{
	unsigned h12;

	if (rtc->cmos[REG_B] & B_24H)
		return rtc_encode(rtc, hour);
	h12 = hour % 12 ? hour % 12 : 12;
	return (uint8_t)(rtc_encode(rtc, h12) | (hour >= 12 ? 0x80 : 0));
}

static int rtc_decode_hour(const struct rtc *rtc, uint8_t v)
{
	unsigned h;

	if (rtc->cmos[REG_B] & B_24H)
		return (int)rtc_decode(rtc, v);
	h = rtc_decode(rtc, v & 0x7f);
	if (h < 1 || h > 12)
		return -1;
	return (int)(h % 12 + (v & 0x80 ? 12 : 0));
}

/* Guest time now (caller holds the lock). */
static void rtc_guest_time(struct rtc *rtc, struct tm *tm, long *ret_nsec)
{
	struct timespec ts = { 0 };
	time_t t;

	(void)rtc->now(rtc->now_opaque, &ts);
	t = (time_t)((int64_t)ts.tv_sec + rtc->offset);
	if (!gmtime_r(&t, tm))
		memset(tm, 0, sizeof(*tm));
	if (ret_nsec)
		*ret_nsec = ts.tv_nsec;
}

/* The time and century registers encoded as the guest reads them now. */
static void rtc_time_regs(struct rtc *rtc, uint8_t regs[10], uint8_t *ret_century)
{
	struct tm tm;
	unsigned year;

	rtc_guest_time(rtc, &tm, NULL);
	year = (unsigned)(tm.tm_year + 1900);
	regs[REG_SEC] = rtc_encode(rtc, (unsigned)tm.tm_sec);
	regs[REG_MIN] = rtc_encode(rtc, (unsigned)tm.tm_min);
	regs[REG_HOUR] = rtc_encode_hour(rtc, (unsigned)tm.tm_hour);
	regs[REG_WDAY] = rtc_encode(rtc, (unsigned)tm.tm_wday + 1);
	regs[REG_MDAY] = rtc_encode(rtc, (unsigned)tm.tm_mday);
	regs[REG_MON] = rtc_encode(rtc, (unsigned)tm.tm_mon + 1);
	regs[REG_YEAR] = rtc_encode(rtc, year % 100);
	regs[1] = rtc->cmos[1]; /* alarms are plain RAM */
	regs[3] = rtc->cmos[3];
	regs[5] = rtc->cmos[5];
	*ret_century = rtc_encode(rtc, (year / 100) % 100);
}

/* The guest cleared SET: its registers become the new time, kept as an offset from host
 * time. Values are hostile: anything out of range leaves the clock alone. */
static void rtc_commit_time(struct rtc *rtc)
{
	struct timespec ts = { 0 };
	struct tm tm = { 0 };
	unsigned century = rtc_decode(rtc, rtc->cmos[REG_CENTURY]);
	int hour = rtc_decode_hour(rtc, rtc->set_time[REG_HOUR]);
	time_t t;

	tm.tm_sec = (int)rtc_decode(rtc, rtc->set_time[REG_SEC]);
	tm.tm_min = (int)rtc_decode(rtc, rtc->set_time[REG_MIN]);
	tm.tm_hour = hour;
	tm.tm_mday = (int)rtc_decode(rtc, rtc->set_time[REG_MDAY]);
	tm.tm_mon = (int)rtc_decode(rtc, rtc->set_time[REG_MON]) - 1;
	if (century < 19 || century > 99)
		century = 20;
	tm.tm_year = (int)(century * 100 + rtc_decode(rtc, rtc->set_time[REG_YEAR]) % 100) - 1900;
	if (tm.tm_sec > 59 || tm.tm_min > 59 || hour < 0 || hour > 23 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    rtc_decode(rtc, rtc->set_time[REG_YEAR]) > 99)
		return;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return;
	(void)rtc->now(rtc->now_opaque, &ts);
	rtc->offset = (int64_t)t - (int64_t)ts.tv_sec;
}

static uint8_t rtc_reg_read(struct rtc *rtc, unsigned reg)
{
	uint8_t regs[10], century, v;
	struct tm tm;
	long nsec;
	time_t now;

	if (reg < 10 || reg == REG_CENTURY) {
		if (rtc->cmos[REG_B] & B_SET)
			return reg < 10 ? rtc->set_time[reg] : rtc->cmos[REG_CENTURY];
		rtc_time_regs(rtc, regs, &century);
		return reg < 10 ? regs[reg] : century;
	}
	switch (reg) {
	case REG_A:
		v = rtc->cmos[REG_A] & 0x7f;
		if (!(rtc->cmos[REG_B] & B_SET)) {
			rtc_guest_time(rtc, &tm, &nsec);
			if (nsec >= 1000000000L - UIP_WINDOW_NS)
				v |= A_UIP;
		}
		return v;
	case REG_C:
		/* Update-ended flag: a second has passed since the last read. No interrupt is
		 * raised (no timer here); the flags are read-to-clear. */
		rtc_guest_time(rtc, &tm, NULL);
		now = timegm(&tm);
		v = 0;
		if (now != rtc->last_c_read && !(rtc->cmos[REG_B] & B_SET))
			v |= C_UF;
		if (v & rtc->cmos[REG_B] & 0x70)
			v |= C_IRQF;
		rtc->last_c_read = now;
		return v;
	case REG_D:
		return D_VRT;
	default:
		return rtc->cmos[reg];
	}
}

static void rtc_reg_write(struct rtc *rtc, unsigned reg, uint8_t v)
{
	uint8_t century;

	if (reg < 10) {
		if (rtc->cmos[REG_B] & B_SET)
			rtc->set_time[reg] = v;
		else if (reg == 1 || reg == 3 || reg == 5)
			rtc->cmos[reg] = v; /* alarms */
		/* Time writes without SET are dropped: the clock runs from host time. */
		return;
	}
	switch (reg) {
	case REG_A:
		rtc->cmos[REG_A] = v & 0x7f; /* UIP is read-only */
		break;
	case REG_B:
		if ((v & B_SET) && !(rtc->cmos[REG_B] & B_SET)) {
			/* Freeze: the registers hold the current time until the guest changes them. */
			rtc_time_regs(rtc, rtc->set_time, &century);
			rtc->cmos[REG_CENTURY] = century;
			v &= (uint8_t)~B_UIE;
		}
		if (!(v & B_SET) && (rtc->cmos[REG_B] & B_SET))
			rtc_commit_time(rtc);
		rtc->cmos[REG_B] = v;
		break;
	case REG_C:
	case REG_D:
		break; /* read-only */
	default:
		rtc->cmos[reg] = v;
		break;
	}
}

/* Port 0: index (bit 7 is the NMI mask on a PC: ignored). Port 1: data. Wider accesses are
 * consecutive byte accesses. */
static void rtc_bus_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct rtc *rtc = dev;
	uint8_t *d = data;

	pthread_mutex_lock(&rtc->lock);
	for (unsigned i = 0; i < len; i++)
		d[i] = offset + i == 1 ? rtc_reg_read(rtc, rtc->index) : 0xff;
	pthread_mutex_unlock(&rtc->lock);
}

static void rtc_bus_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct rtc *rtc = dev;
	const uint8_t *d = data;

	pthread_mutex_lock(&rtc->lock);
	for (unsigned i = 0; i < len; i++) {
		if (offset + i == 0)
			rtc->index = d[i] & 0x7f;
		else if (offset + i == 1)
			rtc_reg_write(rtc, rtc->index, d[i]);
	}
	pthread_mutex_unlock(&rtc->lock);
}

static const struct bus_ops rtc_bus_ops = {
	.read = rtc_bus_read,
	.write = rtc_bus_write,
};

void rtc_reset(struct rtc *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	rtc->cmos[REG_A] = 0x26;  /* 32.768 kHz time base, 1024 Hz rate */
	rtc->cmos[REG_B] = B_24H; /* BCD, 24-hour, no interrupts */
	rtc->index = 0;
	pthread_mutex_unlock(&rtc->lock);
}

void rtc_cmos_set(struct rtc *rtc, unsigned index, uint8_t value)
{
	if (index >= RTC_CMOS_SIZE)
		return;
	pthread_mutex_lock(&rtc->lock);
	rtc->cmos[index] = value;
	pthread_mutex_unlock(&rtc->lock);
}

uint8_t rtc_cmos_get(struct rtc *rtc, unsigned index)
{
	uint8_t v;

	if (index >= RTC_CMOS_SIZE)
		return 0xff;
	pthread_mutex_lock(&rtc->lock);
	v = rtc->cmos[index];
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

void rtc_set_memory(struct rtc *rtc, uint64_t below_4g, uint64_t above_4g)
{
	uint64_t v;

	pthread_mutex_lock(&rtc->lock);
	v = MIN(below_4g / KiB, 640);
	rtc->cmos[0x15] = (uint8_t)v;
	rtc->cmos[0x16] = (uint8_t)(v >> 8);
	v = below_4g > MiB ? MIN((below_4g - MiB) / KiB, 65535) : 0;
	rtc->cmos[0x17] = rtc->cmos[0x30] = (uint8_t)v;
	rtc->cmos[0x18] = rtc->cmos[0x31] = (uint8_t)(v >> 8);
	v = below_4g > 16 * MiB ? MIN((below_4g - 16 * MiB) / (64 * KiB), 65535) : 0;
	rtc->cmos[0x34] = (uint8_t)v;
	rtc->cmos[0x35] = (uint8_t)(v >> 8);
	v = MIN(above_4g / (64 * KiB), 0xffffff);
	rtc->cmos[0x5b] = (uint8_t)v;
	rtc->cmos[0x5c] = (uint8_t)(v >> 8);
	rtc->cmos[0x5d] = (uint8_t)(v >> 16);
	pthread_mutex_unlock(&rtc->lock);
}

static void rtc_dev_reset(struct device *dev)
{
	rtc_reset(container_of(dev, struct rtc, dev));
}

static void rtc_dev_destroy(struct device *dev)
{
	rtc_destroy(container_of(dev, struct rtc, dev));
}

static const struct device_ops rtc_device_ops = {
	.name = "rtc",
	.reset = rtc_dev_reset,
	.destroy = rtc_dev_destroy,
};

int rtc_init(struct rtc *rtc, struct bus *pio, uint16_t base)
{
	int r;

	memset(rtc, 0, sizeof(*rtc));
	rtc->dev = (struct device){ .ops = &rtc_device_ops, .id = "rtc" };
	rtc->base = base;
	rtc->now = rtc_host_now;
	r = -pthread_mutex_init(&rtc->lock, NULL);
	if (r < 0)
		return r;
	rtc_reset(rtc);
	r = bus_map(pio, base, 2, &rtc_bus_ops, rtc);
	if (r < 0) {
		pthread_mutex_destroy(&rtc->lock);
		return r;
	}
	rtc->pio = pio;
	return 0;
}

void rtc_destroy(struct rtc *rtc)
{
	if (!rtc || !rtc->pio)
		return;
	(void)bus_unmap(rtc->pio, rtc->base, rtc);
	pthread_mutex_destroy(&rtc->lock);
	rtc->pio = NULL;
}
