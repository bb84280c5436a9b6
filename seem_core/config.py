"""Typed model configuration.

One tree of frozen dataclasses describes a SEEM model. It is built either from an
official SEEM YAML file (upper-case keys, as in the SEEM repository and in the
golden ``config.yaml`` files) or from this project's Hydra model configs
(lower-case keys that mirror the dataclass fields). Every module constructor
takes the dataclass of its own part, so nothing below this file reads YAML.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

SUPPORTED_BACKBONES = ("focal", "focal_dw")
SUPPORTED_PIXEL_DECODERS = ("transformer_encoder_fpn",)
SUPPORTED_DECODERS = ("seem_demo", "seem_v0", "seem_v1")


class ConfigError(ValueError):
    """A model configuration that cannot be built, with the reason."""


@dataclass(frozen=True)
class FocalNetConfig:
    """FocalNet backbone. ``depthwise`` (the ``focal_dw`` variant, Focal-T in SEEM) follows from
    ``SEEMConfig.backbone_name``; it is not a key of its own in either config layout."""

    depthwise: bool = True
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    focal_levels: tuple[int, ...] = (3, 3, 3, 3)
    focal_windows: tuple[int, ...] = (3, 3, 3, 3)
    mlp_ratio: float = 4.0
    patch_size: int = 4
    patch_norm: bool = True
    use_conv_embed: bool = True
    use_postln: bool = True
    use_postln_in_modulation: bool = False
    scaling_modulator: bool = True
    use_layerscale: bool = True
    out_indices: tuple[int, ...] = (0, 1, 2, 3)

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels of res2..res5 (the embedding doubles at every stage)."""
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))


@dataclass(frozen=True)
class TextEncoderConfig:
    """Causal CLIP-style text transformer (``MODEL.TEXT``)."""

    width: int = 512
    layers: int = 12
    heads: int = 8
    context_length: int = 77
    vocab_size: int = 49408
    autoregressive: bool = True


@dataclass(frozen=True)
class PixelDecoderConfig:
    """``transformer_encoder_fpn``: a transformer encoder on res5, then an FPN to stride 4."""

    in_features: tuple[str, ...] = ("res2", "res3", "res4", "res5")
    conv_dim: int = 512
    mask_dim: int = 512
    norm: str = "GN"
    num_encoder_layers: int = 6
    nheads: int = 8
    dim_feedforward: int = 2048
    dropout: float = 0.0
    pre_norm: bool = False


@dataclass(frozen=True)
class DecoderConfig:
    """The SEEM transformer decoder (``MODEL.DECODER``). ``num_layers`` is DEC_LAYERS - 1."""

    hidden_dim: int = 512
    num_queries: int = 101
    nheads: int = 8
    dim_feedforward: int = 2048
    num_layers: int = 9
    pre_norm: bool = False
    enforce_input_proj: bool = False
    max_spatial_len: tuple[int, ...] = (512, 512, 512, 512)
    spatial_memories: int = 32
    num_feature_levels: int = 3
    # v1 interactive path: object queries copied as spatial queries per prompt (ATTENTION_ARCH.QUERY_NUMBER).
    spatial_queries: int = 3


