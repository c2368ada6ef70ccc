// SPDX-License-Identifier: GPL-2.0-only
// Golden-file tests for the domain XML mapping: good/NAME.xml must dump to expected/NAME.txt, bad/NAME.xml must fail with bad/NAME.err.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/domxml.h"
#include "lib/util.h"
#include "tests/unit/support/golden.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Tests run from the repository root (make unit-tests). Set DOMXML_UPDATE_GOLDEN=1 to rewrite
 * expected/NAME.txt and bad/NAME.err from the current output; review the diff before keeping it. */
#define GOLDEN_DIR "tests/unit/lib/domxml"

/* Every bad case and the error it must return; a bad/NAME.xml missing here fails the test. */
static const struct golden_case bad_cases[] = {
	{ "not-xml", -EINVAL },
	{ "truncated", -EINVAL },
	{ "not-domain", -EINVAL },
	{ "schema-violation", -EINVAL },
	{ "schema-unknown-element", -EINVAL },
	{ "billion-laughs", -EINVAL },
	{ "xxe", -EINVAL },
	{ "type-qemu", -EOPNOTSUPP },
	{ "domain-id", -EOPNOTSUPP },
	{ "interface", -EOPNOTSUPP },
	{ "graphics", -EOPNOTSUPP },
	{ "emulator", -EOPNOTSUPP },
	{ "controller", -EOPNOTSUPP },
	{ "seclabel", -EOPNOTSUPP },
	{ "disk-qcow2", -EOPNOTSUPP },
	{ "disk-bus-sata", -EOPNOTSUPP },
	{ "disk-bus-inferred-ide", -EOPNOTSUPP },
	{ "disk-shareable", -EOPNOTSUPP },
	{ "disk-address", -EOPNOTSUPP },
	{ "disk-cdrom", -EOPNOTSUPP },
	{ "disk-block", -EOPNOTSUPP },
	{ "disk-relative-path", -EINVAL },
	{ "disk-serial-too-long", -ERANGE },
	{ "duplicate-target", -EINVAL },
	{ "too-many-disks", -ERANGE },
	{ "second-serial", -EOPNOTSUPP },
	{ "serial-port-1", -EOPNOTSUPP },
	{ "serial-tcp", -EOPNOTSUPP },
	{ "console-differs", -EOPNOTSUPP },
	{ "console-target-xen", -EOPNOTSUPP },      /* leaked the source path once (LeakSanitizer) */
	{ "console-socket-path-too-long", -ERANGE },
	{ "too-many-vcpus", -ERANGE },
	{ "vcpu-current", -EOPNOTSUPP },
	{ "memory-zero", -ERANGE },
	{ "memory-too-small", -ERANGE },
	{ "memory-too-large", -ERANGE },
	{ "memory-overflow", -ERANGE },
	{ "memory-missing", -EINVAL },
	{ "current-memory-differs", -EOPNOTSUPP },
	{ "bad-name", -EINVAL },
	{ "bad-name-slash", -EINVAL },
	{ "bad-name-too-long", -EINVAL },
	{ "relative-kernel", -EINVAL },
	{ "relative-initrd", -EINVAL },
	{ "duplicate-kernel", -EINVAL },            /* the schema hint leaked the first path once */
	{ "kernel-windows-path", -EINVAL },
	{ "disk-path-control-char", -EINVAL },
	{ "cmdline-newline", -EINVAL },
	{ "no-kernel", -EOPNOTSUPP },
	{ "boot-dev", -EOPNOTSUPP },
	{ "loader", -EOPNOTSUPP },
	{ "vsock-cid-reserved", -ERANGE },
	{ "vsock-cid-any", -ERANGE },
	{ "vsock-cid-no-address", -EINVAL },
	{ "vsock-transitional", -EOPNOTSUPP },
	{ "vsock-address", -EOPNOTSUPP },
	{ "machine-type", -EOPNOTSUPP },
	{ "on-reboot-preserve", -EOPNOTSUPP },
	{ "on-crash-coredump", -EOPNOTSUPP },
	{ "clock-localtime", -EOPNOTSUPP },
	{ "feature-hyperv", -EOPNOTSUPP },
	{ "cpu-custom", -EOPNOTSUPP },
	{ "cpu-topology", -EOPNOTSUPP },
	{ "memballoon-virtio", -EOPNOTSUPP },
	{ "rng-egd", -EOPNOTSUPP },
};

