// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of vmms-guestd's request handling, run in-process over a Unix socketpair: exec
 * with streamed output, stdin, timeouts and signals, KVP, freeze/thaw, time sync, file copy,
 * power requests (with fake system operations), and malformed or hostile requests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "guest-additions/guestd.h"
#include "guest-additions/guestd_int.h"
#include "lib/guestproto.h"
#include "lib/util.h"

struct fake_sys {
	int power_calls;
	bool last_restart;
	int time_calls;
	struct timespec time;
	char log[1024];         /* "+/mnt -/mnt ..." freeze and thaw calls in order */
	int fail_freeze_at;     /* 1-based freeze call that fails with EIO; 0 never */
	int freeze_calls;
};

static int fake_power(void *ctx, bool restart)
{
	struct fake_sys *s = ctx;

	s->power_calls++;
	s->last_restart = restart;
	return 0;
}

static int fake_set_time(void *ctx, const struct timespec *ts)
{
	struct fake_sys *s = ctx;

	s->time_calls++;
	s->time = *ts;
	return 0;
}

static int fake_freeze(void *ctx, const char *mnt, bool freeze)
{
	struct fake_sys *s = ctx;
	size_t n = strlen(s->log);

	if (freeze && ++s->freeze_calls == s->fail_freeze_at)
		return -EIO;
	snprintf(s->log + n, sizeof(s->log) - n, "%s%s%s", n ? " " : "", freeze ? "+" : "-", mnt);
	return 0;
}

static const struct guestd_sys_ops fake_ops = {
	.power = fake_power,
	.set_time = fake_set_time,
	.freeze = fake_freeze,
};

struct h {
	struct guestd *d;
	int fd;                          /* the host's end */
	struct guestproto_reader rd;
	json_t *inbox;                   /* messages received, not yet taken */
	struct fake_sys sys;
	char dir[64];
	char kvp[128];
	char mounts[128];
	char osr[128];
};

struct out {
	char *data[2];                   /* stdout, stderr */
	size_t len[2];
	int started;
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	struct h *h = calloc(1, sizeof(*h));
	struct guestd_config cfg = { 0 };
	int sv[2];

