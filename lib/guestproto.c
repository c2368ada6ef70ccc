// SPDX-License-Identifier: GPL-2.0-only
/* Guest additions protocol: framing, base64, request builders and the host-side connect. */
#include "lib/guestproto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/jsonframe.h"
#include "lib/util.h"

#define FRAME_HDR 4u

void guestproto_reader_init(struct guestproto_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void guestproto_reader_free(struct guestproto_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

static int reader_reserve(struct guestproto_reader *r, size_t want)
{
	size_t cap;
	unsigned char *p;

	/* One maximal frame is all a reader ever needs to hold: anything longer is refused by
	 * reader_next before more is read. */
	if (want > FRAME_HDR + GUESTPROTO_MAX_MSG)
		return -ENOBUFS;
	if (want <= r->cap)
		return 0;
	cap = r->cap ? r->cap : 4096;
	while (cap < want)
		cap *= 2;
	cap = MIN(cap, (size_t)FRAME_HDR + GUESTPROTO_MAX_MSG);
	p = realloc(r->buf, cap);
	if (!p)
		return -ENOMEM;
	r->buf = p;
	r->cap = cap;
	return 0;
}

int guestproto_reader_feed(struct guestproto_reader *r, const void *data, size_t len)
{
	int e = reader_reserve(r, r->len + len);

	if (e < 0)
		return e;
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return 0;
}

int guestproto_reader_fill(struct guestproto_reader *r, int fd)
{
	size_t room = FRAME_HDR + GUESTPROTO_MAX_MSG - r->len;
	size_t want = MIN(room, (size_t)64 * 1024);
	ssize_t n;
	int e;

	if (room == 0)
		return -ENOBUFS;
	e = reader_reserve(r, r->len + want);
	if (e < 0)
		return e;
	do
		n = read(fd, r->buf + r->len, want);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	r->len += (size_t)n;
	return (int)n;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parses one frame body from the peer (hostile): jansson checks UTF-8 and nesting depth; we
 * also refuse duplicate keys and anything but an object. */
static int parse_body(const char *body, size_t n, json_t **ret)
{
	json_t *v = json_loadb(body, n, JSON_REJECT_DUPLICATES, NULL);

	if (!v)
		return -EBADMSG;
	if (!json_is_object(v)) {
		json_decref(v);
		return -EBADMSG;
	}
	*ret = v;
	return 0;
}

int guestproto_reader_next(struct guestproto_reader *r, json_t **ret)
{
	uint32_t n;
	size_t used;
	int e;

	if (r->len < FRAME_HDR)
		return 0;
	n = be32(r->buf);
	if (n > GUESTPROTO_MAX_MSG)
		return -EMSGSIZE;
	if (r->len - FRAME_HDR < n)
		return 0;
	e = parse_body((const char *)r->buf + FRAME_HDR, n, ret);
	used = FRAME_HDR + (size_t)n;
	memmove(r->buf, r->buf + used, r->len - used);
	r->len -= used;
	return e < 0 ? e : 1;
}

int guestproto_encode(const json_t *msg, char **ret_buf, size_t *ret_len)
{
	return jsonframe_encode(msg, ret_buf, ret_len);
}

int guestproto_send(int fd, const json_t *msg)
{
	char *buf;
	size_t len, off = 0;
	int e = guestproto_encode(msg, &buf, &len);

	if (e < 0)
		return e;
	while (off < len) {
		ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };
				(void)poll(&p, 1, 1000);
				continue;
			}
			e = -errno;
			break;
		}
		off += (size_t)w;
	}
	free(buf);
	return e;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly len bytes before the deadline (-1: none). 0, 1 at end of stream, -errno. */
static int read_deadline(int fd, void *buf, size_t len, int64_t deadline)
{
	unsigned char *p = buf;

	while (len > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int wait = -1, pr;
		ssize_t n;

		/* A deadline already past still polls once, so timeout 0 means "if ready". */
		if (deadline >= 0)
			wait = (int)MIN(MAX(deadline - now_ms(), (int64_t)0), (int64_t)INT32_MAX);
		pr = poll(&pfd, 1, wait);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pr == 0)
			return -ETIMEDOUT;
		n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return -errno;
		}
		if (n == 0)
			return 1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int guestproto_recv(int fd, int timeout_ms, json_t **ret)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	unsigned char hdr[FRAME_HDR];
	char *body;
	uint32_t n;
	int e;

	e = read_deadline(fd, hdr, 1, deadline);
	if (e == 1)
		return 0;
	if (e < 0)
		return e;
	e = read_deadline(fd, hdr + 1, sizeof(hdr) - 1, deadline);
	if (e != 0)
		return e == 1 ? -EPROTO : e;
	n = be32(hdr);
	if (n > GUESTPROTO_MAX_MSG)
		return -EMSGSIZE;
	body = malloc(n ? n : 1);
	if (!body)
		return -ENOMEM;
	e = read_deadline(fd, body, n, deadline);
	if (e == 0)
		e = parse_body(body, n, ret);
	else if (e == 1)
		e = -EPROTO;
	free(body);
	return e < 0 ? e : 1;
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int guestproto_b64_encode(const void *data, size_t len, char **ret_text)
{
	const unsigned char *p = data;
	size_t out_len, i, o = 0;
	char *t;

	if (len > (SIZE_MAX / 4) * 3 - 3)
		return -EOVERFLOW;
	out_len = (len + 2) / 3 * 4;
	t = malloc(out_len + 1);
	if (!t)
		return -ENOMEM;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		t[o++] = b64_alphabet[v >> 18];
		t[o++] = b64_alphabet[(v >> 12) & 63];
		t[o++] = b64_alphabet[(v >> 6) & 63];
		t[o++] = b64_alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
		t[o++] = b64_alphabet[v >> 18];
		t[o++] = b64_alphabet[(v >> 12) & 63];
		t[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		t[o++] = '=';
	}
	t[o] = '\0';
	*ret_text = t;
	return 0;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes text from the peer: length a multiple of 4, padding only at the end. */
int guestproto_b64_decode(const char *text, size_t text_len, void *out, size_t cap, size_t *ret_len)
{
	unsigned char *o = out;
	size_t n = 0;

	if (text_len % 4)
		return -EINVAL;
	for (size_t i = 0; i < text_len; i += 4) {
		int v[4], pad = 0;
		uint32_t w;

		for (int k = 0; k < 4; k++) {
			char c = text[i + k];
			if (c == '=' && i + 4 == text_len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return -EINVAL;   /* data after '=' */
			v[k] = b64_value(c);
			if (v[k] < 0)
				return -EINVAL;
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		if (n + 3 - (size_t)pad > cap)
			return -ENOBUFS;
		o[n++] = (unsigned char)(w >> 16);
		if (pad < 2)
			o[n++] = (unsigned char)(w >> 8);
		if (pad < 1)
			o[n++] = (unsigned char)w;
	}
	*ret_len = n;
	return 0;
}

bool guestproto_key_valid(const char *key)
{
	size_t n;

	if (!key || key[0] == '\0' || key[0] == '.')
		return false;
	n = strnlen(key, GUESTPROTO_KEY_MAX + 1);
	if (n > GUESTPROTO_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = key[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

json_t *guestproto_req(uint64_t id, const char *op)
{
	if (id > GUESTPROTO_ID_MAX)
		return NULL;
	return json_pack("{s:I, s:s}", "id", (json_int_t)id, "op", op);
}

json_t *guestproto_req_ping(uint64_t id)
{
	return guestproto_req(id, "ping");
}

json_t *guestproto_req_shutdown(uint64_t id, bool reboot)
{
	return guestproto_req(id, reboot ? "reboot" : "shutdown");
}

static json_t *string_array(const char *const *v)
{
	json_t *a = json_array();

	for (size_t i = 0; a && v && v[i]; i++) {
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* Adds a new value to o, consuming it; on failure o is released. */
static json_t *set_new(json_t *o, const char *key, json_t *v)
{
	if (!o)
		return json_decref(v), NULL;
	if (!v || json_object_set_new(o, key, v) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *guestproto_req_exec(uint64_t id, const char *const *argv, const char *const *env,
			    const char *cwd, unsigned timeout_s, bool with_stdin)
{
	json_t *o;

	if (!argv || !argv[0])
		return NULL;
	o = guestproto_req(id, "exec");
	o = set_new(o, "argv", string_array(argv));
	if (env)
		o = set_new(o, "env", string_array(env));
	if (cwd)
		o = set_new(o, "cwd", json_string(cwd));
	if (timeout_s)
		o = set_new(o, "timeout", json_integer(timeout_s));
	return set_new(o, "stdin", json_boolean(with_stdin));
}

json_t *guestproto_req_data(uint64_t op_id, const char *op, const void *data, size_t len, bool eof)
{
	char *text;
	json_t *o;

	if (len > GUESTPROTO_CHUNK)
		return NULL;
	if (guestproto_b64_encode(data, len, &text) < 0)
		return NULL;
	o = guestproto_req(op_id, op);
	o = set_new(o, "data", json_string(text));
	free(text);
	return set_new(o, "eof", json_boolean(eof));
}

json_t *guestproto_req_signal(uint64_t id, uint64_t exec_id, int signo)
{
	json_t *o = guestproto_req(id, "signal");

	if (exec_id > GUESTPROTO_ID_MAX)
		return json_decref(o), NULL;
	o = set_new(o, "exec", json_integer((json_int_t)exec_id));
	return set_new(o, "signal", json_integer(signo));
}

json_t *guestproto_req_kvp_get(uint64_t id)
{
	return guestproto_req(id, "kvp-get");
}

json_t *guestproto_req_kvp_list(uint64_t id)
{
	return guestproto_req(id, "kvp-list");
}

json_t *guestproto_req_kvp_set(uint64_t id, const char *key, const char *value)
{
	json_t *o;

	if (!guestproto_key_valid(key))
		return NULL;
	o = guestproto_req(id, "kvp-set");
	o = set_new(o, "key", json_string(key));
	return set_new(o, "value", value ? json_string(value) : json_null());
}

json_t *guestproto_req_fsfreeze(uint64_t id, const char *const *mountpoints, unsigned timeout_s)
{
	json_t *o = guestproto_req(id, "fsfreeze");

	if (mountpoints)
		o = set_new(o, "mountpoints", string_array(mountpoints));
	if (timeout_s)
		o = set_new(o, "timeout", json_integer(timeout_s));
	return o;
}

json_t *guestproto_req_fsthaw(uint64_t id)
{
	return guestproto_req(id, "fsthaw");
}

json_t *guestproto_req_time_sync(uint64_t id, const struct timespec *realtime)
{
	json_t *o = guestproto_req(id, "time-sync");

	o = set_new(o, "sec", json_integer((json_int_t)realtime->tv_sec));
	return set_new(o, "nsec", json_integer(realtime->tv_nsec));
}

json_t *guestproto_req_file_write(uint64_t id, const char *path, unsigned mode, uint64_t size)
{
	json_t *o;

	if (size > (uint64_t)INT64_MAX)
		return NULL;
	o = guestproto_req(id, "file-write");
	o = set_new(o, "path", json_string(path));
	o = set_new(o, "mode", json_integer(mode & 07777));
	return set_new(o, "size", json_integer((json_int_t)size));
}

int guestproto_connect(const char *vsock_socket, uint32_t port, int timeout_ms, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	char line[64], req[32];
	size_t n = 0;
	int fd, e;

	if (strlen(vsock_socket) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, vsock_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = -errno;
		goto fail;
	}
	snprintf(req, sizeof(req), "CONNECT %u\n", port);
	e = write_full(fd, req, strlen(req));
	if (e < 0)
		goto fail;
	/* The answer line comes from the worker: read it a byte at a time so no byte of the
	 * guest's stream is taken, and bound it. */
	for (;;) {
		if (n == sizeof(line) - 1) {
			e = -EPROTO;
			goto fail;
		}
		e = read_deadline(fd, line + n, 1, deadline);
		if (e == 1)
			e = -ECONNREFUSED;
		if (e < 0)
			goto fail;
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	if (strncmp(line, "OK", 2) != 0 || (line[2] != '\0' && line[2] != ' ')) {
		e = -ECONNREFUSED;
		goto fail;
	}
	*ret_fd = fd;
	return 0;
fail:
	close(fd);
	return e;
}

int guestproto_msg_id(const json_t *msg, uint64_t *ret_id)
{
	json_t *v = json_object_get(msg, "id");
	json_int_t i;

	if (!json_is_integer(v))
		return -EINVAL;
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i > GUESTPROTO_ID_MAX)
		return -EINVAL;
	*ret_id = (uint64_t)i;
	return 0;
}

int guestproto_msg_data(const json_t *msg, void **ret_data, size_t *ret_len)
{
	json_t *v = json_object_get(msg, "data");
	const char *text;
	size_t tlen, n;
	void *buf;
	int e;

	if (!v) {
		buf = malloc(1);
		if (!buf)
			return -ENOMEM;
		*ret_data = buf;
		*ret_len = 0;
		return 0;
	}
	if (!json_is_string(v))
		return -EINVAL;
	text = json_string_value(v);
	tlen = json_string_length(v);
	buf = malloc(tlen / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	e = guestproto_b64_decode(text, tlen, buf, tlen / 4 * 3, &n);
	if (e < 0) {
		free(buf);
		return e;
	}
	*ret_data = buf;
	*ret_len = n;
	return 0;
}

int guestproto_reply_status(const json_t *reply, const char **ret_msg)
{
	json_t *ok = json_object_get(reply, "ok");
	json_t *err = json_object_get(reply, "errno");

	if (ret_msg)
		*ret_msg = json_string_value(json_object_get(reply, "error"));
	if (json_is_true(ok))
		return 0;
	if (json_is_integer(err) && json_integer_value(err) > 0 && json_integer_value(err) < 4096)
		return -(int)json_integer_value(err);
	return -EIO;
}

int guestproto_call(int fd, const json_t *req, int timeout_ms, json_t **ret_reply)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	uint64_t id, got;
	int e;

	e = guestproto_msg_id(req, &id);
	if (e < 0)
		return e;
	e = guestproto_send(fd, req);
	if (e < 0)
		return e;
	for (;;) {
		json_t *m;
		int left = -1;

		if (deadline >= 0) {
			int64_t l = deadline - now_ms();
			if (l <= 0)
				return -ETIMEDOUT;
			left = (int)MIN(l, (int64_t)INT32_MAX);
		}
		e = guestproto_recv(fd, left, &m);
		if (e == 0)
			return -ECONNRESET;
		if (e < 0)
			return e;
		if (guestproto_msg_id(m, &got) == 0 && got == id &&
		    json_is_string(json_object_get(m, "type")) &&
		    strcmp(json_string_value(json_object_get(m, "type")), "reply") == 0) {
			*ret_reply = m;
			return 0;
		}
		json_decref(m);
	}
}
