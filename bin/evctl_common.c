/*
 * evctl_common.c: what several evctl subcommands need: option parsing,
 * finding subscriptions and events, listing keys, printing.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evctl.h"
#include "tool.h"

/* Is NAME one of the comma-separated words of ALLOWED? A whole word: "e"
 * must not be found inside "since". */
static int
allowed_in(const char *allowed, const char *name)
{
	size_t len = strlen(name);
	const char *p;

	for (p = allowed; (p = strstr(p, name)) != NULL; p += len)
		if ((p == allowed || p[-1] == ',') &&
		    (p[len] == '\0' || p[len] == ','))
			return 1;
	return 0;
}

void
ctl_parse(struct ctl *ctl, int *argc, char ***argv, const char *allowed,
    struct ctl_args *a)
{
	enum { OPT_JSON = 256, OPT_SINCE, OPT_FROM, OPT_GROUP };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "event", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	const char *why, *name;
	int opt;

	memset(a, 0, sizeof *a);
	a->since_ms = -1;
	/* getopt wants the subcommand's name in argv[0]. */
	(*argv)--;
	(*argc)++;
	/* 0, not 1: glibc then reads the option string afresh. With 1 it
	 * keeps the "+" (stop at the first operand) of evctl's own options,
	 * and "evctl show ID --json" would take --json for an operand. */
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(*argc, *argv, ":e:", longopts, NULL)) != -1) {
		name = opt == OPT_JSON ? "json" : opt == OPT_SINCE ? "since" :
		    opt == OPT_FROM ? "from" : opt == OPT_GROUP ? "group" :
		    opt == 'e' ? "e" : NULL;
		if (name == NULL)
			tool_bad_option(opt == ':' ? ':' : '?', NULL, *argv);
		/* Named here, not by tool_bad_option(): after an option with
		 * a value, argv[optind - 1] is the value, not the option. */
		if (!allowed_in(allowed, name))
			tool_exit(EX_USAGE, "%s takes no option '%s%s' (see "
			    "evctl --help)", (*argv)[0], name[1] ? "--" : "-",
			    name);
		switch (opt) {
		case OPT_JSON: a->json = ctl->json = 1; break;
		case OPT_SINCE:
			if (ev_duration_parse(optarg, &a->since_ms) < 0)
				tool_exit(EX_USAGE, "bad duration '%s' for --since "
				    "(use 30s, 5m, 1h, 2d)", optarg);
			break;
		case OPT_FROM: a->from = optarg; break;
		case OPT_GROUP: a->group = optarg; break;
		case 'e':
			if (ev_pattern_valid(optarg, &why) != 0)
				tool_exit(EX_USAGE, "invalid pattern '%s': %s",
				    optarg, why);
			a->pattern = optarg;
			break;
		}
	}
	*argc -= optind;
	*argv += optind;
}

const struct ev_spool_sub *
ctl_find_sub(struct ctl *ctl, const char *name, struct ev_spool_sub **list,
    int *n)
{
	struct ev_err err = { 0 };
	const char *why;
	int i;

	if (ev_name_valid(name, &why) != 0)
		tool_exit(EX_USAGE, "invalid subscription name '%s': %s", name,
		    why);
	if (ev_spool_subs(ctl->bus, list, n, &err))
		tool_die(&err);
	for (i = 0; i < *n; i++)
		if (strcmp((*list)[i].name, name) == 0)
			return &(*list)[i];
	tool_exit(EX_NOINPUT, "no subscription '%s'", name);
}

int
ctl_sub_dir(struct ctl *ctl, const struct ev_spool_sub *s, const char *part)
{
	char path[EV_NAME_MAX + 48];
	int fd;

	snprintf(path, sizeof path, "%s/%s", s->dir, part);
	fd = openat(ev_spool_dirfd(ctl->bus, ""), path, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		tool_exit(EX_IOERR, "cannot open %s: %s", path, strerror(errno));
	return fd;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **
ctl_keys(int dirfd, size_t *count)
{
	struct dirent *de;
	char **keys = NULL, **more;
	size_t n = 0, cap = 0;
	DIR *d;

	if ((d = ev_opendir_at(dirfd)) == NULL)
		tool_exit(EX_IOERR, "cannot list directory: %s", strerror(errno));
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!ev_key_valid(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			if ((more = realloc(keys, cap * sizeof *more)) == NULL)
				tool_exit(EX_OSERR, "out of memory");
			keys = more;
		}
		if ((keys[n++] = strdup(de->d_name)) == NULL)
			tool_exit(EX_OSERR, "out of memory");
	}
	closedir(d);
	if (n > 0)
		qsort(keys, n, sizeof *keys, by_name);
	*count = n;
	return keys;
}

void
ctl_keys_free(char **keys, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		free(keys[i]);
	free(keys);
}

long
ctl_count(int dirfd, char oldest[EV_KEY_LEN + 1])
{
	struct dirent *de;
	long n = 0;
	DIR *d;

	oldest[0] = '\0';
	if ((d = ev_opendir_at(dirfd)) == NULL)
		tool_exit(EX_IOERR, "cannot list directory: %s", strerror(errno));
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!ev_key_valid(de->d_name))
			continue;
		n++;
		if (oldest[0] == '\0' || strcmp(de->d_name, oldest) < 0)
			memcpy(oldest, de->d_name, EV_KEY_LEN + 1);
	}
	closedir(d);
	return n;
}

