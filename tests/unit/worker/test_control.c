// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of the worker's control channel: framing, descriptors, hostile requests, peer
 * handling and event order, against a fake command handler (no KVM). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/jsonframe.h"
#include "worker/control.h"

enum { TAG_L = 1, TAG_C = 2 };

struct fixture {
	struct ctl *ctl;
	int client, ep;
	struct sockaddr_un sa;
	socklen_t salen;
	unsigned calls;
	enum ctl_cmd last;
	bool emit_in_command;
};

static int fake_command(void *opaque, enum ctl_cmd cmd, json_t *req, json_t *reply, struct ctl_error *err)
{
	struct fixture *f = opaque;

	f->calls++;
	f->last = cmd;
	if (f->emit_in_command)
		ctl_emit(f->ctl, json_pack("{s:s}", "event", "during"));
	if (cmd == CTL_CMD_PAUSE) {
		err->name = "InvalidState";
		snprintf(err->message, sizeof(err->message), "not running");
		return -EINVAL;
	}
	(void)json_object_set_new(reply, "extra", json_integer(42));
	return 0;
}

static const char *fake_state(void *opaque)
{
	return "running";
}

static const struct ctl_ops fake_ops = { .command = fake_command, .state = fake_state };

/* A worker that takes replacement streams: keeps the last descriptor per name. */
struct replacer {
	int serial, console;
	unsigned calls;
	bool refuse;
};

static int fake_replace(void *opaque, const char *const *names, int *fds, size_t n, struct ctl_error *err)
{
	struct replacer *r = opaque;

	r->calls++;
	if (r->refuse) {
		err->name = "InvalidParameter";
		snprintf(err->message, sizeof(err->message), "no such port");
		return -ENOENT;
	}
	for (size_t i = 0; i < n; i++) {
		int *slot = strcmp(names[i], "serial") == 0 ? &r->serial : &r->console;

		if (*slot >= 0)
			close(*slot);
		*slot = fds[i];
		fds[i] = -1;
	}
	return 0;
}

static int connect_client(struct fixture *f)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&f->sa, f->salen), 0);
	ctl_handle(f->ctl, TAG_L);
	assert_true(ctl_connected(f->ctl));
	return fd;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(l >= 0);
	f->sa.sun_family = AF_UNIX;
	/* Abstract name: no file to clean up. */
	snprintf(f->sa.sun_path + 1, sizeof(f->sa.sun_path) - 1, "vmms-unit-ctl-%d", getpid());
	f->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(f->sa.sun_path + 1));
	assert_int_equal(bind(l, (struct sockaddr *)&f->sa, f->salen), 0);
	assert_int_equal(listen(l, 4), 0);
	assert_int_equal(ctl_new(l, &fake_ops, f, &f->ctl), 0);
	f->ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(f->ep >= 0);
	assert_int_equal(ctl_attach(f->ctl, f->ep, TAG_L, TAG_C), 0);
	f->client = connect_client(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->client >= 0)
		close(f->client);
	ctl_free(f->ctl);
	close(f->ep);
	free(f);
	return 0;
}

static void send_raw(struct fixture *f, const char *body)
{
	uint32_t n = (uint32_t)strlen(body);
	unsigned char hdr[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
				 (unsigned char)n };

	assert_int_equal(write(f->client, hdr, 4), 4);
	assert_int_equal(write(f->client, body, n), (ssize_t)n);
}

/* Sends body (with fds), lets the worker side serve it, returns the next message. */
static json_t *roundtrip(struct fixture *f, const char *body, const int *fds, size_t nfds)
{
	json_t *msg = nfds ? json_loads(body, 0, NULL) : NULL, *rep = NULL;

	/* Without descriptors the bytes go as written (duplicate keys, broken JSON). */
	if (msg) {
		assert_int_equal(jsonframe_send(f->client, msg, fds, nfds), 0);
		json_decref(msg);
	} else {
		send_raw(f, body);
	}
	ctl_handle(f->ctl, TAG_C);
	assert_int_equal(jsonframe_recv(f->client, &rep, NULL, NULL), 1);
	return rep;
}

static const char *err_name(json_t *rep)
{
	return json_string_value(json_object_get(json_object_get(rep, "error"), "name"));
}

