"""The `HumanTex_<object>` material: generated layers as Image Texture nodes, a live recombination
of T_sample and T_refine through the blend mask M, and Base Color previews.

Non-destructive by construction: every node this module makes carries the custom property
`humantex_role`, and the module only ever looks up, relinks or rewires nodes that carry it.
Nodes the user adds to the material are never deleted and never relinked. Images are replaced in
place (same datablock, new pixels), so anything else that uses them follows along.
"""

from __future__ import annotations

import os

import bpy

from ..core.layers import BY_NAME
from ..core.layers import LAYERS as OUTPUT_LAYERS

MATERIAL_PREFIX = "HumanTex_"
ROLE_KEY = "humantex_role"
LAYER_KEY = "humantex_layer"

# Worker output name (core.layers) -> colour space. Colour layers are sRGB PNGs; the blend mask and
# the visibility are data (255 = weight 1), so they must not be linearised.
IMAGE_ROLES = {layer.name: "sRGB" if layer.colour else "Non-Color" for layer in OUTPUT_LAYERS}

# Preview layers: what Base Color shows. "mix" is T_sample*M + T_refine*(1-M) computed by the
# shader, so a mask repainted in Texture Paint shows at once; "final" is the worker's T_final.
MIX_PREVIEW = ("mix", "Live Mix", "T_sample*M + T_refine*(1-M), recomputed live from the (repaintable) mask")
PREVIEW_ITEMS = (
    (BY_NAME["final"].name, BY_NAME["final"].button, BY_NAME["final"].tooltip),  # first: the default
    MIX_PREVIEW,
    *((layer.name, layer.button, layer.tooltip) for layer in OUTPUT_LAYERS if layer.name != "final"),
)
LAYER_IDS = tuple(layer for layer, _, _ in PREVIEW_ITEMS)

# ShaderNodeMix with data_type RGBA: its RGBA sockets sit at fixed indices (names repeat per type).
MIX_FACTOR, MIX_A, MIX_B, MIX_RESULT = 0, 6, 7, 2

_COLUMN_X = -900.0
_ROW_STEP = 280.0


def material_name(obj) -> str:
    return f"{MATERIAL_PREFIX}{obj.name}"


def image_name(obj, role: str) -> str:
    return f"{MATERIAL_PREFIX}{obj.name}_{role}"


def humantex_nodes(material) -> dict:
    """role -> node, for the nodes this add-on made (found by tag, whatever the user renamed)."""
    if material is None or material.node_tree is None:
        return {}
    return {node[ROLE_KEY]: node for node in material.node_tree.nodes if node.get(ROLE_KEY)}


def _tag(node, role: str, label: str):
    node[ROLE_KEY] = role
    node.name = f"HumanTex {label}"
    node.label = label
    return node


def _enable_nodes(material):
    # Blender 5 always uses nodes (use_nodes is deprecated there); 4.x needs it switched on.
    if bpy.app.version < (5, 0, 0) and not material.use_nodes:
        material.use_nodes = True
    elif material.node_tree is None:
        material.use_nodes = True


def ensure_material(obj):
    """The object's HumanTex material, created if missing and put in the object's active slot.

    A material already in that slot is not deleted: it gets a fake user (so saving never drops
    it) and its name is kept on ours, for the user to switch back.
    """
    name = material_name(obj)
    material = bpy.data.materials.get(name)
    created = material is None
    if created:
        material = bpy.data.materials.new(name)
    _enable_nodes(material)
    if created:
        for node in list(material.node_tree.nodes):
            if node.bl_idname == "ShaderNodeBsdfPrincipled":
                _tag(node, "principled", "Principled BSDF")
            elif node.bl_idname == "ShaderNodeOutputMaterial":
                _tag(node, "output", "Material Output")

    slots = obj.material_slots
    if not any(slot.material == material for slot in slots):
        if len(slots) == 0:
            obj.data.materials.append(material)
        else:
            index = max(0, obj.active_material_index)
            previous = slots[index].material
            if previous is not None:
                previous.use_fake_user = True
                material["humantex_previous_material"] = previous.name
            slots[index].material = material
    return material


