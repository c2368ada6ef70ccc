// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of the 16550A model: registers, DLAB, FIFO, IIR priorities, IRQ line, Linux's probes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <linux/serial_reg.h>
#include <pthread.h>
#include <string.h>

#include "devices/uart8250.h"
#include "lib/util.h"
#include "tests/unit/support/fake_irq.h"

#define BASE 0x3f8
#define GSI 4

struct fixture {
	struct bus pio;
	struct fake_irq fi;
	struct uart8250 u;
	uint8_t out[4096];
	size_t nout;
	unsigned tx_calls;
	unsigned rx_ready_calls;
};

static void capture_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct fixture *f = opaque;

	f->tx_calls++;
	for (size_t i = 0; i < len && f->nout < sizeof(f->out); i++)
		f->out[f->nout++] = buf[i];
}

static void note_rx_ready(void *opaque)
{
	struct fixture *f = opaque;

	f->rx_ready_calls++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(bus_init(&f->pio, "pio"), 0);
	fake_irq_init(&f->fi);
	assert_int_equal(uart8250_init(&f->u, "com1", &f->pio, BASE, &f->fi.irq, GSI, capture_tx, f), 0);
	uart8250_set_rx_ready(&f->u, note_rx_ready);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	f->u.dev.ops->destroy(&f->u.dev);
	assert_int_equal(f->pio.nr, 0);
	bus_destroy(&f->pio);
	fake_irq_destroy(&f->fi);
	free(f);
	return 0;
}

static uint8_t in(struct fixture *f, unsigned reg)
{
	uint8_t v = 0;

	assert_true(bus_read(&f->pio, BASE + reg, &v, 1));
	return v;
}

static void out(struct fixture *f, unsigned reg, uint8_t v)
{
	assert_true(bus_write(&f->pio, BASE + reg, &v, 1));
}

static int line(struct fixture *f)
{
	return fake_irq_level(&f->fi, GSI);
}

static void test_reset_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in(f, UART_IIR), UART_IIR_NO_INT);
	assert_int_equal(in(f, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(in(f, UART_MSR), UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
	assert_int_equal(in(f, UART_IER), 0);
	assert_int_equal(in(f, UART_LCR), 0);
	assert_int_equal(in(f, UART_MCR), UART_MCR_OUT2);
	assert_int_equal(line(f), 0);
	assert_int_equal(f->fi.line_calls[GSI], 0);
}

static void test_transmit_each_byte(void **state)
{
	struct fixture *f = *state;
	const char *msg = "Linux version 6.1\n";

	for (const char *p = msg; *p; p++)
		out(f, UART_TX, (uint8_t)*p);
	assert_int_equal(f->nout, strlen(msg));
	assert_memory_equal(f->out, msg, strlen(msg));
	/* One callback per byte: nothing waits in a buffer. */
	assert_int_equal(f->tx_calls, strlen(msg));
	assert_int_equal(in(f, UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), UART_LSR_THRE | UART_LSR_TEMT);
}

static void test_dlab(void **state)
{
	struct fixture *f = *state;

	out(f, UART_IER, UART_IER_RDI);
	out(f, UART_LCR, UART_LCR_DLAB | 0x03);
	out(f, UART_DLL, 0x01);
	out(f, UART_DLM, 0x02);
	assert_int_equal(in(f, UART_DLL), 0x01);
	assert_int_equal(in(f, UART_DLM), 0x02);
	assert_int_equal(f->nout, 0); /* a divisor write is not a byte to send */
	out(f, UART_LCR, 0x03);
	assert_int_equal(in(f, UART_IER), UART_IER_RDI);
	assert_int_equal(in(f, UART_LCR), 0x03);
	out(f, UART_TX, 'x');
	assert_int_equal(f->nout, 1);
	out(f, UART_LCR, UART_LCR_DLAB);
	assert_int_equal(in(f, UART_DLL), 0x01);
	assert_int_equal(in(f, UART_DLM), 0x02);
}

static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;

	out(f, UART_FCR, UART_FCR_ENABLE_FIFO);
	out(f, UART_IER, UART_IER_THRI);
	assert_int_equal(line(f), 1);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_THRI);
	/* Reading IIR acknowledged it. */
	assert_int_equal(line(f), 0);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_NO_INT);
	/* Each transmitted byte empties THR again. */
	out(f, UART_TX, 'a');
	assert_int_equal(line(f), 1);
	out(f, UART_TX, 'b');
	assert_int_equal(line(f), 1);
	/* Disabling the interrupt lowers the line. */
	out(f, UART_IER, 0);
	assert_int_equal(line(f), 0);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_NO_INT);
	/* The line moved only on changes. */
	assert_int_equal(f->fi.line_calls[GSI], f->fi.raises[GSI] + f->fi.lowers[GSI]);
	assert_int_equal(f->fi.raises[GSI], 2);
}