static void test_names(void **state)
{
	assert_true(ctl_fd_name_valid("kvm"));
	assert_true(ctl_fd_name_valid("disk:vda"));
	assert_true(ctl_fd_name_valid("disk:sd0"));
	assert_false(ctl_fd_name_valid("disk:"));
	assert_false(ctl_fd_name_valid("disk:../x"));
	assert_false(ctl_fd_name_valid("disk:VDA"));
	assert_false(ctl_fd_name_valid("disk:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 33 */
	assert_false(ctl_fd_name_valid("kvm2"));
	assert_false(ctl_fd_name_valid(""));
	assert_int_equal(ctl_cmd_parse("start"), CTL_CMD_START);
	assert_int_equal(ctl_cmd_parse("query"), CTL_CMD_QUERY);
	assert_int_equal(ctl_cmd_parse("fds"), -1); /* served by the channel itself */
	assert_int_equal(ctl_cmd_parse("Start"), -1);
}

static void test_reply_carries_id_state_and_fields(void **state)
{
	struct fixture *f = *state;
	json_t *rep = roundtrip(f, "{\"id\":7,\"cmd\":\"query\"}", NULL, 0);

	assert_int_equal(json_integer_value(json_object_get(rep, "id")), 7);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	assert_string_equal(json_string_value(json_object_get(rep, "state")), "running");
	assert_int_equal(json_integer_value(json_object_get(rep, "extra")), 42);
	assert_int_equal(f->last, CTL_CMD_QUERY);
	json_decref(rep);

	rep = roundtrip(f, "{\"id\":8,\"cmd\":\"pause\"}", NULL, 0);
	assert_true(json_is_false(json_object_get(rep, "ok")));
	assert_string_equal(err_name(rep), "InvalidState");
	json_decref(rep);
}

static void test_hostile_requests(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *body, *error;
	} cases[] = {
		{ "{\"id\":1,\"cmd\":\"frob\"}", "NotSupported" },
		{ "{\"cmd\":\"query\"}", "InvalidParameter" },
		{ "{\"id\":-1,\"cmd\":\"query\"}", "InvalidParameter" },
		{ "{\"id\":\"1\",\"cmd\":\"query\"}", "InvalidParameter" },
		{ "{\"id\":1.5,\"cmd\":\"query\"}", "InvalidParameter" },
		{ "{\"id\":1,\"cmd\":[\"query\"]}", "InvalidParameter" },
		{ "{\"id\":1}", "InvalidParameter" },
		{ "[1,2]", "InvalidParameter" },
		{ "\"query\"", "InvalidParameter" },
		{ "{\"id\":1,\"cmd\":\"query\",\"id\":2}", "InvalidParameter" }, /* duplicate key */
		{ "{not json", "InvalidParameter" },
		{ "", "InvalidParameter" },
		{ "{\"id\":1,\"cmd\":\"fds\",\"names\":[]}", "InvalidParameter" },
		{ "{\"id\":1,\"cmd\":\"fds\",\"names\":\"kvm\"}", "InvalidParameter" },
		{ "{\"id\":1,\"cmd\":\"fds\",\"names\":[\"kvm\"]}", "InvalidParameter" }, /* no fd attached */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *rep = roundtrip(f, cases[i].body, NULL, 0);

		if (!err_name(rep) || strcmp(err_name(rep), cases[i].error) != 0)
			fail_msg("case %zu %s: got %s", i, cases[i].body, err_name(rep) ? err_name(rep) : "(ok)");
		json_decref(rep);
	}
	assert_int_equal(f->calls, 0); /* none reached the handler */
	assert_true(ctl_connected(f->ctl));
}

static void test_fds(void **state)
{
	struct fixture *f = *state;
	int p[2], sp[2], fds[9];
	char path[] = "/tmp/vmms-unit-ctl-XXXXXX";
	int file = mkstemp(path);
	json_t *rep;

	assert_true(file >= 0);
	unlink(path);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);

	/* a pipe is not a kernel image */
	rep = roundtrip(f, "{\"id\":1,\"cmd\":\"fds\",\"names\":[\"kernel\"]}", &p[0], 1);
	assert_string_equal(err_name(rep), "InvalidParameter");
	json_decref(rep);
	/* count mismatch, duplicate, bad name: all or nothing */
	rep = roundtrip(f, "{\"id\":2,\"cmd\":\"fds\",\"names\":[\"kernel\",\"initrd\"]}", &file, 1);
	assert_string_equal(err_name(rep), "InvalidParameter");
	json_decref(rep);
	fds[0] = fds[1] = file;
	rep = roundtrip(f, "{\"id\":3,\"cmd\":\"fds\",\"names\":[\"kernel\",\"kernel\"]}", fds, 2);
	assert_string_equal(err_name(rep), "InvalidParameter");
	json_decref(rep);
	assert_int_equal(ctl_fds(f->ctl)->kernel, -1);
	/* descriptors on a command that carries none */
	rep = roundtrip(f, "{\"id\":4,\"cmd\":\"query\"}", &file, 1);
	assert_string_equal(err_name(rep), "InvalidParameter");
	json_decref(rep);
	assert_int_equal(f->calls, 0);

	/* good ones */
	fds[0] = file;
	fds[1] = file;
	fds[2] = sp[0];
	rep = roundtrip(f, "{\"id\":5,\"cmd\":\"fds\",\"names\":[\"kernel\",\"disk:vda\",\"serial\"]}", fds, 3);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	json_decref(rep);
	assert_true(ctl_fds(f->ctl)->kernel >= 0);
	assert_true(ctl_fds(f->ctl)->serial >= 0);
	assert_int_equal(ctl_fds(f->ctl)->nr_disks, 1);
	assert_string_equal(ctl_fds(f->ctl)->disks[0].target, "vda");
	/* the same name again */
	rep = roundtrip(f, "{\"id\":6,\"cmd\":\"fds\",\"names\":[\"kernel\"]}", &file, 1);
	assert_string_equal(err_name(rep), "InvalidParameter");
	json_decref(rep);

	/* more than CTL_MAX_FDS: jsonframe_send refuses, so send them by hand */
	{
		const char *body = "{\"id\":9,\"cmd\":\"fds\",\"names\":[]}";
		uint32_t n = (uint32_t)strlen(body);
		char frame[64];
		union {
			char buf[CMSG_SPACE(sizeof(int) * 9)];
			struct cmsghdr align;
		} cm;
		struct iovec iov = { frame, 4 + n };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
				     .msg_controllen = sizeof(cm.buf) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

		frame[0] = 0, frame[1] = 0, frame[2] = (char)(n >> 8), frame[3] = (char)n;
		memcpy(frame + 4, body, n);
		for (int i = 0; i < 9; i++)
			fds[i] = p[1];
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * 9);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * 9);
		assert_int_equal(sendmsg(f->client, &mh, 0), (ssize_t)(4 + n));
		ctl_handle(f->ctl, TAG_C);
		assert_int_equal(jsonframe_recv(f->client, &rep, NULL, NULL), 1);
		assert_string_equal(err_name(rep), "InvalidParameter");
		assert_non_null(strstr(json_string_value(json_object_get(json_object_get(rep, "error"), "message")),
				       "more than"));
		json_decref(rep);
	}

	/* frozen after configure */
	ctl_fds_freeze(f->ctl);
	rep = roundtrip(f, "{\"id\":10,\"cmd\":\"fds\",\"names\":[\"initrd\"]}", &file, 1);
	assert_string_equal(err_name(rep), "InvalidState");
	json_decref(rep);
	close(file);
	close(p[0]);
	close(p[1]);
	close(sp[0]);
	close(sp[1]);
}

