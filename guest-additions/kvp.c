// SPDX-License-Identifier: GPL-2.0-only
/* vmms-guestd key-value exchange: guest facts for the host, host-set pairs kept as files. */
#include "guest-additions/guestd_int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "lib/util.h"

#define OS_RELEASE_MAX (64u * 1024)
#define OS_RELEASE_KEYS 64
#define OS_VALUE_MAX 512
#define ADDR_MAX 256

/* Parses os-release (a file in the guest, but still bounded): KEY=value lines, values maybe
 * quoted with simple backslash escapes. Unparseable lines are skipped. */
json_t *guestd_os_release(const char *path)
{
	void *buf = NULL;
	size_t len;
	json_t *o = json_object();
	char *p, *end;

	if (!o)
		return NULL;
	if (path) {
		if (read_file_max(path, OS_RELEASE_MAX, &buf, &len) < 0)
			return o;
	} else if (read_file_max("/etc/os-release", OS_RELEASE_MAX, &buf, &len) < 0 &&
		   read_file_max("/usr/lib/os-release", OS_RELEASE_MAX, &buf, &len) < 0) {
		return o;
	}
	p = buf;
	end = p + len;
	while (p < end && json_object_size(o) < OS_RELEASE_KEYS) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *eq, *v, val[OS_VALUE_MAX + 1];
		char *line_end = nl ? nl : end;
		size_t klen, n = 0;
		bool ok = true;
		char quote = 0;

		eq = memchr(p, '=', (size_t)(line_end - p));
		klen = eq ? (size_t)(eq - p) : 0;
		for (size_t i = 0; i < klen; i++)
			ok &= (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_';
		if (eq && klen > 0 && klen <= 64 && ok) {
			char key[65];

			memcpy(key, p, klen);
			key[klen] = '\0';
			v = eq + 1;
			if (v < line_end && (*v == '"' || *v == '\''))
				quote = *v++;
			while (v < line_end && n < OS_VALUE_MAX) {
				if (quote && *v == quote)
					break;
				if (quote == '"' && *v == '\\' && v + 1 < line_end)
					v++;
				val[n++] = *v++;
			}
			val[n] = '\0';
			if (memchr(val, '\0', n) == NULL) {
				json_t *s = json_stringn(val, n);   /* NULL when not UTF-8: skipped */
				if (s)
					(void)json_object_set_new(o, key, s);
			}
		}
		p = nl ? nl + 1 : end;
	}
	free(buf);
	return o;
}

json_t *guestd_addresses(void)
{
	struct ifaddrs *ifa, *i;
	json_t *a = json_array();
	size_t n = 0;

	if (!a || getifaddrs(&ifa) < 0)
		return a;
	for (i = ifa; i && n < ADDR_MAX; i = i->ifa_next) {
		char text[INET6_ADDRSTRLEN];
		const void *addr;
		int family, prefix = 0;

		if (!i->ifa_addr)
			continue;
		family = i->ifa_addr->sa_family;
		/* Loopback addresses (127/8, ::1) say nothing about the guest; any other address
		 * counts, whatever interface carries it. */
		if (family == AF_INET) {
			addr = &((struct sockaddr_in *)i->ifa_addr)->sin_addr;
			if ((ntohl(((const struct in_addr *)addr)->s_addr) >> 24) == 127)
				continue;
			if (i->ifa_netmask)
				prefix = __builtin_popcount(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
		} else if (family == AF_INET6) {
			addr = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
			if (IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)addr))
				continue;
			if (i->ifa_netmask)
				for (int b = 0; b < 16; b++)
					prefix += __builtin_popcount(((struct sockaddr_in6 *)i->ifa_netmask)->sin6_addr.s6_addr[b]);
		} else {
			continue;
		}
		if (!inet_ntop(family, addr, text, sizeof(text)))
			continue;
		(void)json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:i}", "interface", i->ifa_name,
							 "family", family == AF_INET ? "inet" : "inet6",
							 "address", text, "prefix", prefix));
		n++;
	}
	freeifaddrs(ifa);
	return a;
}