	strcpy(h->dir, "/tmp/guestd-test-XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(h->kvp, sizeof(h->kvp), "%s/run/vmms/kvp", h->dir);
	snprintf(h->mounts, sizeof(h->mounts), "%s/mounts", h->dir);
	snprintf(h->osr, sizeof(h->osr), "%s/os-release", h->dir);
	write_file(h->mounts,
		   "/dev/vda1 / ext4 rw,relatime 0 0\n"
		   "proc /proc proc rw,nosuid 0 0\n"
		   "tmpfs /tmp tmpfs rw 0 0\n"
		   "/dev/vdb /ro ext4 ro,relatime 0 0\n"
		   "/dev/vda1 /bind ext4 rw,relatime 0 0\n"
		   "/dev/vdc /data\\040x xfs rw 0 0\n"
		   "garbage-line\n"
		   "/dev/vdd /rwx ext4 rwx 0 0\n");
	write_file(h->osr, "NAME=\"Test \\\"OS\\\"\"\nID=testos\n# comment\nbad key=1\nVERSION_ID='9'\n");
	cfg.kvp_dir = h->kvp;
	cfg.mounts_file = h->mounts;
	cfg.os_release = h->osr;
	cfg.sys = &fake_ops;
	cfg.sys_ctx = &h->sys;
	cfg.file_max = 4 * 1024 * 1024;
	assert_int_equal(guestd_new(&cfg, &h->d), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(guestd_add_client(h->d, sv[1]), 0);
	h->fd = sv[0];
	assert_int_equal(fcntl(h->fd, F_SETFL, O_NONBLOCK), 0);
	guestproto_reader_init(&h->rd);
	h->inbox = json_array();
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct h *h = *state;
	char cmd[128];

	guestd_free(h->d);
	if (h->fd >= 0)
		close(h->fd);
	guestproto_reader_free(&h->rd);
	json_decref(h->inbox);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	assert_int_equal(system(cmd), 0);
	free(h);
	return 0;
}

/* One turn of the agent, then everything the host end can read goes to the inbox. Returns
 * false once the agent closed the connection. */
static bool pump(struct h *h, int wait_ms)
{
	bool open = true;
	json_t *m;
	int e, n;

	assert_int_equal(guestd_run_once(h->d, wait_ms), 0);
	if (h->fd < 0)
		return false;
	do {
		n = guestproto_reader_fill(&h->rd, h->fd);
		if (n == 0)
			open = false;
		while ((e = guestproto_reader_next(&h->rd, &m)) == 1)
			json_array_append_new(h->inbox, m);
		assert_int_equal(e, 0);
	} while (n > 0);
	return open;
}

/* Sends raw bytes, letting the agent run whenever the socket is full (it may be writing). */
static void send_raw(struct h *h, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(h->fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			pump(h, 10);
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
}

static void send_msg(struct h *h, json_t *m)
{
	char *buf;
	size_t len;

	assert_non_null(m);
	assert_int_equal(guestproto_encode(m, &buf, &len), 0);
	send_raw(h, buf, len);
	free(buf);
	json_decref(m);
}

static int64_t msg_id(json_t *m)
{
	json_t *v = json_object_get(m, "id");

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* Takes messages for id from the inbox until its reply (returned) or timeout (NULL);
 * stdout/stderr data is appended to o when given. id -1 matches "id": null. */
static json_t *wait_reply(struct h *h, int64_t id, int timeout_ms, struct out *o)
{
	bool open = true;

	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		size_t i = 0;

		while (i < json_array_size(h->inbox)) {
			json_t *m = json_array_get(h->inbox, i);
			const char *type = json_string_value(json_object_get(m, "type"));

			if (msg_id(m) != id) {
				i++;
				continue;
			}
			assert_non_null(type);
			if (strcmp(type, "reply") == 0) {
				json_incref(m);
				json_array_remove(h->inbox, i);
				return m;
			}
			if (o && (strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0)) {
				int k = type[3] == 'e';
				void *data;
				size_t len;

				assert_int_equal(guestproto_msg_data(m, &data, &len), 0);
				assert_true(len <= GUESTPROTO_CHUNK);
				o->data[k] = realloc(o->data[k], o->len[k] + len + 1);
				memcpy(o->data[k] + o->len[k], data, len);
				o->len[k] += len;
				o->data[k][o->len[k]] = '\0';
				free(data);
			} else if (o && strcmp(type, "started") == 0) {
				o->started++;
			}
			json_array_remove(h->inbox, i);
		}
		if (!open)
			break;
		open = pump(h, 10);
	}
	return NULL;
}

static void out_free(struct out *o)
{
	free(o->data[0]);
	free(o->data[1]);
	memset(o, 0, sizeof(*o));
}

static bool reply_ok(json_t *r)
{
	return r && json_is_true(json_object_get(r, "ok"));
}

static int reply_errno(json_t *r)
{
	assert_non_null(r);
	assert_false(json_is_true(json_object_get(r, "ok")));
	assert_non_null(json_string_value(json_object_get(r, "error")));
	return (int)json_integer_value(json_object_get(r, "errno"));
}

/* Runs argv (NULL-terminated) and returns its reply with output in o. */
static json_t *run(struct h *h, int64_t id, const char *const *argv, struct out *o)
{
	send_msg(h, guestproto_req_exec((uint64_t)id, argv, NULL, NULL, 0, false));
	return wait_reply(h, id, 20000, o);
}

static void test_ping(void **state)
{
	struct h *h = *state;
	json_t *r;

	send_msg(h, guestproto_req_ping(1));
	r = wait_reply(h, 1, 2000, NULL);
	assert_true(reply_ok(r));
	assert_string_equal(json_string_value(json_object_get(r, "version")), GUESTD_VERSION);
	assert_int_equal(json_integer_value(json_object_get(r, "protocol")), GUESTPROTO_VERSION);
	assert_true(json_integer_value(json_object_get(r, "uptime")) >= 0);
	json_decref(r);
}

static void test_exec_echo(void **state)
{
	const char *argv[] = { "echo", "42", NULL };
	struct h *h = *state;
	struct out o = { 0 };
	json_t *r = run(h, 2, argv, &o);

	assert_true(reply_ok(r));
	assert_int_equal(o.started, 1);
	assert_int_equal(o.len[0], 3);
	assert_string_equal(o.data[0], "42\n");
	assert_int_equal(o.len[1], 0);
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 0);
	assert_true(json_is_false(json_object_get(r, "timed_out")));
	json_decref(r);
	out_free(&o);
}

static void test_exec_status_env_cwd(void **state)
{
	const char *fail[] = { "sh", "-c", "echo oops >&2; exit 7", NULL };
	const char *argv[] = { "sh", "-c", "echo \"$GREETING\" \"$(pwd)\"", NULL };
	const char *env[] = { "GREETING=hi there", NULL };
	const char *missing[] = { "/nonexistent/program", NULL };
	struct h *h = *state;
	struct out o = { 0 };
	char expect[256];
	json_t *r;

	r = run(h, 3, fail, &o);
	assert_true(reply_ok(r));
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 7);
	assert_string_equal(o.data[1], "oops\n");
	json_decref(r);
	out_free(&o);

	send_msg(h, guestproto_req_exec(4, argv, env, h->dir, 0, false));
	r = wait_reply(h, 4, 20000, &o);
	assert_true(reply_ok(r));
	snprintf(expect, sizeof(expect), "hi there %s\n", h->dir);
	assert_string_equal(o.data[0], expect);
	json_decref(r);
	out_free(&o);

	/* A command that cannot run: an error reply with its errno, no "started". */
	r = run(h, 5, missing, &o);
	assert_int_equal(reply_errno(r), ENOENT);
	assert_int_equal(o.started, 0);
	json_decref(r);
	send_msg(h, guestproto_req_exec(6, argv, NULL, "/nonexistent-dir", 0, false));
	r = wait_reply(h, 6, 20000, NULL);
	assert_int_equal(reply_errno(r), ENOENT);
	json_decref(r);
	out_free(&o);
}

/* 1.5 MB of output arrives whole and in order, in bounded chunks; while the host does not
 * read, the agent's queue stays bounded (backpressure reaches the command). */
static void test_exec_large_output(void **state)
{
	const char *argv[] = { "seq", "1", "250000", NULL };
	struct h *h = *state;
	struct out o = { 0 };
	char *expect = malloc(2 * 1024 * 1024), *p = expect;
	struct guestd_client *c;
	json_t *r;

	for (int i = 1; i <= 250000; i++)
		p += sprintf(p, "%d\n", i);
	assert_true(p - expect > 1024 * 1024);
	send_msg(h, guestproto_req_exec(7, argv, NULL, NULL, 0, false));
	for (int i = 0; i < 300; i++)
		assert_int_equal(guestd_run_once(h->d, 5), 0);
	for (size_t i = 0; i < GUESTD_MAX_CLIENTS; i++)
		if ((c = h->d->clients[i]))
			assert_true(c->out.len < GUESTD_OUTQ_HIGH + 2 * GUESTPROTO_CHUNK);
	r = wait_reply(h, 7, 60000, &o);
	assert_true(reply_ok(r));
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 0);
	assert_int_equal(o.len[0], (size_t)(p - expect));
	assert_memory_equal(o.data[0], expect, o.len[0]);
	json_decref(r);
	out_free(&o);
	free(expect);
}

