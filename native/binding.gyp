{
  "targets": [
    {
      "target_name": "gradient_fuse",
      "sources": ["src/addon.c", "src/session.c", "src/mount.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "libraries": ["-lpthread"]
    }
  ]
}
