"""Network families built stage by stage with a chosen attention block per stage."""

from __future__ import annotations

from nas.backbones.families import FAMILIES, Family, get_family
from nas.backbones.mobilenet import MobileNetV2, build_mobilenet_v2, mobilenet_v2
from nas.backbones.profile import ModelProfile, count_parameters, profile_model
from nas.backbones.resnet import ResNet, build_resnet, resnet50
from nas.backbones.stage import PLACEMENTS, StageSpec

__all__ = [
    "FAMILIES",
    "PLACEMENTS",
    "Family",
    "MobileNetV2",
    "ModelProfile",
    "ResNet",
    "StageSpec",
    "build_mobilenet_v2",
    "build_resnet",
    "count_parameters",
    "get_family",
    "mobilenet_v2",
    "profile_model",
    "resnet50",
]
