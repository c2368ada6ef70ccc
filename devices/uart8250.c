// SPDX-License-Identifier: GPL-2.0-only
/* 16550A UART register model with RX FIFO, IIR priorities, loopback and a level-triggered IRQ. */
#include "devices/uart8250.h"

#include <errno.h>
#include <linux/serial_reg.h>
#include <string.h>

#include "lib/util.h"

#define UART_NR_PORTS 8
#define UART_MSR_LINES (UART_MSR_DCD | UART_MSR_RI | UART_MSR_DSR | UART_MSR_CTS)
#define UART_MSR_DELTAS (UART_MSR_DDCD | UART_MSR_TERI | UART_MSR_DDSR | UART_MSR_DCTS)

static bool uart_fifo_on(const struct uart8250 *u)
{
	return u->fcr & UART_FCR_ENABLE_FIFO;
}

static unsigned uart_rx_capacity(const struct uart8250 *u)
{
	return uart_fifo_on(u) ? UART8250_FIFO_SIZE : 1;
}

static unsigned uart_rx_trigger(const struct uart8250 *u)
{
	static const unsigned levels[4] = { 1, 4, 8, 14 };

	return uart_fifo_on(u) ? levels[(u->fcr & UART_FCR_TRIGGER_MASK) >> 6] : 1;
}

/* The pending interrupt of highest priority, as IIR bits 0-3 (caller holds the lock). With
 * FIFOs on and fewer bytes than the trigger level, data is reported as a character timeout at
 * once: there is no timer here, and Linux handles both alike. */
static uint8_t uart_iir_id(const struct uart8250 *u)
{
	if ((u->ier & UART_IER_RLSI) && (u->lsr & UART_LSR_BRK_ERROR_BITS))
		return UART_IIR_RLSI;
	if ((u->ier & UART_IER_RDI) && u->rx_count)
		return u->rx_count >= uart_rx_trigger(u) ? UART_IIR_RDI : UART_IIR_RX_TIMEOUT;
	if ((u->ier & UART_IER_THRI) && u->thr_ipending)
		return UART_IIR_THRI;
	if ((u->ier & UART_IER_MSI) && (u->msr & UART_MSR_DELTAS))
		return UART_IIR_MSI;
	return UART_IIR_NO_INT;
}

/* Drives the line from the interrupt state, calling the irqchip only on a change. */
static void uart_update_irq(struct uart8250 *u)
{
	int level = uart_iir_id(u) != UART_IIR_NO_INT;

	if (level == u->level)
		return;
	u->level = level;
	if (u->irq)
		(void)u->irq->ops->line_set(u->irq, u->gsi, level);
}

/* Modem input lines: in loopback the outputs feed them, else a modem that is always ready. */
static uint8_t uart_msr_lines(const struct uart8250 *u)
{
	uint8_t m = 0;

	if (!(u->mcr & UART_MCR_LOOP))
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	if (u->mcr & UART_MCR_RTS)
		m |= UART_MSR_CTS;
	if (u->mcr & UART_MCR_DTR)
		m |= UART_MSR_DSR;
	if (u->mcr & UART_MCR_OUT1)
		m |= UART_MSR_RI;
	if (u->mcr & UART_MCR_OUT2)
		m |= UART_MSR_DCD;
	return m;
}

static void uart_update_msr(struct uart8250 *u)
{
	uint8_t old = u->msr & UART_MSR_LINES, now = uart_msr_lines(u), diff = old ^ now;
	uint8_t delta = 0;

	if (diff & UART_MSR_CTS)
		delta |= UART_MSR_DCTS;
	if (diff & UART_MSR_DSR)
		delta |= UART_MSR_DDSR;
	if (diff & UART_MSR_DCD)
		delta |= UART_MSR_DDCD;
	if ((old & UART_MSR_RI) && !(now & UART_MSR_RI)) /* trailing edge of ring */
		delta |= UART_MSR_TERI;
	u->msr = (uint8_t)((u->msr & UART_MSR_DELTAS) | delta | now);
}

static void uart_rx_clear(struct uart8250 *u)
{
	u->rx_head = u->rx_count = 0;
}

/* One byte into the RX FIFO; false when full (caller holds the lock). */
static bool uart_rx_push(struct uart8250 *u, uint8_t b)
{
	if (u->rx_count >= uart_rx_capacity(u))
		return false;
	u->rx[(u->rx_head + u->rx_count) % UART8250_FIFO_SIZE] = b;
	u->rx_count++;
	return true;
}

static void uart_transmit(struct uart8250 *u, uint8_t b)
{
	if (u->mcr & UART_MCR_LOOP) {
		/* Loopback: the byte comes back in; a full FIFO is an overrun. */
		if (!uart_rx_push(u, b))
			u->lsr |= UART_LSR_OE;
	} else {
		u->tx_bytes++;
		if (u->tx)
			u->tx(u->opaque, &b, 1);
	}
	/* The byte left the holding register at once: it is empty again. */
	u->thr_ipending = true;
}

static uint8_t uart_reg_read(struct uart8250 *u, unsigned reg)
{
	bool dlab = u->lcr & UART_LCR_DLAB;
	uint8_t v = 0;

	switch (reg) {
	case UART_RX:
		if (dlab)
			return u->dll;
		if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART8250_FIFO_SIZE;
			u->rx_count--;
			if (u->rx_starved && u->rx_ready) {
				u->rx_starved = false;
				u->rx_ready(u->opaque);
			}
		}
		return v;
	case UART_IER:
		return dlab ? u->dlm : u->ier;
	case UART_IIR:
		v = uart_iir_id(u);
		/* Reading IIR acknowledges a THRE interrupt it reports. */
		if (v == UART_IIR_THRI)
			u->thr_ipending = false;
		return (uint8_t)(v | (uart_fifo_on(u) ? 0xc0 : 0));
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		v = (uint8_t)(u->lsr | UART_LSR_THRE | UART_LSR_TEMT | (u->rx_count ? UART_LSR_DR : 0));
		u->lsr &= (uint8_t)~(UART_LSR_BRK_ERROR_BITS | UART_LSR_FIFOE); /* cleared by reading */
		return v;
	case UART_MSR:
		v = u->msr;
		u->msr &= (uint8_t)~UART_MSR_DELTAS;
		return v;
	default: /* UART_SCR */
		return u->scr;
	}
}

