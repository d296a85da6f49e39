/* Mounting and unmounting: mount(2) when we hold CAP_SYS_ADMIN, otherwise fusermount3, which mounts
 * for us and hands back the /dev/fuse descriptor over a Unix socket (SCM_RIGHTS), as libfuse does. */
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int mount_direct(const struct gf_mount_opts *o, char *err, size_t errlen) {
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "open /dev/fuse: %s", strerror(e));
    return -e;
  }
  struct stat st;
  if (stat(o->mountpoint, &st) < 0) {
    int e = errno;
    close(fd);
    snprintf(err, errlen, "mountpoint %s: %s", o->mountpoint, strerror(e));
    return -e;
  }
  char data[512], type[128];
  char max_read[32] = "";
  if (o->max_read) snprintf(max_read, sizeof max_read, ",max_read=%u", o->max_read);
  snprintf(data, sizeof data, "fd=%d,rootmode=%o,user_id=%u,group_id=%u%s%s%s", fd, st.st_mode & S_IFMT,
           (unsigned)getuid(), (unsigned)getgid(), o->allow_other ? ",allow_other" : "",
           o->default_permissions ? ",default_permissions" : "", max_read);
  snprintf(type, sizeof type, "fuse.%s", o->subtype);
  unsigned long flags = MS_NOSUID | MS_NODEV | (o->read_only ? MS_RDONLY : 0);
  if (mount(o->fsname, o->mountpoint, type, flags, data) < 0) {
    int e = errno;
    close(fd);
    snprintf(err, errlen, "mount %s: %s", o->mountpoint, strerror(e));
    return -e;
  }
  return fd;
}

static int receive_fd(int sock) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctrl;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf, .msg_controllen = sizeof ctrl.buf};
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return n < 0 ? -errno : -EIO;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return -EIO;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

/* What fusermount3 said on stderr, on one line (it explains its own failures: /dev/fuse, fuse.conf, the
 * mountpoint). Read after it exited, so the pipe holds all of it; non-blocking in case anything kept it open. */
static void read_stderr(int fd, char *out, size_t outlen) {
  fcntl(fd, F_SETFL, O_NONBLOCK);
  ssize_t n = read(fd, out, outlen - 1);
  out[n > 0 ? n : 0] = '\0';
  for (char *c = out; *c; c++)
    if (*c == '\n') *c = c[1] ? ' ' : '\0';
}

static int mount_fusermount(const struct gf_mount_opts *o, char *err, size_t errlen) {
  int sv[2], errpipe[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return -errno;
  if (pipe2(errpipe, O_CLOEXEC) < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    return -e;
  }
  fcntl(sv[0], F_SETFD, FD_CLOEXEC); /* ours; sv[1] is inherited by fusermount3 */
  char opts[512], commfd[32];
  snprintf(opts, sizeof opts, "rw,nosuid,nodev,fsname=%s,subtype=%s%s%s%s", o->fsname, o->subtype,
           o->allow_other ? ",allow_other" : "", o->default_permissions ? ",default_permissions" : "",
           o->read_only ? ",ro" : "");
  snprintf(commfd, sizeof commfd, "_FUSE_COMMFD=%d", sv[1]);
  size_t n = 0;
  while (environ[n]) n++;
  char **envp = calloc(n + 2, sizeof *envp);
  if (!envp) {
    close(sv[0]);
    close(sv[1]);
    close(errpipe[0]);
    close(errpipe[1]);
    return -ENOMEM;
  }
  memcpy(envp, environ, n * sizeof *envp);
  envp[n] = commfd;
  char *argv[] = {"fusermount3", "-o", opts, "--", (char *)o->mountpoint, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, errpipe[1], 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, "fusermount3", &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  free(envp);
  close(sv[1]);
  close(errpipe[1]);
  if (rc != 0) {
    close(sv[0]);
    close(errpipe[0]);
    snprintf(err, errlen, "cannot run fusermount3 (apt-get install fuse3): %s", strerror(rc));
    return -rc;
  }
  int fd = receive_fd(sv[0]);
  close(sv[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (fd < 0) {
    char said[256];
    read_stderr(errpipe[0], said, sizeof said);
    snprintf(err, errlen, "fusermount3 failed to mount %s (exit %d)%s%s", o->mountpoint,
             WIFEXITED(status) ? WEXITSTATUS(status) : -1, said[0] ? ": " : "", said);
  }
  close(errpipe[0]);
  return fd;
}

int gf_mount(const struct gf_mount_opts *o, int *used_fusermount, char *err, size_t errlen) {
  *used_fusermount = 0;
  int fd = mount_direct(o, err, errlen);
  if (fd >= 0 || (fd != -EPERM && fd != -EACCES)) return fd;
  *used_fusermount = 1;
  return mount_fusermount(o, err, errlen);
}

int gf_unmount(const char *mountpoint, int lazy) {
  return umount2(mountpoint, lazy ? MNT_DETACH : 0) < 0 ? -errno : 0;
}
