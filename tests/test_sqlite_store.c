/* The SQLite job store (libapsched-sqlite): the conformance kit on real
 * files, the readable schema, restarts, refusals, rows it cannot decode,
 * the one-scheduler lock, and failures of the database. Every file lives in
 * a fresh temporary directory, removed at the end. */
#include "store_conformance.h"
#include "apsched_sqlite.h"

#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];
static atomic_int file_seq;

/* A new file name in the temporary directory. */
static void new_path(char *buf, size_t len, const char *stem) {
  snprintf(buf, len, "%s/%s-%d.db", tmpdir, stem, atomic_fetch_add(&file_seq, 1));
}

static void remove_tmpdir(void) {
  DIR *d = opendir(tmpdir);
  if (!d) return;
  struct dirent *e;
  char path[512];
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(tmpdir);
}

static apsched_jobstore *open_store(const char *path, apsched_sqlite_durability durability) {
  apsched_sqlite_options o = {.path = path, .durability = durability};
  apsched_jobstore *st = NULL;
  char err[256] = "";
  int rc = apsched_sqlite_store_create(&o, &st, err, sizeof err);
  if (rc != APSCHED_OK) fail_msg("sqlite store on %s: %s (%s)", path, apsched_strerror(rc), err);
  return st;
}

/* ------------------------------------------------------ conformance kit */

static apsched_jobstore *make_store(void *ud) {
  char path[300];
  new_path(path, sizeof path, "kit");
  return open_store(path, *(apsched_sqlite_durability *)ud);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "%s/apsched-sqlite-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  apsched_sqlite_durability full = APSCHED_SQLITE_FULL, normal = APSCHED_SQLITE_NORMAL;
  store_kit kit_full = {"sqlite store (synchronous=FULL)", make_store, &full};
  store_kit kit_normal = {"sqlite store (synchronous=NORMAL)", make_store, &normal};
  int failed = store_kit_run(&kit_full);
  failed += store_kit_run(&kit_normal);
  remove_tmpdir();
  return failed;
}
