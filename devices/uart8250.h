/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A 16550A UART (8 registers on the PIO bus, e.g. COM1 at 0x3f8, IRQ 4): divisor latches,
 * 16-byte RX FIFO with trigger levels, IIR priorities, loopback, level-triggered interrupt.
 * Transmitted bytes go out one by one through a callback as the guest writes them (nothing
 * is buffered, so console output before a power-off is never lost); received bytes come in
 * through uart8250_receive() from the main thread.
 */
#ifndef VMMS_DEVICES_UART8250_H
#define VMMS_DEVICES_UART8250_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/irq.h"

#define UART8250_FIFO_SIZE 16

/* Called for transmitted bytes (len is 1 today), with the UART's lock held so output keeps
 * the guest's order: it must not call back into the UART. It may block (stdout, a socket). */
typedef void uart8250_tx_fn(void *opaque, const uint8_t *buf, size_t len);

struct uart8250 {
	struct device dev;
	pthread_mutex_t lock; /* vCPU register accesses vs. the main thread's receive */
	struct bus *pio;
	uint16_t base;
	struct hv_irq *irq;
	unsigned gsi;
	uart8250_tx_fn *tx;
	void *opaque;

	/* Registers (guarded by lock). */
	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
	uint8_t dll, dlm;
	bool thr_ipending;   /* THRE interrupt pending (cleared by reading IIR or writing THR) */
	uint8_t rx[UART8250_FIFO_SIZE];
	unsigned rx_head, rx_count;
	int level;           /* level last driven on gsi */
	bool rx_starved;     /* a receive came up short: tell rx_ready when room appears */
	void (*rx_ready)(void *opaque);
	uint64_t tx_bytes, rx_dropped; /* statistics */
};

/* Maps the UART's 8 ports at base on pio. tx may be NULL (output discarded). 0 or -errno. */
int uart8250_init(struct uart8250 *u, const char *id, struct bus *pio, uint16_t base,
		  struct hv_irq *irq, unsigned gsi, uart8250_tx_fn *tx, void *opaque);
/* Unmaps and releases (also reachable as u->dev.ops->destroy). */
void uart8250_destroy(struct uart8250 *u);
/* Power-on state (registers cleared, FIFO emptied, line lowered). */
void uart8250_reset(struct uart8250 *u);

/* Input from the host: queues as many bytes as fit in the RX FIFO (1 byte when the guest has
 * FIFOs off, none in loopback) and returns how many; the caller keeps the rest and retries
 * when uart8250_can_receive() says there is room (e.g. on its next poll). Thread-safe. */
size_t uart8250_receive(struct uart8250 *u, const uint8_t *buf, size_t len);
bool uart8250_can_receive(struct uart8250 *u);
/* Optional: fn(opaque) is called (from a vCPU thread, UART lock held, so it must only signal,
 * e.g. write an eventfd) when the guest frees FIFO space after a receive came up short. */
void uart8250_set_rx_ready(struct uart8250 *u, void (*fn)(void *opaque));

#endif
