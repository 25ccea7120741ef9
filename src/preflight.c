/* preflight.c - what is wrong before mounting, said plainly. */
#include "preflight.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int looks_like_source(const char *s)
{
	return strcmp(s, "dune") == 0 || strncmp(s, "dune:", 5) == 0 || strncmp(s, "redash:", 7) == 0;
}

int preflight_order(const char *source, const char *mountpoint)
{
	struct stat st;

	if (!looks_like_source(source) && looks_like_source(mountpoint) &&
	    (source[0] == '/' || source[0] == '.' || (stat(source, &st) == 0 && S_ISDIR(st.st_mode)))) {
		fprintf(stderr, "execfs: SOURCE comes first, then MOUNTPOINT: execfs [OPTIONS] %s %s\n",
			mountpoint, source);
		return -1;
	}
	return 0;
}

/* The last mount on path in this namespace: its type and source, or "". */
static void mount_at(const char *path, char *type, size_t typelen, char *source, size_t srclen)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	type[0] = source[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char point[PATH_MAX], fstype[256], src[1024];
		const char *dash = strstr(line, " - ");

		/* id parent major:minor root mountpoint ... - type source options */
		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 ||
		    sscanf(dash + 3, "%255s %1023s", fstype, src) != 2)
			continue;
		if (strcmp(point, path) == 0) { /* (mountinfo escapes spaces as \040) */
			snprintf(type, typelen, "%s", fstype);
			snprintf(source, srclen, "%s", src);
		}
	}
	fclose(f);
}

int preflight_mountpoint(const char *mountpoint, int nonempty)
{
	char path[PATH_MAX], type[256], source[1024];
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int empty = 1;

	if (!realpath(mountpoint, path)) {
		if (errno == ENOTCONN) {
			fprintf(stderr, "execfs: %s is a dead mount (its daemon is gone): "
					"fusermount3 -uz %s, then mount again\n", mountpoint, mountpoint);
		} else {
			fprintf(stderr, "execfs: mountpoint %s: %s%s\n", mountpoint, strerror(errno),
				errno == ENOENT ? " (create it first: mkdir -p MOUNTPOINT)" : "");
		}
		return -1;
	}
	mount_at(path, type, sizeof(type), source, sizeof(source));
	if (strcmp(type, "autofs") == 0)
		return 0; /* systemd's automount: it is mounting us */
	if (strncmp(type, "fuse", 4) == 0) {
		fprintf(stderr, "execfs: %s is already mounted (%s, %s): unmount it first "
				"(fusermount3 -u %s)\n", mountpoint, source, type, mountpoint);
		return -1;
	}
	if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "execfs: mountpoint %s is not a directory\n", mountpoint);
		return -1;
	}
	if (nonempty)
		return 0;
	dir = opendir(path);
	while (dir && (de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	if (dir)
		closedir(dir);
	if (!empty) {
		fprintf(stderr, "execfs: mountpoint %s is not empty: the mount would hide its files. "
				"Use an empty directory, or -o nonempty to mount over them\n", mountpoint);
		return -1;
	}
	return 0;
}

int preflight_device(void)
{
	struct stat st;

	if (access("/dev/fuse", R_OK | W_OK) == 0)
		return 0;
	if (errno == ENOENT) {
		fprintf(stderr, "execfs: /dev/fuse does not exist: load the module (modprobe fuse); in "
				"a container, pass the device in (docker run --device /dev/fuse "
				"--cap-add SYS_ADMIN)\n");
		return -1;
	}
	if (stat("/dev/fuse", &st) == 0)
		fprintf(stderr, "execfs: /dev/fuse is not open to you (mode %04o, owner uid %u, "
				"group gid %u): its usual mode is 0666 (as root: chmod 0666 /dev/fuse); "
				"or add yourself to its group. Mounting as a user also needs fusermount3 "
				"(package fuse3)\n",
			(unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid);
	else
		fprintf(stderr, "execfs: /dev/fuse: %s\n", strerror(errno));
	return -1;
}

/* Options execfs takes, then those of libfuse and mount(8) a user may pass;
 * a trailing '=' takes a value. */
static const char *const known[] = {
	"key_file=", "cache_dir=", "cache_size=", "max_age=", "timeout=", "performance=", "ca_file=",
	"prefetch=", "nonempty", "allow_other", "allow_root", "auto_unmount", "default_permissions",
	"fsname=", "subtype=", "max_read=", "max_threads=", "max_idle_threads=", "clone_fd", "ro", "rw",
	"noatime", "nosuid", "nodev", "noexec", "suid", "dev", "exec", "async", "sync", "dirsync",
	"atime", "debug", "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group",
	"nofail", "_netdev", "comment=", "relatime", "strictatime", "lazytime", "nolazytime",
	"nodiratime", "iversion", "noiversion", "silent", "loud", "blkdev", "blksize=", "rootmode=",
	"user_id=", "group_id=",
};

static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64], prev, next;

	if (lb >= sizeof(row) / sizeof(row[0]))
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			next = row[j];
			row[j] = a[i - 1] == b[j - 1] ? prev
				 : 1 + (prev < row[j] ? (prev < row[j - 1] ? prev : row[j - 1])
						      : (row[j] < row[j - 1] ? row[j] : row[j - 1]));
			prev = next;
		}
	}
	return row[lb];
}

static void explain_word(const char *word)
{
	char name[128];
	const char *eq = strchr(word, '=');
	size_t len = eq ? (size_t)(eq - word) + 1 : strlen(word), best_d = (size_t)-1;
	const char *best = NULL;

	if (!len || len >= sizeof(name) || word[0] == 'x' || word[0] == 'X')
		return;
	memcpy(name, word, len);
	name[len] = '\0';
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		size_t d = distance(name, known[i]);

		if (d == 0)
			return; /* known: not what libfuse refused */
		if (d < best_d) {
			best_d = d;
			best = known[i];
		}
	}
	if (best && best_d <= 3)
		fprintf(stderr, "execfs: unknown option %s: did you mean %s? (execfs --help lists "
				"them)\n", word, best);
	else
		fprintf(stderr, "execfs: unknown option %s (execfs --help lists them)\n", word);
}

void preflight_explain_options(int argc, char *argv[])
{
	for (int i = 1; i < argc; i++) {
		const char *opts = NULL;
		char *copy, *save = NULL;

		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			opts = argv[++i];
		else if (strncmp(argv[i], "-o", 2) == 0)
			opts = argv[i] + 2;
		if (!opts || !(copy = strdup(opts)))
			continue;
		for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save))
			explain_word(w);
		free(copy);
	}
}
