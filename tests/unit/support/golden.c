// SPDX-License-Identifier: GPL-2.0-only
/* Golden-file helpers shared by the unit tests (see golden.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/support/golden.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/domxml.h"
#include "lib/util.h"

bool golden_update(const char *var)
{
	const char *e = getenv(var);

	return e && *e && strcmp(e, "0") != 0;
}

const int *golden_case_err(const struct golden_case *cases, size_t n, const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (strcmp(cases[k].name, name) == 0)
			return &cases[k].err;
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t golden_list(const char *dir, const char *ext, char ***ret)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, elen = strlen(ext);

	if (!d)
		fail_msg("golden directory %s is missing: run the tests from the repository root", dir);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len <= elen || strcmp(de->d_name + len - elen, ext) != 0)
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		assert_non_null(names);
		names[n] = strndup(de->d_name, len - elen);
		assert_non_null(names[n]);
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_str);
	*ret = names;
	return n;
}

void golden_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

char *golden_read(const char *path, size_t *ret_len)
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

char *golden_read_line(const char *path)
{
	char *s = golden_read(path, NULL);

	if (s)
		s[strcspn(s, "\n")] = '\0';
	return s;
}

void golden_write(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(s, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

void golden_write_line(const char *path, const char *line)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fprintf(f, "%s\n", line) >= 0);
	assert_int_equal(fclose(f), 0);
}

char *golden_dump_vm_config(const struct vm_config *c)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	assert_non_null(f);
	vm_config_dump(c, f);
	assert_int_equal(fclose(f), 0);
	return s;
}

int golden_domxml_refuse(const char *xml, size_t len, const char *schema, unsigned flags, char *err,
			 size_t errlen)
{
	struct vm_config *c = (struct vm_config *)(uintptr_t)0x1; /* must stay untouched */
	int r;

	memset(err, 'X', errlen);
	r = domxml_parse_opts(xml, len, schema, flags, &c, err, errlen);
	if (r >= 0) {
		vm_config_free(c);
		return r;
	}
	assert_ptr_equal(c, (struct vm_config *)(uintptr_t)0x1);
	assert_non_null(memchr(err, '\0', errlen));
	assert_null(strchr(err, '\n'));
	return r;
}