/* stdin streamed in chunks (2 MB through cat, both directions under backpressure). */
static void test_exec_stdin(void **state)
{
	const char *argv[] = { "cat", NULL };
	const size_t total = 2 * 1024 * 1024;
	struct h *h = *state;
	struct out o = { 0 };
	unsigned char *in = malloc(total);
	json_t *r;

	for (size_t i = 0; i < total; i++)
		in[i] = (unsigned char)(i * 7 + i / 4096);
	send_msg(h, guestproto_req_exec(8, argv, NULL, NULL, 0, true));
	for (size_t off = 0; off < total; off += GUESTPROTO_CHUNK) {
		size_t n = total - off < GUESTPROTO_CHUNK ? total - off : GUESTPROTO_CHUNK;
		send_msg(h, guestproto_req_data(8, "stdin", in + off, n, off + n == total));
		pump(h, 0);
	}
	r = wait_reply(h, 8, 60000, &o);
	assert_true(reply_ok(r));
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 0);
	assert_int_equal(o.len[0], total);
	assert_memory_equal(o.data[0], in, total);
	json_decref(r);
	out_free(&o);
	free(in);
	/* Input for an id with no command is dropped without a reply; the link stays usable. */
	send_msg(h, guestproto_req_data(999, "stdin", "x", 1, true));
	send_msg(h, guestproto_req_ping(9));
	r = wait_reply(h, 9, 2000, NULL);
	assert_true(reply_ok(r));
	assert_int_equal(json_array_size(h->inbox), 0);
	json_decref(r);
}

