# SPDX-License-Identifier: GPL-2.0-only
# vmms build: `make` builds the programs, `make check` runs every test tier,
# `make guest-image` builds the bundled guest, `make install DESTDIR=... PREFIX=...`.
# Sources are found by folder: a new file needs no edit here. Files named *_main.c are
# program entry points; every other .c in a folder goes into that folder's archive.

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= gcc
BUILD ?= build
PKGS := libxml-2.0 liburing jansson libcap-ng libseccomp
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I. $(WARN) -fno-strict-aliasing -pthread $(PKG_CFLAGS) -MMD -MP
CFLAGS ?= -O2 -g
SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS := $(PKG_LIBS) -pthread

src_of = $(filter-out %_main.c,$(wildcard $(1)/*.c $(1)/*/*.c))
LIB_SRCS := $(call src_of,lib)
HV_SRCS := $(call src_of,hv)
DEV_SRCS := $(call src_of,devices)
WORKER_SRCS := $(call src_of,worker)
PARENT_SRCS := $(call src_of,parent)

# Archives in link order (dependents first).
WORKER_ARCHIVES = worker devices hv lib
PARENT_ARCHIVES = parent lib

PROGRAMS := $(BUILD)/vmms-worker
ifneq ($(wildcard parent/vmmsd_main.c),)
PROGRAMS += $(BUILD)/vmmsd
endif
ifneq ($(wildcard parent/virtctl_main.c),)
PROGRAMS += $(BUILD)/virtctl
endif
ifneq ($(wildcard guest-additions/guestd_main.c),)
PROGRAMS += $(BUILD)/vmms-guestd
endif

.PHONY: all check unit-tests test-guests guest-image install clean bench demo
all: $(PROGRAMS)

# --- objects, normal and sanitized -------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_CFLAGS) -c $< -o $@

