/* SPDX-License-Identifier: GPL-2.0-only */
/* Small helpers shared by every part of vmms: array sizes, cleanup attributes, checked arithmetic. */
#ifndef VMMS_LIB_UTIL_H
#define VMMS_LIB_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a) - 1)) == 0)
#define UNUSED __attribute__((unused))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#define KiB (1024ULL)
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

/* true when [base, base+len) does not wrap and lies inside [0, limit). */
static inline bool range_within(uint64_t base, uint64_t len, uint64_t limit)
{
	return len <= limit && base <= limit - len;
}

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) { if (*fd >= 0) { int e = errno; close(*fd); errno = e; } }
#define _cleanup_free_ __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))

/* Read/write exactly len bytes, retrying on EINTR and short transfers. 0 or -errno. */
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
/* Read a whole file (at most max bytes) into a malloc'ed buffer. 0 or -errno (-EFBIG when over max). */
int read_file_max(const char *path, size_t max, void **ret_buf, size_t *ret_len);
int read_fd_max(int fd, size_t max, void **ret_buf, size_t *ret_len);

#endif