static void test_exec_timeout_and_signal(void **state)
{
	const char *argv[] = { "sleep", "30", NULL };
	struct h *h = *state;
	struct out o = { 0 };
	json_t *r;

	send_msg(h, guestproto_req_exec(10, argv, NULL, NULL, 1, false));
	r = wait_reply(h, 10, 10000, &o);
	assert_true(reply_ok(r));
	assert_int_equal(json_integer_value(json_object_get(r, "signal")), SIGKILL);
	assert_true(json_is_true(json_object_get(r, "timed_out")));
	json_decref(r);

	send_msg(h, guestproto_req_exec(11, argv, NULL, NULL, 0, false));
	r = NULL;
	for (int i = 0; i < 100 && o.started < 2; i++) {
		pump(h, 10);
		assert_null(wait_reply(h, 11, 0, &o));
	}
	assert_int_equal(o.started, 2);
	send_msg(h, guestproto_req_signal(12, 11, SIGTERM));
	r = wait_reply(h, 12, 2000, NULL);
	assert_true(reply_ok(r));
	json_decref(r);
	r = wait_reply(h, 11, 10000, NULL);
	assert_true(reply_ok(r));
	assert_int_equal(json_integer_value(json_object_get(r, "signal")), SIGTERM);
	assert_true(json_is_false(json_object_get(r, "timed_out")));
	json_decref(r);
	/* No such command, and a bad signal number. */
	send_msg(h, guestproto_req_signal(13, 11, SIGTERM));
	r = wait_reply(h, 13, 2000, NULL);
	assert_int_equal(reply_errno(r), ESRCH);
	json_decref(r);
	send_msg(h, guestproto_req_signal(14, 11, 1000));
	r = wait_reply(h, 14, 2000, NULL);
	assert_int_equal(reply_errno(r), EINVAL);
	json_decref(r);
	out_free(&o);
}

static void test_exec_concurrent(void **state)
{
	const char *a[] = { "sh", "-c", "sleep 0.3; echo first", NULL };
	const char *b[] = { "echo", "second", NULL };
	struct h *h = *state;
	struct out oa = { 0 }, ob = { 0 };
	json_t *ra, *rb;

	send_msg(h, guestproto_req_exec(20, a, NULL, NULL, 0, false));
	send_msg(h, guestproto_req_exec(21, b, NULL, NULL, 0, false));
	/* The same id twice while running is refused. */
	send_msg(h, guestproto_req_exec(20, b, NULL, NULL, 0, false));
	rb = wait_reply(h, 21, 10000, &ob);
	assert_true(reply_ok(rb));
	assert_string_equal(ob.data[0], "second\n");
	ra = wait_reply(h, 20, 10000, &oa);
	assert_int_equal(reply_errno(ra), EEXIST);
	json_decref(ra);
	ra = wait_reply(h, 20, 10000, &oa);
	assert_true(reply_ok(ra));
	assert_string_equal(oa.data[0], "first\n");
	json_decref(ra);
	json_decref(rb);
	out_free(&oa);
	out_free(&ob);
}

