// SPDX-License-Identifier: GPL-2.0-only
/* vmmsd.conf parser: one key=value a line, # comments, unknown keys are errors naming the line. */
#include "parent/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/domxml.h"
#include "lib/log.h"
#include "lib/util.h"
#include "parent/console.h"

void vmmsd_config_defaults(struct vmmsd_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/vmms");
	snprintf(c->runtime_dir, sizeof(c->runtime_dir), "/run/vmms");
	snprintf(c->socket_group, sizeof(c->socket_group), "vmms");
	snprintf(c->schema, sizeof(c->schema), "%s", DOMXML_DEFAULT_SCHEMA);
	c->worker_uid_min = 200000;
	c->worker_uid_max = 265535;
	c->max_clients = 64;
	c->max_line = 1u << 20;
	c->client_queue_max = 4u << 20;
	c->log_level = LOG_INFO;
	c->console_log_max = CONSOLE_LOG_MAX_DEFAULT;
	c->console_log_keep = CONSOLE_LOG_KEEP_DEFAULT;
}

static int num(const char *v, unsigned long long lo, unsigned long long hi, unsigned long long *ret)
{
	char *end;
	unsigned long long x;

	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || x < lo || x > hi)
		return -EINVAL;
	*ret = x;
	return 0;
}

/* The file is trusted less than the code: every value is range-checked. */
static int set_key(struct vmmsd_config *c, const char *k, const char *v, char *why, size_t whylen)
{
	unsigned long long x;

	if (strcmp(k, "state_dir") == 0 || strcmp(k, "runtime_dir") == 0 || strcmp(k, "domain_schema") == 0 ||
	    strcmp(k, "worker_path") == 0) {
		char *dst = k[0] == 's' ? c->state_dir : k[0] == 'r' ? c->runtime_dir : k[0] == 'w' ? c->worker_path : c->schema;

		if (v[0] != '/' || strlen(v) >= PATH_MAX) {
			snprintf(why, whylen, "%s must be an absolute path", k);
			return -EINVAL;
		}
		snprintf(dst, PATH_MAX, "%s", v);
	} else if (strcmp(k, "socket_group") == 0) {
		if (strlen(v) >= sizeof(c->socket_group)) {
			snprintf(why, whylen, "socket_group is too long");
			return -EINVAL;
		}
		snprintf(c->socket_group, sizeof(c->socket_group), "%s", v);
	} else if (strcmp(k, "worker_uid_min") == 0 || strcmp(k, "worker_uid_max") == 0) {
		if (num(v, 1, 0xfffffffeULL, &x) < 0) {
			snprintf(why, whylen, "%s must be a uid from 1 to 4294967294", k);
			return -EINVAL;
		}
		if (strcmp(k, "worker_uid_min") == 0)
			c->worker_uid_min = (uid_t)x;
		else
			c->worker_uid_max = (uid_t)x;
	} else if (strcmp(k, "max_clients") == 0) {
		if (num(v, 1, 4096, &x) < 0) {
			snprintf(why, whylen, "max_clients must be from 1 to 4096");
			return -EINVAL;
		}
		c->max_clients = (unsigned)x;
	} else if (strcmp(k, "max_line") == 0) {
		if (num(v, 1024, 16u << 20, &x) < 0) {
			snprintf(why, whylen, "max_line must be from 1024 to 16777216");
			return -EINVAL;
		}
		c->max_line = (size_t)x;
	} else if (strcmp(k, "client_queue_max") == 0) {
		if (num(v, 64u << 10, 256u << 20, &x) < 0) {
			snprintf(why, whylen, "client_queue_max must be from 65536 to 268435456");
			return -EINVAL;
		}
		c->client_queue_max = (size_t)x;
	} else if (strcmp(k, "console_log_max") == 0) {
		if (num(v, 4u << 10, 1ULL << 30, &x) < 0) {
			snprintf(why, whylen, "console_log_max must be from 4096 to 1073741824 (bytes)");
			return -EINVAL;
		}
		c->console_log_max = (size_t)x;
	} else if (strcmp(k, "console_log_keep") == 0) {
		if (num(v, 0, CONSOLE_LOG_KEEP_MAX, &x) < 0) {
			snprintf(why, whylen, "console_log_keep must be from 0 to %d", CONSOLE_LOG_KEEP_MAX);
			return -EINVAL;
		}
		c->console_log_keep = (unsigned)x;
	} else if (strcmp(k, "log_level") == 0) {
		if (strcmp(v, "err") == 0)
			c->log_level = LOG_ERR;
		else if (strcmp(v, "warning") == 0)
			c->log_level = LOG_WARNING;
		else if (strcmp(v, "info") == 0)
			c->log_level = LOG_INFO;
		else if (strcmp(v, "debug") == 0)
			c->log_level = LOG_DEBUG;
		else {
			snprintf(why, whylen, "log_level must be err, warning, info or debug");
			return -EINVAL;
		}
	} else {
		snprintf(why, whylen, "unknown key '%.64s'", k);
		return -EINVAL;
	}
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int vmmsd_config_parse(struct vmmsd_config *c, const char *name, const char *text, char *err, size_t errlen)
{
	char *copy = strdup(text), *save = NULL, *line, *p;
	unsigned lineno = 0;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	p = copy;
	while ((line = strsep(&p, "\n"))) {
		char *eq, *k, *v, why[160];

		(void)save;
		lineno++;
		line = trim(line);
		if (!*line || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%u: expected key=value", name, lineno);
			r = -EINVAL;
			break;
		}
		*eq = '\0';
		k = trim(line);
		v = trim(eq + 1);
		if (set_key(c, k, v, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%u: %s", name, lineno, why);
			r = -EINVAL;
			break;
		}
	}
	if (r == 0 && c->worker_uid_min > c->worker_uid_max) {
		snprintf(err, errlen, "%s: worker_uid_min is above worker_uid_max", name);
		r = -EINVAL;
	}
	free(copy);
	return r;
}

int vmmsd_config_load(struct vmmsd_config *c, const char *path, char *err, size_t errlen)
{
	void *buf;
	size_t len;
	char *text;
	int r;

	r = read_file_max(path, VMMSD_CONFIG_MAX, &buf, &len);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, r == -EFBIG ? "larger than 64 KiB" : strerror(-r));
		return r;
	}
	text = realloc(buf, len + 1);
	if (!text) {
		free(buf);
		return -ENOMEM;
	}
	text[len] = '\0';
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		free(text);
		return -EINVAL;
	}
	r = vmmsd_config_parse(c, path, text, err, errlen);
	free(text);
	return r;
}
