/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The MC146818 CMOS RTC at ports 0x70 (index) / 0x71 (data): time of day from the host's
 * real-time clock (UTC) in BCD or binary and 24- or 12-hour mode per register B, registers
 * A-D, 128 bytes of CMOS RAM with the memory-size bytes firmware and guests read. The guest
 * may set the clock (SET bit): that keeps an offset from host time. No RTC interrupts yet.
 */
#ifndef VMMS_DEVICES_RTC_H
#define VMMS_DEVICES_RTC_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "devices/bus.h"
#include "devices/device.h"

#define RTC_CMOS_SIZE 128

struct rtc {
	struct device dev;
	pthread_mutex_t lock;
	struct bus *pio;
	uint16_t base;
	uint8_t index;                 /* selected register (NMI-disable bit 7 dropped) */
	uint8_t cmos[RTC_CMOS_SIZE];   /* RAM; the time registers 0-9 live in set_time/offset */
	int64_t offset;                /* guest time - host time, seconds */
	uint8_t set_time[10];          /* time registers while register B's SET bit is on */
	time_t last_c_read;            /* for register C's update-ended flag */
	/* Clock source (CLOCK_REALTIME); tests replace it. Returns 0 or -errno. */
	int (*now)(void *opaque, struct timespec *ret);
	void *now_opaque;
};

/* Maps 2 ports at base (0x70) on pio. 0 or -errno. */
int rtc_init(struct rtc *rtc, struct bus *pio, uint16_t base);
void rtc_destroy(struct rtc *rtc);
/* Power-on register values (RAM other than registers A-D is kept, as battery-backed). */
void rtc_reset(struct rtc *rtc);
/* Fills the memory-size bytes as QEMU/SeaBIOS do: 0x15/0x16 base memory in KiB (640),
 * 0x17/0x18 and 0x30/0x31 KiB above 1 MiB (at most 65535), 0x34/0x35 64 KiB units above
 * 16 MiB below 4 GiB, 0x5b-0x5d 64 KiB units above 4 GiB. */
void rtc_set_memory(struct rtc *rtc, uint64_t below_4g, uint64_t above_4g);
/* Reads/writes one CMOS RAM byte from the host (index < 128; others ignored / 0xff). */
void rtc_cmos_set(struct rtc *rtc, unsigned index, uint8_t value);
uint8_t rtc_cmos_get(struct rtc *rtc, unsigned index);

#endif