/* Malformed and hostile requests get error replies; the agent neither crashes nor closes. */
static void test_malformed(void **state)
{
	static const struct {
		const char *body;
		int64_t id;     /* id of the error reply, -1 for null */
		int err;
	} cases[] = {
		{ "{not json", -1, EBADMSG },
		{ "[1,2,3]", -1, EBADMSG },
		{ "\"just a string\"", -1, EBADMSG },
		{ "{\"id\":1,\"id\":2,\"op\":\"ping\"}", -1, EBADMSG },
		{ "{\"op\":\"ping\"}", -1, EINVAL },
		{ "{\"id\":-5,\"op\":\"ping\"}", -1, EINVAL },
		{ "{\"id\":\"7\",\"op\":\"ping\"}", -1, EINVAL },
		{ "{\"id\":9007199254740992,\"op\":\"ping\"}", -1, EINVAL },
		{ "{\"id\":1.5,\"op\":\"ping\"}", -1, EINVAL },
		{ "{\"id\":30}", 30, EINVAL },
		{ "{\"id\":31,\"op\":42}", 31, EINVAL },
		{ "{\"id\":32,\"op\":\"format-disk\"}", 32, EOPNOTSUPP },
		{ "{\"id\":33,\"op\":\"exec\"}", 33, EINVAL },
		{ "{\"id\":34,\"op\":\"exec\",\"argv\":[]}", 34, EINVAL },
		{ "{\"id\":35,\"op\":\"exec\",\"argv\":\"ls\"}", 35, EINVAL },
		{ "{\"id\":36,\"op\":\"exec\",\"argv\":[\"ls\",5]}", 36, EINVAL },
		{ "{\"id\":37,\"op\":\"exec\",\"argv\":[\"l\\u0000s\"]}", -1, EBADMSG },  /* NUL refused */
		{ "{\"id\":38,\"op\":\"exec\",\"argv\":[\"ls\"],\"env\":[\"NOEQUALS\"]}", 38, EINVAL },
		{ "{\"id\":39,\"op\":\"exec\",\"argv\":[\"ls\"],\"timeout\":-1}", 39, EINVAL },
		{ "{\"id\":40,\"op\":\"exec\",\"argv\":[\"ls\"],\"cwd\":7}", 40, EINVAL },
		{ "{\"id\":41,\"op\":\"exec\",\"argv\":[\"ls\"],\"stdin\":\"yes\"}", 41, EINVAL },
		{ "{\"id\":42,\"op\":\"signal\",\"exec\":\"x\",\"signal\":9}", 42, EINVAL },
		{ "{\"id\":43,\"op\":\"time-sync\",\"sec\":1,\"nsec\":1000000000}", 43, EINVAL },
		{ "{\"id\":44,\"op\":\"time-sync\",\"sec\":-1}", 44, EINVAL },
		{ "{\"id\":45,\"op\":\"fsfreeze\",\"timeout\":0}", 45, EINVAL },
		{ "{\"id\":46,\"op\":\"fsfreeze\",\"mountpoints\":\"/\"}", 46, EINVAL },
		{ "{\"id\":47,\"op\":\"file-write\",\"path\":\"relative\",\"size\":1}", 47, EINVAL },
		{ "{\"id\":48,\"op\":\"file-write\",\"path\":\"/x\",\"size\":-1}", 48, EFBIG },
		{ "{\"id\":49,\"op\":\"file-write\",\"path\":\"/x\",\"size\":1,\"mode\":70000}", 49, EINVAL },
		{ "{\"id\":50,\"op\":\"kvp-set\",\"key\":\"../../etc/passwd\",\"value\":\"x\"}", 50, EINVAL },
	};
	struct h *h = *state;
	unsigned char b[512];
	json_t *r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].body);

		b[0] = b[1] = 0;
		b[2] = (unsigned char)(n >> 8);
		b[3] = (unsigned char)n;
		memcpy(b + 4, cases[i].body, n);
		send_raw(h, b, n + 4);
		r = wait_reply(h, cases[i].id, 2000, NULL);
		if (!r)
			fail_msg("no reply to %s", cases[i].body);
		if (reply_errno(r) != cases[i].err)
			fail_msg("%s: errno %d, expected %d", cases[i].body, reply_errno(r), cases[i].err);
		json_decref(r);
	}
	assert_int_equal(h->sys.time_calls, 0);
	send_msg(h, guestproto_req_ping(51));
	r = wait_reply(h, 51, 2000, NULL);
	assert_true(reply_ok(r));
	json_decref(r);
	assert_int_equal(guestd_client_count(h->d), 1);
}

/* A length over 1 MiB cannot be skipped: error reply, then the agent closes the connection. */
static void test_oversized_frame_closes(void **state)
{
	struct h *h = *state;
	json_t *r;

	send_raw(h, "\xff\xff\xff\xff{}", 6);
	r = wait_reply(h, -1, 2000, NULL);
	assert_int_equal(reply_errno(r), EMSGSIZE);
	json_decref(r);
	for (int i = 0; i < 50 && pump(h, 10);)
		i++;
	assert_int_equal(guestd_client_count(h->d), 0);
}