static void test_receive_and_rx_interrupt(void **state)
{
	struct fixture *f = *state;

	out(f, UART_FCR, UART_FCR_ENABLE_FIFO);
	assert_int_equal(uart8250_receive(&f->u, (const uint8_t *)"abc", 3), 3);
	assert_int_equal(line(f), 0); /* not enabled yet */
	assert_true(in(f, UART_LSR) & UART_LSR_DR);
	out(f, UART_IER, UART_IER_RDI);
	assert_int_equal(line(f), 1);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_RDI); /* trigger level 1 reached */
	assert_int_equal(line(f), 1);                          /* IIR read does not ack data */
	assert_int_equal(in(f, UART_RX), 'a');
	assert_int_equal(in(f, UART_RX), 'b');
	assert_int_equal(in(f, UART_RX), 'c');
	assert_int_equal(line(f), 0);
	assert_false(in(f, UART_LSR) & UART_LSR_DR);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_NO_INT);
	/* An empty RBR reads without harm. */
	(void)in(f, UART_RX);
	assert_int_equal(line(f), 0);
}

static void test_fifo_overflow_short_count(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[20];

	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)('A' + i);
	out(f, UART_FCR, UART_FCR_ENABLE_FIFO);
	assert_true(uart8250_can_receive(&f->u));
	assert_int_equal(uart8250_receive(&f->u, buf, sizeof(buf)), UART8250_FIFO_SIZE);
	assert_false(uart8250_can_receive(&f->u));
	assert_int_equal(uart8250_receive(&f->u, buf + 16, 4), 0);
	/* No overrun is flagged: the host keeps what did not fit. */
	assert_false(in(f, UART_LSR) & UART_LSR_OE);
	assert_int_equal(f->rx_ready_calls, 0);
	assert_int_equal(in(f, UART_RX), 'A');
	assert_int_equal(f->rx_ready_calls, 1);
	assert_true(uart8250_can_receive(&f->u));
	assert_int_equal(uart8250_receive(&f->u, buf + 16, 4), 1);
	for (unsigned i = 1; i < 17; i++)
		assert_int_equal(in(f, UART_RX), 'A' + i);
	assert_false(in(f, UART_LSR) & UART_LSR_DR);

	/* FIFOs off (16450 mode): a one-byte holding register. */
	out(f, UART_FCR, 0);
	assert_int_equal(uart8250_receive(&f->u, buf, 5), 1);
	assert_int_equal(in(f, UART_IIR), UART_IIR_NO_INT); /* no FIFO bits */
	assert_int_equal(in(f, UART_RX), 'A');
	/* Toggling FIFO enable clears the FIFO. */
	assert_int_equal(uart8250_receive(&f->u, buf, 1), 1);
	out(f, UART_FCR, UART_FCR_ENABLE_FIFO);
	assert_false(in(f, UART_LSR) & UART_LSR_DR);
	/* So does CLEAR_RCVR. */
	assert_int_equal(uart8250_receive(&f->u, buf, 5), 5);
	out(f, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
	assert_false(in(f, UART_LSR) & UART_LSR_DR);
}

static void test_trigger_levels(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[16] = { 0 };

	out(f, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_14);
	out(f, UART_IER, UART_IER_RDI);
	assert_int_equal(uart8250_receive(&f->u, buf, 5), 5);
	/* Below the trigger: reported as a character timeout, still an interrupt. */
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_RX_TIMEOUT);
	assert_int_equal(line(f), 1);
	assert_int_equal(uart8250_receive(&f->u, buf, 9), 9);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_RDI);
	(void)in(f, UART_RX);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_RX_TIMEOUT);

	out(f, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_4 | UART_FCR_CLEAR_RCVR);
	assert_int_equal(uart8250_receive(&f->u, buf, 3), 3);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_RX_TIMEOUT);
	assert_int_equal(uart8250_receive(&f->u, buf, 1), 1);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_RDI);
}

