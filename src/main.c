/* main.c - the command line, the API key, and mounting.
 *
 *   execfs [OPTIONS] SOURCE MOUNTPOINT
 */
#include "cache.h"
#include "engine.h"
#include "fs.h"
#include "http.h"
#include "log.h"
#include "preflight.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct options {
	char *source;
	char *mountpoint;	/* the second word, as given (libfuse parses it again) */
	char *key_file;
	char *api_key;
	char *cache_dir;
	char *cache_size;
	char *performance;
	char *ca_file;
	char *prefetch;
	unsigned max_age;
	unsigned timeout;
	int nonempty;
	int show_help;
	int show_version;
};

#define OPTION(t, p) {t, offsetof(struct options, p), 1}
#define IGNORED(t) FUSE_OPT_KEY(t, FUSE_OPT_KEY_DISCARD)

static const struct fuse_opt option_spec[] = {
	OPTION("key_file=%s", key_file),
	OPTION("api_key=%s", api_key),
	OPTION("cache_dir=%s", cache_dir),
	OPTION("cache_size=%s", cache_size),
	OPTION("performance=%s", performance),
	OPTION("ca_file=%s", ca_file),
	OPTION("prefetch=%s", prefetch),
	OPTION("max_age=%u", max_age),
	OPTION("timeout=%u", timeout),
	OPTION("nonempty", nonempty),
	OPTION("-h", show_help),
	OPTION("--help", show_help),
	OPTION("-V", show_version),
	OPTION("--version", show_version),
	/* What an /etc/fstab line, mount(8) or a systemd unit may carry, and
	 * mount.fuse3 does not always remove: they mean nothing to the
	 * filesystem itself. x-* and X-* are dropped in take_source(). */
	IGNORED("defaults"),
	IGNORED("auto"),
	IGNORED("noauto"),
	IGNORED("user"),
	IGNORED("nouser"),
	IGNORED("users"),
	IGNORED("owner"),
	IGNORED("group"),
	IGNORED("nofail"),
	IGNORED("_netdev"),
	IGNORED("comment="),
	/* Access-time flavours libfuse cannot set: execfs keeps no access
	 * times. (noatime, atime, nodev, nosuid, ro, ... libfuse applies.) */
	IGNORED("relatime"),
	IGNORED("strictatime"),
	IGNORED("lazytime"),
	IGNORED("nolazytime"),
	IGNORED("nodiratime"),
	IGNORED("iversion"),
	IGNORED("noiversion"),
	IGNORED("silent"),
	IGNORED("loud"),
	FUSE_OPT_END
};

static void usage(const char *prog)
{
	printf("usage: %s [OPTIONS] SOURCE MOUNTPOINT\n"
	       "\n"
	       "Exposes the query executions of an analytics API as files.\n"
	       "\n"
	       "SOURCE:\n"
	       "    dune                   the public Dune API (https://api.dune.com/api/v1)\n"
	       "    dune:URL               a Dune-compatible API at URL\n"
	       "    redash:URL             a Redash-compatible API at URL (redash:https://query.nansen.ai)\n"
	       "\n"
	       "The API key comes from -o key_file=PATH (owned by you, mode 0600 or\n"
	       "stricter), else EXECFS_API_KEY, else DUNE_API_KEY (dune) or REDASH_API_KEY\n"
	       "(redash). It is never accepted on the command line.\n"
	       "\n"
	       "execfs options:\n"
	       "    -o key_file=PATH       file holding the API key\n"
	       "    -o cache_dir=PATH      results and the execution index\n"
	       "                           (default $XDG_CACHE_HOME/execfs/<source>)\n"
	       "    -o cache_size=SIZE     cap on cached result bytes (default 10G)\n"
	       "    -o max_age=SECONDS     reuse a latest.* answer this long (default 300)\n"
	       "    -o timeout=SECONDS     longest a read waits for a run; 0 = no limit (default 0)\n"
	       "    -o performance=medium|large  dune: engine size for new executions\n"
	       "    -o ca_file=PATH        CA bundle for https (certificates are always verified)\n"
	       "    -o prefetch=FORMATS    download these formats (csv,json,ndjson) of a run started\n"
	       "                           here as soon as it ends; costs what reading them would\n"
	       "    -o nonempty            mount over a directory that is not empty (refused otherwise)\n"
	       "    -h, --help             this help\n"
	       "    -V, --version          the version\n"
	       "\n"
	       "FUSE options (libfuse's; the usual ones):\n"
	       "    -f                     stay in the foreground, log to stderr (else syslog)\n"
	       "    -d                     debug: -f, and every FUSE request and state change logged\n"
	       "    -s                     one thread for FUSE requests\n"
	       "    -o allow_other         let other users see the mount (needs user_allow_other in\n"
	       "                           /etc/fuse.conf unless root)\n"
	       "    -o auto_unmount        unmount when the daemon dies\n"
	       "    -o max_threads=N       threads for FUSE requests (default 8)\n"
	       "    -o ro, noexec, nosuid, nodev, noatime  as for any mount\n"
	       "\n"
	       "Files, semantics and examples: man execfs.\n",
	       prog);
}

