"""The one generate request and the one table of sources (core/request.py), and the frozen PartialTexture."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest

from blender_humantex.core.request import (
    DEFAULT_SIZE,
    SOURCES,
    GenerateRequest,
    RequestError,
    source_name,
)
from blender_humantex.core.sources.partial import PartialTexture


def request(**values) -> GenerateRequest:
    return GenerateRequest.from_fields({"out_dir": "/tmp/out", **values})


@pytest.mark.parametrize(
    "values, source",
    [
        ({"photo": "p.jpg", "iuv": "i.png"}, "iuv"),
        ({"photo": "p.jpg", "iuv": "i.png", "inds": "n.png", "person": 2, "iuv_order": "vui"}, "iuv"),
        ({"partial": "p.png", "visibility": "v.png"}, "partial"),
        ({"photo": "p.jpg", "mesh": "m.obj", "camera": "c.json", "mask": "m.png"}, "projection"),
    ],
)
def test_the_fields_make_one_source(values, source):
    made = request(**values)
    assert made.source == source
    assert set(made.inputs()) <= set(SOURCES[source].required + SOURCES[source].optional)


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"photo": "p.jpg"}, "missing iuv"),  # a photo alone: the photo-only source is not there yet
        ({}, "missing photo, iuv"),
        ({"photo": "p.jpg", "mesh": "m.obj"}, "missing camera"),
        ({"photo": "p.jpg", "iuv": "i.png", "mesh": "m.obj", "camera": "c.json"}, "iuv do not go with projection"),
        ({"partial": "p.png", "visibility": "v.png", "inds": "n.png"}, "inds do not go with partial"),
    ],
)
def test_not_exactly_one_source_is_one_line(values, fragment):
    with pytest.raises(RequestError) as raised:
        request(**values)
    assert raised.value.kind == "missing_field" and fragment in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "values, kind, fragment",
    [
        ({"size": 32}, "bad_size", "output size must be an integer in 64..4096"),
        ({"size": True}, "bad_request", "'size' must be an integer"),
        ({"person": "1"}, "bad_request", "'person' must be an integer"),
        ({"photo": 3}, "bad_request", "'photo' must be a string"),
        ({"colour": "red"}, "bad_request", "unknown generate field(s): colour"),
        ({"method": "best"}, "bad_method", "unknown method 'best': use one of full, lazova"),
    ],
)
def test_bad_fields_are_refused_at_the_request(values, kind, fragment):
    with pytest.raises(RequestError) as raised:
        request(**{"photo": "p.jpg", "iuv": "i.png", **values})
    assert raised.value.kind == kind and fragment in str(raised.value)


def test_out_dir_is_required_and_the_default_size_is_the_sources():
    with pytest.raises(RequestError, match="needs out_dir"):
        GenerateRequest.from_fields({"photo": "p.jpg", "iuv": "i.png"})
    assert request(photo="p.jpg", iuv="i.png").output_size == DEFAULT_SIZE
    assert request(partial="p.png", visibility="v.png").output_size is None  # the partial's own size
    assert request(partial="p.png", visibility="v.png", size=256).output_size == 256


def test_aliases_and_unknown_source_names():
    assert source_name("densepose") == "iuv" and source_name("camera") == "projection"
    assert all(source_name(name) == name for name in SOURCES)
    with pytest.raises(RequestError, match="unknown source 'photograph'"):
        source_name("photograph")


def test_a_request_and_a_partial_texture_are_frozen():
    made = request(photo="p.jpg", iuv="i.png")
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.size = 512
    texture = PartialTexture(np.zeros((64, 64, 3), np.float32), np.zeros((64, 64), np.float32), meta={"coverage": 0.5})
    with pytest.raises(dataclasses.FrozenInstanceError):
        texture.photo = None
    assert texture.coverage == 0.5 and texture.size == 64


def test_every_reader_resolves():
    for source in SOURCES.values():
        module, function = source.reader.split(":")
        assert callable(getattr(importlib.import_module(module), function)), source.name
