/* FUSE session: INIT, reader threads, fast read and write paths, writer queues. See session.h. */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kernel_abi.h"

#define PAGE 4096u
/* Room for the request header and write_in in front of max_write bytes of data. */
#define REQ_HEADROOM PAGE
/* What precedes a WRITE's data in its request. */
#define WRITE_HEAD (sizeof(struct gf_in_header) + sizeof(struct gf_write_in))

static uint64_t wanted_flags(const struct gf_config *cfg) {
  uint64_t f = GF_ASYNC_READ | GF_ATOMIC_O_TRUNC | GF_BIG_WRITES | GF_AUTO_INVAL_DATA | GF_DO_READDIRPLUS |
               GF_ASYNC_DIO | GF_PARALLEL_DIROPS | GF_ABORT_ERROR | GF_MAX_PAGES | GF_CACHE_SYMLINKS | GF_INIT_EXT |
               GF_HAS_EXPIRE_ONLY | GF_DIRECT_IO_ALLOW_MMAP | GF_HAS_RESEND;
  if (cfg->want_passthrough) f |= GF_PASSTHROUGH;
  return f;
}

static int write_all_iov(int fd, const struct iovec *iov, int iovcnt) {
  ssize_t n;
  do {
    n = writev(fd, iov, iovcnt);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : 0;
}

static int reply_error(struct gf_session *s, uint64_t unique, int err) {
  struct gf_out_header out = {.len = sizeof out, .error = -err, .unique = unique};
  struct iovec iov = {.iov_base = &out, .iov_len = sizeof out};
  return write_all_iov(s->devfd, &iov, 1);
}

#define SPARE_MAX 16
#define SPARE_MIN_CAP (64 * 1024)

static void queue_init(struct gf_out_queue *q, atomic_ullong *errors) {
  memset(q, 0, sizeof *q);
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->cond, NULL);
  q->errors = errors;
}

struct queue_thread_arg {
  struct gf_session *s;
  struct gf_out_queue *q;
};