@dataclass(frozen=True)
class SEEMConfig:
    """A whole SEEM model and the image normalisation it was trained with."""

    backbone_name: str = "focal_dw"
    pixel_decoder_name: str = "transformer_encoder_fpn"
    decoder_name: str = "seem_demo"
    dim_proj: int = 512
    backbone: FocalNetConfig = field(default_factory=FocalNetConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    pixel_decoder: PixelDecoderConfig = field(default_factory=PixelDecoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    pixel_mean: tuple[float, ...] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, ...] = (58.395, 57.12, 57.375)
    size_divisibility: int = 32

    def __post_init__(self) -> None:
        checks = (
            (self.backbone_name, SUPPORTED_BACKBONES, "MODEL.BACKBONE.NAME"),
            (self.pixel_decoder_name, SUPPORTED_PIXEL_DECODERS, "MODEL.ENCODER.NAME"),
            (self.decoder_name, SUPPORTED_DECODERS, "MODEL.DECODER.NAME"),
        )
        for value, supported, key in checks:
            if value not in supported:
                raise ConfigError(
                    f"{key} = {value!r} is not implemented; supported: {', '.join(supported)}"
                )
        if self.backbone.depthwise != (self.backbone_name == "focal_dw"):
            raise ConfigError(
                f"backbone.depthwise={self.backbone.depthwise} contradicts backbone_name={self.backbone_name!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists for tuples), the inverse of :func:`from_dict`."""
        return _to_plain(dataclasses.asdict(self))


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, rejecting unknown keys."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(unknown)}")
    nested = _NESTED.get(cls, {})
    kwargs = {}
    for name, value in values.items():
        if name in nested:
            kwargs[name] = _build(nested[name], value or {}, f"{where}.{name}")
        elif isinstance(value, (list, tuple)):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


_NESTED: dict[type, dict[str, type]] = {
    SEEMConfig: {
        "backbone": FocalNetConfig,
        "text": TextEncoderConfig,
        "pixel_decoder": PixelDecoderConfig,
        "decoder": DecoderConfig,
    }
}


def from_dict(values: Mapping[str, Any]) -> SEEMConfig:
    """Build from this project's lower-case layout (Hydra ``configs/model``)."""
    values = dict(values)
    backbone = dict(values.get("backbone") or {})
    if "depthwise" in backbone:
        raise ConfigError("model.backbone.depthwise is not a setting: backbone_name (focal or focal_dw) decides it")
    backbone["depthwise"] = values.get("backbone_name", SEEMConfig.backbone_name) == "focal_dw"
    values["backbone"] = backbone
    return _build(SEEMConfig, values, "model")


def from_official(cfg: Mapping[str, Any]) -> SEEMConfig:
    """Map an official SEEM config (merged YAML as a dict) onto :class:`SEEMConfig`."""
    try:
        return _from_official(cfg)
    except KeyError as err:  # a required key at any depth
        raise ConfigError(f"not an official SEEM config: missing key {err}") from None


def _from_official(cfg: Mapping[str, Any]) -> SEEMConfig:
    model = cfg["MODEL"]
    backbone, text = model["BACKBONE"], model["TEXT"]
    encoder, decoder = model["ENCODER"], model["DECODER"]
    focal = backbone.get("FOCAL")
    if focal is None:
        raise ConfigError(
            f"MODEL.BACKBONE.NAME = {backbone.get('NAME')!r} is not implemented; "
            f"supported: {', '.join(SUPPORTED_BACKBONES)}"
        )
    attn = cfg.get("ATTENTION_ARCH", {})
    inputs = cfg.get("INPUT", {})
    defaults = SEEMConfig()
    return SEEMConfig(
        backbone_name=backbone["NAME"],
        pixel_decoder_name=encoder["NAME"],
        decoder_name=decoder["NAME"],
        dim_proj=model["DIM_PROJ"],
        backbone=FocalNetConfig(
            depthwise=backbone["NAME"] == "focal_dw",
            embed_dim=focal["EMBED_DIM"],
            depths=tuple(focal["DEPTHS"]),
            focal_levels=tuple(focal["FOCAL_LEVELS"]),
            focal_windows=tuple(focal["FOCAL_WINDOWS"]),
            mlp_ratio=focal["MLP_RATIO"],
            patch_size=focal["PATCH_SIZE"],
            patch_norm=focal["PATCH_NORM"],
            use_conv_embed=focal["USE_CONV_EMBED"],
            use_postln=focal["USE_POSTLN"],
            use_postln_in_modulation=focal["USE_POSTLN_IN_MODULATION"],
            scaling_modulator=focal.get("SCALING_MODULATOR", False),
            use_layerscale=focal["USE_LAYERSCALE"],
            out_indices=tuple(focal["OUT_INDICES"]),
        ),
        text=TextEncoderConfig(
            width=text["WIDTH"],
            layers=text["LAYERS"],
            heads=text["HEADS"],
            context_length=text["CONTEXT_LENGTH"],
            autoregressive=text.get("AUTOGRESSIVE", True),
        ),
        pixel_decoder=PixelDecoderConfig(
            in_features=tuple(encoder["IN_FEATURES"]),
            conv_dim=encoder["CONVS_DIM"],
            mask_dim=encoder["MASK_DIM"],
            norm=encoder["NORM"],
            num_encoder_layers=encoder["TRANSFORMER_ENC_LAYERS"],
            nheads=decoder["NHEADS"],
            dim_feedforward=decoder["DIM_FEEDFORWARD"],
            dropout=decoder["DROPOUT"],
            pre_norm=decoder["PRE_NORM"],
        ),
        decoder=DecoderConfig(
            hidden_dim=decoder["HIDDEN_DIM"],
            num_queries=decoder["NUM_OBJECT_QUERIES"],
            nheads=decoder["NHEADS"],
            dim_feedforward=decoder["DIM_FEEDFORWARD"],
            num_layers=decoder["DEC_LAYERS"] - 1,
            pre_norm=decoder["PRE_NORM"],
            enforce_input_proj=decoder["ENFORCE_INPUT_PROJ"],
            max_spatial_len=tuple(decoder["MAX_SPATIAL_LEN"]),
            spatial_memories=attn.get("SPATIAL_MEMORIES", defaults.decoder.spatial_memories),
            spatial_queries=attn.get("QUERY_NUMBER", defaults.decoder.spatial_queries),
        ),
        pixel_mean=tuple(inputs.get("PIXEL_MEAN", defaults.pixel_mean)),
        pixel_std=tuple(inputs.get("PIXEL_STD", defaults.pixel_std)),
        size_divisibility=decoder.get("SIZE_DIVISIBILITY", defaults.size_divisibility),
    )


def load_config(source: str | Path | Mapping[str, Any] | SEEMConfig) -> SEEMConfig:
    """Accept a SEEMConfig, or a YAML path or dict in either layout (official, or our ``architecture``)."""
    if isinstance(source, SEEMConfig):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"{path}: model config file not found")
        try:
            with path.open() as fh:
                data = yaml.safe_load(fh)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        try:
            return load_config(data)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    if "MODEL" in source:
        return from_official(source)
    return from_dict(source)
