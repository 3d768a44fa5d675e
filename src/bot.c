/*
 * From a match to a reply: the response, its review state, rendering with
 * the room's disclaimer and contacts, the "did you mean" choice, and the
 * fallback. See bot.h.
 */
#include "bot.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "policy.h"
#include "stats.h"
#include "teach.h"
#include "trainer.h"
#include "unanswered.h"
#include "util.h"

/*
 * A message longer than the normaliser reads at once, or than
 * matrix.max_message_bytes, is checked for safety in windows of this many
 * bytes, overlapping so that a phrase cut by one is whole in the next: all
 * of them up to BOT_SAFETY_SPAN bytes, else the first and the last
 * BOT_SAFETY_SPAN / 2 (a cry for help tends to open or close a long post).
 */
#define BOT_SAFETY_WINDOW  2048
#define BOT_SAFETY_OVERLAP 256
#define BOT_SAFETY_SPAN    16384

/*
 * Said when a safety intent matched but its response file is missing:
 * silence is never an option for someone in danger.
 */
static const char *const safety_fallback =
    "**Please get help now: call {{contacts.emergency}}.** I am only an information bot and "
    "cannot help in an emergency.";

int
bot_is_safety(const struct intent *in)
{
	return in != NULL && strncmp(in->id, "safety.", 7) == 0;
}

void
bot_match_opts(const struct config *cfg, const struct cfg_room *room, struct match_opts *o,
               const char **names_buf, size_t names_cap)
{
	size_t i;

	match_opts_default(o);
	o->threshold = cfg->threshold;
	o->margin = cfg->margin;
	o->match_limit = cfg->match_limit;
	o->depth_limit = cfg->depth_limit;
	o->no_model = !cfg->model;
	o->model_answer = cfg->model_answer;
	o->model_alert = cfg->model_safety_answer;
	o->model_flag = cfg->model_safety_alert;
	for (i = 0; i < cfg->bot_names.n && i + 1 < names_cap; i++)
		names_buf[i] = cfg->bot_names.v[i];
	if (names_cap > 0)
		names_buf[i] = NULL;
	o->bot_names = names_buf;
	if (room != NULL && room->intents.n > 0) {
		o->enabled = (const char *const *)room->intents.v;
		o->nenabled = room->intents.n;
	}
}

void
bot_source_init(struct bot_source *bs, const struct config *cfg, const char *state_dir)
{
	size_t i;

	memset(bs, 0, sizeof(*bs));
	if (cfg->intents_dir[0]) {
		bs->ip[0] = cfg->intents_dir;
		bs->src.intent_paths = bs->ip;
		bs->src.nintent = 1;
	}
	if (cfg->responses_dir[0]) {
		bs->rp[0] = cfg->responses_dir;
		bs->src.response_paths = bs->rp;
		bs->src.nresponse = 1;
	}
	if (cfg->labelled_dir[0]) {
		bs->lp[0] = cfg->labelled_dir;
		bs->src.labelled_paths = bs->lp;
		bs->src.nlabelled = 1;
	}
	for (i = 0; i < cfg->bot_names.n && i + 1 < NELEM(bs->names); i++)
		bs->names[i] = cfg->bot_names.v[i];
	bs->names[i] = NULL;
	bs->src.bot_names = bs->names;
	bs->src.no_model = !cfg->model;
	if (state_dir != NULL) {
		bs->taught = xasprintf("%s/taught.tsv", state_dir);
		bs->cache_dir = kb_cache_dir(state_dir);
		bs->src.taught = bs->taught;
		bs->src.cache_dir = bs->cache_dir;
	}
}

void
bot_source_free(struct bot_source *bs)
{
	free(bs->taught);
	free(bs->cache_dir);
}

static void
fill_vars(const struct config *cfg, const struct cfg_room *room, const char *name,
          struct render_vars *v)
{
	const struct cfg_contacts *c = config_contacts(cfg, room ? room->locale : cfg->locale);

	memset(v, 0, sizeof(*v));
	v->name = name;
	if (c != NULL) {
		v->contacts.emergency = c->emergency;
		v->contacts.oncology = c->oncology;
		v->contacts.crisis = c->crisis;
		v->contacts.crisis_text = c->crisis_text;
		v->contacts.moderators = c->moderators;
	}
	v->disclaimer = room && room->disclaimer ? room->disclaimer : cfg->disclaimer;
}

void
bot_compose_intent(const struct kb *kb, const struct config *cfg, const struct intent *in,
                   const struct cfg_room *room, const char *name, const struct match_result *res,
                   int alerted, struct bot_reply *out)
{
	const struct response *r = kb_response(kb, in, room ? room->locale : cfg->locale);
	struct render_vars v;
	struct buf footer;
	int safety = bot_is_safety(in);

	memset(out, 0, sizeof(*out));
	out->intent = in;
	fill_vars(cfg, room, name, &v);
	if (res != NULL && res->intent == in) {
		v.cap_name = res->cap_name;
		v.cap_value = res->cap_value;
		v.ncap = res->ncap;
	}
	buf_init(&footer);
	if (safety && alerted && cfg->alert_notice[0] && strcmp(in->id, "safety.crisis") == 0)
		buf_puts(&footer, cfg->alert_notice);
	if (r == NULL) {
		if (safety) {
			struct response fb = {0};

			fb.type = RESPONSE_SAFETY;
			fb.body = (char *)safety_fallback;
			v.footer = footer.data;
			response_render(&fb, &v, &out->text);
			out->kind = BOT_SAFETY;
			out->why = "safety answer (built in: the response file is missing)";
		} else {
			out->kind = BOT_SILENT;
			out->why = "the intent's response is missing";
		}
		buf_free(&footer);
		return;
	}
	/* Safety answers go out whatever their review state: silence is worse. */
	if (!safety) {
		switch (response_usable(r, cfg->allow_drafts, date_today_days())) {
		case RESPONSE_NOT_REVIEWED:
			out->kind = BOT_SILENT;
			out->why = "the response is a draft awaiting clinical review";
			buf_free(&footer);
			return;
		case RESPONSE_EXPIRED:
			out->kind = BOT_SILENT;
			out->why = "the response's review has expired";
			buf_free(&footer);
			return;
		case RESPONSE_USABLE:
			break;
		}
	}
	if (r->status == RESPONSE_DRAFT) {
		out->draft = 1;
		if (cfg->draft_notice[0] && !safety) {
			if (footer.len)
				buf_puts(&footer, "\n\n");
			buf_puts(&footer, cfg->draft_notice);
		}
	}
	v.footer = footer.data;
	response_render(r, &v, &out->text);
	buf_free(&footer);
	out->named = name != NULL && name[0] != '\0' && strstr(r->body, "{{name}}") != NULL;
	out->kind = safety ? BOT_SAFETY : BOT_ANSWER;
	out->why = safety ? "safety answer" : "answer";
}

static const char *
title_of(const struct intent *in)
{
	return in->title ? in->title : in->id;
}

void
bot_compose(const struct kb *kb, const struct config *cfg, const struct match_result *res,
            const struct cfg_room *room, const char *name, int addressed, int alerted,
            struct bot_reply *out)
{
	struct buf md;
	char *esc;

