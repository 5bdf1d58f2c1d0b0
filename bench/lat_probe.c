/*
 * lat_probe -- small helpers for bench/run, in one static binary.
 *
 *   lat_probe FILE
 *       Handler mode (run by `evsub -- lat_probe FILE`): takes the time
 *       (CLOCK_REALTIME) first thing in main, reads the event from stdin,
 *       finds its "time" member (RFC 3339, UTC, microseconds; EV_TIME if the
 *       event has none) and appends one line "ID LATENCY_US ATTEMPT" to FILE
 *       with a single O_APPEND write.  LATENCY_US is handler start minus
 *       publish time: it includes the publisher's own work after it stamped
 *       the event, the subscriber's wake-up and the handler's spawn and exec.
 *
 *   lat_probe -r N [-g GAP_US] [-i IN] [-o OUT] [-E ERR] -- CMD [ARG...]
 *       Timer mode: runs CMD N times one after the other with posix_spawnp
 *       (stdin IN or /dev/null, stdout OUT or /dev/null, stderr ERR or ours;
 *       OUT and ERR are appended to) and
 *       waits for each; sleeps GAP_US between runs (the gaps are not
 *       counted).  Fails (status 1) if a run does not exit 0.  Prints
 *       {"runs":N,"us_per_run":X,"total_us":T,"maxrss_kb":K}, K the
 *       largest peak resident set of a run (wait4's ru_maxrss).
 *
 *   lat_probe -s N FILE
 *       Spawn floor for the handler-start latency: N times, takes the time,
 *       writes an event with that time into a file, posix_spawn()s itself in
 *       handler mode (lat_probe FILE) with that file as stdin and waits for
 *       it.  FILE then holds N latencies of "spawn + exec + start" alone.
 *
 *   lat_probe -b N SRC DST
 *       Burst mode: creates N files of 200 bytes in SRC (untimed), then
 *       renames them all into DST as fast as it can.  Prints
 *       {"burst":N,"us":T,"files_per_s":R}.
 *
 *   lat_probe -P N GAP_US DIR
 *       Publisher for a hand-written consumer: N times, takes the time,
 *       writes {"id":"loop-I","time":...} into DIR/tmp/loop-I and renames
 *       it into DIR/watch/ (both must exist), then sleeps GAP_US.  A loop
 *       that runs `lat_probe FILE < DIR/watch/NAME` per file then measures
 *       the same latency as evsub's handlers do.
 *
 *   lat_probe -I DIR
 *       Idle mode: the least a waiting consumer can be: an inotify watch on
 *       DIR and a blocking read() until killed.  Its VmRSS is the floor for
 *       an idle evsub.
 *
 * Exit status: 0 ok, 1 a failed call (message on stderr), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static const char *prog = "lat_probe";

static void die(const char *call, const char *arg)
{
	fprintf(stderr, "%s: %s(%s): %s\n", prog, call, arg, strerror(errno));
	exit(1);
}

static int usage(void)
{
	fprintf(stderr,
		"usage: %s FILE\n"
		"       %s -r N [-g GAP_US] [-i IN] [-o OUT] [-E ERR] -- CMD [ARG...]\n"
		"       %s -s N FILE\n"
		"       %s -b N SRC DST\n"
		"       %s -P N GAP_US DIR\n"
		"       %s -I DIR\n", prog, prog, prog, prog, prog, prog);
	return 2;
}

static long num(const char *s, long min)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min) {
		fprintf(stderr, "%s: bad number: %s\n", prog, s);
		exit(2);
	}
	return v;
}

static int64_t mono_us(void)
{
	struct timespec t;
	if (clock_gettime(CLOCK_MONOTONIC, &t))
		die("clock_gettime", "CLOCK_MONOTONIC");
	return t.tv_sec * (int64_t)1000000 + t.tv_nsec / 1000;
}

/* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant) */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" -> microseconds since the epoch; -1 if bad */
static int64_t parse_time(const char *s)
{
	int y, mo, d, h, mi, se, n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 || n != 19)
		return -1;
	int64_t us = 0;
	const char *p = s + 19;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 6)
				us = us * 10 + (*p - '0');
		for (; digits < 6; digits++)
			us *= 10;
	}
	if (*p != 'Z')
		return -1;
	int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
	return secs * 1000000 + us;
}

