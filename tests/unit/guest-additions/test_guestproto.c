// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of lib/guestproto: framing with hostile input, base64, builders, host-side connect. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/guestproto.h"

static void frame(const char *body, unsigned char *out, size_t *len)
{
	size_t n = strlen(body);

	out[0] = (unsigned char)(n >> 24);
	out[1] = (unsigned char)(n >> 16);
	out[2] = (unsigned char)(n >> 8);
	out[3] = (unsigned char)n;
	memcpy(out + 4, body, n);
	*len = n + 4;
}

static void test_reader_byte_by_byte(void **state)
{
	json_t *m = guestproto_req_ping(7), *out;
	struct guestproto_reader r;
	char *buf;
	size_t len;

	assert_non_null(m);
	assert_int_equal(guestproto_encode(m, &buf, &len), 0);
	guestproto_reader_init(&r);
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(guestproto_reader_next(&r, &out), 0);
		assert_int_equal(guestproto_reader_feed(&r, buf + i, 1), 0);
	}
	assert_int_equal(guestproto_reader_next(&r, &out), 1);
	assert_true(json_equal(m, out));
	assert_int_equal(r.len, 0);
	json_decref(out);
	free(buf);
	json_decref(m);
	guestproto_reader_free(&r);
}

static void test_reader_bad_frames(void **state)
{
	struct guestproto_reader r;
	unsigned char b[256];
	size_t n;
	json_t *out;
	uint64_t id;

	guestproto_reader_init(&r);
	/* Not JSON, then JSON but not an object, then duplicate keys, then a good frame: the bad
	 * ones are consumed one by one and the stream stays usable. */
	frame("{oops", b, &n);
	assert_int_equal(guestproto_reader_feed(&r, b, n), 0);
	frame("[1,2]", b, &n);
	assert_int_equal(guestproto_reader_feed(&r, b, n), 0);
	frame("{\"id\":1,\"id\":2}", b, &n);
	assert_int_equal(guestproto_reader_feed(&r, b, n), 0);
	frame("{\"id\":3,\"op\":\"ping\"}", b, &n);
	assert_int_equal(guestproto_reader_feed(&r, b, n), 0);
	assert_int_equal(guestproto_reader_next(&r, &out), -EBADMSG);
	assert_int_equal(guestproto_reader_next(&r, &out), -EBADMSG);
	assert_int_equal(guestproto_reader_next(&r, &out), -EBADMSG);
	assert_int_equal(guestproto_reader_next(&r, &out), 1);
	assert_int_equal(guestproto_msg_id(out, &id), 0);
	assert_int_equal(id, 3);
	json_decref(out);
	/* An empty body is not an object either. */
	assert_int_equal(guestproto_reader_feed(&r, "\0\0\0\0", 4), 0);
	assert_int_equal(guestproto_reader_next(&r, &out), -EBADMSG);
	/* A length over the limit cannot be resynchronised. */
	assert_int_equal(guestproto_reader_feed(&r, "\x00\x10\x00\x01{}", 6), 0);
	assert_int_equal(guestproto_reader_next(&r, &out), -EMSGSIZE);
	guestproto_reader_free(&r);
}

static void test_reader_bound(void **state)
{
	struct guestproto_reader r;
	size_t big = GUESTPROTO_MAX_MSG + 4;
	char *junk = calloc(1, big + 1);

	guestproto_reader_init(&r);
	assert_int_equal(guestproto_reader_feed(&r, junk, big), 0);
	assert_int_equal(guestproto_reader_feed(&r, junk, 1), -ENOBUFS);
	assert_int_equal(r.len, big);
	guestproto_reader_free(&r);
	free(junk);
}