	memset(out, 0, sizeof(*out));
	if (res->intent == NULL) {
		if (res->silenced_by != NULL) {
			out->kind = BOT_SILENT;
			out->why = "a silent intent won";
			return;
		}
		if (addressed && !(res->text_flags & TEXT_TO_MEMBER)) {
			out->kind = BOT_FALLBACK;
			out->why = "addressed, but no answer";
			response_render_markdown(cfg->fallback, &out->text);
			return;
		}
		out->kind = BOT_SILENT;
		out->why = "no intent above the threshold";
		return;
	}
	if (res->ambiguous && !bot_is_safety(res->intent) && res->nalt > 0) {
		buf_init(&md);
		if (name && name[0]) {
			response_md_escape(name, 64, &esc);
			buf_printf(&md, "%s, did you mean:\n\n", esc);
			free(esc);
			out->named = 1;
		} else {
			buf_puts(&md, "Did you mean:\n\n");
		}
		buf_printf(&md, "1. %s\n2. %s\n\nAnswer 1 or 2.", title_of(res->intent),
		           title_of(res->alt[0].intent));
		response_render_markdown(md.data, &out->text);
		buf_free(&md);
		out->kind = BOT_CHOICE;
		out->choice[0] = res->intent;
		out->choice[1] = res->alt[0].intent;
		out->why = "ambiguous: asked which was meant";
		return;
	}
	bot_compose_intent(kb, cfg, res->intent, room, name, res, alerted, out);
}

void
bot_reply_free(struct bot_reply *r)
{
	if (r == NULL)
		return;
	rendered_free(&r->text);
	memset(r, 0, sizeof(*r));
}

/* --- the running bot ---------------------------------------------------- */

static void
set_names(struct bot *b)
{
	size_t i, n = 0;

	for (i = 0; i < b->cfg->bot_names.n && n + 1 < NELEM(b->names); i++)
		b->names[n++] = b->cfg->bot_names.v[i];
	b->names[n] = NULL;
}

static char *
state_path(const struct bot *b, const char *name)
{
	return xasprintf("%s/%s", b->state_dir, name);
}

/* A random salt kept in the state directory, so sender hashes are stable
 * across restarts but cannot be reversed by hashing guesses. */
static uint64_t
load_salt(const struct bot *b)
{
	char *path = state_path(b, "salt"), *text;
	uint64_t salt = 0;
	size_t len;
	FILE *fp;

	if ((text = file_read(path, 64, &len)) != NULL) {
		salt = strtoull(text, NULL, 16);
		free(text);
	}
	if (salt == 0 && (fp = fopen("/dev/urandom", "rb")) != NULL) {
		if (fread(&salt, sizeof(salt), 1, fp) != 1)
			salt = now_ns() ^ (uint64_t)getpid();
		fclose(fp);
		text = xasprintf("%016llx\n", (unsigned long long)salt);
		if (file_write_atomic(path, text, strlen(text), 0600) == -1)
			log_warn("cannot write %s", path);
		free(text);
	}
	free(path);
	return salt ? salt : 1;
}

/* learn_near_add for a taught message labelled with a safety intent. */
static void
near_add(void *arg, const char *intent, const char *text)
{
	if (strcmp(intent, "safety.emergency") == 0)
		learn_near_add(arg, text, LEARN_C_EMERGENCY);
	else if (strcmp(intent, "safety.crisis") == 0)
		learn_near_add(arg, text, LEARN_C_CRISIS);
}

static void
listed_free(struct bot *b)
{
	size_t i;

	for (i = 0; i < b->nlisted; i++)
		free(b->listed[i]);
	free(b->listed);
	b->listed = NULL;
	b->nlisted = 0;
}

struct bot *
bot_new(struct config *cfg, struct kb *kb, const char *state_dir)
{
	struct bot *b;
	char *path;

	if (mkdir(state_dir, 0700) == -1 && errno != EEXIST) {
		log_warn("cannot create the state directory %s", state_dir);
		return NULL;
	}
	if (access(state_dir, W_OK) == -1) {
		log_warn("cannot write to the state directory %s", state_dir);
		return NULL;
	}
	b = xcalloc(1, sizeof(*b));
	b->cfg = cfg;
	b->kb = kb;
	b->mctx = match_ctx_new();
	b->policy = policy_new(cfg->user_rate_per_min, cfg->room_rate_per_min, cfg->cooldown_s,
	                       cfg->choice_timeout_s);
	policy_set_safety(b->policy, cfg->safety_repeat_s, cfg->alert_every_s);
	b->modroom = -1;
	b->stats = stats_new();
	b->state_dir = xstrdup(state_dir);
	b->teach = teach_new(state_dir);
	b->near = learn_near_new();
	/* What moderators taught as safety stays in effect at once after a restart too. */
	teach_each_safety(b->teach, near_add, b->near);
	set_names(b);
	b->salt = load_salt(b);
	path = state_path(b, "stats.json");
	if (stats_load(b->stats, path) == -1)
		log_warnx("%s is damaged; counting from zero", path);
	free(path);
	path = state_path(b, "rooms.json");
	if (policy_load(b->policy, path) == -1)
		log_warnx("%s is damaged; no room is paused", path);
	free(path);
	return b;
}

void
bot_save(struct bot *b)
{
	char *path;

	path = state_path(b, "stats.json");
	if (stats_save(b->stats, path) == -1)
		log_warn("cannot save %s", path);
	free(path);
	path = state_path(b, "rooms.json");
	if (policy_save(b->policy, path) == -1)
		log_warn("cannot save %s", path);
	free(path);
	b->dirty = 0;
}

void
bot_free(struct bot *b)
{
	if (b == NULL)
		return;
	kb_free(b->kb);
	kb_free(b->pending);
	teach_free(b->teach);
	learn_near_free(b->near);
	listed_free(b);
	trainer_free(b->cv_job);
	match_ctx_free(b->mctx);
	policy_free(b->policy);
	stats_free(b->stats);
	free(b->state_dir);
	free(b);
}

void
bot_add_transport(struct bot *b, struct transport *t)
{
	if (b->ntp < BOT_MAX_TRANSPORTS)
		b->tp[b->ntp++] = t;
}

/* The transport that serves room, or NULL. */
static struct transport *
transport_for(struct bot *b, const char *room)
{
	size_t i;

	for (i = 0; room && room[0] && i < b->ntp; i++)
		if (b->tp[i]->has_room(b->tp[i]->impl, room))
			return b->tp[i];
	return NULL;
}

/* Queues Markdown for the moderator room on t; urgent for safety alerts. */
static void
notify(struct bot *b, struct transport *t, const char *markdown, const char *key, int urgent)
{
	struct tp_out out = {0};
	struct rendered r;

	response_render_markdown(markdown, &r);
	out.room = b->cfg->moderator_room;
	out.plain = r.plain;
	out.html = r.html;
	out.key = key;
	out.notice = 1;
	out.urgent = urgent;
	out.received_ns = now_ns();
	if (t->send(t->impl, &out) == -1)
		log_warnx("cannot queue a message to the moderator room");
	rendered_free(&r);
}

void
bot_notify(struct bot *b, const char *markdown, const char *key)
{
	struct transport *t = transport_for(b, b->cfg->moderator_room);

	if (t != NULL)
		notify(b, t, markdown, key, 0);
}

int
bot_moderator_room_ok(const struct bot *b)
{
	return b->cfg->moderator_room[0] == '\0' || b->modroom != 0;
}

