// SPDX-License-Identifier: GPL-2.0-only
/* Full-length read/write helpers and bounded whole-file reads. */
#include "lib/util.h"

#include <fcntl.h>
#include <sys/stat.h>

int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_fd_max(int fd, size_t max, void **ret_buf, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;
	size_t len;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	len = (size_t)st.st_size;
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	r = len ? (int)pread(fd, buf, len, 0) : 0;
	if (r < 0 || (size_t)r != len) {
		r = r < 0 ? -errno : -EIO;
		free(buf);
		return r;
	}
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

int read_file_max(const char *path, size_t max, void **ret_buf, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = read_fd_max(fd, max, ret_buf, ret_len);
	close(fd);
	return r;
}
