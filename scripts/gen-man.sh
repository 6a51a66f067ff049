#!/bin/sh
# Writes the huddle(1) man page from the binary's own --help texts, so the
# page cannot drift from the options. Usage: scripts/gen-man.sh BIN OUT
set -eu
bin=$1
out=$2
esc() { sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"; }
{
  printf '%s\n' '.TH HUDDLE 1 "" "huddle '"$("$bin" --version | sed 's/^huddle //')"'" "User Commands"'
  printf '%s\n' '.SH NAME'
  printf '%s\n' 'huddle \- self-hosted real-time meeting server (WebRTC signaling, rooms, tokens)'
  printf '%s\n' '.SH SYNOPSIS'
  printf '%s\n' '.B huddle'
  printf '%s\n' '[\fIoptions\fR]'
  printf '%s\n' '.br'
  printf '%s\n' '.B huddle token'
  printf '%s\n' '\-\-user \fIU\fR [\fIoptions\fR]'
  printf '%s\n' '.SH DESCRIPTION'
  printf '%s\n' 'Serves HTTP and WebSocket signaling for WebRTC meetings. Every option is a flag,'
  printf '%s\n' 'a HUDDLE_* environment variable and a config file key. The wire protocol is'
  printf '%s\n' 'described in docs/protocol.md and served as OpenAPI at /webrtc/openapi.json.'
  printf '%s\n' '.SH OPTIONS'
  printf '%s\n' '.nf'
  "$bin" --help | esc
  printf '%s\n' '.fi'
  printf '%s\n' '.SH TOKEN SUB-COMMAND'
  printf '%s\n' '.nf'
  "$bin" token --help | esc
  printf '%s\n' '.fi'
  printf '%s\n' '.SH SIGNALS'
  printf '%s\n' 'SIGTERM or SIGINT: stop accepting, close WebSockets with 1001, flush, exit 0.'
  printf '%s\n' '.SH FILES'
  printf '%s\n' '.TP'
  printf '%s\n' '.I <data-dir>/jwt.secret'
  printf '%s\n' 'The generated HMAC secret (mode 0600), when --jwt-secret is not set.'
  printf '%s\n' '.TP'
  printf '%s\n' '.I <data-dir>/huddle.db'
  printf '%s\n' 'The SQLite database.'
} > "$out"