void
bot_on_membership(struct bot *b, struct transport *t, const char *room, int joined,
                  const char *why)
{
	char esc[512];

	if (b->cfg->moderator_room[0] == '\0' || strcmp(room, b->cfg->moderator_room) != 0)
		return;
	log_escape(room, strlen(room), esc, sizeof(esc));
	if (joined && b->modroom != 1) {
		if (b->modroom == 0)
			log_info("%s: the bot is in the moderator room %s again; safety alerts reach "
			         "the moderators", t->name, esc);
		b->modroom = 1;
		stats_moderator_room(b->stats, 1);
	} else if (!joined && b->modroom != 0) {
		char whyesc[512];

		log_escape(why ? why : "not joined", strlen(why ? why : "not joined"), whyesc,
		           sizeof(whyesc));
		log_errorx("%s: the bot is not in the moderator room %s (%s): safety alerts cannot "
		           "reach the moderators, and moderators cannot give commands there. Invite "
		           "the bot back (moderation.room)",
		           t->name, esc, whyesc);
		b->modroom = 0;
		stats_moderator_room(b->stats, 0);
	}
	b->dirty = 1;
}

void
bot_on_unreadable(struct bot *b, struct transport *t, const char *room)
{
	const struct cfg_contacts *c;
	struct cfg_room profile;
	struct tp_out out = {0};
	struct rendered r;
	struct buf md;
	char *key = xasprintf("%s|encrypted", room);

	config_room(b->cfg, room, &profile);
	c = config_contacts(b->cfg, profile.locale);
	buf_init(&md);
	buf_puts(&md, "I am faqbot, an information bot. This room is end-to-end encrypted and I "
	              "cannot read encrypted messages, so I will not answer here.");
	if (c != NULL && c->moderators && c->moderators[0])
		buf_printf(&md, " For help, ask %s.", c->moderators);
	else
		buf_puts(&md, " For help, ask the people who run this room.");
	if (c != NULL && c->emergency && c->emergency[0])
		buf_printf(&md, " In an emergency, call %s.", c->emergency);
	response_render_markdown(md.data, &r);
	out.room = room;
	out.plain = r.plain;
	out.html = r.html;
	out.key = key;
	out.notice = 1;
	out.received_ns = now_ns();
	if (t->send(t->impl, &out) == -1)
		log_warnx("%s: cannot queue the note about encryption", t->name);
	rendered_free(&r);
	buf_free(&md);
	free(key);
}

/* Puts kb in use; the old set goes. */
static void
swap_kb(struct bot *b, struct kb *kb)
{
	kb_free(b->kb);
	b->kb = kb;
	learn_near_stale(b->near);
	stats_reload(b->stats, 1);
	b->dirty = 1;
}

int
bot_reload(struct bot *b, struct diag_list *diags)
{
	struct bot_source bs;
	struct kb *kb;

	bot_source_init(&bs, b->cfg, b->state_dir);
	kb = kb_load(&bs.src, diags);
	bot_source_free(&bs);
	if (kb == NULL) {
		stats_reload(b->stats, 0);
		b->dirty = 1;
		return -1;
	}
	/* A newer reload replaces one still being trained. */
	kb_free(b->pending);
	b->pending = NULL;
	if (kb_model_pending(kb)) {
		b->pending = kb;
		if (b->on_pending != NULL)
			b->on_pending(b->pending_arg);
		return 1;
	}
	kb_model_poll(kb, diags); /* says why there is no model, if there is none */
	swap_kb(b, kb);
	return 0;
}

int
bot_reload_poll(struct bot *b, struct diag_list *diags)
{
	if (b->pending == NULL)
		return 1;
	if (kb_model_poll(b->pending, diags) == 0)
		return 0;
	swap_kb(b, b->pending);
	b->pending = NULL;
	return 1;
}

void
bot_on_sent(struct bot *b, const char *key, const char *event_id)
{
	const char *bar;
	char *ev;

	policy_sent(b->policy, key, event_id);
	/* "EVENT|answer": the reply to EVENT has its own id now (for `!faq wrong`, 👍/👎). */
	if (key == NULL || event_id == NULL || (bar = strrchr(key, '|')) == NULL)
		return;
	if (strcmp(bar + 1, "answer") != 0 && strcmp(bar + 1, "fallback") != 0)
		return;
	ev = xstrndup(key, (size_t)(bar - key));
	teach_answered(b->teach, ev, event_id);
	free(ev);
}

/* An idempotency key: the message's event plus the role of the reply. */
static char *
make_key(const struct tp_msg *m, const char *role)
{
	if (m->event_id == NULL)
		return NULL;
	return xasprintf("%s|%s", m->event_id, role);
}

/* How a reply goes out (send_reply's flags). */
#define REPLY_MENTION 0x1 /* mention the asker */
#define REPLY_URGENT 0x2  /* a safety answer: before anything else */
#define REPLY_NAMED 0x4   /* the text names the asker already */

static void
send_reply(struct bot *b, struct transport *t, const struct tp_msg *m, const struct rendered *r,
           const char *role, int flags)
{
	struct tp_out out = {0};
	char *key = make_key(m, role);

	out.room = m->room;
	out.plain = r->plain;
	out.html = r->html;
	out.reply_to = m->reply_to ? m->reply_to : m->event_id;
	out.thread_root = m->thread_root;
	out.mention = (flags & REPLY_MENTION) ? m->sender : NULL;
	out.mention_name = m->sender_name;
	out.key = key;
	out.notice = 1;
	out.urgent = (flags & REPLY_URGENT) != 0;
	out.named = (flags & REPLY_NAMED) != 0;
	out.received_ns = m->received_ns;
	if (t->send(t->impl, &out) == -1)
		log_warnx("cannot queue a reply in %s", m->room);
	else if (m->received_ns)
		stats_latency(b->stats, (double)(now_ns() - m->received_ns) / 1e9);
	free(key);
}

static void
send_markdown_to(struct bot *b, struct transport *t, const struct tp_msg *m, const char *md,
                 const char *role, int flags)
{
	struct rendered r;

	response_render_markdown(md, &r);
	send_reply(b, t, m, &r, role, flags);
	rendered_free(&r);
}

static void
send_markdown(struct bot *b, struct transport *t, const struct tp_msg *m, const char *md,
              const char *role)
{
	send_markdown_to(b, t, m, md, role, 0);
}

/*
 * The safety check of text read in windows (see BOT_SAFETY_WINDOW), for a
 * message too long to be read whole. Returns 1, with *res the window's
 * result, when one of them reaches a safety intent.
 */
static int
safety_in_windows(struct bot *b, const struct match_opts *mo, const char *text, size_t len,
                  struct match_result *res)
{
	size_t step = BOT_SAFETY_WINDOW - BOT_SAFETY_OVERLAP, off, n;
	size_t head = len <= BOT_SAFETY_SPAN ? len : BOT_SAFETY_SPAN / 2;

	for (off = 0;; off += step) {
		/* The head first, then the tail when the middle is skipped. */
		if (off >= head && len > BOT_SAFETY_SPAN && off < len - BOT_SAFETY_SPAN / 2)
			off = len - BOT_SAFETY_SPAN / 2;
		n = len - off < BOT_SAFETY_WINDOW ? len - off : BOT_SAFETY_WINDOW;
		match_run(b->mctx, b->kb, mo, text + off, n, res, NULL);
		if (res->intent && bot_is_safety(res->intent))
			return 1;
		if (off + n >= len)
			return 0;
	}
}

/*
 * Tells the moderator room about a safety message (intent) of sender in
 * room on t: who, where, a link to event_id. more is how many messages of
 * theirs came since the last alert; a follow-up (followup) says only that.
 * Urgent, like the safety answer. Never silent: an alert that cannot go is
 * logged as an error and counted. why says what raised it when no rule
 * did (the learned model, a taught message), else NULL.
 */
