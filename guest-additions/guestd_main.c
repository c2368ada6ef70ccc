// SPDX-License-Identifier: GPL-2.0-only
/* vmms-guestd entry point: options, waiting for the vsock transport, then the loop. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest-additions/guestd.h"
#include "guest-additions/guestd_int.h"
#include "lib/log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmms-guestd [--listen vsock:PORT|unix:PATH] [--kvp-dir DIR] [--verbose]\n"
		"The vmms guest additions agent. Default: --listen vsock:%u --kvp-dir /run/vmms/kvp\n",
		VMMS_GUESTD_PORT);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "kvp-dir", required_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct guestd_config cfg = { 0 };
	char listen_default[32];
	const char *listen_spec = listen_default;
	struct guestd *d;
	int c, e;

	snprintf(listen_default, sizeof(listen_default), "vsock:%u", VMMS_GUESTD_PORT);
	log_set_prefix("vmms-guestd");
	while ((c = getopt_long(argc, argv, "l:k:vVh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'k':
			cfg.kvp_dir = optarg;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'V':
			printf("vmms-guestd %s (protocol %d)\n", GUESTD_VERSION, GUESTPROTO_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	e = guestd_new(&cfg, &d);
	if (e < 0)
		return log_error_errno(e, "cannot start"), 1;
	/* The vsock transport may come later (a module loaded after us, a device hot-added):
	 * keep trying, saying so once. */
	for (unsigned tries = 0;; tries++) {
		e = guestd_listen(d, listen_spec);
		if (e == 0)
			break;
		if (e == -EINVAL || (strncmp(listen_spec, "unix:", 5) == 0)) {
			log_error_errno(e, "cannot listen on %s", listen_spec);
			guestd_free(d);
			return 1;
		}
		if (tries == 0)
			log_warning_errno(e, "cannot listen on %s yet (no virtio-vsock device?); retrying",
					  listen_spec);
		sleep(2);
	}
	log_info("listening on %s", listen_spec);
	e = guestd_run(d);
	guestd_free(d);
	if (e < 0)
		return log_error_errno(e, "stopped"), 1;
	return 0;
}
