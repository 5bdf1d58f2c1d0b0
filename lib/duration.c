/*
 * duration.c: durations as people type them on a command line ("250ms",
 * "30s", "5m", "1h", "2d", sums such as "1h30m"; a bare number is seconds)
 * and as evctl prints ages ("3m12s").
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "internal.h"

int
ev_duration_parse(const char *text, int64_t *ms)
{
	const char *p = text;
	int64_t total = 0, num, unit;
	int digits;

	if (text == NULL || *text == '\0')
		return -1;
	while (*p != '\0') {
		num = 0;
		digits = 0;
		while (*p >= '0' && *p <= '9') {
			if (num > (INT64_MAX - 9) / 10)
				return -1;
			num = num * 10 + (*p++ - '0');
			digits++;
		}
		if (digits == 0)
			return -1;
		if (strncmp(p, "ms", 2) == 0) {
			unit = 1;
			p += 2;
		} else if (*p == 's') {
			unit = 1000;
			p++;
		} else if (*p == 'm') {
			unit = 60 * 1000;
			p++;
		} else if (*p == 'h') {
			unit = 3600 * 1000;
			p++;
		} else if (*p == 'd') {
			unit = 86400 * 1000;
			p++;
		} else if (*p == '\0' && p == text + digits) {
			unit = 1000;   /* a bare number alone is seconds */
		} else {
			return -1;
		}
		if (num > (INT64_MAX - total) / unit)
			return -1;
		total += num * unit;
	}
	*ms = total;
	return 0;
}

void
ev_duration_format(int64_t ms, char *buf, size_t len)
{
	static const struct { const char *name; int64_t ms; } units[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	};
	size_t i;
	int64_t first;

	if (ms < 0)
		ms = 0;
	if (ms < 1000) {
		snprintf(buf, len, "%lldms", (long long)ms);
		return;
	}
	for (i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (ms < units[i].ms)
			continue;
		first = ms / units[i].ms;
		ms -= first * units[i].ms;
		if (i + 1 < sizeof units / sizeof units[0] &&
		    ms / units[i + 1].ms > 0)
			snprintf(buf, len, "%lld%s%lld%s", (long long)first,
			    units[i].name, (long long)(ms / units[i + 1].ms),
			    units[i + 1].name);
		else
			snprintf(buf, len, "%lld%s", (long long)first,
			    units[i].name);
		return;
	}
}