/* "csv,json" into a mask of 1 << format; -EINVAL naming nothing known. */
static int parse_formats(const char *text, unsigned *mask)
{
	char *copy = strdup(text), *save = NULL;
	int rc = 0;

	*mask = 0;
	if (!copy)
		return -ENOMEM;
	for (char *word = strtok_r(copy, ",", &save); word; word = strtok_r(NULL, ",", &save)) {
		int f;

		for (f = 0; f < FORMAT_COUNT; f++)
			if (strcmp(word, result_format_ext((enum result_format)f)) == 0)
				break;
		if (f == FORMAT_COUNT) {
			rc = -EINVAL;
			break;
		}
		*mask |= 1u << f;
	}
	free(copy);
	return rc;
}

static int take_source(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct options *opts = data;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT && !opts->source) {
		opts->source = strdup(arg);
		return 0;
	}
	if (key == FUSE_OPT_KEY_NONOPT && !opts->mountpoint)
		opts->mountpoint = strdup(arg); /* and kept for libfuse */
	/* prefetch=csv,json: -o splits it at the comma, and the formats after
	 * the first come here alone */
	if (key == FUSE_OPT_KEY_OPT && opts->prefetch && parse_formats(arg, &(unsigned){0}) == 0) {
		size_t len = strlen(opts->prefetch) + strlen(arg) + 2;
		char *joined = malloc(len);

		if (!joined)
			return -1;
		snprintf(joined, len, "%s,%s", opts->prefetch, arg);
		free(opts->prefetch);
		opts->prefetch = joined;
		return 0;
	}
	/* x-systemd.automount, x-systemd.requires=..., X-mount.mkdir, ...:
	 * for mount(8) and systemd, never for the filesystem */
	if (key == FUSE_OPT_KEY_OPT && (arg[0] == 'x' || arg[0] == 'X') && arg[1] == '-')
		return 0;
	return 1;
}