static void test_good_cases(void **state)
{
	char **names, **expected;
	size_t n = golden_list(GOLDEN_DIR "/good", ".xml", &names);
	size_t ne = golden_list(GOLDEN_DIR "/expected", ".txt", &expected);
	bool have_minimal = false, have_full = false;
	int failures = 0;

	assert_true(n >= 3);
	for (size_t i = 0; i < n; i++) {
		char path[512], exp_path[512], err[512];
		struct vm_config *c = NULL;
		_cleanup_free_ char *xml = NULL, *want = NULL, *got = NULL;
		size_t len;
		int r;

		have_minimal |= strcmp(names[i], "minimal") == 0;
		have_full |= strcmp(names[i], "full") == 0;
		snprintf(path, sizeof(path), GOLDEN_DIR "/good/%s.xml", names[i]);
		snprintf(exp_path, sizeof(exp_path), GOLDEN_DIR "/expected/%s.txt", names[i]);
		xml = golden_read(path, &len);
		assert_non_null(xml);
		r = domxml_parse(xml, len, NULL, &c, err, sizeof(err));
		if (r < 0) {
			print_error("good/%s.xml: refused (%d): %s\n", names[i], r, err);
			failures++;
			continue;
		}
		got = golden_dump_vm_config(c);
		vm_config_free(c);
		if (golden_update("DOMXML_UPDATE_GOLDEN"))
			golden_write(exp_path, got);
		want = golden_read(exp_path, NULL);
		if (!want) {
			print_error("good/%s.xml: %s is missing; its dump is:\n%s", names[i], exp_path, got);
			failures++;
		} else if (strcmp(want, got) != 0) {
			print_error("good/%s.xml: dump differs from %s\n--- expected\n%s--- got\n%s", names[i],
				    exp_path, want, got);
			failures++;
		}
	}
	/* A stale expected file would otherwise go unnoticed. */
	for (size_t i = 0; i < ne; i++) {
		char path[512];
		struct stat st;

		snprintf(path, sizeof(path), GOLDEN_DIR "/good/%s.xml", expected[i]);
		if (stat(path, &st) < 0) {
			print_error("expected/%s.txt has no good/%s.xml\n", expected[i], expected[i]);
			failures++;
		}
	}
	golden_list_free(names, n);
	golden_list_free(expected, ne);
	assert_true(have_minimal);
	assert_true(have_full);
	assert_int_equal(failures, 0);
}

static void test_bad_cases(void **state)
{
	char **names;
	size_t n = golden_list(GOLDEN_DIR "/bad", ".xml", &names);
	int failures = 0;

	assert_true(n >= 15);
	for (size_t i = 0; i < n; i++) {
		char path[512], err_path[512], err[1024];
		_cleanup_free_ char *xml = NULL, *want = NULL;
		const int *want_code = golden_case_err(bad_cases, ARRAY_SIZE(bad_cases), names[i]);
		size_t len;
		int r;

		snprintf(path, sizeof(path), GOLDEN_DIR "/bad/%s.xml", names[i]);
		snprintf(err_path, sizeof(err_path), GOLDEN_DIR "/bad/%s.err", names[i]);
		xml = golden_read(path, &len);
		assert_non_null(xml);
		r = golden_domxml_refuse(xml, len, NULL, 0, err, sizeof(err));
		if (r >= 0) {
			print_error("bad/%s.xml: accepted\n", names[i]);
			failures++;
			continue;
		}
		if (!want_code) {
			print_error("bad/%s.xml: no entry in bad_cases[] (got %d: %s)\n", names[i], r, err);
			failures++;
		} else if (r != *want_code) {
			print_error("bad/%s.xml: returned %d, expected %d (%s)\n", names[i], r, *want_code, err);
			failures++;
		}
		if (golden_update("DOMXML_UPDATE_GOLDEN"))
			golden_write_line(err_path, err);
		want = golden_read_line(err_path);
		if (!want) {
			print_error("bad/%s.xml: %s is missing; the error is:\n%s\n", names[i], err_path, err);
			failures++;
			continue;
		}
		if (strcmp(want, err) != 0) {
			print_error("bad/%s.xml: error differs\n  expected: %s\n  got:      %s\n", names[i], want, err);
			failures++;
		}
	}
	/* Every table entry has its file: a deleted case is noticed. */
	for (size_t k = 0; k < ARRAY_SIZE(bad_cases); k++) {
		bool found = false;
		for (size_t i = 0; i < n; i++)
			found |= strcmp(bad_cases[k].name, names[i]) == 0;
		if (!found) {
			print_error("bad_cases[] names %s but bad/%s.xml is missing\n", bad_cases[k].name,
				    bad_cases[k].name);
			failures++;
		}
	}
	golden_list_free(names, n);
	assert_int_equal(failures, 0);
}