int guestd_op_kvp_get(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	struct utsname u;
	char host[256] = "";
	struct timespec up;

	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	if (uname(&u) < 0)
		memset(&u, 0, sizeof(u));
	clock_gettime(CLOCK_BOOTTIME, &up);
	return guestd_reply(c, id, json_pack("{s:s, s:o, s:{s:s, s:s, s:s, s:s}, s:o, s:I, s:s}",
					     "hostname", host,
					     "os", guestd_os_release(d->cfg.os_release),
					     "kernel", "sysname", u.sysname, "release", u.release,
					     "version", u.version, "machine", u.machine,
					     "addresses", guestd_addresses(),
					     "uptime", (json_int_t)up.tv_sec,
					     "agent_version", GUESTD_VERSION));
}

/* mkdir -p for the KVP directory (a path from our own configuration). */
static int mkdir_parents(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		path[i] = i == n ? '\0' : '/';
	}
	return 0;
}

static unsigned kvp_count(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	unsigned n = 0;

	if (!dp)
		return 0;
	while ((e = readdir(dp)))
		n += guestproto_key_valid(e->d_name);
	closedir(dp);
	return n;
}

int guestd_op_kvp_set(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	json_t *jkey = json_object_get(msg, "key"), *jval = json_object_get(msg, "value");
	const char *key = json_string_value(jkey);
	char path[4200], tmp[4200];
	struct stat st;
	int fd, e;

	/* Key and value come from the host: the key becomes a file name, so only a safe
	 * character set; the value is bounded and must hold no NUL. */
	if (!key || strlen(key) != json_string_length(jkey) || !guestproto_key_valid(key))
		return guestd_reply_err(c, id, EINVAL, "kvp-set: \"key\" must be 1..%d of A-Z a-z 0-9 . _ - "
					"not starting with '.'", GUESTPROTO_KEY_MAX);
	if (!json_is_null(jval) && (!json_is_string(jval) || json_string_length(jval) > GUESTPROTO_VALUE_MAX ||
				    strlen(json_string_value(jval)) != json_string_length(jval)))
		return guestd_reply_err(c, id, EINVAL, "kvp-set: \"value\" must be a string of at most %d bytes "
					"without NUL, or null", GUESTPROTO_VALUE_MAX);
	snprintf(path, sizeof(path), "%s/%s", d->cfg.kvp_dir, key);
	if (json_is_null(jval)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return guestd_reply_err(c, id, errno, "kvp-set: remove %s: %s", path, strerror(errno));
		return guestd_reply(c, id, NULL);
	}
	e = mkdir_parents(d->cfg.kvp_dir);
	if (e < 0)
		return guestd_reply_err(c, id, e, "kvp-set: %s: %s", d->cfg.kvp_dir, strerror(-e));
	if (lstat(path, &st) < 0 && kvp_count(d->cfg.kvp_dir) >= GUESTD_MAX_KVP)
		return guestd_reply_err(c, id, ENOSPC, "kvp-set: %u pairs already set", GUESTD_MAX_KVP);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", d->cfg.kvp_dir, key);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return guestd_reply_err(c, id, errno, "kvp-set: %s: %s", tmp, strerror(errno));
	e = write_full(fd, json_string_value(jval), json_string_length(jval));
	close(fd);
	/* rename: a reader in the guest sees the old or the new value, never half of one. */
	if (e == 0 && rename(tmp, path) < 0)
		e = -errno;
	if (e < 0) {
		unlink(tmp);
		return guestd_reply_err(c, id, e, "kvp-set: %s: %s", path, strerror(-e));
	}
	return guestd_reply(c, id, NULL);
}

int guestd_op_kvp_list(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	json_t *pairs = json_object();
	DIR *dp = opendir(d->cfg.kvp_dir);
	struct dirent *e;
	unsigned n = 0;

	if (!pairs) {
		if (dp)
			closedir(dp);
		return -ENOMEM;
	}
	while (dp && (e = readdir(dp)) && n < GUESTD_MAX_KVP) {
		char path[4200];
		void *buf;
		size_t len;
		json_t *v;
		int fd;

		if (!guestproto_key_valid(e->d_name))
			continue;
		/* The files can be changed by anyone root in the guest: no links, bounded size. */
		snprintf(path, sizeof(path), "%s/%s", d->cfg.kvp_dir, e->d_name);
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (read_fd_max(fd, GUESTPROTO_VALUE_MAX, &buf, &len) == 0) {
			v = json_stringn(buf, len);
			if (v) {
				(void)json_object_set_new(pairs, e->d_name, v);
				n++;
			}
			free(buf);
		}
		close(fd);
	}
	if (dp)
		closedir(dp);
	return guestd_reply(c, id, json_pack("{s:o}", "pairs", pairs));
}
