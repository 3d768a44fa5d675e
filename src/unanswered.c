/*
 * The unanswered log. (Work in progress.)
 */
#include "unanswered.h"

#include <stdio.h>

int
unanswered_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "faqbot unanswered: not available in this build yet\n");
	return 1;
}
