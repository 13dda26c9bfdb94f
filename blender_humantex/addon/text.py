"""Messages in the sidebar and the preferences: wrapped to the region's width, with file names
instead of full paths; the full text stays in the tooltip (and the Info log, via report()).

A Blender label clips its text in the middle ("IUV Ord…"), so a long message is drawn as several
labels, each short enough for the region.
"""

from __future__ import annotations

import os
import re
import textwrap

# Blender's UI font at scale 1 averages about this many pixels per character; the margin is the
# panel's border, the icon and the tooltip button beside the text.
CHAR_WIDTH_PX = 7.0
MARGIN_PX = 100
MIN_CHARS = 16

# An absolute path: /a/b, ~/a/b or C:\a\b (two separators at least, so "I/O" or "//x" stay).
_PATH = re.compile(r"(?<![\w/.])(?:[A-Za-z]:[\\/]|~[\\/]|/)(?:[^\s\\/:;,'\"()]+[\\/])+[^\s\\/:;,'\"()]*")


def short_paths(text: str) -> str:
    """Every absolute path in text replaced by its file (or folder) name."""

    def name(match: re.Match) -> str:
        path = match.group(0).rstrip("\\/")
        return os.path.basename(path) or match.group(0)

    return _PATH.sub(name, text)


def chars_for_width(width_px: float, ui_scale: float = 1.0) -> int:
    """How many characters fit on one label of a region this wide."""
    scale = max(ui_scale, 0.1)
    return max(MIN_CHARS, int((width_px - MARGIN_PX * scale) / (CHAR_WIDTH_PX * scale)))


def wrap(text: str, chars: int, shorten: bool = True) -> list[str]:
    """The lines to draw (paths shortened unless told not to), none longer than `chars`; words are
    never cut unless a single word is longer than a line."""
    lines = []
    for paragraph in (short_paths(text) if shorten else text).splitlines() or [""]:
        lines += textwrap.wrap(paragraph, width=max(chars, MIN_CHARS), break_on_hyphens=False) or [""]
    return lines


def region_chars(context) -> int:
    region = getattr(context, "region", None)
    width = region.width if region is not None else 300
    scale = context.preferences.system.ui_scale if context.preferences else 1.0
    return chars_for_width(width, scale)


def draw_message(layout, context, text: str, icon: str = "NONE", alert: bool = False, details: str = "",
                 shorten: bool = True) -> None:
    """text as wrapped labels; the button beside it shows the full text (or `details`) as its
    tooltip and copies it when clicked."""
    row = layout.row(align=False)
    col = row.column(align=True)
    col.alert = alert
    for k, line in enumerate(wrap(text, region_chars(context), shorten=shorten)):
        col.label(text=line, icon=icon if k == 0 or icon == "NONE" else "BLANK1")
    button = row.operator("humantex.message", text="", icon="COPYDOWN", emboss=False)
    button.message = details or text
