#!/usr/bin/env bash
# Build and open Berth Desktop on its embedded engine (the README's first command ends here).
# With a display it opens the window. Without one ($DISPLAY unset, e.g. over ssh) it starts
# the window under Xvfb, saves a screenshot once the containers list is up, and says how to
# look at it; BERTH_DESKTOP_ONESHOT=1 then exits instead of keeping the app running.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash scripts/install.sh app
echo "==> building the UI (ui/, Vite + Svelte)"
npm --prefix ui run build --silent >/dev/null
echo "==> building berth and berth-desktop (release)"
cargo build --release -p berth -p berth-desktop --quiet
target=${CARGO_TARGET_DIR:-$repo/target}
export BERTH_BIN="$target/release/berth"
app="$target/release/berth-desktop"

if [ -n "${DISPLAY:-}" ] && [ -z "${BERTH_DESKTOP_XVFB:-}" ]; then
  echo "==> opening Berth (close the window to hide it; quit from the tray)"
  exec "$app"
fi

display=77
while [ -e "/tmp/.X11-unix/X$display" ] || [ -e "/tmp/.X$display-lock" ]; do display=$((display + 1)); done
echo "==> no display: running Berth under Xvfb :$display (install a desktop to see the window live)"
Xvfb ":$display" -screen 0 1280x820x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
app_pid=""
cleanup() {
  [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null || true
  kill "$xvfb_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$display" ] && break; sleep 0.1; done
export DISPLAY=":$display" BERTH_DESKTOP_QUIT_ON_CLOSE=1
shot=${BERTH_DESKTOP_SCREENSHOT:-$(mktemp -d)/berth-desktop.png}
log="${shot%.png}.log"
"$app" >"$log" 2>&1 &
app_pid=$!
# A first launch can take 10 s or more to paint (WebKit's caches are cold). Until it has,
# the capture is one colour (the bare root window, or the window's empty background); the
# rendered UI has text and icons in many. Wait for that, then a moment more for the list.
limit=${BERTH_DESKTOP_PAINT_TIMEOUT:-90}
painted=""
start=$SECONDS
while [ $((SECONDS - start)) -lt "$limit" ]; do
  kill -0 "$app_pid" 2>/dev/null || { echo "==> Berth Desktop exited before its window painted; its log is $log" >&2; exit 1; }
  if import -window root "$shot" 2>/dev/null &&
    [ "$(convert "$shot" -format '%k' info: 2>/dev/null || echo 0)" -ge 64 ]; then
    painted=1
    break
  fi
  sleep 0.5
done
if [ -z "$painted" ]; then
  echo "==> Berth Desktop's window had not painted after ${limit} s; its log is $log" >&2
  exit 1
fi
sleep 1.5
import -window root "$shot"
echo "==> the window painted after $((SECONDS - start)) s"
echo "==> Berth is running on the embedded engine; screenshot: $shot"
echo "    look at it live: x11vnc -display :$display (then a VNC viewer), or take another: DISPLAY=:$display import -window root shot.png"
if [ -n "${BERTH_DESKTOP_ONESHOT:-}" ]; then
  exit 0
fi
echo "    press Ctrl-C to quit"
wait "$app_pid"
