// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of guests_kvp_parse: the stored host pairs (kvp.json) are hostile and bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/guestproto.h"
#include "parent/guest.h"

static int parse(const char *text, json_t **ret)
{
	char err[256] = "";
	int r;

	*ret = NULL;
	r = guests_kvp_parse(text, strlen(text), ret, err, sizeof(err));
	if (r < 0) {
		assert_null(*ret);
		assert_true(err[0] != '\0');
	}
	return r;
}

static void test_valid(void **state)
{
	json_t *j;

	(void)state;
	assert_int_equal(parse("{\"role\": \"web\", \"zone.a-1_\": \"\"}", &j), 0);
	assert_int_equal(json_object_size(j), 2);
	assert_string_equal(json_string_value(json_object_get(j, "role")), "web");
	json_decref(j);
	assert_int_equal(parse("{}", &j), 0);
	assert_int_equal(json_object_size(j), 0);
	json_decref(j);
}

static void test_corrupt(void **state)
{
	static const char *const bad[] = {
		"", "{", "{\"a\": \"b\"} trailing", "[]", "\"x\"", "null",
		"{\"bad/key\": \"x\"}", "{\".hidden\": \"x\"}", "{\"\": \"x\"}",
		"{\"a\": 1}", "{\"a\": null}", "{\"a\": {\"b\": \"c\"}}",
		"{\"a\": \"x\", \"a\": \"y\"}",            /* duplicates */
		"{\"a\": \"nul\\u0000inside\"}",           /* a value the agent could not take */
	};
	json_t *j;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &j) != -EINVAL)
			fail_msg("accepted or wrong error: %s", bad[i]);
	}
}

static void test_bounds(void **state)
{
	char key[GUESTPROTO_KEY_MAX + 2];
	char *big, *p;
	json_t *j;

	(void)state;
	/* The longest key and value are fine, one byte more is not. */
	memset(key, 'k', sizeof(key));
	key[GUESTPROTO_KEY_MAX] = '\0';
	big = malloc(GUESTPROTO_VALUE_MAX + GUESTPROTO_KEY_MAX + 64);
	assert_non_null(big);
	p = big + sprintf(big, "{\"%s\": \"", key);
	memset(p, 'v', GUESTPROTO_VALUE_MAX);
	strcpy(p + GUESTPROTO_VALUE_MAX, "\"}");
	assert_int_equal(parse(big, &j), 0);
	json_decref(j);
	p = big + sprintf(big, "{\"%s\": \"", key);
	memset(p, 'v', GUESTPROTO_VALUE_MAX + 1);
	strcpy(p + GUESTPROTO_VALUE_MAX + 1, "\"}");
	assert_int_equal(parse(big, &j), -EINVAL);
	key[GUESTPROTO_KEY_MAX] = 'k';
	key[GUESTPROTO_KEY_MAX + 1] = '\0';
	sprintf(big, "{\"%s\": \"v\"}", key);
	assert_int_equal(parse(big, &j), -EINVAL);
	free(big);

	/* GUEST_MAX_HOST_ITEMS pairs are fine, one more is not. */
	big = malloc(32 * (GUEST_MAX_HOST_ITEMS + 2));
	assert_non_null(big);
	for (int n = GUEST_MAX_HOST_ITEMS; n <= GUEST_MAX_HOST_ITEMS + 1; n++) {
		p = big + sprintf(big, "{");
		for (int i = 0; i < n; i++)
			p += sprintf(p, "%s\"k%d\": \"v\"", i ? ", " : "", i);
		strcpy(p, "}");
		assert_int_equal(parse(big, &j), n == GUEST_MAX_HOST_ITEMS ? 0 : -EINVAL);
		if (j)
			assert_int_equal(json_object_size(j), GUEST_MAX_HOST_ITEMS);
		json_decref(j);
	}
	free(big);
}

static void test_oversized(void **state)
{
	size_t len = 16u << 20;
	char *huge = malloc(len), err[256] = "";
	json_t *j = NULL;

	(void)state;
	assert_non_null(huge);
	memset(huge, ' ', len);
	assert_int_equal(guests_kvp_parse(huge, len, &j, err, sizeof(err)), -EFBIG);
	assert_null(j);
	assert_non_null(strstr(err, "larger"));
	free(huge);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_oversized),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
