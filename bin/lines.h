/*
 * lines.h: reading a stream line by line, knowing whether a whole line is
 * already buffered. evpub -l commits its batch when no more input is ready,
 * which stdio cannot tell.
 */
#ifndef EVSPOOL_LINES_H
#define EVSPOOL_LINES_H

#include <stddef.h>

struct lines {
	int fd;
	char *buf;
	size_t start, len, cap;   /* unread data is buf[start .. len) */
	size_t max;               /* longer lines are skipped */
	int eof, skipping;
};

void lines_init(struct lines *lr, int fd, size_t max);
/* The next line without its newline, NUL-terminated in place. Returns 1,
 * 0 at end of input, -1 on a read error (errno set), 2 for a line longer
 * than MAX, which is skipped without being held in memory. */
int lines_next(struct lines *lr, char **line, size_t *len);
/* Is more input ready now, buffered or on the descriptor? */
int lines_pending(const struct lines *lr);
void lines_free(struct lines *lr);

#endif
