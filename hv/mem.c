// SPDX-License-Identifier: GPL-2.0-only
/* Guest RAM over a memfd, and the one checked translation from guest-physical to host. */
#include "hv/mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/util.h"

static int layout_check(const struct gmem_layout *layout, unsigned nr, uint64_t *ret_total)
{
	uint64_t total = 0, end = 0;

	if (nr == 0 || nr > GMEM_MAX_REGIONS)
		return -EINVAL;
	for (unsigned i = 0; i < nr; i++) {
		if (!layout[i].size || !IS_ALIGNED(layout[i].gpa, 4096) || !IS_ALIGNED(layout[i].size, 4096))
			return -EINVAL;
		if (!range_within(layout[i].gpa, layout[i].size, UINT64_MAX))
			return -EINVAL;
		if (i > 0 && layout[i].gpa < end)
			return -EINVAL;
		end = layout[i].gpa + layout[i].size;
		if (total + layout[i].size < total)
			return -EINVAL;
		total += layout[i].size;
	}
	*ret_total = total;
	return 0;
}

static void regions_fill(struct gmem *m, const struct gmem_layout *layout, unsigned nr)
{
	uint64_t off = 0;

	m->nr = nr;
	for (unsigned i = 0; i < nr; i++) {
		m->r[i] = (struct gmem_region){
			.gpa = layout[i].gpa,
			.size = layout[i].size,
			.fd_offset = off,
			.hva = m->base + off,
		};
		off += layout[i].size;
	}
}

int gmem_init(struct gmem *m, const struct gmem_layout *layout, unsigned nr, bool hugetlb)
{
	uint64_t total;
	void *p;
	int fd, r;

	*m = (struct gmem){ .fd = -1 };
	r = layout_check(layout, nr, &total);
	if (r < 0)
		return r;
	fd = memfd_create("vmms-guest-ram", MFD_CLOEXEC | (hugetlb ? MFD_HUGETLB : 0));
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)total) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		close(fd);
		return r;
	}
	(void)madvise(p, total, MADV_DONTDUMP);
	m->fd = fd;
	m->base = p;
	m->total = total;
	regions_fill(m, layout, nr);
	return 0;
}

int gmem_init_anon(struct gmem *m, const struct gmem_layout *layout, unsigned nr)
{
	uint64_t total;
	void *p;
	int r;

	*m = (struct gmem){ .fd = -1 };
	r = layout_check(layout, nr, &total);
	if (r < 0)
		return r;
	p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	m->base = p;
	m->total = total;
	regions_fill(m, layout, nr);
	return 0;
}

void gmem_destroy(struct gmem *m)
{
	if (!m)
		return;
	if (m->base)
		munmap(m->base, m->total);
	if (m->fd >= 0)
		close(m->fd);
	*m = (struct gmem){ .fd = -1 };
}

void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		return NULL;
	for (unsigned i = 0; i < m->nr; i++) {
		const struct gmem_region *r = &m->r[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return range_within(gpa - r->gpa, len, r->size) ? r->hva + (gpa - r->gpa) : NULL;
	}
	return NULL;
}

int gmem_read(const struct gmem *m, uint64_t gpa, void *buf, uint64_t len)
{
	void *p = gmem_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int gmem_write(const struct gmem *m, uint64_t gpa, const void *buf, uint64_t len)
{
	void *p = gmem_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}
