// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of the WQL parser and evaluator. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "parent/wql.h"

static struct wql_query *parse_ok(const char *text)
{
	struct wql_query *q = NULL;
	char err[256];

	if (wql_parse(text, &q, err, sizeof(err)) != 0)
		fail_msg("'%s' should parse: %s", text, err);
	return q;
}

static void parse_bad(const char *text, const char *want)
{
	struct wql_query *q = NULL;
	char err[256];

	assert_int_equal(wql_parse(text, &q, err, sizeof(err)), -EINVAL);
	assert_null(q);
	if (!strstr(err, want))
		fail_msg("'%s': error '%s' lacks '%s'", text, err, want);
}

static bool match(const char *text, const char *json)
{
	struct wql_query *q = parse_ok(text);
	json_t *o = json_loads(json, 0, NULL);
	bool r;

	assert_non_null(o);
	r = wql_match(q, o, NULL, NULL);
	json_decref(o);
	wql_free(q);
	return r;
}

static void test_parse_select(void **state)
{
	struct wql_query *q = parse_ok("select Name, ElementName from Msvm_ComputerSystem");

	assert_string_equal(wql_class(q), "Msvm_ComputerSystem");
	assert_int_equal(wql_nprops(q), 2);
	assert_string_equal(wql_prop(q, 1), "ElementName");
	assert_false(wql_is_event(q));
	wql_free(q);
	q = parse_ok("SELECT * FROM Msvm_ComputerSystem WHERE NOT (A = 1 OR B <> 'x') AND C IS NOT NULL");
	assert_int_equal(wql_nprops(q), 0);
	wql_free(q);
}

static void test_parse_event(void **state)
{
	struct wql_query *q = parse_ok("SELECT * FROM __InstanceModificationEvent WITHIN 2 WHERE "
				       "TargetInstance ISA 'Msvm_ComputerSystem' AND TargetInstance.EnabledState = 2");

	assert_true(wql_is_event(q));
	assert_int_equal(wql_within(q), 2);
	assert_string_equal(wql_event_target(q), "Msvm_ComputerSystem");
	wql_free(q);
}

static void test_parse_errors(void **state)
{
	char big[5000], deep[200];

	parse_bad("", "expected SELECT");
	parse_bad("SELECT FROM X", "column 8");
	parse_bad("SELECT * FROM", "class name");
	parse_bad("SELECT * FROM X WHERE", "property name");
	parse_bad("SELECT * FROM X WHERE A = 'abc", "unterminated string");
	parse_bad("SELECT * FROM X WHERE A = 'a\\q'", "unknown escape");
	parse_bad("SELECT * FROM X WHERE A ~ 1", "unexpected character '~'");
	parse_bad("SELECT * FROM X WHERE (A = 1", "expected ')'");
	parse_bad("SELECT * FROM X WHERE 1 = 2", "property on one side");
	parse_bad("SELECT * FROM X WHERE A ISA Foo", "quoted class name");
	parse_bad("SELECT * FROM X WITHIN 5", "only allowed in event");
	parse_bad("SELECT * FROM __Bogus WHERE A = 1", "unknown event class");
	parse_bad("SELECT * FROM __InstanceCreationEvent", "needs WHERE");
	parse_bad("SELECT * FROM X Y", "after the query");
	parse_bad("SELECT * FROM X WHERE A = 99999999999999999999", "out of range");
	memset(big, ' ', sizeof(big));
	memcpy(big, "SELECT * FROM X", 15);
	big[sizeof(big) - 1] = '\0';
	parse_bad(big, "longer than 4096");
	strcpy(deep, "SELECT * FROM X WHERE ");
	for (int i = 0; i < 40; i++)
		strcat(deep, "(");
	parse_bad(deep, "nested deeper than 32");
}

static void test_eval(void **state)
{
	const char *o = "{\"__CLASS\":\"Msvm_ComputerSystem\",\"Name\":\"ABC\",\"EnabledState\":3,"
			"\"ElementName\":\"web1\",\"ProcessID\":null,\"On\":true,\"Sub\":{\"X\":5}}";

	assert_true(match("SELECT * FROM C WHERE EnabledState = 3", o));
	assert_false(match("SELECT * FROM C WHERE EnabledState <> 3", o));
	assert_true(match("SELECT * FROM C WHERE EnabledState != 2 AND EnabledState >= 3 AND EnabledState <= 3", o));
	assert_true(match("SELECT * FROM C WHERE EnabledState > 2 AND EnabledState < 4", o));
	assert_true(match("SELECT * FROM C WHERE name = 'abc'", o));       /* names and strings: case-insensitive */
	assert_true(match("SELECT * FROM C WHERE ElementName = \"web1\"", o));
	assert_true(match("SELECT * FROM C WHERE ElementName LIKE 'w_b%'", o));
	assert_false(match("SELECT * FROM C WHERE ElementName NOT LIKE 'w%'", o));
	assert_true(match("SELECT * FROM C WHERE ProcessID IS NULL AND Missing IS NULL", o));
	assert_false(match("SELECT * FROM C WHERE ProcessID IS NOT NULL", o));
	/* NULL compares as unknown: neither it nor its negation matches. */
	assert_false(match("SELECT * FROM C WHERE ProcessID = 5", o));
	assert_false(match("SELECT * FROM C WHERE NOT (ProcessID = 5)", o));
	assert_true(match("SELECT * FROM C WHERE ProcessID = 5 OR On = TRUE", o));
	assert_true(match("SELECT * FROM C WHERE Sub.X = 5", o));
	assert_true(match("SELECT * FROM C WHERE EnabledState = '3'", o));
	assert_false(match("SELECT * FROM C WHERE EnabledState = 'x'", o));
	assert_true(match("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Msvm_ComputerSystem'",
			  "{\"TargetInstance\":{\"__CLASS\":\"Msvm_ComputerSystem\"}}"));
	assert_false(match("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Other'",
			   "{\"TargetInstance\":{\"__CLASS\":\"Msvm_ComputerSystem\"}}"));
}

static void test_like(void **state)
{
	assert_true(wql_like("abc", "abc"));
	assert_true(wql_like("abc", "%"));
	assert_true(wql_like("", "%"));
	assert_true(wql_like("abc", "a%c"));
	assert_true(wql_like("aXbXc", "a%b%c"));
	assert_false(wql_like("abc", "a_"));
	assert_true(wql_like("ABC", "a_c"));
	assert_false(wql_like("ab", "abc"));
}

static void test_project(void **state)
{
	struct wql_query *q = parse_ok("SELECT elementname, Nope FROM C");
	json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "__CLASS", "C", "__PATH", "C.Name=\"x\"", "ElementName", "n",
			      "EnabledState", 3);
	json_t *p = wql_project(q, o);

	assert_string_equal(json_string_value(json_object_get(p, "ElementName")), "n");
	assert_true(json_is_null(json_object_get(p, "Nope")));
	assert_null(json_object_get(p, "EnabledState"));
	assert_string_equal(json_string_value(json_object_get(p, "__PATH")), "C.Name=\"x\"");
	json_decref(p);
	json_decref(o);
	wql_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_select),
		cmocka_unit_test(test_parse_event),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_eval),
		cmocka_unit_test(test_like),
		cmocka_unit_test(test_project),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
