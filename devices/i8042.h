/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The i8042 keyboard controller at ports 0x60 (data) and 0x64 (status/command), as much as
 * Linux needs: self test, interface tests, the command byte, port enable/disable, a keyboard
 * that acknowledges commands, no AUX device, and the reset line (command 0xFE, or an output
 * port write with bit 0 clear), which is how `reboot=k` resets the machine.
 */
#ifndef VMMS_DEVICES_I8042_H
#define VMMS_DEVICES_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"
#include "devices/device.h"
#include "hv/irq.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_QUEUE_SIZE 16

struct i8042 {
	struct device dev;
	pthread_mutex_t lock;
	struct bus *pio;
	struct hv_irq *irq;
	unsigned gsi;          /* keyboard IRQ (1) */
	void (*reset)(void *opaque);
	void *opaque;

	/* Controller state (guarded by lock). */
	uint8_t ram[32];       /* ram[0] is the command byte */
	uint8_t status;        /* SYS and A2 bits; OBF/AUXDATA come from the queue */
	uint8_t outport;
	uint8_t pending_cmd;   /* controller command waiting for its data byte, or 0 */
	uint8_t kbd_cmd;       /* keyboard command waiting for its parameter, or 0 */
	uint8_t queue[I8042_QUEUE_SIZE];
	bool queue_aux[I8042_QUEUE_SIZE];
	unsigned q_head, q_count;
	int level;
	uint64_t resets;       /* reset requests seen (statistics, tests) */
};

/* Maps 0x60 and 0x64 on pio; reset(opaque) is called, without the controller's lock, when the
 * guest pulses the reset line. 0 or -errno. */
int i8042_init(struct i8042 *k, struct bus *pio, struct hv_irq *irq, unsigned gsi,
	       void (*reset)(void *opaque), void *opaque);
void i8042_destroy(struct i8042 *k);
void i8042_reset(struct i8042 *k);

#endif