static int handler(const char *file)
{
	struct timespec now;
	if (clock_gettime(CLOCK_REALTIME, &now))
		die("clock_gettime", "CLOCK_REALTIME");
	int64_t t_now = now.tv_sec * (int64_t)1000000 + now.tv_nsec / 1000;

	char buf[8192];
	size_t len = 0;
	for (;;) {
		ssize_t r = read(0, buf + len, sizeof buf - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read", "stdin");
		if (r == 0 || (len += (size_t)r) == sizeof buf - 1)
			break;
	}
	buf[len] = 0;
	/* "time" comes before "source" and "payload", the only free-text
	 * members, so the first match is the event's own */
	const char *t = strstr(buf, "\"time\":\"");
	int64_t t_pub = t ? parse_time(t + 8) : -1;
	if (t_pub < 0 && getenv("EV_TIME"))
		t_pub = parse_time(getenv("EV_TIME"));
	if (t_pub < 0) {
		fprintf(stderr, "%s: no publish time in the event\n", prog);
		return 1;
	}
	const char *id = getenv("EV_ID"), *attempt = getenv("EV_ATTEMPT");
	char line[512];
	int n = snprintf(line, sizeof line, "%s %lld %s\n", id && *id ? id : "-",
			 (long long)(t_now - t_pub), attempt && *attempt ? attempt : "-");
	if (n < 0 || (size_t)n >= sizeof line) {
		fprintf(stderr, "%s: id too long\n", prog);
		return 1;
	}
	int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open", file);
	if (write(fd, line, (size_t)n) != n)
		die("write", file);
	if (close(fd))
		die("close", file);
	return 0;
}

static int timer(long n, long gap_us, const char *in, const char *out, const char *err,
		 char **cmd)
{
	posix_spawn_file_actions_t fa;
	if (posix_spawn_file_actions_init(&fa)
	    || posix_spawn_file_actions_addopen(&fa, 0, in ? in : "/dev/null", O_RDONLY, 0)
	    || posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null",
						out ? O_WRONLY | O_APPEND | O_CREAT : O_WRONLY, 0644)
	    || (err && posix_spawn_file_actions_addopen(&fa, 2, err,
							O_WRONLY | O_APPEND | O_CREAT, 0644)))
		die("posix_spawn_file_actions", "");
	if (in && access(in, R_OK))
		die("access", in);
	struct timespec gap = { gap_us / 1000000, gap_us % 1000000 * 1000 };
	int64_t total = 0;
	long maxrss = 0;
	for (long i = 0; i < n; i++) {
		struct rusage ru;
		pid_t pid;
		int st;
		int64_t t0 = mono_us();
		int e = posix_spawnp(&pid, cmd[0], &fa, NULL, cmd, environ);
		if (e) {
			errno = e;
			die("posix_spawnp", cmd[0]);
		}
		while (wait4(pid, &st, 0, &ru) < 0)
			if (errno != EINTR)
				die("wait4", cmd[0]);
		total += mono_us() - t0;
		if (ru.ru_maxrss > maxrss)
			maxrss = ru.ru_maxrss;
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "%s: run %ld of %s: status %d\n", prog, i + 1, cmd[0], st);
			return 1;
		}
		if (gap_us && i + 1 < n)
			while (nanosleep(&gap, &gap) && errno == EINTR) {}
		gap.tv_sec = gap_us / 1000000;
		gap.tv_nsec = gap_us % 1000000 * 1000;
	}
	printf("{\"runs\":%ld,\"us_per_run\":%.1f,\"total_us\":%lld,\"maxrss_kb\":%ld}\n", n,
	       (double)total / n, (long long)total, maxrss);
	return fflush(stdout) ? 1 : 0;
}

/* An event "PREFIX-I" stamped now, as the handler mode reads it back. */
static int stamped_event(char *ev, size_t size, const char *prefix, long i)
{
	struct timespec now;
	struct tm tm;
	char stamp[32];
	if (clock_gettime(CLOCK_REALTIME, &now))
		die("clock_gettime", "CLOCK_REALTIME");
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	return snprintf(ev, size, "{\"id\":\"%s-%ld\",\"type\":\"t\",\"time\":\"%s.%06ldZ\"}\n",
			prefix, i, stamp, now.tv_nsec / 1000);
}

