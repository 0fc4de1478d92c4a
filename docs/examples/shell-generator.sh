#!/usr/bin/env bash
# A promptgate generator in bash: mosquitto_sub and mosquitto_pub for MQTT, curl for
# AUTOMATIC1111's API, jq for JSON. It follows docs/protocol.md and is small on purpose: one job
# at a time, no retries, no health checks, no progress reports (they are optional: the guest's
# page then says "Generating…" without a bar). promptgate's own generator (generator/) does all that.
#
#   MQTT_HOST=promptgate.lan MQTT_PORT=1883 MQTT_PASSWORD=<token> GENERATOR_ID=shell-box \
#     SD_API_URL=http://127.0.0.1:7860 ./shell-generator.sh
#
# Needs bash 5 (EPOCHREALTIME), GNU coreutils (stdbuf), mosquitto-clients 2, curl, jq. JOBS=n ends it after n jobs
# (default: run until stopped). The password is passed to mosquitto_pub/sub as an argument, so
# other users of the machine can see it in `ps`: run it on a machine of your own.
set -euo pipefail

: "${MQTT_HOST:=127.0.0.1}" "${MQTT_PORT:=1883}" "${GENERATOR_ID:?set GENERATOR_ID}" "${MQTT_PASSWORD:?set MQTT_PASSWORD}"
: "${MQTT_USERNAME:=$GENERATOR_ID}" "${SD_API_URL:?set SD_API_URL}" "${JOBS:=0}"
: "${MAX_PIXELS:=4194304}" "${SD_STEPS:=20}" "${SD_CFG_SCALE:=7}" "${SD_SAMPLER:=Euler a}"

ROOT="promptgate/v2/generators/$GENERATOR_ID"
MQTT=(-h "$MQTT_HOST" -p "$MQTT_PORT" -u "$MQTT_USERNAME" -P "$MQTT_PASSWORD" -q 1)
WORK=$(mktemp -d)
HEARTBEAT_PID=""
# This run of the script: the server ignores an "offline" (such as an old will) of another session.
SESSION=$(cat /proc/sys/kernel/random/uuid)
# The job whose result waits for the server's "stored": until then it stays ours (heartbeats go on).
AWAITING=""

log() { echo "shell-generator: $*" >&2; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
millis() { local micros=${EPOCHREALTIME/[.,]/}; echo $((micros / 1000)); }
# publish TOPIC: the message comes from stdin (-s), so that a large image never lands on a command line.
# Each publish is a short connection of its own, with the client id "<generator id>/<suffix>": the
# broker counts it as this generator without closing the subscriber, which holds the plain id.
publish() { mosquitto_pub "${MQTT[@]}" -i "$GENERATOR_ID/pub-$$-$RANDOM" -t "$1" -s; }

presence() { # presence online|offline
  if [[ $1 == online ]]; then
    jq -nc --arg id "$GENERATOR_ID" --arg session "$SESSION" --arg at "$(now)" --argjson maxPixels "$MAX_PIXELS" --arg awaiting "$AWAITING" \
      '{schemaVersion: 2, generatorId: $id, state: "online", session: $session, at: $at, inFlight: [$awaiting | select(. != "")],
        concurrency: 1, backend: "shell", maxPixels: $maxPixels, healthy: true}'
  else
    jq -nc --arg id "$GENERATOR_ID" --arg session "$SESSION" --arg at "$(now)" '{schemaVersion: 2, generatorId: $id, state: "offline", session: $session, at: $at}'
  fi
}

status() { # status JOB_ID STATE [REASON]
  jq -nc --arg id "$GENERATOR_ID" --arg job "$1" --arg state "$2" --arg reason "${3:-}" --arg at "$(now)" \
    '{schemaVersion: 2, jobId: $job, generatorId: $id, state: $state, at: $at} + (if $reason == "" then {} else {reason: $reason[:2000]} end)' |
    publish "$ROOT/status/$1"
}

# The lease: a job stays ours while we say so at least every leaseMs; we do it every third.
start_heartbeat() { # start_heartbeat JOB_ID LEASE_MS
  local every=$(($2 / 3))
  (
    while sleep "$((every / 1000)).$(printf %03d $((every % 1000)))"; do
      jq -nc --arg id "$GENERATOR_ID" --arg job "$1" --arg at "$(now)" '{schemaVersion: 2, generatorId: $id, jobIds: [$job], at: $at}' |
        publish "$ROOT/heartbeat" || log "heartbeat not sent"
    done
  ) &
  HEARTBEAT_PID=$!
}
stop_heartbeat() {
  if [[ -n $HEARTBEAT_PID ]]; then kill "$HEARTBEAT_PID" 2>/dev/null || true; fi
  HEARTBEAT_PID=""
}