static void test_iir_priorities(void **state)
{
	struct fixture *f = *state;

	out(f, UART_FCR, UART_FCR_ENABLE_FIFO);
	out(f, UART_MCR, UART_MCR_LOOP); /* all modem lines drop: deltas */
	for (unsigned i = 0; i < UART8250_FIFO_SIZE + 1; i++)
		out(f, UART_TX, (uint8_t)i);
	assert_int_equal(f->nout, 0); /* loopback sends nothing out */
	out(f, UART_IER, 0x0f);
	assert_int_equal(line(f), 1);
	/* Overrun (line status) first, cleared by reading LSR. */
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_RLSI);
	assert_int_equal(in(f, UART_LSR), UART_LSR_OE | UART_LSR_DR | UART_LSR_THRE | UART_LSR_TEMT);
	/* Then data. */
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_RDI);
	for (unsigned i = 0; i < UART8250_FIFO_SIZE; i++)
		assert_int_equal(in(f, UART_RX), i);
	/* Then THRE, acknowledged by the IIR read that reports it. */
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_THRI);
	/* Then modem status, cleared by reading MSR. */
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_MSI);
	assert_int_equal(line(f), 1);
	assert_int_equal(in(f, UART_MSR), UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);
	assert_int_equal(in(f, UART_IIR), 0xc0 | UART_IIR_NO_INT);
	assert_int_equal(line(f), 0);
	assert_int_equal(in(f, UART_MSR), 0);
	/* Host input is cut off in loopback. */
	assert_int_equal(uart8250_receive(&f->u, (const uint8_t *)"x", 1), 0);
	assert_false(uart8250_can_receive(&f->u));
	/* Ring trailing edge. */
	out(f, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT1);
	assert_int_equal(in(f, UART_MSR), UART_MSR_RI);
	out(f, UART_MCR, UART_MCR_LOOP);
	assert_int_equal(in(f, UART_MSR), UART_MSR_TERI);
}

/* The probe sequence of Linux's 8250 autoconfig() and autoconfig_16550a() (6.1). */
static void test_linux_autoconfig_finds_16550a(void **state)
{
	struct fixture *f = *state;
	uint8_t save_mcr, status1, status2, scratch;

	/* IER test. */
	out(f, UART_IER, 0);
	assert_int_equal(in(f, UART_IER) & 0x0f, 0);
	out(f, UART_IER, 0x0f);
	assert_int_equal(in(f, UART_IER) & 0x0f, 0x0f);
	out(f, UART_IER, 0);
	/* Loopback test: MSR must show CTS and DCD only. */
	save_mcr = in(f, UART_MCR);
	out(f, UART_MCR, UART_MCR_LOOP | 0x0a);
	status1 = in(f, UART_MSR) & 0xf0;
	out(f, UART_MCR, save_mcr);
	assert_int_equal(status1, 0x90);
	/* FIFO type. */
	out(f, UART_LCR, UART_LCR_CONF_MODE_B);
	out(f, UART_EFR, 0);
	out(f, UART_LCR, 0);
	out(f, UART_FCR, UART_FCR_ENABLE_FIFO);
	scratch = in(f, UART_IIR) >> 6;
	assert_int_equal(scratch, 3); /* -> autoconfig_16550a */
	/* No EFR in either configuration mode (reads through to IIR, never 0). */
	out(f, UART_LCR, UART_LCR_CONF_MODE_A);
	assert_int_not_equal(in(f, UART_EFR), 0);
	out(f, UART_LCR, UART_LCR_CONF_MODE_B);
	assert_int_not_equal(in(f, UART_EFR), 0);
	/* Not a National SuperIO. */
	out(f, UART_LCR, 0);
	status1 = in(f, UART_MCR);
	out(f, UART_LCR, 0xe0);
	status2 = in(f, 0x02);
	if (!((status2 ^ status1) & UART_MCR_LOOP)) {
		out(f, UART_LCR, 0);
		out(f, UART_MCR, status1 ^ UART_MCR_LOOP);
		out(f, UART_LCR, 0xe0);
		status2 = in(f, 0x02);
		out(f, UART_LCR, 0);
		out(f, UART_MCR, status1);
		assert_false((status2 ^ status1) & UART_MCR_LOOP);
	}
	/* Not a 16750. */
	out(f, UART_LCR, 0);
	out(f, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR7_64BYTE);
	status1 = in(f, UART_IIR) >> 5;
	out(f, UART_FCR, UART_FCR_ENABLE_FIFO);
	out(f, UART_LCR, UART_LCR_CONF_MODE_A);
	out(f, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR7_64BYTE);
	status2 = in(f, UART_IIR) >> 5;
	out(f, UART_FCR, UART_FCR_ENABLE_FIFO);
	out(f, UART_LCR, 0);
	assert_int_equal(status1, 6);
	assert_int_not_equal(status2, 7);
	/* Not an XScale (IER bit 6 does not stick). */
	out(f, UART_IER, UART_IER_UUE);
	assert_false(in(f, UART_IER) & UART_IER_UUE);
	/* Nothing was sent out during the probe. */
	assert_int_equal(f->nout, 0);
}

