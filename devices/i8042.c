// SPDX-License-Identifier: GPL-2.0-only
/* i8042 keyboard controller: command set Linux probes, a minimal keyboard, and the reset line. */
#include "devices/i8042.h"

#include <errno.h>
#include <string.h>

#include "lib/util.h"

/* Status register (0x64 read). */
#define STR_OBF 0x01
#define STR_SYS 0x04
#define STR_CMD 0x08     /* last write went to 0x64 */
#define STR_KEYLOCK 0x10 /* set: keyboard not inhibited */
#define STR_AUXDATA 0x20

/* Command byte (controller RAM 0). */
#define CTR_KBDINT 0x01
#define CTR_SYS 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40
#define CTR_DEFAULT (CTR_XLATE | CTR_AUXDIS | CTR_SYS | CTR_KBDINT)

/* Output port: bit 0 is the CPU reset line (0 = reset asserted), bit 1 the A20 gate. */
#define OUT_RESET 0x01
#define OUT_A20 0x02

static void i8042_push(struct i8042 *k, uint8_t v, bool aux)
{
	unsigned slot;

	if (k->q_count == I8042_QUEUE_SIZE)
		return; /* a guest that never reads loses the newest bytes */
	slot = (k->q_head + k->q_count) % I8042_QUEUE_SIZE;
	k->queue[slot] = v;
	k->queue_aux[slot] = aux;
	k->q_count++;
}

/* IRQ 1 follows "keyboard byte waiting and keyboard interrupt enabled" (QEMU does the same);
 * the line is raised and lowered only on a change. There is no AUX IRQ: nothing sends aux
 * data that a driver would wait on. */
static void i8042_update_irq(struct i8042 *k)
{
	int level = k->q_count && !k->queue_aux[k->q_head] && (k->ram[0] & CTR_KBDINT);

	if (level == k->level)
		return;
	k->level = level;
	if (k->irq)
		(void)k->irq->ops->line_set(k->irq, k->gsi, level);
}

/* A byte from the guest to the keyboard: acknowledge what a PS/2 keyboard knows. */
static void i8042_kbd_write(struct i8042 *k, uint8_t v)
{
	if (k->kbd_cmd) {
		/* Parameter of SETLEDS, SETREP or scancode-set select. */
		k->kbd_cmd = 0;
		i8042_push(k, 0xfa, false);
		return;
	}
	switch (v) {
	case 0xed: /* set LEDs */
	case 0xf3: /* typematic rate */
	case 0xf0: /* scancode set */
		k->kbd_cmd = v;
		i8042_push(k, 0xfa, false);
		break;
	case 0xee: /* echo */
		i8042_push(k, 0xee, false);
		break;
	case 0xf2: /* identify: MF2 keyboard (0x41 once the controller translates) */
		i8042_push(k, 0xfa, false);
		i8042_push(k, 0xab, false);
		i8042_push(k, (k->ram[0] & CTR_XLATE) ? 0x41 : 0x83, false);
		break;
	case 0xff: /* reset and self test */
		i8042_push(k, 0xfa, false);
		i8042_push(k, 0xaa, false);
		break;
	default:
		if (v >= 0xf4)
			i8042_push(k, 0xfa, false); /* enable, disable, defaults, resend, ... */
		else
			i8042_push(k, 0xfe, false); /* not a command: resend */
		break;
	}
}

/* Returns true when the guest asked for a reset. */
static bool i8042_command(struct i8042 *k, uint8_t cmd)
{
	k->pending_cmd = 0;
	if (cmd >= 0x20 && cmd <= 0x3f) { /* read controller RAM */
		i8042_push(k, k->ram[cmd & 0x1f], false);
		return false;
	}
	if (cmd >= 0x60 && cmd <= 0x7f) { /* write controller RAM: data byte follows */
		k->pending_cmd = cmd;
		return false;
	}
	if (cmd >= 0xf0) /* pulse output lines low for 6 us: bit 0 is the reset line */
		return !(cmd & 1);

	switch (cmd) {
	case 0xa7: /* disable AUX */
		k->ram[0] |= CTR_AUXDIS;
		break;
	case 0xa8: /* enable AUX */
		k->ram[0] &= (uint8_t)~CTR_AUXDIS;
		break;
	case 0xa9: /* AUX interface test: no AUX port here ("clock line stuck low") */
		i8042_push(k, 0x01, false);
		break;
	case 0xaa: /* controller self test */
		k->status |= STR_SYS;
		i8042_push(k, 0x55, false);
		break;
	case 0xab: /* keyboard interface test: OK */
		i8042_push(k, 0x00, false);
		break;
	case 0xad: /* disable keyboard */
		k->ram[0] |= CTR_KBDDIS;
		break;
	case 0xae: /* enable keyboard */
		k->ram[0] &= (uint8_t)~CTR_KBDDIS;
		break;
	case 0xc0: /* read input port: keyboard not inhibited */
		i8042_push(k, 0x80, false);
		break;
	case 0xd0: /* read output port */
		i8042_push(k, k->outport, false);
		break;
	case 0xd1: /* write output port */
	case 0xd2: /* write keyboard output buffer */
	case 0xd3: /* write AUX output buffer */
	case 0xd4: /* write to AUX device */
		k->pending_cmd = cmd;
		break;
	case 0xdd: /* A20 off */
		k->outport &= (uint8_t)~OUT_A20;
		break;
	case 0xdf: /* A20 on */
		k->outport |= OUT_A20;
		break;
	default:
		break; /* unknown commands are ignored */
	}
	return false;
}

