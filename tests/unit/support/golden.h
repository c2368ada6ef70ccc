/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Golden-file helpers for unit tests: list a directory's cases, read and (when the update
 * variable is set) rewrite expected files, and capture a config dump as text. Tests run from
 * the repository root, so paths are relative to it. Failures to list or allocate fail the
 * test (cmocka); a missing file reads as NULL so the test can say which one.
 */
#ifndef VMMS_TESTS_GOLDEN_H
#define VMMS_TESTS_GOLDEN_H

#include <stdbool.h>
#include <stddef.h>

struct vm_config;

/* A named case and the error it must give: tables of these list every bad/NAME.xml. */
struct golden_case {
	const char *name;
	int err;
};

/* The error of the case called name in cases[0..n), or NULL when the table has none. */
const int *golden_case_err(const struct golden_case *cases, size_t n, const char *name);

/* Whether the environment variable var asks for the golden files to be rewritten (set,
 * non-empty and not "0"). */
bool golden_update(const char *var);

/* Sorted names, without ext, of dir's files whose names end in ext; the directory must exist.
 * Free with golden_list_free(). */
size_t golden_list(const char *dir, const char *ext, char ***ret);
void golden_list_free(char **names, size_t n);

/* The whole file as a NUL-terminated string (its length in *ret_len unless NULL), or NULL
 * when it cannot be read. */
char *golden_read(const char *path, size_t *ret_len);
/* The file's first line without its newline, or NULL when it cannot be read. */
char *golden_read_line(const char *path);
/* Replaces the file with s; golden_write_line adds a newline after line. */
void golden_write(const char *path, const char *s);
void golden_write_line(const char *path, const char *line);

/* domxml_parse_opts() of a definition that must be refused. A refusal must leave the config
 * pointer untouched and err one NUL-terminated line (asserted); an accepted config is freed.
 * Returns what the parse returned. */
int golden_domxml_refuse(const char *xml, size_t len, const char *schema, unsigned flags, char *err,
			 size_t errlen);

/* vm_config_dump() of c as a string (free it). */
char *golden_dump_vm_config(const struct vm_config *c);

#endif