static void
alert_moderators(struct bot *b, struct transport *t, const char *room, const char *sender,
                 const char *intent, const char *event_id, unsigned long more, int followup,
                 int direct, const char *why)
{
	struct transport *mt;
	struct buf md, link;
	const char *kind = strcmp(intent, "safety.crisis") == 0 ? "crisis" : "emergency";
	char *who, *key, esc[512];

	if (b->cfg->moderator_room[0] == '\0')
		return;
	mt = transport_for(b, b->cfg->moderator_room);
	if (mt == NULL || b->modroom == 0) {
		log_escape(b->cfg->moderator_room, strlen(b->cfg->moderator_room), esc, sizeof(esc));
		log_errorx("%s: a safety alert (%s) cannot reach the moderators: the bot is not in "
		           "the moderator room %s",
		           t->name, kind, esc);
		stats_alert_undelivered(b->stats);
		b->dirty = 1;
		if (mt == NULL)
			return;
	}
	buf_init(&md);
	buf_init(&link);
	response_md_escape(sender, 255, &who);
	if (followup)
		buf_printf(&md, "**Safety alert (%s), continued** in %s: %lu more message%s from %s.",
		           kind, t->name, more, more == 1 ? "" : "s", who);
	else
		buf_printf(&md, "**Safety alert (%s)** in %s: %s may need help now.", kind, t->name,
		           who);
	if (direct)
		buf_puts(&md, " In a private message to the bot, which only they can see: write to "
		              "them directly.");
	else if (event_id && t->link && t->link(t->impl, room, event_id, &link) == 0)
		buf_printf(&md, " %s: %s", followup ? "The latest" : "Message", link.data);
	else
		buf_printf(&md, " Room: %s", room);
	if (followup)
		buf_puts(&md, "\n\nThe bot does not answer them again within a few minutes; please "
		              "check in.");
	else if (more > 0)
		buf_printf(&md, "\n\nThe bot has answered with the safety message (and %lu earlier "
		                "message%s went unreported); please check in.",
		           more, more == 1 ? "" : "s");
	else
		buf_puts(&md, "\n\nThe bot has answered with the safety message; please check in.");
	if (!followup && why != NULL)
		buf_printf(&md, " No rule matched this message: %s.", why);
	key = event_id ? xasprintf("%s|%s", event_id, followup ? "alert-more" : "alert") : NULL;
	notify(b, mt, md.data, key, 1);
	free(key);
	free(who);
	buf_free(&md);
	buf_free(&link);
	if (!followup)
		stats_safety_alert(b->stats, intent);
	b->dirty = 1;
}

void
bot_tick(struct bot *b)
{
	struct policy_followup f;
	struct transport *t;

	while (policy_safety_due(b->policy, now_ms(), &f)) {
		if ((t = transport_for(b, f.room)) == NULL)
			t = b->ntp ? b->tp[0] : NULL;
		if (t != NULL)
			alert_moderators(b, t, f.room, f.sender, f.intent, f.event_id, f.more, 1, 0,
			                 NULL);
	}
}

/*
 * A silent alert: the learned model finds the message (event_id of sender
 * in room on t) may be an emergency or a crisis, but not surely enough to
 * answer it in the room. Urgent, like an alert; one that cannot go is
 * logged as an error and counted.
 */
static void
flag_moderators(struct bot *b, struct transport *t, const struct tp_msg *m, double p)
{
	const char *link_id = m->reply_to ? m->reply_to : m->event_id;
	struct transport *mt;
	struct buf md, link;
	char *who, *key, esc[512];

	stats_safety_flag(b->stats);
	b->dirty = 1;
	log_escape(m->room, strlen(m->room), esc, sizeof(esc));
	log_info("%s: possible emergency or crisis in %s (the model's P %.2f): the moderators are "
	         "told, nothing is said in the room",
	         t->name, esc, p);
	if (b->cfg->moderator_room[0] == '\0')
		return;
	mt = transport_for(b, b->cfg->moderator_room);
	if (mt == NULL || b->modroom == 0) {
		log_escape(b->cfg->moderator_room, strlen(b->cfg->moderator_room), esc, sizeof(esc));
		log_errorx("%s: a silent safety alert cannot reach the moderators: the bot is not "
		           "in the moderator room %s",
		           t->name, esc);
		stats_alert_undelivered(b->stats);
		if (mt == NULL)
			return;
	}
	buf_init(&md);
	buf_init(&link);
	response_md_escape(m->sender, 255, &who);
	buf_printf(&md, "**Possible emergency or crisis, please read** (%s, from %s).", t->name,
	           who);
	if (link_id && t->link && t->link(t->impl, m->room, link_id, &link) == 0)
		buf_printf(&md, " Message: %s", link.data);
	else
		buf_printf(&md, " Room: %s", m->room);
	buf_printf(&md, "\n\nNo rule matched it; the learned model gives it P(emergency or "
	                "crisis) %.2f, not enough to answer it in the room, and nothing was said "
	                "there.",
	           p);
	key = link_id ? xasprintf("%s|flag", link_id) : NULL;
	notify(b, mt, md.data, key, 1);
	free(key);
	free(who);
	buf_free(&md);
	buf_free(&link);
}

/*
 * A moderator: listed in moderation.users, or with the power level in the
 * moderator room; either way a joined member of that room now, when the
 * moderator room is on t (a listed user of another network is taken on
 * the list's word; so is one whose membership is not known yet).
 */
static int
is_moderator(struct bot *b, struct transport *t, const char *user)
{
	int listed = strlist_has(&b->cfg->moderators, user), pl, member = -1;

	if (b->cfg->moderator_room[0] == '\0')
		return listed;
	if (transport_for(b, b->cfg->moderator_room) == t && t->member != NULL)
		member = t->member(t->impl, b->cfg->moderator_room, user);
	if (listed)
		return member != 0;
	if (member != 1 || t->power_level == NULL)
		return 0;
	pl = t->power_level(t->impl, b->cfg->moderator_room, user);
	return pl >= 0 && pl >= b->cfg->moderator_power;
}

static const char *const commands[] = {"help",  "reload", "why",   "stats", "unanswered",
                                       "pause", "resume", "teach", "wrong", NULL};

/* The command word at the start of s (after the prefix), or NULL. */
static const char *
command_of(const char *s, const char **rest)
{
	const char *const *c;
	size_t n;

	while (*s == ' ' || *s == '\t' || *s == ':' || *s == ',')
		s++;
	for (c = commands; *c; c++) {
		n = strlen(*c);
		if (strncasecmp(s, *c, n) == 0 && (s[n] == '\0' || isspace((unsigned char)s[n]))) {
			s += n;
			while (isspace((unsigned char)*s))
				s++;
			*rest = s;
			return *c;
		}
	}
	return NULL;
}

static void cmd_teach(struct bot *b, const struct tp_msg *m, const char *arg, struct buf *out);
static void cmd_wrong(struct bot *b, const struct tp_msg *m, const char *arg, struct buf *out);
static void cv_summary(const struct bot *b, struct buf *out);

