/* preflight.h - checks of the command line and the machine before
 * mounting, each failing with a message that says what to do.
 */
#ifndef EXECFS_PREFLIGHT_H
#define EXECFS_PREFLIGHT_H

/* SOURCE and MOUNTPOINT swapped (`execfs /mnt/dune dune`): 0, or -1 with
 * the message printed. */
int preflight_order(const char *source, const char *mountpoint);

/* The mountpoint: a directory, not already an execfs (or other FUSE)
 * mount, no dead mount, empty unless nonempty is set. An automount point
 * (autofs) is left alone: looking into it would wait for this very mount.
 * 0, or -1 with the message printed. */
int preflight_mountpoint(const char *mountpoint, int nonempty);

/* /dev/fuse usable by this user: 0, or -1 with the message printed. */
int preflight_device(void);

/* After libfuse refused the options: names each -o word of argv that
 * neither execfs nor libfuse knows, with the closest known one. */
void preflight_explain_options(int argc, char *argv[]);

#endif
