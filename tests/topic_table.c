/*
 * topic_table.c: table-driven checks of the library's pure functions:
 * type and pattern validation, pattern matching, subscription names, ids,
 * durations and keys. Prints a TAP line per case; exits 1 if any failed.
 * Run by tests/library.bats.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "evspool.h"

static int failures, cases;

static void
check(int ok, const char *what, const char *a, const char *b)
{
	cases++;
	if (!ok)
		failures++;
	printf("%s %d - %s '%s'%s%s%s\n", ok ? "ok" : "not ok", cases, what, a,
	    b ? " '" : "", b ? b : "", b ? "'" : "");
}

static const struct { const char *pattern, *type; int match; } matches[] = {
	{ "a", "a", 1 },
	{ "a", "b", 0 },
	{ "a.b", "a.b", 1 },
	{ "a.b", "a.b.c", 0 },
	{ "a.*", "a.b", 1 },
	{ "a.*", "a", 0 },
	{ "a.*", "a.b.c", 0 },
	{ "*", "a", 1 },
	{ "*", "a.b", 0 },
	{ "#", "a", 1 },
	{ "#", "a.b.c.d", 1 },
	{ "a.#", "a", 1 },
	{ "a.#", "a.b", 1 },
	{ "a.#", "a.b.c", 1 },
	{ "a.#", "b.a", 0 },
	{ "#.a", "a", 1 },
	{ "#.a", "x.y.a", 1 },
	{ "#.a", "a.x", 0 },
	{ "a.#.b", "a.b", 1 },
	{ "a.#.b", "a.x.b", 1 },
	{ "a.#.b", "a.x.y.b", 1 },
	{ "a.#.b", "a.x.y", 0 },
	{ "a.#.b", "b.a.b", 0 },
	{ "*.*", "a.b", 1 },
	{ "*.*", "a", 0 },
	{ "#.#", "a", 1 },
	{ "#.*", "a", 1 },
	{ "*.#", "a", 1 },
	{ "*.#.*", "a", 0 },
	{ "*.#.*", "a.b", 1 },
	{ "#.b.#", "a.b.c", 1 },
	{ "#.b.#", "b", 1 },
	{ "#.b.#", "a.c", 0 },
	{ "user.*", "user.created", 1 },
	{ "user.*", "users.created", 0 },
	{ "User.created", "user.created", 0 },
	{ "a-b.c_d", "a-b.c_d", 1 },
	{ "#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.x", "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.y", 0 },
};

static const struct { const char *text; int type_ok, pattern_ok; } names[] = {
	{ "a", 1, 1 },
	{ "user.created", 1, 1 },
	{ "A-Z_0-9.x", 1, 1 },
	{ "", 0, 0 },
	{ ".", 0, 0 },
	{ "a.", 0, 0 },
	{ ".a", 0, 0 },
	{ "a..b", 0, 0 },
	{ "a/b", 0, 0 },
	{ "../etc", 0, 0 },
	{ "a b", 0, 0 },
	{ "a\nb", 0, 0 },
	{ "caf\xc3\xa9", 0, 0 },
	{ "*", 0, 1 },
	{ "#", 0, 1 },
	{ "a.*.b", 0, 1 },
	{ "a.#", 0, 1 },
	{ "a.b*", 0, 0 },
	{ "a.*b", 0, 0 },
	{ "a.**", 0, 0 },
	{ "a.#*", 0, 0 },
	{ "a;rm -rf", 0, 0 },
	{ "$(id)", 0, 0 },
};

static const struct { const char *text; long long ms; } durations[] = {
	{ "250ms", 250 }, { "30s", 30000 }, { "5m", 300000 },
	{ "1h", 3600000 }, { "2d", 172800000 }, { "1h30m", 5400000 },
	{ "0s", 0 }, { "10", 10000 }, { "", -1 }, { "s", -1 }, { "5x", -1 },
	{ "-5s", -1 }, { "1.5s", -1 }, { "5 s", -1 }, { "10ms5", -1 },
	{ "99999999999999999999s", -1 }, { "9223372036854775807d", -1 },
};

int
main(void)
{
	char long_type[260], key[EV_KEY_LEN + 1], prev[EV_KEY_LEN + 1], buf[64];
	const char *why;
	size_t i;
	int64_t ms;

	for (i = 0; i < sizeof matches / sizeof matches[0]; i++)
		check(ev_pattern_match(matches[i].pattern, matches[i].type) ==
		    matches[i].match, matches[i].match ? "matches" : "does not match",
		    matches[i].pattern, matches[i].type);
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		check((ev_type_valid(names[i].text, &why) == 0) ==
		    names[i].type_ok, names[i].type_ok ? "valid type" :
		    "invalid type", names[i].text, NULL);
		check((ev_pattern_valid(names[i].text, &why) == 0) ==
		    names[i].pattern_ok, names[i].pattern_ok ? "valid pattern" :
		    "invalid pattern", names[i].text, NULL);
	}
	memset(long_type, 'a', 200);
	long_type[200] = '\0';
	check(ev_type_valid(long_type, &why) == 0, "200-byte type is valid",
	    "aaa...", NULL);
	long_type[200] = 'a';
	long_type[201] = '\0';
	check(ev_type_valid(long_type, &why) != 0, "201-byte type is invalid",
	    "aaa...", NULL);
	check(ev_name_valid("billing", &why) == 0, "valid name", "billing", NULL);
	check(ev_name_valid("-x", &why) != 0, "invalid name", "-x", NULL);
	check(ev_name_valid(".x", &why) != 0, "invalid name", ".x", NULL);
	check(ev_name_valid("a/b", &why) != 0, "invalid name", "a/b", NULL);
	check(ev_id_valid("order-42:v1", &why) == 0, "valid id", "order-42:v1",
	    NULL);
	check(ev_id_valid("../x", &why) != 0, "invalid id", "../x", NULL);
	check(ev_id_valid("a b", &why) != 0, "invalid id", "a b", NULL);
	for (i = 0; i < sizeof durations / sizeof durations[0]; i++) {
		int rc = ev_duration_parse(durations[i].text, &ms);

		check(durations[i].ms < 0 ? rc != 0 : rc == 0 &&
		    ms == durations[i].ms, "duration", durations[i].text, NULL);
	}
	ev_duration_format(192000, buf, sizeof buf);
	check(strcmp(buf, "3m12s") == 0, "formats 192000 ms as", buf, "3m12s");
	ev_duration_format(450, buf, sizeof buf);
	check(strcmp(buf, "450ms") == 0, "formats 450 ms as", buf, "450ms");
	ev_key_new(prev);
	check(ev_key_valid(prev), "new key is valid", prev, NULL);
	for (i = 0; i < 100000; i++) {
		ev_key_new(key);
		if (strcmp(prev, key) >= 0 || !ev_key_valid(key))
			break;
		memcpy(prev, key, sizeof key);
	}
	check(i == 100000, "100000 keys strictly increase", key, NULL);
	check(!ev_key_valid("0190a3c8-7e2f-7000-8000-00000000000G"),
	    "invalid key", "...G", NULL);
	check(!ev_key_valid("../../../../etc/passwd"), "invalid key",
	    "../../../../etc/passwd", NULL);
	check(ev_now_ms() - ev_key_time_ms(key) < 60000 &&
	    ev_key_time_ms(key) <= ev_now_ms(), "key carries its time", key, NULL);
	printf("1..%d\n", cases);
	return failures ? 1 : 0;
}