objs = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(2))
define archive_rule
$(BUILD)/lib$(1).a: $(call objs,obj,$(2))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
$(BUILD)/san/lib$(1).a: $(call objs,san,$(2))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(eval $(call archive_rule,lib,$(LIB_SRCS)))
$(eval $(call archive_rule,hv,$(HV_SRCS)))
$(eval $(call archive_rule,devices,$(DEV_SRCS)))
$(eval $(call archive_rule,worker,$(WORKER_SRCS)))
$(eval $(call archive_rule,parent,$(PARENT_SRCS)))
$(eval $(call archive_rule,guestd,$(filter-out %_main.c,$(wildcard guest-additions/*.c))))

archives = $(foreach a,$(2),$(BUILD)/$(1)lib$(a).a)

# The worker is linked statically: under vmmsd its root is an empty tmpfs (no loader, no
# library, no file at all), and a static program starts faster and maps fewer pages (no ld.so
# relocation, no libstdc++/ICU shared objects). The library order is pkg-config --static's;
# libxml2's ICU part is C++, hence -lstdc++. The linker warns that ICU's plugin loader
# (dlopen) and libxml2's HTTP client (getaddrinfo) need glibc's shared objects: neither is
# ever reached (no ICU plugins; domxml parses with XML_PARSE_NONET). WORKER_STATIC=0 links
# it dynamically, for the foreground only: vmmsd refuses a dynamic worker.
WORKER_STATIC ?= 1
WORKER_STATIC_LIBS := $(shell pkg-config --static --libs $(PKGS) 2>/dev/null) -lstdc++ -pthread
ifeq ($(WORKER_STATIC),1)
WORKER_LDFLAGS := -static -Wl,--gc-sections
WORKER_LDLIBS := $(WORKER_STATIC_LIBS)
else
WORKER_LDFLAGS :=
WORKER_LDLIBS := $(LDLIBS)
endif
$(BUILD)/vmms-worker: $(BUILD)/obj/worker/worker_main.o $(call archives,,$(WORKER_ARCHIVES))
	$(CC) $(CFLAGS) $(WORKER_LDFLAGS) -o $@ $^ $(WORKER_LDLIBS)
$(BUILD)/vmmsd: $(BUILD)/obj/parent/vmmsd_main.o $(call archives,,$(PARENT_ARCHIVES))
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/virtctl: $(BUILD)/obj/parent/virtctl_main.o $(call archives,,$(PARENT_ARCHIVES))
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The guest agent is static so it runs in any guest, the bundled busybox initramfs included.
# It takes only the protocol part of lib/ (domxml would drag libxml2 into a static link).
GUESTD_SRCS := $(wildcard guest-additions/*.c)
GUESTD_LIB_SRCS := lib/guestproto.c lib/jsonframe.c lib/log.c lib/util.c
$(BUILD)/vmms-guestd: $(GUESTD_SRCS) $(GUESTD_LIB_SRCS) $(wildcard guest-additions/*.h) $(GUESTD_LIB_SRCS:.c=.h)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(BASE_CFLAGS)) $(CFLAGS) -static -o $@ $(GUESTD_SRCS) $(GUESTD_LIB_SRCS) -pthread $(shell pkg-config --libs jansson)

# --- unit tests (cmocka, ASan/UBSan, no KVM) ----------------------------------------------
# Each tests/unit/**/test_*.c is one program linked against every sanitized archive (only
# the objects it needs are pulled in) and the helpers in tests/unit/support/.
UNIT_SRCS := $(wildcard tests/unit/*/test_*.c tests/unit/*/*/test_*.c)
UNIT_SUPPORT := $(call objs,san,$(wildcard tests/unit/support/*.c))
UNIT_BINS := $(patsubst %.c,$(BUILD)/san/%,$(UNIT_SRCS))
UNIT_ARCHIVES := $(foreach a,parent guestd worker devices hv lib,$(BUILD)/san/lib$(a).a)

$(BUILD)/san/tests/unit/%: $(BUILD)/san/tests/unit/%.o $(UNIT_SUPPORT) $(UNIT_ARCHIVES)
	$(CC) $(SAN_CFLAGS) -o $@ $< $(UNIT_SUPPORT) $(UNIT_ARCHIVES) $(LDLIBS) -lcmocka

unit-tests: $(UNIT_BINS)
	@tests/run-unit $(UNIT_BINS)

# --- freestanding test guests ---------------------------------------------------------------
GUEST_SRCS := $(wildcard tests/guests/*.c)
GUEST_TESTS := $(filter-out tests/guests/lib%,$(GUEST_SRCS))
GUEST_LIB := $(filter tests/guests/lib%,$(GUEST_SRCS)) $(wildcard tests/guests/*.S)
GUEST_CFLAGS := -std=gnu11 -I. -Wall -Wextra -Werror -ffreestanding -nostdlib -fno-pic -fno-pie -no-pie \
	-mno-red-zone -mno-sse -mno-mmx -mno-avx -fno-stack-protector -fno-asynchronous-unwind-tables -O2 -g -static
GUEST_ELFS := $(patsubst tests/guests/%.c,$(BUILD)/guests/%.elf,$(GUEST_TESTS))
$(BUILD)/guests/%.elf: tests/guests/%.c $(GUEST_LIB) $(wildcard tests/guests/*.h tests/guests/*.ld)
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -T tests/guests/guest.ld -o $@ $< $(GUEST_LIB)
test-guests: $(GUEST_ELFS)

# --- all tiers ----------------------------------------------------------------------------
# Test guests run on /dev/kvm directly (ring 3 runs natively even under PVM); without a
# /dev/kvm they run inside the nested KVM host.
check: all unit-tests test-guests guest-image
	@if [ -c /dev/kvm ]; then tests/run-guests $(BUILD); \
	else tests/kvmhost/run -- tests/run-guests $(BUILD); fi
	@tests/run-e2e $(BUILD)

# The image carries the agent: build it first (the image script takes $(BUILD)/vmms-guestd).
guest-image: $(filter $(BUILD)/vmms-guestd,$(PROGRAMS))
	@guest-additions/image/build $(BUILD)/guest
	@guest-additions/image/build --stock-kernel $(BUILD)/guest

# The main job: the bundled guest in a VM, its console on this terminal.
demo: all guest-image
	@guest-additions/image/run-demo $(BUILD)

bench: all test-guests guest-image
	@tests/bench/run $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/libexec/vmms
	install -m 0755 $(BUILD)/vmms-worker $(DESTDIR)$(PREFIX)/libexec/vmms/vmms-worker
	ln -sf ../libexec/vmms/vmms-worker $(DESTDIR)$(PREFIX)/bin/vmms-worker
	$(if $(wildcard $(BUILD)/vmmsd),install -m 0755 $(BUILD)/vmmsd $(DESTDIR)$(PREFIX)/sbin/vmmsd)
	$(if $(wildcard $(BUILD)/virtctl),install -m 0755 $(BUILD)/virtctl $(DESTDIR)$(PREFIX)/bin/virtctl)
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/man/man7 $(DESTDIR)$(PREFIX)/share/man/man8
	for m in $(wildcard man/*.[1-8]); do \
		install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$${m##*.}/; done
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/sysusers.d \
		$(DESTDIR)$(PREFIX)/lib/tmpfiles.d
	sed 's|/usr/sbin/vmmsd|$(PREFIX)/sbin/vmmsd|' parent/systemd/vmmsd.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/vmmsd.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/vmmsd.service
	install -m 0644 parent/systemd/vmmsd.socket $(DESTDIR)$(PREFIX)/lib/systemd/system/vmmsd.socket
	install -m 0644 parent/systemd/sysusers.d/vmms.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/vmms.conf
	install -m 0644 parent/systemd/tmpfiles.d/vmms.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/vmms.conf

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
