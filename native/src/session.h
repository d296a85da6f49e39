/* A FUSE session on an open /dev/fuse: INIT negotiation, reader threads, the fast paths for handles
 * bound to a local file (reads served from it, writes landed in it), and threads that write
 * notifications and large replies.
 * Knows nothing about N-API. */
#ifndef GF_SESSION_H
#define GF_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define GF_MAX_THREADS 16

struct gf_session;

/* Called on a reader thread with a malloc'd copy of one request; the callee owns `req`.
 * req == NULL (len 0) means the session has ended: every reader thread has exited. */
typedef void (*gf_forward_fn)(struct gf_session *s, void *req, size_t len);

struct gf_config {
  int threads;             /* reader threads */
  int splice;              /* reply to fast-path reads with splice (no user-space copy) */
  uint32_t max_pages;      /* request size in pages (≤ kernel limit, 256 = 1 MiB) */
  int want_passthrough;    /* negotiate FUSE_PASSTHROUGH when the kernel offers it */
  uint32_t max_stack_depth;
  uint16_t max_background;
  uint16_t congestion_threshold;
  int init_timeout_ms;
};

struct gf_init_info {
  uint32_t major, minor;      /* what the kernel offered */
  uint32_t reply_minor;       /* what we claimed */
  uint64_t kernel_flags;      /* offered */
  uint64_t flags;             /* negotiated */
  uint32_t max_write;
  uint32_t max_readahead;
  int passthrough;
};

struct gf_msg {
  struct gf_msg *next;
  size_t len;
  size_t cap;
  unsigned char data[];
};

/* Messages written to /dev/fuse, in order, by a thread of their own. */
struct gf_out_queue {
  pthread_t thread;
  int started;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct gf_msg *head, *tail;
  int stop;
  /* Spent messages kept for reuse: fresh memory is what a large copy costs most on some VMs. */
  struct gf_msg *spare;
  int nspare;
  atomic_ullong *errors; /* counts failed writes other than ENOENT (interrupted) and ENODEV (unmounted) */
};

/* What a bound handle's fast path serves. */
#define GF_BIND_READ 1  /* reads, from a file that never changes while bound (replies sized up front) */
#define GF_BIND_WRITE 2 /* writes, landed in the file; each one is reported to JS (GF_OP_WRITTEN) */

/* The message a reader thread forwards after landing a write in a bound file: a fuse_in_header with
 * this opcode (outside FUSE's range) and unique 0, then the request's fuse_write_in with `size` set
 * to the bytes written. It is queued before the reply, so JS sees it before anything the writer
 * does next (a GETATTR, FLUSH or RELEASE comes through the same queue after it). */
#define GF_OP_WRITTEN 0x47460001u

struct gf_bound {
  int fd; /* -1 = unbound */
  int direct_fd; /* GF_BIND_WRITE: the same file opened O_DIRECT for whole-page writes, or -1 */
  int mode; /* GF_BIND_* */
  uint64_t size; /* GF_BIND_READ: the file's size at bind time */
};

struct gf_session {
  int devfd;
  struct gf_config cfg;
  struct gf_init_info info;
  size_t bufsize;
  int nthreads;
  pthread_t threads[GF_MAX_THREADS];
  atomic_int live_threads;
  atomic_int stopping;

  /* fh -> local fd for the fast read path; readers hold the read lock while they use an fd, so
   * unbind (write lock) never closes an fd under a read in flight. */
  pthread_rwlock_t bound_lock;
  struct gf_bound *bound;
  size_t bound_cap;

  /* Notifications are written by their own thread: a notify write can wait on an inode lock held by a
   * request that only the JS thread can answer, so writing it from the JS thread could deadlock. */
  struct gf_out_queue notifications;
  /* Large replies from JS (read data) are copied here and written by another thread: the kernel's copy into
   * the page cache is the costly part, and the JS thread has the downloads to keep up with meanwhile. */
  struct gf_out_queue replies;

  gf_forward_fn forward;
  void *user;

  atomic_ullong stat_fast_reads, stat_fast_bytes, stat_fast_writes, stat_fast_written, stat_forwarded, stat_notify_errors,
      stat_reply_errors;
};

/* The largest read reply (bytes of data) a splice pipe of ours carries whole, for requests of up to
 * max_pages: the mount's max_read, so that reads stay spliceable while writes may use all of max_pages. */
size_t gf_splice_read_bytes(uint32_t max_pages);
/* Reads and answers INIT (blocking, with timeout). Returns 0 or -errno. */
int gf_session_init(struct gf_session *s, int devfd, const struct gf_config *cfg, char *err, size_t errlen);
/* Takes over a session another process negotiated (INIT was answered; `info` is what it said): no INIT is read.
 * The request size follows info->max_write. Returns 0 or -errno. */
int gf_session_adopt(struct gf_session *s, int devfd, const struct gf_config *cfg, const struct gf_init_info *info);
/* Serves from a clone of the device (FUSE_DEV_IOC_CLONE) instead of devfd, which is closed: requests this process
 * read are then ended by the kernel (ECONNABORTED) if it dies, while the connection lives on through the other
 * holders of the original. For kernels that cannot resend them. Before gf_session_start. Returns 0 or -errno. */
int gf_session_clone_device(struct gf_session *s);
/* Starts reader threads and the writer threads (notifications, replies). Returns 0 or -errno. */
int gf_session_start(struct gf_session *s, gf_forward_fn fwd, void *user);
/* Writes one reply (iovec of the caller's buffers). Returns 0 or -errno; ENOENT (request interrupted) is normal. */
int gf_session_reply(struct gf_session *s, const struct iovec *iov, int iovcnt);
/* Copies one reply and queues it for the reply thread. Returns 0 or -errno. */
int gf_session_reply_queued(struct gf_session *s, const struct iovec *iov, int iovcnt);
/* Queues a notification for the notifier thread (copies it). */
int gf_session_notify(struct gf_session *s, const void *msg, size_t len);
/* Binds fh to a dup of fd for the fast paths in `mode` (GF_BIND_*; a write binding needs an fd open for writing). */
int gf_session_bind(struct gf_session *s, uint64_t fh, int fd, int mode);
int gf_session_unbind(struct gf_session *s, uint64_t fh);
int gf_session_backing_open(struct gf_session *s, int fd);
int gf_session_backing_close(struct gf_session *s, int backing_id);
/* Stops accepting work: joins threads after the device is gone. Safe to call twice. */
void gf_session_join(struct gf_session *s);
void gf_session_destroy(struct gf_session *s);

#endif
