/*
 * The trainer process: the bot does not train its model itself. It starts
 * faqbot-train (src/train_main.c), which loads the same files, trains with
 * liblinear and writes the model to its standard output (learn_save's
 * format); the bot reads it back, checks it was made from the same files
 * (the input hash), and swaps it in. So the bot carries neither liblinear
 * nor the memory training takes, a crash in training cannot take it down,
 * and while a reload's model is being trained the old set keeps answering.
 *
 * The trainer is found beside the running faqbot (/proc/self/exe), or at
 * $FAQBOT_TRAINER.
 */
#ifndef FAQBOT_TRAINER_H
#define FAQBOT_TRAINER_H

#include <stdint.h>

#include "util.h"

struct kb_source;
struct trainer_job;

/*
 * Starts the trainer on src (its files, names and parameters), with extra
 * arguments (NULL-terminated, may be NULL: "--cv", "5" asks for the
 * cross-validated figures instead of a model). Returns the job, or NULL
 * with *err (caller frees) when it cannot start.
 */
struct trainer_job *trainer_start(const struct kb_source *src, const char *const *extra,
                                  char **err);

/* The descriptors to wait on (POLLIN); their number, at most 2. */
int trainer_fds(const struct trainer_job *j, int fds[2]);

/*
 * Reads what the trainer wrote so far, without blocking. Returns 1 when it
 * has finished (both its outputs closed), 0 when more is to come, -1 on an
 * error (*err set, caller frees; the job is then finished).
 */
int trainer_read(struct trainer_job *j, char **err);

/* Waits until the trainer has finished. 0, or -1 with *err (caller frees). */
int trainer_wait(struct trainer_job *j, char **err);

/*
 * Once finished: the model's bytes and length (owned by the job), after
 * reaping the trainer. NULL with *err (caller frees) when it failed: its
 * exit status and the last lines it wrote on its standard error.
 */
const char *trainer_output(struct trainer_job *j, size_t *len, char **err);

/* The trainer's path: $FAQBOT_TRAINER, or beside this executable. Caller frees. */
char *trainer_path(void);

/* Seconds since the trainer started. */
double trainer_seconds(const struct trainer_job *j);

/* Stops the trainer if it still runs, reaps it, frees the job. NULL is ignored. */
void trainer_free(struct trainer_job *j);

#endif
