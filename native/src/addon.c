/* N-API glue: exposes mount/unmount and a FUSE session to TypeScript (src/fuse/native.ts).
 * Requests that C does not answer itself are handed to JS as external Buffers (no second copy)
 * through a non-blocking threadsafe function, so reader threads never wait for JS. */
#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kernel_abi.h"
#include "mount.h"
#include "session.h"

#define CHECK(env, call)                                           \
  do {                                                             \
    if ((call) != napi_ok) {                                       \
      napi_throw_error((env), NULL, "napi call failed: " #call);   \
      return NULL;                                                 \
    }                                                              \
  } while (0)

struct js_session {
  struct gf_session core;
  napi_threadsafe_function tsfn;
  int joined;
};

static napi_value throw_errno(napi_env env, int err, const char *msg) {
  napi_value code, text, error, num;
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, NULL, text, &error);
  napi_create_int32(env, err, &num);
  napi_set_named_property(env, error, "errno", num);
  napi_throw(env, error);
  return NULL;
}

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t len) {
  size_t n;
  return napi_get_value_string_utf8(env, v, buf, len, &n) == napi_ok && n < len - 1 ? 0 : -1;
}

static int prop_int(napi_env env, napi_value obj, const char *name, int def) {
  napi_value v;
  napi_valuetype t;
  int32_t out;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return def;
  if (t == napi_boolean) {
    bool b;
    napi_get_value_bool(env, v, &b);
    return b;
  }
  if (t != napi_number || napi_get_value_int32(env, v, &out) != napi_ok) return def;
  return out;
}

static struct js_session *get_session(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "not a FUSE session");
    return NULL;
  }
  return p;
}

/* mount(mountpoint, { fsname, subtype, allowOther, defaultPermissions, readOnly }) -> { fd, fusermount } */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char mountpoint[4096], fsname[128] = "gradient", subtype[64] = "gradient";
  if (argc < 2 || get_string(env, argv[0], mountpoint, sizeof mountpoint) < 0) {
    napi_throw_type_error(env, NULL, "mount(mountpoint, options)");
    return NULL;
  }
  napi_value v;
  if (napi_get_named_property(env, argv[1], "fsname", &v) == napi_ok) get_string(env, v, fsname, sizeof fsname);
  if (napi_get_named_property(env, argv[1], "subtype", &v) == napi_ok) get_string(env, v, subtype, sizeof subtype);
  struct gf_mount_opts o = {
      .mountpoint = mountpoint,
      .fsname = fsname,
      .subtype = subtype,
      .allow_other = prop_int(env, argv[1], "allowOther", 0),
      .default_permissions = prop_int(env, argv[1], "defaultPermissions", 1),
      .read_only = prop_int(env, argv[1], "readOnly", 0),
      .max_read = (unsigned)gf_splice_read_bytes(256),
  };
  char err[512] = "";
  int used_fusermount = 0;
  int fd = gf_mount(&o, &used_fusermount, err, sizeof err);
  if (fd < 0) return throw_errno(env, -fd, err);
  napi_value out, b;
  CHECK(env, napi_create_object(env, &out));
  napi_set_named_property(env, out, "fd", num(env, fd));
  napi_get_boolean(env, used_fusermount, &b);
  napi_set_named_property(env, out, "fusermount", b);
  return out;
}

/* unmount(mountpoint, lazy) -> 0 or -errno */
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char mountpoint[4096];
  bool lazy = false;
  if (argc < 1 || get_string(env, argv[0], mountpoint, sizeof mountpoint) < 0) {
    napi_throw_type_error(env, NULL, "unmount(mountpoint, lazy)");
    return NULL;
  }
  if (argc > 1) napi_get_value_bool(env, argv[1], &lazy);
  return num(env, gf_unmount(mountpoint, lazy));
}

static void free_request(napi_env env, void *data, void *hint) { free(data); }

/* JS thread: deliver one request (or the end of the session, data == NULL). */
static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  struct js_session *js = context;
  if (!env) { /* the function is being torn down */
    free(data);
    return;
  }
  napi_value arg, undef;
  napi_get_undefined(env, &undef);
  if (data) {
    uint32_t len;
    memcpy(&len, data, sizeof len); /* fuse_in_header.len: the bytes read */
    if (napi_create_external_buffer(env, len, data, free_request, NULL, &arg) != napi_ok) {
      free(data);
      return;
    }
  } else {
    napi_get_null(env, &arg);
  }
  napi_call_function(env, undef, cb, 1, &arg, NULL);
  if (!data) napi_release_threadsafe_function(js->tsfn, napi_tsfn_release);
}

