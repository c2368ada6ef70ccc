/* SPDX-License-Identifier: GPL-2.0-only */
/* WQL subset: parse `SELECT ... FROM Class [WITHIN n] [WHERE cond]` and evaluate it on JSON instances. */
#ifndef VMMS_PARENT_WQL_H
#define VMMS_PARENT_WQL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define WQL_MAX_LEN 4096   /* longest query text accepted */
#define WQL_MAX_DEPTH 32   /* deepest nesting of parentheses and NOT */
#define WQL_MAX_PROPS 64   /* most properties in a select list */

struct wql_query;

/* true when class cls is base or derives from it. */
typedef bool (*wql_isa_fn)(const char *cls, const char *base, void *userdata);

/* Parse text. On error returns -EINVAL and writes "column N: ..." into err. */
int wql_parse(const char *text, struct wql_query **ret, char *err, size_t errlen);
void wql_free(struct wql_query *q);

const char *wql_class(const struct wql_query *q);
/* Number of selected properties; 0 means `*`. */
size_t wql_nprops(const struct wql_query *q);
const char *wql_prop(const struct wql_query *q, size_t i);
/* WITHIN value in seconds, 0 when absent. */
unsigned wql_within(const struct wql_query *q);
/* true for FROM __InstanceCreationEvent/__InstanceModificationEvent/__InstanceDeletionEvent. */
bool wql_is_event(const struct wql_query *q);
/* For event queries: the class named by a top-level `TargetInstance ISA 'X'` (ANDed), or NULL. */
const char *wql_event_target(const struct wql_query *q);

/* Evaluate the WHERE clause on obj (SQL three-valued logic; true only when it is TRUE).
 * Property names are case-insensitive; `A.B` looks into embedded objects. An object's
 * class for ISA is its "__CLASS" member. isa may be NULL (exact name match). */
bool wql_match(const struct wql_query *q, const json_t *obj, wql_isa_fn isa, void *userdata);
/* New object with the selected properties (all of obj for `*`), plus __CLASS and __PATH. */
json_t *wql_project(const struct wql_query *q, const json_t *obj);

/* Case-insensitive LIKE with % and _ (exposed for tests). */
bool wql_like(const char *s, const char *pattern);

#endif