/* Reads the key from key_file, refusing a file others could read. */
static char *read_key_file(const char *path)
{
	struct stat st;
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		fprintf(stderr, "execfs: cannot open key_file %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "execfs: key_file %s is not a regular file\n", path);
		close(fd);
		return NULL;
	}
	if (st.st_uid != getuid() || (st.st_mode & 077)) {
		fprintf(stderr,
			"execfs: key_file %s is refused: it must be owned by you and not readable "
			"by group or others (chmod 600 %s)\n",
			path, path);
		close(fd);
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		fprintf(stderr, "execfs: cannot read key_file %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf[n] = '\0';
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	if (n == 0) {
		fprintf(stderr, "execfs: key_file %s is empty\n", path);
		return NULL;
	}
	if (strpbrk(buf, "\r\n")) {
		fprintf(stderr, "execfs: key_file %s holds more than one line\n", path);
		explicit_bzero(buf, sizeof(buf));
		return NULL;
	}
	{
		char *key = strdup(buf);

		explicit_bzero(buf, sizeof(buf));
		return key;
	}
}

static char *find_key(const struct options *opts, const struct backend *b)
{
	const char *env;

	if (opts->key_file)
		return read_key_file(opts->key_file);
	env = getenv("EXECFS_API_KEY");
	if (!env || !*env)
		env = getenv(b->ops->key_env);
	if (env && *env && !strpbrk(env, "\r\n"))
		return strdup(env);
	fprintf(stderr,
		"execfs: no API key: use -o key_file=PATH, or set EXECFS_API_KEY or %s\n",
		b->ops->key_env);
	return NULL;
}

static int parse_size(const char *text, unsigned long long *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 'T': n <<= 10; /* fall through */
	case 'G': n <<= 10; /* fall through */
	case 'M': n <<= 10; /* fall through */
	case 'K': n <<= 10; end++; break;
	case '\0': break;
	default: return -EINVAL;
	}
	if (*end && !(toupper((unsigned char)*end) == 'B' && end[1] == '\0'))
		return -EINVAL;
	*out = n;
	return 0;
}

/* $XDG_CACHE_HOME/execfs/<source>, with the source made a file name. */
static char *default_cache_dir(const char *source)
{
	const char *base = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char slug[256], *dir = NULL;
	size_t i;

	for (i = 0; source[i] && i < sizeof(slug) - 1; i++)
		slug[i] = isalnum((unsigned char)source[i]) || source[i] == '.' || source[i] == '-'
				  ? source[i] : '_';
	slug[i] = '\0';
	if (base && base[0] == '/') {
		if (asprintf(&dir, "%s/execfs/%s", base, slug) < 0)
			return NULL;
	} else {
		if (asprintf(&dir, "%s/.cache/execfs/%s", home && *home ? home : "/tmp", slug) < 0)
			return NULL;
	}
	return dir;
}

/* mountinfo writes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* "major:minor" of the newest mount at mountpoint, from /proc/self/mountinfo.
 * The mountpoint is already absolute (fuse_parse_cmdline); it is not
 * resolved again, as that would stat the mount before anyone serves it. */
static void find_mount_dev(const char *mountpoint, char *out, size_t outlen)
{
	char line[4096];
	const char *real = mountpoint;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	out[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char dev[32], point[PATH_MAX];

		if (sscanf(line, "%*d %*d %31s %*s %4095s", dev, point) != 2)
			continue;
		unescape_octal(point);
		if (strcmp(point, real) == 0)
			snprintf(out, outlen, "%s", dev); /* the last one is on top */
	}
	fclose(f);
}

/* fsname=SOURCE: the mount table then names the source as the fstab line
 * does, and mount -a sees that line is mounted already. fuse_opt splits
 * options at commas, so a comma or backslash in SOURCE is escaped. */
static int add_fsname(struct fuse_args *args, const char *source)
{
	char *opt = malloc(sizeof("-ofsname=") + 2 * strlen(source));
	char *p;
	int ret;

	if (!opt)
		return -1;
	p = stpcpy(opt, "-ofsname=");
	for (; *source; source++) {
		if (*source == ',' || *source == '\\')
			*p++ = '\\';
		*p++ = *source;
	}
	*p = '\0';
	ret = fuse_opt_add_arg(args, opt);
	free(opt);
	return ret;
}

/* Every parked reader answered at once dups a descriptor for its reply:
 * take all the descriptors the hard limit allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = {0};
	struct options opts = {.max_age = 300};
	struct fuse_loop_config *loop = NULL;
	struct fuse_session *se = NULL;
	struct engine_config engine = {0};
	struct backend backend;
	struct api_error err;
	char *key = NULL, *auth = NULL, *cache_dir = NULL;
	unsigned long long cache_size = 10ULL << 30;
	unsigned prefetch = 0;
	int ret = 1;

	if (fuse_opt_parse(&args, &opts, option_spec, take_source) == -1)
		return 1;
	if (opts.show_help) {
		usage(argv[0]);
		ret = 0;
		goto out_args;
	}
	if (opts.show_version) {
		printf("execfs %s\n", EXECFS_VERSION);
		printf("libfuse %s\n", fuse_pkgversion());
		ret = 0;
		goto out_args;
	}
	if (opts.api_key) {
		explicit_bzero(opts.api_key, strlen(opts.api_key));
		fprintf(stderr, "execfs: the api_key option is refused: a key on the command line "
				"shows in ps and in /etc/fstab; use -o key_file=PATH or EXECFS_API_KEY\n");
		goto out_args;
	}
	if (opts.source && opts.mountpoint && preflight_order(opts.source, opts.mountpoint))
		goto out_args;
	if (fuse_parse_cmdline(&args, &cmd) != 0)
		goto out_args;
	if (!opts.source || !cmd.mountpoint) {
		fprintf(stderr, "usage: %s [OPTIONS] SOURCE MOUNTPOINT (see --help)\n", argv[0]);
		goto out_cmd;
	}
	if (backend_init(&backend, opts.source, &err)) {
		fprintf(stderr, "execfs: %s\n", err.message);
		goto out_cmd;
	}
	if (opts.performance) {
		if (strcmp(opts.performance, "medium") && strcmp(opts.performance, "large")) {
			fprintf(stderr, "execfs: performance=%s: expected medium or large\n", opts.performance);
			goto out_cmd;
		}
		snprintf(backend.performance, sizeof(backend.performance), "%s", opts.performance);
	}
	if (opts.cache_size && parse_size(opts.cache_size, &cache_size)) {
		fprintf(stderr, "execfs: cache_size=%s: expected a size such as 500M or 10G\n",
			opts.cache_size);
		goto out_cmd;
	}
	if (opts.prefetch && parse_formats(opts.prefetch, &prefetch)) {
		fprintf(stderr, "execfs: prefetch=%s: expected formats among csv, json, ndjson "
				"(e.g. prefetch=csv,json)\n", opts.prefetch);
		goto out_cmd;
	}
	key = find_key(&opts, &backend);
	if (!key)
		goto out_cmd;
	raise_fd_limit();
	auth = backend.ops->auth_header(key);
	explicit_bzero(key, strlen(key));
	if (!auth)
		goto out_cmd;
	cache_dir = opts.cache_dir ? strdup(opts.cache_dir) : default_cache_dir(opts.source);
	if (!cache_dir || cache_open(cache_dir)) {
		fprintf(stderr, "execfs: cannot use cache_dir %s: %s\n", cache_dir ? cache_dir : "?",
			strerror(errno));
		goto out_cmd;
	}
	log_set_debug(cmd.debug);

	/* default_permissions: the kernel checks the modes the tree shows */
	fuse_opt_add_arg(&args, "-odefault_permissions");
	if (add_fsname(&args, opts.source))
		goto out_cache;
	se = fuse_session_new(&args, &fs_operations, sizeof(fs_operations), NULL);
	if (!se) {
		preflight_explain_options(argc, argv);
		goto out_cache;
	}
	if (preflight_mountpoint(cmd.mountpoint, opts.nonempty) || preflight_device())
		goto out_session;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, cmd.mountpoint) != 0)
		goto out_signals;
	if (fuse_daemonize(cmd.foreground) != 0)
		goto out_unmount;
	if (!cmd.foreground)
		log_use_syslog();

	/* threads start only now: fuse_daemonize() forks */
	if (http_start(auth, opts.ca_file)) {
		log_error("cannot start the HTTP engine");
		goto out_unmount;
	}
	engine.backend = &backend;
	engine.max_age = opts.max_age;
	engine.timeout = opts.timeout;
	engine.cache_size = cache_size;
	engine.prefetch = prefetch;
	fs_set_session(se);
	engine.forget_name = fs_forget_name;
	engine.sweep_ms = 1000;
	find_mount_dev(cmd.mountpoint, engine.mount_dev, sizeof(engine.mount_dev));
	if (engine_init(&engine)) {
		http_stop();
		goto out_unmount;
	}
	log_info("mounted %s on %s (cache %s)", opts.source, cmd.mountpoint, cache_dir);

	if (cmd.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, cmd.clone_fd);
		fuse_loop_cfg_set_max_threads(loop, cmd.max_threads ? cmd.max_threads : 8);
		if (cmd.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(loop, cmd.max_idle_threads);
		ret = fuse_session_loop_mt(se, loop);
		fuse_loop_cfg_destroy(loop);
	}
	ret = ret < 0 ? 1 : 0;
	engine_shutdown();
	log_info("unmounted %s", cmd.mountpoint);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_cache:
	cache_close();
out_cmd:
	free(cmd.mountpoint);
out_args:
	if (auth)
		explicit_bzero(auth, strlen(auth));
	free(auth);
	free(key);
	free(cache_dir);
	free(opts.source);
	free(opts.mountpoint);
	free(opts.key_file);
	free(opts.api_key);
	free(opts.cache_dir);
	free(opts.cache_size);
	free(opts.performance);
	free(opts.ca_file);
	free(opts.prefetch);
	fuse_opt_free_args(&args);
	return ret;
}
