// SPDX-License-Identifier: GPL-2.0-only
/* WQL subset parser (recursive descent, bounded) and evaluator over jansson objects. */
#include "parent/wql.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

enum tok_kind { T_END, T_IDENT, T_STRING, T_INT, T_OP, T_LPAREN, T_RPAREN, T_COMMA, T_STAR, T_DOT };
enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_GT, OP_LE, OP_GE };
enum node_kind { N_AND, N_OR, N_NOT, N_CMP, N_LIKE, N_ISA, N_ISNULL, N_PROP, N_LIT };

struct tok {
	enum tok_kind kind;
	size_t col;       /* 1-based column of the first character */
	char *text;       /* IDENT (as written), STRING (unescaped) */
	long long ival;
	enum cmp_op op;
};

struct wql_node {
	enum node_kind kind;
	enum cmp_op op;
	bool negate;            /* NOT LIKE, IS NOT NULL */
	struct wql_node *a, *b;
	char *prop;             /* N_PROP: dotted path; N_ISA/N_LIKE: the class or pattern */
	json_t *lit;            /* N_LIT */
};

struct wql_query {
	char *cls;
	char **props;
	size_t nprops;
	unsigned within;
	bool event;
	struct wql_node *where;
	const char *event_target;
};

struct parser {
	const char *s;
	size_t pos;
	struct tok tok;
	int depth;
	char *err;
	size_t errlen;
	bool failed;
};

static const char *const event_classes[] = {
	"__InstanceCreationEvent", "__InstanceModificationEvent", "__InstanceDeletionEvent",
};

