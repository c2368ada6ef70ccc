// SPDX-License-Identifier: GPL-2.0-only
/* Logging to stderr, one write(2) per line so lines from threads do not interleave. */
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum log_level max_level = LOG_INFO;
static const char *log_prefix;

void log_set_level(enum log_level level)
{
	max_level = level;
}

void log_set_prefix(const char *prefix)
{
	log_prefix = prefix;
}

int log_full_errno(enum log_level level, int err, const char *fmt, ...)
{
	char line[1024];
	size_t n = 0;
	int saved = errno;
	va_list ap;

	err = err < 0 ? -err : err;
	if (level > max_level)
		goto out;
	if (log_prefix)
		n = (size_t)snprintf(line, sizeof(line), "%s: ", log_prefix);
	va_start(ap, fmt);
	if (n < sizeof(line))
		n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (err && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, ": %s", strerror(err));
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
out:
	errno = saved;
	return -err;
}