static void *queue_main(void *arg) {
  struct gf_session *s = ((struct queue_thread_arg *)arg)->s;
  struct gf_out_queue *q = ((struct queue_thread_arg *)arg)->q;
  free(arg);
  pthread_mutex_lock(&q->lock);
  for (;;) {
    while (!q->head && !q->stop) pthread_cond_wait(&q->cond, &q->lock);
    if (!q->head) break; /* stopping and drained */
    struct gf_msg *m = q->head;
    q->head = m->next;
    if (!q->head) q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    struct iovec iov = {m->data, m->len};
    int rc = write_all_iov(s->devfd, &iov, 1);
    if (rc < 0 && rc != -ENOENT && rc != -ENODEV) atomic_fetch_add(q->errors, 1);
    pthread_mutex_lock(&q->lock);
    if (m->cap >= SPARE_MIN_CAP && q->nspare < SPARE_MAX) {
      m->next = q->spare;
      q->spare = m;
      q->nspare++;
    } else {
      free(m);
    }
  }
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

static int queue_start(struct gf_session *s, struct gf_out_queue *q) {
  struct queue_thread_arg *arg = malloc(sizeof *arg);
  if (!arg) return -ENOMEM;
  arg->s = s;
  arg->q = q;
  if (pthread_create(&q->thread, NULL, queue_main, arg) != 0) {
    free(arg);
    return -EAGAIN;
  }
  q->started = 1;
  return 0;
}

/* Copies the iovec into one message (a spare one when it is big enough) and queues it. */
static int queue_push(struct gf_out_queue *q, const struct iovec *iov, int iovcnt) {
  size_t len = 0;
  for (int i = 0; i < iovcnt; i++) len += iov[i].iov_len;
  struct gf_msg *m = NULL;
  pthread_mutex_lock(&q->lock);
  if (q->stop) { /* the session is ending: as if the device were gone already */
    pthread_mutex_unlock(&q->lock);
    return -ENODEV;
  }
  if (q->spare && q->spare->cap >= len) {
    m = q->spare;
    q->spare = m->next;
    q->nspare--;
  }
  pthread_mutex_unlock(&q->lock);
  if (!m) {
    m = malloc(sizeof *m + len);
    if (!m) return -ENOMEM;
    m->cap = len;
  }
  m->next = NULL;
  m->len = len;
  size_t at = 0;
  for (int i = 0; i < iovcnt; i++) {
    memcpy(m->data + at, iov[i].iov_base, iov[i].iov_len);
    at += iov[i].iov_len;
  }
  pthread_mutex_lock(&q->lock);
  if (q->tail) q->tail->next = m;
  else q->head = m;
  q->tail = m;
  pthread_cond_signal(&q->cond);
  pthread_mutex_unlock(&q->lock);
  return 0;
}

/* Stops the thread once everything queued is written. */
static void queue_join(struct gf_out_queue *q) {
  if (!q->started) return;
  pthread_mutex_lock(&q->lock);
  q->stop = 1;
  pthread_cond_signal(&q->cond);
  pthread_mutex_unlock(&q->lock);
  pthread_join(q->thread, NULL);
  q->started = 0;
}

static void free_list(struct gf_msg *m) {
  while (m) {
    struct gf_msg *next = m->next;
    free(m);
    m = next;
  }
}

static void queue_destroy(struct gf_out_queue *q) {
  free_list(q->head);
  free_list(q->spare);
  q->head = q->tail = q->spare = NULL;
  pthread_mutex_destroy(&q->lock);
  pthread_cond_destroy(&q->cond);
}

/* Per reader thread: a pipe for splice replies (file pages → pipe → /dev/fuse, no user-space copy). */
struct splice_pipe {
  int rd, wr;
  size_t cap; /* bytes; the pipe holds cap / PAGE buffers */
};

/* Pipe buffers a spliced reply takes: one for the header, one per page of the file it touches. The whole
 * reply must sit in the pipe at once (the device takes a message in one piece). */
static size_t reply_slots(uint64_t offset, size_t len) {
  return 1 + (size_t)((offset % PAGE + len + PAGE - 1) / PAGE);
}

/* Grows a pipe to `slots` buffers, or as far as the limit allows (fs.pipe-max-size, 1 MiB = 256 buffers by
 * default, unless we hold CAP_SYS_RESOURCE). Returns the capacity in bytes, 0 if unknown. */
static size_t pipe_grow(int wr, size_t slots) {
  size_t want = PAGE;
  while (want < slots * PAGE) want *= 2;
  for (; want >= 16 * PAGE; want /= 2) {
    int cap = fcntl(wr, F_SETPIPE_SZ, (int)want);
    if (cap > 0) return (size_t)cap;
  }
  int cap = fcntl(wr, F_GETPIPE_SZ);
  return cap > 0 ? (size_t)cap : 0;
}

/* Room for a reply of max_pages at any offset: header + max_pages + 1 (an unaligned range touches one more). */
static void pipe_open(struct splice_pipe *p, uint32_t max_pages) {
  int fds[2];
  p->rd = p->wr = -1;
  p->cap = 0;
  if (pipe2(fds, O_CLOEXEC) < 0) return;
  p->rd = fds[0];
  p->wr = fds[1];
  p->cap = pipe_grow(fds[1], (size_t)max_pages + 2);
}

static void pipe_close(struct splice_pipe *p) {
  if (p->rd >= 0) close(p->rd);
  if (p->wr >= 0) close(p->wr);
}

size_t gf_splice_read_bytes(uint32_t max_pages) {
  struct splice_pipe probe;
  pipe_open(&probe, max_pages);
  size_t pages = max_pages;
  if (probe.cap / PAGE >= 3 && probe.cap / PAGE - 2 < pages) pages = probe.cap / PAGE - 2;
  pipe_close(&probe);
  return pages * PAGE;
}

/* What init and adopt share: the config within bounds, locks and queues. */
static void session_setup(struct gf_session *s, int devfd, const struct gf_config *cfg) {
  memset(s, 0, sizeof *s);
  s->devfd = devfd;
  s->cfg = *cfg;
  if (s->cfg.threads < 1) s->cfg.threads = 1;
  if (s->cfg.threads > GF_MAX_THREADS) s->cfg.threads = GF_MAX_THREADS;
  if (s->cfg.max_pages < 1) s->cfg.max_pages = 1;
  if (s->cfg.max_pages > 256) s->cfg.max_pages = 256;
  pthread_rwlock_init(&s->bound_lock, NULL);
  queue_init(&s->notifications, &s->stat_notify_errors);
  queue_init(&s->replies, &s->stat_reply_errors);
}

int gf_session_adopt(struct gf_session *s, int devfd, const struct gf_config *cfg, const struct gf_init_info *info) {
  if (info->max_write < PAGE || info->max_write > 256 * PAGE) return -EINVAL;
  struct gf_config c = *cfg;
  c.max_pages = info->max_write / PAGE; /* requests are as large as the INIT reply said, whatever we would ask now */
  session_setup(s, devfd, &c);
  s->bufsize = (size_t)s->cfg.max_pages * PAGE + REQ_HEADROOM;
  s->info = *info;
  return 0;
}

int gf_session_clone_device(struct gf_session *s) {
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return -errno;
  uint32_t from = (uint32_t)s->devfd;
  if (ioctl(fd, GF_DEV_IOC_CLONE, &from) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  close(s->devfd);
  s->devfd = fd;
  return 0;
}

int gf_session_init(struct gf_session *s, int devfd, const struct gf_config *cfg, char *err, size_t errlen) {
  session_setup(s, devfd, cfg);

  /* The kernel queues INIT as soon as mount(2) returns; wait for it with a timeout. */
  struct pollfd pfd = {.fd = devfd, .events = POLLIN};
  int pr;
  do {
    pr = poll(&pfd, 1, cfg->init_timeout_ms > 0 ? cfg->init_timeout_ms : 10000);
  } while (pr < 0 && errno == EINTR);
  if (pr <= 0) {
    snprintf(err, errlen, "no INIT request from the kernel within %d ms", cfg->init_timeout_ms);
    return pr == 0 ? -ETIMEDOUT : -errno;
  }
  /* Requests (writes above all) may be max_pages long; reads are kept to what a pipe carries whole by the
   * mount's max_read (gf_splice_read_bytes), and a read that still does not fit is answered with pread. */
  /* The kernel refuses reads smaller than its minimum buffer (8 KiB), even for INIT. */
  size_t bufsize = (size_t)s->cfg.max_pages * PAGE + REQ_HEADROOM;
  unsigned char *buf = malloc(bufsize);
  if (!buf) return -ENOMEM;
  ssize_t n;
  do {
    n = read(devfd, buf, bufsize);
  } while (n < 0 && (errno == EINTR || errno == ENOENT));
  if (n < 0) {
    int e = errno;
    free(buf);
    snprintf(err, errlen, "reading INIT from /dev/fuse: %s", strerror(e));
    return -e;
  }
  struct gf_in_header *h = (struct gf_in_header *)buf;
  if ((size_t)n < sizeof *h + 16 || h->opcode != GF_FUSE_INIT) {
    free(buf);
    snprintf(err, errlen, "expected INIT, got opcode %u", (size_t)n >= sizeof *h ? h->opcode : 0);
    return -EPROTO;
  }
  struct gf_init_in in = {0};
  size_t inlen = (size_t)n - sizeof *h;
  memcpy(&in, buf + sizeof *h, inlen < sizeof in ? inlen : sizeof in);
  uint64_t unique = h->unique;
  free(buf);

  if (in.major != GF_FUSE_KERNEL_VERSION || in.minor < GF_FUSE_MIN_MINOR) {
    reply_error(s, unique, EPROTO);
    snprintf(err, errlen, "kernel FUSE protocol %u.%u is too old (need 7.%d+)", in.major, in.minor, GF_FUSE_MIN_MINOR);
    return -EPROTO;
  }
  uint64_t offered = in.flags;
  if (in.flags & GF_INIT_EXT) offered |= (uint64_t)in.flags2 << 32;
  uint32_t minor = in.minor < GF_FUSE_MAX_MINOR ? in.minor : GF_FUSE_MAX_MINOR;
  uint64_t flags = offered & wanted_flags(&s->cfg);
  if (minor < 40) flags &= ~GF_PASSTHROUGH; /* backing_id in open_out needs 7.40 */

  struct gf_init_out out = {
      .major = GF_FUSE_KERNEL_VERSION,
      .minor = minor,
      .max_readahead = in.max_readahead, /* can only lower it; the bdi's read_ahead_kb is raised after mount */
      .flags = (uint32_t)flags,
      .max_background = s->cfg.max_background ? s->cfg.max_background : 64,
      .congestion_threshold = s->cfg.congestion_threshold ? s->cfg.congestion_threshold : 48,
      .max_write = s->cfg.max_pages * PAGE,
      .time_gran = 1,
      .max_pages = (uint16_t)s->cfg.max_pages,
      .flags2 = (uint32_t)(flags >> 32),
      .max_stack_depth = (flags & GF_PASSTHROUGH) ? (s->cfg.max_stack_depth ? s->cfg.max_stack_depth : 1) : 0,
  };
  struct gf_out_header oh = {.len = sizeof oh + sizeof out, .error = 0, .unique = unique};
  struct iovec iov[2] = {{&oh, sizeof oh}, {&out, sizeof out}};
  int rc = write_all_iov(devfd, iov, 2);
  if (rc < 0) {
    snprintf(err, errlen, "replying to INIT: %s", strerror(-rc));
    return rc;
  }
  s->bufsize = bufsize;
  s->info = (struct gf_init_info){
      .major = in.major,
      .minor = in.minor,
      .reply_minor = minor,
      .kernel_flags = offered,
      .flags = flags,
      .max_write = out.max_write,
      .max_readahead = out.max_readahead,
      .passthrough = (flags & GF_PASSTHROUGH) != 0,
  };
  return 0;
}

/* Returns fh's binding if it serves `mode`, with the read lock held; else NULL (lock released). */
static const struct gf_bound *bound_locked(struct gf_session *s, uint64_t fh, int mode) {
  pthread_rwlock_rdlock(&s->bound_lock);
  if (fh < s->bound_cap && s->bound[fh].fd >= 0 && (s->bound[fh].mode & mode)) return &s->bound[fh];
  pthread_rwlock_unlock(&s->bound_lock);
  return NULL;
}

/* Empties a pipe left holding part of a message after a failed splice. */
static void pipe_drain(struct splice_pipe *p, unsigned char *scratch, size_t len) {
  int flags = fcntl(p->rd, F_GETFL);
  fcntl(p->rd, F_SETFL, flags | O_NONBLOCK);
  while (read(p->rd, scratch, len) > 0) {
  }
  fcntl(p->rd, F_SETFL, flags);
}

/* Replies with splice. Returns 1 when done, 0 to fall back to pread (nothing written to the device). */
static int serve_read_splice(struct gf_session *s, const struct gf_in_header *h, const struct gf_read_in *r,
                             const struct gf_bound *b, struct splice_pipe *p, unsigned char *scratch) {
  size_t len = r->offset >= b->size ? 0 : (size_t)(b->size - r->offset);
  if (len > r->size) len = r->size;
  if (len == 0 || reply_slots(r->offset, len) > p->cap / PAGE) return 0;
  struct gf_out_header out = {.len = (uint32_t)(sizeof out + len), .error = 0, .unique = h->unique};
  if (write(p->wr, &out, sizeof out) != (ssize_t)sizeof out) {
    pipe_drain(p, scratch, (size_t)s->cfg.max_pages * PAGE);
    return 0;
  }
  loff_t off = (loff_t)r->offset;
  size_t in = 0;
  while (in < len) {
    /* No SPLICE_F_MOVE, here or below: for a reply that fills the FUSE page cache the kernel would then steal
     * the backing file's pages (remove them from its page cache) instead of copying them. */
    ssize_t n = splice(b->fd, &off, p->wr, NULL, len - in, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      pipe_drain(p, scratch, (size_t)s->cfg.max_pages * PAGE);
      return 0;
    }
    in += (size_t)n;
  }
  size_t total = sizeof out + len;
  ssize_t n;
  do {
    n = splice(p->rd, NULL, s->devfd, NULL, total, 0);
  } while (n < 0 && errno == EINTR);
  if (n != (ssize_t)total) pipe_drain(p, scratch, (size_t)s->cfg.max_pages * PAGE); /* ENOENT: interrupted */
  atomic_fetch_add(&s->stat_fast_reads, 1);
  atomic_fetch_add(&s->stat_fast_bytes, len);
  return 1;
}

static void serve_read(struct gf_session *s, const struct gf_in_header *h, const struct gf_read_in *r, int fd,
                       unsigned char *data) {
  size_t want = r->size, got = 0;
  while (got < want) {
    ssize_t n = pread(fd, data + got, want - got, (off_t)(r->offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      reply_error(s, h->unique, errno);
      return;
    }
    if (n == 0) break; /* end of file: a short reply */
    got += (size_t)n;
  }
  struct gf_out_header out = {.len = (uint32_t)(sizeof out + got), .error = 0, .unique = h->unique};
  struct iovec iov[2] = {{&out, sizeof out}, {data, got}};
  write_all_iov(s->devfd, iov, 2); /* ENOENT: interrupted meanwhile, nothing to do */
  atomic_fetch_add(&s->stat_fast_reads, 1);
  atomic_fetch_add(&s->stat_fast_bytes, got);
}

/* Lands a write in its bound file, tells JS what was written, then replies. */
static void serve_write(struct gf_session *s, const struct gf_in_header *h, const struct gf_write_in *w,
                        const struct gf_bound *b, const unsigned char *data) {
  size_t done = 0;
  int err = 0;
  /* Whole pages go around the page cache: filling fresh page-cache pages was most of a write's cost, and
   * the bytes are read back once (for the upload), not cached. The kernel keeps the two kinds coherent. */
  int fd = b->direct_fd >= 0 && w->offset % PAGE == 0 && w->size % PAGE == 0 && (uintptr_t)data % PAGE == 0 ? b->direct_fd : b->fd;
  while (done < w->size) {
    ssize_t n = pwrite(fd, data + done, w->size - done, (off_t)(w->offset + done));
    if (n < 0 && errno == EINVAL && fd != b->fd) { /* the filesystem refused O_DIRECT after all */
      fd = b->fd;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += (size_t)n;
  }
  if (done > 0) {
    /* Even when failing part-way (ENOSPC): the file did change, and JS keeps its size true. The writer then
     * gets a short write, as from a local file, and the error on its next write. */
    err = 0;
    struct {
      struct gf_in_header h;
      struct gf_write_in w;
    } *msg = malloc(sizeof *msg);
    if (msg) {
      msg->h = *h;
      msg->h.len = sizeof *msg;
      msg->h.opcode = GF_OP_WRITTEN;
      msg->h.unique = 0;
      msg->w = *w;
      msg->w.size = (uint32_t)done;
      s->forward(s, msg, sizeof *msg);
    } else {
      err = ENOMEM; /* JS cannot learn of these bytes: fail the write rather than lose track of them */
    }
  }
  if (err) {
    reply_error(s, h->unique, err);
    return;
  }
  struct gf_out_header out = {.len = sizeof out + sizeof(struct gf_write_out), .error = 0, .unique = h->unique};
  struct gf_write_out wo = {.size = (uint32_t)done, .padding = 0};
  struct iovec iov[2] = {{&out, sizeof out}, {&wo, sizeof wo}};
  write_all_iov(s->devfd, iov, 2);
  atomic_fetch_add(&s->stat_fast_writes, 1);
  atomic_fetch_add(&s->stat_fast_written, done);
}

static void *reader_main(void *arg) {
  struct gf_session *s = arg;
  /* Requests are read WRITE_HEAD bytes short of a page boundary, so that a WRITE's data is page-aligned and
   * can go to the file with O_DIRECT. */
  unsigned char *raw = aligned_alloc(PAGE, s->bufsize + PAGE);
  unsigned char *buf = raw ? raw + PAGE - WRITE_HEAD : NULL;
  unsigned char *data = aligned_alloc(PAGE, (size_t)s->cfg.max_pages * PAGE);
  struct splice_pipe pipe = {-1, -1, 0};
  if (s->cfg.splice) pipe_open(&pipe, s->cfg.max_pages);
  while (buf && data && !atomic_load(&s->stopping)) {
    ssize_t n = read(s->devfd, buf, s->bufsize);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
      if (errno != ENODEV) fprintf(stderr, "gradient-fuse: reading /dev/fuse: %s\n", strerror(errno));
      break; /* ENODEV: unmounted or aborted */
    }
    if ((size_t)n < sizeof(struct gf_in_header)) continue;
    const struct gf_in_header *h = (const struct gf_in_header *)buf;
    /* No filesystem of ours takes ioctls, yet Python's open() asks isatty() (TCGETS) of every file: answered
     * here, as the kernel would answer JS's ENOSYS, it no longer costs a round trip through JS per open. */
    if (h->opcode == GF_FUSE_IOCTL) {
      reply_error(s, h->unique, ENOTTY);
      continue;
    }
    if (h->opcode == GF_FUSE_READ && (size_t)n >= sizeof *h + sizeof(struct gf_read_in)) {
      const struct gf_read_in *r = (const struct gf_read_in *)(buf + sizeof *h);
      const struct gf_bound *b = bound_locked(s, r->fh, GF_BIND_READ);
      if (b) {
        if (!serve_read_splice(s, h, r, b, &pipe, data)) serve_read(s, h, r, b->fd, data);
        pthread_rwlock_unlock(&s->bound_lock);
        continue;
      }
    }
    if (h->opcode == GF_FUSE_WRITE && (size_t)n >= sizeof *h + sizeof(struct gf_write_in)) {
      const struct gf_write_in *w = (const struct gf_write_in *)(buf + sizeof *h);
      if ((size_t)n - sizeof *h - sizeof *w >= w->size) {
        const struct gf_bound *b = bound_locked(s, w->fh, GF_BIND_WRITE);
        if (b) {
          serve_write(s, h, w, b, buf + sizeof *h + sizeof *w);
          pthread_rwlock_unlock(&s->bound_lock);
          continue;
        }
      }
    }
    void *copy = malloc((size_t)n);
    if (!copy) {
      reply_error(s, h->unique, ENOMEM);
      continue;
    }
    memcpy(copy, buf, (size_t)n);
    atomic_fetch_add(&s->stat_forwarded, 1);
    s->forward(s, copy, (size_t)n);
  }
  free(raw);
  free(data);
  pipe_close(&pipe);
  if (atomic_fetch_sub(&s->live_threads, 1) == 1) s->forward(s, NULL, 0); /* last one out */
  return NULL;
}

int gf_session_start(struct gf_session *s, gf_forward_fn fwd, void *user) {
  s->forward = fwd;
  s->user = user;
  int rc = queue_start(s, &s->notifications);
  if (rc == 0) rc = queue_start(s, &s->replies);
  if (rc < 0) {
    queue_join(&s->notifications);
    return rc;
  }
  atomic_store(&s->live_threads, s->cfg.threads);
  for (int i = 0; i < s->cfg.threads; i++) {
    if (pthread_create(&s->threads[i], NULL, reader_main, s) != 0) {
      /* Threads already started keep serving; account for the ones that never ran. */
      int missing = s->cfg.threads - i;
      s->nthreads = i;
      if (atomic_fetch_sub(&s->live_threads, missing) == missing) s->forward(s, NULL, 0);
      if (i > 0) return 0;
      queue_join(&s->replies);
      queue_join(&s->notifications);
      return -EAGAIN;
    }
    s->nthreads = i + 1;
  }
  return 0;
}

int gf_session_reply(struct gf_session *s, const struct iovec *iov, int iovcnt) {
  return write_all_iov(s->devfd, iov, iovcnt);
}

int gf_session_reply_queued(struct gf_session *s, const struct iovec *iov, int iovcnt) {
  return queue_push(&s->replies, iov, iovcnt);
}

int gf_session_notify(struct gf_session *s, const void *msg, size_t len) {
  struct iovec iov = {(void *)msg, len};
  return queue_push(&s->notifications, &iov, 1);
}

int gf_session_bind(struct gf_session *s, uint64_t fh, int fd, int mode) {
  if (fh > (1u << 24)) return -EINVAL; /* handles are small integers allocated by the TypeScript side */
  if (mode != GF_BIND_READ && mode != GF_BIND_WRITE) return -EINVAL;
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  if (mode == GF_BIND_WRITE && ((fl & O_ACCMODE) == O_RDONLY || (fl & O_APPEND))) return -EBADF; /* pwrite at the kernel's offsets */
  int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dupfd < 0) return -errno;
  int direct_fd = -1; /* a second description of the file, for whole-page writes (-1: O_DIRECT unsupported) */
  if (mode == GF_BIND_WRITE) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", dupfd);
    direct_fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
  }
  pthread_rwlock_wrlock(&s->bound_lock);
  if (fh >= s->bound_cap) {
    size_t cap = s->bound_cap ? s->bound_cap : 256;
    while (cap <= fh) cap *= 2;
    struct gf_bound *grown = realloc(s->bound, cap * sizeof *grown);
    if (!grown) {
      pthread_rwlock_unlock(&s->bound_lock);
      close(dupfd);
      if (direct_fd >= 0) close(direct_fd);
      return -ENOMEM;
    }
    for (size_t i = s->bound_cap; i < cap; i++) grown[i] = (struct gf_bound){.fd = -1, .direct_fd = -1, .mode = 0, .size = 0};
    s->bound = grown;
    s->bound_cap = cap;
  }
  int old = s->bound[fh].fd, old_direct = s->bound[fh].direct_fd;
  s->bound[fh] = (struct gf_bound){.fd = dupfd, .direct_fd = direct_fd, .mode = mode, .size = (uint64_t)st.st_size};
  pthread_rwlock_unlock(&s->bound_lock);
  if (old >= 0) close(old);
  if (old_direct >= 0) close(old_direct);
  return 0;
}

int gf_session_unbind(struct gf_session *s, uint64_t fh) {
  int old = -1, old_direct = -1;
  pthread_rwlock_wrlock(&s->bound_lock);
  if (fh < s->bound_cap) {
    old = s->bound[fh].fd;
    old_direct = s->bound[fh].direct_fd;
    s->bound[fh].fd = -1;
    s->bound[fh].direct_fd = -1;
  }
  pthread_rwlock_unlock(&s->bound_lock);
  if (old >= 0) close(old);
  if (old_direct >= 0) close(old_direct);
  return old >= 0 ? 0 : -ENOENT;
}

int gf_session_backing_open(struct gf_session *s, int fd) {
  if (!s->info.passthrough) return -EOPNOTSUPP;
  struct gf_backing_map map = {.fd = fd, .flags = 0, .padding = 0};
  int id = ioctl(s->devfd, GF_DEV_IOC_BACKING_OPEN, &map);
  return id < 0 ? -errno : id;
}

int gf_session_backing_close(struct gf_session *s, int backing_id) {
  uint32_t id = (uint32_t)backing_id;
  return ioctl(s->devfd, GF_DEV_IOC_BACKING_CLOSE, &id) < 0 ? -errno : 0;
}

void gf_session_join(struct gf_session *s) {
  atomic_store(&s->stopping, 1);
  for (int i = 0; i < s->nthreads; i++) pthread_join(s->threads[i], NULL);
  s->nthreads = 0;
  queue_join(&s->replies);
  queue_join(&s->notifications);
}

void gf_session_destroy(struct gf_session *s) {
  for (size_t i = 0; i < s->bound_cap; i++) {
    if (s->bound[i].fd >= 0) close(s->bound[i].fd);
    if (s->bound[i].direct_fd >= 0) close(s->bound[i].direct_fd);
  }
  free(s->bound);
  s->bound = NULL;
  s->bound_cap = 0;
  queue_destroy(&s->replies);
  queue_destroy(&s->notifications);
  if (s->devfd >= 0) close(s->devfd);
  s->devfd = -1;
  pthread_rwlock_destroy(&s->bound_lock);
}