static void
run_command(struct bot *b, struct transport *t, const struct tp_msg *m, const char *cmd,
            const char *arg)
{
	struct buf out;
	struct diag_list d;
	size_t i;
	int rc;

	buf_init(&out);
	if (strcmp(cmd, "help") == 0) {
		buf_printf(&out,
		           "Moderator commands (in this room):\n\n"
		           "- `%1$s reload`: reload intents and responses\n"
		           "- `%1$s why QUESTION`: why the bot answers QUESTION as it does\n"
		           "- `%1$s stats`: answers per intent, unanswered, safety alerts\n"
		           "- `%1$s unanswered [N]`: the last N unanswered questions, numbered\n"
		           "- `%1$s teach N INTENT`: teach entry N of that list as INTENT (or "
		           "`null`: no answer); `%1$s teach LINK INTENT` for a message I answered, "
		           "flagged or left unanswered. It takes effect at the next reload; taught "
		           "as `safety.crisis` or `safety.emergency`, at once for messages close "
		           "to it\n"
		           "- `%1$s wrong LINK [INTENT]`: one of my answers was wrong (and what was "
		           "right)\n"
		           "- `%1$s pause ROOM` / `%1$s resume ROOM`: stop or restart answering in "
		           "ROOM (safety answers never stop)\n\n"
		           "Taught messages are in `taught.tsv` in my state directory (`faqbot "
		           "taught` prints them), to review and copy into `labelled/`.",
		           b->cfg->command_prefix);
	} else if (strcmp(cmd, "reload") == 0) {
		diag_list_init(&d);
		if ((rc = bot_reload(b, &d)) == 1) {
			buf_printf(&out,
			           "Reloaded: %zu intents, %zu responses. The learned model is being "
			           "trained; the previous set answers until it is ready (I will say "
			           "so here).",
			           b->pending->nin, b->pending->responses.n);
		} else if (rc == 0) {
			buf_printf(&out, "Reloaded: %zu intents, %zu responses.", b->kb->nin,
			           b->kb->responses.n);
			if (d.warnings)
				buf_printf(&out, " %zu warning(s); run `faqbot lint` to see them.",
				           d.warnings);
		} else {
			buf_puts(&out,
			         "Reload failed; the bot keeps answering with the previous set. "
			         "Problems:\n\n```\n");
			for (i = 0; i < d.n && i < 20; i++) {
				char *line;

				if (d.d[i].sev != DIAG_ERROR)
					continue;
				line = diag_format(&d.d[i]);
				buf_printf(&out, "%s\n", line);
				free(line);
			}
			buf_puts(&out, "```");
		}
		diag_list_free(&d);
	} else if (strcmp(cmd, "why") == 0) {
		struct match_result res;
		struct match_opts mo;
		struct cfg_room room;
		struct buf ex;

		if (*arg == '\0') {
			buf_printf(&out, "Usage: `%s why QUESTION`", b->cfg->command_prefix);
		} else {
			buf_init(&ex);
			config_room(b->cfg, NULL, &room);
			bot_match_opts(b->cfg, &room, &mo, b->names, NELEM(b->names));
			match_run(b->mctx, b->kb, &mo, arg, strlen(arg), &res, &ex);
			buf_printf(&out, "```\n%s```", ex.data);
			buf_free(&ex);
		}
	} else if (strcmp(cmd, "stats") == 0) {
		stats_summary(b->stats, &out);
		cv_summary(b, &out);
	} else if (strcmp(cmd, "unanswered") == 0) {
		long n = *arg ? strtol(arg, NULL, 10) : 10;

		if (n < 1)
			n = 10;
		if (n > 50)
			n = 50;
		unanswered_recent(b->state_dir, (size_t)n, &out);
		if (out.len == 0) {
			buf_puts(&out, "No unanswered questions logged.");
		} else {
			/* Remembered as listed, for `teach N`. */
			listed_free(b);
			unanswered_last(b->state_dir, (size_t)n, &b->listed, &b->nlisted);
			buf_printf(&out, "\nTeach one with `%s teach N INTENT`.",
			           b->cfg->command_prefix);
		}
	} else if (strcmp(cmd, "teach") == 0 || strcmp(cmd, "wrong") == 0) {
		if (strcmp(m->room, b->cfg->moderator_room) != 0)
			buf_puts(&out, "Teaching works in the moderator room only.");
		else if (cmd[0] == 't')
			cmd_teach(b, m, arg, &out);
		else
			cmd_wrong(b, m, arg, &out);
	} else if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) {
		int pause = cmd[0] == 'p';
		char *room = xstrdup(arg), *sp;

		if ((sp = strpbrk(room, " \t")) != NULL)
			*sp = '\0';
		if (room[0] == '\0') {
			char *list = policy_paused_list(b->policy);

			buf_printf(&out, "Usage: `%s %s ROOM`. Paused now: %s",
			           b->cfg->command_prefix, cmd, list[0] ? list : "none");
			free(list);
		} else {
			policy_pause(b->policy, room, pause);
			b->dirty = 1;
			bot_save(b);
			buf_printf(&out, "%s %s.%s", pause ? "Paused in" : "Answering again in",
			           room, pause ? " Safety answers still go out." : "");
			log_info("moderator %s %s room %s", m->sender, pause ? "paused" : "resumed",
			         room);
		}
		free(room);
	}
	send_markdown(b, t, m, out.data ? out.data : "", "command");
	buf_free(&out);
}

/* Strips the command prefix ("!faq"): returns the rest, or NULL if absent. */
static const char *
strip_prefix(const struct bot *b, const char *text)
{
	const char *p = b->cfg->command_prefix;
	size_t n = strlen(p);

	while (*text == ' ')
		text++;
	if (strncasecmp(text, p, n) != 0)
		return NULL;
	if (text[n] != '\0' && !isspace((unsigned char)text[n]) && text[n] != ':' && text[n] != ',')
		return NULL;
	text += n;
	while (*text == ' ' || *text == ':' || *text == ',' || *text == '\t')
		text++;
	return text;
}

/* Is the normalised message just "1" or "2"? Returns it, or 0. */
static int
choice_number(const char *norm)
{
	if ((norm[0] == '1' || norm[0] == '2') && norm[1] == '\0')
		return norm[0] - '0';
	return 0;
}

static void
answer_intent(struct bot *b, struct transport *t, const struct tp_msg *m,
              const struct cfg_room *room, const struct intent *in, const struct match_result *res,
              uint64_t now)
{
	struct bot_reply reply;
	const char *prev = NULL;
	uint64_t age = 0;
	char *key;

	if (!bot_is_safety(in) && b->cfg->cooldown_s > 0 &&
	    policy_recent(b->policy, m->room, in->id, now, &prev, &age)) {
		struct buf md, link;

		buf_init(&md);
		buf_init(&link);
		if (age < 60)
			buf_puts(&md, "I answered this here a moment ago");
		else if (age < 120)
			buf_puts(&md, "I answered this here a minute ago");
		else
			buf_printf(&md, "I answered this here %llu minutes ago",
			           (unsigned long long)(age / 60));
		/* The link last, with nothing after it that a client could take into it. */
		if (prev && t->link && t->link(t->impl, m->room, prev, &link) == 0)
			buf_printf(&md, ", so I won't repeat it: %s", link.data);
		else
			buf_puts(&md, " (see above), so I won't repeat it.");
		send_markdown(b, t, m, md.data, "pointer");
		stats_pointer(b->stats, in->id);
		b->dirty = 1;
		buf_free(&md);
		buf_free(&link);
		return;
	}
	bot_compose_intent(b->kb, b->cfg, in, room, m->sender_name, res, 0, &reply);
	if (reply.kind == BOT_SILENT) {
		log_info("%s: no answer sent for %s in %s: %s", t->name, in->id, m->room,
		         reply.why);
		bot_reply_free(&reply);
		return;
	}
	send_reply(b, t, m, &reply.text, "answer", REPLY_MENTION | (reply.named ? REPLY_NAMED : 0));
	key = make_key(m, "answer");
	policy_answered(b->policy, m->room, in->id, key, now);
	free(key);
	stats_answer(b->stats, in->id);
	if (res != NULL && res->by == MATCH_BY_MODEL)
		stats_model_answer(b->stats, in->id);
	b->dirty = 1;
	log_info("%s: answered %s in %s%s%s", t->name, in->id, m->room,
	         reply.draft ? " (draft)" : "",
	         res != NULL && res->by == MATCH_BY_MODEL ? " (by the learned model)" : "");
	bot_reply_free(&reply);
}