static char *
read_text(int dirfd, const char *name, size_t *len)
{
	char *text;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (ev_read_fd(fd, 64 * 1024 * 1024, &text, len) < 0)
		text = NULL;
	close(fd);
	return text;
}

json_t *
ctl_read_json(int dirfd, const char *name)
{
	char *text;
	size_t len;
	json_t *v;

	if ((text = read_text(dirfd, name, &len)) == NULL)
		return NULL;
	v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	free(text);
	if (v != NULL && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

json_t *
ctl_read_event(int dirfd, const char *name, char **raw)
{
	struct ev_envelope env;
	struct ev_err err = { 0 };
	char *text;
	size_t len;
	json_t *ev;

	if ((text = read_text(dirfd, name, &len)) == NULL)
		return NULL;
	if (ev_envelope_parse(text, len, &env, &err) != 0) {
		free(text);
		return NULL;
	}
	ev = json_object();
	json_object_set_new(ev, "id", json_string(env.id));
	json_object_set_new(ev, "type", json_string(env.type));
	json_object_set_new(ev, "time", json_string(env.time));
	if (env.source != NULL)
		json_object_set_new(ev, "source", json_string(env.source));
	if (env.causationid != NULL)
		json_object_set_new(ev, "causationid",
		    json_string(env.causationid));
	if (env.correlationid != NULL)
		json_object_set_new(ev, "correlationid",
		    json_string(env.correlationid));
	if (env.subscription != NULL)
		json_object_set_new(ev, "subscription",
		    json_string(env.subscription));
	ev_envelope_free(&env);
	if (raw != NULL) {
		while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
			text[--len] = '\0';
		*raw = text;
	} else {
		free(text);
	}
	return ev;
}

void
ctl_find_event(struct ctl *ctl, const char *id, char key[EV_KEY_LEN + 1])
{
	int logfd = ev_spool_dirfd(ctl->bus, "log");
	int idsfd = ev_spool_dirfd(ctl->bus, "ids");
	struct dirent *de;
	struct stat st;
	const char *why;
	DIR *d;

	if (ev_key_valid(id) && faccessat(logfd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		memcpy(key, id, EV_KEY_LEN + 1);
		return;
	}
	if (ev_id_valid(id, &why) != 0)
		tool_exit(EX_USAGE, "invalid event id '%s': %s", id, why);
	/* A caller-chosen id: ids/ID is a link of log/KEY; find the name
	 * with the same inode. */
	if (fstatat(idsfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (d = ev_opendir_at(logfd)) != NULL) {
		rewinddir(d);
		while ((de = readdir(d)) != NULL) {
			if (de->d_ino == st.st_ino && ev_key_valid(de->d_name)) {
				memcpy(key, de->d_name, EV_KEY_LEN + 1);
				closedir(d);
				return;
			}
		}
		closedir(d);
	}
	tool_exit(EX_NOINPUT, "no event '%s' in the log", id);
}

const char *
ctl_where(struct ctl *ctl, const struct ev_spool_sub *s, const char *key,
    json_t **state)
{
	static const struct { const char *dir, *what; } places[] = {
		{ "queue", "queued" }, { "cur", "in flight" },
		{ "retry", "retrying" }, { "dead", "dead" },
	};
	char path[EV_NAME_MAX + EV_KEY_LEN + 48];
	int spoolfd = ev_spool_dirfd(ctl->bus, ""), fd;
	size_t i;

	if (state != NULL) {
		snprintf(path, sizeof path, "%s/state", s->dir);
		fd = openat(spoolfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		*state = fd >= 0 ? ctl_read_json(fd, key) : NULL;
		if (fd >= 0)
			close(fd);
	}
	for (i = 0; i < sizeof places / sizeof places[0]; i++) {
		snprintf(path, sizeof path, "%s/%s/%s", s->dir, places[i].dir, key);
		if (faccessat(spoolfd, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return places[i].what;
	}
	return NULL;
}

int
ctl_sub_matches(const struct ev_spool_sub *s, const char *type)
{
	int i;

	for (i = 0; i < s->npatterns; i++)
		if (ev_pattern_match(s->patterns[i], type))
			return 1;
	return 0;
}

void
ctl_print_json(json_t *value)
{
	if (json_dumpf(value, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_ENCODE_ANY) < 0 || putchar('\n') == EOF)
		tool_exit(EX_IOERR, "writing output failed");
}

const char *
ctl_age(int64_t ms, char *buf, size_t len)
{
	if (ms < 0)
		snprintf(buf, len, "-");
	else
		ev_duration_format(ms, buf, len);
	return buf;
}
