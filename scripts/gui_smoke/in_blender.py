"""Runs inside a real Blender window (scripts/gui-smoke starts it with --python). It installs the
extension zip the way a user does, then follows commands from the driver (driver.py, which makes
the real mouse clicks and key presses) and reports what Blender sees in $SMOKE_OUT/state.json.

Nothing here presses Generate: the driver clicks the button on screen. This script only watches:
a timer records the running job's progress and how often the sidebar redrew while it ran.
"""

import importlib
import json
import os
import time

import addon_utils
import bmesh
import bpy

OUT = os.environ["SMOKE_OUT"]
EXT = "bl_ext.user_default.blender_humantex"
LAYERS = ("final", "sample", "refine", "mask", "partial", "visibility")
TICK_S = 0.1

state = {"phase": "starting", "errors": []}
watch = {"draws": 0, "ticks": [], "progress": [], "draws_while_running": [], "seen_running": False}


def write_state():
    state["time"] = time.time()
    tmp = os.path.join(OUT, "state.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, os.path.join(OUT, "state.json"))


def take_command():
    path = os.path.join(OUT, "command")
    try:
        with open(path, encoding="utf-8") as f:
            command = f.read().strip()
    except OSError:
        return None
    os.remove(path)
    return command


def main_window():
    return bpy.context.window_manager.windows[0]


def view3d(window):
    area = next(a for a in window.screen.areas if a.type == "VIEW_3D")
    return area, next(r for r in area.regions if r.type == "UI"), next(r for r in area.regions if r.type == "WINDOW")


def install():
    zip_path = os.environ["SMOKE_ZIP"]
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    state["install"] = sorted(result)
    state["enabled"] = EXT in bpy.context.preferences.addons
    addon_utils._is_first_reset()  # what the add-on's entry in Preferences shows, computed afresh
    state["warnings"] = addon_utils._extensions_warnings_get().get(EXT, [])
    prefs = bpy.context.preferences.addons[EXT].preferences
    prefs.worker_python = os.environ["SMOKE_WORKER_PYTHON"]
    prefs.device = "cpu"
    bpy.ops.wm.save_userpref()  # so that `blender -b -c humantex_batch` later finds it enabled
    result = bpy.ops.humantex.check_worker()
    state["check_worker"] = {"result": sorted(result), "text": prefs.check_result, "ok": prefs.check_ok}
    state["densepose_status"] = importlib.import_module(EXT + ".addon.models").cached_status()
    # Show the add-on's entry, expanded, in a Preferences window for the first screenshot.
    bpy.context.window_manager.addon_search = "HumanTex"
    # The list draws the modules addon_utils found on disk (not the imported package): expand that one.
    for module in addon_utils.modules(refresh=False):
        if module.__name__ == EXT:
            addon_utils.module_bl_info(module)["show_expanded"] = True
    with bpy.context.temp_override(window=main_window()):
        bpy.ops.screen.userpref_show(section="ADDONS")


def start_download():
    """Press Download model in the Preferences window (the driver's server stands in for the hub: its
    bytes fail the pinned SHA-256). In a window the add-on drains the worker's job on a timer."""
    prefs_window = list(bpy.context.window_manager.windows)[-1]
    with bpy.context.temp_override(window=prefs_window):
        state["download"] = {"result": sorted(bpy.ops.humantex.model_download()), "ticks_while_running": 0,
                             "progress": []}


def watch_download():
    models = importlib.import_module(EXT + ".addon.models")
    task = models.running_task()
    if task is not None:
        state["download"]["ticks_while_running"] += 1
        state["download"]["progress"].append(task.progress_text)
        state["download"]["progress"] = state["download"]["progress"][-5:]
    else:
        state["download"]["last"] = models._status["last"]
        state["phase"] = "download_done"


def close_preferences():
    for window in list(bpy.context.window_manager.windows)[1:]:
        with bpy.context.temp_override(window=window):
            bpy.ops.wm.window_close()


def make_scene():
    """A UV sphere called Body (not SMPL: the panel warns, and the texture still lands on it)."""
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    mesh = bpy.data.meshes.new("Body")
    bm = bmesh.new()
    bm.loops.layers.uv.new("UVMap")  # calc_uvs fills the layer that exists
    bmesh.ops.create_uvsphere(bm, u_segments=64, v_segments=32, radius=1.0, calc_uvs=True)
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new("Body", mesh)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    props = bpy.context.scene.humantex
    props.photo = os.environ["SMOKE_PHOTO"]
    props.iuv = os.environ["SMOKE_IUV"]
    props.inds = os.environ["SMOKE_INDS"]
    props.size = os.environ.get("SMOKE_SIZE", "512")
    bpy.ops.wm.save_as_mainfile(filepath=os.path.join(OUT, "scene.blend"))
    window = main_window()
    area, sidebar, _ = view3d(window)
    area.spaces.active.show_region_ui = True  # the driver picks the HumanTex tab with Ctrl+Tab
    area.tag_redraw()
    # Where the sidebar is on screen (X11: origin top left; Blender: bottom left).
    state["window"] = {"width": window.width, "height": window.height}
    state["sidebar"] = {"x": sidebar.x, "y": window.height - (sidebar.y + sidebar.height),
                        "width": sidebar.width, "height": sidebar.height}


def check_material():
    obj = bpy.data.objects["Body"]
    material = obj.active_material
    found = {"material": material.name if material else None}
    if material is not None:
        nodes = {n["humantex_role"]: n for n in material.node_tree.nodes if n.get("humantex_role")}
        found["roles"] = sorted(nodes)
        found["images"] = {
            role: {"size": list(nodes[role].image.size), "file": bpy.path.abspath(nodes[role].image.filepath),
                   "colorspace": nodes[role].image.colorspace_settings.name,
                   "exists": os.path.isfile(bpy.path.abspath(nodes[role].image.filepath))}
            for role in LAYERS if role in nodes and nodes[role].image is not None
        }
        base = nodes["principled"].inputs["Base Color"].links
        found["base_color_from"] = base[0].from_node.get("humantex_role") if base else None
    props = bpy.context.scene.humantex
    found["panel_message"] = props.message
    found["panel_error"] = props.error
    return found


def show_material():
    window = main_window()
    area, _, region = view3d(window)
    space = area.spaces.active
    # Solid shading with texture colour (Workbench shows the material's active image node): EEVEE
    # compiling its shaders on a software OpenGL would take minutes here.
    material = bpy.data.objects["Body"].active_material
    final = next(n for n in material.node_tree.nodes if n.get("humantex_role") == "final")
    material.node_tree.nodes.active = final
    space.shading.type = "SOLID"
    space.shading.color_type = "TEXTURE"
    with bpy.context.temp_override(window=window, area=area, region=region):
        bpy.ops.view3d.view_axis(type="FRONT")
        bpy.ops.view3d.view_selected()
    area.tag_redraw()


def count_draw():
    watch["draws"] += 1


def tick():
    try:
        return _tick()
    except Exception as e:  # report, don't die silently: the driver reads the state
        state["errors"].append(f"{type(e).__name__}: {e}")
        write_state()
        return 1.0


def _tick():
    now = time.monotonic()
    ops = importlib.import_module(EXT + ".addon.operators")
    task = ops.running_task(bpy.context.scene)
    if task is not None:
        watch["seen_running"] = True
        watch["ticks"].append(now)
        watch["draws_while_running"].append(watch["draws"])
        if not watch["progress"] or watch["progress"][-1][1:] != [task.stage, round(task.fraction, 3)]:
            watch["progress"].append([round(now, 2), task.stage, round(task.fraction, 3), task.progress_text])
        state["phase"] = "running"
    elif watch["seen_running"] and state["phase"] == "running":
        gaps = [b - a for a, b in zip(watch["ticks"], watch["ticks"][1:], strict=False)]
        draws = watch["draws_while_running"]
        state["job"] = {
            "progress": watch["progress"],
            "seconds": round(watch["ticks"][-1] - watch["ticks"][0], 2) if watch["ticks"] else 0,
            "timer_ticks": len(watch["ticks"]),
            "max_gap_s": round(max(gaps), 3) if gaps else None,
            "sidebar_redraws": draws[-1] - draws[0] if draws else 0,
        }
        state["result"] = check_material()
        state["phase"] = "done" if bpy.context.scene.humantex.stage == "done" else "failed"
    if state["phase"] not in ("starting", "prefs_ready", "downloading", "download_done"):
        sidebar = view3d(main_window())[1]
        state["category"] = sidebar.active_panel_category
        state["sidebar"] = {"x": sidebar.x, "y": main_window().height - (sidebar.y + sidebar.height),
                            "width": sidebar.width, "height": sidebar.height}
    if state["phase"] == "downloading":
        watch_download()
    command = take_command()
    if command == "download":
        start_download()
        state["phase"] = "downloading"
    elif command == "close_prefs":
        close_preferences()
        make_scene()
        state["phase"] = "scene_ready"
    elif command == "show_material":
        show_material()
        state["phase"] = "material_shown"
    elif command == "quit":
        write_state()
        with bpy.context.temp_override(window=main_window()):
            bpy.ops.wm.quit_blender()
        return None
    write_state()
    return TICK_S


def start():
    try:
        install()
        state["phase"] = "prefs_ready"
    except Exception as e:
        state["errors"].append(f"{type(e).__name__}: {e}")
        state["phase"] = "failed"
    bpy.types.SpaceView3D.draw_handler_add(count_draw, (), "UI", "POST_PIXEL")
    write_state()
    return None


# Install once the window is up (a timer's first call comes from the running event loop).
bpy.app.timers.register(start, first_interval=1.0)
bpy.app.timers.register(tick, first_interval=2.0)
