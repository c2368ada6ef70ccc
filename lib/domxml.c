// SPDX-License-Identifier: GPL-2.0-only
/* VM definitions: parse libvirt domain XML, validate it against libvirt's schema, map the subset vmms supports. */
#include "lib/domxml.h"

#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#if LIBXML_VERSION >= 21200
#define DOMXML_CONST_ERROR const
#else
#define DOMXML_CONST_ERROR
#endif

#define DOMXML_MAX_MEMORY (1ULL << 40)  /* 1 TiB; the worker checks host RAM later */
#define DOMXML_PAGE 4096ULL
#define DOMXML_CMDLINE_MAX 2047         /* x86 COMMAND_LINE_SIZE is 2048 with the NUL */
#define DOMXML_SERIAL_MAX 20            /* virtio-blk VIRTIO_BLK_ID_BYTES */
#define DOMXML_TARGET_MAX 32
#define DOMXML_QUOTE_MAX 80             /* longest piece of a hostile value echoed in a message */

/* ---- errors ------------------------------------------------------------------------------ */

struct dx {
	struct vm_config *c;
	char *err;
	size_t errlen;
	const char *obj;        /* "disk vda" while mapping a device, for messages; or NULL */
	/* Character devices are resolved after the walk: <console> may come before <serial>. */
	unsigned nr_serials, nr_serial_consoles, nr_virtio_consoles;
	struct vm_chardev serial_console;
	bool has_memory, has_current_memory, has_kernel;
	bool schema_mismatch;   /* validation failed (as opposed to the schema being unusable) */
	uint64_t current_memory;
};

/* Writes one line into err: hostile text may be echoed, so control characters become '?'. */
static int __attribute__((format(printf, 4, 5)))
dx_errf(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return r;
}

#define dx_fail(x, r, ...) dx_errf((x)->err, (x)->errlen, (r), __VA_ARGS__)

/* ---- small helpers ----------------------------------------------------------------------- */

static const char *dx_name(const xmlNode *n)
{
	return (const char *)n->name;
}

/* Domain XML has no namespace: <foo:memory xmlns:foo='...'> is not <memory>. */
static bool dx_is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !n->ns && n->name && strcmp(dx_name(n), name) == 0;
}

/* Attribute value (no namespace) or NULL; the caller frees. */
static char *dx_attr(const xmlNode *n, const char *name)
{
	return (char *)xmlGetNoNsProp((xmlNode *)n, (const xmlChar *)name);
}

/* Element text; the caller frees. Entity references cannot occur: documents with a DTD are
 * refused before they are parsed any further. */
static char *dx_text(const xmlNode *n)
{
	return (char *)xmlNodeGetContent((xmlNode *)n);
}

static bool dx_streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Trims XML whitespace in place (the schema's numeric types collapse whitespace). */
static char *dx_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Decimal unsigned integer, optional leading '+', no overflow. 0 or -EINVAL/-ERANGE. */
static int dx_parse_u64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (*s == '+')
		s++;
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return 0;
}