/* The data byte of a pending controller command; returns true for a reset. */
static bool i8042_command_data(struct i8042 *k, uint8_t cmd, uint8_t v)
{
	switch (cmd) {
	case 0xd1:
		k->outport = v;
		return !(v & OUT_RESET);
	case 0xd2:
		i8042_push(k, v, false);
		break;
	case 0xd3:
		/* No AUX port: the byte comes back without the AUX flag, which is how an AT-style
		 * controller answers Linux's AUX loop test (fails fast, no timeout). */
		i8042_push(k, v, false);
		break;
	case 0xd4:
		/* Nothing on the AUX port: the controller answers "resend" as from the device. */
		i8042_push(k, 0xfe, true);
		break;
	default: /* 0x60-0x7f: write controller RAM */
		k->ram[cmd & 0x1f] = v;
		if ((cmd & 0x1f) == 0)
			k->status = (uint8_t)((k->status & ~STR_SYS) | (v & CTR_SYS ? STR_SYS : 0));
		break;
	}
	return false;
}

static uint8_t i8042_status(const struct i8042 *k)
{
	uint8_t s = k->status | STR_KEYLOCK;

	if (k->q_count) {
		s |= STR_OBF;
		if (k->queue_aux[k->q_head])
			s |= STR_AUXDATA;
	}
	return s;
}

static uint8_t i8042_read_data(struct i8042 *k)
{
	uint8_t v;

	if (!k->q_count)
		return k->queue[(k->q_head + I8042_QUEUE_SIZE - 1) % I8042_QUEUE_SIZE]; /* last byte again */
	v = k->queue[k->q_head];
	k->q_head = (k->q_head + 1) % I8042_QUEUE_SIZE;
	k->q_count--;
	return v;
}

/* Port handlers; each range is one port wide, so offset is 0 and len is 1 (wider accesses
 * straddle the range and never reach here). */
static void i8042_data_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct i8042 *k = dev;

	memset(data, 0xff, len);
	pthread_mutex_lock(&k->lock);
	*(uint8_t *)data = i8042_read_data(k);
	i8042_update_irq(k);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_data_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct i8042 *k = dev;
	uint8_t v = *(const uint8_t *)data, cmd;
	bool reset = false;

	pthread_mutex_lock(&k->lock);
	k->status &= (uint8_t)~STR_CMD;
	cmd = k->pending_cmd;
	k->pending_cmd = 0;
	if (cmd)
		reset = i8042_command_data(k, cmd, v);
	else
		i8042_kbd_write(k, v);
	if (reset)
		k->resets++;
	i8042_update_irq(k);
	pthread_mutex_unlock(&k->lock);
	/* Outside the lock: the callback stops the machine and may call back into devices. */
	if (reset && k->reset)
		k->reset(k->opaque);
}

static void i8042_cmd_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct i8042 *k = dev;

	memset(data, 0xff, len);
	pthread_mutex_lock(&k->lock);
	*(uint8_t *)data = i8042_status(k);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_cmd_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct i8042 *k = dev;
	bool reset;

	pthread_mutex_lock(&k->lock);
	k->status |= STR_CMD;
	reset = i8042_command(k, *(const uint8_t *)data);
	if (reset)
		k->resets++;
	i8042_update_irq(k);
	pthread_mutex_unlock(&k->lock);
	if (reset && k->reset)
		k->reset(k->opaque);
}

static const struct bus_ops i8042_data_ops = { .read = i8042_data_read, .write = i8042_data_write };
static const struct bus_ops i8042_cmd_ops = { .read = i8042_cmd_read, .write = i8042_cmd_write };

void i8042_reset(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	memset(k->ram, 0, sizeof(k->ram));
	k->ram[0] = CTR_DEFAULT;
	k->status = STR_SYS; /* as left by firmware after POST */
	k->outport = OUT_RESET | OUT_A20;
	k->pending_cmd = k->kbd_cmd = 0;
	k->q_head = k->q_count = 0;
	i8042_update_irq(k);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_dev_reset(struct device *dev)
{
	i8042_reset(container_of(dev, struct i8042, dev));
}

static void i8042_dev_destroy(struct device *dev)
{
	i8042_destroy(container_of(dev, struct i8042, dev));
}

static const struct device_ops i8042_device_ops = {
	.name = "i8042",
	.reset = i8042_dev_reset,
	.destroy = i8042_dev_destroy,
};

int i8042_init(struct i8042 *k, struct bus *pio, struct hv_irq *irq, unsigned gsi,
	       void (*reset)(void *opaque), void *opaque)
{
	int r;

	memset(k, 0, sizeof(*k));
	k->dev = (struct device){ .ops = &i8042_device_ops, .id = "i8042" };
	k->irq = irq;
	k->gsi = gsi;
	k->reset = reset;
	k->opaque = opaque;
	r = -pthread_mutex_init(&k->lock, NULL);
	if (r < 0)
		return r;
	i8042_reset(k);
	r = bus_map(pio, I8042_DATA_PORT, 1, &i8042_data_ops, k);
	if (r < 0)
		goto err;
	r = bus_map(pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, k);
	if (r < 0) {
		(void)bus_unmap(pio, I8042_DATA_PORT, k);
		goto err;
	}
	k->pio = pio;
	return 0;
err:
	pthread_mutex_destroy(&k->lock);
	return r;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k || !k->pio)
		return;
	(void)bus_unmap(k->pio, I8042_CMD_PORT, k);
	(void)bus_unmap(k->pio, I8042_DATA_PORT, k);
	pthread_mutex_destroy(&k->lock);
	k->pio = NULL;
}
