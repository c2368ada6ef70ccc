// SPDX-License-Identifier: GPL-2.0-only
/* virtio-vsock in process: the test is the guest driver (queues in anonymous memory) and the host programs (Unix sockets in a temp dir, socketpairs). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>

#include "devices/virtio/vsock.h"
#include "hv/mem.h"
#include "tests/unit/support/fake_irq.h"
#include "tests/unit/support/virtio_driver.h"

#define CID 3
#define QSZ 64
#define HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define RXBUF_LEN (4096 + HDR)
/* Guest physical layout: one descriptor table + rings per queue, then buffers. */
#define Q_DESC(q) (0x1000ULL + 0x3000ULL * (q))
#define Q_AVAIL(q) (Q_DESC(q) + 0x1000)
#define Q_USED(q) (Q_DESC(q) + 0x2000)
#define RX_BUFS 0x100000ULL  /* QSZ buffers, 0x2000 apart */
#define TX_BUFS 0x200000ULL  /* QSZ/2 slots, 0x11000 apart (header + up to 64 KiB) */
#define TX_STRIDE 0x11000ULL
#define EV_BUFS 0x0f000ULL
#define MEM_SIZE 0x800000ULL

struct fx {
	struct gmem mem;
	struct fake_irq fi;
	struct virtio_vsock *vs;
	char dir[64];
	char sock[96];
	int listen_fd;
	uint16_t avail[3], used_seen[3];
	/* Connector: hands the device one end of a socketpair, keeps the other here. */
	int connect_result;      /* -errno to refuse */
	int host_end;
	uint32_t connect_port;
	int sndbuf;              /* SO_SNDBUF for the device's end, 0 to leave it */
};

#define WAIT_FOR(cond) VDRV_WAIT_FOR(cond, 3000)

static int test_connect(void *opaque, uint32_t port)
{
	struct fx *f = opaque;
	int sv[2];

	f->connect_port = port;
	if (f->connect_result < 0)
		return f->connect_result;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	if (f->sndbuf)
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &f->sndbuf, sizeof(f->sndbuf));
	if (f->sndbuf)
		(void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &f->sndbuf, sizeof(f->sndbuf));
	if (f->host_end >= 0)
		close(f->host_end);
	f->host_end = sv[1];
	(void)fcntl(sv[1], F_SETFL, 0); /* the test's end blocks */
	return sv[0];
}

static const struct virtio_vsock_host_ops test_host_ops = { .connect = test_connect };

static void add_avail(struct fx *f, unsigned q, uint16_t head)
{
	vdrv_add_avail(&f->mem, Q_AVAIL(q), QSZ, &f->avail[q], head);
}

static void kick(struct fx *f, unsigned q)
{
	vdrv_write(&f->vs->vdev, VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT, q, 2);
}

static uint16_t used_idx(struct fx *f, unsigned q)
{
	return vdrv_used_idx(&f->mem, Q_USED(q));
}

static void used_elem(struct fx *f, unsigned q, uint16_t idx, uint32_t *id, uint32_t *len)
{
	uint32_t *e = gmem_ptr(&f->mem, Q_USED(q) + 4 + 8 * (idx % QSZ), 8);

	*id = e[0];
	*len = e[1];
}

static void rx_post(struct fx *f, unsigned id)
{
	vdrv_put_desc(&f->mem, Q_DESC(0), id, RX_BUFS + 0x2000ULL * id, RXBUF_LEN, VRING_DESC_F_WRITE, 0);
	add_avail(f, 0, (uint16_t)id);
}

static void rx_post_all(struct fx *f)
{
	for (unsigned i = 0; i < QSZ; i++)
		rx_post(f, i);
	kick(f, 0);
}

