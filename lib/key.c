/*
 * key.c: UUIDv7 keys (RFC 9562) and clocks.
 *
 * Every event gets a key when it is published. The key names the event's
 * file in the log and in every queue, and since a UUIDv7 in text form sorts
 * by time, the order of names in a queue is the order of publishing. The
 * layout used (RFC 9562 section 6.2, method 3) is 48 bits of Unix
 * milliseconds, then 12 bits of sub-millisecond fraction in rand_a, so keys
 * from different processes order to about a quarter of a microsecond; the
 * remaining 62 bits are random, so keys from different processes and hosts
 * do not collide.
 *
 * Within one process keys are strictly increasing even if the clock steps
 * back: the 60-bit timestamp never goes below the last one plus one.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

int64_t
ev_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
ev_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
ev_time_rfc3339(char out[EV_TIMEBUF])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, EV_TIMEBUF, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
	    (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000) % 1000000);
}

void
ev_time_rfc3339_ms(int64_t ms, char out[EV_TIMEBUF])
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	snprintf(out, EV_TIMEBUF, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* splitmix64: the random bits need to be unpredictable across processes,
 * which the getrandom() seed gives, not cryptographic per key. */
static uint64_t rng_state;
static pid_t rng_pid;
static uint64_t last_stamp;   /* 48-bit ms << 12 | 12-bit fraction */

static uint64_t
rng_next(void)
{
	uint64_t z;

	if (rng_pid != getpid()) {
		/* Seed again after fork, so a child never repeats its parent. */
		if (getrandom(&rng_state, sizeof rng_state, 0) !=
		    (ssize_t)sizeof rng_state)
			rng_state ^= (uint64_t)time(NULL) ^
			    ((uint64_t)getpid() << 32);
		rng_pid = getpid();
	}
	z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
ev_key_new(char out[EV_KEY_LEN + 1])
{
	struct timespec ts;
	uint64_t ms, frac, stamp, rnd;
	unsigned char b[16];
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	frac = ((uint64_t)(ts.tv_nsec % 1000000) * 4096) / 1000000;
	stamp = (ms << 12) | frac;
	if (stamp <= last_stamp)
		stamp = last_stamp + 1;
	last_stamp = stamp;
	rnd = rng_next();

	for (i = 0; i < 6; i++)
		b[i] = (unsigned char)(stamp >> (12 + 8 * (5 - i)));
	b[6] = (unsigned char)(0x70 | ((stamp >> 8) & 0x0f));
	b[7] = (unsigned char)(stamp & 0xff);
	b[8] = (unsigned char)(0x80 | ((rnd >> 56) & 0x3f));
	for (i = 9; i < 16; i++)
		b[i] = (unsigned char)(rnd >> (8 * (15 - i)));
	snprintf(out, EV_KEY_LEN + 1,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
	    b[10], b[11], b[12], b[13], b[14], b[15]);
}

int
ev_key_valid(const char *name)
{
	int i;

	for (i = 0; i < EV_KEY_LEN; i++) {
		char c = name[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return 0;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return 0;
		}
	}
	return name[EV_KEY_LEN] == '\0' && name[14] == '7';
}

int64_t
ev_key_time_ms(const char *key)
{
	int64_t ms = 0;
	int i;

	for (i = 0; i < 13; i++) {
		char c = key[i];

		if (c == '-')
			continue;
		ms = ms * 16 + (c <= '9' ? c - '0' : c - 'a' + 10);
	}
	return ms;
}