/*
 * A reply other than a safety answer may go to sender now: the flood limits
 * allow it. When they do not, the person is told once that they wait (a
 * notice the limits do not count), and 0 is returned.
 */
static int
may_reply(struct bot *b, struct transport *t, const struct tp_msg *m, uint64_t now)
{
	char md[160];

	if (policy_allow(b->policy, m->room, m->sender, now))
		return 1;
	stats_limited(b->stats);
	b->dirty = 1;
	log_info("%s: flood limit: no answer to %s in %s", t->name, m->sender, m->room);
	if (policy_limit_notice(b->policy, m->sender, now)) {
		snprintf(md, sizeof(md),
		         "I answer at most %ld question%s a minute; please wait a moment.",
		         b->cfg->user_rate_per_min, b->cfg->user_rate_per_min == 1 ? "" : "s");
		send_markdown(b, t, m, md, "limit");
	}
	return 0;
}

/* The safety answer to m (intent in res), once per sender and room a while; the alert. */
static void
answer_safety(struct bot *b, struct transport *t, const struct tp_msg *m,
              const struct cfg_room *room, const struct match_result *res, uint64_t now)
{
	const char *link_id = m->reply_to ? m->reply_to : m->event_id;
	struct bot_reply reply;
	unsigned long before;
	char why[160];
	int alert = b->cfg->moderator_room[0] != '\0' &&
	            transport_for(b, b->cfg->moderator_room) != NULL && b->modroom != 0;

	if (policy_safety_seen(b->policy, m->room, m->sender, res->intent->id, link_id, now,
	                       &before) == POLICY_SAFETY_REPEAT) {
		/* Answered a moment ago: the moderators hear of it in one follow-up. */
		stats_safety_repeat(b->stats);
		b->dirty = 1;
		log_info("%s: safety message %s in %s from a sender answered a moment ago: not "
		         "answered again; counted for the moderators",
		         t->name, res->intent->id, m->room);
		return;
	}
	bot_compose_intent(b->kb, b->cfg, res->intent, room, m->sender_name, res, alert, &reply);
	send_reply(b, t, m, &reply.text, "answer",
	           REPLY_MENTION | REPLY_URGENT | (reply.named ? REPLY_NAMED : 0));
	bot_reply_free(&reply);
	stats_answer(b->stats, res->intent->id);
	if (res->by == MATCH_BY_MODEL)
		stats_model_answer(b->stats, res->intent->id);
	b->dirty = 1;
	log_info("%s: safety answer %s in %s%s", t->name, res->intent->id, m->room,
	         res->by == MATCH_BY_MODEL    ? " (by the learned model)"
	         : res->by == MATCH_BY_TAUGHT ? " (close to a taught message)"
	                                      : "");
	if (res->by == MATCH_BY_MODEL)
		snprintf(why, sizeof(why),
		         "the learned model raised it (P(emergency or crisis) %.2f)", res->p_safety);
	else if (res->by == MATCH_BY_TAUGHT)
		snprintf(why, sizeof(why),
		         "it is close to a message a moderator taught as %s (similarity %.2f)",
		         res->intent->id, res->score);
	alert_moderators(b, t, m->room, m->sender, res->intent->id, link_id, before, 0, m->direct,
	                 res->by == MATCH_BY_RULES ? NULL : why);
}

/* --- feedback and teaching ------------------------------------------------ */

/* Does key (an emoji, maybe with a skin tone) start with prefix? */
static int
emoji_is(const char *key, const char *prefix)
{
	return strncmp(key, prefix, strlen(prefix)) == 0;
}

void
bot_on_reaction(struct bot *b, struct transport *t, const char *room, const char *sender,
                const char *event_id, const char *key)
{
	const struct teach_item *it = teach_find(b->teach, event_id);
	int up = emoji_is(key, "\xf0\x9f\x91\x8d"), down = emoji_is(key, "\xf0\x9f\x91\x8e");

	/* Only a 👍 or 👎 to one of the bot's answers counts. */
	if ((!up && !down) || it == NULL || it->intent == NULL || it->answer_id == NULL ||
	    strcmp(it->answer_id, event_id) != 0 || strcmp(it->room, room) != 0)
		return;
	stats_feedback(b->stats, it->intent, up);
	b->dirty = 1;
	log_info("%s: a %s for the answer %s in %s", t->name, up ? "thumbs up" : "thumbs down",
	         it->intent, room);
	if (down && unanswered_append_note(b->state_dir, room, sender, b->salt, it->text,
	                                   now_wall(), "marked unhelpful") == -1)
		log_warn("cannot append to the unanswered log");
}

int
bot_job_fds(const struct bot *b, int fds[4])
{
	int n = 0;

	if (b->pending != NULL)
		n += kb_model_fds(b->pending, fds);
	if (b->cv_job != NULL)
		n += trainer_fds(b->cv_job, fds + n);
	return n;
}

/* Where the figures of the current set are cached (by what it learnt from). Caller frees. */
static char *
cv_cache_path(const struct bot *b)
{
	char *dir = kb_cache_dir(b->state_dir), *path;

	if (dir == NULL)
		return NULL;
	path = xasprintf("%s/figures-%016llx.txt", dir, (unsigned long long)b->kb->input_hash);
	free(dir);
	return path;
}

static int cv_take(struct bot *b, const char *text);

void
bot_cv_start(struct bot *b)
{
	static const char *const extra[] = {"--cv", "5", NULL};
	struct bot_source bs;
	char *err, *path, *text;
	size_t len;

	if (!b->cfg->model || b->kb->model == NULL)
		return;
	trainer_free(b->cv_job);
	b->cv_job = NULL;
	/* Worked out before for the same files: no need to again. */
	if ((path = cv_cache_path(b)) != NULL && (text = file_read(path, 1 << 20, &len)) != NULL) {
		cv_take(b, text);
		free(text);
		free(path);
		return;
	}
	free(path);
	bot_source_init(&bs, b->cfg, b->state_dir);
	b->cv_job = trainer_start(&bs.src, extra, &err);
	bot_source_free(&bs);
	if (b->cv_job == NULL) {
		log_warnx("cannot work out the model's figures: %s", err);
		free(err);
		return;
	}
	if (b->on_pending != NULL)
		b->on_pending(b->pending_arg);
}

/* The numbers of the line of out that starts with label; 1 when there are n. */
static int
figures_of(const char *out, const char *label, double *v, size_t n)
{
	const char *p = out;
	size_t l = strlen(label), i;
	char *end;

	for (; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, label, l) != 0 || p[l] != ' ')
			continue;
		p += l;
		for (i = 0; i < n; i++) {
			v[i] = strtod(p, &end);
			if (end == p)
				return 0;
			p = end;
		}
		return 1;
	}
	return 0;
}

