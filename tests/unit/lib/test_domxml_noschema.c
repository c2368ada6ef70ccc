// SPDX-License-Identifier: GPL-2.0-only
// Golden tests for mapping without the schema (DOMXML_NO_SCHEMA), domxml_validate() and domxml_release().
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/domxml.h"
#include "lib/util.h"
#include "tests/unit/support/golden.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Tests run from the repository root (make unit-tests). The cases are test_domxml's:
 *   good/NAME.xml      must map to expected/NAME.txt without the schema too;
 *   bad/NAME.xml       must be refused without the schema too. Where the mapping refused it
 *                      with the schema, the message is bad/NAME.err exactly; where the schema
 *                      refused it first, bad/NAME.err is "definition does not match ...; HINT"
 *                      and the message without the schema must be HINT exactly (the mapping
 *                      says the same thing whether or not the schema ran first);
 *   noschema-bad/NAME.xml  documents only a careless mapping would take (namespaced or
 *                      repeated elements, stray text, missing required elements): refused
 *                      with noschema-bad/NAME.err without the schema; with it, by the schema
 *                      with that same text as its hint (or by the mapping, same words, where
 *                      libvirt's schema allows the document).
 * DOMXML_UPDATE_GOLDEN=1 rewrites noschema-bad/NAME.err; review the diff before keeping it.
 */
#define GOLDEN_DIR "tests/unit/lib/domxml"
#define SCHEMA_PREFIX "definition does not match libvirt's domain schema: "

/* Every noschema-bad case and the error it must return; a file missing here fails. */
static const struct golden_case noschema_cases[] = {
	{ "cdata-in-devices", -EINVAL },
	{ "disk-two-sources", -EINVAL },
	{ "disk-two-targets", -EINVAL },
	{ "duplicate-acpi", -EINVAL },
	{ "duplicate-cmdline", -EINVAL },
	{ "duplicate-devices", -EINVAL },
	{ "duplicate-memory", -EINVAL },
	{ "duplicate-name", -EINVAL },
	{ "duplicate-os", -EINVAL },
	{ "missing-name", -EINVAL },
	{ "missing-os-type", -EINVAL },
	{ "ns-attribute", -EOPNOTSUPP },
	{ "ns-element", -EOPNOTSUPP },
	{ "serial-two-sources", -EINVAL },
	{ "text-in-acpi", -EINVAL },
	{ "text-in-domain", -EINVAL },
};

/* Maps without the schema; the error message, or NULL when accepted (then *ret is set). */
static int parse_noschema(const char *xml, size_t len, struct vm_config **ret, char *err, size_t errlen)
{
	/* A schema path that does not exist: the flag must not even look at it. */
	return domxml_parse_opts(xml, len, "/nonexistent/domain.rng", DOMXML_NO_SCHEMA, ret, err, errlen);
}

static void test_good_cases_without_schema(void **state)
{
	char **names;
	size_t n = golden_list(GOLDEN_DIR "/good", ".xml", &names);
	int failures = 0;

	assert_true(n >= 3);
	for (size_t i = 0; i < n; i++) {
		char path[512], err[512];
		struct vm_config *c = NULL;
		_cleanup_free_ char *xml = NULL, *want = NULL, *got = NULL;
		size_t len;
		int r;

		snprintf(path, sizeof(path), GOLDEN_DIR "/good/%s.xml", names[i]);
		xml = golden_read(path, &len);
		assert_non_null(xml);
		r = parse_noschema(xml, len, &c, err, sizeof(err));
		if (r < 0) {
			print_error("good/%s.xml: refused without the schema (%d): %s\n", names[i], r, err);
			failures++;
			continue;
		}
		got = golden_dump_vm_config(c);
		vm_config_free(c);
		snprintf(path, sizeof(path), GOLDEN_DIR "/expected/%s.txt", names[i]);
		want = golden_read(path, NULL);
		assert_non_null(want);
		if (strcmp(want, got) != 0) {
			print_error("good/%s.xml: dump without the schema differs\n--- expected\n%s--- got\n%s", names[i],
				    want, got);
			failures++;
		}
	}
	golden_list_free(names, n);
	assert_int_equal(failures, 0);
}

static void test_bad_cases_without_schema(void **state)
{
	char **names;
	size_t n = golden_list(GOLDEN_DIR "/bad", ".xml", &names);
	int failures = 0, schema_first = 0;

	assert_true(n >= 15);
	for (size_t i = 0; i < n; i++) {
		char path[512], err[1024];
		_cleanup_free_ char *xml = NULL, *want = NULL;
		size_t len, wlen, glen;
		int r;

		snprintf(path, sizeof(path), GOLDEN_DIR "/bad/%s.xml", names[i]);
		xml = golden_read(path, &len);
		assert_non_null(xml);
		snprintf(path, sizeof(path), GOLDEN_DIR "/bad/%s.err", names[i]);
		want = golden_read_line(path);
		assert_non_null(want);
		/* A schema path that does not exist: the flag must not even look at it. */
		r = golden_domxml_refuse(xml, len, "/nonexistent/domain.rng", DOMXML_NO_SCHEMA, err, sizeof(err));
		if (r >= 0) {
			print_error("bad/%s.xml: ACCEPTED without the schema\n", names[i]);
			failures++;
			continue;
		}
		if (strncmp(want, SCHEMA_PREFIX, strlen(SCHEMA_PREFIX)) != 0) {
			/* The mapping refused it with the schema too: the same words. */
			if (strcmp(want, err) != 0) {
				print_error("bad/%s.xml: error without the schema differs\n  expected: %s\n  got:      %s\n",
					    names[i], want, err);
				failures++;
			}
			continue;
		}
		/* The schema refused it first; the mapping's hint after it is what we must say now. */
		schema_first++;
		wlen = strlen(want);
		glen = strlen(err);
		if (glen == 0 || glen + 2 > wlen || strcmp(want + wlen - glen, err) != 0 ||
		    strncmp(want + wlen - glen - 2, "; ", 2) != 0) {
			print_error("bad/%s.xml: without the schema the error must be the hint of\n  %s\n  got: %s\n",
				    names[i], want, err);
			failures++;
		}
	}
	golden_list_free(names, n);
	assert_true(schema_first >= 5); /* the comparison above really ran */
	assert_int_equal(failures, 0);
}

static void test_noschema_only_cases(void **state)
{
	char **names;
	size_t n = golden_list(GOLDEN_DIR "/noschema-bad", ".xml", &names);
	int failures = 0;

	assert_int_equal(n, ARRAY_SIZE(noschema_cases));
	for (size_t i = 0; i < n; i++) {
		char path[512], err[1024], serr[1024];
		struct vm_config *c = NULL;
		_cleanup_free_ char *xml = NULL, *want = NULL;
		const int *want_code = golden_case_err(noschema_cases, ARRAY_SIZE(noschema_cases), names[i]);
		size_t len, slen, elen;
		int r;

		if (!want_code) {
			print_error("noschema-bad/%s.xml: no entry in noschema_cases[]\n", names[i]);
			failures++;
			continue;
		}
		snprintf(path, sizeof(path), GOLDEN_DIR "/noschema-bad/%s.xml", names[i]);
		xml = golden_read(path, &len);
		assert_non_null(xml);
		r = parse_noschema(xml, len, &c, err, sizeof(err));
		if (r >= 0) {
			print_error("noschema-bad/%s.xml: ACCEPTED without the schema\n", names[i]);
			vm_config_free(c);
			failures++;
			continue;
		}
		if (r != *want_code) {
			print_error("noschema-bad/%s.xml: returned %d, expected %d (%s)\n", names[i], r, *want_code, err);
			failures++;
		}
		snprintf(path, sizeof(path), GOLDEN_DIR "/noschema-bad/%s.err", names[i]);
		if (golden_update("DOMXML_UPDATE_GOLDEN"))
			golden_write_line(path, err);
		want = golden_read_line(path);
		if (!want || strcmp(want, err) != 0) {
			print_error("noschema-bad/%s.xml: error differs\n  expected: %s\n  got:      %s\n", names[i],
				    want ? want : "(no .err file)", err);
			failures++;
			continue;
		}
		/* With the schema: refused by the schema with the same hint, or (where libvirt's
		 * schema allows it: two <source> of a chardev are valid for udp) by the mapping with
		 * the same words. */
		r = domxml_parse(xml, len, NULL, &c, serr, sizeof(serr));
		slen = strlen(serr);
		elen = strlen(err);
		if (r >= 0 || (strcmp(serr, err) != 0 &&
			       (r != -EINVAL || strncmp(serr, SCHEMA_PREFIX, strlen(SCHEMA_PREFIX)) != 0 ||
				slen < elen + 2 || strcmp(serr + slen - elen, err) != 0 ||
				strncmp(serr + slen - elen - 2, "; ", 2) != 0))) {
			print_error("noschema-bad/%s.xml: with the schema: %d %s\n", names[i], r, serr);
			failures++;
		}
		if (r >= 0)
			vm_config_free(c);
	}
	golden_list_free(names, n);
	assert_int_equal(failures, 0);
}

static void test_flags_and_file(void **state)
{
	char err[512];
	struct vm_config *c = NULL;
	_cleanup_free_ char *file = NULL;
	char *xml = NULL;
	size_t len = 0, flen = 0;

	/* Unknown flags are refused rather than ignored. */
	file = golden_read(GOLDEN_DIR "/good/minimal.xml", &flen);
	assert_non_null(file);
	assert_int_equal(domxml_parse_opts(file, flen, NULL, 0x80, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown parse flags 0x80");
	assert_null(c);

	/* From a file: the mapped text comes back, byte for byte. */
	assert_int_equal(domxml_parse_file_opts(GOLDEN_DIR "/good/minimal.xml", "/nonexistent/domain.rng",
						DOMXML_NO_SCHEMA, &c, &xml, &len, err, sizeof(err)), 0);
	assert_string_equal(c->name, "minimal");
	assert_int_equal(len, flen);
	assert_memory_equal(xml, file, flen);
	assert_int_equal(xml[len], '\0');
	vm_config_free(c);
	c = NULL;
	/* ... and validates against the real schema. */
	assert_int_equal(domxml_validate(xml, len, NULL, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	free(xml);
	xml = NULL;

	/* A refusal names the file, and hands back no text. */
	assert_int_equal(domxml_parse_file_opts(GOLDEN_DIR "/bad/type-qemu.xml", NULL, DOMXML_NO_SCHEMA, &c, &xml,
						&len, err, sizeof(err)), -EOPNOTSUPP);
	assert_string_equal(err, GOLDEN_DIR "/bad/type-qemu.xml: unsupported value type='qemu' in <domain>: "
				 "only type='kvm' is supported");
	assert_null(xml);
	assert_null(c);
}

/* domxml_validate() says what domxml_parse() says about the schema, and nothing about the
 * mapping: a valid document that vmms cannot run passes it. */
static void test_validate(void **state)
{
	static const char *const same[] = { "schema-violation", "schema-unknown-element", "relative-kernel",
					    "duplicate-kernel", "not-xml", "xxe", "not-domain" };
	char path[512], err[1024], perr[1024];
	struct vm_config *c = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(same); i++) {
		_cleanup_free_ char *xml = NULL;
		size_t len;

		snprintf(path, sizeof(path), GOLDEN_DIR "/bad/%s.xml", same[i]);
		xml = golden_read(path, &len);
		assert_non_null(xml);
		assert_int_equal(domxml_validate(xml, len, NULL, err, sizeof(err)), -EINVAL);
		assert_int_equal(domxml_parse(xml, len, NULL, &c, perr, sizeof(perr)), -EINVAL);
		assert_string_equal(err, perr);
	}
	{
		_cleanup_free_ char *xml = NULL;
		size_t len;

		xml = golden_read(GOLDEN_DIR "/bad/interface.xml", &len); /* valid libvirt XML, unsupported */
		assert_non_null(xml);
		assert_int_equal(domxml_validate(xml, len, NULL, err, sizeof(err)), 0);
		assert_int_equal(domxml_validate(xml, len, "/nonexistent/domain.rng", err, sizeof(err)), -ENOENT);
	}
	assert_null(c);
}

/* Must run last: it ends domxml for the whole process. */
static void test_release(void **state)
{
	_cleanup_free_ char *xml = NULL;
	struct vm_config *c = NULL;
	char err[256];
	size_t len;

	xml = golden_read(GOLDEN_DIR "/good/minimal.xml", &len);
	assert_non_null(xml);
	/* The default schema is compiled and cached by now (earlier tests validated). */
	assert_int_equal(domxml_parse(xml, len, NULL, &c, err, sizeof(err)), 0);
	vm_config_free(c);
	c = NULL;
	domxml_release();
	domxml_release(); /* idempotent */
	assert_int_equal(domxml_parse(xml, len, NULL, &c, err, sizeof(err)), -ESHUTDOWN);
	assert_string_equal(err, "domain definitions can no longer be parsed in this process");
	assert_int_equal(domxml_parse_opts(xml, len, NULL, DOMXML_NO_SCHEMA, &c, err, sizeof(err)), -ESHUTDOWN);
	assert_int_equal(domxml_validate(xml, len, NULL, err, sizeof(err)), -ESHUTDOWN);
	assert_null(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_cases_without_schema),
		cmocka_unit_test(test_bad_cases_without_schema),
		cmocka_unit_test(test_noschema_only_cases),
		cmocka_unit_test(test_flags_and_file),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