def _ensure_principled(material, nodes: dict):
    tree = material.node_tree
    principled = nodes.get("principled")
    if principled is None:
        principled = _tag(tree.nodes.new("ShaderNodeBsdfPrincipled"), "principled", "Principled BSDF")
        principled.location = (0.0, 300.0)
        nodes["principled"] = principled
        output = nodes.get("output") or next(
            (n for n in tree.nodes if n.bl_idname == "ShaderNodeOutputMaterial" and n.is_active_output), None
        )
        if output is None:
            output = _tag(tree.nodes.new("ShaderNodeOutputMaterial"), "output", "Material Output")
            output.location = (400.0, 300.0)
            nodes["output"] = output
        # Only an empty Surface input is filled: the user's own shading is never rewired.
        if not output.inputs["Surface"].is_linked:
            tree.links.new(principled.outputs["BSDF"], output.inputs["Surface"])
    return principled


def ensure_nodes(material) -> dict:
    """Create whichever HumanTex nodes are missing and wire them among themselves."""
    tree = material.node_tree
    nodes = humantex_nodes(material)
    principled = _ensure_principled(material, nodes)
    origin_x, origin_y = principled.location.x, principled.location.y
    for row, role in enumerate(IMAGE_ROLES):
        if role not in nodes:
            node = _tag(tree.nodes.new("ShaderNodeTexImage"), role, BY_NAME[role].label)
            node.location = (origin_x + _COLUMN_X, origin_y - row * _ROW_STEP)
            nodes[role] = node
    if "mix" not in nodes:
        mix = _tag(tree.nodes.new("ShaderNodeMix"), "mix", "Live Mix (T_sample, T_refine by M)")
        mix.data_type = "RGBA"
        mix.blend_type = "MIX"
        mix.clamp_result = True
        mix.location = (origin_x - 400.0, origin_y - 1.5 * _ROW_STEP)
        nodes["mix"] = mix
    mix = nodes["mix"]
    # Result = A*(1-Factor) + B*Factor with Factor = M, A = T_refine, B = T_sample.
    wiring = (
        (nodes["mask"].outputs["Color"], mix.inputs[MIX_FACTOR]),
        (nodes["refine"].outputs["Color"], mix.inputs[MIX_A]),
        (nodes["sample"].outputs["Color"], mix.inputs[MIX_B]),
    )
    for source, target in wiring:
        if not any(link.from_socket == source for link in target.links):
            tree.links.new(source, target)
    return nodes


def _layer_socket(nodes: dict, layer: str):
    if layer == "mix":
        return nodes["mix"].outputs[MIX_RESULT]
    return nodes[layer].outputs["Color"]


def set_preview_layer(material, layer: str) -> None:
    """Show one layer on the mesh by linking it into our Principled BSDF's Base Color."""
    if layer not in LAYER_IDS:
        raise ValueError(f"unknown layer {layer!r}; expected one of {', '.join(LAYER_IDS)}")
    nodes = ensure_nodes(material)
    base_color = nodes["principled"].inputs["Base Color"]
    material.node_tree.links.new(_layer_socket(nodes, layer), base_color)
    material[LAYER_KEY] = layer


def current_layer(material) -> str:
    return material.get(LAYER_KEY, "final") if material is not None else "final"


def _file_path_for_blend(path: str) -> str:
    """Relative to the .blend when it is saved (so the project folder can move), else absolute."""
    if bpy.data.filepath:
        try:
            return bpy.path.relpath(path)
        except ValueError:  # another drive on Windows
            return path
    return path


def load_image(name: str, path: str, colorspace: str, pack: bool, image=None):
    """Load `path` into `image` (replaced in place) or into a new image called `name`."""
    path = os.path.abspath(path)
    if image is None:
        image = bpy.data.images.get(name)
    if image is None:
        image = bpy.data.images.load(path, check_existing=False)
        image.name = name
    elif image.packed_file is not None:
        # Drop the old packed bytes; the new file is packed again below when asked.
        image.unpack(method="REMOVE")
    image.filepath = _file_path_for_blend(path)
    image.colorspace_settings.name = colorspace
    image.reload()
    if pack:
        image.pack()
    return image


def apply_outputs(obj, outputs: dict, *, pack: bool = False):
    """Put a generation's output PNGs on `obj`'s HumanTex material and show the current layer.

    `outputs` is the worker result's role -> file path mapping; roles it lacks keep their image.
    """
    material = ensure_material(obj)
    nodes = ensure_nodes(material)
    for role, colorspace in IMAGE_ROLES.items():
        path = outputs.get(role)
        if not path:
            continue
        node = nodes[role]
        existing = node.image if node.image is not None and node.image.get(ROLE_KEY) == role else None
        image = load_image(image_name(obj, role), path, colorspace, pack, image=existing)
        image[ROLE_KEY] = role
        node.image = image
    set_preview_layer(material, current_layer(material))
    return material
