/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The little runtime every freestanding test guest links: port and MMIO access, COM1
 * output with a tiny printf, PCI config access through 0xCF8 and ECAM, power off and reset.
 * Guests run in 64-bit ring 3 with IOPL=3 and no IDT (see tests/guests/crt0.S).
 */
#ifndef VMMS_TESTS_GUESTS_LIBGUEST_H
#define VMMS_TESTS_GUESTS_LIBGUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/layout.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* --- port I/O (allowed in ring 3 because the worker starts us with IOPL=3) ------------- */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

/* --- MMIO: one volatile access of exactly the named width, never split or merged ------- */
static inline uint8_t mmio_read8(uint64_t addr)
{
	return *(volatile uint8_t *)(uintptr_t)addr;
}

static inline uint16_t mmio_read16(uint64_t addr)
{
	return *(volatile uint16_t *)(uintptr_t)addr;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)(uintptr_t)addr;
}

static inline void mmio_write8(uint64_t addr, uint8_t v)
{
	*(volatile uint8_t *)(uintptr_t)addr = v;
}

static inline void mmio_write16(uint64_t addr, uint16_t v)
{
	*(volatile uint16_t *)(uintptr_t)addr = v;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)addr = v;
}

/* Compiler barrier: x86 keeps stores ordered with stores and loads with loads (TSO). */
static inline void barrier(void)
{
	__asm__ volatile("" : : : "memory");
}

/* Full fence: orders our ring stores before a later load of the device's used index. */
static inline void mb(void)
{
	__asm__ volatile("mfence" : : : "memory");
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" : : : "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* --- string helpers (the compiler may also emit calls to these) ------------------------ */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* --- console on COM1 ------------------------------------------------------------------- */
void guest_putc(char c);
void guest_puts(const char *s);
/* %s %c %d %u %x %p, with 'l'/'ll' and a zero-padded width (%02x, %08lx). */
int guest_vprintf(const char *fmt, va_list ap);
int guest_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "PASS <name>" or "FAIL <name>: <why>" and counts failures. */
void guest_pass(const char *name);
void guest_fail(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "PASS <name>" when ok is true, otherwise "FAIL <name>: <why>"; returns ok. */
int guest_check(int ok, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
unsigned int guest_failures(void);

/* --- machine control ------------------------------------------------------------------- */
void guest_poweroff(void) __attribute__((noreturn));
void guest_reset(void) __attribute__((noreturn));

/* --- PCI configuration space, bus 0 ---------------------------------------------------- */
uint32_t pci_cfg_read32(unsigned int dev, unsigned int fn, unsigned int off);
uint16_t pci_cfg_read16(unsigned int dev, unsigned int fn, unsigned int off);
uint8_t pci_cfg_read8(unsigned int dev, unsigned int fn, unsigned int off);
void pci_cfg_write32(unsigned int dev, unsigned int fn, unsigned int off, uint32_t v);
void pci_cfg_write16(unsigned int dev, unsigned int fn, unsigned int off, uint16_t v);
void pci_cfg_write8(unsigned int dev, unsigned int fn, unsigned int off, uint8_t v);
/* The same registers through the ECAM window (MMIO). */
uint64_t pci_ecam_addr(unsigned int dev, unsigned int fn, unsigned int off);
/* Finds the first function with this vendor:device on bus 0; 0 or -1 (none). */
int pci_find(uint16_t vendor, uint16_t device, unsigned int *ret_dev, unsigned int *ret_fn);
/* A BAR's base address (64-bit BARs combined, flag bits cleared); 0 if not a memory BAR. */
uint64_t pci_bar_addr(unsigned int dev, unsigned int fn, unsigned int bar);

/* Free guest memory a guest may use for rings and buffers (2 MiB - 16 MiB). */
#define GUEST_SCRATCH_BASE 0x200000ULL
#define GUEST_SCRATCH_END  0x1000000ULL

#endif