static void test_send_recv(void **state)
{
	int sv[2];
	json_t *m = guestproto_req_kvp_set(9, "role", "web"), *out = NULL;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(guestproto_send(sv[0], m), 0);
	assert_int_equal(guestproto_recv(sv[1], 1000, &out), 1);
	assert_true(json_equal(m, out));
	json_decref(out);
	/* Nothing more: a timeout; a frame cut short by the peer: -EPROTO; clean close: 0. */
	assert_int_equal(guestproto_recv(sv[1], 50, &out), -ETIMEDOUT);
	assert_int_equal(write(sv[0], "\0\0\0\x10{", 5), 5);
	shutdown(sv[0], SHUT_WR);
	assert_int_equal(guestproto_recv(sv[1], 1000, &out), -EPROTO);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[0]);
	assert_int_equal(guestproto_recv(sv[1], 1000, &out), 0);
	close(sv[1]);
	json_decref(m);
}

static void test_base64(void **state)
{
	static const char *plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	static const char *bad[] = { "Zg=", "Z===", "Zg==Zg==", "Zm9*", "Zm=v", "====", "Zm9v\n" };
	unsigned char out[16], all[256];
	char *t;
	size_t n;

	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(guestproto_b64_encode(plain[i], strlen(plain[i]), &t), 0);
		assert_string_equal(t, enc[i]);
		free(t);
		assert_int_equal(guestproto_b64_decode(enc[i], strlen(enc[i]), out, sizeof(out), &n), 0);
		assert_int_equal(n, strlen(plain[i]));
		assert_memory_equal(out, plain[i], n);
	}
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(guestproto_b64_decode(bad[i], strlen(bad[i]), out, sizeof(out), &n), -EINVAL);
	assert_int_equal(guestproto_b64_decode("Zm9vYmFy", 8, out, 5, &n), -ENOBUFS);
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	assert_int_equal(guestproto_b64_encode(all, sizeof(all), &t), 0);
	{
		unsigned char back[256];
		assert_int_equal(guestproto_b64_decode(t, strlen(t), back, sizeof(back), &n), 0);
		assert_int_equal(n, 256);
		assert_memory_equal(back, all, 256);
	}
	free(t);
}

static void test_keys_and_builders(void **state)
{
	const char *argv[] = { "echo", "42", NULL }, *env[] = { "A=1", NULL };
	char long_key[GUESTPROTO_KEY_MAX + 2];
	json_t *m;
	void *data;
	size_t len;

	assert_true(guestproto_key_valid("vm.role_1-x"));
	assert_false(guestproto_key_valid(""));
	assert_false(guestproto_key_valid(".hidden"));
	assert_false(guestproto_key_valid("../etc"));
	assert_false(guestproto_key_valid("a/b"));
	assert_false(guestproto_key_valid("a b"));
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	assert_false(guestproto_key_valid(long_key));
	long_key[GUESTPROTO_KEY_MAX] = '\0';
	assert_true(guestproto_key_valid(long_key));
	assert_null(guestproto_req_kvp_set(1, "../x", "v"));
	assert_null(guestproto_req(GUESTPROTO_ID_MAX + 1, "ping"));

	m = guestproto_req_exec(5, argv, env, "/tmp", 10, true);
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "op")), "exec");
	assert_string_equal(json_string_value(json_array_get(json_object_get(m, "argv"), 1)), "42");
	assert_string_equal(json_string_value(json_array_get(json_object_get(m, "env"), 0)), "A=1");
	assert_int_equal(json_integer_value(json_object_get(m, "timeout")), 10);
	assert_true(json_is_true(json_object_get(m, "stdin")));
	json_decref(m);

	m = guestproto_req_data(5, "stdin", "hello", 5, true);
	assert_int_equal(guestproto_msg_data(m, &data, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "hello", 5);
	free(data);
	json_decref(m);
	assert_null(guestproto_req_data(5, "stdin", argv, GUESTPROTO_CHUNK + 1, false));

	m = json_pack("{s:s}", "data", "not base64!");
	assert_int_equal(guestproto_msg_data(m, &data, &len), -EINVAL);
	json_decref(m);
	m = json_pack("{s:i}", "id", -1);
	{
		uint64_t id;
		assert_int_equal(guestproto_msg_id(m, &id), -EINVAL);
	}
	json_decref(m);

	m = json_pack("{s:b, s:s, s:i}", "ok", 0, "error", "nope", "errno", ENOENT);
	{
		const char *text;
		assert_int_equal(guestproto_reply_status(m, &text), -ENOENT);
		assert_string_equal(text, "nope");
	}
	json_decref(m);
	m = json_pack("{s:b, s:i}", "ok", 0, "errno", 1 << 20);   /* out of range errno */
	assert_int_equal(guestproto_reply_status(m, NULL), -EIO);
	json_decref(m);
}

