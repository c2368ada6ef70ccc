// SPDX-License-Identifier: GPL-2.0-only
/* Length-framed JSON with SCM_RIGHTS descriptors, and a bounded JSON line reader. */
#include "lib/jsonframe.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/util.h"

int jsonframe_encode(const json_t *msg, char **ret_buf, size_t *ret_len)
{
	char *body, *buf;
	size_t n;

	body = json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!body)
		return -ENOMEM;
	n = strlen(body);
	if (n > JSONFRAME_MAX) {
		free(body);
		return -EMSGSIZE;
	}
	buf = malloc(n + 4);
	if (!buf) {
		free(body);
		return -ENOMEM;
	}
	buf[0] = (char)(n >> 24);
	buf[1] = (char)(n >> 16);
	buf[2] = (char)(n >> 8);
	buf[3] = (char)n;
	memcpy(buf + 4, body, n);
	free(body);
	*ret_buf = buf;
	*ret_len = n + 4;
	return 0;
}

static uint32_t frame_len(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int frame_parse_body(const char *body, size_t n, json_t **ret)
{
	json_t *v;

	/* The body comes from another process: jansson checks UTF-8 and nesting; we refuse
	 * anything after the one value (DISABLE_EOF_CHECK off) and NUL bytes. */
	v = json_loadb(body, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (!v)
		return -EBADMSG;
	*ret = v;
	return 0;
}

int jsonframe_decode(const void *buf, size_t len, json_t **ret, size_t *ret_used)
{
	const unsigned char *p = buf;
	uint32_t n;
	int r;

	if (len < 4)
		return 0;
	n = frame_len(p);
	if (n > JSONFRAME_MAX)
		return -EMSGSIZE;
	if (len - 4 < n)
		return 0;
	r = frame_parse_body((const char *)p + 4, n, ret);
	if (r < 0)
		return r;
	*ret_used = (size_t)n + 4;
	return 1;
}

int jsonframe_send(int sock, const json_t *msg, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * JSONFRAME_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	char *frame;
	size_t len, off;
	int r;

	if (nfds > JSONFRAME_MAX_FDS)
		return -EINVAL;
	r = jsonframe_encode(msg, &frame, &len);
	if (r < 0)
		return r;
	memset(&ctl, 0, sizeof(ctl));
	off = 0;
	while (off < len) {
		struct iovec iov = { .iov_base = frame + off, .iov_len = len - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t w;

		if (off == 0 && nfds > 0) {
			struct cmsghdr *c;

			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		w = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			free(frame);
			return r;
		}
		off += (size_t)w;
	}
	free(frame);
	return 0;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Collect SCM_RIGHTS descriptors; everything beyond what fits is closed, and then -EPROTO. */
static int take_fds(struct msghdr *mh, int *out, size_t *nout)
{
	int r = 0;

	if (mh->msg_flags & MSG_CTRUNC)
		r = -EPROTO;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;
		int *data;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		data = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, data + i, sizeof(fd));
			if (*nout < JSONFRAME_MAX_FDS)
				out[(*nout)++] = fd;
			else {
				close(fd);
				r = -EPROTO;
			}
		}
	}
	return r;
}

int jsonframe_recv(int sock, json_t **ret, int *fds, size_t *ret_nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * JSONFRAME_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	int got[JSONFRAME_MAX_FDS];
	size_t ngot = 0, have = 0;
	unsigned char hdr[4];
	char *body = NULL;
	uint32_t n;
	int r = 0;

	/* Header: descriptors arrive with its first byte. */
	while (have < sizeof(hdr)) {
		struct iovec iov = { .iov_base = hdr + have, .iov_len = sizeof(hdr) - have };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
		ssize_t got_n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		int fr;

		if (got_n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto fail;
		}
		fr = take_fds(&mh, got, &ngot);
		if (fr < 0 && r == 0)
			r = fr;
		if (got_n == 0) {
			if (have == 0 && ngot == 0 && r == 0)
				return 0;
			r = -EPROTO;
			goto fail;
		}
		have += (size_t)got_n;
	}
	if (r < 0)
		goto fail;
	n = frame_len(hdr);
	if (n > JSONFRAME_MAX) {
		r = -EMSGSIZE;
		goto fail;
	}
	body = malloc(n ? n : 1);
	if (!body) {
		r = -ENOMEM;
		goto fail;
	}
	r = read_full(sock, body, n);
	if (r < 0) {
		if (r == -EIO || r == -ENODATA)
			r = -EPROTO;
		goto fail;
	}
	r = frame_parse_body(body, n, ret);
	if (r < 0)
		goto fail;
	free(body);
	if (fds && ret_nfds) {
		memcpy(fds, got, ngot * sizeof(int));
		*ret_nfds = ngot;
	} else {
		close_fds(got, ngot);
		if (ret_nfds)
			*ret_nfds = 0;
	}
	return 1;
fail:
	free(body);
	close_fds(got, ngot);
	return r;
}

void jsonline_init(struct jsonline *jl, size_t max)
{
	memset(jl, 0, sizeof(*jl));
	jl->max = max ? max : JSONLINE_MAX;
}

void jsonline_free(struct jsonline *jl)
{
	if (!jl)
		return;
	free(jl->buf);
	jl->buf = NULL;
	jl->len = jl->cap = jl->scanned = jl->taken = 0;
}

static void jsonline_drop_taken(struct jsonline *jl)
{
	if (!jl->taken)
		return;
	memmove(jl->buf, jl->buf + jl->taken, jl->len - jl->taken);
	jl->len -= jl->taken;
	jl->taken = 0;
	jl->scanned = 0;
}

/* Room for a whole line of max bytes, its newline and a NUL; never more. */
static int jsonline_reserve(struct jsonline *jl, size_t want)
{
	size_t limit = jl->max + 2, cap;
	char *nb;

	if (want > limit)
		want = limit;
	if (jl->cap >= want)
		return 0;
	cap = jl->cap ? jl->cap : 4096;
	while (cap < want)
		cap *= 2;
	if (cap > limit)
		cap = limit;
	nb = realloc(jl->buf, cap);
	if (!nb)
		return -ENOMEM;
	jl->buf = nb;
	jl->cap = cap;
	return 0;
}

static bool jsonline_has_newline(struct jsonline *jl)
{
	return memchr(jl->buf + jl->scanned, '\n', jl->len - jl->scanned) != NULL;
}

int jsonline_feed(struct jsonline *jl, const void *data, size_t len)
{
	const char *last;
	size_t need = jl->len + len + 1, tail;
	int r;

	jsonline_drop_taken(jl);
	need = jl->len + len + 1;
	/* Bound the whole buffer to two lines' worth: callers drain lines between feeds. */
	if (need > 2 * (jl->max + 2))
		return -EMSGSIZE;
	r = jsonline_reserve(jl, need);
	if (r < 0)
		return r;
	if (need > jl->cap) {
		char *nb = realloc(jl->buf, need);

		if (!nb)
			return -ENOMEM;
		jl->buf = nb;
		jl->cap = need;
	}
	memcpy(jl->buf + jl->len, data, len);
	jl->len += len;
	last = memrchr(jl->buf, '\n', jl->len);
	tail = last ? jl->len - (size_t)(last + 1 - jl->buf) : jl->len;
	return tail > jl->max ? -EMSGSIZE : 0;
}

int jsonline_read(struct jsonline *jl, int fd)
{
	ssize_t n;
	int r;

	jsonline_drop_taken(jl);
	if (jl->len > jl->max && !jsonline_has_newline(jl))
		return -EMSGSIZE;
	r = jsonline_reserve(jl, jl->len + 4096 + 1);
	if (r < 0)
		return r;
	if (jl->cap - jl->len <= 1) {
		/* Full of complete lines the caller has not taken yet: let it drain first. */
		return jsonline_has_newline(jl) ? -EAGAIN : -EMSGSIZE;
	}
	do
		n = read(fd, jl->buf + jl->len, jl->cap - jl->len - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	jl->len += (size_t)n;
	if (n > 0 && jl->len > jl->max && !jsonline_has_newline(jl))
		return -EMSGSIZE;
	return (int)MIN((size_t)n, (size_t)INT32_MAX);
}

int jsonline_next(struct jsonline *jl, char **ret_line, size_t *ret_len)
{
	char *nl;
	size_t n;

	jsonline_drop_taken(jl);
	nl = jl->len > jl->scanned ? memchr(jl->buf + jl->scanned, '\n', jl->len - jl->scanned) : NULL;
	if (!nl) {
		jl->scanned = jl->len;
		return jl->len > jl->max ? -EMSGSIZE : 0;
	}
	n = (size_t)(nl - jl->buf);
	if (n > jl->max)
		return -EMSGSIZE;
	jl->taken = n + 1;
	if (n > 0 && jl->buf[n - 1] == '\r')
		n--;
	jl->buf[n] = '\0';
	*ret_line = jl->buf;
	*ret_len = n;
	return 1;
}