/* Takes the figures from the trainer's output text; 0, or -1 when it has none. */
static int
cv_take(struct bot *b, const char *text)
{
	const char *p;
	double v[7];

	if (!figures_of(text, "both", v, 7))
		return -1;
	b->cv[1] = b->cv[0];
	b->cv[0].have = 1;
	b->cv[0].accuracy = v[0];
	b->cv[0].false_answers = v[1];
	b->cv[0].answered = v[3];
	b->cv[0].coverage = v[4];
	b->cv[0].alarm_rate = v[5];
	b->cv[0].flag_rate = v[6];
	b->cv[0].taught = teach_count(b->teach);
	b->cv[0].messages = 0;
	if ((p = strstr(text, "cross-validation: ")) != NULL)
		b->cv[0].messages = (size_t)strtoul(p + 18, NULL, 10);
	log_info("the model's figures, 5-fold cross-validated: accuracy %.3f, false answers %.3f, "
	         "safety answered %.3f, coverage %.3f",
	         v[0], v[1], v[3], v[4]);
	return 0;
}

int
bot_cv_poll(struct bot *b)
{
	const char *out;
	size_t len;
	char *err, *text, *path;
	int rc;

	if (b->cv_job == NULL)
		return 1;
	if ((rc = trainer_read(b->cv_job, &err)) == 0)
		return 0;
	out = rc == 1 ? trainer_output(b->cv_job, &len, &err) : NULL;
	if (out != NULL) {
		text = xstrndup(out, len);
		if (cv_take(b, text) == 0) {
			if ((path = cv_cache_path(b)) != NULL &&
			    file_write_atomic(path, text, strlen(text), 0600) == -1)
				log_warn("cannot keep the model's figures in %s", path);
			free(path);
		} else {
			log_warnx("the model's figures: no figures in what the trainer wrote");
		}
		free(text);
	} else {
		log_warnx("cannot work out the model's figures: %s", err);
		free(err);
	}
	trainer_free(b->cv_job);
	b->cv_job = NULL;
	return 1;
}

/* Appends the model's figures and what was taught, for `!faq stats`. */
static void
cv_summary(const struct bot *b, struct buf *out)
{
	const struct bot_cv *now = &b->cv[0], *was = &b->cv[1];
	size_t taught = teach_count(b->teach);

	buf_printf(out, "- Taught by moderators: %zu message%s", taught, taught == 1 ? "" : "s");
	if (learn_near_count(b->near) > 0)
		buf_printf(out, " (%zu as safety, in effect at once)", learn_near_count(b->near));
	buf_puts(out, "\n");
	if (b->kb->model == NULL) {
		buf_puts(out, "- Learned model: none; the rules answer alone\n");
		return;
	}
	if (!now->have) {
		buf_printf(out, "- Learned model: in use; its figures are %s\n",
		           b->cv_job ? "being worked out" : "not known yet");
		return;
	}
	buf_printf(out,
	           "- Learned model, 5-fold cross-validated over %zu labelled messages (%zu "
	           "taught): safety coverage %.3f, safety answered %.3f, accuracy %.3f, false "
	           "answers %.3f, alarm rate %.3f, flag rate %.3f\n",
	           now->messages, now->taught, now->coverage, now->answered, now->accuracy,
	           now->false_answers, now->alarm_rate, now->flag_rate);
	if (was->have)
		buf_printf(out,
		           "- Before the last reload (%zu taught): safety coverage %.3f, answered "
		           "%.3f, accuracy %.3f, false answers %.3f\n",
		           was->taught, was->coverage, was->answered, was->accuracy,
		           was->false_answers);
	if (b->cv_job != NULL)
		buf_puts(out, "- (new figures are being worked out)\n");
}

/* The intent id closest to id in b's set, for "did you mean", or NULL. */
static const char *
closest_intent(const struct bot *b, const char *id)
{
	size_t i, d, best = 4;
	const char *hint = NULL;

	for (i = 0; i < b->kb->nin; i++) {
		if (b->kb->in[i].silent)
			continue;
		d = util_edit_distance(id, b->kb->in[i].id);
		if (d < best) {
			best = d;
			hint = b->kb->in[i].id;
		}
	}
	return hint;
}

/* Shows text, cut, as a Markdown quote fragment. */
static void
put_quoted(struct buf *out, const char *text)
{
	char *esc;

	response_md_escape(text, 120, &esc);
	buf_printf(out, "\"%s%s\"", esc, strlen(text) > 120 ? "…" : "");
	free(esc);
}

/*
 * Teaches text as intent (NULL or "null": no answer). Checks the intent,
 * stores the message, makes a safety label take effect at once, and says
 * what was done in out. was is what the bot answered with (may be NULL).
 */
static void
teach_one(struct bot *b, const struct tp_msg *m, const char *text, const char *label,
          const char *was, struct buf *out)
{
	const char *intent = NULL, *hint;
	int idx = -1;

	if (label != NULL && strcmp(label, "null") != 0) {
		if ((idx = kb_intent_find(b->kb, label)) < 0 || b->kb->in[idx].silent) {
			hint = closest_intent(b, label);
			buf_printf(out, "There is no intent `%s`", label);
			if (hint)
				buf_printf(out, "; did you mean `%s`?", hint);
			else
				buf_puts(out, ". Give an intent id, or `null` for no answer.");
			return;
		}
		intent = b->kb->in[idx].id;
	}
	if (teach_store(b->teach, intent, text, m->sender, now_wall()) == -1) {
		log_warn("cannot write %s", teach_path(b->teach));
		buf_puts(out, "Sorry, I could not store that (see the bot's log).");
		return;
	}
	buf_puts(out, "Taught: ");
	put_quoted(out, text);
	buf_printf(out, " → `%s`", intent ? intent : "no answer");
	if (intent != NULL && strncmp(intent, "safety.", 7) == 0) {
		near_add(b->near, intent, text);
		buf_puts(out, ". In effect now for messages close to it, and in the model at the "
		              "next reload.");
	} else {
		buf_printf(out, "; takes effect at the next reload (`%s reload`).",
		           b->cfg->command_prefix);
	}
	if (was != NULL && strncmp(was, "safety.", 7) == 0 &&
	    (intent == NULL || strncmp(intent, "safety.", 7) != 0)) {
		/* Away from safety: never at once, and on the record. */
		buf_puts(out, " It was given a safety answer: that stops only after a reload, and "
		              "the change is logged.");
		log_info("moderator %s taught a message away from safety (%s -> %s)", m->sender, was,
		         intent ? intent : "null");
	} else {
		log_info("moderator %s taught a message as %s", m->sender, intent ? intent : "null");
	}
}

/* `teach N INTENT` / `teach LINK INTENT`. */
static void
cmd_teach(struct bot *b, const struct tp_msg *m, const char *arg, struct buf *out)
{
	char what[1024], label[256];
	const struct teach_item *it;
	char *end;
	long n;

	if (sscanf(arg, "%1023s %255s", what, label) != 2) {
		buf_printf(out,
		           "Usage: `%1$s teach N INTENT` (N: a number of the last `%1$s "
		           "unanswered` list) or `%1$s teach LINK INTENT` (a link to a message "
		           "the bot answered, flagged or left unanswered); INTENT may be `null`.",
		           b->cfg->command_prefix);
		return;
	}
	n = strtol(what, &end, 10);
	if (*end == '\0') {
		if (n < 1 || (size_t)n > b->nlisted) {
			buf_printf(out, "There is no entry %s in the last `%s unanswered` list%s.",
			           what, b->cfg->command_prefix,
			           b->nlisted ? "" : " (ask for the list first)");
			return;
		}
		teach_one(b, m, b->listed[n - 1], label, NULL, out);
		return;
	}
	if ((it = teach_find(b->teach, what)) == NULL) {
		buf_puts(out, "I do not have that message (I keep the last 1,000 messages I acted "
		              "on, since I started). Teach it from the unanswered list instead.");
		return;
	}
	teach_one(b, m, it->text, label, it->intent, out);
}

