/* missing.c - ids the API said do not exist: a bounded negative cache. */
#include "missing.h"
#include "lock.h"

#include <stdio.h>
#include <string.h>

/* 4096 slots of 80 bytes: 320 KiB at most, touched only as ids come. */
#define MISSING_SLOTS 4096

static struct {
	char id[72];
	long long until_ms;
} slots[MISSING_SLOTS];

static unsigned slot_of(const char *id)
{
	unsigned h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % MISSING_SLOTS;
}

void missing_add_locked(const char *id, long long until_ms)
{
	unsigned s = slot_of(id);

	snprintf(slots[s].id, sizeof(slots[s].id), "%s", id);
	slots[s].until_ms = until_ms;
}

int missing_has_locked(const char *id, long long now_ms)
{
	unsigned s = slot_of(id);

	return slots[s].until_ms > now_ms && strcmp(slots[s].id, id) == 0;
}
