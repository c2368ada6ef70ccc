// SPDX-License-Identifier: GPL-2.0-only
/* vmms-guestd file system ops: freeze/thaw for backups, time sync, file copy from the host. */
#include "guest-additions/guestd_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#define MOUNTS_MAX (1u << 20)
#define TIME_SEC_MAX (1ll << 40)

/* /proc files report size 0: read until EOF, at most max bytes, NUL-terminated. */
static int read_proc_file(const char *path, size_t max, char **ret)
{
	size_t len = 0, cap = 16384;
	char *buf = malloc(cap + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;

	if (!buf || fd < 0) {
		e = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *p;
			if (cap >= max) {
				e = -EFBIG;
				goto out;
			}
			cap = MIN(cap * 2, max);
			p = realloc(buf, cap + 1);
			if (!p) {
				e = -ENOMEM;
				goto out;
			}
			buf = p;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = buf;
	buf = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return e;
}

/* Undoes the \ooo escapes the kernel writes for blanks in mount table fields, in place. */
static void unescape_octal(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Writable file systems on block devices, in mount order: a new array of mountpoints. */
static json_t *freezable_mounts(const char *mounts_file)
{
	json_t *mnts = json_array(), *sources = json_array();
	char *text = NULL, *line, *save = NULL;

	if (!mnts || !sources || read_proc_file(mounts_file, MOUNTS_MAX, &text) < 0) {
		json_decref(sources);
		return mnts;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *src, *mnt, *type, *opts, *f = NULL;
		bool seen = false;
		size_t i;
		json_t *v;

		src = strtok_r(line, " ", &f);
		mnt = strtok_r(NULL, " ", &f);
		type = strtok_r(NULL, " ", &f);
		opts = strtok_r(NULL, " ", &f);
		if (!src || !mnt || !type || !opts)
			continue;
		if (strncmp(src, "/dev/", 5) != 0 || strncmp(opts, "rw", 2) != 0 ||
		    (opts[2] != ',' && opts[2] != '\0'))
			continue;
		unescape_octal(src);
		unescape_octal(mnt);
		/* One freeze per file system: bind mounts of the same device share it. */
		json_array_foreach(sources, i, v)
			seen |= strcmp(json_string_value(v), src) == 0;
		if (seen || json_array_size(mnts) >= GUESTD_MAX_FROZEN)
			continue;
		(void)json_array_append_new(sources, json_string(src));
		(void)json_array_append_new(mnts, json_string(mnt));
	}
	free(text);
	json_decref(sources);
	return mnts;
}

unsigned guestd_thaw_all(struct guestd *d)
{
	unsigned n = d->nfrozen;

	while (d->nfrozen > 0) {
		char *m = d->frozen[--d->nfrozen];
		int e = d->sys->freeze(d->cfg.sys_ctx, m, false);
		if (e < 0)
			log_warning_errno(e, "thaw %s", m);
		free(m);
	}
	d->freezer = NULL;
	d->thaw_at_ms = 0;
	return n;
}

int guestd_op_fsfreeze(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	json_t *want = json_object_get(msg, "mountpoints"), *jt = json_object_get(msg, "timeout");
	json_t *all, *list, *v, *frozen;
	json_int_t timeout = GUESTD_FREEZE_DEFAULT_S;
	size_t i;
	int e;

	if (jt) {
		timeout = json_is_integer(jt) ? json_integer_value(jt) : -1;
		if (timeout < 1 || timeout > GUESTD_FREEZE_MAX_S)
			return guestd_reply_err(c, id, EINVAL, "fsfreeze: \"timeout\" must be 1..%d seconds",
						GUESTD_FREEZE_MAX_S);
	}
	if (d->nfrozen)
		return guestd_reply_err(c, id, EBUSY, "fsfreeze: %u file systems are already frozen", d->nfrozen);
	all = freezable_mounts(d->cfg.mounts_file);
	if (!all)
		return -ENOMEM;
	if (want) {
		/* Mountpoints from the host: each must be one of the freezable ones. */
		if (!json_is_array(want) || json_array_size(want) == 0 ||
		    json_array_size(want) > GUESTD_MAX_FROZEN) {
			json_decref(all);
			return guestd_reply_err(c, id, EINVAL, "fsfreeze: \"mountpoints\" must be 1..%d paths",
						GUESTD_MAX_FROZEN);
		}
		json_array_foreach(want, i, v) {
			bool found = false;
			size_t k;
			json_t *m;

			json_array_foreach(all, k, m)
				found |= json_is_string(v) && json_equal(v, m);
			if (!found) {
				json_decref(all);
				return guestd_reply_err(c, id, EINVAL, "fsfreeze: %.256s is not a writable "
							"block-device file system", json_is_string(v) ?
							json_string_value(v) : "(not a string)");
			}
		}
		list = want;
	} else {
		list = all;
	}
	frozen = json_array();
	json_array_foreach(list, i, v) {
		const char *m = json_string_value(v);

		/* A duplicate in the host's list would freeze twice (EBUSY): skip it. */
		bool dup = false;
		for (unsigned k = 0; k < d->nfrozen; k++)
			dup |= strcmp(d->frozen[k], m) == 0;
		if (dup)
			continue;
		e = d->sys->freeze(d->cfg.sys_ctx, m, true);
		if (e < 0) {
			unsigned n = guestd_thaw_all(d);
			int r = guestd_reply_err(c, id, e, "fsfreeze %s: %s (thawed the %u frozen before)",
						 m, strerror(-e), n);
			json_decref(all);
			json_decref(frozen);
			return r;
		}
		d->frozen[d->nfrozen] = strdup(m);
		if (!d->frozen[d->nfrozen]) {
			(void)d->sys->freeze(d->cfg.sys_ctx, m, false);
			continue;
		}
		d->nfrozen++;
		(void)json_array_append(frozen, v);
	}
	json_decref(all);
	if (d->nfrozen) {
		d->freezer = c;
		d->thaw_at_ms = guestd_now_ms() + timeout * 1000;
	}
	return guestd_reply(c, id, json_pack("{s:o, s:I}", "frozen", frozen, "timeout", timeout));
}

int guestd_op_fsthaw(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	return guestd_reply(c, id, json_pack("{s:i}", "thawed", (int)guestd_thaw_all(d)));
}

int guestd_op_time_sync(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	json_t *js = json_object_get(msg, "sec"), *jn = json_object_get(msg, "nsec");
	struct timespec ts, before;
	json_int_t delta;
	int e;

	if (!json_is_integer(js) || json_integer_value(js) < 0 || json_integer_value(js) > TIME_SEC_MAX ||
	    (jn && (!json_is_integer(jn) || json_integer_value(jn) < 0 ||
		    json_integer_value(jn) > 999999999)))
		return guestd_reply_err(c, id, EINVAL, "time-sync: needs \"sec\" (0..2^40) and \"nsec\" (0..999999999)");
	ts.tv_sec = (time_t)json_integer_value(js);
	ts.tv_nsec = jn ? (long)json_integer_value(jn) : 0;
	clock_gettime(CLOCK_REALTIME, &before);
	e = d->sys->set_time(d->cfg.sys_ctx, &ts);
	if (e < 0)
		return guestd_reply_err(c, id, e, "time-sync: %s", strerror(-e));
	delta = ((json_int_t)ts.tv_sec - before.tv_sec) * 1000000000 + (ts.tv_nsec - before.tv_nsec);
	return guestd_reply(c, id, json_pack("{s:I}", "adjusted_ns", delta));
}

static struct guestd_file *file_find(struct guestd_client *c, uint64_t id)
{
	for (size_t i = 0; i < GUESTD_MAX_FILES; i++)
		if (c->files[i] && c->files[i]->id == id)
			return c->files[i];
	return NULL;
}

static void file_free(struct guestd_client *c, struct guestd_file *f, bool unlink_tmp)
{
	for (size_t i = 0; i < GUESTD_MAX_FILES; i++)
		if (c->files[i] == f)
			c->files[i] = NULL;
	if (f->fd >= 0)
		close(f->fd);
	if (unlink_tmp && f->tmp)
		unlink(f->tmp);
	free(f->path);
	free(f->tmp);
	free(f);
}

void guestd_file_abort_all(struct guestd_client *c)
{
	for (size_t i = 0; i < GUESTD_MAX_FILES; i++)
		if (c->files[i])
			file_free(c, c->files[i], true);
}

/* All bytes are in: mode, fsync, then rename so the path never shows a partial file. */
static int file_finish(struct guestd_client *c, struct guestd_file *f)
{
	int e = 0;

	if (fchmod(f->fd, f->mode) < 0 || fsync(f->fd) < 0)
		e = -errno;
	if (e == 0 && rename(f->tmp, f->path) < 0)
		e = -errno;
	if (e < 0) {
		int64_t id = (int64_t)f->id;
		char path[256];

		snprintf(path, sizeof(path), "%s", f->path);
		file_free(c, f, true);
		return guestd_reply_err(c, id, e, "file-write %s: %s", path, strerror(-e));
	}
	e = guestd_reply(c, (int64_t)f->id, json_pack("{s:I}", "size", (json_int_t)f->written));
	file_free(c, f, false);
	return e;
}

int guestd_op_file_write(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	json_t *jp = json_object_get(msg, "path"), *jm = json_object_get(msg, "mode");
	json_t *js = json_object_get(msg, "size");
	const char *path = json_string_value(jp), *slash;
	struct guestd_file *f;
	size_t slot = GUESTD_MAX_FILES, dlen;
	json_int_t mode = 0644;

	/* path, mode and size are the host's: absolute, bounded, no NUL; size within file_max. */
	if (!path || strlen(path) != json_string_length(jp) || path[0] != '/' || strlen(path) >= 4000 ||
	    path[strlen(path) - 1] == '/')
		return guestd_reply_err(c, id, EINVAL, "file-write: \"path\" must be an absolute file path");
	if (jm) {
		mode = json_is_integer(jm) ? json_integer_value(jm) : -1;
		if (mode < 0 || mode > 07777)
			return guestd_reply_err(c, id, EINVAL, "file-write: \"mode\" must be 0..07777");
	}
	if (!json_is_integer(js) || json_integer_value(js) < 0 ||
	    (uint64_t)json_integer_value(js) > d->cfg.file_max)
		return guestd_reply_err(c, id, EFBIG, "file-write: \"size\" must be 0..%llu bytes",
					(unsigned long long)d->cfg.file_max);
	if (file_find(c, (uint64_t)id))
		return guestd_reply_err(c, id, EEXIST, "file-write: id %lld is already in use", (long long)id);
	for (size_t i = 0; i < GUESTD_MAX_FILES && slot == GUESTD_MAX_FILES; i++)
		if (!c->files[i])
			slot = i;
	if (slot == GUESTD_MAX_FILES)
		return guestd_reply_err(c, id, EAGAIN, "file-write: %u copies already in progress", GUESTD_MAX_FILES);
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->id = (uint64_t)id;
	f->fd = -1;
	f->mode = (unsigned)mode;
	f->size = (uint64_t)json_integer_value(js);
	f->path = strdup(path);
	slash = strrchr(path, '/');
	dlen = (size_t)(slash - path);
	f->tmp = malloc(dlen + 32);
	c->files[slot] = f;
	if (!f->path || !f->tmp) {
		file_free(c, f, false);
		return -ENOMEM;
	}
	/* The temporary file sits beside the target so the final rename stays in one fs. */
	snprintf(f->tmp, dlen + 32, "%.*s/.vmms-copy-XXXXXX", (int)dlen, path);
	f->fd = mkostemp(f->tmp, O_CLOEXEC);
	if (f->fd < 0) {
		int e = errno;
		free(f->tmp);
		f->tmp = NULL;
		file_free(c, f, false);
		return guestd_reply_err(c, id, e, "file-write %s: %s", path, strerror(e));
	}
	if (f->size == 0)
		return file_finish(c, f);
	return 0;
}

int guestd_op_file_data(struct guestd *d, struct guestd_client *c, int64_t id, json_t *msg)
{
	struct guestd_file *f = file_find(c, (uint64_t)id);
	void *data;
	size_t len;
	int e;

	/* Data for a copy that already failed (its reply said so) is dropped. */
	if (!f)
		return 0;
	e = guestproto_msg_data(msg, &data, &len);
	if (e < 0) {
		file_free(c, f, true);
		return guestd_reply_err(c, id, EINVAL, "file-data: \"data\" is not base64");
	}
	if (len > f->size - f->written) {
		free(data);
		file_free(c, f, true);
		return guestd_reply_err(c, id, EFBIG, "file-data: more data than the announced size");
	}
	e = write_full(f->fd, data, len);
	free(data);
	if (e < 0) {
		file_free(c, f, true);
		return guestd_reply_err(c, id, e, "file-data: %s", strerror(-e));
	}
	f->written += len;
	if (f->written == f->size)
		return file_finish(c, f);
	if (json_is_true(json_object_get(msg, "eof"))) {
		unsigned long long got = f->written, want = f->size;

		file_free(c, f, true);
		return guestd_reply_err(c, id, EPIPE, "file-data: ended after %llu of %llu bytes", got, want);
	}
	return 0;
}
