/*
 * Fuzz target: the body of a Matrix /sync reply, fed to mx_feed_sync()
 * as if the homeserver had sent it: rooms, state events (power levels,
 * members and their display names), timeline messages from strangers and
 * moderators, invites, leaves. Messages reach a real bot (bot_new over a
 * scratch state directory, answering from the embedded set) whose replies
 * are rendered and queued, never sent: the homeserver is
 * http://127.0.0.1:9, there is no token, and the loop never runs.
 *
 * Each input gets a fresh transport and bot (and the state directory is
 * emptied after it), so that inputs do not depend on each other and a
 * crash reproduces from its input alone; the knowledge base, the loop and
 * the configuration are made once and freed at exit. Nothing may leak per
 * input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bot.h"
#include "config.h"
#include "diag.h"
#include "kb.h"
#include "log.h"
#include "loop.h"
#include "transport/matrix.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config cfg;
static struct kb *kb;
static struct loop *loop;
static char state_dir[64];

/* Removes what is under dir (keeping dir itself, and the salt if keep_salt). */
static void
empty_dir(const char *dir, int keep_salt)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	char path[512];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (keep_salt && strcmp(de->d_name, "salt") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			empty_dir(path, 0);
			rmdir(path);
		} else {
			unlink(path);
		}
	}
	closedir(d);
}

static void
cleanup(void)
{
	kb_free(kb);
	loop_free(loop);
	config_free(&cfg);
	empty_dir(state_dir, 0);
	rmdir(state_dir);
}

static void
set_str(char **field, const char *value)
{
	free(*field);
	*field = xstrdup(value);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct diag_list d;

	(void)argc;
	(void)argv;
	log_init(getenv("FAQBOT_FUZZ_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR, 1);
	/* tmpfs if there is one: the state is written (and fsynced) per input. */
	strcpy(state_dir, "/dev/shm/faqbot-fuzz-sync-XXXXXX");
	if (mkdtemp(state_dir) == NULL) {
		strcpy(state_dir, "/tmp/faqbot-fuzz-sync-XXXXXX");
		if (mkdtemp(state_dir) == NULL)
			abort();
	}
	config_defaults(&cfg);
	set_str(&cfg.mx_homeserver, "http://127.0.0.1:9");
	set_str(&cfg.mx_user_id, "@faqbot:localhost");
	set_str(&cfg.state_dir, state_dir);
	set_str(&cfg.moderator_room, "!mod:localhost");
	strlist_add(&cfg.moderators, "@mod:localhost");
	strlist_add(&cfg.mx_invite_allow, "@patient:localhost");
	strlist_add(&cfg.mx_invite_allow, ":localhost");
	cfg.transports = CFG_TRANSPORT_MATRIX;
	cfg.allow_drafts = 1;
	cfg.cooldown_s = 0;
	cfg.user_rate_per_min = 600;
	cfg.room_rate_per_min = 600;
	diag_list_init(&d);
	kb = kb_load_embedded(&d);
	diag_list_free(&d);
	if (kb == NULL || (loop = loop_new()) == NULL)
		abort();
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bot *b = bot_new(&cfg, kb, state_dir);
	struct mx *m;

	if (b == NULL)
		abort();
	m = mx_new(loop, &cfg, b, state_dir);
	bot_add_transport(b, mx_transport(m));
	(void)mx_feed_sync(m, (const char *)data, size);
	mx_free(m);
	b->kb = NULL; /* kept for the next input */
	bot_free(b);
	empty_dir(state_dir, 1);
	return 0;
}