static void dev_open(struct fx *f, const struct virtio_vsock_host_ops *ops, bool rx_buffers)
{
	struct virtio_dev *v;

	f->vs = calloc(1, sizeof(*f->vs));
	assert_non_null(f->vs);
	memset(gmem_ptr(&f->mem, Q_DESC(0), 0x9000), 0, 0x9000); /* rings of a previous device */
	assert_int_equal(virtio_vsock_init(f->vs, &f->mem, &f->fi.irq, "vsock0", CID, f->listen_fd, ops, f), 0);
	v = &f->vs->vdev;
	assert_int_equal(virtio_dev_start(v), 0);
	vdrv_features(v, 1ULL << VIRTIO_F_VERSION_1);
	assert_true(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	for (unsigned q = 0; q < 3; q++) {
		vdrv_queue(v, q, QSZ, Q_DESC(q), Q_AVAIL(q), Q_USED(q));
		f->avail[q] = f->used_seen[q] = 0;
	}
	vdrv_ok(v);
	assert_true(vdrv_read(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_DRIVER_OK);
	if (rx_buffers)
		rx_post_all(f);
}

static int setup(void **state)
{
	const struct gmem_layout l[] = { { 0, MEM_SIZE } };
	struct fx *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_non_null(f);
	assert_int_equal(gmem_init_anon(&f->mem, l, 1), 0);
	fake_irq_init(&f->fi);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vmms-test-vsock-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/v.sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->listen_fd, 16), 0);
	f->host_end = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->vs) {
		virtio_dev_destroy(&f->vs->vdev);
		free(f->vs);
	}
	if (f->host_end >= 0)
		close(f->host_end);
	close(f->listen_fd);
	unlink(f->sock);
	rmdir(f->dir);
	fake_irq_destroy(&f->fi);
	gmem_destroy(&f->mem);
	free(f);
	return 0;
}

/* --- guest side packets --------------------------------------------------------------------- */

static struct virtio_vsock_hdr mkhdr(uint64_t src_cid, uint64_t dst_cid, uint32_t src_port, uint32_t dst_port,
				     uint16_t op, uint32_t len)
{
	return (struct virtio_vsock_hdr){
		.src_cid = src_cid, .dst_cid = dst_cid, .src_port = src_port, .dst_port = dst_port,
		.len = len, .type = VIRTIO_VSOCK_TYPE_STREAM, .op = op, .buf_alloc = 256 * 1024,
	};
}

/* Sends one packet on the tx queue as header + payload descriptors (or header only, or a
 * header descriptor of hdr_desc_len bytes when nonzero) and waits until the device used it. */
static void tx_raw(struct fx *f, const struct virtio_vsock_hdr *h, const void *payload, uint32_t plen,
		   uint32_t hdr_desc_len)
{
	unsigned slot = f->avail[1] % (QSZ / 2);
	uint64_t buf = TX_BUFS + TX_STRIDE * slot;
	uint16_t d = (uint16_t)(2 * slot);

	assert_true(plen <= 0x10000);
	memcpy(gmem_ptr(&f->mem, buf, HDR), h, HDR);
	if (plen)
		memcpy(gmem_ptr(&f->mem, buf + HDR, plen), payload, plen);
	if (plen) {
		vdrv_put_desc(&f->mem, Q_DESC(1), d, buf, HDR, VRING_DESC_F_NEXT, (uint16_t)(d + 1));
		vdrv_put_desc(&f->mem, Q_DESC(1), d + 1, buf + HDR, plen, 0, 0);
	} else {
		vdrv_put_desc(&f->mem, Q_DESC(1), d, buf, hdr_desc_len ? hdr_desc_len : HDR, 0, 0);
	}
	add_avail(f, 1, d);
	kick(f, 1);
	f->used_seen[1]++;
	WAIT_FOR(used_idx(f, 1) == f->used_seen[1]);
}

static void tx(struct fx *f, uint32_t src_port, uint32_t dst_port, uint16_t op, const void *payload, uint32_t plen)
{
	struct virtio_vsock_hdr h = mkhdr(CID, VSOCK_HOST_CID, src_port, dst_port, op, plen);

	tx_raw(f, &h, payload, plen, 0);
}

