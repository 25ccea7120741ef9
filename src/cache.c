/* cache.c - the cache directory, written atomically. */
#include "cache.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cache_fd = -1;
static unsigned long temp_counter;

/* mkdir -p with mode 0700 for every level it creates. */
static int make_dirs(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev;
}

static int ends_with(const char *name, const char *suffix)
{
	size_t len = strlen(name), slen = strlen(suffix);

	return len > slen && strcmp(name + len - slen, suffix) == 0;
}

/* An index entry's temporary file (written without a lock) is left alone
 * this long after its last change. */
#define TMP_GRACE_S 60

/* Whether a download's .part is named by its result's lock file while a
 * daemon holds that lock: the owner names it there before making it, so a
 * part not locked yet (made, not locked) is still seen live. */
static int part_claimed(int dir, const char *part)
{
	struct flock probe = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char lock_name[PATH_MAX], named[PATH_MAX];
	char *dot;
	ssize_t n;
	int fd, held;

	/* <eid>.<ext>.<pid>-<n>.part -> <eid>.<ext>.lock */
	snprintf(lock_name, sizeof(lock_name), "%s", part);
	lock_name[strlen(lock_name) - 5] = '\0';
	if (!(dot = strrchr(lock_name, '.')))
		return 0;
	snprintf(dot, sizeof(lock_name) - (size_t)(dot - lock_name), ".lock");
	fd = openat(dir, lock_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	held = fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
	n = held ? pread(fd, named, sizeof(named) - 1, 0) : -1;
	close(fd);
	named[n > 0 ? n : 0] = '\0';
	return held && strcmp(named + (strncmp(named, "results/", 8) == 0 ? 8 : 0), part) == 0;
}

/* Removes a file a dead daemon left behind, unless a live one holds it (an
 * open file description's write lock on it) or is making it (see
 * part_claimed; an entry's .tmp younger than TMP_GRACE_S). The removal is
 * made while holding the lock, and only if the name still is that file. */
static void remove_if_dead(int dir, const char *name)
{
	struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct stat held, named;
	int fd = openat(dir, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	int tmp = strncmp(name, ".tmp.", 5) == 0;

	if (fd < 0)
		return;
	if (fcntl(fd, F_OFD_SETLK, &lock) == 0 && fstat(fd, &held) == 0 &&
	    (!tmp || held.st_mtime < time(NULL) - TMP_GRACE_S) &&
	    !(ends_with(name, ".part") && part_claimed(dir, name)) &&
	    fstatat(dir, name, &named, AT_SYMLINK_NOFOLLOW) == 0 && same_file(&held, &named))
		unlinkat(dir, name, 0);
	close(fd);
}

/* What dead daemons left unfinished: downloads, their claims, index entries
 * being written; a live daemon's (another mount of the same cache
 * directory) are left alone. */
static void remove_unfinished(const char *sub)
{
	int fd = openat(cache_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir))) {
		if ((ends_with(de->d_name, ".lock") && de->d_name[0] != '.') ||
		    ends_with(de->d_name, ".part") || strncmp(de->d_name, ".tmp.", 5) == 0)
			remove_if_dead(fd, de->d_name);
	}
	closedir(dir);
}

int cache_open(const char *dir)
{
	static const char *const subdirs[] = {"results", "executions", "queries"};
	int rc = make_dirs(dir);

	if (rc)
		return rc;
	cache_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cache_fd < 0)
		return -errno;
	if (fchmod(cache_fd, 0700))
		log_info("cannot set mode 0700 on %s: %s", dir, strerror(errno));
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++)
		if (mkdirat(cache_fd, subdirs[i], 0700) && errno != EEXIST)
			return -errno;
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++)
		remove_unfinished(subdirs[i]);
	return 0;
}