/* The host going away mid-frame, with a command running: the command is killed, the agent
 * carries on serving new clients. */
static void test_disconnect_mid_frame(void **state)
{
	const char *argv[] = { "sleep", "30", NULL };
	struct h *h = *state;
	int sv[2];
	json_t *r;

	send_msg(h, guestproto_req_exec(60, argv, NULL, NULL, 0, false));
	pump(h, 10);
	send_raw(h, "\x00\x00\x01\x00{\"id\":", 10);
	pump(h, 10);
	close(h->fd);
	for (int i = 0; i < 50 && guestd_client_count(h->d); i++)
		assert_int_equal(guestd_run_once(h->d, 10), 0);
	assert_int_equal(guestd_client_count(h->d), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(guestd_add_client(h->d, sv[1]), 0);
	h->fd = sv[0];
	fcntl(h->fd, F_SETFL, O_NONBLOCK);
	guestproto_reader_free(&h->rd);
	send_msg(h, guestproto_req_ping(61));
	r = wait_reply(h, 61, 2000, NULL);
	assert_true(reply_ok(r));
	json_decref(r);
}

static void test_kvp(void **state)
{
	struct h *h = *state;
	char path[256], big[GUESTPROTO_VALUE_MAX + 2];
	void *buf;
	size_t len;
	json_t *r, *pairs;

	send_msg(h, guestproto_req_kvp_set(70, "role", "database primary"));
	r = wait_reply(h, 70, 2000, NULL);
	assert_true(reply_ok(r));
	json_decref(r);
	/* The guest reads host-set pairs as files. */
	snprintf(path, sizeof(path), "%s/role", h->kvp);
	assert_int_equal(read_file_max(path, 100, &buf, &len), 0);
	assert_int_equal(len, strlen("database primary"));
	assert_memory_equal(buf, "database primary", len);
	free(buf);

	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	send_msg(h, json_pack("{s:i, s:s, s:s, s:s}", "id", 71, "op", "kvp-set", "key", "big", "value", big));
	r = wait_reply(h, 71, 2000, NULL);
	assert_int_equal(reply_errno(r), EINVAL);
	json_decref(r);
	send_msg(h, json_pack("{s:i, s:s, s:s, s:s}", "id", 72, "op", "kvp-set", "key", ".hidden", "value", "x"));
	r = wait_reply(h, 72, 2000, NULL);
	assert_int_equal(reply_errno(r), EINVAL);
	json_decref(r);
	/* A file the guest put there that is not a valid key is not listed. */
	snprintf(path, sizeof(path), "%s/bad key", h->kvp);
	write_file(path, "x");

	send_msg(h, guestproto_req_kvp_set(73, "env", "prod"));
	r = wait_reply(h, 73, 2000, NULL);
	json_decref(r);
	send_msg(h, guestproto_req_kvp_list(74));
	r = wait_reply(h, 74, 2000, NULL);
	assert_true(reply_ok(r));
	pairs = json_object_get(r, "pairs");
	assert_int_equal(json_object_size(pairs), 2);
	assert_string_equal(json_string_value(json_object_get(pairs, "role")), "database primary");
	assert_string_equal(json_string_value(json_object_get(pairs, "env")), "prod");
	json_decref(r);

	send_msg(h, guestproto_req_kvp_set(75, "role", NULL));    /* delete */
	r = wait_reply(h, 75, 2000, NULL);
	assert_true(reply_ok(r));
	json_decref(r);
	snprintf(path, sizeof(path), "%s/role", h->kvp);
	assert_int_equal(access(path, F_OK), -1);

	send_msg(h, guestproto_req_kvp_get(76));
	r = wait_reply(h, 76, 2000, NULL);
	assert_true(reply_ok(r));
	assert_non_null(json_string_value(json_object_get(r, "hostname")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "os"), "NAME")), "Test \"OS\"");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "os"), "ID")), "testos");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "os"), "VERSION_ID")), "9");
	assert_null(json_object_get(json_object_get(r, "os"), "bad key"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "kernel"), "sysname")), "Linux");
	assert_true(json_is_array(json_object_get(r, "addresses")));
	json_decref(r);
}

