// SPDX-License-Identifier: GPL-2.0-only
/* Test guest for the 8250 on COM1: scratch register, divisor latch, loopback, LSR/MSR. */
#include "tests/guests/libguest.h"

#define RBR 0 /* read, DLAB=0 */
#define THR 0 /* write, DLAB=0 */
#define DLL 0 /* DLAB=1 */
#define DLM 1 /* DLAB=1 */
#define IER 1
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define LCR_DLAB 0x80
#define LCR_8N1 0x03
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

/* The byte sent in loopback mode: SOH never appears in our text, so the runner can check
 * that looped-back data did not leak to the console. */
#define LOOP_BYTE_A 0x01
#define LOOP_BYTE_B 0x5a

static uint8_t reg_read(unsigned int r)
{
	return inb(LAYOUT_PORT_COM1 + r);
}

static void reg_write(unsigned int r, uint8_t v)
{
	outb(LAYOUT_PORT_COM1 + r, v);
}

static void check_scratch(void)
{
	static const uint8_t vals[] = { 0x00, 0x5a, 0xa5, 0xff, 0x3c };
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(vals); i++) {
		uint8_t got;

		reg_write(SCR, vals[i]);
		got = reg_read(SCR);
		if (got != vals[i]) {
			guest_fail("uart-scratch", "wrote 0x%02x read 0x%02x", vals[i], got);
			return;
		}
	}
	guest_pass("uart-scratch");
}

static void check_divisor(void)
{
	static const uint16_t divs[] = { 0x000c, 0x0180, 0x0001 };
	uint8_t lcr = reg_read(LCR), old_dll, old_dlm;
	unsigned int i;
	int ok = 1;

	reg_write(LCR, lcr | LCR_DLAB);
	if (reg_read(LCR) != (lcr | LCR_DLAB)) {
		guest_fail("uart-divisor", "LCR read back 0x%02x, wrote 0x%02x", reg_read(LCR),
			   lcr | LCR_DLAB);
		reg_write(LCR, lcr);
		return;
	}
	old_dll = reg_read(DLL);
	old_dlm = reg_read(DLM);
	for (i = 0; i < ARRAY_LEN(divs) && ok; i++) {
		uint8_t lo, hi;

		reg_write(DLL, divs[i] & 0xff);
		reg_write(DLM, divs[i] >> 8);
		lo = reg_read(DLL);
		hi = reg_read(DLM);
		if (lo != (divs[i] & 0xff) || hi != (divs[i] >> 8)) {
			reg_write(DLL, old_dll);
			reg_write(DLM, old_dlm);
			reg_write(LCR, lcr);
			guest_fail("uart-divisor", "divisor 0x%04x read back 0x%02x%02x", divs[i], hi,
				   lo);
			return;
		}
	}
	reg_write(DLL, old_dll);
	reg_write(DLM, old_dlm);
	reg_write(LCR, lcr);
	/* With DLAB clear, offset 1 is IER again, not DLM: IER keeps its own value. */
	reg_write(IER, 0x00);
	if (reg_read(IER) != 0x00) {
		guest_fail("uart-divisor", "IER reads 0x%02x after DLAB cleared", reg_read(IER));
		return;
	}
	if (reg_read(LCR) != lcr) {
		guest_fail("uart-divisor", "LCR 0x%02x not restored to 0x%02x", reg_read(LCR), lcr);
		return;
	}
	guest_pass("uart-divisor");
}

static void check_lsr_idle(void)
{
	uint8_t lsr = reg_read(LSR);

	guest_check((lsr & (LSR_THRE | LSR_TEMT)) == (LSR_THRE | LSR_TEMT) && !(lsr & LSR_DR),
		    "uart-lsr", "idle LSR 0x%02x (want THRE|TEMT, no DR)", lsr);
}

/* Waits (bounded) for DR and returns the received byte, or -1. */
static int loop_receive(void)
{
	unsigned int i;

	for (i = 0; i < 100000; i++) {
		if (reg_read(LSR) & LSR_DR)
			return reg_read(RBR);
	}
	return -1;
}

static void check_loopback(void)
{
	uint8_t mcr = reg_read(MCR), msr, lsr;
	int a, b;

	reg_write(MCR, MCR_LOOP);
	/* Drain anything stale so only our bytes count. */
	while ((reg_read(LSR) & LSR_DR) && loop_receive() >= 0)
		;
	reg_write(THR, LOOP_BYTE_A);
	a = loop_receive();
	reg_write(THR, LOOP_BYTE_B);
	b = loop_receive();
	lsr = reg_read(LSR);
	/* In loopback the modem outputs feed the modem inputs: RTS->CTS, DTR->DSR, OUT1->RI,
	 * OUT2->DCD (MSR bits 4-7 from MCR bits 1, 0, 2, 3). */
	reg_write(MCR, MCR_LOOP | 0x0f);
	msr = reg_read(MSR);
	reg_write(MCR, MCR_LOOP | 0x05); /* DTR, OUT1 -> DSR, RI: MSR 0x60 */
	msr = (uint8_t)((msr & 0xf0) | (reg_read(MSR) >> 4));
	reg_write(MCR, mcr);

	if (a != LOOP_BYTE_A || b != LOOP_BYTE_B)
		guest_fail("uart-loopback", "sent 0x%02x 0x%02x, received %d %d", LOOP_BYTE_A,
			   LOOP_BYTE_B, a, b);
	else if (lsr & LSR_DR)
		guest_fail("uart-loopback", "DR still set after reading both bytes (LSR 0x%02x)",
			   lsr);
	else
		guest_pass("uart-loopback");
	guest_check(msr == 0xf6, "uart-loopback-msr",
		    "MSR in loopback 0x%02x (want f0 for MCR=0f, then 6 for MCR=05)", msr);
}

int main(void)
{
	guest_puts("vmms test guest uart: hello from ring 3\n");
	check_lsr_idle();
	check_scratch();
	check_divisor();
	check_loopback();
	guest_puts("vmms test guest uart: output still works after loopback\n");
	guest_printf("DONE uart failures=%u\n", guest_failures());
	return 0;
}
