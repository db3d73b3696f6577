#!/bin/sh
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined)
# straight from the sources and runs each for $1 seconds (default 30).
# Needs clang and libFuzzer (Debian: clang-14 libclang-rt-14-dev).
# Work files go to $FUZZ_DIR (default: a directory under ${TMPDIR:-/tmp}).
set -eu
secs=${1:-30}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cc=${CC:-clang}
work=${FUZZ_DIR:-${TMPDIR:-/tmp}/apsched-fuzz}
mkdir -p "$work"
flags="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I$root/include -I$root/src"
sources="$root/src/time/civil.c $root/src/time/posix_tz.c $root/src/time/tz.c
         $root/src/time/tz_build.c $root/src/time/tz_convert.c $root/src/time/tzif.c
         $root/src/time/time_text.c $root/src/util/strings.c"

# Seed corpora: a few real zone files and every distinct footer rule.
mkdir -p "$work/corpus_tzif" "$work/corpus_posix_tz"
zi=/usr/share/zoneinfo
for z in Europe/Berlin America/New_York Australia/Lord_Howe Pacific/Apia America/Santiago \
         Europe/Dublin Antarctica/Troll Asia/Kathmandu UTC; do
  [ -f "$zi/$z" ] && cp "$zi/$z" "$work/corpus_tzif/$(echo "$z" | tr / _)"
done
i=0
for s in 'CET-1CEST,M3.5.0,M10.5.0/3' 'EST5EDT,M3.2.0,M11.1.0' '<+0330>-3:30' \
         '<-04>4<-03>,M9.1.6/24,M4.1.6/24' '<-02>2<-01>,M3.5.0/-1,M10.5.0/0' \
         'IST-1GMT0,M10.5.0,M3.5.0/1' 'XXX3EDT4,0/0,J365/25' 'EET-2EEST,M3.4.4/50,M10.4.4/50' \
         '<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45' 'EST5EDT' 'UTC0'; do
  printf '%s' "$s" > "$work/corpus_posix_tz/seed$i"
  i=$((i + 1))
done

# The cron target needs the whole trigger code: link every library source.
all_sources=$(find "$root/src" -name '*.c' | sort)
mkdir -p "$work/corpus_cron"
printf '\000cron[month=%s, day=%s, hour=%s]' "'6-8,11-12'" "'3rd fri'" "'0-3'" > "$work/corpus_cron/seed0"
printf '\001*/15 9-17 * * mon-fri' > "$work/corpus_cron/seed1"

for target in tzif posix_tz cron; do
  srcs=$sources
  [ "$target" = cron ] && srcs=$all_sources
  # shellcheck disable=SC2086
  "$cc" $flags -o "$work/fuzz_$target" "$here/fuzz_$target.c" $srcs -lpthread
  echo "== fuzz_$target for ${secs}s"
  "$work/fuzz_$target" -max_total_time="$secs" -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$work/crash_${target}_" "$work/corpus_$target"
done