/* After configure, "fds" may only replace "serial" and "console", all or nothing, and only
 * with stream sockets; the handler owns what it took, the rest is closed. */
static void test_fds_replace_after_configure(void **state)
{
	struct fixture *f = *state;
	static const struct ctl_ops ops = { .command = fake_command, .state = fake_state, .replace_fds = fake_replace };
	struct replacer rp = { .serial = -1, .console = -1 };
	struct fixture g = { .ep = -1 };
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), sp[2], sp2[2], p[2], fds[2];
	json_t *rep;
	char c;

	/* a second channel with a replacing worker, on its own abstract address */
	g.sa.sun_family = AF_UNIX;
	snprintf(g.sa.sun_path + 1, sizeof(g.sa.sun_path) - 1, "vmms-unit-ctl-r-%d", getpid());
	g.salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(g.sa.sun_path + 1));
	assert_int_equal(bind(l, (struct sockaddr *)&g.sa, g.salen), 0);
	assert_int_equal(listen(l, 4), 0);
	assert_int_equal(ctl_new(l, &ops, &rp, &g.ctl), 0);
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	assert_int_equal(ctl_attach(g.ctl, g.ep, TAG_L, TAG_C), 0);
	g.client = connect_client(&g);
	ctl_fds_freeze(g.ctl);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);

	/* a channel whose worker cannot replace anything refuses (the fixture's) */
	ctl_fds_freeze(f->ctl);
	rep = roundtrip(f, "{\"id\":1,\"cmd\":\"fds\",\"names\":[\"serial\"]}", &sp[1], 1);
	assert_string_equal(err_name(rep), "InvalidState");
	json_decref(rep);

	/* other names stay frozen; a pipe is not a stream; twice the same name; all refused
	 * before the handler runs */
	rep = roundtrip(&g, "{\"id\":2,\"cmd\":\"fds\",\"names\":[\"kvm\"]}", &sp[1], 1);
	assert_string_equal(err_name(rep), "InvalidState");
	json_decref(rep);
	rep = roundtrip(&g, "{\"id\":2,\"cmd\":\"fds\",\"names\":[7]}", &sp[1], 1);
	assert_string_equal(err_name(rep), "InvalidParameter");
	json_decref(rep);
	fds[0] = sp[1];
	fds[1] = p[1];
	rep = roundtrip(&g, "{\"id\":3,\"cmd\":\"fds\",\"names\":[\"serial\",\"disk:vda\"]}", fds, 2);
	assert_string_equal(err_name(rep), "InvalidState");
	json_decref(rep);
	rep = roundtrip(&g, "{\"id\":4,\"cmd\":\"fds\",\"names\":[\"serial\"]}", &p[1], 1);
	assert_string_equal(err_name(rep), "InvalidParameter");
	json_decref(rep);
	fds[0] = fds[1] = sp[1];
	rep = roundtrip(&g, "{\"id\":5,\"cmd\":\"fds\",\"names\":[\"serial\",\"serial\"]}", fds, 2);
	assert_string_equal(err_name(rep), "InvalidParameter");
	json_decref(rep);
	assert_int_equal(rp.calls, 0);

	/* the handler's refusal is the reply */
	rp.refuse = true;
	rep = roundtrip(&g, "{\"id\":6,\"cmd\":\"fds\",\"names\":[\"console\"]}", &sp[1], 1);
	assert_string_equal(err_name(rep), "InvalidParameter");
	json_decref(rep);
	assert_int_equal(rp.calls, 1);
	assert_int_equal(rp.console, -1);
	rp.refuse = false;

	/* accepted: the worker holds a working end of the new stream, and may take it again */
	fds[0] = sp[1];
	fds[1] = sp2[1];
	rep = roundtrip(&g, "{\"id\":7,\"cmd\":\"fds\",\"names\":[\"serial\",\"console\"]}", fds, 2);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	json_decref(rep);
	assert_true(rp.serial >= 0 && rp.console >= 0);
	assert_int_equal(write(rp.serial, "s", 1), 1);
	assert_int_equal(read(sp[0], &c, 1), 1);
	assert_int_equal(c, 's');
	rep = roundtrip(&g, "{\"id\":8,\"cmd\":\"fds\",\"names\":[\"serial\"]}", &sp2[1], 1);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	json_decref(rep);
	assert_int_equal(rp.calls, 3);
	/* every copy sent with a refused request was closed, and the handler closed its old one
	 * on replacing it: once ours is closed too, the first stream ends */
	close(sp[1]);
	sp[1] = -1;
	assert_int_equal(read(sp[0], &c, 1), 0);

	close(rp.serial);
	close(rp.console);
	close(g.client);
	ctl_free(g.ctl);
	close(g.ep);
	close(sp[0]);
	close(sp2[0]);
	close(sp2[1]);
	close(p[0]);
	close(p[1]);
}