static void forward(struct gf_session *s, void *req, size_t len) {
  struct js_session *js = (struct js_session *)s;
  if (napi_call_threadsafe_function(js->tsfn, req, napi_tsfn_nonblocking) != napi_ok) free(req);
}

static napi_value init_info(napi_env env, const struct gf_init_info *i) {
  napi_value o, b;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "major", num(env, i->major));
  napi_set_named_property(env, o, "minor", num(env, i->minor));
  napi_set_named_property(env, o, "replyMinor", num(env, i->reply_minor));
  napi_set_named_property(env, o, "kernelFlagsLow", num(env, (double)(uint32_t)i->kernel_flags));
  napi_set_named_property(env, o, "kernelFlagsHigh", num(env, (double)(uint32_t)(i->kernel_flags >> 32)));
  napi_set_named_property(env, o, "flagsLow", num(env, (double)(uint32_t)i->flags));
  napi_set_named_property(env, o, "flagsHigh", num(env, (double)(uint32_t)(i->flags >> 32)));
  napi_set_named_property(env, o, "maxWrite", num(env, i->max_write));
  napi_set_named_property(env, o, "maxReadahead", num(env, i->max_readahead));
  napi_get_boolean(env, i->passthrough, &b);
  napi_set_named_property(env, o, "passthrough", b);
  return o;
}

static double prop_num(napi_env env, napi_value obj, const char *name) {
  napi_value v;
  double out = 0;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_get_value_double(env, v, &out) != napi_ok) return 0;
  return out;
}

static uint64_t prop_u64(napi_env env, napi_value obj, const char *low, const char *high) {
  return (uint64_t)(uint32_t)prop_num(env, obj, low) | (uint64_t)(uint32_t)prop_num(env, obj, high) << 32;
}

/* The inverse of init_info(): what an earlier process's INIT negotiated, for gf_session_adopt. */
static struct gf_init_info init_info_from(napi_env env, napi_value o) {
  return (struct gf_init_info){
      .major = (uint32_t)prop_num(env, o, "major"),
      .minor = (uint32_t)prop_num(env, o, "minor"),
      .reply_minor = (uint32_t)prop_num(env, o, "replyMinor"),
      .kernel_flags = prop_u64(env, o, "kernelFlagsLow", "kernelFlagsHigh"),
      .flags = prop_u64(env, o, "flagsLow", "flagsHigh"),
      .max_write = (uint32_t)prop_num(env, o, "maxWrite"),
      .max_readahead = (uint32_t)prop_num(env, o, "maxReadahead"),
      .passthrough = prop_int(env, o, "passthrough", 0),
  };
}