run_job() { # run_job JOB_JSON_FILE
  local job=$1 id received started
  id=$(jq -r .jobId "$job")
  received=$(millis)
  start_heartbeat "$id" "$(jq -r .leaseMs "$job")"
  status "$id" accepted
  # The job's own parameters win over this generator's defaults; seed -1 lets A1111 draw one.
  jq -c --argjson steps "$SD_STEPS" --argjson cfg "$SD_CFG_SCALE" --arg sampler "$SD_SAMPLER" '{
      prompt, negative_prompt: .negativePrompt, width, height,
      steps: (.parameters.steps // $steps), cfg_scale: (.parameters.cfgScale // $cfg),
      sampler_name: (.parameters.samplerName // $sampler), restore_faces: (.parameters.restoreFaces // false),
      seed: (.parameters.seed // -1)
    }' "$job" >"$WORK/request.json"
  started=$(millis)
  status "$id" started
  if ! curl -sS --fail-with-body -X POST -H 'Content-Type: application/json' --data @"$WORK/request.json" \
    -o "$WORK/response.json" "$SD_API_URL/sdapi/v1/txt2img" 2>"$WORK/curl.err" ||
    ! jq -e '.images[0] | strings' "$WORK/response.json" >/dev/null; then
    stop_heartbeat
    status "$id" failed "txt2img failed: $(cat "$WORK/curl.err") $(head -c 500 "$WORK/response.json" 2>/dev/null)"
    return
  fi
  # A1111's `info` is JSON inside a string; the seed it used is in there.
  jq -c --slurpfile job "$job" --slurpfile request "$WORK/request.json" --arg id "$GENERATOR_ID" --arg at "$(now)" \
    --argjson queued $((started - received)) --argjson generation $(($(millis) - started)) '
    (.info | fromjson | .seed) as $seed | $job[0] as $j | $request[0] as $r | {
      schemaVersion: 2, jobId: $j.jobId, generatorId: $id, imagePng: .images[0], seed: $seed,
      width: $j.width, height: $j.height,
      parameters: {steps: $r.steps, cfgScale: $r.cfg_scale, samplerName: $r.sampler_name, restoreFaces: $r.restore_faces, seed: $seed},
      backend: "shell", timing: {queuedMs: $queued, generationMs: $generation}, finishedAt: $at
    }' "$WORK/response.json" | publish "$ROOT/results/$id"
  # The heartbeats go on until the server says "stored". (Unlike promptgate's own generator,
  # this script does not send the result again if that never comes: the lease runs out instead.)
  AWAITING=$id
  log "job $id done"
}

finished_job() {
  done_jobs=$((done_jobs + 1))
  if ((JOBS > 0 && done_jobs >= JOBS)); then exit 0; fi
}

cleanup() {
  stop_heartbeat
  presence offline | publish "$ROOT/presence" || true
  if [[ -n ${SUB_PID:-} ]]; then kill "$SUB_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# One long-lived subscriber, whose will says "offline" if this machine drops off. -d prints its
# protocol exchange, so we know when the subscription stands before saying "online"; stdbuf
# (GNU coreutils) makes it print each line at once rather than when its buffer fills.
coproc SUB {
  exec stdbuf -oL mosquitto_sub "${MQTT[@]}" -i "$GENERATOR_ID" -d -t "$ROOT/jobs" -t "$ROOT/control" \
    --will-topic "$ROOT/presence" --will-qos 1 --will-payload "$(presence offline)"
}
done_jobs=0
while IFS= read -r line <&"${SUB[0]}"; do
  case $line in
    "Subscribed (mid:"*) presence online | publish "$ROOT/presence"; log "online as $GENERATOR_ID" ;;
    "{"*)
      if jq -e 'has("command")' <<<"$line" >/dev/null; then
        # stored (the result is safe: forget the job), cancel (the job is no longer ours: a real
        # generator would stop it) or refused. Either ends the wait for "stored".
        log "control: $(jq -r '"\(.command) \(.jobId // .topic)\(if .reason then ": \(.reason)" else "" end)"' <<<"$line")"
        if [[ -n $AWAITING && $(jq -r '.jobId // ""' <<<"$line") == "$AWAITING" ]]; then
          stop_heartbeat
          AWAITING=""
          finished_job
        fi
      else
        printf '%s' "$line" >"$WORK/job.json"
        run_job "$WORK/job.json"
        if [[ -z $AWAITING ]]; then finished_job; fi
      fi
      ;;
  esac
done
log "the connection to the broker ended"
exit 1