static void test_oversized_frame_closes(void **state)
{
	struct fixture *f = *state;
	unsigned char hdr[4] = { 0x00, 0x10, 0x00, 0x01 }; /* 1 MiB + 1 */
	json_t *rep = NULL;

	assert_int_equal(write(f->client, hdr, 4), 4);
	ctl_handle(f->ctl, TAG_C);
	assert_false(ctl_connected(f->ctl));
	assert_int_equal(jsonframe_recv(f->client, &rep, NULL, NULL), 1);
	assert_string_equal(err_name(rep), "InvalidParameter");
	json_decref(rep);
	assert_int_equal(jsonframe_recv(f->client, &rep, NULL, NULL), 0); /* then end of stream */
	close(f->client);
	/* the next controller is served */
	f->client = connect_client(f);
	rep = roundtrip(f, "{\"id\":1,\"cmd\":\"query\"}", NULL, 0);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	json_decref(rep);
}

static void test_partial_frames_never_block(void **state)
{
	struct fixture *f = *state;
	const char *body = "{\"id\":3,\"cmd\":\"query\"}";
	unsigned char hdr[4] = { 0, 0, 0, (unsigned char)strlen(body) };
	json_t *rep;

	/* byte by byte: each ctl_handle returns at once and the frame completes in the end */
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(write(f->client, hdr + i, 1), 1);
		ctl_handle(f->ctl, TAG_C);
	}
	for (size_t i = 0; i < strlen(body); i++) {
		assert_int_equal(f->calls, 0);
		assert_int_equal(write(f->client, body + i, 1), 1);
		ctl_handle(f->ctl, TAG_C);
	}
	assert_int_equal(f->calls, 1);
	assert_int_equal(jsonframe_recv(f->client, &rep, NULL, NULL), 1);
	assert_int_equal(json_integer_value(json_object_get(rep, "id")), 3);
	json_decref(rep);
	/* a peer that leaves mid-frame: disconnected, nothing served */
	assert_int_equal(write(f->client, hdr, 4), 4);
	close(f->client);
	f->client = -1;
	ctl_handle(f->ctl, TAG_C);
	assert_false(ctl_connected(f->ctl));
	assert_int_equal(f->calls, 1);
}