void cache_close(void)
{
	if (cache_fd >= 0)
		close(cache_fd);
	cache_fd = -1;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static void sync_dir(const char *sub)
{
	int fd = openat(cache_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int cache_put_entry(const char *kind, const char *name, const char *data, size_t len)
{
	char final[PATH_MAX], temp[PATH_MAX];
	int fd, rc;

	snprintf(final, sizeof(final), "%s/%s", kind, name);
	snprintf(temp, sizeof(temp), "%s/.tmp.%s.%d.%lu", kind, name, getpid(),
		 __atomic_add_fetch(&temp_counter, 1, __ATOMIC_RELAXED));
	fd = openat(cache_fd, temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	if (!rc && fsync(fd))
		rc = -errno;
	close(fd);
	if (!rc && renameat(cache_fd, temp, cache_fd, final))
		rc = -errno;
	if (rc) {
		unlinkat(cache_fd, temp, 0);
		log_error("cannot write cache entry %s: %s", final, strerror(-rc));
		return rc;
	}
	sync_dir(kind);
	return 0;
}

static void stamp_of(const struct stat *st, struct cache_stamp *stamp)
{
	stamp->ino = st->st_ino;
	stamp->size = st->st_size;
	stamp->mtime_ns = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

char *cache_get_entry(const char *kind, const char *name, struct cache_stamp *stamp)
{
	char path[PATH_MAX];
	struct stat st;
	char *data;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", kind, name);
	fd = openat(cache_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || st.st_size > (1 << 24)) {
		close(fd);
		return NULL;
	}
	data = malloc((size_t)st.st_size + 1);
	n = data ? pread(fd, data, (size_t)st.st_size, 0) : -1;
	close(fd);
	if (n != st.st_size) {
		free(data);
		return NULL;
	}
	data[n] = '\0';
	if (stamp)
		stamp_of(&st, stamp);
	return data;
}

int cache_entry_stamp(const char *kind, const char *name, struct cache_stamp *stamp)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", kind, name);
	if (fstatat(cache_fd, path, &st, 0))
		return -errno;
	stamp_of(&st, stamp);
	return 0;
}

int cache_lock_entries(const char *kind)
{
	struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/.lock", kind);
	fd = openat(cache_fd, path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	while (fcntl(fd, F_OFD_SETLKW, &lock)) {
		if (errno == EINTR)
			continue;
		/* no locks here: entries are still whole, merges may race */
		break;
	}
	return fd;
}

void cache_unlock_entries(int fd)
{
	if (fd >= 0)
		close(fd);
}

void cache_list_entries(const char *kind, void (*fn)(const char *name, void *data), void *data)
{
	int fd = openat(cache_fd, kind, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			fn(de->d_name, data);
	closedir(dir);
}

static void result_path(char *out, size_t outlen, const char *eid, enum result_format format,
			const char *suffix)
{
	snprintf(out, outlen, "results/%s.%s%s", eid, result_format_ext(format), suffix);
}

int cache_result_open(const char *eid, enum result_format format, off_t *size)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	result_path(path, sizeof(path), eid, format, "");
	fd = openat(cache_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		close(fd);
		return -errno;
	}
	*size = st.st_size;
	return fd;
}

int cache_result_probe(const char *eid, enum result_format format, off_t *size)
{
	char path[PATH_MAX];
	struct stat st;

	result_path(path, sizeof(path), eid, format, "");
	if (fstatat(cache_fd, path, &st, 0))
		return -errno;
	*size = st.st_size;
	return 0;
}

/* ---- one download per result across daemons --------------------------------
 *
 * results/<eid>.<ext>.lock names the result's download: the daemon whose open
 * file description holds a write lock on it downloads, and writes into it the
 * name of its .part file; the others open that file read-only and follow it
 * as it grows. The owner commits by rename, then removes the lock file while
 * still holding it; a daemon that took a lock on a file no longer under that
 * name (removed meanwhile) lets it go and tries again. */

static int lock_path(char *out, size_t outlen, const char *eid, enum result_format format)
{
	result_path(out, outlen, eid, format, ".lock");
	return 0;
}

/* The .part file named in a lock file, or "" (not written yet, or not one of
 * this result's names: only results/<eid>.<ext>.*.part is ever followed or
 * removed). */
static void named_part(int lock_fd, const char *eid, enum result_format format, char *part,
		       size_t partlen)
{
	char prefix[PATH_MAX];
	ssize_t n = pread(lock_fd, part, partlen - 1, 0);
	size_t len, plen;

	result_path(prefix, sizeof(prefix), eid, format, ".");
	plen = strlen(prefix);
	part[n > 0 ? n : 0] = '\0';
	len = strlen(part);
	if (len <= plen + 5 || strncmp(part, prefix, plen) != 0 || strchr(part + plen, '/') ||
	    strcmp(part + len - 5, ".part") != 0)
		part[0] = '\0';
}

static int open_complete(const char *eid, enum result_format format, struct cache_claim *c)
{
	int fd = cache_result_open(eid, format, &c->size);

	if (fd < 0)
		return fd;
	c->fd = fd;
	return CLAIM_COMPLETE;
}

int cache_result_claim(const char *eid, enum result_format format, struct cache_claim *c)
{
	struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char path[PATH_MAX], part[PATH_MAX];
	struct stat held, named;
	int rc;

	c->lock_fd = c->fd = -1;
	c->size = 0;
	lock_path(path, sizeof(path), eid, format);
	for (int tries = 0; tries < 8; tries++) {
		int fd = openat(cache_fd, path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

		if (fd < 0)
			return -errno;
		if (fcntl(fd, F_OFD_SETLK, &lock) == 0) {
			if (fstat(fd, &held) || fstatat(cache_fd, path, &named, AT_SYMLINK_NOFOLLOW) ||
			    !same_file(&held, &named)) {
				close(fd); /* its owner removed it after its commit */
				continue;
			}
			/* committed by another daemon since this one last looked */
			if ((rc = open_complete(eid, format, c)) == CLAIM_COMPLETE) {
				unlinkat(cache_fd, path, 0);
				close(fd);
				return rc;
			}
			/* the download of a daemon that died: its bytes go */
			named_part(fd, eid, format, part, sizeof(part));
			if (part[0])
				unlinkat(cache_fd, part, 0);
			if (ftruncate(fd, 0)) {
				/* a follower would read a stale name: the part's
				 * name check and its O_EXCL keep that harmless */
			}
			c->lock_fd = fd;
			return CLAIM_OWNER;
		}
		rc = errno;
		if (rc != EAGAIN && rc != EACCES) {
			/* no locks on this filesystem: download alone, as before */
			close(fd);
			log_info("%s: cannot lock (%s): downloads are not shared with other daemons",
				 path, strerror(rc));
			return CLAIM_OWNER;
		}
		named_part(fd, eid, format, part, sizeof(part));
		c->fd = part[0] ? openat(cache_fd, part, O_RDONLY | O_CLOEXEC) : -1;
		if (c->fd >= 0) {
			c->lock_fd = fd;
			return CLAIM_FOLLOW;
		}
		close(fd);
		if (open_complete(eid, format, c) == CLAIM_COMPLETE)
			return CLAIM_COMPLETE;
		if (!part[0])
			return -EAGAIN; /* the owner has not named its file yet */
	}
	return -EAGAIN;
}

int cache_result_follow(const char *eid, enum result_format format, const struct cache_claim *c,
			off_t *size)
{
	struct flock probe = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char path[PATH_MAX];
	struct stat part, final;

	if (fstat(c->fd, &part))
		return -errno;
	*size = part.st_size;
	if (fcntl(c->lock_fd, F_OFD_GETLK, &probe))
		return -errno;
	result_path(path, sizeof(path), eid, format, "");
	if (probe.l_type == F_UNLCK || part.st_nlink == 0) {
		/* its owner let go, or the file is gone from the directory: a
		 * daemon that claimed a dead owner's download removed it, and
		 * holds the lock for a file of its own */
		if (fstatat(cache_fd, path, &final, 0) == 0 && same_file(&part, &final)) {
			*size = final.st_size;
			return FOLLOW_COMMITTED;
		}
		return FOLLOW_GONE;
	}
	return FOLLOW_RUNNING;
}

int cache_result_begin(const char *eid, enum result_format format, int lock_fd, char *part,
		       size_t partlen)
{
	static unsigned long parts;
	struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char suffix[64];
	size_t len;
	int fd;

	/* a name of its own: another daemon on this directory never writes,
	 * truncates, removes or commits it */
	snprintf(suffix, sizeof(suffix), ".%d-%lu.part", getpid(),
		 __atomic_add_fetch(&parts, 1, __ATOMIC_RELAXED));
	result_path(part, partlen, eid, format, suffix);
	/* named in the held lock file before it exists: a daemon starting on
	 * this directory sees it live even before its own lock (part_claimed),
	 * and the others follow it from here */
	len = strlen(part);
	if (lock_fd >= 0 && pwrite(lock_fd, part, len, 0) != (ssize_t)len)
		log_info("%s: cannot name the download in its lock file: other daemons will "
			 "wait for its end", part);
	fd = openat(cache_fd, part, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fd = -errno;
		part[0] = '\0';
		return fd;
	}
	/* held by this open file description (dup'd descriptors share it) for
	 * as long as the download has it open: a starting daemon sees it live */
	if (fcntl(fd, F_OFD_SETLK, &lock))
		log_info("%s: no lock on the download's file (%s): a daemon starting on this "
			 "cache directory may remove it", part, strerror(errno));
	return fd;
}

int cache_result_commit(const char *part, const char *eid, enum result_format format, int fd,
			int lock_fd)
{
	char temp[PATH_MAX], final[PATH_MAX];

	snprintf(temp, sizeof(temp), "%s", part);
	result_path(final, sizeof(final), eid, format, "");
	if (fsync(fd))
		return -errno;
	if (renameat(cache_fd, temp, cache_fd, final))
		return -errno;
	sync_dir("results");
	cache_result_release(eid, format, lock_fd);
	return 0;
}

void cache_result_release(const char *eid, enum result_format format, int lock_fd)
{
	char path[PATH_MAX];

	if (lock_fd < 0)
		return;
	lock_path(path, sizeof(path), eid, format);
	unlinkat(cache_fd, path, 0); /* still held: no one else removes it */
	close(lock_fd);
}

struct cache_file *cache_results_scan(size_t *count)
{
	int fd = openat(cache_fd, "results", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct cache_file *files = NULL, *grown;
	size_t alloc = 0;
	struct dirent *de;
	struct stat st;

	*count = 0;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while ((de = readdir(dir))) {
		const char *dot = strrchr(de->d_name, '.');
		size_t idlen = dot ? (size_t)(dot - de->d_name) : 0;
		int format = -1;

		if (de->d_name[0] == '.' || !dot || idlen == 0 || idlen >= sizeof(files->eid))
			continue;
		for (int f = 0; f < FORMAT_COUNT; f++)
			if (strcmp(dot + 1, result_format_ext((enum result_format)f)) == 0)
				format = f;
		if (format < 0 || fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue; /* a download's .part or .lock, or gone */
		if (*count == alloc) {
			alloc = alloc ? 2 * alloc : 256;
			if (!(grown = realloc(files, alloc * sizeof(*files))))
				break;
			files = grown;
		}
		memcpy(files[*count].eid, de->d_name, idlen);
		files[*count].eid[idlen] = '\0';
		files[*count].format = (enum result_format)format;
		files[*count].size = st.st_size;
		files[*count].ino = st.st_ino;
		files[*count].atime_ns = (long long)st.st_atim.tv_sec * 1000000000LL + st.st_atim.tv_nsec;
		(*count)++;
	}
	closedir(dir);
	return files;
}

int cache_result_remove_if(const struct cache_file *file)
{
	char path[PATH_MAX];
	struct stat st;

	result_path(path, sizeof(path), file->eid, file->format, "");
	if (fstatat(cache_fd, path, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (st.st_ino != file->ino ||
	    (long long)st.st_atim.tv_sec * 1000000000LL + st.st_atim.tv_nsec != file->atime_ns)
		return -EBUSY; /* opened, or replaced, since the scan */
	return unlinkat(cache_fd, path, 0) ? -errno : 0;
}

void cache_result_touch(const char *eid, enum result_format format)
{
	const struct timespec times[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_OMIT}};
	char path[PATH_MAX];

	result_path(path, sizeof(path), eid, format, "");
	utimensat(cache_fd, path, times, AT_SYMLINK_NOFOLLOW);
}

void cache_result_remove(const char *eid, enum result_format format)
{
	char path[PATH_MAX];

	result_path(path, sizeof(path), eid, format, "");
	unlinkat(cache_fd, path, 0);
}

void cache_result_abandon(const char *part, const char *eid, enum result_format format, int lock_fd)
{
	if (part[0])
		unlinkat(cache_fd, part, 0);
	cache_result_release(eid, format, lock_fd);
}