static int spawnlat(long n, const char *file)
{
	char self[4096], in[4200], ev[256], id[64];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl < 0)
		die("readlink", "/proc/self/exe");
	self[sl] = 0;
	snprintf(in, sizeof in, "%s.in.%ld", file, (long)getpid());
	int fd = open(in, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die("open", in);
	if (unlink(in))
		die("unlink", in);
	posix_spawn_file_actions_t fa;
	if (posix_spawn_file_actions_init(&fa) || posix_spawn_file_actions_adddup2(&fa, fd, 0))
		die("posix_spawn_file_actions", "");
	char *argv[] = { self, (char *)file, NULL };
	char *envp[] = { id, "EV_ATTEMPT=1", NULL };
	for (long i = 0; i < n; i++) {
		int len = stamped_event(ev, sizeof ev, "spawn", i);
		snprintf(id, sizeof id, "EV_ID=spawn-%ld", i);
		if (ftruncate(fd, 0) || pwrite(fd, ev, (size_t)len, 0) != len || lseek(fd, 0, SEEK_SET))
			die("write", in);
		pid_t pid;
		int st, e = posix_spawn(&pid, self, &fa, NULL, argv, envp);
		if (e) {
			errno = e;
			die("posix_spawn", self);
		}
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				die("waitpid", self);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "%s: handler run %ld: status %d\n", prog, i + 1, st);
			return 1;
		}
	}
	return 0;
}

static int burst(long n, const char *src, const char *dst)
{
	int sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		die("open", src);
	if (dfd < 0)
		die("open", dst);
	char data[200], name[64];
	memset(data, 'x', sizeof data);
	long pid = getpid();
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof name, "f%ld.%06ld", pid, i);
		int fd = openat(sfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			die("open", name);
		if (write(fd, data, sizeof data) != (ssize_t)sizeof data)
			die("write", name);
		if (close(fd))
			die("close", name);
	}
	int64_t t0 = mono_us();
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof name, "f%ld.%06ld", pid, i);
		if (renameat(sfd, name, dfd, name))
			die("rename", name);
	}
	int64_t us = mono_us() - t0;
	printf("{\"burst\":%ld,\"us\":%lld,\"files_per_s\":%.0f}\n", n, (long long)us,
	       us ? n * 1e6 / us : 0.0);
	return fflush(stdout) ? 1 : 0;
}

static int publisher(long n, long gap_us, const char *dir)
{
	char path[4096], ev[256], name[64];
	snprintf(path, sizeof path, "%s/tmp", dir);
	int tfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0)
		die("open", path);
	snprintf(path, sizeof path, "%s/watch", dir);
	int wfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wfd < 0)
		die("open", path);
	for (long i = 0; i < n; i++) {
		struct timespec gap = { gap_us / 1000000, gap_us % 1000000 * 1000 };
		int len = stamped_event(ev, sizeof ev, "loop", i);
		snprintf(name, sizeof name, "loop-%ld", i);
		int fd = openat(tfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			die("open", name);
		if (write(fd, ev, (size_t)len) != len || close(fd))
			die("write", name);
		if (renameat(tfd, name, wfd, name))
			die("rename", name);
		while (gap_us && nanosleep(&gap, &gap) && errno == EINTR) {}
	}
	return 0;
}

static int idle(const char *dir)
{
	int fd = inotify_init1(IN_CLOEXEC);
	if (fd < 0)
		die("inotify_init1", "");
	if (inotify_add_watch(fd, dir, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR) < 0)
		die("inotify_add_watch", dir);
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;)
		if (read(fd, buf, sizeof buf) < 0 && errno != EINTR)
			die("read", "inotify");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && argv[1][0] != '-')
		return handler(argv[1]);
	if (argc == 3 && !strcmp(argv[1], "-I"))
		return idle(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "-s"))
		return spawnlat(num(argv[2], 1), argv[3]);
	if (argc == 5 && !strcmp(argv[1], "-P"))
		return publisher(num(argv[2], 1), num(argv[3], 0), argv[4]);
	if (argc == 5 && !strcmp(argv[1], "-b"))
		return burst(num(argv[2], 1), argv[3], argv[4]);

	long n = -1, gap = 0;
	const char *in = NULL, *out = NULL, *err = NULL;
	int c;
	while ((c = getopt(argc, argv, "+r:g:i:o:E:")) != -1) {
		switch (c) {
		case 'r': n = num(optarg, 1); break;
		case 'g': gap = num(optarg, 0); break;
		case 'i': in = optarg; break;
		case 'o': out = optarg; break;
		case 'E': err = optarg; break;
		default: return usage();
		}
	}
	if (n < 1 || optind >= argc)
		return usage();
	return timer(n, gap, in, out, err, argv + optind);
}
