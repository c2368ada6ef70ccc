// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of lib/jsonframe: frames with descriptors, oversize and truncated input, bounded lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/jsonframe.h"

static void test_encode_decode(void **state)
{
	json_t *m = json_pack("{s:s, s:i}", "op", "start", "n", 5), *out = NULL;
	char *buf;
	size_t len, used = 0;

	assert_int_equal(jsonframe_encode(m, &buf, &len), 0);
	assert_int_equal((unsigned char)buf[0] << 24 | (unsigned char)buf[1] << 16 | (unsigned char)buf[2] << 8 |
			 (unsigned char)buf[3], len - 4);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(jsonframe_decode(buf, i, &out, &used), 0);   /* truncated: need more */
	assert_int_equal(jsonframe_decode(buf, len, &out, &used), 1);
	assert_int_equal(used, len);
	assert_true(json_equal(m, out));
	json_decref(out);
	buf[4] = '#';
	assert_int_equal(jsonframe_decode(buf, len, &out, &used), -EBADMSG);
	free(buf);
	json_decref(m);
	assert_int_equal(jsonframe_decode("\x00\x10\x00\x01", 4, &out, &used), -EMSGSIZE);
}

static void test_socket_fds(void **state)
{
	int sv[2], fds[JSONFRAME_MAX_FDS], p[2], too_many[9];
	size_t nfds = 0;
	json_t *m = json_pack("{s:s}", "op", "hello"), *out = NULL;
	char c;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(jsonframe_send(sv[0], m, &p[1], 1), 0);
	assert_int_equal(jsonframe_recv(sv[1], &out, fds, &nfds), 1);
	assert_true(json_equal(m, out));
	assert_int_equal(nfds, 1);
	assert_int_equal(write(fds[0], "x", 1), 1);       /* the passed fd is the pipe's write end */
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'x');
	close(fds[0]);
	json_decref(out);
	for (int i = 0; i < 9; i++)
		too_many[i] = p[0];
	assert_int_equal(jsonframe_send(sv[0], m, too_many, 9), -EINVAL);

	/* Oversize announced length, then a truncated frame, then a clean end. */
	assert_int_equal(write(sv[0], "\x00\x20\x00\x00", 4), 4);
	assert_int_equal(jsonframe_recv(sv[1], &out, NULL, NULL), -EMSGSIZE);
	assert_int_equal(write(sv[0], "\x00\x00\x00\x09{\"a\"", 8), 8);
	shutdown(sv[0], SHUT_WR);
	assert_int_equal(jsonframe_recv(sv[1], &out, NULL, NULL), -EPROTO);
	assert_int_equal(jsonframe_recv(sv[1], &out, NULL, NULL), 0);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
	json_decref(m);
}

static void test_lines(void **state)
{
	struct jsonline jl;
	char *line, big[2000];
	size_t len;
	int sv[2];

	jsonline_init(&jl, 1024);
	assert_int_equal(jsonline_feed(&jl, "{\"a\":1}\r\n{\"b\"", 13), 0);
	assert_int_equal(jsonline_next(&jl, &line, &len), 1);
	assert_string_equal(line, "{\"a\":1}");
	assert_int_equal(jsonline_next(&jl, &line, &len), 0);
	assert_int_equal(jsonline_feed(&jl, ":2}\n", 4), 0);
	assert_int_equal(jsonline_next(&jl, &line, &len), 1);
	assert_string_equal(line, "{\"b\":2}");
	memset(big, 'x', sizeof(big));
	assert_int_equal(jsonline_feed(&jl, big, 1025), -EMSGSIZE);
	jsonline_free(&jl);

	/* Through a socket: a line of exactly max passes, one byte more is refused. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	jsonline_init(&jl, 1024);
	big[1024] = '\n';
	assert_int_equal(write(sv[0], big, 1025), 1025);
	while (jsonline_read(&jl, sv[1]) > 0)
		;
	assert_int_equal(jsonline_next(&jl, &line, &len), 1);
	assert_int_equal(len, 1024);
	assert_int_equal(jsonline_read(&jl, sv[1]), -EAGAIN);
	assert_int_equal(write(sv[0], big, 1024), 1024);
	assert_int_equal(write(sv[0], "y", 1), 1);
	{
		int r;

		while ((r = jsonline_read(&jl, sv[1])) > 0)
			;
		assert_int_equal(r, -EMSGSIZE);
	}
	close(sv[0]);
	assert_int_equal(jsonline_next(&jl, &line, &len), -EMSGSIZE);
	jsonline_free(&jl);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_decode),
		cmocka_unit_test(test_socket_fds),
		cmocka_unit_test(test_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
