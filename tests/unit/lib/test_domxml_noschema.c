// SPDX-License-Identifier: GPL-2.0-only
// Golden tests for mapping without the schema (DOMXML_NO_SCHEMA), domxml_validate() and domxml_release().
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/domxml.h"
#include "lib/util.h"

#include <dirent.h>
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
static const struct {
	const char *name;
	int err;
} noschema_cases[] = {
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

static bool update_golden(void)
{
	const char *e = getenv("DOMXML_UPDATE_GOLDEN");
	return e && *e && strcmp(e, "0") != 0;
}

static char *slurp(const char *path, size_t *ret_len)
{
	void *buf = NULL;
	size_t len = 0;
	char *s;

	if (read_file_max(path, 16u << 20, &buf, &len) < 0)
		return NULL;
	s = realloc(buf, len + 1);
	assert_non_null(s);
	s[len] = '\0';
	if (ret_len)
		*ret_len = len;
	return s;
}

/* The first line of a golden .err file, or NULL when it is missing. */
static char *slurp_line(const char *path)
{
	char *s = slurp(path, NULL);

	if (s)
		s[strcspn(s, "\n")] = '\0';
	return s;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names (without ".xml") of DIR's .xml files. */
static size_t list_xml(const char *dir, char ***ret)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	if (!d)
		fail_msg("golden directory %s is missing: run the tests from the repository root", dir);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len <= 4 || strcmp(de->d_name + len - 4, ".xml") != 0)
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		assert_non_null(names);
		names[n] = strndup(de->d_name, len - 4);
		assert_non_null(names[n]);
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_str);
	*ret = names;
	return n;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static char *dump_to_string(const struct vm_config *c)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	assert_non_null(f);
	vm_config_dump(c, f);
	assert_int_equal(fclose(f), 0);
	return s;
}

/* Maps without the schema; the error message, or NULL when accepted (then *ret is set). */
static int parse_noschema(const char *xml, size_t len, struct vm_config **ret, char *err, size_t errlen)
{
	/* A schema path that does not exist: the flag must not even look at it. */
	return domxml_parse_opts(xml, len, "/nonexistent/domain.rng", DOMXML_NO_SCHEMA, ret, err, errlen);
}

static void test_good_cases_without_schema(void **state)
{
	char **names;
	size_t n = list_xml(GOLDEN_DIR "/good", &names);
	int failures = 0;

	assert_true(n >= 3);
	for (size_t i = 0; i < n; i++) {
		char path[512], err[512];
		struct vm_config *c = NULL;
		_cleanup_free_ char *xml = NULL, *want = NULL, *got = NULL;
		size_t len;
		int r;

		snprintf(path, sizeof(path), GOLDEN_DIR "/good/%s.xml", names[i]);
		xml = slurp(path, &len);
		assert_non_null(xml);
		r = parse_noschema(xml, len, &c, err, sizeof(err));
		if (r < 0) {
			print_error("good/%s.xml: refused without the schema (%d): %s\n", names[i], r, err);
			failures++;
			continue;
		}
		got = dump_to_string(c);
		vm_config_free(c);
		snprintf(path, sizeof(path), GOLDEN_DIR "/expected/%s.txt", names[i]);
		want = slurp(path, NULL);
		assert_non_null(want);
		if (strcmp(want, got) != 0) {
			print_error("good/%s.xml: dump without the schema differs\n--- expected\n%s--- got\n%s", names[i],
				    want, got);
			failures++;
		}
	}
	free_names(names, n);
	assert_int_equal(failures, 0);
}

static void test_bad_cases_without_schema(void **state)
{
	char **names;
	size_t n = list_xml(GOLDEN_DIR "/bad", &names);
	int failures = 0, schema_first = 0;

	assert_true(n >= 15);
	for (size_t i = 0; i < n; i++) {
		char path[512], err[1024];
		struct vm_config *c = (struct vm_config *)(uintptr_t)0x1; /* must stay untouched */
		_cleanup_free_ char *xml = NULL, *want = NULL;
		size_t len, wlen, glen;
		int r;

		snprintf(path, sizeof(path), GOLDEN_DIR "/bad/%s.xml", names[i]);
		xml = slurp(path, &len);
		assert_non_null(xml);
		snprintf(path, sizeof(path), GOLDEN_DIR "/bad/%s.err", names[i]);
		want = slurp_line(path);
		assert_non_null(want);
		memset(err, 'X', sizeof(err));
		r = parse_noschema(xml, len, &c, err, sizeof(err));
		if (r >= 0) {
			print_error("bad/%s.xml: ACCEPTED without the schema\n", names[i]);
			vm_config_free(c);
			failures++;
			continue;
		}
		assert_ptr_equal(c, (struct vm_config *)(uintptr_t)0x1);
		assert_non_null(memchr(err, '\0', sizeof(err)));
		assert_null(strchr(err, '\n'));
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
	free_names(names, n);
	assert_true(schema_first >= 5); /* the comparison above really ran */
	assert_int_equal(failures, 0);
}

static void test_noschema_only_cases(void **state)
{
	char **names;
	size_t n = list_xml(GOLDEN_DIR "/noschema-bad", &names);
	int failures = 0;

	assert_int_equal(n, ARRAY_SIZE(noschema_cases));
	for (size_t i = 0; i < n; i++) {
		char path[512], err[1024], serr[1024];
		struct vm_config *c = NULL;
		_cleanup_free_ char *xml = NULL, *want = NULL;
		const int *want_code = NULL;
		size_t len, slen, elen;
		int r;

		for (size_t k = 0; k < ARRAY_SIZE(noschema_cases); k++)
			if (strcmp(noschema_cases[k].name, names[i]) == 0)
				want_code = &noschema_cases[k].err;
		if (!want_code) {
			print_error("noschema-bad/%s.xml: no entry in noschema_cases[]\n", names[i]);
			failures++;
			continue;
		}
		snprintf(path, sizeof(path), GOLDEN_DIR "/noschema-bad/%s.xml", names[i]);
		xml = slurp(path, &len);
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
		if (update_golden()) {
			FILE *f = fopen(path, "w");

			assert_non_null(f);
			fprintf(f, "%s\n", err);
			assert_int_equal(fclose(f), 0);
		}
		want = slurp_line(path);
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
	free_names(names, n);
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
	file = slurp(GOLDEN_DIR "/good/minimal.xml", &flen);
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
		xml = slurp(path, &len);
		assert_non_null(xml);
		assert_int_equal(domxml_validate(xml, len, NULL, err, sizeof(err)), -EINVAL);
		assert_int_equal(domxml_parse(xml, len, NULL, &c, perr, sizeof(perr)), -EINVAL);
		assert_string_equal(err, perr);
	}
	{
		_cleanup_free_ char *xml = NULL;
		size_t len;

		xml = slurp(GOLDEN_DIR "/bad/interface.xml", &len); /* valid libvirt XML, unsupported */
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

	xml = slurp(GOLDEN_DIR "/good/minimal.xml", &len);
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