__attribute__((format(printf, 3, 4)))
static int perr(struct parser *p, size_t col, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return -EINVAL;
	p->failed = true;
	n = snprintf(p->err, p->errlen, "column %zu: ", col);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static void tok_clear(struct tok *t)
{
	free(t->text);
	t->text = NULL;
}

static const char *tok_name(const struct tok *t)
{
	switch (t->kind) {
	case T_END: return "end of query";
	case T_IDENT: return "a name";
	case T_STRING: return "a string";
	case T_INT: return "a number";
	case T_OP: return "an operator";
	case T_LPAREN: return "'('";
	case T_RPAREN: return "')'";
	case T_COMMA: return "','";
	case T_STAR: return "'*'";
	case T_DOT: return "'.'";
	}
	return "?";
}

static int lex_string(struct parser *p, char quote)
{
	size_t start = p->pos, cap = 16, n = 0;
	char *out = malloc(cap);

	if (!out)
		return -ENOMEM;
	p->pos++;
	for (;;) {
		char c = p->s[p->pos];

		if (c == '\0') {
			free(out);
			return perr(p, start + 1, "unterminated string");
		}
		p->pos++;
		if (c == quote)
			break;
		if (c == '\\') {
			char e = p->s[p->pos];

			if (e == '\\' || e == '\'' || e == '"')
				c = e;
			else if (e == 'n')
				c = '\n';
			else if (e == 't')
				c = '\t';
			else {
				free(out);
				return perr(p, p->pos + 1, "unknown escape '\\%c' in string", e ? e : ' ');
			}
			p->pos++;
		}
		if (n + 2 > cap) {
			char *nb;

			cap *= 2;
			nb = realloc(out, cap);
			if (!nb) {
				free(out);
				return -ENOMEM;
			}
			out = nb;
		}
		out[n++] = c;
	}
	out[n] = '\0';
	p->tok.kind = T_STRING;
	p->tok.text = out;
	return 0;
}

/* Lex the next token into p->tok. The query text is client input: every path is bounded by
 * the NUL terminator and the length check done before parsing. */
static int lex(struct parser *p)
{
	const char *s = p->s;
	char c;

	tok_clear(&p->tok);
	while (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r')
		p->pos++;
	p->tok.col = p->pos + 1;
	c = s[p->pos];
	if (c == '\0') {
		p->tok.kind = T_END;
		return 0;
	}
	if (isalpha((unsigned char)c) || c == '_') {
		size_t st = p->pos;

		while (isalnum((unsigned char)s[p->pos]) || s[p->pos] == '_')
			p->pos++;
		p->tok.kind = T_IDENT;
		p->tok.text = strndup(s + st, p->pos - st);
		return p->tok.text ? 0 : -ENOMEM;
	}
	if (isdigit((unsigned char)c) || (c == '-' && isdigit((unsigned char)s[p->pos + 1]))) {
		char *end;

		errno = 0;
		p->tok.ival = strtoll(s + p->pos, &end, 10);
		if (errno == ERANGE)
			return perr(p, p->tok.col, "number out of range");
		if (isalpha((unsigned char)*end) || *end == '_' || *end == '.')
			return perr(p, p->tok.col, "malformed number");
		p->pos = (size_t)(end - s);
		p->tok.kind = T_INT;
		return 0;
	}
	if (c == '\'' || c == '"')
		return lex_string(p, c);
	p->pos++;
	switch (c) {
	case '(': p->tok.kind = T_LPAREN; return 0;
	case ')': p->tok.kind = T_RPAREN; return 0;
	case ',': p->tok.kind = T_COMMA; return 0;
	case '*': p->tok.kind = T_STAR; return 0;
	case '.': p->tok.kind = T_DOT; return 0;
	case '=': p->tok.kind = T_OP; p->tok.op = OP_EQ; return 0;
	case '!':
		if (s[p->pos] == '=') {
			p->pos++;
			p->tok.kind = T_OP;
			p->tok.op = OP_NE;
			return 0;
		}
		break;
	case '<':
		p->tok.kind = T_OP;
		p->tok.op = OP_LT;
		if (s[p->pos] == '>') {
			p->pos++;
			p->tok.op = OP_NE;
		} else if (s[p->pos] == '=') {
			p->pos++;
			p->tok.op = OP_LE;
		}
		return 0;
	case '>':
		p->tok.kind = T_OP;
		p->tok.op = OP_GT;
		if (s[p->pos] == '=') {
			p->pos++;
			p->tok.op = OP_GE;
		}
		return 0;
	default:
		break;
	}
	if (isprint((unsigned char)c))
		return perr(p, p->tok.col, "unexpected character '%c'", c);
	return perr(p, p->tok.col, "unexpected byte 0x%02x", (unsigned char)c);
}

static bool is_kw(const struct tok *t, const char *kw)
{
	return t->kind == T_IDENT && strcasecmp(t->text, kw) == 0;
}

static bool is_reserved(const char *w)
{
	static const char *const kws[] = { "SELECT", "FROM", "WHERE", "WITHIN", "AND", "OR", "NOT",
					   "LIKE", "ISA", "IS", "NULL", "TRUE", "FALSE" };

	for (size_t i = 0; i < ARRAY_SIZE(kws); i++)
		if (strcasecmp(w, kws[i]) == 0)
			return true;
	return false;
}

static void node_free(struct wql_node *n)
{
	if (!n)
		return;
	node_free(n->a);
	node_free(n->b);
	free(n->prop);
	json_decref(n->lit);
	free(n);
}

static struct wql_node *node_new(enum node_kind k)
{
	struct wql_node *n = calloc(1, sizeof(*n));

	if (n)
		n->kind = k;
	return n;
}

static int expect_kw(struct parser *p, const char *kw)
{
	if (!is_kw(&p->tok, kw))
		return perr(p, p->tok.col, "expected %s, found %s", kw, tok_name(&p->tok));
	return lex(p);
}

/* name ('.' name)*, joined with dots. */
static int parse_dotted(struct parser *p, char **ret)
{
	char buf[512];
	size_t n = 0;
	int r;

	for (;;) {
		size_t l;

		if (p->tok.kind != T_IDENT || is_reserved(p->tok.text))
			return perr(p, p->tok.col, "expected a property name, found %s",
				    p->tok.kind == T_IDENT ? p->tok.text : tok_name(&p->tok));
		l = strlen(p->tok.text);
		if (n + l + 2 > sizeof(buf))
			return perr(p, p->tok.col, "property name too long");
		memcpy(buf + n, p->tok.text, l);
		n += l;
		buf[n] = '\0';
		r = lex(p);
		if (r < 0)
			return r;
		if (p->tok.kind != T_DOT)
			break;
		buf[n++] = '.';
		r = lex(p);
		if (r < 0)
			return r;
	}
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

static int parse_or(struct parser *p, struct wql_node **ret);

static int parse_operand(struct parser *p, struct wql_node **ret)
{
	struct wql_node *n;
	int r;

	if (p->tok.kind == T_STRING || p->tok.kind == T_INT || is_kw(&p->tok, "TRUE") ||
	    is_kw(&p->tok, "FALSE") || is_kw(&p->tok, "NULL")) {
		n = node_new(N_LIT);
		if (!n)
			return -ENOMEM;
		if (p->tok.kind == T_STRING)
			n->lit = json_string(p->tok.text);
		else if (p->tok.kind == T_INT)
			n->lit = json_integer(p->tok.ival);
		else if (is_kw(&p->tok, "TRUE"))
			n->lit = json_true();
		else if (is_kw(&p->tok, "FALSE"))
			n->lit = json_false();
		else
			n->lit = json_null();
		if (!n->lit) {
			/* A string that is not UTF-8. */
			node_free(n);
			return perr(p, p->tok.col, "string is not valid UTF-8");
		}
		*ret = n;
		return lex(p);
	}
	n = node_new(N_PROP);
	if (!n)
		return -ENOMEM;
	r = parse_dotted(p, &n->prop);
	if (r < 0) {
		node_free(n);
		return r;
	}
	*ret = n;
	return 0;
}

static int parse_cmp(struct parser *p, struct wql_node **ret)
{
	struct wql_node *a = NULL, *n = NULL;
	size_t col = p->tok.col;
	int r;

	if (p->tok.kind == T_LPAREN) {
		if (++p->depth > WQL_MAX_DEPTH)
			return perr(p, p->tok.col, "conditions nested deeper than %d", WQL_MAX_DEPTH);
		r = lex(p);
		if (r < 0)
			return r;
		r = parse_or(p, ret);
		if (r < 0)
			return r;
		p->depth--;
		if (p->tok.kind != T_RPAREN) {
			r = perr(p, p->tok.col, "expected ')', found %s", tok_name(&p->tok));
			goto fail_ret;
		}
		r = lex(p);
		if (r < 0)
			goto fail_ret;
		return 0;
fail_ret:
		node_free(*ret);
		*ret = NULL;
		return r;
	}
	r = parse_operand(p, &a);
	if (r < 0)
		return r;
	if (p->tok.kind == T_OP) {
		n = node_new(N_CMP);
		if (!n)
			goto nomem;
		n->op = p->tok.op;
		n->a = a;
		a = NULL;
		r = lex(p);
		if (r < 0)
			goto fail;
		r = parse_operand(p, &n->b);
		if (r < 0)
			goto fail;
		if (n->a->kind == N_LIT && n->b->kind == N_LIT) {
			r = perr(p, col, "a comparison needs a property on one side");
			goto fail;
		}
	} else if (is_kw(&p->tok, "IS")) {
		n = node_new(N_ISNULL);
		if (!n)
			goto nomem;
		n->a = a;
		a = NULL;
		r = lex(p);
		if (r < 0)
			goto fail;
		if (is_kw(&p->tok, "NOT")) {
			n->negate = true;
			r = lex(p);
			if (r < 0)
				goto fail;
		}
		if (!is_kw(&p->tok, "NULL")) {
			r = perr(p, p->tok.col, "expected NULL after IS, found %s", tok_name(&p->tok));
			goto fail;
		}
		r = lex(p);
		if (r < 0)
			goto fail;
	} else if (is_kw(&p->tok, "LIKE") || is_kw(&p->tok, "ISA") ||
		   (is_kw(&p->tok, "NOT") && p->s[p->pos] != '\0')) {
		bool neg = false, isa;

		if (is_kw(&p->tok, "NOT")) {
			neg = true;
			r = lex(p);
			if (r < 0)
				goto fail;
			if (!is_kw(&p->tok, "LIKE")) {
				r = perr(p, p->tok.col, "expected LIKE after NOT, found %s", tok_name(&p->tok));
				goto fail;
			}
		}
		isa = is_kw(&p->tok, "ISA");
		n = node_new(isa ? N_ISA : N_LIKE);
		if (!n)
			goto nomem;
		n->negate = neg;
		n->a = a;
		a = NULL;
		r = lex(p);
		if (r < 0)
			goto fail;
		if (p->tok.kind != T_STRING) {
			r = perr(p, p->tok.col, "expected a quoted %s after %s, found %s",
				 isa ? "class name" : "pattern", isa ? "ISA" : "LIKE", tok_name(&p->tok));
			goto fail;
		}
		n->prop = strdup(p->tok.text);
		if (!n->prop)
			goto nomem;
		r = lex(p);
		if (r < 0)
			goto fail;
	} else {
		r = perr(p, p->tok.col, "expected a comparison operator, IS, LIKE or ISA, found %s",
			 tok_name(&p->tok));
		goto fail;
	}
	*ret = n;
	return 0;
nomem:
	r = -ENOMEM;
fail:
	node_free(a);
	node_free(n);
	return r;
}

static int parse_not(struct parser *p, struct wql_node **ret)
{
	struct wql_node *n;
	int r;

	if (!is_kw(&p->tok, "NOT"))
		return parse_cmp(p, ret);
	if (++p->depth > WQL_MAX_DEPTH)
		return perr(p, p->tok.col, "conditions nested deeper than %d", WQL_MAX_DEPTH);
	r = lex(p);
	if (r < 0)
		return r;
	n = node_new(N_NOT);
	if (!n)
		return -ENOMEM;
	r = parse_not(p, &n->a);
	if (r < 0) {
		node_free(n);
		return r;
	}
	p->depth--;
	*ret = n;
	return 0;
}

static int parse_binary(struct parser *p, struct wql_node **ret, bool is_or)
{
	struct wql_node *l = NULL;
	int r;

	r = is_or ? parse_binary(p, &l, false) : parse_not(p, &l);
	if (r < 0)
		return r;
	while (is_kw(&p->tok, is_or ? "OR" : "AND")) {
		struct wql_node *n = node_new(is_or ? N_OR : N_AND);

		if (!n) {
			node_free(l);
			return -ENOMEM;
		}
		n->a = l;
		l = n;
		r = lex(p);
		if (r < 0)
			goto fail;
		r = is_or ? parse_binary(p, &n->b, false) : parse_not(p, &n->b);
		if (r < 0)
			goto fail;
	}
	*ret = l;
	return 0;
fail:
	node_free(l);
	return r;
}

static int parse_or(struct parser *p, struct wql_node **ret)
{
	return parse_binary(p, ret, true);
}

/* `TargetInstance ISA 'X'` reachable through top-level ANDs. */
static const char *find_target(const struct wql_node *n)
{
	const char *t;

	if (!n)
		return NULL;
	if (n->kind == N_ISA && n->a->kind == N_PROP && strcasecmp(n->a->prop, "TargetInstance") == 0)
		return n->prop;
	if (n->kind == N_AND) {
		t = find_target(n->a);
		return t ? t : find_target(n->b);
	}
	return NULL;
}

static int parse_query(struct parser *p, struct wql_query *q)
{
	size_t cls_col;
	int r;

	r = lex(p);
	if (r < 0)
		return r;
	r = expect_kw(p, "SELECT");
	if (r < 0)
		return r;
	if (p->tok.kind == T_STAR) {
		r = lex(p);
		if (r < 0)
			return r;
	} else {
		for (;;) {
			char **np;

			if (q->nprops >= WQL_MAX_PROPS)
				return perr(p, p->tok.col, "more than %d properties selected", WQL_MAX_PROPS);
			np = realloc(q->props, (q->nprops + 1) * sizeof(*np));
			if (!np)
				return -ENOMEM;
			q->props = np;
			if (p->tok.kind != T_IDENT || is_reserved(p->tok.text))
				return perr(p, p->tok.col, "expected '*' or a property name, found %s",
					    p->tok.kind == T_IDENT ? p->tok.text : tok_name(&p->tok));
			q->props[q->nprops] = strdup(p->tok.text);
			if (!q->props[q->nprops])
				return -ENOMEM;
			q->nprops++;
			r = lex(p);
			if (r < 0)
				return r;
			if (p->tok.kind != T_COMMA)
				break;
			r = lex(p);
			if (r < 0)
				return r;
		}
	}
	r = expect_kw(p, "FROM");
	if (r < 0)
		return r;
	cls_col = p->tok.col;
	if (p->tok.kind != T_IDENT || is_reserved(p->tok.text))
		return perr(p, p->tok.col, "expected a class name after FROM, found %s",
			    p->tok.kind == T_IDENT ? p->tok.text : tok_name(&p->tok));
	q->cls = strdup(p->tok.text);
	if (!q->cls)
		return -ENOMEM;
	if (strncmp(q->cls, "__", 2) == 0) {
		for (size_t i = 0; i < ARRAY_SIZE(event_classes); i++)
			if (strcasecmp(q->cls, event_classes[i]) == 0) {
				q->event = true;
				strcpy(q->cls, event_classes[i]);
			}
		if (!q->event)
			return perr(p, cls_col, "unknown event class %s (use __InstanceCreationEvent, "
				    "__InstanceModificationEvent or __InstanceDeletionEvent)", q->cls);
	}
	r = lex(p);
	if (r < 0)
		return r;
	if (is_kw(&p->tok, "WITHIN")) {
		if (!q->event)
			return perr(p, p->tok.col, "WITHIN is only allowed in event queries");
		r = lex(p);
		if (r < 0)
			return r;
		if (p->tok.kind != T_INT || p->tok.ival < 0 || p->tok.ival > 86400)
			return perr(p, p->tok.col, "WITHIN needs a number of seconds from 0 to 86400");
		q->within = (unsigned)p->tok.ival;
		r = lex(p);
		if (r < 0)
			return r;
	}
	if (is_kw(&p->tok, "WHERE")) {
		r = lex(p);
		if (r < 0)
			return r;
		r = parse_or(p, &q->where);
		if (r < 0)
			return r;
	}
	if (p->tok.kind != T_END)
		return perr(p, p->tok.col, "unexpected %s%s%s after the query", tok_name(&p->tok),
			    p->tok.kind == T_IDENT ? " " : "", p->tok.kind == T_IDENT ? p->tok.text : "");
	if (q->event && !q->where)
		return perr(p, p->pos + 1, "an event query needs WHERE TargetInstance ISA 'Class'");
	q->event_target = find_target(q->where);
	return 0;
}

int wql_parse(const char *text, struct wql_query **ret, char *err, size_t errlen)
{
	struct parser p = { .s = text, .err = err, .errlen = errlen };
	struct wql_query *q;
	size_t len;
	int r;

	if (errlen)
		err[0] = '\0';
	if (!text) {
		snprintf(err, errlen, "column 1: empty query");
		return -EINVAL;
	}
	len = strnlen(text, WQL_MAX_LEN + 1);
	if (len > WQL_MAX_LEN) {
		snprintf(err, errlen, "column %d: query longer than %d characters", WQL_MAX_LEN + 1,
			 WQL_MAX_LEN);
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	r = parse_query(&p, q);
	tok_clear(&p.tok);
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		wql_free(q);
		return r;
	}
	*ret = q;
	return 0;
}

void wql_free(struct wql_query *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->nprops; i++)
		free(q->props[i]);
	free(q->props);
	free(q->cls);
	node_free(q->where);
	free(q);
}

const char *wql_class(const struct wql_query *q) { return q->cls; }
size_t wql_nprops(const struct wql_query *q) { return q->nprops; }
const char *wql_prop(const struct wql_query *q, size_t i) { return i < q->nprops ? q->props[i] : NULL; }
unsigned wql_within(const struct wql_query *q) { return q->within; }
bool wql_is_event(const struct wql_query *q) { return q->event; }
const char *wql_event_target(const struct wql_query *q) { return q->event_target; }

/* ---- evaluation ------------------------------------------------------------------------ */

static const json_t *obj_get_ci(const json_t *obj, const char *key, size_t keylen)
{
	const char *k;
	json_t *v;

	if (!json_is_object(obj))
		return NULL;
	json_object_foreach((json_t *)obj, k, v)
		if (strlen(k) == keylen && strncasecmp(k, key, keylen) == 0)
			return v;
	return NULL;
}

static const json_t *resolve(const json_t *obj, const char *path)
{
	const json_t *cur = obj;

	for (;;) {
		const char *dot = strchr(path, '.');
		size_t l = dot ? (size_t)(dot - path) : strlen(path);

		cur = obj_get_ci(cur, path, l);
		if (!cur || !dot)
			return cur;
		path = dot + 1;
	}
}

bool wql_like(const char *s, const char *pat)
{
	/* Iterative matcher with one backtrack point: linear-ish, no recursion on client input. */
	const char *star_p = NULL, *star_s = NULL;

	while (*s) {
		if (*pat == '%') {
			star_p = ++pat;
			star_s = s;
		} else if (*pat && (*pat == '_' || tolower((unsigned char)*pat) == tolower((unsigned char)*s))) {
			pat++;
			s++;
		} else if (star_p) {
			pat = star_p;
			s = ++star_s;
		} else {
			return false;
		}
	}
	while (*pat == '%')
		pat++;
	return *pat == '\0';
}

static bool num_of(const json_t *v, double *d)
{
	if (json_is_number(v)) {
		*d = json_number_value(v);
		return true;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		if (!*s)
			return false;
		errno = 0;
		*d = strtod(s, &end);
		return *end == '\0' && errno == 0;
	}
	return false;
}

/* -1 unknown, else 0 false / 1 true. */
static int eval_cmp(enum cmp_op op, const json_t *a, const json_t *b)
{
	int c;

	if (!a || !b || json_is_null(a) || json_is_null(b))
		return -1;
	if (json_is_integer(a) && json_is_integer(b)) {
		json_int_t x = json_integer_value(a), y = json_integer_value(b);

		c = x < y ? -1 : x > y;
	} else if (json_is_string(a) && json_is_string(b)) {
		c = strcasecmp(json_string_value(a), json_string_value(b));
	} else if (json_is_boolean(a) && json_is_boolean(b)) {
		c = (int)json_is_true(a) - (int)json_is_true(b);
	} else {
		double x, y;

		if (!num_of(a, &x) || !num_of(b, &y))
			return -1;
		c = x < y ? -1 : x > y;
	}
	switch (op) {
	case OP_EQ: return c == 0;
	case OP_NE: return c != 0;
	case OP_LT: return c < 0;
	case OP_GT: return c > 0;
	case OP_LE: return c <= 0;
	case OP_GE: return c >= 0;
	}
	return -1;
}

static const json_t *operand(const struct wql_node *n, const json_t *obj)
{
	return n->kind == N_LIT ? n->lit : resolve(obj, n->prop);
}

struct eval_ctx {
	const json_t *obj;
	wql_isa_fn isa;
	void *ud;
};

static int eval(const struct wql_node *n, const struct eval_ctx *c)
{
	const json_t *v;
	int x, y;

	switch (n->kind) {
	case N_AND:
		x = eval(n->a, c);
		if (x == 0)
			return 0;
		y = eval(n->b, c);
		if (y == 0)
			return 0;
		return x == 1 && y == 1 ? 1 : -1;
	case N_OR:
		x = eval(n->a, c);
		if (x == 1)
			return 1;
		y = eval(n->b, c);
		if (y == 1)
			return 1;
		return x == 0 && y == 0 ? 0 : -1;
	case N_NOT:
		x = eval(n->a, c);
		return x < 0 ? -1 : !x;
	case N_CMP:
		return eval_cmp(n->op, operand(n->a, c->obj), operand(n->b, c->obj));
	case N_ISNULL:
		v = operand(n->a, c->obj);
		x = !v || json_is_null(v);
		return n->negate ? !x : x;
	case N_LIKE:
		v = operand(n->a, c->obj);
		if (!v || json_is_null(v))
			return -1;
		if (!json_is_string(v))
			return -1;
		x = wql_like(json_string_value(v), n->prop);
		return n->negate ? !x : x;
	case N_ISA: {
		const char *cls = NULL;

		v = operand(n->a, c->obj);
		if (!v || json_is_null(v))
			return -1;
		if (json_is_object(v))
			cls = json_string_value(json_object_get(v, "__CLASS"));
		else if (json_is_string(v))
			cls = json_string_value(v);
		if (!cls)
			return 0;
		if (c->isa)
			return c->isa(cls, n->prop, c->ud);
		return strcasecmp(cls, n->prop) == 0;
	}
	case N_PROP:
	case N_LIT:
		break;
	}
	return -1;
}

bool wql_match(const struct wql_query *q, const json_t *obj, wql_isa_fn isa, void *userdata)
{
	struct eval_ctx c = { .obj = obj, .isa = isa, .ud = userdata };

	if (!q->where)
		return true;
	return eval(q->where, &c) == 1;
}

json_t *wql_project(const struct wql_query *q, const json_t *obj)
{
	json_t *out;

	if (q->nprops == 0)
		return json_deep_copy(obj);
	out = json_object();
	if (!out)
		return NULL;
	for (const char *const *k = (const char *const[]){ "__CLASS", "__PATH", NULL }; *k; k++) {
		json_t *v = json_object_get(obj, *k);

		if (v)
			json_object_set(out, *k, v);
	}
	for (size_t i = 0; i < q->nprops; i++) {
		const char *key = q->props[i], *k;
		json_t *v, *found = NULL;

		json_object_foreach((json_t *)obj, k, v)
			if (strcasecmp(k, key) == 0) {
				found = v;
				key = k;
				break;
			}
		json_object_set_new(out, key, found ? json_deep_copy(found) : json_null());
	}
	return out;
}