/* A valid definition padded with a comment to exactly len bytes. */
static char *padded_definition(size_t len)
{
	static const char head[] = "<domain type='kvm'><name>big</name><memory unit='MiB'>64</memory>"
				   "<os><type>hvm</type><kernel>/boot/vmlinuz</kernel></os></domain>\n<!--";
	static const char tail[] = "-->\n";
	char *s = malloc(len + 1);

	assert_non_null(s);
	assert_true(len > sizeof(head) + sizeof(tail));
	memcpy(s, head, sizeof(head) - 1);
	memset(s + sizeof(head) - 1, 'x', len - (sizeof(head) - 1) - (sizeof(tail) - 1));
	memcpy(s + len - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
	s[len] = '\0';
	return s;
}

static void test_size_limit(void **state)
{
	char tmpl[] = "/tmp/test_domxml.XXXXXX", want[256], err[256];
	struct vm_config *c = NULL;
	_cleanup_free_ char *big = padded_definition(DOMXML_MAX_SIZE + 1);
	int fd, r;

	/* In memory: one byte over the limit is refused before parsing, the limit itself is fine. */
	r = domxml_parse(big, DOMXML_MAX_SIZE + 1, NULL, &c, err, sizeof(err));
	assert_int_equal(r, -EFBIG);
	assert_string_equal(err, "definition is 1048577 bytes; at most 1048576 are accepted");
	assert_null(c);
	free(big);
	big = padded_definition(DOMXML_MAX_SIZE);
	r = domxml_parse(big, DOMXML_MAX_SIZE, NULL, &c, err, sizeof(err));
	assert_int_equal(r, 0);
	assert_string_equal(c->name, "big");
	vm_config_free(c);
	c = NULL;

	/* From a file generated here: the message names the file. */
	free(big);
	big = padded_definition(DOMXML_MAX_SIZE + 4096);
	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	assert_int_equal(write_full(fd, big, DOMXML_MAX_SIZE + 4096), 0);
	close(fd);
	r = domxml_parse_file(tmpl, NULL, &c, err, sizeof(err));
	(void)unlink(tmpl);
	assert_int_equal(r, -EFBIG);
	snprintf(want, sizeof(want), "definition %s is larger than 1048576 bytes; it is refused", tmpl);
	assert_string_equal(err, want);
	assert_null(c);
}

static void test_parse_file(void **state)
{
	char err[512];
	struct vm_config *c = NULL;
	int r;

	r = domxml_parse_file(GOLDEN_DIR "/good/minimal.xml", NULL, &c, err, sizeof(err));
	assert_int_equal(r, 0);
	assert_string_equal(c->name, "minimal");
	assert_int_equal(c->memory, 256 * MiB);
	assert_int_equal(c->vcpus, 1);
	assert_int_equal(c->on_reboot, VM_ACTION_RESTART);
	vm_config_free(c);
	c = NULL;

	r = domxml_parse_file(GOLDEN_DIR "/bad/type-qemu.xml", NULL, &c, err, sizeof(err));
	assert_int_equal(r, -EOPNOTSUPP);
	assert_string_equal(err, GOLDEN_DIR "/bad/type-qemu.xml: unsupported value type='qemu' in <domain>: "
				 "only type='kvm' is supported");

	r = domxml_parse_file(GOLDEN_DIR "/no-such-file.xml", NULL, &c, err, sizeof(err));
	assert_int_equal(r, -ENOENT);
	assert_string_equal(err, "cannot read definition " GOLDEN_DIR "/no-such-file.xml: No such file or directory");

	r = domxml_parse_file(GOLDEN_DIR, NULL, &c, err, sizeof(err));
	assert_int_equal(r, -EINVAL);
	assert_string_equal(err, "definition " GOLDEN_DIR " is not a regular file");
	assert_null(c);
}

static void test_schema_argument(void **state)
{
	_cleanup_free_ char *xml = NULL;
	char err[512];
	struct vm_config *c = NULL;
	size_t len;
	int r;

	xml = golden_read(GOLDEN_DIR "/good/minimal.xml", &len);
	assert_non_null(xml);
	/* An explicit schema path is compiled for the call. */
	r = domxml_parse(xml, len, DOMXML_DEFAULT_SCHEMA, &c, err, sizeof(err));
	assert_int_equal(r, 0);
	vm_config_free(c);
	c = NULL;
	r = domxml_parse(xml, len, "/nonexistent/domain.rng", &c, err, sizeof(err));
	assert_int_equal(r, -ENOENT);
	assert_string_equal(err, "cannot read libvirt's domain schema /nonexistent/domain.rng: No such file or "
				 "directory; install libvirt's schemas");
	assert_null(c);
}

static void test_error_buffer(void **state)
{
	static const char xml[] = "<domain type='qemu'/>";
	char small[12];
	struct vm_config *c = NULL;

	/* A short buffer gets a NUL-terminated prefix; no buffer at all is allowed. */
	assert_int_equal(domxml_parse(xml, strlen(xml), NULL, &c, small, sizeof(small)), -EINVAL);
	assert_string_equal(small, "definition ");
	assert_int_equal(domxml_parse(xml, strlen(xml), NULL, &c, NULL, 0), -EINVAL);
	assert_int_equal(domxml_parse(xml, 0, NULL, &c, small, sizeof(small)), -EINVAL);
	assert_int_equal(domxml_parse(NULL, 10, NULL, &c, small, sizeof(small)), -EINVAL);
	assert_null(c);
	vm_config_free(NULL);
}

static void test_full_fields(void **state)
{
	char err[512];
	struct vm_config *c = NULL;
	static const uint8_t uuid[16] = { 0x4d, 0xea, 0x22, 0xb3, 0x1d, 0x52, 0xd8, 0xf3,
					  0x25, 0x16, 0x78, 0x2e, 0x98, 0xab, 0x3f, 0xa0 };

	/* The dump is the main check; this pins a few fields the worker relies on directly. */
	assert_int_equal(domxml_parse_file(GOLDEN_DIR "/good/full.xml", NULL, &c, err, sizeof(err)), 0);
	assert_true(c->has_uuid);
	assert_memory_equal(c->uuid, uuid, 16);
	assert_int_equal(c->memory, 2 * GiB);
	assert_int_equal(c->vcpus, 2);
	assert_int_equal(c->nr_disks, 2);
	assert_true(c->disks[1].readonly);
	assert_string_equal(c->disks[1].serial, "SEED-0001");
	assert_int_equal(c->disks[0].cache, VM_DISK_CACHE_NONE);
	assert_int_equal(c->serial.kind, VM_CHARDEV_FILE);
	assert_true(c->serial.append);
	assert_int_equal(c->console.kind, VM_CHARDEV_UNIX);
	assert_true(c->console.listen);
	assert_true(c->rng);
	assert_int_equal(c->on_crash, VM_ACTION_PRESERVE);
	vm_config_free(c);
}

static void *parse_thread(void *arg)
{
	char err[256];
	struct vm_config *c = NULL;
	intptr_t ok = 1;

	for (int i = 0; i < 5; i++) {
		if (domxml_parse_file(GOLDEN_DIR "/good/full.xml", NULL, &c, err, sizeof(err)) != 0 ||
		    strcmp(c->name, "web-1.example_com") != 0)
			ok = 0;
		vm_config_free(c);
		c = NULL;
	}
	return (void *)ok;
}

/* The cached schema is shared: parses from several threads at once must all succeed. */
static void test_threads(void **state)
{
	pthread_t t[4];
	void *ok;

	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		assert_int_equal(pthread_create(&t[i], NULL, parse_thread, NULL), 0);
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		assert_int_equal(pthread_join(t[i], &ok), 0);
		assert_ptr_equal(ok, (void *)1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_cases),
		cmocka_unit_test(test_bad_cases),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_parse_file),
		cmocka_unit_test(test_schema_argument),
		cmocka_unit_test(test_error_buffer),
		cmocka_unit_test(test_full_fields),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
