/* Writes the Redis store's Lua scripts, as the store sends them, to
 * DIR/<name>.lua, for bench/redis_scripts_replay.py (which replays a
 * dispatch with them against a private server, under callgrind when
 * asked, to count the server's instructions per run).
 *
 *   redis_scripts_dump DIR */
#include "../src/stores/redis/redis_internal.h"

#include <stdio.h>

static const char *const names[S_COUNT] = {
    [S_PUT] = "put",       [S_REMOVE] = "remove", [S_NEXT] = "next",   [S_CLAIM] = "claim",
    [S_COMMIT] = "commit", [S_ORPHANS] = "orphans", [S_START] = "start", [S_UNSTART] = "unstart",
    [S_CLOSE] = "close",   [S_BEAT] = "beat",     [S_LIST] = "list",   [S_WAIT] = "wait",
    [S_ADD] = "add",       [S_TAKE] = "take",     [S_STOPS] = "stops", [S_MIGRATE] = "migrate",
};

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: redis_scripts_dump DIR\n");
    return 2;
  }
  for (int s = 0; s < S_COUNT; s++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.lua", argv[1], names[s]);
    FILE *f = fopen(path, "w");
    if (!f || fputs(apsched__redis_script_text((redis_script)s), f) < 0 || fclose(f) != 0) {
      perror(path);
      return 1;
    }
  }
  return 0;
}
