#ifndef GF_MOUNT_H
#define GF_MOUNT_H
#include <stddef.h>

struct gf_mount_opts {
  const char *mountpoint;
  const char *fsname;
  const char *subtype;
  int allow_other;
  int default_permissions;
  int read_only;
  unsigned max_read; /* bytes; 0 = the kernel's default (mount(2) only) */
};

/* Returns the /dev/fuse fd of the new mount, or -errno with a message in err. */
int gf_mount(const struct gf_mount_opts *o, int *used_fusermount, char *err, size_t errlen);
/* umount2(2); needs CAP_SYS_ADMIN (callers fall back to `fusermount3 -u`). Returns 0 or -errno. */
int gf_unmount(const char *mountpoint, int lazy);
#endif
