/*
 * Unit tests for policy.c: the flood limits and the one notice per stretch
 * of being held back, and the memory of safety messages: one answer and
 * one alert per sender, room and intent within the window, the repeats
 * counted into follow-up alerts that come at most every alert_every_s.
 * Time is passed in, so nothing here sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "policy.h"
#include "util.h"

#define MIN_MS 60000ULL

static void
test_limit_notice_once_per_stretch(void **state)
{
	struct policy *p = policy_new(2, 100, 0, 60);
	uint64_t t = 1000000;
	int i, allowed = 0, told = 0;

	(void)state;
	check_begin();
	for (i = 0; i < 6; i++) {
		if (policy_allow(p, "!r", "@a", t))
			allowed++;
		else
			told += policy_limit_notice(p, "@a", t);
	}
	CHECK(allowed == 2, "%d answers let through, want 2", allowed);
	CHECK(told == 1, "told %d times, want once", told);
	/* Someone else is not held back, and is not told. */
	CHECK(policy_allow(p, "!r", "@b", t) == 1, "another user is answered");
	/* A minute later the limit has refilled: answered again, and a new stretch. */
	t += MIN_MS;
	CHECK(policy_allow(p, "!r", "@a", t) == 1, "answered after the refill");
	CHECK(policy_allow(p, "!r", "@a", t) == 1, "answered after the refill (2)");
	CHECK(policy_allow(p, "!r", "@a", t) == 0, "held back again");
	CHECK(policy_limit_notice(p, "@a", t) == 1, "told again in the new stretch");
	CHECK(policy_limit_notice(p, "@a", t) == 0, "but only once");
	policy_free(p);
	CHECK_END();
}

static void
test_room_limit_is_not_the_users_fault(void **state)
{
	struct policy *p = policy_new(100, 1, 0, 60);
	uint64_t t = 5000;

	(void)state;
	check_begin();
	CHECK(policy_allow(p, "!r", "@a", t) == 1, "first in the room");
	CHECK(policy_allow(p, "!r", "@b", t) == 0, "the room is full");
	CHECK(policy_limit_notice(p, "@b", t) == 0, "@b is not told about the room's limit");
	policy_free(p);
	CHECK_END();
}

static void
test_safety_once_then_counted_then_followed_up(void **state)
{
	struct policy *p = policy_new(5, 20, 0, 60);
	struct policy_followup f;
	unsigned long before = 99;
	uint64_t t = 10 * MIN_MS;
	int i;

	(void)state;
	check_begin();
	policy_set_safety(p, 300, 60);
	CHECK(policy_safety_seen(p, "!r", "@a", "safety.crisis", "$1", t, &before) ==
	          POLICY_SAFETY_NEW,
	      "the first is answered");
	CHECK(before == 0, "nothing before the first (%lu)", before);
	for (i = 0; i < 299; i++)
		CHECK(policy_safety_seen(p, "!r", "@a", "safety.crisis", "$2", t + 10, &before) ==
		          POLICY_SAFETY_REPEAT,
		      "repeat %d is counted only", i);
	/* Another intent, another room, another person: each answered. */
	CHECK(policy_safety_seen(p, "!r", "@a", "safety.emergency", "$3", t, &before) ==
	          POLICY_SAFETY_NEW,
	      "an emergency after a crisis is answered");
	CHECK(policy_safety_seen(p, "!other", "@a", "safety.crisis", "$4", t, &before) ==
	          POLICY_SAFETY_NEW,
	      "the same person in another room is answered");
	CHECK(policy_safety_seen(p, "!r", "@b", "safety.crisis", "$5", t, &before) ==
	          POLICY_SAFETY_NEW,
	      "another person is answered");
	CHECK(policy_safety_due(p, t + 30000, &f) == 0, "no follow-up before alert_every_s");
	CHECK(policy_safety_due(p, t + 60000, &f) == 1, "a follow-up after alert_every_s");
	CHECK(f.more == 299, "it counts %lu messages, want 299", f.more);
	CHECK_STR(f.room, "!r", "its room");
	CHECK_STR(f.sender, "@a", "its sender");
	CHECK_STR(f.intent, "safety.crisis", "its intent");
	CHECK_STR(f.event_id, "$2", "it links the latest message");
	CHECK(policy_safety_due(p, t + 60000, &f) == 0, "one follow-up only");
	/* One more: the next follow-up waits alert_every_s after the last one. */
	CHECK(policy_safety_seen(p, "!r", "@a", "safety.crisis", "$6", t + 61000, &before) ==
	          POLICY_SAFETY_REPEAT,
	      "still inside the window");
	CHECK(policy_safety_due(p, t + 100000, &f) == 0, "not yet");
	CHECK(policy_safety_due(p, t + 120000, &f) == 1 && f.more == 1, "one more message");
	/* After the window the person is answered (and alerted) again. */
	CHECK(policy_safety_seen(p, "!r", "@a", "safety.crisis", "$7", t + 300000, &before) ==
	          POLICY_SAFETY_NEW,
	      "answered again after the window");
	CHECK(before == 0, "nothing left unreported (%lu)", before);
	policy_free(p);
	CHECK_END();
}

static void
test_safety_memory_is_bounded(void **state)
{
	struct policy *p = policy_new(5, 20, 0, 60);
	unsigned long before;
	char who[32];
	int i, news = 0;

	(void)state;
	check_begin();
	/* Far more senders than are remembered: each is still answered once. */
	for (i = 0; i < 5000; i++) {
		snprintf(who, sizeof(who), "@u%d", i);
		news += policy_safety_seen(p, "!r", who, "safety.crisis", NULL, 1000 + (uint64_t)i,
		                           &before) == POLICY_SAFETY_NEW;
	}
	CHECK(news == 5000, "%d of 5000 senders answered", news);
	policy_free(p);
	CHECK_END();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_limit_notice_once_per_stretch),
	    cmocka_unit_test(test_room_limit_is_not_the_users_fault),
	    cmocka_unit_test(test_safety_once_then_counted_then_followed_up),
	    cmocka_unit_test(test_safety_memory_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
