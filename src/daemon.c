/*
 * The daemon: see daemon.h. (Work in progress: the event loop lands with
 * the Matrix transport.)
 */
#include "daemon.h"

#include <stdio.h>

int
daemon_main(const char *config, int check)
{
	(void)config;
	(void)check;
	fprintf(stderr, "faqbot run: not available in this build yet\n");
	return 1;
}
