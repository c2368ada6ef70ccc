// SPDX-License-Identifier: GPL-2.0-only
/* The runtime shared by every test guest: string helpers, COM1 printf, PCI config access. */
#include "tests/guests/libguest.h"

#define COM1_THR 0
#define COM1_LSR 5
#define LSR_THRE 0x20
/* Bound on THRE polls per byte: a broken UART model must not hang the guest forever. */
#define COM1_THRE_POLLS 100000

#define PCI_CONF_ADDR LAYOUT_PORT_PCI_CONF
#define PCI_CONF_DATA (LAYOUT_PORT_PCI_CONF + 4)

static unsigned int failures;

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d < s) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++) {
		if (*x != *y)
			return *x - *y;
	}
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static void com1_raw(char c)
{
	unsigned int i;

	for (i = 0; i < COM1_THRE_POLLS; i++) {
		if (inb(LAYOUT_PORT_COM1 + COM1_LSR) & LSR_THRE)
			break;
	}
	outb(LAYOUT_PORT_COM1 + COM1_THR, (uint8_t)c);
}

void guest_putc(char c)
{
	if (c == '\n')
		com1_raw('\r');
	com1_raw(c);
}

void guest_puts(const char *s)
{
	while (*s)
		guest_putc(*s++);
}

static int put_num(unsigned long long v, unsigned int base, int neg, unsigned int width,
		   char pad)
{
	char buf[24];
	unsigned int n = 0, len;
	int out = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && n < sizeof(buf));
	len = n + (neg ? 1 : 0);
	if (neg && pad == '0') {
		guest_putc('-');
		out++;
	}
	for (; len < width; len++, out++)
		guest_putc(pad);
	if (neg && pad != '0') {
		guest_putc('-');
		out++;
	}
	while (n) {
		guest_putc(buf[--n]);
		out++;
	}
	return out;
}

int guest_vprintf(const char *fmt, va_list ap)
{
	int out = 0;

	for (; *fmt; fmt++) {
		unsigned int width = 0, longs = 0;
		char pad = ' ';
		unsigned long long u;
		long long s;

		if (*fmt != '%') {
			guest_putc(*fmt);
			out++;
			continue;
		}
		fmt++;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned int)(*fmt++ - '0');
		while (*fmt == 'l') {
			longs++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
			s = longs ? va_arg(ap, long long) : va_arg(ap, int);
			u = s < 0 ? 0ULL - (unsigned long long)s : (unsigned long long)s;
			out += put_num(u, 10, s < 0, width, pad);
			break;
		case 'u':
		case 'x':
			u = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned int);
			out += put_num(u, *fmt == 'u' ? 10 : 16, 0, width, pad);
			break;
		case 'p':
			guest_puts("0x");
			out += 2 + put_num((uintptr_t)va_arg(ap, void *), 16, 0, width, pad);
			break;
		case 'c':
			guest_putc((char)va_arg(ap, int));
			out++;
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);

			if (!str)
				str = "(null)";
			guest_puts(str);
			out += (int)strlen(str);
			break;
		}
		case '%':
			guest_putc('%');
			out++;
			break;
		case '\0':
			return out;
		default:
			guest_putc('%');
			guest_putc(*fmt);
			out += 2;
			break;
		}
	}
	return out;
}

int guest_printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = guest_vprintf(fmt, ap);
	va_end(ap);
	return n;
}

void guest_pass(const char *name)
{
	guest_printf("PASS %s\n", name);
}

void guest_fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	failures++;
	guest_printf("FAIL %s: ", name);
	va_start(ap, fmt);
	guest_vprintf(fmt, ap);
	va_end(ap);
	guest_putc('\n');
}

int guest_check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		guest_pass(name);
		return 1;
	}
	failures++;
	guest_printf("FAIL %s: ", name);
	va_start(ap, fmt);
	guest_vprintf(fmt, ap);
	va_end(ap);
	guest_putc('\n');
	return 0;
}

unsigned int guest_failures(void)
{
	return failures;
}

void guest_poweroff(void)
{
	outw(LAYOUT_PORT_PM1A_CNT, (LAYOUT_SLP_TYP_S5 << 10) | (1 << 13));
	/* Still running: power off is broken. ud2 with no IDT is a triple fault, which the
	 * runner sees as "crashed" instead of a clean exit. */
	for (;;)
		__asm__ volatile("ud2");
}

void guest_reset(void)
{
	outb(LAYOUT_PORT_RESET, 1);
	for (;;)
		__asm__ volatile("ud2");
}

static uint32_t pci_conf_addr(unsigned int dev, unsigned int fn, unsigned int off)
{
	return 0x80000000u | ((dev & 31) << 11) | ((fn & 7) << 8) | (off & 0xfc);
}

uint32_t pci_cfg_read32(unsigned int dev, unsigned int fn, unsigned int off)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(dev, fn, off));
	return inl(PCI_CONF_DATA);
}

uint16_t pci_cfg_read16(unsigned int dev, unsigned int fn, unsigned int off)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(dev, fn, off));
	return inw(PCI_CONF_DATA + (off & 2));
}

uint8_t pci_cfg_read8(unsigned int dev, unsigned int fn, unsigned int off)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(dev, fn, off));
	return inb(PCI_CONF_DATA + (off & 3));
}

void pci_cfg_write32(unsigned int dev, unsigned int fn, unsigned int off, uint32_t v)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(dev, fn, off));
	outl(PCI_CONF_DATA, v);
}

void pci_cfg_write16(unsigned int dev, unsigned int fn, unsigned int off, uint16_t v)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(dev, fn, off));
	outw(PCI_CONF_DATA + (off & 2), v);
}

void pci_cfg_write8(unsigned int dev, unsigned int fn, unsigned int off, uint8_t v)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(dev, fn, off));
	outb(PCI_CONF_DATA + (off & 3), v);
}

uint64_t pci_ecam_addr(unsigned int dev, unsigned int fn, unsigned int off)
{
	return LAYOUT_PCI_ECAM + ((uint64_t)(dev & 31) << 15) + ((uint64_t)(fn & 7) << 12) +
	       (off & 0xfff);
}

int pci_find(uint16_t vendor, uint16_t device, unsigned int *ret_dev, unsigned int *ret_fn)
{
	unsigned int dev, fn;

	for (dev = 0; dev < 32; dev++) {
		for (fn = 0; fn < 8; fn++) {
			uint32_t id = pci_cfg_read32(dev, fn, 0);

			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;
				continue;
			}
			if ((id & 0xffff) == vendor && (id >> 16) == device) {
				*ret_dev = dev;
				*ret_fn = fn;
				return 0;
			}
			/* Functions 1-7 exist only behind a multi-function header. */
			if (fn == 0 && !(pci_cfg_read8(dev, 0, 0x0e) & 0x80))
				break;
		}
	}
	return -1;
}

uint64_t pci_bar_addr(unsigned int dev, unsigned int fn, unsigned int bar)
{
	uint32_t lo, hi = 0;

	if (bar > 5)
		return 0;
	lo = pci_cfg_read32(dev, fn, 0x10 + 4 * bar);
	if (lo & 1)
		return 0;
	if (((lo >> 1) & 3) == 2) {
		if (bar == 5)
			return 0;
		hi = pci_cfg_read32(dev, fn, 0x14 + 4 * bar);
	}
	return ((uint64_t)hi << 32) | (lo & ~0xfu);
}
