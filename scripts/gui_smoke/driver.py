"""The artist's hands: runs inside the trixie chroot (python3 there, standard library only), starts
Xvfb and a real Blender 4.3 window with in_blender.py, and drives it with real X11 input (xdotool):
Esc on the splash, a mouse click on the Generate Texture button. Screenshots (ImageMagick
`import -window root`) go to $SMOKE_OUT. Then runs the headless batch through the command the
add-on registers: `blender -b -c humantex_batch ...`.

Exit status 0 only if every check passed; $SMOKE_OUT/report.json says which did not.
"""

import json
import os
import subprocess
import sys
import time

OUT = os.environ["SMOKE_OUT"]
DISPLAY = ":99"
SCREEN = (1600, 1000)
HERE = os.path.dirname(os.path.abspath(__file__))
ENV = {**os.environ, "DISPLAY": DISPLAY}
checks = []


def log(message):
    print(f"[gui-smoke {time.strftime('%H:%M:%S')}] {message}", flush=True)


def check(name, ok, detail=""):
    checks.append({"check": name, "ok": bool(ok), "detail": detail})
    log(f"{'PASS' if ok else 'FAIL'} {name}{f': {detail}' if detail else ''}")
    return ok


def state():
    try:
        with open(os.path.join(OUT, "state.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def wait_for(phases, timeout, blender=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = state()
        if current.get("phase") in phases or current.get("phase") == "failed":
            return current
        if blender is not None and blender.poll() is not None:
            return {**current, "phase": "blender_exited"}
        time.sleep(0.2)
    return {**state(), "phase": "timeout"}


def send(command):
    tmp = os.path.join(OUT, "command.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(command)
    os.replace(tmp, os.path.join(OUT, "command"))


def screenshot(name):
    path = os.path.join(OUT, name)
    subprocess.run(["import", "-window", "root", path], env=ENV, check=True)
    log(f"screenshot {path}")
    return path


def xdotool(*args):
    subprocess.run(["xdotool", *map(str, args)], env=ENV, check=True)


def pixels(png, x, y, width, height):
    """RGB rows of a screen rectangle, read through ImageMagick as binary PPM."""
    data = subprocess.run(
        ["magick", png, "-crop", f"{width}x{height}+{x}+{y}", "+repage", "ppm:-"], capture_output=True, check=True
    ).stdout
    # P6 <w> <h> 255, separated by single whitespace, then the RGB bytes.
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1
    w, h = int(fields[1]), int(fields[2])
    rows = [[tuple(data[pos + 3 * (r * w + c) : pos + 3 * (r * w + c) + 3]) for c in range(w)] for r in range(h)]
    return rows


def find_generate_button(png, sidebar):
    """The Generate Texture button: in the sidebar, the tallest run of rows that are button-grey
    (the row is drawn 1.4 times as tall as the others). Read in two columns that miss its icon
    and its centred label: between them, and after the label."""
    x0, y0, width, height = sidebar["x"], sidebar["y"], sidebar["width"], sidebar["height"]
    columns = [x0 + int(0.17 * width), x0 + int(0.80 * width)]
    strips = [pixels(png, cx, y0, 1, height) for cx in columns]

    def is_button(rgb):
        r, g, b = rgb
        return abs(r - g) < 6 and abs(g - b) < 6 and 70 <= r <= 110  # Blender Dark's operator buttons

    runs, start = [], None
    for row in range(height + 1):
        inside = row < height and all(is_button(strip[row][0]) for strip in strips)
        if inside and start is None:
            start = row
        elif not inside and start is not None:
            runs.append((start, row - start))
            start = None
    if not runs:
        return None, runs
    start, tall = max(runs, key=lambda run: run[1])
    return (x0 + width // 2, y0 + start + tall // 2), runs


def find_humantex_tab(png, sidebar):
    """The sidebar's tabs are a vertical strip at its right edge, one run of tab-coloured rows per
    tab between border lines; "HumanTex" is the longest label, so the longest run."""
    x = sidebar["x"] + sidebar["width"] - 8
    strip = pixels(png, x, sidebar["y"], 1, sidebar["height"])
    runs, start = [], None
    for row in range(len(strip) + 1):
        inside = row < len(strip) and 27 <= strip[row][0][0] <= 52
        if inside and start is None:
            start = row
        elif not inside and start is not None:
            runs.append((start, row - start))
            start = None
    runs = [run for run in runs if run[1] >= 20]
    if not runs:
        return None, runs
    start, length = max(runs, key=lambda run: run[1])
    return (x, sidebar["y"] + start + length // 2), runs


class SlowModelServer:
    """Stands in for the model host on 127.0.0.1: 16 MB, slowly (so the progress bar shows), that fail
    the pinned SHA-256, as a wrong or corrupted download would."""

    def __init__(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", str(256 << 16))
                self.end_headers()
                for _ in range(256):
                    self.wfile.write(b"\0" * (1 << 16))
                    time.sleep(0.03)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/densepose_r50_fpn_dl.torchscript"


def download_in_a_window(blender):
    """Download model in the Preferences window: progress while Blender keeps running, then one line."""
    send("download")
    time.sleep(2.5)
    screenshot("01-download-progress.png")
    current = wait_for({"download_done"}, 120, blender)
    time.sleep(1)
    screenshot("01-download-failed.png")
    download = current.get("download", {})
    check("Download runs in the worker while Blender keeps running",
          download.get("result") == ["FINISHED"] and download.get("ticks_while_running", 0) >= 5,
          json.dumps(download))
    last = download.get("last", "")
    folder = os.path.join(OUT, "cache", "humantex", "models")
    check("a failed download is one line, no model file kept",
          "SHA-256" in last and "\n" not in last and not (os.path.isdir(folder) and os.listdir(folder)),
          last)


def run_gui(blender_env):
    xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    blender_log = open(os.path.join(OUT, "blender-gui.log"), "w")
    # --online-mode: Blender's "Allow Online Access", so the Download button shows (the download goes
    # to SlowModelServer on 127.0.0.1 through HUMANTEX_DENSEPOSE_URL, never to the internet).
    blender = subprocess.Popen(["blender", "--online-mode", "--python", os.path.join(HERE, "in_blender.py")],
                               env={**blender_env, "DISPLAY": DISPLAY}, stdout=blender_log, stderr=subprocess.STDOUT)
    try:
        return drive(blender)
    finally:
        if blender.poll() is None:
            time.sleep(3)
            blender.terminate()
            try:
                blender.wait(timeout=20)
            except subprocess.TimeoutExpired:
                blender.kill()
        xvfb.terminate()
        xvfb.wait()


def drive(blender):
    current = wait_for({"prefs_ready"}, 300, blender)
    time.sleep(4)  # the Preferences window draws its first frame
    screenshot("01-preferences.png")
    if not check("extension installed and enabled", current.get("phase") == "prefs_ready" and current.get("enabled"),
                 json.dumps({k: current.get(k) for k in ("phase", "install", "enabled", "errors")})):
        return
    check("add-on entry shows no warning", current.get("warnings") == [], json.dumps(current.get("warnings")))
    check("Check Worker answers", current.get("check_worker", {}).get("ok"), current.get("check_worker", {}).get("text", ""))
    # The DensePose model box is below the fold: scroll the Preferences window (centred) with the wheel.
    xdotool("mousemove", SCREEN[0] // 2, SCREEN[1] // 2)
    xdotool("click", "--repeat", "15", "--delay", "30", "5")
    time.sleep(1)
    screenshot("01-preferences-model.png")
    check("preferences ask the worker about the DensePose model", current.get("densepose_status") is not None,
          json.dumps(current.get("densepose_status")))
    download_in_a_window(blender)

    send("close_prefs")
    current = wait_for({"scene_ready"}, 60, blender)
    if not check("scene ready", current.get("phase") == "scene_ready", json.dumps(current.get("errors"))):
        return
    # The splash screen of a fresh user folder: a real Esc closes it, then the mouse goes to the viewport.
    xdotool("mousemove", SCREEN[0] // 3, SCREEN[1] // 2)
    xdotool("key", "Escape")
    time.sleep(1)
    # The HumanTex tab, as a user picks it: a click on the tab.
    sidebar = current["sidebar"]
    tab, runs = find_humantex_tab(screenshot("02-tabs.png"), sidebar)
    if tab is not None:
        xdotool("mousemove", *tab)
        xdotool("click", "1")
        time.sleep(1.0)
    if not check("HumanTex tab clicked", state().get("category") == "HumanTex",
                 f"{state().get('category')} after a click at {tab}; tab runs {runs}"):
        screenshot("02-panel.png")
        return
    xdotool("mousemove", SCREEN[0] // 3, SCREEN[1] // 2)  # no tooltip over the button in the screenshot
    time.sleep(1.5)
    shot = screenshot("02-panel.png")
    button, runs = find_generate_button(shot, current["sidebar"])
    if not check("Generate Texture button found on screen", button is not None, f"runs {runs[:12]}"):
        return
    xdotool("mousemove", *button)
    time.sleep(0.5)
    xdotool("click", "1")
    log(f"clicked Generate at {button}")

    progress_shots = 0
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        current = state()
        if current.get("phase") in ("done", "failed") or blender.poll() is not None:
            break
        if current.get("phase") == "running" and progress_shots < 3:
            time.sleep(1.0)
            progress_shots += 1
            screenshot(f"03-progress-{progress_shots}.png")
        time.sleep(0.3)
    xdotool("mousemove", SCREEN[0] // 3, SCREEN[1] // 2)  # off the panel: no hover highlight
    time.sleep(1.5)  # one more redraw of the panel with the final message
    screenshot("04-done.png")
    job, result = current.get("job", {}), current.get("result", {})
    check("the click started the modal Generate", bool(job), current.get("phase", ""))
    check("Generate finished", current.get("phase") == "done", json.dumps(result.get("panel_error")))
    fractions = [p[2] for p in job.get("progress", [])]
    check("progress only grows", fractions == sorted(fractions) and len(fractions) >= 3, json.dumps(job.get("progress", [])[:40]))
    check("UI kept redrawing during the job",
          job.get("sidebar_redraws", 0) >= 5 and (job.get("max_gap_s") or 99) < 2.0,
          f"{job.get('sidebar_redraws')} sidebar redraws, {job.get('timer_ticks')} timer ticks in {job.get('seconds')} s, "
          f"longest gap {job.get('max_gap_s')} s")
    images = result.get("images", {})
    size = int(os.environ.get("SMOKE_SIZE", "512"))
    check("material HumanTex_Body with every layer",
          result.get("material") == "HumanTex_Body" and sorted(images) == sorted(
              ("final", "sample", "refine", "mask", "partial", "visibility"))
          and all(i["size"] == [size, size] and i["exists"] for i in images.values())
          and result.get("base_color_from") == "final"
          and images.get("mask", {}).get("colorspace") == "Non-Color",
          json.dumps(result))
    check("panel says where the PNGs went", "PNGs in //humantex/Body" in result.get("panel_message", ""),
          result.get("panel_message", ""))
    send("show_material")
    wait_for({"material_shown"}, 60, blender)
    xdotool("mousemove", SCREEN[0] // 3 + 5, SCREEN[1] // 2)  # an event, so the viewport redraws
    time.sleep(3)
    screenshot("05-material.png")
    send("quit")
    try:
        blender.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass


def run_batch(blender_env):
    """The headless batch through the command the add-on registers (no module alias needed)."""
    manifest = os.path.join(OUT, "jobs.json")
    with open(manifest, "w", encoding="utf-8") as f:
        json.dump({"jobs": [{"object": "Body", "photo": os.environ["SMOKE_PHOTO"], "iuv": os.environ["SMOKE_IUV"],
                             "inds": os.environ["SMOKE_INDS"], "size": 256}]}, f)
    command = ["blender", "-b", "-c", "humantex_batch", "--blend", os.path.join(OUT, "scene.blend"),
               "--save-as", os.path.join(OUT, "batch.blend"), "--manifest", manifest,
               "--output-dir", os.path.join(OUT, "batch-out") + "/", "--device", "cpu"]
    proc = subprocess.run(command, env=blender_env, capture_output=True, text=True, timeout=900)
    with open(os.path.join(OUT, "blender-batch.log"), "w") as f:
        f.write(proc.stdout + proc.stderr)
    check("blender -b -c humantex_batch", proc.returncode == 0 and "1 done, 0 skipped, 0 failed" in proc.stdout,
          f"exit {proc.returncode}: " + " | ".join(line for line in proc.stdout.splitlines() if "humantex" in line))
    check("batch wrote the texture", os.path.isfile(os.path.join(OUT, "batch-out", "Body", "final.png")))


def main():
    server = SlowModelServer()
    blender_env = {**os.environ, "BLENDER_USER_RESOURCES": os.path.join(OUT, "blender-user"),
                   "XDG_CACHE_HOME": os.path.join(OUT, "cache"), "HUMANTEX_DENSEPOSE_URL": server.url}
    started = time.monotonic()
    run_gui(blender_env)
    if any(c["check"] == "scene ready" and c["ok"] for c in checks):
        run_batch(blender_env)
    ok = bool(checks) and all(c["ok"] for c in checks)
    with open(os.path.join(OUT, "report.json"), "w", encoding="utf-8") as f:
        json.dump({"ok": ok, "seconds": round(time.monotonic() - started, 1), "checks": checks, "state": state()}, f, indent=1)
    log(f"{'PASSED' if ok else 'FAILED'}: {sum(c['ok'] for c in checks)}/{len(checks)} checks in "
        f"{time.monotonic() - started:.0f} s; screenshots and report.json in {OUT}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