/* A stand-in for the worker's vsock socket: answers CONNECT with `answer`, then, when it said
 * OK, sends a stream message and two replies, the second one for the request's id. */
static pid_t fake_worker(const char *path, const char *answer)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int ls = socket(AF_UNIX, SOCK_STREAM, 0);
	pid_t pid;

	strcpy(sa.sun_path, path);
	unlink(path);
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(ls, 1), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char line[64] = "";
		size_t n = 0;
		int c = accept(ls, NULL, NULL);
		json_t *req = NULL;

		while (n < sizeof(line) - 1 && read(c, line + n, 1) == 1 && line[n] != '\n')
			n++;
		line[n] = '\0';
		if (strcmp(line, "CONNECT 5150") != 0)
			_exit(3);
		if (write(c, answer, strlen(answer)) < 0)
			_exit(4);
		if (strncmp(answer, "OK", 2) != 0)
			_exit(0);
		if (guestproto_recv(c, 5000, &req) != 1)
			_exit(5);
		json_t *a = json_pack("{s:O, s:s, s:s}", "id", json_object_get(req, "id"), "type", "stdout", "data", "");
		json_t *b = json_pack("{s:i, s:s, s:b}", "id", 999, "type", "reply", "ok", 1);
		json_t *d = json_pack("{s:O, s:s, s:b, s:s}", "id", json_object_get(req, "id"), "type", "reply",
				      "ok", 1, "version", "x");
		guestproto_send(c, a);
		guestproto_send(c, b);
		guestproto_send(c, d);
		sleep(1);
		_exit(0);
	}
	close(ls);
	return pid;
}

static void test_connect_and_call(void **state)
{
	char path[] = "/tmp/guestproto-test-XXXXXX";
	char sock[128];
	json_t *req = guestproto_req_ping(41), *reply = NULL;
	int fd = -1, st;
	pid_t pid;

	assert_non_null(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/vsock", path);
	pid = fake_worker(sock, "OK 1073741824\n");
	assert_int_equal(guestproto_connect(sock, VMMS_GUESTD_PORT, 5000, &fd), 0);
	assert_int_equal(guestproto_call(fd, req, 5000, &reply), 0);
	assert_int_equal(json_integer_value(json_object_get(reply, "id")), 41);
	assert_string_equal(json_string_value(json_object_get(reply, "version")), "x");
	assert_int_equal(guestproto_reply_status(reply, NULL), 0);
	json_decref(reply);
	close(fd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(WEXITSTATUS(st), 0);

	/* A refusal, and a garbage answer, are -ECONNREFUSED. */
	pid = fake_worker(sock, "ERR no listener\n");
	assert_int_equal(guestproto_connect(sock, VMMS_GUESTD_PORT, 5000, &fd), -ECONNREFUSED);
	waitpid(pid, &st, 0);
	pid = fake_worker(sock, "OKAY\n");
	assert_int_equal(guestproto_connect(sock, VMMS_GUESTD_PORT, 5000, &fd), -ECONNREFUSED);
	waitpid(pid, &st, 0);
	unlink(sock);
	rmdir(path);
	json_decref(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_byte_by_byte),
		cmocka_unit_test(test_reader_bad_frames),
		cmocka_unit_test(test_reader_bound),
		cmocka_unit_test(test_send_recv),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_keys_and_builders),
		cmocka_unit_test(test_connect_and_call),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