static void test_freeze_thaw(void **state)
{
	const char *some[] = { "/data x", NULL }, *bad[] = { "/ro", NULL };
	struct h *h = *state;
	json_t *r;

	send_msg(h, guestproto_req_fsfreeze(80, NULL, 30));
	r = wait_reply(h, 80, 2000, NULL);
	assert_true(reply_ok(r));
	/* Writable block-device file systems once each (the bind mount shares /'s device). */
	assert_int_equal(json_array_size(json_object_get(r, "frozen")), 2);
	assert_string_equal(h->sys.log, "+/ +/data x");
	json_decref(r);
	send_msg(h, guestproto_req_fsfreeze(81, NULL, 0));
	r = wait_reply(h, 81, 2000, NULL);
	assert_int_equal(reply_errno(r), EBUSY);
	json_decref(r);
	send_msg(h, guestproto_req_fsthaw(82));
	r = wait_reply(h, 82, 2000, NULL);
	assert_int_equal(json_integer_value(json_object_get(r, "thawed")), 2);
	assert_string_equal(h->sys.log, "+/ +/data x -/data x -/");
	json_decref(r);

	/* Named mountpoints; one that is not freezable is refused before anything is frozen. */
	h->sys.log[0] = '\0';
	send_msg(h, guestproto_req_fsfreeze(83, bad, 0));
	r = wait_reply(h, 83, 2000, NULL);
	assert_int_equal(reply_errno(r), EINVAL);
	json_decref(r);
	assert_string_equal(h->sys.log, "");
	/* The safety timeout thaws on its own. */
	send_msg(h, guestproto_req_fsfreeze(84, some, 1));
	r = wait_reply(h, 84, 2000, NULL);
	assert_true(reply_ok(r));
	json_decref(r);
	for (int i = 0; i < 300 && strcmp(h->sys.log, "+/data x -/data x") != 0; i++)
		pump(h, 10);
	assert_string_equal(h->sys.log, "+/data x -/data x");

	/* A failure part-way thaws what was frozen. */
	h->sys.log[0] = '\0';
	h->sys.freeze_calls = 0;
	h->sys.fail_freeze_at = 2;
	send_msg(h, guestproto_req_fsfreeze(85, NULL, 0));
	r = wait_reply(h, 85, 2000, NULL);
	assert_int_equal(reply_errno(r), EIO);
	json_decref(r);
	assert_string_equal(h->sys.log, "+/ -/");
	h->sys.fail_freeze_at = 0;

	/* The client that froze going away thaws. */
	h->sys.log[0] = '\0';
	send_msg(h, guestproto_req_fsfreeze(86, NULL, 0));
	r = wait_reply(h, 86, 2000, NULL);
	assert_true(reply_ok(r));
	json_decref(r);
	close(h->fd);
	h->fd = -1;
	for (int i = 0; i < 50 && guestd_client_count(h->d); i++)
		assert_int_equal(guestd_run_once(h->d, 10), 0);
	assert_string_equal(h->sys.log, "+/ +/data x -/data x -/");
}

static void test_time_and_power(void **state)
{
	struct timespec ts = { .tv_sec = 1700000000, .tv_nsec = 123456789 };
	struct h *h = *state;
	json_t *r;

	send_msg(h, guestproto_req_time_sync(90, &ts));
	r = wait_reply(h, 90, 2000, NULL);
	assert_true(reply_ok(r));
	json_decref(r);
	assert_int_equal(h->sys.time_calls, 1);
	assert_int_equal(h->sys.time.tv_sec, ts.tv_sec);
	assert_int_equal(h->sys.time.tv_nsec, ts.tv_nsec);

	/* The reply comes before the power action starts. */
	send_msg(h, guestproto_req_shutdown(91, false));
	r = wait_reply(h, 91, 2000, NULL);
	assert_true(reply_ok(r));
	json_decref(r);
	for (int i = 0; i < 100 && !h->sys.power_calls; i++)
		pump(h, 10);
	assert_int_equal(h->sys.power_calls, 1);
	assert_false(h->sys.last_restart);
	send_msg(h, guestproto_req_shutdown(92, true));
	r = wait_reply(h, 92, 2000, NULL);
	assert_true(reply_ok(r));
	json_decref(r);
	for (int i = 0; i < 100 && h->sys.power_calls < 2; i++)
		pump(h, 10);
	assert_int_equal(h->sys.power_calls, 2);
	assert_true(h->sys.last_restart);
}