/* Next packet the device put on the rx queue (waits up to 3 s); the buffer is posted again. */
static uint32_t rx(struct fx *f, struct virtio_vsock_hdr *h, void *payload, size_t cap)
{
	uint32_t id, len;
	uint8_t *b;

	WAIT_FOR(used_idx(f, 0) != f->used_seen[0]);
	used_elem(f, 0, f->used_seen[0]++, &id, &len);
	assert_true(id < QSZ);
	assert_true(len >= HDR && len <= RXBUF_LEN);
	b = gmem_ptr(&f->mem, RX_BUFS + 0x2000ULL * id, RXBUF_LEN);
	memcpy(h, b, HDR);
	assert_int_equal(h->len, len - HDR);
	assert_true(h->len <= cap);
	if (payload && h->len)
		memcpy(payload, b + HDR, h->len);
	rx_post(f, id);
	kick(f, 0);
	return h->len;
}

static bool rx_pending(struct fx *f)
{
	return used_idx(f, 0) != f->used_seen[0];
}

static void expect(struct fx *f, uint16_t op, uint32_t src_port, uint32_t dst_port, struct virtio_vsock_hdr *ret)
{
	struct virtio_vsock_hdr h;

	rx(f, &h, NULL, 0);
	assert_int_equal(h.op, op);
	assert_int_equal(h.src_cid, VSOCK_HOST_CID);
	assert_int_equal(h.dst_cid, CID);
	assert_int_equal(h.type, VIRTIO_VSOCK_TYPE_STREAM);
	if (src_port != UINT32_MAX)
		assert_int_equal(h.src_port, src_port);
	assert_int_equal(h.dst_port, dst_port);
	if (ret)
		*ret = h;
}

/* Host socket helpers --------------------------------------------------------------------- */

static ssize_t read_timeout(int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, 3000) != 1)
		return -ETIMEDOUT;
	return read(fd, buf, len);
}

static void read_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read_timeout(fd, (uint8_t *)buf + got, len - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
}

