/* The few FUSE kernel ABI structures the C core touches, defined here because Debian 12's
 * <linux/fuse.h> stops at protocol 7.38 and passthrough needs 7.40 (init_out.max_stack_depth,
 * open_out.backing_id, FUSE_DEV_IOC_BACKING_OPEN). Everything else is decoded in TypeScript. */
#ifndef GF_KERNEL_ABI_H
#define GF_KERNEL_ABI_H

#include <stdint.h>
#include <sys/ioctl.h>

#define GF_FUSE_KERNEL_VERSION 7
#define GF_FUSE_MIN_MINOR 31      /* max_pages and the 64-byte init_out exist from here on */
#define GF_FUSE_MAX_MINOR 40      /* the layouts below; the kernel adapts to what we claim */

enum {
  GF_FUSE_READ = 15,
  GF_FUSE_WRITE = 16,
  GF_FUSE_INIT = 26,
  GF_FUSE_INTERRUPT = 36,
  GF_FUSE_IOCTL = 39,
};

/* INIT flags (fuse_init_in/out.flags; bits 32+ travel in flags2). */
#define GF_ASYNC_READ (1ULL << 0)
#define GF_ATOMIC_O_TRUNC (1ULL << 3)
#define GF_BIG_WRITES (1ULL << 5)
#define GF_AUTO_INVAL_DATA (1ULL << 12)
#define GF_DO_READDIRPLUS (1ULL << 13)
#define GF_ASYNC_DIO (1ULL << 15)
#define GF_PARALLEL_DIROPS (1ULL << 18)
#define GF_ABORT_ERROR (1ULL << 21)
#define GF_MAX_PAGES (1ULL << 22)
#define GF_CACHE_SYMLINKS (1ULL << 23)
#define GF_INIT_EXT (1ULL << 30)
#define GF_HAS_EXPIRE_ONLY (1ULL << 35)
#define GF_DIRECT_IO_ALLOW_MMAP (1ULL << 36)
#define GF_PASSTHROUGH (1ULL << 37)
#define GF_HAS_RESEND (1ULL << 39) /* the kernel can move requests read but unanswered back to its queue */

struct gf_in_header {
  uint32_t len;
  uint32_t opcode;
  uint64_t unique;
  uint64_t nodeid;
  uint32_t uid;
  uint32_t gid;
  uint32_t pid;
  uint16_t total_extlen;
  uint16_t padding;
};

struct gf_out_header {
  uint32_t len;
  int32_t error;
  uint64_t unique;
};

struct gf_init_in {
  uint32_t major;
  uint32_t minor;
  uint32_t max_readahead;
  uint32_t flags;
  uint32_t flags2; /* 7.36+ */
  uint32_t unused[11];
};

struct gf_init_out {
  uint32_t major;
  uint32_t minor;
  uint32_t max_readahead;
  uint32_t flags;
  uint16_t max_background;
  uint16_t congestion_threshold;
  uint32_t max_write;
  uint32_t time_gran;
  uint16_t max_pages;
  uint16_t map_alignment;
  uint32_t flags2;
  uint32_t max_stack_depth; /* 7.40 */
  uint32_t unused[6];
};

struct gf_read_in {
  uint64_t fh;
  uint64_t offset;
  uint32_t size;
  uint32_t read_flags;
  uint64_t lock_owner;
  uint32_t flags;
  uint32_t padding;
};

struct gf_write_in {
  uint64_t fh;
  uint64_t offset;
  uint32_t size;
  uint32_t write_flags;
  uint64_t lock_owner;
  uint32_t flags;
  uint32_t padding;
};

struct gf_write_out {
  uint32_t size;
  uint32_t padding;
};

struct gf_backing_map {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};

#define GF_DEV_IOC_MAGIC 229
#define GF_DEV_IOC_BACKING_OPEN _IOW(GF_DEV_IOC_MAGIC, 1, struct gf_backing_map)
#define GF_DEV_IOC_BACKING_CLOSE _IOW(GF_DEV_IOC_MAGIC, 2, uint32_t)
#define GF_DEV_IOC_CLONE _IOR(GF_DEV_IOC_MAGIC, 0, uint32_t)

_Static_assert(sizeof(struct gf_in_header) == 40, "fuse_in_header");
_Static_assert(sizeof(struct gf_out_header) == 16, "fuse_out_header");
_Static_assert(sizeof(struct gf_init_in) == 64, "fuse_init_in");
_Static_assert(sizeof(struct gf_init_out) == 64, "fuse_init_out");
_Static_assert(sizeof(struct gf_read_in) == 40, "fuse_read_in");
_Static_assert(sizeof(struct gf_write_in) == 40, "fuse_write_in");

#endif