/* start(fd, { threads, maxPages, passthrough, maxStackDepth, initTimeoutMs, cloneDevice }, onRequest, adopt?)
 *   -> { session, init }. adopt: the init of an earlier process on the same fd (no INIT is read). The fd is the
 * session's from then on (closed by close()), except when start throws. */
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "start(fd, config, onRequest)");
    return NULL;
  }
  struct gf_config cfg = {
      .threads = prop_int(env, argv[1], "threads", 4),
      .max_pages = (uint32_t)prop_int(env, argv[1], "maxPages", 256),
      .splice = prop_int(env, argv[1], "splice", 1),
      .want_passthrough = prop_int(env, argv[1], "passthrough", 1),
      .max_stack_depth = (uint32_t)prop_int(env, argv[1], "maxStackDepth", 1),
      .init_timeout_ms = prop_int(env, argv[1], "initTimeoutMs", 10000),
  };
  struct js_session *js = calloc(1, sizeof *js);
  if (!js) return throw_errno(env, ENOMEM, "out of memory");
  char err[512] = "";
  napi_valuetype adopt_type = napi_undefined;
  if (argc > 3) napi_typeof(env, argv[3], &adopt_type);
  int rc;
  if (adopt_type == napi_object) {
    struct gf_init_info saved = init_info_from(env, argv[3]);
    rc = gf_session_adopt(&js->core, fd, &cfg, &saved);
    snprintf(err, sizeof err, "cannot adopt the FUSE session: %s", strerror(-rc));
  } else {
    rc = gf_session_init(&js->core, fd, &cfg, err, sizeof err);
  }
  if (rc < 0) {
    free(js); /* the fd stays with the caller, who unmounts */
    return throw_errno(env, -rc, err);
  }
  /* cloneDevice: 0 never, 1 always, 2 when the kernel cannot resend requests a dead process had read */
  int clone = prop_int(env, argv[1], "cloneDevice", 0);
  if (clone == 2) clone = !(js->core.info.kernel_flags & GF_HAS_RESEND);
  if (clone) {
    rc = gf_session_clone_device(&js->core);
    if (rc < 0) {
      js->core.devfd = -1;
      gf_session_destroy(&js->core);
      free(js);
      return throw_errno(env, -rc, "cannot clone /dev/fuse (FUSE_DEV_IOC_CLONE)");
    }
  }
  int own_devfd = js->core.devfd != fd; /* a clone: ours to close whatever happens */
  napi_value name;
  napi_create_string_utf8(env, "gradient-fuse", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, NULL, NULL, js, call_js, &js->tsfn) != napi_ok) {
    if (!own_devfd) js->core.devfd = -1;
    gf_session_destroy(&js->core);
    free(js);
    return throw_errno(env, EIO, "cannot create the request queue");
  }
  rc = gf_session_start(&js->core, forward, js);
  if (rc < 0) {
    napi_release_threadsafe_function(js->tsfn, napi_tsfn_abort);
    if (!own_devfd) js->core.devfd = -1;
    gf_session_destroy(&js->core);
    free(js);
    return throw_errno(env, -rc, "cannot start reader threads");
  }
  napi_value out, ext;
  CHECK(env, napi_create_object(env, &out));
  CHECK(env, napi_create_external(env, js, NULL, NULL, &ext));
  napi_set_named_property(env, out, "session", ext);
  napi_set_named_property(env, out, "init", init_info(env, &js->core.info));
  napi_value cloned;
  napi_get_boolean(env, clone != 0, &cloned);
  napi_set_named_property(env, out, "cloned", cloned);
  return out;
}

#define MAX_IOV 64

/* reply(session, [Buffer...], queued) -> 0 or -errno. The buffers form one message (header first); queued:
 * copied and written by the reply thread (for large replies), else written before returning. */
static napi_value js_reply(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct js_session *js = argc >= 2 ? get_session(env, argv[0]) : NULL;
  if (!js) return NULL;
  bool queued = false;
  if (argc > 2) napi_get_value_bool(env, argv[2], &queued);
  uint32_t n;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok || n == 0 || n > MAX_IOV) {
    napi_throw_type_error(env, NULL, "reply needs 1..64 buffers");
    return NULL;
  }
  struct iovec iov[MAX_IOV];
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    void *data;
    size_t len;
    if (napi_get_element(env, argv[1], i, &el) != napi_ok || napi_get_buffer_info(env, el, &data, &len) != napi_ok) {
      napi_throw_type_error(env, NULL, "reply buffers must be Buffers");
      return NULL;
    }
    iov[i].iov_base = data;
    iov[i].iov_len = len;
  }
  int rc = queued ? gf_session_reply_queued(&js->core, iov, (int)n) : gf_session_reply(&js->core, iov, (int)n);
  return num(env, rc);
}

/* notify(session, Buffer) -> 0 or -errno (queued for the notifier thread) */
static napi_value js_notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct js_session *js = argc == 2 ? get_session(env, argv[0]) : NULL;
  if (!js) return NULL;
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "notify(session, Buffer)");
    return NULL;
  }
  return num(env, gf_session_notify(&js->core, data, len));
}