static void test_file_write(void **state)
{
	struct h *h = *state;
	const size_t size = 300000;
	unsigned char *data = malloc(size);
	char path[256], cmd[300];
	struct stat st;
	void *back;
	size_t len;
	json_t *r;

	for (size_t i = 0; i < size; i++)
		data[i] = (unsigned char)(i * 13);
	snprintf(path, sizeof(path), "%s/copied", h->dir);
	send_msg(h, guestproto_req_file_write(100, path, 0600, size));
	for (size_t off = 0; off < size; off += GUESTPROTO_CHUNK) {
		size_t n = size - off < GUESTPROTO_CHUNK ? size - off : GUESTPROTO_CHUNK;
		send_msg(h, guestproto_req_data(100, "file-data", data + off, n, off + n == size));
		/* Nothing at the path until the copy is whole. */
		if (off + n < size) {
			pump(h, 0);
			assert_int_equal(access(path, F_OK), -1);
		}
	}
	r = wait_reply(h, 100, 5000, NULL);
	assert_true(reply_ok(r));
	assert_int_equal(json_integer_value(json_object_get(r, "size")), size);
	json_decref(r);
	assert_int_equal(read_file_max(path, size, &back, &len), 0);
	assert_int_equal(len, size);
	assert_memory_equal(back, data, size);
	free(back);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* More than announced: refused, no file and no temporary left behind. */
	snprintf(path, sizeof(path), "%s/over", h->dir);
	send_msg(h, guestproto_req_file_write(101, path, 0644, 10));
	send_msg(h, guestproto_req_data(101, "file-data", data, 11, true));
	r = wait_reply(h, 101, 2000, NULL);
	assert_int_equal(reply_errno(r), EFBIG);
	json_decref(r);
	/* Ended early. */
	send_msg(h, guestproto_req_file_write(102, path, 0644, 10));
	send_msg(h, guestproto_req_data(102, "file-data", data, 4, true));
	r = wait_reply(h, 102, 2000, NULL);
	assert_int_equal(reply_errno(r), EPIPE);
	json_decref(r);
	/* Over the configured maximum, and into a missing directory. */
	send_msg(h, guestproto_req_file_write(103, path, 0644, 5 * 1024 * 1024));
	r = wait_reply(h, 103, 2000, NULL);
	assert_int_equal(reply_errno(r), EFBIG);
	json_decref(r);
	send_msg(h, guestproto_req_file_write(104, "/nonexistent-dir/f", 0644, 1));
	r = wait_reply(h, 104, 2000, NULL);
	assert_int_equal(reply_errno(r), ENOENT);
	json_decref(r);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s' | grep vmms-copy)\"", h->dir);
	assert_int_equal(system(cmd), 0);
	/* An empty file is done at once. */
	send_msg(h, guestproto_req_file_write(105, path, 0640, 0));
	r = wait_reply(h, 105, 2000, NULL);
	assert_true(reply_ok(r));
	json_decref(r);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	free(data);
}

static void test_unix_listener(void **state)
{
	struct h *h = *state;
	char spec[160];
	int fd, e = 0;
	json_t *r = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(spec, sizeof(spec), "unix:%s/agent.sock", h->dir);
	assert_int_equal(guestd_listen(h->d, spec), 0);
	assert_int_equal(guestd_listen(h->d, spec), -EBUSY);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", h->dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	json_t *ping = guestproto_req_ping(110);
	assert_int_equal(guestproto_send(fd, ping), 0);
	for (int i = 0; i < 100 && e == 0; i++) {
		assert_int_equal(guestd_run_once(h->d, 10), 0);
		e = guestproto_recv(fd, 0, &r);
		if (e == -ETIMEDOUT)
			e = 0;
	}
	assert_int_equal(e, 1);
	assert_true(reply_ok(r));
	assert_int_equal(guestd_client_count(h->d), 2);
	json_decref(r);
	json_decref(ping);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_status_env_cwd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_large_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_stdin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_timeout_and_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_frame_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_mid_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kvp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_freeze_thaw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_and_power, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unix_listener, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
