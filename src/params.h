/* params.h - what a write() to `execute` asks for.
 *
 * Three forms (README, "Semantics"): empty or whitespace only (the query's
 * defaults), a JSON object of parameters, or `name=value` lines (strings).
 */
#ifndef EXECFS_PARAMS_H
#define EXECFS_PARAMS_H

#include <stddef.h>

struct cJSON;

/* The most bytes one execute request may hold. */
#define PARAMS_MAX_INPUT (64 * 1024)

/* Parses one request. On success returns 0 and sets *params to a JSON
 * object (caller frees with cJSON_Delete) or NULL for the defaults. On bad
 * input returns -EINVAL with the reason in why. */
int params_parse(const char *data, size_t len, struct cJSON **params, char *why, size_t whylen);

/* Whether data is a JSON object cut short (no syntax error before its end,
 * within PARAMS_MAX_INPUT): the rest may come in the next write(). */
int params_incomplete(const char *data, size_t len);

/* Whether one write() that leaves a JSON object unfinished is plainly a
 * piece of a longer request: it does not end a line (os.write of parts,
 * printf without a line break), or it is a writer's full buffer (a power of
 * two from 512 bytes: stdio, Python). A line ended inside an object (`echo
 * '{"days": 3' > execute`) is not: it was meant as the whole request. */
int params_piece(const char *data, size_t len);

/* Whether data is white space only (as the request forms count it). */
int params_blank(const char *data, size_t len);

#endif