/* bind(session, fh, fd, mode) / unbind(session, fh) / backingOpen(session, fd) / backingClose(session, id) */
static napi_value session_int_op(napi_env env, napi_callback_info info, int which) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct js_session *js = argc >= 2 ? get_session(env, argv[0]) : NULL;
  if (!js) return NULL;
  int64_t a = 0;
  int32_t b = -1, mode = 0;
  if (napi_get_value_int64(env, argv[1], &a) != napi_ok ||
      (which == 0 && (argc < 4 || napi_get_value_int32(env, argv[2], &b) != napi_ok || napi_get_value_int32(env, argv[3], &mode) != napi_ok))) {
    napi_throw_type_error(env, NULL, "bad arguments");
    return NULL;
  }
  switch (which) {
    case 0: return num(env, gf_session_bind(&js->core, (uint64_t)a, b, mode));
    case 1: return num(env, gf_session_unbind(&js->core, (uint64_t)a));
    case 2: return num(env, gf_session_backing_open(&js->core, (int)a));
    default: return num(env, gf_session_backing_close(&js->core, (int)a));
  }
}
static napi_value js_bind(napi_env env, napi_callback_info info) { return session_int_op(env, info, 0); }
static napi_value js_unbind(napi_env env, napi_callback_info info) { return session_int_op(env, info, 1); }
static napi_value js_backing_open(napi_env env, napi_callback_info info) { return session_int_op(env, info, 2); }
static napi_value js_backing_close(napi_env env, napi_callback_info info) { return session_int_op(env, info, 3); }

/* stats(session) -> { fastReads, fastBytes, fastWrites, fastWritten, forwarded, notifyErrors, replyErrors } */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct js_session *js = argc == 1 ? get_session(env, argv[0]) : NULL;
  if (!js) return NULL;
  napi_value o;
  CHECK(env, napi_create_object(env, &o));
  napi_set_named_property(env, o, "fastReads", num(env, (double)atomic_load(&js->core.stat_fast_reads)));
  napi_set_named_property(env, o, "fastBytes", num(env, (double)atomic_load(&js->core.stat_fast_bytes)));
  napi_set_named_property(env, o, "fastWrites", num(env, (double)atomic_load(&js->core.stat_fast_writes)));
  napi_set_named_property(env, o, "fastWritten", num(env, (double)atomic_load(&js->core.stat_fast_written)));
  napi_set_named_property(env, o, "forwarded", num(env, (double)atomic_load(&js->core.stat_forwarded)));
  napi_set_named_property(env, o, "notifyErrors", num(env, (double)atomic_load(&js->core.stat_notify_errors)));
  napi_set_named_property(env, o, "replyErrors", num(env, (double)atomic_load(&js->core.stat_reply_errors)));
  return o;
}

/* close(session): after the session has ended (onRequest(null)), joins threads and frees it. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct js_session *js = argc == 1 ? get_session(env, argv[0]) : NULL;
  if (!js) return NULL;
  if (!js->joined) {
    js->joined = 1;
    gf_session_join(&js->core);
    gf_session_destroy(&js->core);
    /* The external keeps pointing here; it is never dereferenced again once joined. */
  }
  return NULL;
}

/* syncfs(fd) -> Promise<0 or -errno>, off the JS thread: makes everything written on fd's filesystem durable
 * in one call (the cache's group commit: one instead of an fdatasync per file written). */
struct syncfs_job {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int result;
};

static void syncfs_execute(napi_env env, void *data) {
  struct syncfs_job *job = data;
  job->result = syncfs(job->fd) < 0 ? -errno : 0;
}

static void syncfs_complete(napi_env env, napi_status status, void *data) {
  struct syncfs_job *job = data;
  napi_resolve_deferred(env, job->deferred, num(env, status == napi_ok ? job->result : -ECANCELED));
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise, name;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "syncfs(fd)");
    return NULL;
  }
  struct syncfs_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "out of memory");
  job->fd = fd;
  CHECK(env, napi_create_promise(env, &job->deferred, &promise));
  CHECK(env, napi_create_string_utf8(env, "gradient-syncfs", NAPI_AUTO_LENGTH, &name));
  if (napi_create_async_work(env, NULL, name, syncfs_execute, syncfs_complete, job, &job->work) != napi_ok) {
    napi_resolve_deferred(env, job->deferred, num(env, -EIO));
    free(job);
  } else if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    napi_resolve_deferred(env, job->deferred, num(env, -EIO));
    free(job);
  }
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
      {"unmount", NULL, js_unmount, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
      {"reply", NULL, js_reply, NULL, NULL, NULL, napi_default, NULL},
      {"notify", NULL, js_notify, NULL, NULL, NULL, napi_default, NULL},
      {"bind", NULL, js_bind, NULL, NULL, NULL, napi_default, NULL},
      {"unbind", NULL, js_unbind, NULL, NULL, NULL, napi_default, NULL},
      {"backingOpen", NULL, js_backing_open, NULL, NULL, NULL, napi_default, NULL},
      {"backingClose", NULL, js_backing_close, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"syncfs", NULL, js_syncfs, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
