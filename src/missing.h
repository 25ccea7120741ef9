/* missing.h - execution ids the API said do not exist, remembered for a
 * while in a table of fixed size (a newer id may push an older one out):
 * lookups of them send nothing meanwhile, and no object is kept for them.
 */
#ifndef EXECFS_MISSING_H
#define EXECFS_MISSING_H

/* Remembers id as missing until until_ms (http_now_ms's clock). */
void missing_add_locked(const char *id, long long until_ms);

/* Whether id is remembered as missing at now_ms. */
int missing_has_locked(const char *id, long long now_ms);

#endif