/* serial8250_do_startup's test for UARTs that do not reassert THRE. */
static void test_linux_thre_retest(void **state)
{
	struct fixture *f = *state;
	uint8_t lsr, iir1, iir;

	out(f, UART_FCR, UART_FCR_ENABLE_FIFO);
	lsr = in(f, UART_LSR);
	assert_true(lsr & UART_LSR_THRE);
	out(f, UART_IER, UART_IER_THRI);
	iir1 = in(f, UART_IIR);
	out(f, UART_IER, 0);
	out(f, UART_IER, UART_IER_THRI);
	iir = in(f, UART_IIR);
	out(f, UART_IER, 0);
	assert_false(iir1 & UART_IIR_NO_INT);
	assert_false(iir & UART_IIR_NO_INT); /* no UART_BUG_THRE */
	assert_int_equal(line(f), 0);
}

static void test_scratch_and_readonly(void **state)
{
	struct fixture *f = *state;

	out(f, UART_SCR, 0xa5);
	assert_int_equal(in(f, UART_SCR), 0xa5);
	out(f, UART_LSR, 0xff);
	out(f, UART_MSR, 0xff);
	assert_int_equal(in(f, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(in(f, UART_MSR), UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
	out(f, UART_MCR, 0xff);
	assert_int_equal(in(f, UART_MCR), 0x1f);
	/* Reset brings back the power-on state and lowers the line. */
	out(f, UART_MCR, 0);
	out(f, UART_IER, UART_IER_THRI);
	assert_int_equal(line(f), 1);
	f->u.dev.ops->reset(&f->u.dev);
	assert_int_equal(line(f), 0);
	assert_int_equal(in(f, UART_SCR), 0);
	assert_int_equal(in(f, UART_IER), 0);
}

static void test_wide_accesses(void **state)
{
	struct fixture *f = *state;
	uint16_t w = 'h' | UART_IER_THRI << 8; /* THR then IER */
	uint32_t d;

	assert_true(bus_write(&f->pio, BASE, &w, 2));
	assert_int_equal(f->nout, 1);
	assert_int_equal(f->out[0], 'h');
	assert_int_equal(in(f, UART_IER), UART_IER_THRI);
	assert_true(bus_read(&f->pio, BASE + 4, &d, 4)); /* MCR LSR MSR SCR */
	assert_int_equal(d & 0xff, UART_MCR_OUT2);
	assert_int_equal((d >> 8) & 0xff, UART_LSR_THRE | UART_LSR_TEMT);
	/* Past the 8 ports: not ours. */
	assert_false(bus_read(&f->pio, BASE + 6, &d, 4));
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_random_register_storm(void **state)
{
	struct fixture *f = *state;
	uint64_t s = 88172645463325252ULL;

	for (unsigned i = 0; i < 20000; i++) {
		uint64_t r = rnd(&s);
		unsigned len = 1u << (r % 4), reg = (unsigned)(r >> 8) % 10;
		uint64_t v = rnd(&s);

		if (r & 0x10000)
			(void)bus_write(&f->pio, BASE + reg, &v, len);
		else
			(void)bus_read(&f->pio, BASE + reg, &v, len);
		if ((r & 0x3f0000) == 0)
			(void)uart8250_receive(&f->u, (const uint8_t *)&v, (r >> 24) % 9);
	}
	assert_true(f->u.rx_count <= UART8250_FIFO_SIZE);
	assert_int_equal(f->fi.line_calls[GSI], f->fi.raises[GSI] + f->fi.lowers[GSI]);
	/* The line agrees with IIR. */
	assert_int_equal(line(f), !(in(f, UART_IIR) & UART_IIR_NO_INT));
}

struct feeder {
	struct uart8250 *u;
	unsigned sent;
};

static void *feed(void *arg)
{
	struct feeder *fd = arg;

	while (fd->sent < 5000) {
		uint8_t b = (uint8_t)fd->sent;

		if (uart8250_receive(fd->u, &b, 1) == 1)
			fd->sent++;
		else
			sched_yield();
	}
	return NULL;
}

/* The main thread pushes input while a vCPU thread reads: nothing lost, order kept. */
static void test_concurrent_receive(void **state)
{
	struct fixture *f = *state;
	struct feeder fd = { .u = &f->u };
	pthread_t th;
	unsigned got = 0;

	out(f, UART_FCR, UART_FCR_ENABLE_FIFO);
	assert_int_equal(pthread_create(&th, NULL, feed, &fd), 0);
	while (got < 5000) {
		if (in(f, UART_LSR) & UART_LSR_DR) {
			assert_int_equal(in(f, UART_RX), (uint8_t)got);
			got++;
		} else {
			sched_yield();
		}
	}
	pthread_join(th, NULL);
	assert_int_equal(fd.sent, 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transmit_each_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dlab, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_and_rx_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_overflow_short_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trigger_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iir_priorities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_linux_autoconfig_finds_16550a, setup, teardown),
		cmocka_unit_test_setup_teardown(test_linux_thre_retest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scratch_and_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wide_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_register_storm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_receive, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
