/*
 * evsub_print.c: streaming mode, evsub without a command. Each event is
 * written to stdout, as its JSON line or through -F FORMAT, and flushed; it
 * counts as handled once written.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "evsub.h"

/* %i %t %T %s print the values as plain text; %p and %j print compact
 * JSON. */
static void
put_format(const char *fmt, const struct event_info *ei)
{
	const char *p;

	for (p = fmt; *p != '\0'; p++) {
		if (*p != '%' || p[1] == '\0') {
			putchar(*p);
			continue;
		}
		switch (*++p) {
		case 'i': fputs(ei->id, stdout); break;
		case 't': fputs(ei->type, stdout); break;
		case 'T': fputs(ei->time, stdout); break;
		case 's': fputs(ei->source, stdout); break;
		case 'p':
			fwrite(ei->text + ei->payload_off, 1, ei->payload_len,
			    stdout);
			break;
		case 'j': fwrite(ei->text, 1, ei->len, stdout); break;
		case '%': putchar('%'); break;
		default: putchar('%'); putchar(*p); break;
		}
	}
}

int
print_event(const struct evsub_opts *o, const struct event_info *ei)
{
	if (o->format != NULL)
		put_format(o->format, ei);
	else if (o->payload_only)
		fwrite(ei->text + ei->payload_off, 1, ei->payload_len, stdout);
	else
		fwrite(ei->text, 1, ei->len, stdout);
	putchar(o->nul ? '\0' : '\n');
	if (fflush(stdout) == EOF || ferror(stdout)) {
		if (errno == 0)
			errno = EIO;
		return -1;
	}
	return 0;
}
