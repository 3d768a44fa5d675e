/*
 * From a match to a reply: the response, its review state, rendering with
 * the room's disclaimer and contacts, the "did you mean" choice, and the
 * fallback. See bot.h.
 */
#include "bot.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

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