static void test_events_order_and_queue(void **state)
{
	struct fixture *f = *state;
	json_t *m;

	/* an event raised while serving comes after the reply */
	f->emit_in_command = true;
	m = roundtrip(f, "{\"id\":1,\"cmd\":\"start\"}", NULL, 0);
	assert_int_equal(json_integer_value(json_object_get(m, "id")), 1);
	json_decref(m);
	assert_int_equal(jsonframe_recv(f->client, &m, NULL, NULL), 1);
	assert_string_equal(json_string_value(json_object_get(m, "event")), "during");
	json_decref(m);
	f->emit_in_command = false;

	/* no controller: events wait, bounded, and reach the next one in order */
	close(f->client);
	ctl_handle(f->ctl, TAG_C);
	assert_false(ctl_connected(f->ctl));
	for (int i = 0; i < CTL_EVENT_QUEUE + 5; i++)
		ctl_emit(f->ctl, json_pack("{s:s,s:i}", "event", "n", "i", i));
	assert_int_equal(ctl_pending(f->ctl), CTL_EVENT_QUEUE);
	f->client = connect_client(f);
	assert_int_equal(ctl_pending(f->ctl), 0);
	for (int i = 5; i < CTL_EVENT_QUEUE + 5; i++) {
		assert_int_equal(jsonframe_recv(f->client, &m, NULL, NULL), 1);
		assert_int_equal(json_integer_value(json_object_get(m, "i")), i);
		json_decref(m);
	}
}

static void test_not_a_listening_socket(void **state)
{
	int sp[2];
	struct ctl *c = NULL;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_true(ctl_new(sp[0], &fake_ops, NULL, &c) < 0);
	assert_true(ctl_new(-1, &fake_ops, NULL, &c) < 0);
	assert_null(c);
	close(sp[0]);
	close(sp[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_not_a_listening_socket),
		cmocka_unit_test_setup_teardown(test_reply_carries_id_state_and_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_replace_after_configure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_frame_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_frames_never_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_order_and_queue, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
