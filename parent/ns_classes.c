// SPDX-License-Identifier: GPL-2.0-only
/* The class table of root/virtualization/v2: a new class is a new file plus one line here. */
#include "parent/ns.h"

#include "lib/util.h"

extern const struct ns_class ns_class_computer_system;
extern const struct ns_class ns_class_host_computer_system;
extern const struct ns_class ns_class_vsms;
extern const struct ns_class ns_class_vssd;
extern const struct ns_class ns_class_processor_sd;
extern const struct ns_class ns_class_memory_sd;
extern const struct ns_class ns_class_storage_sd;
extern const struct ns_class ns_class_serial_port;
extern const struct ns_class ns_class_concrete_job;
extern const struct ns_class ns_class_heartbeat, ns_class_shutdown, ns_class_kvp, ns_class_guest_service;

const struct ns_class *const ns_classes[] = {
	&ns_class_computer_system,
	&ns_class_host_computer_system,
	&ns_class_vsms,
	&ns_class_vssd,
	&ns_class_processor_sd,
	&ns_class_memory_sd,
	&ns_class_storage_sd,
	&ns_class_serial_port,
	&ns_class_concrete_job,
	&ns_class_heartbeat, &ns_class_shutdown, &ns_class_kvp, &ns_class_guest_service,
};

const size_t ns_nclasses = ARRAY_SIZE(ns_classes);