static bool dx_blank(const xmlChar *s)
{
	for (; s && *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

/* Child nodes other than these are refused by the caller's walk; this only skips the node
 * kinds that carry no meaning (whitespace between elements, comments, processing
 * instructions). Text anywhere else is refused: the schema allows none there. */
static bool dx_skip(const xmlNode *n)
{
	return (n->type == XML_TEXT_NODE && dx_blank(n->content)) || n->type == XML_COMMENT_NODE ||
	       n->type == XML_PI_NODE;
}

/* ---- refusing by name -------------------------------------------------------------------- */

struct dx_reason {
	const char *name;
	const char *why;
};

/* What to tell the user for elements that are valid libvirt XML but that vmms does not do. */
static const struct dx_reason dx_domain_reasons[] = {
	{ "maxMemory", "memory hotplug is not supported; remove <maxMemory>" },
	{ "memoryBacking", "hugepages and memory backing options are not supported yet; remove <memoryBacking>" },
	{ "iothreads", "I/O threads are not configurable; remove <iothreads>" },
	{ "cputune", "CPU tuning is not supported yet; remove <cputune>" },
	{ "numatune", "NUMA placement is not supported; remove <numatune>" },
	{ "seclabel", "vmms confines each worker itself; remove <seclabel>" },
	{ "sysinfo", "SMBIOS tables are not supported; remove <sysinfo>" },
	{ "pm", "guest power management (S3/S4) is not supported; remove <pm>" },
	{ "resource", "resource partitions are not supported; remove <resource>" },
	{ "bootloader", "host-side bootloaders are not supported; use <os><kernel>" },
};

static const struct dx_reason dx_device_reasons[] = {
	{ "emulator", "vmms runs its own worker; remove <emulator>" },
	{ "interface", "network devices are not supported yet" },
	{ "graphics", "graphical consoles are not supported; use <serial> or <console>" },
	{ "video", "video devices are not supported; use <serial> or <console>" },
	{ "controller", "vmms places its virtio devices on its own PCI root; remove <controller>" },
	{ "input", "input devices are not supported; remove <input>" },
	{ "sound", "sound devices are not supported; remove <sound>" },
	{ "audio", "sound devices are not supported; remove <audio>" },
	{ "hostdev", "device assignment is not supported" },
	{ "channel", "channels are not supported yet; use <console><target type='virtio'/>" },
	{ "filesystem", "shared file systems are not supported yet; use a <disk>" },
	{ "tpm", "TPM devices are not supported" },
	{ "watchdog", "watchdog devices are not supported" },
	{ "parallel", "parallel ports are not supported; use <serial>" },
	{ "smartcard", "smartcard devices are not supported" },
	{ "redirdev", "USB redirection is not supported" },
	{ "hub", "USB is not supported" },
	{ "panic", "panic devices are not supported; use <on_crash>" },
	{ "shmem", "shared memory devices are not supported" },
	{ "memory", "memory hotplug is not supported" },
	{ "iommu", "IOMMU devices are not supported" },
	{ "lease", "lock leases are not supported" },
	{ "crypto", "crypto devices are not supported" },
	{ "pstore", "pstore devices are not supported" },
};

/* name is NULL for text and CDATA nodes, which reach the callers' fallbacks too. */
static const char *dx_reason(const struct dx_reason *t, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return t[i].why;
	return NULL;
}

/* "unsupported element <devices><interface>: ..." or, inside a device, "disk vda: ...". */
static int dx_unsupported_elem(struct dx *x, const char *path, const xmlNode *n, const char *why)
{
	const char *prefix = n->ns && n->ns->prefix ? (const char *)n->ns->prefix : NULL;

	if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
		_cleanup_free_ char *t = dx_text(n);

		return dx_fail(x, -EINVAL, "%s%sunexpected text '%.*s' in %s: remove it", x->obj ? x->obj : "",
			       x->obj ? ": " : "", DOMXML_QUOTE_MAX, t ? dx_trim(t) : "", path[0] ? path : "<domain>");
	}
	if (n->type != XML_ELEMENT_NODE || !n->name)
		return dx_fail(x, -EINVAL, "%s%sunexpected XML node in %s: remove it", x->obj ? x->obj : "",
			       x->obj ? ": " : "", path[0] ? path : "<domain>");
	if (!why)
		why = "vmms does not support it; remove it";
	return dx_fail(x, -EOPNOTSUPP, "%s%sunsupported element %s<%s%s%.*s>: %s",
		       x->obj ? x->obj : "", x->obj ? ": " : "", path,
		       prefix ? prefix : "", prefix ? ":" : "", DOMXML_QUOTE_MAX, dx_name(n), why);
}

static int dx_unsupported_value(struct dx *x, const char *attr, const char *val, const char *where,
				const char *why)
{
	return dx_fail(x, -EOPNOTSUPP, "%s%sunsupported value %s='%.*s' in %s: %s",
		       x->obj ? x->obj : "", x->obj ? ": " : "", attr, DOMXML_QUOTE_MAX, val, where, why);
}

/* Refuses attributes of n that are not in allowed (NULL-terminated). */
static int dx_check_attrs(struct dx *x, const xmlNode *n, const char *where, const char *const *allowed)
{
	for (const xmlAttr *a = n->properties; a; a = a->next) {
		bool ok = false;
		_cleanup_free_ char *v = NULL;

		for (size_t i = 0; allowed && allowed[i]; i++)
			if (!a->ns && strcmp((const char *)a->name, allowed[i]) == 0)
				ok = true;
		if (ok)
			continue;
		v = (char *)xmlNodeGetContent((xmlNode *)a);
		return dx_fail(x, -EOPNOTSUPP, "%s%sunsupported attribute %.*s='%.*s' in %s: remove it",
			       x->obj ? x->obj : "", x->obj ? ": " : "", DOMXML_QUOTE_MAX,
			       (const char *)a->name, DOMXML_QUOTE_MAX, v ? v : "", where);
	}
	return 0;
}

/* Element with no attributes and no children allowed (e.g. <acpi/>, <readonly/>). */
static int dx_check_empty(struct dx *x, const xmlNode *n, const char *where)
{
	int r = dx_check_attrs(x, n, where, NULL);

	if (r < 0)
		return r;
	for (const xmlNode *ch = n->children; ch; ch = ch->next)
		if (!dx_skip(ch))
			return dx_unsupported_elem(x, where, ch, NULL);
	return 0;
}

/* Element whose content is text only. */
static int dx_check_text_only(struct dx *x, const xmlNode *n, const char *where)
{
	for (const xmlNode *ch = n->children; ch; ch = ch->next)
		if (!dx_skip(ch) && ch->type != XML_TEXT_NODE && ch->type != XML_CDATA_SECTION_NODE)
			return dx_unsupported_elem(x, where, ch, NULL);
	return 0;
}

/* An element the schema allows once: a second one is refused rather than silently taking the
 * place of the first. bit is the element's own bit in *seen. */
static int dx_once(struct dx *x, const char *path, const xmlNode *n, unsigned *seen, unsigned bit)
{
	if (*seen & bit)
		return dx_fail(x, -EINVAL, "%s%selement %s<%.*s> is given twice; keep one", x->obj ? x->obj : "",
			       x->obj ? ": " : "", path, DOMXML_QUOTE_MAX, dx_name(n));
	*seen |= bit;
	return 0;
}

/* dx_once for the child n of an element whose singletons are listed in names. */
static int dx_once_of(struct dx *x, const char *path, const xmlNode *n, const char *const *names, unsigned *seen)
{
	for (unsigned i = 0; names[i]; i++)
		if (dx_is(n, names[i]))
			return dx_once(x, path, n, seen, 1u << i);
	return 0;
}

/* ---- values ------------------------------------------------------------------------------ */

/* A path from the definition: absolute, printable, shorter than PATH_MAX. */
static int dx_check_path(struct dx *x, const char *what, const char *p)
{
	size_t len = strlen(p);

	if (len >= PATH_MAX)
		return dx_fail(x, -ERANGE, "%s path is %zu bytes long; at most %d are allowed", what, len,
			       PATH_MAX - 1);
	for (const char *s = p; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return dx_fail(x, -EINVAL, "%s path '%.*s' contains control characters; remove them",
				       what, DOMXML_QUOTE_MAX, p);
	if (p[0] != '/')
		return dx_fail(x, -EINVAL, "%s path '%.*s' is not absolute; give the full path starting with '/'",
			       what, DOMXML_QUOTE_MAX, p);
	return 0;
}

static int dx_dup_path(struct dx *x, const char *what, const char *p, char **ret)
{
	int r = dx_check_path(x, what, p);

	if (r < 0)
		return r;
	/* Repeated elements reach here when mapping a schema-invalid document for a hint. */
	free(*ret);
	*ret = strdup(p);
	return *ret ? 0 : dx_fail(x, -ENOMEM, "out of memory");
}

/* libvirt's units (virScaleInteger): b/bytes, k/KiB = 1024, KB = 1000, likewise M G T P E;
 * case-insensitive; KiB when absent. */
static int dx_unit_scale(const char *unit, uint64_t *ret)
{
	static const char prefixes[] = "kmgtpe";
	const char *p;
	uint64_t base, scale = 1;

	if (!unit || !*unit) {
		*ret = KiB;
		return 0;
	}
	if (strcasecmp(unit, "b") == 0 || strcasecmp(unit, "byte") == 0 || strcasecmp(unit, "bytes") == 0) {
		*ret = 1;
		return 0;
	}
	p = strchr(prefixes, tolower((unsigned char)unit[0])); /* unit[0] != '\0' here */
	if (!p)
		return -EINVAL;
	if (unit[1] == '\0' || strcasecmp(unit + 1, "ib") == 0)
		base = 1024;
	else if (strcasecmp(unit + 1, "b") == 0)
		base = 1000;
	else
		return -EINVAL;
	for (long i = 0; i <= p - prefixes; i++)
		scale *= base; /* at most 1024^6 = 2^60: no overflow */
	*ret = scale;
	return 0;
}

/* <memory unit='MiB'>512</memory>: bytes, rounded up to 4 KiB pages (libvirt rounds to KiB). */
static int dx_parse_memory(struct dx *x, const xmlNode *n, const char *what, uint64_t *ret)
{
	static const char *const attrs[] = { "unit", NULL };
	_cleanup_free_ char *unit = NULL, *text = NULL;
	char where[32];
	uint64_t v, scale;
	int r;

	snprintf(where, sizeof(where), "<%s>", what);
	r = dx_check_attrs(x, n, where, attrs);
	if (r < 0)
		return r;
	r = dx_check_text_only(x, n, where);
	if (r < 0)
		return r;
	unit = dx_attr(n, "unit");
	text = dx_text(n);
	if (!text)
		return dx_fail(x, -ENOMEM, "out of memory");
	if (dx_unit_scale(unit, &scale) < 0)
		return dx_fail(x, -EINVAL, "<%s>: unknown unit '%.*s'; use b, KiB, MiB, GiB or TiB", what,
			       DOMXML_QUOTE_MAX, unit);
	r = dx_parse_u64(dx_trim(text), &v);
	if (r == -EINVAL)
		return dx_fail(x, -EINVAL, "<%s>: '%.*s' is not a number", what, DOMXML_QUOTE_MAX, text);
	if (r < 0 || v > DOMXML_MAX_MEMORY / scale)
		return dx_fail(x, -ERANGE, "<%s> %.*s %.*s is too large: at most 1 TiB is supported", what,
			       DOMXML_QUOTE_MAX, text, DOMXML_QUOTE_MAX, unit ? unit : "KiB");
	v = ALIGN_UP(v * scale, DOMXML_PAGE);
	if (v > DOMXML_MAX_MEMORY)
		return dx_fail(x, -ERANGE, "<%s> %.*s %.*s is too large: at most 1 TiB is supported", what,
			       DOMXML_QUOTE_MAX, text, DOMXML_QUOTE_MAX, unit ? unit : "KiB");
	if (v < VM_MIN_MEMORY)
		return dx_fail(x, -ERANGE, "<%s> %.*s %.*s is too small: give at least %llu MiB", what,
			       DOMXML_QUOTE_MAX, text, DOMXML_QUOTE_MAX, unit ? unit : "KiB", VM_MIN_MEMORY / MiB);
	*ret = v;
	return 0;
}

static int dx_hex(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Both of libvirt's forms: 32 hex digits, or 8-4-4-4-12 with dashes. */
static int dx_parse_uuid(const char *s, uint8_t uuid[16])
{
	size_t len = strlen(s), j = 0;
	bool dashed = len == 36;

	if (len != 32 && len != 36)
		return -EINVAL;
	for (size_t i = 0; i < len;) {
		int hi, lo;

		if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		hi = dx_hex((unsigned char)s[i]);
		lo = i + 1 < len ? dx_hex((unsigned char)s[i + 1]) : -1;
		if (hi < 0 || lo < 0 || j >= 16)
			return -EINVAL;
		uuid[j++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return j == 16 ? 0 : -EINVAL;
}

static int dx_check_name(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > VM_NAME_MAX || s[0] == '.' || s[0] == '-')
		return -EINVAL;
	for (; *s; s++)
		if (!isascii((unsigned char)*s) ||
		    !(isalnum((unsigned char)*s) || *s == '.' || *s == '_' || *s == '-'))
			return -EINVAL;
	return 0;
}

/* ---- <domain> children ------------------------------------------------------------------- */

static int dx_name_elem(struct dx *x, const xmlNode *n)
{
	_cleanup_free_ char *s = NULL;
	int r = dx_check_attrs(x, n, "<name>", NULL);

	if (r < 0 || (r = dx_check_text_only(x, n, "<name>")) < 0)
		return r;
	s = dx_text(n);
	if (!s)
		return dx_fail(x, -ENOMEM, "out of memory");
	if (dx_check_name(s) < 0)
		return dx_fail(x, -EINVAL,
			       "invalid name '%.*s': use 1 to %d characters from A-Z a-z 0-9 . _ -, not starting with '.' or '-'",
			       DOMXML_QUOTE_MAX, s, VM_NAME_MAX);
	memcpy(x->c->name, s, strlen(s) + 1);
	return 0;
}

static int dx_uuid_elem(struct dx *x, const xmlNode *n)
{
	_cleanup_free_ char *s = NULL;
	int r = dx_check_attrs(x, n, "<uuid>", NULL);

	if (r < 0 || (r = dx_check_text_only(x, n, "<uuid>")) < 0)
		return r;
	s = dx_text(n);
	if (!s)
		return dx_fail(x, -ENOMEM, "out of memory");
	if (dx_parse_uuid(dx_trim(s), x->c->uuid) < 0)
		return dx_fail(x, -EINVAL, "invalid uuid '%.*s': use 32 hex digits, optionally as 8-4-4-4-12",
			       DOMXML_QUOTE_MAX, s);
	x->c->has_uuid = true;
	return 0;
}

static int dx_vcpu_elem(struct dx *x, const xmlNode *n)
{
	static const char *const attrs[] = { "placement", "current", NULL };
	_cleanup_free_ char *s = NULL, *placement = NULL, *current = NULL;
	uint64_t v, cur;
	int r = dx_check_attrs(x, n, "<vcpu>", attrs);

	if (r < 0 || (r = dx_check_text_only(x, n, "<vcpu>")) < 0)
		return r;
	placement = dx_attr(n, "placement");
	if (placement && strcmp(placement, "static") != 0)
		return dx_unsupported_value(x, "placement", placement, "<vcpu>",
					    "only placement='static' is supported");
	s = dx_text(n);
	if (!s)
		return dx_fail(x, -ENOMEM, "out of memory");
	r = dx_parse_u64(dx_trim(s), &v);
	if (r == -EINVAL)
		return dx_fail(x, -EINVAL, "<vcpu>: '%.*s' is not a number", DOMXML_QUOTE_MAX, s);
	if (r < 0 || v < 1 || v > VM_MAX_VCPUS)
		return dx_fail(x, -ERANGE, "<vcpu> %.*s: give between 1 and %d vCPUs", DOMXML_QUOTE_MAX, s,
			       VM_MAX_VCPUS);
	current = dx_attr(n, "current");
	if (current && (dx_parse_u64(dx_trim(current), &cur) < 0 || cur != v))
		return dx_unsupported_value(x, "current", current, "<vcpu>",
					    "vCPU hotplug is not supported; remove current or set it to the <vcpu> count");
	x->c->vcpus = (unsigned)v;
	return 0;
}

static int dx_text_dup(struct dx *x, const xmlNode *n, const char *where, char **ret)
{
	char *s;
	int r = dx_check_attrs(x, n, where, NULL);

	if (r < 0 || (r = dx_check_text_only(x, n, where)) < 0)
		return r;
	s = dx_text(n);
	if (!s)
		return dx_fail(x, -ENOMEM, "out of memory");
	free(*ret);
	*ret = s;
	return 0;
}

static int dx_os_elem(struct dx *x, const xmlNode *n)
{
	static const char *const once[] = { "type", "kernel", "initrd", "cmdline", NULL };
	unsigned seen = 0;
	int r = dx_check_attrs(x, n, "<os>", NULL);

	if (r < 0)
		return r;
	for (const xmlNode *ch = n->children; ch; ch = ch->next) {
		if (dx_skip(ch))
			continue;
		r = dx_once_of(x, "<os>", ch, once, &seen);
		if (r < 0)
			return r;
		if (dx_is(ch, "type")) {
			static const char *const attrs[] = { "arch", "machine", NULL };
			_cleanup_free_ char *arch = dx_attr(ch, "arch"), *machine = dx_attr(ch, "machine");
			_cleanup_free_ char *t = NULL;

			r = dx_check_attrs(x, ch, "<os><type>", attrs);
			if (r < 0 || (r = dx_check_text_only(x, ch, "<os><type>")) < 0)
				return r;
			if (arch && strcmp(arch, "x86_64") != 0)
				return dx_unsupported_value(x, "arch", arch, "<os><type>",
							    "only arch='x86_64' is supported");
			if (machine)
				return dx_unsupported_value(x, "machine", machine, "<os><type>",
							    "vmms has one machine type; remove the machine attribute");
			t = dx_text(ch);
			if (!t)
				return dx_fail(x, -ENOMEM, "out of memory");
			if (strcmp(dx_trim(t), "hvm") != 0)
				return dx_fail(x, -EOPNOTSUPP,
					       "unsupported value <os><type>%.*s</type>: only hvm is supported",
					       DOMXML_QUOTE_MAX, t);
		} else if (dx_is(ch, "kernel") || dx_is(ch, "initrd")) {
			bool kernel = dx_is(ch, "kernel");
			_cleanup_free_ char *t = NULL;

			r = dx_text_dup(x, ch, kernel ? "<os><kernel>" : "<os><initrd>", &t);
			if (r < 0)
				return r;
			r = dx_dup_path(x, kernel ? "kernel" : "initrd", t, kernel ? &x->c->kernel : &x->c->initrd);
			if (r < 0)
				return r;
			x->has_kernel |= kernel;
		} else if (dx_is(ch, "cmdline")) {
			size_t len;

			r = dx_text_dup(x, ch, "<os><cmdline>", &x->c->cmdline);
			if (r < 0)
				return r;
			len = strlen(x->c->cmdline);
			if (len > DOMXML_CMDLINE_MAX)
				return dx_fail(x, -ERANGE, "kernel command line is %zu bytes; at most %d fit",
					       len, DOMXML_CMDLINE_MAX);
			for (const char *s = x->c->cmdline; *s; s++)
				if ((unsigned char)*s < 0x20 || *s == 0x7f)
					return dx_fail(x, -EINVAL,
						       "kernel command line contains control characters (newlines?); put it on one line");
		} else if (dx_is(ch, "boot")) {
			return dx_unsupported_elem(x, "<os>", ch,
						   "vmms has no firmware yet and boots only <kernel>; remove <boot>");
		} else if (dx_is(ch, "loader") || dx_is(ch, "nvram")) {
			return dx_unsupported_elem(x, "<os>", ch,
						   "firmware is not supported yet; boot a <kernel> directly");
		} else {
			return dx_unsupported_elem(x, "<os>", ch, NULL);
		}
	}
	if (!(seen & 1u)) /* once[0] */
		return dx_fail(x, -EINVAL, "<os><type> is missing; add <type arch='x86_64'>hvm</type>");
	return 0;
}

static int dx_features_elem(struct dx *x, const xmlNode *n)
{
	static const char *const once[] = { "acpi", "apic", "pae", NULL };
	unsigned seen = 0;
	int r = dx_check_attrs(x, n, "<features>", NULL);

	if (r < 0)
		return r;
	for (const xmlNode *ch = n->children; ch; ch = ch->next) {
		if (dx_skip(ch))
			continue;
		r = dx_once_of(x, "<features>", ch, once, &seen);
		if (r < 0)
			return r;
		/* vmms always gives the guest ACPI tables and a local APIC; PAE is implied by x86_64. */
		if (dx_is(ch, "acpi"))
			r = dx_check_empty(x, ch, "<features><acpi>");
		else if (dx_is(ch, "apic"))
			r = dx_check_empty(x, ch, "<features><apic>");
		else if (dx_is(ch, "pae"))
			r = dx_check_empty(x, ch, "<features><pae>");
		else
			r = dx_unsupported_elem(x, "<features>", ch,
						"only <acpi/>, <apic/> and <pae/> are supported; remove it");
		if (r < 0)
			return r;
	}
	return 0;
}

static int dx_clock_elem(struct dx *x, const xmlNode *n)
{
	static const char *const attrs[] = { "offset", NULL };
	_cleanup_free_ char *offset = dx_attr(n, "offset");
	int r = dx_check_attrs(x, n, "<clock>", attrs);

	if (r < 0)
		return r;
	if (offset && strcmp(offset, "utc") != 0)
		return dx_unsupported_value(x, "offset", offset, "<clock>", "only offset='utc' is supported");
	for (const xmlNode *ch = n->children; ch; ch = ch->next)
		if (!dx_skip(ch))
			return dx_unsupported_elem(x, "<clock>", ch,
						   "timer configuration is not supported; remove it");
	return 0;
}

static int dx_lifecycle_elem(struct dx *x, const xmlNode *n)
{
	const char *name = dx_name(n);
	char where[32];
	_cleanup_free_ char *s = NULL;
	enum vm_action *act;
	const char *v, *use;
	int r;

	snprintf(where, sizeof(where), "<%s>", name);
	r = dx_check_attrs(x, n, where, NULL);
	if (r < 0 || (r = dx_check_text_only(x, n, where)) < 0)
		return r;
	s = dx_text(n);
	if (!s)
		return dx_fail(x, -ENOMEM, "out of memory");
	v = dx_trim(s);
	if (strcmp(name, "on_poweroff") == 0) {
		act = &x->c->on_poweroff;
		use = "use destroy or restart";
	} else if (strcmp(name, "on_reboot") == 0) {
		act = &x->c->on_reboot;
		use = "use restart or destroy";
	} else {
		act = &x->c->on_crash;
		use = "use destroy, restart or preserve";
	}
	if (strcmp(v, "destroy") == 0)
		*act = VM_ACTION_DESTROY;
	else if (strcmp(v, "restart") == 0)
		*act = VM_ACTION_RESTART;
	else if (strcmp(v, "preserve") == 0 && act == &x->c->on_crash)
		*act = VM_ACTION_PRESERVE; /* keep the crashed guest paused for inspection */
	else
		return dx_fail(x, -EOPNOTSUPP, "unsupported value <%s>%.*s</%s>: %s", name,
			       DOMXML_QUOTE_MAX, v, name, use);
	return 0;
}

static int dx_cpu_elem(struct dx *x, const xmlNode *n)
{
	/* check and migratable only tune libvirt's own checks; vmms passes the host CPUID. */
	static const char *const attrs[] = { "mode", "check", "migratable", NULL };
	_cleanup_free_ char *mode = dx_attr(n, "mode");
	int r;

	if (!mode || (strcmp(mode, "host-passthrough") != 0 && strcmp(mode, "host-model") != 0))
		return dx_unsupported_value(x, "mode", mode ? mode : "custom", "<cpu>",
					    "vmms passes the host CPU; use mode='host-passthrough' or remove <cpu>");
	r = dx_check_attrs(x, n, "<cpu>", attrs);
	if (r < 0)
		return r;
	for (const xmlNode *ch = n->children; ch; ch = ch->next)
		if (!dx_skip(ch))
			return dx_unsupported_elem(x, "<cpu>", ch,
						   dx_is(ch, "topology") ? "CPU topology is not supported yet; remove it"
									 : "CPU models and features are not configurable; remove it");
	return 0;
}

/* ---- <devices> --------------------------------------------------------------------------- */

/* Bus libvirt infers from a target name when <target bus=...> is absent. */
static const char *dx_bus_of_dev(const char *dev)
{
	static const struct dx_reason prefixes[] = {
		{ "vd", "virtio" }, { "sd", "scsi" }, { "hd", "ide" }, { "xvd", "xen" }, { "ub", "usb" }, { "fd", "fdc" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (strncmp(dev, prefixes[i].name, strlen(prefixes[i].name)) == 0)
			return prefixes[i].why;
	return "unknown";
}

static int dx_disk_driver(struct dx *x, const xmlNode *n, struct vm_disk *d)
{
	static const char *const attrs[] = { "name", "type", "cache", "io", "discard", NULL };
	static const struct { const char *name; enum vm_disk_cache v; } caches[] = {
		{ "default", VM_DISK_CACHE_DEFAULT }, { "writeback", VM_DISK_CACHE_WRITEBACK },
		{ "none", VM_DISK_CACHE_NONE }, { "writethrough", VM_DISK_CACHE_WRITETHROUGH },
		{ "directsync", VM_DISK_CACHE_DIRECTSYNC }, { "unsafe", VM_DISK_CACHE_UNSAFE },
	};
	static const struct { const char *name; enum vm_disk_io v; } ios[] = {
		{ "default", VM_DISK_IO_DEFAULT }, { "threads", VM_DISK_IO_THREADS },
		{ "native", VM_DISK_IO_NATIVE }, { "io_uring", VM_DISK_IO_URING },
	};
	_cleanup_free_ char *name = dx_attr(n, "name"), *type = dx_attr(n, "type");
	_cleanup_free_ char *cache = dx_attr(n, "cache"), *io = dx_attr(n, "io");
	_cleanup_free_ char *discard = dx_attr(n, "discard");
	bool found;
	int r = dx_check_attrs(x, n, "<driver>", attrs);

	if (r < 0)
		return r;
	for (const xmlNode *ch = n->children; ch; ch = ch->next)
		if (!dx_skip(ch))
			return dx_unsupported_elem(x, "<driver>", ch, NULL);
	if (name && strcmp(name, "qemu") != 0)
		return dx_unsupported_value(x, "name", name, "<driver>", "use name='qemu' or remove it");
	if (type && strcmp(type, "raw") != 0)
		return dx_fail(x, -EOPNOTSUPP, "%s: format %.*s is not supported yet; use raw", x->obj,
			       DOMXML_QUOTE_MAX, type);
	if (cache) {
		found = false;
		for (size_t i = 0; i < ARRAY_SIZE(caches); i++)
			if (strcmp(cache, caches[i].name) == 0) {
				d->cache = caches[i].v;
				found = true;
			}
		if (!found)
			return dx_unsupported_value(x, "cache", cache, "<driver>",
						    "use none, writeback, writethrough, directsync or unsafe");
	}
	if (io) {
		found = false;
		for (size_t i = 0; i < ARRAY_SIZE(ios); i++)
			if (strcmp(io, ios[i].name) == 0) {
				d->io = ios[i].v;
				found = true;
			}
		if (!found)
			return dx_unsupported_value(x, "io", io, "<driver>", "use threads, native or io_uring");
	}
	if (discard) {
		if (strcmp(discard, "unmap") == 0)
			d->discard = true;
		else if (strcmp(discard, "ignore") != 0)
			return dx_unsupported_value(x, "discard", discard, "<driver>", "use unmap or ignore");
	}
	return 0;
}

static int dx_disk_elem(struct dx *x, const xmlNode *n)
{
	static const char *const attrs[] = { "type", "device", NULL };
	static const char *const target_attrs[] = { "dev", "bus", NULL };
	static const char *const source_attrs[] = { "file", NULL };
	_cleanup_free_ char *type = dx_attr(n, "type"), *device = dx_attr(n, "device");
	_cleanup_free_ char *dev = NULL, *bus = NULL;
	const xmlNode *target = NULL;
	char obj[64];
	struct vm_disk *d;
	unsigned seen = 0;
	int r;

	/* Name the disk by its target in every message, wherever <target> sits among the children. */
	for (const xmlNode *ch = n->children; ch; ch = ch->next)
		if (dx_is(ch, "target") && !target)
			target = ch;
	if (target)
		dev = dx_attr(target, "dev");
	if (dev)
		snprintf(obj, sizeof(obj), "disk %.*s", DOMXML_TARGET_MAX, dev);
	else
		snprintf(obj, sizeof(obj), "disk #%u", x->c->nr_disks + 1);
	x->obj = obj;

	r = dx_check_attrs(x, n, "<disk>", attrs);
	if (r < 0)
		return r;
	if (type && strcmp(type, "file") != 0)
		return dx_unsupported_value(x, "type", type, "<disk>", "only type='file' disks are supported yet");
	if (device && strcmp(device, "disk") != 0)
		return dx_unsupported_value(x, "device", device, "<disk>", "only device='disk' is supported");
	if (!target || !dev)
		return dx_fail(x, -EINVAL, "%s: <target dev=.../> is missing; add e.g. <target dev='vda' bus='virtio'/>",
			       obj);
	if (strlen(dev) > DOMXML_TARGET_MAX)
		return dx_fail(x, -ERANGE, "%s: target dev is longer than %d characters", obj, DOMXML_TARGET_MAX);
	for (const char *s = dev; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
			return dx_fail(x, -EINVAL, "%s: target dev must be lower-case letters and digits, like vda",
				       obj);
	r = dx_check_attrs(x, target, "<target>", target_attrs);
	if (r < 0)
		return r;
	for (const xmlNode *ch = target->children; ch; ch = ch->next)
		if (!dx_skip(ch))
			return dx_unsupported_elem(x, "<target>", ch, NULL);
	bus = dx_attr(target, "bus");
	if (!bus ? strcmp(dx_bus_of_dev(dev), "virtio") != 0 : strcmp(bus, "virtio") != 0)
		return dx_fail(x, -EOPNOTSUPP, "%s: bus %.*s is not supported; use bus='virtio'", obj,
			       DOMXML_QUOTE_MAX, bus ? bus : dx_bus_of_dev(dev));
	for (unsigned i = 0; i < x->c->nr_disks; i++)
		if (strcmp(x->c->disks[i].target, dev) == 0)
			return dx_fail(x, -EINVAL, "%s: target dev '%s' is used by two disks; give each disk its own",
				       obj, dev);
	if (x->c->nr_disks >= VM_MAX_DISKS)
		return dx_fail(x, -ERANGE, "%s: too many disks; at most %d are supported", obj, VM_MAX_DISKS);

	d = &x->c->disks[x->c->nr_disks++];
	d->target = strdup(dev);
	if (!d->target)
		return dx_fail(x, -ENOMEM, "out of memory");
	for (const xmlNode *ch = n->children; ch; ch = ch->next) {
		static const char *const once[] = { "target", "driver", "source", "readonly", "serial", NULL };

		if (dx_skip(ch))
			continue;
		r = dx_once_of(x, "<disk>", ch, once, &seen);
		if (r < 0)
			return r;
		if (ch == target)
			continue;
		if (dx_is(ch, "driver")) {
			r = dx_disk_driver(x, ch, d);
		} else if (dx_is(ch, "source")) {
			_cleanup_free_ char *file = dx_attr(ch, "file");

			r = dx_check_attrs(x, ch, "<source>", source_attrs);
			if (r < 0)
				return r;
			for (const xmlNode *sc = ch->children; sc; sc = sc->next)
				if (!dx_skip(sc))
					return dx_unsupported_elem(x, "<source>", sc, NULL);
			if (!file)
				return dx_fail(x, -EINVAL, "%s: <source> has no file attribute; add file='/path/to/image'", obj);
			char what[96];

			snprintf(what, sizeof(what), "%s: source", obj);
			r = dx_dup_path(x, what, file, &d->path);
		} else if (dx_is(ch, "readonly")) {
			r = dx_check_empty(x, ch, "<readonly>");
			d->readonly = true;
		} else if (dx_is(ch, "serial")) {
			size_t len;

			r = dx_text_dup(x, ch, "<serial>", &d->serial);
			if (r < 0)
				return r;
			len = strlen(d->serial);
			if (len > DOMXML_SERIAL_MAX)
				return dx_fail(x, -ERANGE, "%s: serial '%.*s' is %zu characters; at most %d fit", obj,
					       DOMXML_QUOTE_MAX, d->serial, len, DOMXML_SERIAL_MAX);
			for (const char *s = d->serial; *s; s++)
				if ((unsigned char)*s < 0x20 || *s == 0x7f)
					return dx_fail(x, -EINVAL, "%s: serial contains control characters", obj);
		} else if (dx_is(ch, "shareable")) {
			r = dx_unsupported_elem(x, "<disk>", ch, "shared disks are not supported; remove <shareable/>");
		} else if (dx_is(ch, "address")) {
			r = dx_unsupported_elem(x, "<disk>", ch, "vmms assigns PCI addresses itself; remove <address>");
		} else if (dx_is(ch, "boot")) {
			r = dx_unsupported_elem(x, "<disk>", ch, "vmms boots only <os><kernel>; remove <boot>");
		} else {
			r = dx_unsupported_elem(x, "<disk>", ch, NULL);
		}
		if (r < 0)
			return r;
	}
	if (!d->path)
		return dx_fail(x, -EINVAL, "%s: <source file=.../> is missing; add the path of a raw image", obj);
	x->obj = NULL;
	return 0;
}

/* One <serial> or <console>: the backend (type + source) and the target. */
static int dx_chardev(struct dx *x, const xmlNode *n, const char *where, struct vm_chardev *cd,
		      const char **ret_target_type, unsigned *ret_port)
{
	static const char *const attrs[] = { "type", NULL };
	static const char *const target_attrs[] = { "type", "port", NULL };
	_cleanup_free_ char *type = dx_attr(n, "type");
	_cleanup_free_ char *src_path = NULL, *src_mode = NULL, *src_append = NULL;
	_cleanup_free_ char *ttype = NULL, *tport = NULL;
	static const char *const once[] = { "source", "target", NULL };
	unsigned seen = 0;
	uint64_t port = 0;
	int r;

	memset(cd, 0, sizeof(*cd)); /* the caller clears it on failure: path may be set */
	r = dx_check_attrs(x, n, where, attrs);
	if (r < 0)
		return r;
	if (type && strcmp(type, "pty") != 0 && strcmp(type, "stdio") != 0 && strcmp(type, "null") != 0 &&
	    strcmp(type, "file") != 0 && strcmp(type, "unix") != 0)
		return dx_unsupported_value(x, "type", type, where, "use pty, stdio, file, unix or null");
	for (const xmlNode *ch = n->children; ch; ch = ch->next) {
		if (dx_skip(ch))
			continue;
		r = dx_once_of(x, where, ch, once, &seen);
		if (r < 0)
			return r;
		if (dx_is(ch, "source")) {
			static const char *const src_attrs[] = { "path", "mode", "append", NULL };

			r = dx_check_attrs(x, ch, "<source>", src_attrs);
			if (r < 0)
				return r;
			for (const xmlNode *sc = ch->children; sc; sc = sc->next)
				if (!dx_skip(sc))
					return dx_unsupported_elem(x, "<source>", sc, NULL);
			src_path = dx_attr(ch, "path");
			src_mode = dx_attr(ch, "mode");
			src_append = dx_attr(ch, "append");
		} else if (dx_is(ch, "target")) {
			r = dx_check_attrs(x, ch, "<target>", target_attrs);
			if (r < 0)
				return r;
			for (const xmlNode *tc = ch->children; tc; tc = tc->next)
				if (!dx_skip(tc))
					return dx_unsupported_elem(x, "<target>", tc, NULL);
			ttype = dx_attr(ch, "type");
			tport = dx_attr(ch, "port");
		} else {
			return dx_unsupported_elem(x, where, ch, NULL);
		}
	}
	if (tport && (dx_parse_u64(dx_trim(tport), &port) < 0 || port != 0))
		return dx_fail(x, -EOPNOTSUPP, "%s: target port %.*s is not supported; only port 0 (COM1) is",
			       x->obj, DOMXML_QUOTE_MAX, tport);

	if (!type || strcmp(type, "pty") == 0 || strcmp(type, "stdio") == 0) {
		cd->kind = VM_CHARDEV_STDIO;
	} else if (strcmp(type, "null") == 0) {
		cd->kind = VM_CHARDEV_NULL;
	} else if (strcmp(type, "file") == 0) {
		cd->kind = VM_CHARDEV_FILE;
		if (src_append && strcmp(src_append, "on") != 0 && strcmp(src_append, "off") != 0)
			return dx_unsupported_value(x, "append", src_append, "<source>", "use on or off");
		cd->append = dx_streq(src_append, "on");
	} else if (strcmp(type, "unix") == 0) {
		cd->kind = VM_CHARDEV_UNIX;
		if (!src_mode || (strcmp(src_mode, "bind") != 0 && strcmp(src_mode, "connect") != 0))
			return dx_fail(x, -EINVAL, "%s: <source mode=.../> must be bind or connect", x->obj);
		cd->listen = strcmp(src_mode, "bind") == 0;
	} else {
		return dx_unsupported_value(x, "type", type, where, "use pty, stdio, file, unix or null");
	}
	if (cd->kind == VM_CHARDEV_FILE || cd->kind == VM_CHARDEV_UNIX) {
		if (!src_path)
			return dx_fail(x, -EINVAL, "%s: <source path=.../> is missing", x->obj);
		char what[32];

		snprintf(what, sizeof(what), "%s: source", x->obj);
		r = dx_dup_path(x, what, src_path, &cd->path);
		if (r < 0)
			return r;
		if (cd->kind == VM_CHARDEV_UNIX && strlen(cd->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return dx_fail(x, -ERANGE, "%s: socket path is longer than %zu bytes; use a shorter one",
				       x->obj, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	} else if (src_path || src_mode || src_append) {
		return dx_fail(x, -EINVAL, "%s: type='%s' takes no <source>; remove it", x->obj, type ? type : "pty");
	}
	*ret_target_type = NULL;
	if (ttype) {
		/* Hand the type back through the caller's buffer: it compares against constants. */
		static const char *const known[] = { "serial", "virtio", "isa-serial" };
		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			if (strcmp(ttype, known[i]) == 0)
				*ret_target_type = known[i];
		if (!*ret_target_type)
			return dx_unsupported_value(x, "type", ttype, "<target>",
						    "use type='serial' (COM1) or type='virtio' (virtio-console)");
	}
	*ret_port = (unsigned)port;
	return 0;
}

static bool dx_chardev_equal(const struct vm_chardev *a, const struct vm_chardev *b)
{
	return a->kind == b->kind && a->listen == b->listen && a->append == b->append &&
	       ((!a->path && !b->path) || dx_streq(a->path, b->path));
}

static void dx_chardev_clear(struct vm_chardev *cd)
{
	free(cd->path);
	memset(cd, 0, sizeof(*cd));
}

static int dx_serial_elem(struct dx *x, const xmlNode *n)
{
	const char *ttype;
	unsigned port;
	int r;

	x->obj = "serial";
	if (x->nr_serials > 0)
		return dx_fail(x, -EOPNOTSUPP,
			       "unsupported element <devices><serial> (a second one): only one serial port (COM1) is supported");
	r = dx_chardev(x, n, "<serial>", &x->c->serial, &ttype, &port);
	if (r < 0)
		return r;
	if (ttype && strcmp(ttype, "virtio") == 0)
		return dx_unsupported_value(x, "type", ttype, "<serial><target>",
					    "a serial port is type='isa-serial'; for virtio-console use <console>");
	x->nr_serials++;
	x->obj = NULL;
	return 0;
}

static int dx_console_elem(struct dx *x, const xmlNode *n)
{
	struct vm_chardev cd;
	const char *ttype;
	unsigned port;
	int r;

	x->obj = "console";
	r = dx_chardev(x, n, "<console>", &cd, &ttype, &port);
	if (r < 0) {
		dx_chardev_clear(&cd);
		return r;
	}
	if (ttype && strcmp(ttype, "virtio") == 0) {
		if (x->nr_virtio_consoles++ > 0) {
			dx_chardev_clear(&cd);
			return dx_fail(x, -EOPNOTSUPP,
				       "unsupported element <devices><console> (a second virtio one): only one virtio console is supported");
		}
		x->c->console = cd;
	} else {
		/* Like libvirt, a serial-target console is another view of serial port 0. */
		if (x->nr_serial_consoles++ > 0) {
			dx_chardev_clear(&cd);
			return dx_fail(x, -EOPNOTSUPP,
				       "unsupported element <devices><console> (a second serial one): only one serial port (COM1) is supported");
		}
		x->serial_console = cd;
	}
	x->obj = NULL;
	return 0;
}

static int dx_rng_elem(struct dx *x, const xmlNode *n)
{
	static const char *const attrs[] = { "model", NULL };
	static const char *const backend_attrs[] = { "model", NULL };
	_cleanup_free_ char *model = dx_attr(n, "model");
	bool backend = false;
	int r;

	x->obj = "rng";
	if (x->c->rng)
		return dx_fail(x, -EOPNOTSUPP,
			       "unsupported element <devices><rng> (a second one): only one rng device is supported");
	r = dx_check_attrs(x, n, "<rng>", attrs);
	if (r < 0)
		return r;
	if (!dx_streq(model, "virtio"))
		return dx_unsupported_value(x, "model", model ? model : "", "<rng>", "use model='virtio'");
	for (const xmlNode *ch = n->children; ch; ch = ch->next) {
		_cleanup_free_ char *bmodel = NULL, *dev = NULL;

		if (dx_skip(ch))
			continue;
		if (!dx_is(ch, "backend") || backend)
			return dx_unsupported_elem(x, "<rng>", ch,
						   dx_is(ch, "address") ? "vmms assigns PCI addresses itself; remove <address>"
									: NULL);
		backend = true;
		bmodel = dx_attr(ch, "model");
		if (!dx_streq(bmodel, "random"))
			return dx_unsupported_value(x, "model", bmodel ? bmodel : "", "<backend>",
						    "use model='random' with /dev/urandom");
		r = dx_check_attrs(x, ch, "<backend>", backend_attrs);
		if (r < 0 || (r = dx_check_text_only(x, ch, "<backend>")) < 0)
			return r;
		dev = dx_text(ch);
		if (!dev)
			return dx_fail(x, -ENOMEM, "out of memory");
		if (*dx_trim(dev) && strcmp(dx_trim(dev), "/dev/urandom") != 0 && strcmp(dx_trim(dev), "/dev/random") != 0)
			return dx_fail(x, -EOPNOTSUPP, "rng: backend '%.*s' is not supported; use /dev/urandom",
				       DOMXML_QUOTE_MAX, dev);
	}
	if (!backend)
		return dx_fail(x, -EINVAL, "rng: <backend model='random'>/dev/urandom</backend> is missing");
	x->c->rng = true;
	x->obj = NULL;
	return 0;
}

/* <vsock model='virtio'><cid auto='no' address='3'/></vsock>. Each VM's vsock is served by
 * its own worker and reached through its own host socket, so CIDs need not be unique across
 * VMs: auto='yes' (or no <cid>) gives 3. */
static int dx_vsock_elem(struct dx *x, const xmlNode *n)
{
	static const char *const attrs[] = { "model", NULL };
	static const char *const cid_attrs[] = { "auto", "address", NULL };
	_cleanup_free_ char *model = dx_attr(n, "model");
	bool have_cid = false;
	uint64_t cid = 3;
	int r;

	x->obj = "vsock";
	r = dx_check_attrs(x, n, "<vsock>", attrs);
	if (r < 0)
		return r;
	if (model && !dx_streq(model, "virtio"))
		return dx_unsupported_value(x, "model", model, "<vsock>",
					    "vmms offers modern (virtio 1.x) devices only; use model='virtio'");
	for (const xmlNode *ch = n->children; ch; ch = ch->next) {
		_cleanup_free_ char *autov = NULL, *addr = NULL;

		if (dx_skip(ch))
			continue;
		if (!dx_is(ch, "cid") || have_cid)
			return dx_unsupported_elem(x, "<vsock>", ch,
						   dx_is(ch, "address") ? "vmms assigns PCI addresses itself; remove <address>"
									: NULL);
		have_cid = true;
		r = dx_check_attrs(x, ch, "<cid>", cid_attrs);
		if (r < 0)
			return r;
		for (const xmlNode *gc = ch->children; gc; gc = gc->next)
			if (!dx_skip(gc))
				return dx_unsupported_elem(x, "<cid>", gc, NULL);
		autov = dx_attr(ch, "auto");
		addr = dx_attr(ch, "address");
		if (addr) {
			/* Hostile text: decimal only, then the range a guest CID may take
			 * (0-2 are reserved, 0xffffffff is VMADDR_CID_ANY). */
			r = dx_parse_u64(dx_trim(addr), &cid);
			if (r < 0 || cid < 3 || cid > 0xfffffffeULL)
				return dx_fail(x, -ERANGE,
					       "vsock: cid address '%.*s' is out of range; use 3 to 4294967294",
					       DOMXML_QUOTE_MAX, addr);
		} else if (dx_streq(autov, "no")) {
			return dx_fail(x, -EINVAL, "vsock: <cid auto='no'> needs address='N' (3 or more)");
		}
	}
	x->c->vsock.enabled = true;
	x->c->vsock.cid = (uint32_t)cid;
	x->obj = NULL;
	return 0;
}

static int dx_memballoon_elem(struct dx *x, const xmlNode *n)
{
	static const char *const attrs[] = { "model", NULL };
	_cleanup_free_ char *model = dx_attr(n, "model");
	int r = dx_check_attrs(x, n, "<memballoon>", attrs);

	if (r < 0)
		return r;
	if (!dx_streq(model, "none"))
		return dx_unsupported_value(x, "model", model ? model : "", "<memballoon>",
					    "ballooning is not supported; use model='none'");
	for (const xmlNode *ch = n->children; ch; ch = ch->next)
		if (!dx_skip(ch))
			return dx_unsupported_elem(x, "<devices><memballoon>", ch, NULL);
	return 0;
}

static int dx_devices_elem(struct dx *x, const xmlNode *n)
{
	int r = dx_check_attrs(x, n, "<devices>", NULL);

	if (r < 0)
		return r;
	for (const xmlNode *ch = n->children; ch; ch = ch->next) {
		if (dx_skip(ch))
			continue;
		if (dx_is(ch, "disk"))
			r = dx_disk_elem(x, ch);
		else if (dx_is(ch, "serial"))
			r = dx_serial_elem(x, ch);
		else if (dx_is(ch, "console"))
			r = dx_console_elem(x, ch);
		else if (dx_is(ch, "rng"))
			r = dx_rng_elem(x, ch);
		else if (dx_is(ch, "memballoon"))
			r = dx_memballoon_elem(x, ch);
		else if (dx_is(ch, "vsock"))
			r = dx_vsock_elem(x, ch);
		else
			r = dx_unsupported_elem(x, "<devices>", ch,
						dx_reason(dx_device_reasons, ARRAY_SIZE(dx_device_reasons), dx_name(ch)));
		x->obj = NULL; /* may point into the device handler's frame */
		if (r < 0)
			return r;
	}
	return 0;
}

/* Settles the serial-target console against serial port 0 once every device is seen. */
static int dx_resolve_chardevs(struct dx *x)
{
	if (!x->nr_serial_consoles)
		return 0;
	if (!x->nr_serials) {
		x->c->serial = x->serial_console;
		memset(&x->serial_console, 0, sizeof(x->serial_console));
		return 0;
	}
	if (!dx_chardev_equal(&x->c->serial, &x->serial_console))
		return dx_fail(x, -EOPNOTSUPP,
			       "console: a serial-target <console> differs from <serial>; make them the same or remove <console>");
	return 0;
}

static int dx_domain(struct dx *x, const xmlNode *root)
{
	static const char *const attrs[] = { "type", NULL };
	static const char *const once[] = { "name", "uuid", "title", "description", "metadata", "memory",
					    "currentMemory", "vcpu", "os", "features", "clock", "on_poweroff",
					    "on_reboot", "on_crash", "cpu", "devices", NULL };
	unsigned seen = 0;
	_cleanup_free_ char *type = dx_attr(root, "type");
	uint64_t mem;
	int r = dx_check_attrs(x, root, "<domain>", attrs);

	if (r < 0)
		return r;
	if (!dx_streq(type, "kvm"))
		return dx_unsupported_value(x, "type", type ? type : "", "<domain>", "only type='kvm' is supported");
	for (const xmlNode *ch = root->children; ch; ch = ch->next) {
		if (dx_skip(ch))
			continue;
		r = dx_once_of(x, "", ch, once, &seen);
		if (r < 0)
			return r;
		if (dx_is(ch, "name"))
			r = dx_name_elem(x, ch);
		else if (dx_is(ch, "uuid"))
			r = dx_uuid_elem(x, ch);
		else if (dx_is(ch, "title") || dx_is(ch, "description") || dx_is(ch, "metadata"))
			r = 0; /* annotations for people and management tools; no effect on the machine */
		else if (dx_is(ch, "memory")) {
			r = dx_parse_memory(x, ch, "memory", &mem);
			if (r >= 0) {
				x->c->memory = mem;
				x->has_memory = true;
			}
		} else if (dx_is(ch, "currentMemory")) {
			r = dx_parse_memory(x, ch, "currentMemory", &x->current_memory);
			x->has_current_memory = r >= 0;
		} else if (dx_is(ch, "vcpu"))
			r = dx_vcpu_elem(x, ch);
		else if (dx_is(ch, "os"))
			r = dx_os_elem(x, ch);
		else if (dx_is(ch, "features"))
			r = dx_features_elem(x, ch);
		else if (dx_is(ch, "clock"))
			r = dx_clock_elem(x, ch);
		else if (dx_is(ch, "on_poweroff") || dx_is(ch, "on_reboot") || dx_is(ch, "on_crash"))
			r = dx_lifecycle_elem(x, ch);
		else if (dx_is(ch, "cpu"))
			r = dx_cpu_elem(x, ch);
		else if (dx_is(ch, "devices"))
			r = dx_devices_elem(x, ch);
		else
			r = dx_unsupported_elem(x, "", ch,
						dx_reason(dx_domain_reasons, ARRAY_SIZE(dx_domain_reasons), dx_name(ch)));
		if (r < 0)
			return r;
	}
	if (!x->c->name[0])
		return dx_fail(x, -EINVAL, "<name> is missing; add e.g. <name>vm1</name>");
	if (!x->has_memory)
		return dx_fail(x, -EINVAL, "<memory> is missing; add e.g. <memory unit='MiB'>512</memory>");
	if (x->has_current_memory && x->current_memory != x->c->memory)
		return dx_fail(x, -EOPNOTSUPP,
			       "<currentMemory> (%" PRIu64 " bytes) differs from <memory> (%" PRIu64
			       " bytes): ballooning is not supported; make them equal or remove <currentMemory>",
			       x->current_memory, x->c->memory);
	if (!x->has_kernel)
		return dx_fail(x, -EOPNOTSUPP,
			       "<os><kernel> is missing: vmms has no firmware yet and boots a kernel directly; add <kernel>/path/to/vmlinuz</kernel>");
	if (x->c->initrd && !x->c->kernel)
		return dx_fail(x, -EINVAL, "<os><initrd> needs <os><kernel>");
	return dx_resolve_chardevs(x);
}

/* ---- libxml2: parsing and schema --------------------------------------------------------- */

struct dx_xmlerr {
	bool set;
	bool dtd;       /* a <!DOCTYPE> was seen and the parse stopped */
	int line;
	char node[64];
	char msg[256];
};

/* Keeps the first error only; libxml2 reports several for one mistake, the first says most. */
static void dx_collect(struct dx_xmlerr *e, DOMXML_CONST_ERROR xmlError *err)
{
	const xmlNode *node;

	if (!err || err->level == XML_ERR_WARNING)
		return;
	/* libxml2's RelaxNG reports "Extra element X in interleave" without a position and
	 * names the enclosing element in a later error: take the position from that one. */
	node = err->node;
	if (e->line <= 0 && !e->node[0]) {
		if (node && node->type == XML_ELEMENT_NODE && node->name) {
			snprintf(e->node, sizeof(e->node), "%s", (const char *)node->name);
			e->line = err->line > 0 ? err->line : (int)xmlGetLineNo(node);
		} else if (!e->set) {
			e->line = err->line;
		}
	}
	if (e->set)
		return;
	e->set = true;
	snprintf(e->msg, sizeof(e->msg), "%s", err->message ? err->message : "unknown error");
	/* Messages end in '\n'; the caller wants one line. */
	for (char *p = e->msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	{
		char *t = dx_trim(e->msg);
		memmove(e->msg, t, strlen(t) + 1);
	}
}

static void dx_relaxng_error(void *data, DOMXML_CONST_ERROR xmlError *err)
{
	dx_collect(data, err);
}

static void dx_parser_error(void *data, DOMXML_CONST_ERROR xmlError *err)
{
	xmlParserCtxt *ctxt = data;

	dx_collect(ctxt->_private, err);
}

/* SAX internalSubset hook: any <!DOCTYPE> ends the parse before its entity declarations are
 * read. Domain XML never needs a DTD, and refusing it removes entity expansion (billion laughs)
 * and external entities (XXE) outright. */
static void dx_refuse_dtd(void *data, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
	xmlParserCtxt *ctxt = data;
	struct dx_xmlerr *e = ctxt->_private;

	e->dtd = true;
	xmlStopParser(ctxt);
}

struct dx_schema_cache {
	bool compiled;          /* compile attempted; schema or error/msg hold the outcome */
	bool released;          /* domxml_release() ran: no more parsing in this process */
	xmlRelaxNG *schema;
	int error;
	char msg[256];
};

/* The default schema is compiled once per process, on first use: compiling domain.rng costs
 * milliseconds (and about 4 MiB of heap) and every vmmsd request validates against it. This
 * is lib/'s one piece of process-wide mutable state; the lock makes its initialisation
 * race-free and it is read-only afterwards (validation uses a fresh context per call) until
 * domxml_release() frees it. libxml2 itself is initialised once, separately: a parse that
 * validates nothing (DOMXML_NO_SCHEMA) must not pay for the schema. */
static pthread_once_t dx_init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t dx_schema_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dx_schema_cache dx_schema_default;

static void dx_init(void)
{
	xmlInitParser();
}

static int dx_schema_compile(const char *path, xmlRelaxNG **ret, char *msg, size_t msglen)
{
	struct dx_xmlerr e = { 0 };
	xmlRelaxNGParserCtxt *pc;
	xmlRelaxNG *s;

	if (access(path, R_OK) < 0) {
		int r = -errno;

		snprintf(msg, msglen, "cannot read libvirt's domain schema %s: %s; install libvirt's schemas",
			 path, strerror(-r));
		return r;
	}
	pc = xmlRelaxNGNewParserCtxt(path);
	if (!pc) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	xmlRelaxNGSetParserStructuredErrors(pc, dx_relaxng_error, &e);
	s = xmlRelaxNGParse(pc);
	xmlRelaxNGFreeParserCtxt(pc);
	if (!s) {
		snprintf(msg, msglen, "cannot compile domain schema %.80s: %.120s", path,
			 e.set ? e.msg : "unknown error");
		return -EINVAL;
	}
	*ret = s;
	return 0;
}

/* The cached default schema, compiled on first use; on failure -errno and x's message. */
static int dx_schema_get(struct dx *x, xmlRelaxNG **ret)
{
	int r;

	pthread_mutex_lock(&dx_schema_lock);
	if (dx_schema_default.released) {
		r = dx_fail(x, -ESHUTDOWN, "domain definitions can no longer be parsed in this process");
		goto out;
	}
	if (!dx_schema_default.compiled) {
		dx_schema_default.compiled = true;
		dx_schema_default.error = dx_schema_compile(DOMXML_DEFAULT_SCHEMA, &dx_schema_default.schema,
							    dx_schema_default.msg, sizeof(dx_schema_default.msg));
	}
	r = dx_schema_default.error;
	if (r < 0)
		dx_fail(x, r, "%s", dx_schema_default.msg);
	else
		*ret = dx_schema_default.schema;
out:
	pthread_mutex_unlock(&dx_schema_lock);
	return r;
}

/* 0, or -ESHUTDOWN with a message once domxml_release() has run. */
static int dx_check_released(char *err, size_t errlen)
{
	bool released;

	pthread_mutex_lock(&dx_schema_lock);
	released = dx_schema_default.released;
	pthread_mutex_unlock(&dx_schema_lock);
	if (released)
		return dx_errf(err, errlen, -ESHUTDOWN, "domain definitions can no longer be parsed in this process");
	return 0;
}

void domxml_release(void)
{
	pthread_mutex_lock(&dx_schema_lock);
	if (dx_schema_default.released) {
		pthread_mutex_unlock(&dx_schema_lock);
		return;
	}
	dx_schema_default.released = true;
	xmlRelaxNGFree(dx_schema_default.schema);
	dx_schema_default.schema = NULL;
	pthread_mutex_unlock(&dx_schema_lock);
	/* libxml2's global state (dictionaries' lock, encoding handlers, error state): nothing
	 * of it is used again, the caller promised. */
	xmlCleanupParser();
}

static int dx_validate(struct dx *x, xmlDoc *doc, const char *schema_path)
{
	xmlRelaxNG *schema = NULL, *own = NULL;
	xmlRelaxNGValidCtxt *vc;
	struct dx_xmlerr e = { 0 };
	int r;

	if (!schema_path || strcmp(schema_path, DOMXML_DEFAULT_SCHEMA) == 0) {
		r = dx_schema_get(x, &schema);
		if (r < 0)
			return r;
	} else {
		char msg[256];

		r = dx_schema_compile(schema_path, &own, msg, sizeof(msg));
		if (r < 0)
			return dx_fail(x, r, "%s", msg);
		schema = own;
	}
	vc = xmlRelaxNGNewValidCtxt(schema);
	if (!vc) {
		xmlRelaxNGFree(own);
		return dx_fail(x, -ENOMEM, "out of memory");
	}
	xmlRelaxNGSetValidStructuredErrors(vc, dx_relaxng_error, &e);
	r = xmlRelaxNGValidateDoc(vc, doc);
	xmlRelaxNGFreeValidCtxt(vc);
	xmlRelaxNGFree(own);
	if (r == 0)
		return 0;
	if (r < 0)
		return dx_fail(x, -ENOMEM, "domain schema validation failed internally");
	x->schema_mismatch = true;
	if (!e.set)
		return dx_fail(x, -EINVAL, "definition does not match libvirt's domain schema");
	if (e.line > 0 && e.node[0])
		return dx_fail(x, -EINVAL, "definition does not match libvirt's domain schema: line %d: element %s: %s",
			       e.line, e.node, e.msg);
	if (e.line > 0)
		return dx_fail(x, -EINVAL, "definition does not match libvirt's domain schema: line %d: %s",
			       e.line, e.msg);
	return dx_fail(x, -EINVAL, "definition does not match libvirt's domain schema: %s", e.msg);
}

static int dx_map(struct dx *x, const xmlNode *root)
{
	x->c = calloc(1, sizeof(*x->c));
	if (!x->c)
		return dx_fail(x, -ENOMEM, "out of memory");
	x->c->vcpus = 1;                       /* libvirt's defaults */
	x->c->on_poweroff = VM_ACTION_DESTROY;
	x->c->on_reboot = VM_ACTION_RESTART;
	x->c->on_crash = VM_ACTION_DESTROY;
	return dx_domain(x, root);
}

/* libxml2's RelaxNG messages often only say "Extra element kernel in interleave". The mapper
 * checks every value itself (it trusts nothing the schema checked), so run it on the invalid
 * document too and append what it finds: "...; kernel path 'vmlinuz' is not absolute ...". */
static void dx_schema_hint(struct dx *x, const xmlNode *root)
{
	char hint[256];
	struct dx h = { .err = hint, .errlen = sizeof(hint) };
	size_t len = strlen(x->err ? x->err : "");

	hint[0] = '\0';
	if (dx_map(&h, root) < 0 && hint[0] && x->err && len + 2 < x->errlen)
		snprintf(x->err + len, x->errlen - len, "; %s", hint);
	dx_chardev_clear(&h.serial_console);
	vm_config_free(h.c);
}

void vm_config_free(struct vm_config *c)
{
	if (!c)
		return;
	free(c->kernel);
	free(c->initrd);
	free(c->cmdline);
	for (unsigned i = 0; i < c->nr_disks && i < VM_MAX_DISKS; i++) {
		free(c->disks[i].path);
		free(c->disks[i].target);
		free(c->disks[i].serial);
	}
	free(c->serial.path);
	free(c->console.path);
	free(c);
}

/* The one path every entry point takes: size checks, a parse that refuses DTDs, then the
 * schema (when validate) and the mapping (when ret). */
static int dx_run(const char *xml, size_t len, const char *schema, bool validate, struct vm_config **ret,
		  char *err, size_t errlen)
{
	struct dx x = { .err = err, .errlen = errlen };
	struct dx_xmlerr e = { 0 };
	xmlParserCtxt *ctxt;
	xmlDoc *doc;
	const xmlNode *root;
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (!xml)
		return dx_fail(&x, -EINVAL, "no definition given");
	if (len > DOMXML_MAX_SIZE)
		return dx_fail(&x, -EFBIG, "definition is %zu bytes; at most %u are accepted", len, DOMXML_MAX_SIZE);
	if (len == 0)
		return dx_fail(&x, -EINVAL, "definition is empty");
	r = dx_check_released(err, errlen);
	if (r < 0)
		return r;

	(void)pthread_once(&dx_init_once, dx_init);
	ctxt = xmlNewParserCtxt();
	if (!ctxt)
		return dx_fail(&x, -ENOMEM, "out of memory");
	ctxt->_private = &e;
	ctxt->sax->serror = dx_parser_error;
	ctxt->sax->internalSubset = dx_refuse_dtd;
	/* Hostile input: NONET and neither NOENT nor DTDLOAD, so no entity is substituted and
	 * nothing outside the buffer is fetched; without HUGE libxml2 keeps its size and depth
	 * limits. */
	doc = xmlCtxtReadMemory(ctxt, xml, (int)len, "domain.xml", NULL, XML_PARSE_NONET);
	if (e.dtd) {
		r = dx_fail(&x, -EINVAL, "definition has a <!DOCTYPE>: DTDs and entities are not accepted; remove it");
		goto out;
	}
	if (!doc || !ctxt->wellFormed) {
		if (e.set)
			r = dx_fail(&x, -EINVAL, "definition is not well-formed XML: line %d: %s", e.line, e.msg);
		else
			r = dx_fail(&x, -EINVAL, "definition is not well-formed XML");
		goto out;
	}
	root = xmlDocGetRootElement(doc);
	if (!root || !dx_is(root, "domain")) {
		r = dx_fail(&x, -EINVAL, "definition is not a domain: the root element is <%.*s>, expected <domain>",
			    DOMXML_QUOTE_MAX, root && root->name ? dx_name(root) : "");
		goto out;
	}
	if (validate) {
		r = dx_validate(&x, doc, schema);
		if (r < 0) {
			if (x.schema_mismatch)
				dx_schema_hint(&x, root);
			goto out;
		}
	}
	r = 0;
	if (!ret)
		goto out;
	r = dx_map(&x, root);
	if (r < 0)
		goto out;
	*ret = x.c;
	x.c = NULL;
	r = 0;
out:
	dx_chardev_clear(&x.serial_console);
	vm_config_free(x.c);
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctxt);
	return r;
}

int domxml_parse_opts(const char *xml, size_t len, const char *schema, unsigned flags, struct vm_config **ret,
		      char *err, size_t errlen)
{
	if (!ret)
		return dx_errf(err, errlen, -EINVAL, "no definition given");
	if (flags & ~DOMXML_NO_SCHEMA)
		return dx_errf(err, errlen, -EINVAL, "unknown parse flags %#x", flags);
	return dx_run(xml, len, schema, !(flags & DOMXML_NO_SCHEMA), ret, err, errlen);
}

int domxml_parse(const char *xml, size_t len, const char *schema, struct vm_config **ret, char *err,
		 size_t errlen)
{
	return domxml_parse_opts(xml, len, schema, 0, ret, err, errlen);
}

int domxml_validate(const char *xml, size_t len, const char *schema, char *err, size_t errlen)
{
	return dx_run(xml, len, schema, true, NULL, err, errlen);
}

int domxml_parse_file_opts(const char *path, const char *schema, unsigned flags, struct vm_config **ret,
			   char **ret_xml, size_t *ret_len, char *err, size_t errlen)
{
	_cleanup_free_ void *buf = NULL;
	size_t len = 0;
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (!path)
		return dx_errf(err, errlen, -EINVAL, "no definition file given");
	r = read_file_max(path, DOMXML_MAX_SIZE, &buf, &len);
	if (r == -EFBIG)
		return dx_errf(err, errlen, r, "definition %s is larger than %u bytes; it is refused", path,
			       DOMXML_MAX_SIZE);
	if (r == -EINVAL)
		return dx_errf(err, errlen, r, "definition %s is not a regular file", path);
	if (r < 0)
		return dx_errf(err, errlen, r, "cannot read definition %s: %s", path, strerror(-r));
	r = domxml_parse_opts(buf, len, schema, flags, ret, err, errlen);
	if (r < 0 && err && errlen) {
		/* Name the file: prepend "PATH: " to the one-line message. */
		size_t plen = strlen(path) + 2, mlen = strlen(err);
		if (plen < errlen) {
			if (plen + mlen >= errlen)
				mlen = errlen - plen - 1;
			memmove(err + plen, err, mlen);
			err[plen + mlen] = '\0';
			memcpy(err, path, plen - 2);
			memcpy(err + plen - 2, ": ", 2);
		}
	}
	if (r == 0 && ret_xml) {
		char *text = realloc(buf, len + 1);

		if (!text) {
			vm_config_free(*ret);
			*ret = NULL;
			return dx_errf(err, errlen, -ENOMEM, "out of memory");
		}
		buf = NULL;
		text[len] = '\0';
		*ret_xml = text;
		if (ret_len)
			*ret_len = len;
	}
	return r;
}

int domxml_parse_file(const char *path, const char *schema, struct vm_config **ret, char *err, size_t errlen)
{
	return domxml_parse_file_opts(path, schema, 0, ret, NULL, NULL, err, errlen);
}

/* ---- dump (golden tests, debugging) ------------------------------------------------------ */

static const char *dx_action_name(enum vm_action a)
{
	switch (a) {
	case VM_ACTION_DESTROY: return "destroy";
	case VM_ACTION_RESTART: return "restart";
	case VM_ACTION_PRESERVE: return "preserve";
	}
	return "?";
}

static void dx_dump_chardev(FILE *f, const char *what, const struct vm_chardev *cd)
{
	static const char *const kinds[] = {
		[VM_CHARDEV_NONE] = "none", [VM_CHARDEV_STDIO] = "stdio", [VM_CHARDEV_FILE] = "file",
		[VM_CHARDEV_UNIX] = "unix", [VM_CHARDEV_NULL] = "null",
	};
	const char *k = (unsigned)cd->kind < ARRAY_SIZE(kinds) ? kinds[cd->kind] : "?";

	fprintf(f, "%s: %s", what, k);
	if (cd->kind == VM_CHARDEV_FILE)
		fprintf(f, " path=%s append=%s", cd->path ? cd->path : "-", cd->append ? "on" : "off");
	else if (cd->kind == VM_CHARDEV_UNIX)
		fprintf(f, " path=%s mode=%s", cd->path ? cd->path : "-", cd->listen ? "bind" : "connect");
	fputc('\n', f);
}

void vm_config_dump(const struct vm_config *c, FILE *f)
{
	static const char *const caches[] = {
		[VM_DISK_CACHE_DEFAULT] = "default", [VM_DISK_CACHE_WRITEBACK] = "writeback",
		[VM_DISK_CACHE_NONE] = "none", [VM_DISK_CACHE_WRITETHROUGH] = "writethrough",
		[VM_DISK_CACHE_DIRECTSYNC] = "directsync", [VM_DISK_CACHE_UNSAFE] = "unsafe",
	};
	static const char *const ios[] = {
		[VM_DISK_IO_DEFAULT] = "default", [VM_DISK_IO_THREADS] = "threads",
		[VM_DISK_IO_NATIVE] = "native", [VM_DISK_IO_URING] = "io_uring",
	};

	fprintf(f, "name: %s\n", c->name);
	if (c->has_uuid) {
		const uint8_t *u = c->uuid;
		fprintf(f, "uuid: %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\n",
			u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
			u[14], u[15]);
	} else {
		fprintf(f, "uuid: -\n");
	}
	fprintf(f, "memory: %" PRIu64 "\n", c->memory);
	fprintf(f, "vcpus: %u\n", c->vcpus);
	fprintf(f, "kernel: %s\n", c->kernel ? c->kernel : "-");
	fprintf(f, "initrd: %s\n", c->initrd ? c->initrd : "-");
	fprintf(f, "cmdline: %s\n", c->cmdline ? c->cmdline : "-");
	fprintf(f, "on_poweroff: %s\n", dx_action_name(c->on_poweroff));
	fprintf(f, "on_reboot: %s\n", dx_action_name(c->on_reboot));
	fprintf(f, "on_crash: %s\n", dx_action_name(c->on_crash));
	fprintf(f, "disks: %u\n", c->nr_disks);
	for (unsigned i = 0; i < c->nr_disks && i < VM_MAX_DISKS; i++) {
		const struct vm_disk *d = &c->disks[i];

		fprintf(f, "disk %u: target=%s path=%s readonly=%s discard=%s cache=%s io=%s serial=%s\n", i,
			d->target ? d->target : "-", d->path ? d->path : "-", d->readonly ? "yes" : "no",
			d->discard ? "unmap" : "ignore",
			(unsigned)d->cache < ARRAY_SIZE(caches) ? caches[d->cache] : "?",
			(unsigned)d->io < ARRAY_SIZE(ios) ? ios[d->io] : "?", d->serial ? d->serial : "-");
	}
	dx_dump_chardev(f, "serial", &c->serial);
	dx_dump_chardev(f, "console", &c->console);
	fprintf(f, "rng: %s\n", c->rng ? "virtio" : "none");
	if (c->vsock.enabled)
		fprintf(f, "vsock: virtio cid=%" PRIu32 "\n", c->vsock.cid);
	else
		fprintf(f, "vsock: none\n");
}
