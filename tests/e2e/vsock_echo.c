// SPDX-License-Identifier: GPL-2.0-only
/*
 * Guest side of the vsock end-to-end test (static, runs in the bundled guest): echoes one
 * connection on vsock port PORT until EOF, then connects to the host (CID 2) port HOSTPORT,
 * says hello and prints the host's answer. Reports on stdout as "VMMS-TEST: ..." lines.
 * Usage: vsock_echo PORT HOSTPORT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

static int fail(const char *what)
{
	printf("VMMS-TEST: FAIL %s: %s\n", what, strerror(errno));
	fflush(stdout);
	return 1;
}

static int echo(unsigned port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
	static char buf[65536];
	unsigned long long total = 0;
	int l, c;

	l = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (l < 0)
		return fail("socket(AF_VSOCK)");
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0)
		return fail("bind/listen");
	printf("VMMS-TEST: vsock-listening %u\n", port);
	fflush(stdout);
	c = accept(l, NULL, NULL);
	if (c < 0)
		return fail("accept");
	for (;;) {
		ssize_t n = read(c, buf, sizeof(buf)), off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("read");
		if (n == 0)
			break;
		while (off < n) {
			ssize_t w = write(c, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return fail("write");
			off += w;
		}
		total += (unsigned long long)n;
	}
	close(c);
	close(l);
	printf("VMMS-TEST: vsock-echoed %llu\n", total);
	fflush(stdout);
	return 0;
}

static int hello(unsigned port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port };
	static const char msg[] = "hello from the guest\n";
	char line[128];
	size_t got = 0;
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (s < 0)
		return fail("socket(AF_VSOCK)");
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail("connect to host");
	if (write(s, msg, sizeof(msg) - 1) != (ssize_t)(sizeof(msg) - 1))
		return fail("write to host");
	while (got < sizeof(line) - 1) {
		ssize_t n = read(s, line + got, 1);

		if (n <= 0 || line[got] == '\n')
			break;
		got++;
	}
	line[got] = '\0';
	close(s);
	printf("VMMS-TEST: vsock-host-said %s\n", line);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: vsock_echo PORT HOSTPORT\n");
		return 2;
	}
	if (echo((unsigned)strtoul(argv[1], NULL, 10)))
		return 1;
	return hello((unsigned)strtoul(argv[2], NULL, 10));
}
