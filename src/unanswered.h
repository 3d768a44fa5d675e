/*
 * The unanswered log: questions addressed to the bot that got no answer,
 * kept (redacted) in the state directory so moderators see what to write
 * next; `faqbot unanswered` groups and ranks them.
 */
#ifndef FAQBOT_UNANSWERED_H
#define FAQBOT_UNANSWERED_H

/* `faqbot unanswered`: returns the exit status. */
int unanswered_main(int argc, char **argv);

#endif