static void uart_reg_write(struct uart8250 *u, unsigned reg, uint8_t v)
{
	bool dlab = u->lcr & UART_LCR_DLAB;
	uint8_t changed;

	switch (reg) {
	case UART_TX:
		if (dlab)
			u->dll = v;
		else
			uart_transmit(u, v);
		break;
	case UART_IER:
		if (dlab) {
			u->dlm = v;
			break;
		}
		changed = (u->ier ^ v) & 0x0f;
		u->ier = v & 0x0f; /* bits 4-7 do not exist on a 16550A (Linux probes this) */
		/* Enabling THRE interrupts while the holding register is empty raises one at once;
		 * Linux's startup test depends on it. */
		if (changed & UART_IER_THRI)
			u->thr_ipending = u->ier & UART_IER_THRI;
		break;
	case UART_FCR:
		/* Toggling FIFO enable clears both FIFOs, as on the chip. */
		if ((v ^ u->fcr) & UART_FCR_ENABLE_FIFO)
			uart_rx_clear(u);
		if (v & UART_FCR_CLEAR_RCVR)
			uart_rx_clear(u);
		u->fcr = (v & UART_FCR_ENABLE_FIFO) ? (v & (UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_MASK | UART_FCR_DMA_SELECT)) : 0;
		break;
	case UART_LCR:
		u->lcr = v;
		break;
	case UART_MCR:
		u->mcr = v & 0x1f;
		uart_update_msr(u);
		break;
	case UART_LSR:
	case UART_MSR:
		break; /* read-only (factory test writes are ignored) */
	default:
		u->scr = v;
		break;
	}
}

/* Bus handlers. A wider access is a run of byte accesses to consecutive ports, as on ISA;
 * the bus keeps every access inside the 8 ports. */
static void uart_bus_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct uart8250 *u = dev;
	uint8_t *d = data;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < len; i++)
		d[i] = offset + i < UART_NR_PORTS ? uart_reg_read(u, (unsigned)(offset + i)) : 0xff;
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static void uart_bus_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct uart8250 *u = dev;
	const uint8_t *d = data;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < len; i++)
		if (offset + i < UART_NR_PORTS)
			uart_reg_write(u, (unsigned)(offset + i), d[i]);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static const struct bus_ops uart_bus_ops = {
	.read = uart_bus_read,
	.write = uart_bus_write,
};

size_t uart8250_receive(struct uart8250 *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&u->lock);
	/* In loopback the receiver is cut off from the outside line. */
	if (!(u->mcr & UART_MCR_LOOP))
		while (n < len && uart_rx_push(u, buf[n]))
			n++;
	if (n < len) {
		u->rx_starved = true;
		u->rx_dropped += len - n;
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

bool uart8250_can_receive(struct uart8250 *u)
{
	bool ok;

	pthread_mutex_lock(&u->lock);
	ok = !(u->mcr & UART_MCR_LOOP) && u->rx_count < uart_rx_capacity(u);
	pthread_mutex_unlock(&u->lock);
	return ok;
}

void uart8250_set_rx_ready(struct uart8250 *u, void (*fn)(void *opaque))
{
	pthread_mutex_lock(&u->lock);
	u->rx_ready = fn;
	pthread_mutex_unlock(&u->lock);
}

void uart8250_reset(struct uart8250 *u)
{
	pthread_mutex_lock(&u->lock);
	u->ier = u->lcr = u->lsr = u->scr = u->fcr = 0;
	u->mcr = UART_MCR_OUT2;
	u->msr = uart_msr_lines(u);
	u->dll = 12; /* 9600 baud */
	u->dlm = 0;
	u->thr_ipending = false;
	uart_rx_clear(u);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static void uart_dev_reset(struct device *dev)
{
	uart8250_reset(container_of(dev, struct uart8250, dev));
}

static void uart_dev_destroy(struct device *dev)
{
	uart8250_destroy(container_of(dev, struct uart8250, dev));
}

static const struct device_ops uart_device_ops = {
	.name = "8250",
	.reset = uart_dev_reset,
	.destroy = uart_dev_destroy,
};

int uart8250_init(struct uart8250 *u, const char *id, struct bus *pio, uint16_t base,
		  struct hv_irq *irq, unsigned gsi, uart8250_tx_fn *tx, void *opaque)
{
	int r;

	memset(u, 0, sizeof(*u));
	u->dev = (struct device){ .ops = &uart_device_ops, .id = id };
	u->pio = pio;
	u->base = base;
	u->irq = irq;
	u->gsi = gsi;
	u->tx = tx;
	u->opaque = opaque;
	r = -pthread_mutex_init(&u->lock, NULL);
	if (r < 0)
		return r;
	uart8250_reset(u);
	r = bus_map(pio, base, UART_NR_PORTS, &uart_bus_ops, u);
	if (r < 0) {
		pthread_mutex_destroy(&u->lock);
		u->pio = NULL;
	}
	return r;
}

void uart8250_destroy(struct uart8250 *u)
{
	if (!u || !u->pio)
		return;
	(void)bus_unmap(u->pio, u->base, u);
	pthread_mutex_destroy(&u->lock);
	u->pio = NULL;
}