/* `wrong LINK [INTENT]`: one of the bot's answers was wrong. */
static void
cmd_wrong(struct bot *b, const struct tp_msg *m, const char *arg, struct buf *out)
{
	char what[1024], label[256] = "null";
	const struct teach_item *it;

	if (sscanf(arg, "%1023s %255s", what, label) < 1) {
		buf_printf(out,
		           "Usage: `%s wrong LINK [INTENT]`: LINK is one of my answers (or the "
		           "question); INTENT the right one, if any (else I learn to stay silent).",
		           b->cfg->command_prefix);
		return;
	}
	if ((it = teach_find(b->teach, what)) == NULL || it->intent == NULL) {
		buf_puts(out, it ? "I did not answer that message." :
		                   "I do not have that message (I keep the last 1,000 messages I "
		                   "acted on, since I started).");
		return;
	}
	buf_printf(out, "Noted: my answer `%s` was wrong. ", it->intent);
	teach_one(b, m, it->text, label, it->intent, out);
}

void
bot_on_message(struct bot *b, struct transport *t, const struct tp_msg *m)
{
	struct match_result res = {0};
	struct match_opts mo;
	struct cfg_room room;
	struct bot_reply reply;
	const char *text = m->text, *rest, *cmd;
	char logbuf[256];
	int addressed = m->addressed || m->direct, which, safety = 0;
	uint64_t now = now_ms();
	char *copy = NULL, *id;
	size_t len, i;
	/* Too long to answer: only the safety check reads it. */
	int too_long = m->len > (size_t)b->cfg->mx_max_message_bytes;

	config_room(b->cfg, m->room, &room);
	/* "!faq ..." addresses the bot, and may be a moderator command (not in an edit). */
	if (!m->safety_only && !too_long && (rest = strip_prefix(b, text)) != NULL) {
		addressed = 1;
		if (m->edit == TP_EDIT_NONE && (cmd = command_of(rest, &rest)) != NULL) {
			/* Refusals count against the flood limits like any reply but safety. */
			if (!is_moderator(b, t, m->sender)) {
				log_info("%s: refused command \"%s\" from %s", t->name, cmd,
				         m->sender);
				if (may_reply(b, t, m, now))
					send_markdown(b, t, m,
					              "Sorry, only moderators can use faqbot's "
					              "commands.",
					              "refusal");
			} else if (strcmp(m->room, b->cfg->moderator_room) != 0 && !m->direct) {
				if (may_reply(b, t, m, now))
					send_markdown(b, t, m,
					              "Moderator commands work in the moderator room "
					              "only.",
					              "refusal");
			} else if (may_reply(b, t, m, now)) {
				log_info("%s: command \"%s\" from %s", t->name, cmd, m->sender);
				run_command(b, t, m, cmd, rest);
			}
			goto out;
		}
		text = rest;
	}
	/* Text after a NUL is read too: it separates words like a space. */
	len = m->len - (size_t)(text - m->text);
	copy = xstrndup(text, len);
	for (i = 0; i < len; i++)
		if (copy[i] == '\0')
			copy[i] = ' ';
	bot_match_opts(b->cfg, &room, &mo, b->names, NELEM(b->names));
	mo.near = b->near;
	log_debug("%s: message %s in %s from %s: %s", t->name, m->event_id ? m->event_id : "-",
	          m->room, m->sender, log_chat(copy, logbuf, sizeof(logbuf)));
	if (!too_long) {
		match_run(b->mctx, b->kb, &mo, copy, len, &res, NULL);
		safety = res.intent && bot_is_safety(res.intent);
		if (res.text_flags & TEXT_TO_BOT)
			addressed = 1;
	}
	/* What the normaliser did not reach is read in windows, for safety only. */
	if (!safety && (too_long || (res.text_flags & TEXT_TRUNCATED))) {
		safety = safety_in_windows(b, &mo, copy, len, &res);
		/* Not in danger: the whole message's result (and the context's) again. */
		if (!safety && !too_long)
			match_run(b->mctx, b->kb, &mo, copy, len, &res, NULL);
	}

	/* Kept a while (redacted), so that moderators can teach from it. */
	if (!too_long && (res.intent || res.flag || addressed))
		teach_remember(b->teach, m->event_id, m->room, copy, res.intent ? res.intent->id : NULL,
		               res.by, res.flag);
	/* Safety first: every room, whatever its mode, pause or limits. */
	if (safety) {
		answer_safety(b, t, m, &room, &res, now);
		goto out;
	}
	/* The model is not sure enough to answer: the moderators read it. */
	if (res.flag)
		flag_moderators(b, t, m, res.p_safety);
	if (too_long) {
		log_info("%s: a %zu-byte message in %s is over matrix.max_message_bytes: checked "
		         "for safety only",
		         t->name, m->len, m->room);
		goto out;
	}
	if (m->safety_only) {
		log_debug("%s: private message from %s: no safety answer needed, and other "
		          "answers are off in private messages",
		          t->name, m->sender);
		goto out;
	}
	/* An edit of a message that got its reply: only safety could add to it. */
	if (m->edit == TP_EDIT_ANSWERED)
		goto out;
	if (room.paused || policy_paused(b->policy, m->room))
		goto out;
	/* "1" or "2" after "did you mean". */
	if ((which = choice_number(match_normalised(b->mctx))) != 0 &&
	    (id = policy_choice_take(b->policy, m->room, m->sender, which, now)) != NULL) {
		int idx = kb_intent_find(b->kb, id);

		free(id);
		if (idx >= 0 && may_reply(b, t, m, now))
			answer_intent(b, t, m, &room, &b->kb->in[idx], NULL, now);
		goto out;
	}
	if (room.answer == CFG_ANSWER_MENTION && !addressed)
		goto out;
	if (res.intent == NULL && !addressed)
		goto out;
	if (res.intent == NULL && (res.silenced_by || (res.text_flags & TEXT_TO_MEMBER)))
		goto out;
	if (!may_reply(b, t, m, now))
		goto out;
	if (res.intent == NULL) {
		/* Addressed like an answer: IRC's "nick: " prefix, Matrix's mention. */
		send_markdown_to(b, t, m, b->cfg->fallback, "fallback", REPLY_MENTION);
		stats_unanswered(b->stats);
		b->dirty = 1;
		/* A private message's room names the person: it is logged hashed. */
		if (unanswered_append(b->state_dir, m->direct ? NULL : m->room, m->sender, b->salt,
		                      copy, now_wall()) == -1)
			log_warn("cannot append to the unanswered log");
		log_info("%s: no answer for an addressed question in %s (logged)", t->name,
		         m->room);
		goto out;
	}
	if (res.ambiguous) {
		bot_compose(b->kb, b->cfg, &res, &room, m->sender_name, addressed, 0, &reply);
		if (reply.kind == BOT_CHOICE) {
			send_reply(b, t, m, &reply.text, "choice",
			           REPLY_MENTION | (reply.named ? REPLY_NAMED : 0));
			policy_choice_open(b->policy, m->room, m->sender, reply.choice[0]->id,
			                   reply.choice[1]->id, now);
			stats_choice(b->stats);
			b->dirty = 1;
			log_info("%s: asked \"did you mean\" %s or %s in %s", t->name,
			         reply.choice[0]->id, reply.choice[1]->id, m->room);
			bot_reply_free(&reply);
			goto out;
		}
		bot_reply_free(&reply);
	}
	answer_intent(b, t, m, &room, res.intent, &res, now);
out:
	free(copy);
}
