#!/bin/sh
# thumbnail.sh — an exec handler for lanework (CONTRACT section 7), in POSIX
# sh with nothing but coreutils, sed and tr.
#
# The worker runs it once per attempt of a "thumbnail" job:
#   stdin        the payload JSON, e.g. {"image": "cat.png", "size": 64}
#   environment  LANEWORK_JOB_ID, LANEWORK_TENANT, LANEWORK_KIND,
#                LANEWORK_LANE, LANEWORK_ATTEMPT, and LANEWORK_SPOOL_DIR
#                (the job's own directory SPOOL/ID) for spooled jobs
#   stdout       the result, one JSON object
#   exit 0       succeeded; 65 (EX_DATAERR) failed for good, no retry;
#                anything else (or a signal, or the timeout): the attempt
#                failed and is retried while attempts remain; the tail of
#                stderr is the job's error.
#
# It only pretends to make a thumbnail (sleep 0.05). For a spooled job the
# image must be a file of the job directory, and the "thumbnail" is written
# next to it.
#
# Try it by hand:
#   echo '{"image":"cat.png"}' | LANEWORK_JOB_ID=j1 LANEWORK_TENANT=acme \
#     LANEWORK_KIND=thumbnail LANEWORK_ATTEMPT=1 sh thumbnail.sh
#
# Reading JSON without jq: the fields are found with sed, which is enough for
# this example's flat payloads but is no JSON parser: "image" is taken from
# the first "image": "..." in the text, up to the next double quote, and must
# be a plain name (letters, digits, . _ - / :), so escapes never matter. A
# real handler would use jq or a language with a JSON library.
set -eu

EX_DATAERR=65
EX_USAGE=64

# Fails the job for good: the payload cannot be made to work by retrying.
bad_payload() {
  echo "thumbnail: $*" >&2
  exit "$EX_DATAERR"
}

# $1 as the inside of a JSON string: backslashes and quotes escaped, control
# characters dropped.
json_str() {
  printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g'
}

job=${LANEWORK_JOB_ID:-}
tenant=${LANEWORK_TENANT:-}
kind=${LANEWORK_KIND:-}
attempt=${LANEWORK_ATTEMPT:-}
spool=${LANEWORK_SPOOL_DIR:-}
if [ -z "$job" ] || [ -z "$tenant" ] || [ -z "$kind" ] || [ -z "$attempt" ]; then
  echo "thumbnail: run by lanework-worker: LANEWORK_JOB_ID, LANEWORK_TENANT, LANEWORK_KIND and LANEWORK_ATTEMPT must be set" >&2
  exit "$EX_USAGE"
fi
case $attempt in
  '' | *[!0-9]*) echo "thumbnail: LANEWORK_ATTEMPT is not a number: $attempt" >&2; exit "$EX_USAGE" ;;
esac

# The payload on one line (JSON allows newlines between tokens).
payload=$(tr '\n\r\t' '   ')

# The text that follows the first "KEY": in the payload (empty when KEY is
# absent). \001 marks where the value starts, so a greedy .* cannot skip
# ahead to a later "KEY" (valid JSON never holds a raw \001).
mark=$(printf '\001')
after_key() {
  printf '%s\n' "$payload" | sed -n \
    "s/\"$1\"[[:space:]]*:[[:space:]]*/$mark/
     /$mark/{
       s/^[^$mark]*$mark//p
     }"
}

# "image": the name of the image, a string (required).
rest=$(after_key image)
case $rest in
  '') bad_payload 'payload has no "image" field (expected e.g. {"image": "cat.png"})' ;;
  '"'*) image=${rest#\"}; image=${image%%\"*} ;;
  *) bad_payload '"image" must be a string' ;;
esac
[ -n "$image" ] || bad_payload '"image" must be a non-empty string'
case $image in
  *[!A-Za-z0-9._/:-]*) bad_payload "\"image\" may hold only letters, digits and . _ - / : (got \"$image\")" ;;
  *..*) bad_payload '"image" must not contain ".."' ;;
esac

# "size": the thumbnail's edge in pixels, 8 to 4096 (optional, 128).
rest=$(after_key size)
size=${rest%%[!0-9]*}
if [ -z "$rest" ]; then
  size=128
elif [ -z "$size" ] || [ "${#size}" -gt 4 ] || [ "$size" -lt 8 ] || [ "$size" -gt 4096 ]; then
  bad_payload '"size" must be a whole number from 8 to 4096'
fi

bytes=null
output=null
if [ -n "$spool" ]; then
  # Spooled: the job directory holds the image and receives the thumbnail.
  case $image in
    */* | .*) bad_payload "a spooled job's \"image\" must be a file name in its job directory (got \"$image\")" ;;
  esac
  src=$spool/$image
  if [ ! -f "$src" ] || [ -L "$src" ]; then
    bad_payload "no file \"$image\" in the job directory $spool"
  fi
  bytes=$(wc -c <"$src" | tr -d ' ')
  thumb=thumb-${size}-${image}
  # Write-then-rename: a retry after a crash never sees half a thumbnail.
  printf 'thumbnail %sx%s of %s (%s bytes)\n' "$size" "$size" "$image" "$bytes" >"$spool/.$thumb.tmp"
  mv -f "$spool/.$thumb.tmp" "$spool/$thumb"
  output="\"$(json_str "$thumb")\""
fi

# The work itself.
sleep 0.05

printf '{"image":"%s","size":%s,"bytes":%s,"thumbnail":%s,"job":"%s","tenant":"%s","kind":"%s","attempt":%s}\n' \
  "$(json_str "$image")" "$size" "$bytes" "$output" "$(json_str "$job")" "$(json_str "$tenant")" \
  "$(json_str "$kind")" "$attempt"