static int host_dial(struct fx *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Guest connects to host port 5000 from guest port 1234; the connector hands a socketpair. */
static void guest_connect(struct fx *f)
{
	tx(f, 1234, 5000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	expect(f, VIRTIO_VSOCK_OP_RESPONSE, 5000, 1234, NULL);
	assert_int_equal(f->connect_port, 5000);
	assert_true(f->host_end >= 0);
}

/* --- tests ------------------------------------------------------------------------------- */

static void test_config_cid(void **state)
{
	struct fx *f = *state;

	dev_open(f, &test_host_ops, false);
	assert_int_equal(vdrv_read(&f->vs->vdev, VIRTIO_PCI_DEVCFG_OFF, 4), CID);
	assert_int_equal(vdrv_read(&f->vs->vdev, VIRTIO_PCI_DEVCFG_OFF + 4, 4), 0);
	assert_int_equal(vdrv_read(&f->vs->vdev, VIRTIO_PCI_COMMON_NUMQ, 2), 3);
}

static void test_init_refuses_reserved_cids(void **state)
{
	struct fx *f = *state;
	struct virtio_vsock *vs = calloc(1, sizeof(*vs));

	assert_non_null(vs);
	assert_int_equal(virtio_vsock_init(vs, &f->mem, &f->fi.irq, "v", 2, -1, NULL, NULL), -EINVAL);
	assert_int_equal(virtio_vsock_init(vs, &f->mem, &f->fi.irq, "v", 0, -1, NULL, NULL), -EINVAL);
	assert_int_equal(virtio_vsock_init(vs, &f->mem, &f->fi.irq, "v", UINT32_MAX, -1, NULL, NULL), -EINVAL);
	free(vs);
}

static void test_refused_port_gets_rst(void **state)
{
	struct fx *f = *state;

	f->connect_result = -ECONNREFUSED;
	dev_open(f, &test_host_ops, true);
	tx(f, 1111, 9999, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	expect(f, VIRTIO_VSOCK_OP_RST, 9999, 1111, NULL);
	assert_int_equal(f->connect_port, 9999);
	/* Without a connector every guest connection is refused too. */
	virtio_dev_destroy(&f->vs->vdev);
	free(f->vs);
	dev_open(f, NULL, true);
	tx(f, 1112, 22, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	expect(f, VIRTIO_VSOCK_OP_RST, 22, 1112, NULL);
	assert_int_equal(virtio_vsock_nr_conns(f->vs), 0);
}

static void test_guest_connect_data_and_close(void **state)
{
	struct fx *f = *state;
	struct virtio_vsock_hdr h;
	char buf[64];

	dev_open(f, &test_host_ops, true);
	guest_connect(f);
	tx(f, 1234, 5000, VIRTIO_VSOCK_OP_RW, "hello", 5);
	read_exact(f->host_end, buf, 5);
	assert_memory_equal(buf, "hello", 5);

	assert_int_equal(write(f->host_end, "world!", 6), 6);
	assert_int_equal(rx(f, &h, buf, sizeof(buf)), 6);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(h.src_port, 5000);
	assert_int_equal(h.dst_port, 1234);
	assert_int_equal(h.buf_alloc, VSOCK_BUF_ALLOC);
	assert_int_equal(h.fwd_cnt, 5); /* the 5 bytes went to the host */
	assert_memory_equal(buf, "world!", 6);

	/* Clean close from the guest: SHUTDOWN both ways, the device answers RST. */
	h = mkhdr(CID, VSOCK_HOST_CID, 1234, 5000, VIRTIO_VSOCK_OP_SHUTDOWN, 0);
	h.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
	tx_raw(f, &h, NULL, 0, 0);
	expect(f, VIRTIO_VSOCK_OP_RST, 5000, 1234, NULL);
	assert_int_equal(read_timeout(f->host_end, buf, sizeof(buf)), 0); /* EOF on the host */
	assert_int_equal(virtio_vsock_nr_conns(f->vs), 0);
}

static void test_host_eof_sends_shutdown(void **state)
{
	struct fx *f = *state;
	struct virtio_vsock_hdr h;
	char buf[16];

	dev_open(f, &test_host_ops, true);
	guest_connect(f);
	assert_int_equal(write(f->host_end, "bye", 3), 3);
	assert_int_equal(shutdown(f->host_end, SHUT_WR), 0);
	assert_int_equal(rx(f, &h, buf, sizeof(buf)), 3);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	expect(f, VIRTIO_VSOCK_OP_SHUTDOWN, 5000, 1234, &h);
	assert_true(h.flags & VIRTIO_VSOCK_SHUTDOWN_SEND);
	/* Half-closed: the guest may still send. */
	tx(f, 1234, 5000, VIRTIO_VSOCK_OP_RW, "late", 4);
	read_exact(f->host_end, buf, 4);
	assert_memory_equal(buf, "late", 4);
	/* The guest's RST ends it without an answer. */
	tx(f, 1234, 5000, VIRTIO_VSOCK_OP_RST, NULL, 0);
	assert_int_equal(virtio_vsock_nr_conns(f->vs), 0);
	assert_int_equal(read_timeout(f->host_end, buf, sizeof(buf)), 0);
	assert_false(rx_pending(f));
}

static void test_host_connect(void **state)
{
	struct fx *f = *state;
	struct virtio_vsock_hdr h;
	char buf[64], expect_ok[32];
	int fd;

	dev_open(f, &test_host_ops, true);
	fd = host_dial(f);
	/* Data right behind the CONNECT line must not be eaten by the handshake. */
	assert_int_equal(write(fd, "CONNECT 52\nearly", 16), 16);
	expect(f, VIRTIO_VSOCK_OP_REQUEST, UINT32_MAX, 52, &h);
	assert_true(h.src_port >= (1u << 30));
	tx(f, 52, h.src_port, VIRTIO_VSOCK_OP_RESPONSE, NULL, 0);
	snprintf(expect_ok, sizeof(expect_ok), "OK %u\n", h.src_port);
	read_exact(fd, buf, strlen(expect_ok));
	assert_memory_equal(buf, expect_ok, strlen(expect_ok));
	assert_int_equal(rx(f, &h, buf, sizeof(buf)), 5);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	assert_memory_equal(buf, "early", 5);
	tx(f, 52, h.src_port, VIRTIO_VSOCK_OP_RW, "pong", 4);
	read_exact(fd, buf, 4);
	assert_memory_equal(buf, "pong", 4);
	/* Guest resets: the host sees EOF. */
	tx(f, 52, h.src_port, VIRTIO_VSOCK_OP_RST, NULL, 0);
	assert_int_equal(read_timeout(fd, buf, sizeof(buf)), 0);
	close(fd);
}

static void test_host_connect_refused_and_bad_lines(void **state)
{
	struct fx *f = *state;
	struct virtio_vsock_hdr h;
	char buf[64];
	int fd;

	dev_open(f, &test_host_ops, true);
	fd = host_dial(f);
	assert_int_equal(write(fd, "CONNECT 7\r\n", 11), 11);
	expect(f, VIRTIO_VSOCK_OP_REQUEST, UINT32_MAX, 7, &h);
	tx(f, 7, h.src_port, VIRTIO_VSOCK_OP_RST, NULL, 0); /* nobody listens in the guest */
	assert_int_equal(read_timeout(fd, buf, sizeof(buf)), 0);
	close(fd);

	static const char *const bad[] = {
		"HELLO 1\n", "CONNECT\n", "CONNECT -1\n", "CONNECT 4294967296\n", "CONNECT 12x\n",
		"CONNECT 1111111111111111111111111111111111111111\n", "CONNECT 0000000000000000000000000000000000001",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = host_dial(f);
		assert_int_equal(write(fd, bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
		ssize_t n = read_timeout(fd, buf, sizeof(buf));

		/* Closed without a reply (ECONNRESET when the device left bytes unread). */
		assert_true(n == 0 || (n == -1 && errno == ECONNRESET));
		close(fd);
	}
	assert_false(rx_pending(f));
	assert_int_equal(virtio_vsock_nr_conns(f->vs), 0);
}

static void test_host_gives_up_while_connecting(void **state)
{
	struct fx *f = *state;
	struct virtio_vsock_hdr h;
	int fd;

	dev_open(f, &test_host_ops, true);
	fd = host_dial(f);
	assert_int_equal(write(fd, "CONNECT 9\n", 10), 10);
	expect(f, VIRTIO_VSOCK_OP_REQUEST, UINT32_MAX, 9, &h);
	assert_int_equal(virtio_vsock_nr_conns(f->vs), 1);
	close(fd); /* the guest never answered; the host leaves */
	expect(f, VIRTIO_VSOCK_OP_RST, h.src_port, 9, NULL);
	assert_int_equal(virtio_vsock_nr_conns(f->vs), 0);
	/* A late RESPONSE finds nothing and is answered with RST. */
	tx(f, 9, h.src_port, VIRTIO_VSOCK_OP_RESPONSE, NULL, 0);
	expect(f, VIRTIO_VSOCK_OP_RST, h.src_port, 9, NULL);
}

static void test_malformed_packets(void **state)
{
	struct fx *f = *state;
	struct virtio_vsock_hdr h;
	uint64_t bad0;
	char buf[16];

	dev_open(f, &test_host_ops, true);
	/* Header shorter than 44 bytes: dropped. */
	h = mkhdr(CID, VSOCK_HOST_CID, 1, 2, VIRTIO_VSOCK_OP_REQUEST, 0);
	tx_raw(f, &h, NULL, 0, 20);
	/* Spoofed source CID: dropped, nobody to answer. */
	h = mkhdr(7, VSOCK_HOST_CID, 1, 2, VIRTIO_VSOCK_OP_REQUEST, 0);
	tx_raw(f, &h, NULL, 0, 0);
	/* len beyond the buffer that carries it. */
	h = mkhdr(CID, VSOCK_HOST_CID, 1, 2, VIRTIO_VSOCK_OP_RW, 0xffffffff);
	tx_raw(f, &h, NULL, 0, 0);
	h = mkhdr(CID, VSOCK_HOST_CID, 1, 2, VIRTIO_VSOCK_OP_RW, 100);
	tx_raw(f, &h, "x", 1, 0);
	bad0 = f->vs->stats.bad_packets;
	assert_int_equal(bad0, 4);
	assert_false(rx_pending(f));
	assert_int_equal(f->vs->stats.rst_sent, 0);

	/* Seqpacket (not offered) and another VM's CID: RST. */
	h = mkhdr(CID, VSOCK_HOST_CID, 1, 2, VIRTIO_VSOCK_OP_REQUEST, 0);
	h.type = VIRTIO_VSOCK_TYPE_SEQPACKET;
	tx_raw(f, &h, NULL, 0, 0);
	expect(f, VIRTIO_VSOCK_OP_RST, 2, 1, NULL);
	h = mkhdr(CID, 4, 1, 2, VIRTIO_VSOCK_OP_REQUEST, 0);
	tx_raw(f, &h, NULL, 0, 0);
	rx(f, &h, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(h.src_cid, 4);
	/* Packets for a connection that does not exist: RST (but never for RST). */
	tx(f, 10, 20, VIRTIO_VSOCK_OP_RW, "zz", 2);
	expect(f, VIRTIO_VSOCK_OP_RST, 20, 10, NULL);
	tx(f, 10, 20, VIRTIO_VSOCK_OP_RST, NULL, 0);
	tx(f, 10, 20, 99, NULL, 0);
	expect(f, VIRTIO_VSOCK_OP_RST, 20, 10, NULL);
	assert_false(rx_pending(f));

	/* On a live connection: an unknown op, a RESPONSE out of turn, a second REQUEST each
	 * reset it. */
	static const uint16_t ops[] = { VIRTIO_VSOCK_OP_INVALID, 42, VIRTIO_VSOCK_OP_RESPONSE,
					VIRTIO_VSOCK_OP_REQUEST };
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		guest_connect(f);
		tx(f, 1234, 5000, ops[i], NULL, 0);
		expect(f, VIRTIO_VSOCK_OP_RST, 5000, 1234, NULL);
		assert_int_equal(read_timeout(f->host_end, buf, sizeof(buf)), 0);
		assert_int_equal(virtio_vsock_nr_conns(f->vs), 0);
	}
	/* And a bad length on a live connection too. */
	guest_connect(f);
	h = mkhdr(CID, VSOCK_HOST_CID, 1234, 5000, VIRTIO_VSOCK_OP_RW, 70000);
	tx_raw(f, &h, "abc", 3, 0);
	expect(f, VIRTIO_VSOCK_OP_RST, 5000, 1234, NULL);
	assert_int_equal(read_timeout(f->host_end, buf, sizeof(buf)), 0);

	/* The device still works and was never put in NEEDS_RESET. */
	assert_false(vdrv_read(&f->vs->vdev, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	guest_connect(f);
	tx(f, 1234, 5000, VIRTIO_VSOCK_OP_RW, "ok", 2);
	read_exact(f->host_end, buf, 2);
	assert_memory_equal(buf, "ok", 2);
}

static void test_credit_abuse(void **state)
{
	struct fx *f = *state;
	static uint8_t chunk[16384];
	unsigned sent = 0;
	char buf[16];

	f->sndbuf = 4096; /* the host reads nothing: bytes pile up in the device */
	dev_open(f, &test_host_ops, true);
	guest_connect(f);
	memset(chunk, 'a', sizeof(chunk));
	/* Our buf_alloc is 64 KiB; the guest keeps sending without waiting for credit. */
	while (!rx_pending(f) && sent < 4 * VSOCK_BUF_ALLOC) {
		tx(f, 1234, 5000, VIRTIO_VSOCK_OP_RW, chunk, sizeof(chunk));
		sent += sizeof(chunk);
	}
	expect(f, VIRTIO_VSOCK_OP_RST, 5000, 1234, NULL);
	assert_int_equal(f->vs->stats.credit_abuse, 1);
	/* The socket buffers plus our 64 KiB: the guest got no further than that. */
	assert_true(sent <= VSOCK_BUF_ALLOC + 3 * sizeof(chunk) + 64 * 1024);
	assert_int_equal(virtio_vsock_nr_conns(f->vs), 0);
	/* Whatever reached the host socket is a prefix of what was sent; then EOF. */
	for (;;) {
		ssize_t n = read_timeout(f->host_end, buf, sizeof(buf));

		assert_true(n >= 0);
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(buf[i], 'a');
	}
}

static void test_flow_control_both_ways(void **state)
{
	struct fx *f = *state;
	struct virtio_vsock_hdr h;
	static uint8_t big[8192];
	char buf[4096];
	unsigned got = 0;

	f->sndbuf = 4096;
	dev_open(f, &test_host_ops, true);
	/* Guest advertises only 100 bytes of buffer. */
	h = mkhdr(CID, VSOCK_HOST_CID, 1234, 5000, VIRTIO_VSOCK_OP_REQUEST, 0);
	h.buf_alloc = 100;
	tx_raw(f, &h, NULL, 0, 0);
	expect(f, VIRTIO_VSOCK_OP_RESPONSE, 5000, 1234, NULL);
	memset(big, 'b', sizeof(big));
	assert_int_equal(write(f->host_end, big, 1000), 1000);
	while (got < 100) {
		got += rx(f, &h, buf, sizeof(buf));
		assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	}
	assert_int_equal(got, 100);
	/* Out of credit: the device asks once, then waits. */
	expect(f, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 5000, 1234, NULL);
	nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	assert_false(rx_pending(f));
	/* The guest consumed them: 900 more may come, in 100-byte windows. */
	while (got < 1000) {
		unsigned target = got + 100;

		h = mkhdr(CID, VSOCK_HOST_CID, 1234, 5000, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
		h.buf_alloc = 100;
		h.fwd_cnt = got;
		tx_raw(f, &h, NULL, 0, 0);
		while (got < target) {
			uint32_t n = rx(f, &h, buf, sizeof(buf));

			if (h.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST)
				continue;
			assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
			got += n;
			assert_true(got <= target); /* never beyond the window */
		}
	}
	assert_int_equal(got, 1000);
	nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	while (rx_pending(f)) {
		rx(f, &h, NULL, 0);
		assert_int_equal(h.op, VIRTIO_VSOCK_OP_CREDIT_REQUEST);
	}

	/* Guest to host: a CREDIT_REQUEST is answered with our numbers. */
	tx(f, 1234, 5000, VIRTIO_VSOCK_OP_CREDIT_REQUEST, NULL, 0);
	expect(f, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 5000, 1234, &h);
	assert_int_equal(h.buf_alloc, VSOCK_BUF_ALLOC);
	assert_int_equal(h.fwd_cnt, 0);
	/* 48 KiB against a host that does not read: most of it waits in the device. Once the
	 * host reads, the device forwards it and tells the guest (fwd_cnt) by itself. */
	for (unsigned i = 0; i < 6; i++)
		tx(f, 1234, 5000, VIRTIO_VSOCK_OP_RW, big, sizeof(big));
	assert_false(rx_pending(f));
	for (unsigned total = 0; total < 6 * sizeof(big);) {
		ssize_t n = read_timeout(f->host_end, buf, sizeof(buf));

		assert_true(n > 0);
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(buf[i], 'b');
		total += (unsigned)n;
	}
	expect(f, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 5000, 1234, &h);
	nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	while (rx_pending(f))
		expect(f, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 5000, 1234, &h);
	/* The guest's last word leaves it at least half our buffer. */
	assert_true(h.fwd_cnt <= 6 * sizeof(big));
	assert_true(6 * sizeof(big) - h.fwd_cnt <= VSOCK_BUF_ALLOC / 2);
}

static void test_rst_flood_is_bounded(void **state)
{
	struct fx *f = *state;
	struct virtio_vsock_hdr h;
	unsigned n = 0;

	f->connect_result = -ECONNREFUSED;
	dev_open(f, &test_host_ops, false); /* no receive buffers: replies must wait */
	for (unsigned i = 0; i < VSOCK_CTL_QUEUE + 100; i++)
		tx(f, 10000 + i, 80, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	assert_int_equal(f->vs->stats.ctl_dropped, 100);
	rx_post_all(f);
	while (n < VSOCK_CTL_QUEUE) {
		rx(f, &h, NULL, 0);
		assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
		assert_int_equal(h.dst_port, 10000 + n);
		n++;
	}
	nanosleep(&(struct timespec){ 0, 20000000 }, NULL);
	assert_false(rx_pending(f));
}

static void test_connection_cap(void **state)
{
	struct fx *f = *state;
	int *ends = calloc(VSOCK_MAX_CONNS, sizeof(int));

	assert_non_null(ends);
	dev_open(f, &test_host_ops, true);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		tx(f, 20000 + i, 5000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
		expect(f, VIRTIO_VSOCK_OP_RESPONSE, 5000, 20000 + i, NULL);
		ends[i] = f->host_end;
		f->host_end = -1;
	}
	assert_int_equal(virtio_vsock_nr_conns(f->vs), VSOCK_MAX_CONNS);
	tx(f, 1, 5000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	expect(f, VIRTIO_VSOCK_OP_RST, 5000, 1, NULL);
	assert_int_equal(f->vs->stats.conns_refused, 1);
	/* Host-initiated connections are refused too (closed at once). */
	{
		int fd = host_dial(f);
		char c;

		assert_int_equal(read_timeout(fd, &c, 1), 0);
		close(fd);
	}
	/* A transport reset (driver reload) drops them all; the host ends see EOF. */
	vdrv_write(&f->vs->vdev, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	assert_int_equal(virtio_vsock_nr_conns(f->vs), 0);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		char c;

		assert_int_equal(read_timeout(ends[i], &c, 1), 0);
		close(ends[i]);
	}
	free(ends);
}

static void test_transport_reset_event(void **state)
{
	struct fx *f = *state;
	uint32_t id, len, ev;
	char c;

	dev_open(f, &test_host_ops, true);
	vdrv_put_desc(&f->mem, Q_DESC(2), 0, EV_BUFS, 4, VRING_DESC_F_WRITE, 0);
	add_avail(f, 2, 0);
	kick(f, 2);
	guest_connect(f);
	assert_int_equal(virtio_vsock_nr_conns(f->vs), 1);
	virtio_vsock_transport_reset(f->vs);
	assert_int_equal(virtio_vsock_nr_conns(f->vs), 0);
	WAIT_FOR(used_idx(f, 2) == 1);
	used_elem(f, 2, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 4);
	memcpy(&ev, gmem_ptr(&f->mem, EV_BUFS, 4), 4);
	assert_int_equal(ev, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	assert_int_equal(read_timeout(f->host_end, &c, 1), 0);
	/* The guest reconnects afterwards. */
	guest_connect(f);
}

static void test_bad_rx_buffers(void **state)
{
	struct fx *f = *state;
	struct virtio_vsock_hdr h;
	uint32_t id, len;

	f->connect_result = -ECONNREFUSED;
	dev_open(f, &test_host_ops, false);
	/* A receive buffer too small for a header, and a read-only one: handed back empty. */
	vdrv_put_desc(&f->mem, Q_DESC(0), 0, RX_BUFS, 16, VRING_DESC_F_WRITE, 0);
	add_avail(f, 0, 0);
	vdrv_put_desc(&f->mem, Q_DESC(0), 1, RX_BUFS + 0x2000, RXBUF_LEN, 0, 0);
	add_avail(f, 0, 1);
	kick(f, 0);
	tx(f, 5, 6, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	WAIT_FOR(used_idx(f, 0) == 2);
	used_elem(f, 0, 0, &id, &len);
	assert_int_equal(len, 0);
	used_elem(f, 0, 1, &id, &len);
	assert_int_equal(len, 0);
	f->used_seen[0] = 2;
	rx_post(f, 2);
	kick(f, 0);
	rx(f, &h, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	assert_false(vdrv_read(&f->vs->vdev, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_cid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_refuses_reserved_cids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_port_gets_rst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_connect_data_and_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_eof_sends_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_connect_refused_and_bad_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_gives_up_while_connecting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_packets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_abuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flow_control_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rst_flood_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transport_reset_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_rx_buffers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
