"""Per-scene inputs of the HumanTex panel and the state of the running generation."""

from __future__ import annotations

import bpy

from ..worker.protocol import PATH_FIELDS, SOURCES, GenerateRequest

SIZE_ITEMS = (
    ("512", "512", "512 x 512 texture"),
    ("1024", "1024", "1024 x 1024 texture"),
    ("2048", "2048", "2048 x 2048 texture"),
    ("4096", "4096", "4096 x 4096 texture"),
)

IUV_ORDER_ITEMS = (
    ("DEFAULT", "Auto-detect", "Detect which channel holds the part index I (red or blue); "
     "choose an order when detection fails"),
    ("iuv", "I, U, V", "Read as RGB: R = part index I, G = U, B = V (e.g. pose-with-style files)"),
    ("vui", "V, U, I", "Read as RGB: R = V, G = U, B = part index I (DensePose's OpenCV-written files)"),
)

# The sources the panel offers: (identifier = the source's name in SOURCES, label, description).
SOURCE_ITEMS = (
    ("iuv", "Photo + DensePose", "A photo of the person and its DensePose IUV image"),
    ("projection", "Camera projection", "Project the photo, seen through the scene camera, onto the posed mesh (no DensePose)"),
)
# Request fields the add-on writes itself from the scene when a job starts (operators.build_request).
SCENE_FIELDS = ("mesh", "camera")


class HumantexSettings(bpy.types.PropertyGroup):
    source: bpy.props.EnumProperty(name="Source", items=SOURCE_ITEMS, default="iuv")
    photo: bpy.props.StringProperty(name="Photo", description="Photo of the person", subtype="FILE_PATH")
    iuv: bpy.props.StringProperty(
        name="IUV", description="DensePose IUV image for the photo (same size)", subtype="FILE_PATH"
    )
    inds: bpy.props.StringProperty(
        name="INDS", description="Optional DensePose instance map (person index per pixel)", subtype="FILE_PATH"
    )
    person: bpy.props.IntProperty(
        name="Person",
        description="Person index in the INDS map; 0 means the largest person in the photo",
        default=0,
        min=0,
    )
    iuv_order: bpy.props.EnumProperty(name="IUV Order", items=IUV_ORDER_ITEMS, default="DEFAULT")
    mask: bpy.props.StringProperty(
        name="Mask",
        description="Optional person mask for the photo (white = person); without one a photo's alpha is used",
        subtype="FILE_PATH",
    )
    size: bpy.props.EnumProperty(name="Size", items=SIZE_ITEMS, default="1024")

    # What the panel shows about the last or running generation. Whether one is running is
    # not stored here (a .blend saved mid-job would reload "running"): see operators.running_task.
    stage: bpy.props.StringProperty()
    fraction: bpy.props.FloatProperty(min=0.0, max=1.0)
    message: bpy.props.StringProperty()
    error: bpy.props.StringProperty()

    def request(self) -> GenerateRequest:
        """The worker request these inputs stand for, for the chosen source's fields only (paths absolute,
        defaults left out; out_dir and the scene's files are added when the job starts: build_request)."""
        source = SOURCES[self.source]
        values = {name: self.field_value(name) for name in (*source.required, *source.optional)
                  if name not in SCENE_FIELDS}
        return GenerateRequest(size=int(self.size), **values)

    def field_value(self, name: str):
        """A request field from its property: None when not given (an empty path, person 0, the default order)."""
        value = getattr(self, name)
        if name in PATH_FIELDS:
            return bpy.path.abspath(value) if value else None
        if name == "person":
            return value if value > 0 else None
        return value if value != "DEFAULT" else None
